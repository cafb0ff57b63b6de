"""Consortium contract, governance after a proposal is made: M-of-N approval, cancellation, metadata updates, the
views and stale approvals. Admission, role changes, revocation and threshold changes are
``test_consortium_contract.py``, whose helpers these tests share.

Each refusal asserts the typed error, the contract's exact revert string, and that
the chain did not move (a refused call is caught before anything is sent).
"""

from __future__ import annotations

import pytest

from conftest import MEMBER_ROLES, Ledger, h, refused
from fedledger.chain import MemberStatus, Role
from fedledger.chain.events import MemberAdmitted, MetadataUpdated, ProposalApproved, ProposalCancelled
from fedledger.exceptions import BadInput, InvalidArgument, InvalidState, NotAuthorized
from helpers.consortium import (
    MALFORMED_ADDRESSES,
    as_admin,
    events_since,
    member_client,
    new_account,
    promote,
    revoke,
    state_of,
    two_admins_threshold_two,
)

# -- approve (M-of-N) -------------------------------------------------------------


def test_proposal_pending_until_second_admin_approves(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    target = new_account("pending").address
    pid = as_admin(ledger).propose_admit(target, org="Pending Org", roles=Role.TRAINER)
    c = ledger.consortium
    p = c.proposal(pid)
    assert (p.approvals, p.executed, p.cancelled) == (1, False, False)
    assert c.member(target).status is MemberStatus.NONE
    assert [q.proposal_id for q in c.pending_proposals()] == [pid]
    has_approved = c.contract.functions.has_approved
    assert ledger.chain.call(has_approved(pid, ledger.admin.address))
    assert not ledger.chain.call(has_approved(pid, ledger.members[0].address))
    block = ledger.chain.block_number
    assert second.approve(pid) is True
    assert c.member(target).status is MemberStatus.ACTIVE
    p = c.proposal(pid)
    assert (p.approvals, p.executed) == (2, True)
    assert c.pending_proposals() == []
    events = events_since(ledger, block)
    assert [type(e) for e in events] == [ProposalApproved, MemberAdmitted]
    assert (events[0].proposal_id, events[0].admin, events[0].approvals) == (pid, ledger.members[0].address, 2)
    assert (events[1].member, events[1].proposal_id) == (target, pid)


def test_double_approval_refused(ledger: Ledger) -> None:
    two_admins_threshold_two(ledger)
    pid = as_admin(ledger).propose_admit(new_account("d").address, org="D", roles=Role.TRAINER)
    refused(lambda: state_of(ledger), InvalidState, "consortium: already approved", as_admin(ledger).approve, pid)
    assert ledger.consortium.proposal(pid).approvals == 1


def test_approve_refused(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    admin = as_admin(ledger)
    executed_pid = 0  # the fixture's first admission
    refused(lambda: state_of(ledger), InvalidState, "consortium: unknown proposal", second.approve, 999)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "consortium: unknown proposal",
        second.approve,
        ledger.consortium.proposal_count,
    )
    refused(
        lambda: state_of(ledger), InvalidState, "consortium: proposal already executed", second.approve, executed_pid
    )
    pid = admin.propose_admit(new_account("a").address, org="A", roles=Role.TRAINER)
    for who in (ledger.members[1], ledger.outsider):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "consortium: caller is not an admin",
            ledger.consortium.as_(who).approve,
            pid,
        )
    admin.cancel(pid)
    refused(lambda: state_of(ledger), InvalidState, "consortium: proposal cancelled", second.approve, pid)


# -- cancel -----------------------------------------------------------------------


