"""Consortium contract: every state-changing function, its success and its refusals.

Each refusal asserts the typed error, the contract's exact revert string, and that
the chain did not move (a refused call is caught before anything is sent).
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import MEMBER_ROLES, Ledger, h, refused
from fedledger.chain import ConsortiumClient, MemberStatus, ProposalKind, Role
from fedledger.chain.events import (
    MemberAdmitted,
    MemberRevoked,
    ProposalApproved,
    ProposalCreated,
    RolesChanged,
    ThresholdChanged,
)
from fedledger.exceptions import BadInput, InvalidArgument, InvalidState, NotAuthorized
from helpers.consortium import (
    MALFORMED_ADDRESSES,
    ZERO_ADDRESS,
    as_admin,
    events_since,
    member_client,
    new_account,
    promote,
    revoke,
    state_of,
    two_admins_threshold_two,
)

# -- fixture state -----------------------------------------------------------------


def test_fixture_consortium(ledger: Ledger) -> None:
    c = ledger.consortium
    assert c.threshold == 1
    assert c.admin_count == 1
    assert c.proposal_count == 4
    assert [m.address for m in c.members()] == [ledger.admin.address] + [m.address for m in ledger.members]
    assert c.has_role(ledger.admin.address, Role.ADMIN)
    for m in ledger.members:
        assert c.has_role(m.address, MEMBER_ROLES)
        assert not c.has_role(m.address, Role.ADMIN)
    assert not c.is_active(ledger.outsider.address)
    assert c.pending_proposals() == []


# -- constructor -------------------------------------------------------------------


def test_deploy_founds_consortium(ledger: Ledger) -> None:
    founder = ledger.outsider
    block = ledger.chain.block_number
    fp, kx = h("cert"), h("kx")
    c = ConsortiumClient.deploy(
        ledger.chain,
        founder,
        org="NewCo",
        roles=Role.ADMIN | Role.AUDITOR,
        cert_fingerprint=fp,
        kx_public_key=kx,
        store_uri="s3://newco/blobs",
    )
    assert c.threshold == 1
    assert c.admin_count == 1
    assert c.proposal_count == 0
    m = c.member(founder.address)
    assert (m.org, m.roles, m.status) == ("NewCo", Role.ADMIN | Role.AUDITOR, MemberStatus.ACTIVE)
    assert (m.cert_fingerprint, m.kx_public_key, m.store_uri) == (fp, kx, "s3://newco/blobs")
    assert m.admitted_at == block + 1
    events = c.events(from_block=block + 1)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, MemberAdmitted)
    assert (e.member, e.org, e.roles, e.proposal_id) == (founder.address, "NewCo", 17, 0)


@pytest.mark.parametrize(
    ("kwargs", "error", "reason"),
    [
        ({"org": "X", "roles": Role.TRAINER}, NotAuthorized, "consortium: founder must be an admin"),
        ({"org": "X", "roles": 1 | 32}, InvalidArgument, "consortium: unknown role"),
        ({"org": "", "roles": Role.ADMIN}, InvalidArgument, "consortium: empty organization name"),
    ],
)
def test_deploy_refused(ledger: Ledger, kwargs: dict[str, Any], error: type[Exception], reason: str) -> None:
    chain = ledger.chain
    # Refused before sending: nothing mined, no nonce or gas spent.
    refused(
        lambda: (chain.block_number, chain.w3.eth.get_transaction_count(ledger.outsider.address)),
        error,
        reason,
        ConsortiumClient.deploy,
        chain,
        ledger.outsider,
        **kwargs,
    )


def test_deploy_malformed_metadata_is_bad_input(ledger: Ledger) -> None:
    block = ledger.chain.block_number
    with pytest.raises(BadInput, match="certificate fingerprint"):
        ConsortiumClient.deploy(ledger.chain, ledger.outsider, org="X", cert_fingerprint="0x1234")
    with pytest.raises(BadInput, match="unknown role 'boss'"):
        ConsortiumClient.deploy(ledger.chain, ledger.outsider, org="X", roles="admin,boss")
    assert ledger.chain.block_number == block


# -- propose_admit ----------------------------------------------------------------


def test_propose_admit_executes_at_threshold_one(ledger: Ledger) -> None:
    newcomer = new_account("newcomer")
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_admit(
        newcomer.address,
        org="Clinic",
        roles="trainer,validator",
        cert_fingerprint=h("c"),
        kx_public_key=h("k"),
        store_uri="file:///clinic",
    )
    assert pid == 4
    c = ledger.consortium
    m = c.member(newcomer.address)
    assert (m.org, m.roles, m.status) == ("Clinic", Role.TRAINER | Role.VALIDATOR, MemberStatus.ACTIVE)
    assert (m.cert_fingerprint, m.kx_public_key, m.store_uri) == (h("c"), h("k"), "file:///clinic")
    assert c.has_role(newcomer.address, Role.TRAINER)
    assert not c.has_role(newcomer.address, Role.AGGREGATOR)
    p = c.proposal(pid)
    assert (p.kind, p.target, p.approvals, p.executed, p.cancelled) == (
        ProposalKind.ADMIT,
        newcomer.address,
        1,
        True,
        False,
    )
    assert p.proposer == ledger.admin.address
    assert c.proposal_count == 5
    assert len(c.members()) == 6
    events = events_since(ledger, block)
    assert [type(e) for e in events] == [ProposalCreated, ProposalApproved, MemberAdmitted]
    created, approved, admitted = events
    assert (created.proposal_id, created.kind, created.target, created.proposer) == (
        pid,
        int(ProposalKind.ADMIT),
        newcomer.address,
        ledger.admin.address,
    )
    assert (approved.proposal_id, approved.admin, approved.approvals) == (pid, ledger.admin.address, 1)
    assert (admitted.member, admitted.org, admitted.roles, admitted.proposal_id) == (
        newcomer.address,
        "Clinic",
        6,
        pid,
    )


def test_propose_admit_refused_for_non_admins(ledger: Ledger) -> None:
    target = new_account("x").address
    for who in (ledger.members[0], ledger.outsider):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "consortium: caller is not an admin",
            ledger.consortium.as_(who).propose_admit,
            target,
            org="X",
            roles=Role.TRAINER,
        )


def test_revoked_admin_cannot_propose_or_approve(ledger: Ledger) -> None:
    promote(ledger, 0)
    revoke(ledger, ledger.members[0])
    former = member_client(ledger, 0)
    target = new_account("x").address
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "consortium: caller is not an admin",
        former.propose_admit,
        target,
        org="X",
        roles=2,
    )
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "consortium: caller is not an admin",
        former.propose_revoke,
        ledger.members[1].address,
    )
    refused(lambda: state_of(ledger), NotAuthorized, "consortium: caller is not an admin", former.propose_threshold, 1)
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "consortium: caller is not an admin",
        former.propose_roles,
        target,
        Role.ADMIN,
    )
    refused(lambda: state_of(ledger), NotAuthorized, "consortium: caller is not an admin", former.approve, 0)
    refused(lambda: state_of(ledger), NotAuthorized, "consortium: caller is not an admin", former.cancel, 0)


@pytest.mark.parametrize(
    ("target", "roles", "org", "error", "reason"),
    [
        ("zero", Role.TRAINER, "X", InvalidArgument, "consortium: zero address"),
        ("member", Role.TRAINER, "X", InvalidState, "consortium: address already known"),
        ("admin", Role.TRAINER, "X", InvalidState, "consortium: address already known"),
        ("new", 0, "X", InvalidArgument, "consortium: no roles"),
        ("new", 64, "X", InvalidArgument, "consortium: unknown role"),
        ("new", Role.TRAINER, "", InvalidArgument, "consortium: empty organization name"),
    ],
)
def test_propose_admit_refused(
    ledger: Ledger, target: str, roles: int, org: str, error: type[Exception], reason: str
) -> None:
    address = {
        "zero": ZERO_ADDRESS,
        "member": ledger.members[2].address,
        "admin": ledger.admin.address,
        "new": new_account("new").address,
    }[target]
    refused(lambda: state_of(ledger), error, reason, as_admin(ledger).propose_admit, address, org=org, roles=roles)


def test_revoked_address_cannot_be_readmitted(ledger: Ledger) -> None:
    gone = ledger.members[3]
    revoke(ledger, gone)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "consortium: address already known",
        as_admin(ledger).propose_admit,
        gone.address,
        org="Hospital-3 again",
        roles=Role.TRAINER,
    )
    assert ledger.consortium.member(gone.address).status is MemberStatus.REVOKED


@pytest.mark.parametrize("address", MALFORMED_ADDRESSES)
def test_propose_admit_malformed_address_is_bad_input(ledger: Ledger, address: str) -> None:
    exc = refused(
        lambda: state_of(ledger), BadInput, None, as_admin(ledger).propose_admit, address, org="X", roles=Role.TRAINER
    )
    assert "malformed member address" in str(exc)


def test_propose_admit_malformed_metadata_or_role_is_bad_input(ledger: Ledger) -> None:
    target = new_account("x").address
    admin = as_admin(ledger)
    assert "key-agreement" in str(
        refused(
            lambda: state_of(ledger),
            BadInput,
            None,
            admin.propose_admit,
            target,
            org="X",
            roles=2,
            kx_public_key="0x12",
        )
    )
    assert "not hex" in str(
        refused(
            lambda: state_of(ledger),
            BadInput,
            None,
            admin.propose_admit,
            target,
            org="X",
            roles=2,
            cert_fingerprint="xyz",
        )
    )
    assert "unknown role" in str(
        refused(lambda: state_of(ledger), BadInput, None, admin.propose_admit, target, org="X", roles="trainer,king")
    )


def test_client_without_account_is_bad_input(ledger: Ledger) -> None:
    reader = ConsortiumClient(ledger.chain, ledger.consortium.address)
    refused(lambda: state_of(ledger), BadInput, None, reader.propose_threshold, 1)


def test_admission_of_the_same_address_twice_pending(ledger: Ledger) -> None:
    """Two pending admissions of one address: the second cannot execute once the first did."""
    second = two_admins_threshold_two(ledger)
    target = new_account("twice").address
    first_pid = as_admin(ledger).propose_admit(target, org="A", roles=Role.TRAINER)
    second_pid = as_admin(ledger).propose_admit(target, org="B", roles=Role.VALIDATOR)
    assert second.approve(first_pid) is True
    assert ledger.consortium.member(target).org == "A"
    refused(lambda: state_of(ledger), InvalidState, "consortium: address already known", second.approve, second_pid)
    second.cancel(second_pid)
    assert ledger.consortium.pending_proposals() == []


# -- propose_roles ----------------------------------------------------------------


def test_propose_roles_changes_roles(ledger: Ledger) -> None:
    target = ledger.members[1].address
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_roles(target, "trainer,auditor")
    c = ledger.consortium
    assert c.member(target).roles == Role.TRAINER | Role.AUDITOR
    assert c.has_role(target, Role.AUDITOR)
    assert not c.has_role(target, Role.VALIDATOR)
    assert c.admin_count == 1
    changed = [e for e in events_since(ledger, block) if isinstance(e, RolesChanged)]
    assert len(changed) == 1
    assert (changed[0].member, changed[0].old_roles, changed[0].new_roles, changed[0].proposal_id) == (
        target,
        int(MEMBER_ROLES),
        int(Role.TRAINER | Role.AUDITOR),
        pid,
    )


def test_propose_roles_promotes_and_demotes_admins(ledger: Ledger) -> None:
    c = ledger.consortium
    promote(ledger, 0)
    assert c.admin_count == 2
    assert c.has_role(ledger.members[0].address, Role.ADMIN)
    # The new admin can act as one.
    member_client(ledger, 0).propose_roles(ledger.admin.address, Role.ADMIN | Role.AUDITOR)
    assert c.member(ledger.admin.address).roles == Role.ADMIN | Role.AUDITOR
    as_admin(ledger).propose_roles(ledger.members[0].address, MEMBER_ROLES)
    assert c.admin_count == 1
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "consortium: caller is not an admin",
        member_client(ledger, 0).propose_threshold,
        1,
    )


@pytest.mark.parametrize(
    ("who", "target", "roles", "error", "reason"),
    [
        ("member", "member", Role.TRAINER, NotAuthorized, "consortium: caller is not an admin"),
        ("outsider", "member", Role.TRAINER, NotAuthorized, "consortium: caller is not an admin"),
        ("admin", "outsider", Role.TRAINER, InvalidState, "consortium: not an active member"),
        ("admin", "revoked", Role.TRAINER, InvalidState, "consortium: not an active member"),
        ("admin", "member", 0, InvalidArgument, "consortium: no roles"),
        ("admin", "member", 32, InvalidArgument, "consortium: unknown role"),
    ],
)
def test_propose_roles_refused(
    ledger: Ledger, who: str, target: str, roles: int, error: type[Exception], reason: str
) -> None:
    revoke(ledger, ledger.members[3])
    caller = {"member": ledger.members[0], "outsider": ledger.outsider, "admin": ledger.admin}[who]
    address = {"member": ledger.members[1], "outsider": ledger.outsider, "revoked": ledger.members[3]}[target].address
    refused(lambda: state_of(ledger), error, reason, ledger.consortium.as_(caller).propose_roles, address, roles)


def test_propose_roles_malformed_address_is_bad_input(ledger: Ledger) -> None:
    refused(lambda: state_of(ledger), BadInput, None, as_admin(ledger).propose_roles, "0xdeadbeef", Role.TRAINER)


def test_cannot_demote_below_threshold(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    pid = as_admin(ledger).propose_roles(ledger.members[0].address, MEMBER_ROLES)
    assert ledger.consortium.proposal(pid).approvals == 1
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "consortium: would leave fewer admins than the threshold",
        second.approve,
        pid,
    )
    assert ledger.consortium.has_role(ledger.members[0].address, Role.ADMIN)
    assert ledger.consortium.admin_count == 2


# -- propose_revoke ---------------------------------------------------------------


def test_propose_revoke_revokes(ledger: Ledger) -> None:
    target = ledger.members[2].address
    count = ledger.consortium.contract.functions.count_with_role
    assert ledger.chain.call(count(int(Role.TRAINER))) == 4
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_revoke(target)
    c = ledger.consortium
    m = c.member(target)
    assert m.status is MemberStatus.REVOKED
    assert m.revoked_at == block + 1
    assert m.roles == MEMBER_ROLES  # kept for the record, but inert
    assert not c.is_active(target)
    assert not c.has_role(target, Role.TRAINER)
    assert ledger.chain.call(count(int(Role.TRAINER))) == 3
    assert len(c.members()) == 5  # revoked members stay listed
    revoked = [e for e in events_since(ledger, block) if isinstance(e, MemberRevoked)]
    assert len(revoked) == 1
    assert (revoked[0].member, revoked[0].proposal_id) == (target, pid)
    assert c.proposal(pid).kind is ProposalKind.REVOKE


def test_revoke_an_admin(ledger: Ledger) -> None:
    promote(ledger, 0)
    revoke(ledger, ledger.members[0])
    assert ledger.consortium.admin_count == 1


@pytest.mark.parametrize(
    ("who", "target", "error", "reason"),
    [
        ("member", "member", NotAuthorized, "consortium: caller is not an admin"),
        ("outsider", "member", NotAuthorized, "consortium: caller is not an admin"),
        ("admin", "outsider", InvalidState, "consortium: not an active member"),
        ("admin", "revoked", InvalidState, "consortium: not an active member"),
        ("admin", "zero", InvalidState, "consortium: not an active member"),
        ("admin", "self", InvalidState, "consortium: would leave fewer admins than the threshold"),
    ],
)
def test_propose_revoke_refused(ledger: Ledger, who: str, target: str, error: type[Exception], reason: str) -> None:
    revoke(ledger, ledger.members[3])
    caller = {"member": ledger.members[0], "outsider": ledger.outsider, "admin": ledger.admin}[who]
    address = {
        "member": ledger.members[1].address,
        "outsider": ledger.outsider.address,
        "revoked": ledger.members[3].address,
        "zero": ZERO_ADDRESS,
        "self": ledger.admin.address,
    }[target]
    refused(lambda: state_of(ledger), error, reason, ledger.consortium.as_(caller).propose_revoke, address)


def test_propose_revoke_malformed_address_is_bad_input(ledger: Ledger) -> None:
    refused(lambda: state_of(ledger), BadInput, None, as_admin(ledger).propose_revoke, "0x" + "ab" * 19)


def test_cannot_revoke_admins_below_threshold(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    pid = second.propose_revoke(ledger.admin.address)
    assert not ledger.consortium.proposal(pid).executed
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "consortium: would leave fewer admins than the threshold",
        as_admin(ledger).approve,
        pid,
    )
    assert ledger.consortium.is_active(ledger.admin.address)
    # Lowering the threshold first makes it possible.
    as_admin(ledger).propose_threshold(1)
    assert second.approve(ledger.consortium.proposal_count - 1) is True
    assert ledger.consortium.threshold == 1
    assert as_admin(ledger).approve(pid) is True  # an admin may approve its own revocation
    assert not ledger.consortium.is_active(ledger.admin.address)
    assert ledger.consortium.admin_count == 1


# -- propose_threshold ------------------------------------------------------------


def test_propose_threshold_raises_to_two(ledger: Ledger) -> None:
    promote(ledger, 0)
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_threshold(2)
    assert ledger.consortium.threshold == 2
    p = ledger.consortium.proposal(pid)
    assert (p.kind, p.threshold, p.target, p.executed) == (ProposalKind.SET_THRESHOLD, 2, ZERO_ADDRESS, True)
    changed = [e for e in events_since(ledger, block) if isinstance(e, ThresholdChanged)]
    assert len(changed) == 1
    assert (changed[0].old_threshold, changed[0].new_threshold, changed[0].proposal_id) == (1, 2, pid)


@pytest.mark.parametrize(
    ("who", "value", "error", "reason"),
    [
        ("member", 1, NotAuthorized, "consortium: caller is not an admin"),
        ("outsider", 1, NotAuthorized, "consortium: caller is not an admin"),
        ("admin", 0, InvalidArgument, "consortium: threshold must be at least 1"),
        ("admin", 2, InvalidArgument, "consortium: threshold above admin count"),
    ],
)
def test_propose_threshold_refused(ledger: Ledger, who: str, value: int, error: type[Exception], reason: str) -> None:
    caller = {"member": ledger.members[0], "outsider": ledger.outsider, "admin": ledger.admin}[who]
    refused(lambda: state_of(ledger), error, reason, ledger.consortium.as_(caller).propose_threshold, value)


def test_threshold_rechecked_at_execution(ledger: Ledger) -> None:
    """A threshold proposal that became too high while pending cannot execute."""
    promote(ledger, 0)
    promote(ledger, 1)
    as_admin(ledger).propose_threshold(2)
    second, third = member_client(ledger, 0), member_client(ledger, 1)
    raise_pid = as_admin(ledger).propose_threshold(3)
    demote_pid = second.propose_roles(ledger.members[1].address, MEMBER_ROLES)
    assert third.approve(demote_pid) is True
    assert ledger.consortium.admin_count == 2
    refused(
        lambda: state_of(ledger), InvalidArgument, "consortium: threshold above admin count", second.approve, raise_pid
    )
    assert ledger.consortium.threshold == 2
