"""Consortium helpers shared by the contract tests: a snapshot of the consortium's state, accounts, admins, revocation,
and members admitted with every member role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from conftest import MEMBER_ROLES, Ledger, h
from fedledger.chain import ConsortiumClient, MemberStatus, Role

ZERO_ADDRESS = "0x" + "00" * 20
MALFORMED_ADDRESSES = ["0x1234", "not-an-address", "0x" + "zz" * 20, ""]


@dataclass(frozen=True)
class ConsortiumState:
    block: int
    member_count: int
    admin_count: int
    threshold: int
    proposal_count: int
    pending: tuple[Any, ...]


def state_of(ledger: Ledger) -> ConsortiumState:
    """Enough to see any change: no new block means nothing at all was written."""
    c = ledger.consortium
    return ConsortiumState(
        block=ledger.chain.block_number,
        member_count=int(ledger.chain.call(c.contract.functions.member_count())),
        admin_count=c.admin_count,
        threshold=c.threshold,
        proposal_count=c.proposal_count,
        pending=tuple(c.pending_proposals()),
    )


def new_account(tag: str) -> LocalAccount:
    return Account.from_key(h(f"consortium-test-{tag}"))


def as_admin(ledger: Ledger, account: LocalAccount | None = None) -> ConsortiumClient:
    return ledger.consortium.as_(account or ledger.admin)


def member_client(ledger: Ledger, i: int) -> ConsortiumClient:
    return ledger.consortium.as_(ledger.members[i])


def events_since(ledger: Ledger, block: int) -> list[Any]:
    return ledger.consortium.events(from_block=block + 1)


def promote(ledger: Ledger, i: int) -> None:
    """Make members[i] an admin too (threshold must still be 1)."""
    as_admin(ledger).propose_roles(ledger.members[i].address, MEMBER_ROLES | Role.ADMIN)


def two_admins_threshold_two(ledger: Ledger) -> ConsortiumClient:
    """admin + members[0] are admins and two approvals are needed; returns members[0]'s client."""
    promote(ledger, 0)
    as_admin(ledger).propose_threshold(2)
    assert ledger.consortium.threshold == 2
    assert ledger.consortium.admin_count == 2
    return member_client(ledger, 0)


def revoke(ledger: Ledger, account: LocalAccount) -> None:
    as_admin(ledger).propose_revoke(account.address)
    assert ledger.consortium.member(account.address).status is MemberStatus.REVOKED


def admit(ledger: Ledger, n: int, tag: str) -> list[LocalAccount]:
    """``n`` more members with every member role, funded by the admin."""
    accounts = [Account.from_key(h(f"committee-{tag}-{i}-{ledger.chain.kind}")) for i in range(n)]
    for i, account in enumerate(accounts):
        ledger.chain.transfer(ledger.admin, account.address, 10**19)
        ledger.consortium.as_(ledger.admin).propose_admit(account.address, org=f"Extra-{tag}-{i}", roles=MEMBER_ROLES)
    return accounts