def test_cancel_pending_proposal(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    target = new_account("c").address
    pid = as_admin(ledger).propose_admit(target, org="C", roles=Role.TRAINER)
    block = ledger.chain.block_number
    second.cancel(pid)  # any admin may cancel, not only the proposer
    p = ledger.consortium.proposal(pid)
    assert (p.cancelled, p.executed, p.approvals) == (True, False, 1)
    assert ledger.consortium.pending_proposals() == []
    assert ledger.consortium.member(target).status is MemberStatus.NONE
    events = events_since(ledger, block)
    assert len(events) == 1
    assert isinstance(events[0], ProposalCancelled)
    assert (events[0].proposal_id, events[0].admin) == (pid, ledger.members[0].address)


def test_cancel_refused(ledger: Ledger) -> None:
    two_admins_threshold_two(ledger)
    admin = as_admin(ledger)
    pid = admin.propose_admit(new_account("c").address, org="C", roles=Role.TRAINER)
    for who in (ledger.members[1], ledger.outsider):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "consortium: caller is not an admin",
            ledger.consortium.as_(who).cancel,
            pid,
        )
    refused(lambda: state_of(ledger), InvalidState, "consortium: unknown proposal", admin.cancel, 12345)
    refused(lambda: state_of(ledger), InvalidState, "consortium: proposal already executed", admin.cancel, 0)
    admin.cancel(pid)
    refused(lambda: state_of(ledger), InvalidState, "consortium: proposal cancelled", admin.cancel, pid)


# -- update_metadata --------------------------------------------------------------


def test_update_metadata(ledger: Ledger) -> None:
    me = ledger.members[1]
    block = ledger.chain.block_number
    member_client(ledger, 1).update_metadata(
        cert_fingerprint=h("cert2"), kx_public_key=h("kx2"), store_uri="gs://hospital-1/updates"
    )
    m = ledger.consortium.member(me.address)
    assert (m.cert_fingerprint, m.kx_public_key, m.store_uri) == (h("cert2"), h("kx2"), "gs://hospital-1/updates")
    assert (m.roles, m.status) == (MEMBER_ROLES, MemberStatus.ACTIVE)
    events = events_since(ledger, block)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, MetadataUpdated)
    assert (e.member, e.cert_fingerprint, e.kx_public_key, e.store_uri) == (
        me.address,
        h("cert2"),
        h("kx2"),
        "gs://hospital-1/updates",
    )


def test_update_metadata_refused(ledger: Ledger) -> None:
    revoke(ledger, ledger.members[3])
    for who in (ledger.outsider, ledger.members[3]):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "consortium: caller is not an active member",
            ledger.consortium.as_(who).update_metadata,
            cert_fingerprint=h("x"),
            kx_public_key=h("y"),
            store_uri="",
        )
    refused(
        lambda: state_of(ledger),
        BadInput,
        None,
        member_client(ledger, 0).update_metadata,
        cert_fingerprint="0x00",
        kx_public_key=h("y"),
        store_uri="",
    )


# -- views ------------------------------------------------------------------------


def test_member_at_out_of_range(ledger: Ledger) -> None:
    fn = ledger.consortium.contract.functions.member_at
    assert ledger.chain.call(fn(0)) == ledger.admin.address
    refused(lambda: state_of(ledger), InvalidArgument, "consortium: index out of range", ledger.chain.call, fn(5))


@pytest.mark.parametrize("address", MALFORMED_ADDRESSES)
def test_reads_reject_malformed_addresses(ledger: Ledger, address: str) -> None:
    c = ledger.consortium
    with pytest.raises(BadInput):
        c.member(address)
    with pytest.raises(BadInput):
        c.is_active(address)
    with pytest.raises(BadInput):
        c.has_role(address, Role.TRAINER)


# -- stale approvals ---------------------------------------------------------------


def test_revoked_admins_approval_does_not_count(ledger: Ledger) -> None:
    """A revoked key is presumed compromised: its earlier approvals lapse."""
    promote(ledger, 0)
    promote(ledger, 1)
    as_admin(ledger).propose_threshold(2)
    rogue, third = member_client(ledger, 0), member_client(ledger, 1)
    target = new_account("rogue-pick").address
    pid = rogue.propose_admit(target, org="Rogue's pick", roles=Role.TRAINER | Role.VALIDATOR)
    # The consortium revokes the (presumed compromised) key of members[0].
    revoke_pid = as_admin(ledger).propose_revoke(ledger.members[0].address)
    assert third.approve(revoke_pid) is True
    assert not ledger.consortium.is_active(ledger.members[0].address)
    # One more active admin approving must not be enough: only one active admin approved.
    assert as_admin(ledger).approve(pid) is False
    assert ledger.consortium.member(target).status is MemberStatus.NONE
    assert ledger.consortium.proposal(pid).approvals == 1
    # A second active admin still can carry it.
    assert third.approve(pid) is True
    assert ledger.consortium.member(target).status is MemberStatus.ACTIVE
