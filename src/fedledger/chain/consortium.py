"""Typed client for the Consortium contract: members, roles and governance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.types import BlockIdentifier

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_address, as_bytes32, hex32
from fedledger.chain.events import ProposalCreated, decode_logs
from fedledger.exceptions import BadInput

__all__ = [
    "MAX_LISTINGS",
    "ConsortiumClient",
    "Member",
    "MemberStatus",
    "Proposal",
    "ProposalKind",
    "Role",
    "TrainerListing",
]

MAX_LISTINGS = 128
"""The most addresses one :meth:`ConsortiumClient.trainer_listings` call asks about (``MAX_LISTINGS`` in the
contract)."""


class Role(IntFlag):
    ADMIN = 1
    TRAINER = 2
    VALIDATOR = 4
    AGGREGATOR = 8
    AUDITOR = 16

    @classmethod
    def parse(cls, text: str | Role | int) -> Role:
        """Roles from ``"trainer,validator"`` (or an int / Role)."""
        if isinstance(text, int):
            return cls(text)
        roles = cls(0)
        for part in filter(None, (p.strip().lower() for p in text.split(","))):
            try:
                roles |= cls[part.upper()]
            except KeyError:
                known = ", ".join(r.name.lower() for r in cls if r.name)
                raise BadInput(f"unknown role {part!r}; known roles: {known}") from None
        return roles

    def names(self) -> list[str]:
        return [r.name.lower() for r in Role if r.name and r in self]


class MemberStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


class ProposalKind(IntEnum):
    ADMIT = 1
    SET_ROLES = 2
    REVOKE = 3
    SET_THRESHOLD = 4
    CALL = 5  # a call to a contract the consortium governs, executed on approval
    RELEASE = 6  # releasing a task's finalized model version


@dataclass(frozen=True)
class TrainerListing:
    """Whether a secure round lists ``member`` (a trainer without a break since before its opening block) and the
    key-agreement key it registered (zero where not listed)."""

    member: str
    listed: bool
    kx_public_key: str


@dataclass(frozen=True)
class Member:
    address: str
    org: str
    roles: Role
    status: MemberStatus
    cert_fingerprint: str
    kx_public_key: str
    store_uri: str
    admitted_at: int
    revoked_at: int

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "org": self.org,
            "roles": self.roles.names(),
            "status": self.status.name.lower(),
            "cert_fingerprint": self.cert_fingerprint,
            "kx_public_key": self.kx_public_key,
            "store_uri": self.store_uri,
            "admitted_at_block": self.admitted_at,
            "revoked_at_block": self.revoked_at,
        }


@dataclass(frozen=True)
class Proposal:
    proposal_id: int
    kind: ProposalKind
    target: str
    roles: Role
    threshold: int
    org: str
    proposer: str
    approvals: int
    executed: bool
    cancelled: bool


_EMPTY32 = b"\x00" * 32
MAX_PAYLOAD = 260  # Consortium.vy's bound on a call proposal's calldata


class ConsortiumClient(ContractClient):
    """The Consortium contract at ``address``, acting as ``account`` for writes."""

    NAME = "Consortium"

    @classmethod
    def deploy(
        cls,
        chain: Chain,
        account: LocalAccount,
        *,
        org: str,
        roles: Role | str = Role.ADMIN,
        cert_fingerprint: str | bytes = _EMPTY32,
        kx_public_key: str | bytes = _EMPTY32,
        store_uri: str = "",
    ) -> ConsortiumClient:
        """Found a consortium with ``account`` as its first admin."""
        address, _ = chain.deploy(
            account,
            cls.NAME,
            org,
            int(Role.parse(roles)),
            as_bytes32(cert_fingerprint, what="certificate fingerprint"),
            as_bytes32(kx_public_key, what="key-agreement public key"),
            store_uri,
        )
        return cls(chain, address, account)

    # -- governance ------------------------------------------------------------

    def propose_admit(
        self,
        member: str,
        *,
        org: str,
        roles: Role | str,
        cert_fingerprint: str | bytes = _EMPTY32,
        kx_public_key: str | bytes = _EMPTY32,
        store_uri: str = "",
    ) -> int:
        """Propose admitting ``member``; returns the proposal id (executed at once when
        the threshold is one)."""
        return self._propose(
            self.contract.functions.propose_admit(
                as_address(member, what="member address"),
                org,
                int(Role.parse(roles)),
                as_bytes32(cert_fingerprint, what="certificate fingerprint"),
                as_bytes32(kx_public_key, what="key-agreement public key"),
                store_uri,
            )
        )

    def propose_roles(self, member: str, roles: Role | str) -> int:
        return self._propose(
            self.contract.functions.propose_roles(as_address(member, what="member address"), int(Role.parse(roles)))
        )

    def propose_revoke(self, member: str) -> int:
        return self._propose(self.contract.functions.propose_revoke(as_address(member, what="member address")))

    def propose_threshold(self, threshold: int) -> int:
        return self._propose(self.contract.functions.propose_threshold(int(threshold)))

    def propose_call(self, target: str, payload: bytes) -> int:
        """Propose calling ``target`` (a contract this consortium governs) with ``payload`` once approved; the target
        refuses a call it would not accept now, with its own reason (see :mod:`fedledger.chain.governance`)."""
        if len(payload) > MAX_PAYLOAD:
            raise BadInput(f"call payload of {len(payload)} bytes: a proposal carries at most {MAX_PAYLOAD}")
        return self._propose(self.contract.functions.propose_call(as_address(target, what="target address"), payload))

    def propose_release(self, task: str, round_id: int) -> int:
        """Propose releasing the model ``task`` finalized in ``round_id``."""
        return self._propose(self.contract.functions.propose_release(as_address(task, what="task address"), round_id))

    def proposal_payload(self, proposal_id: int) -> bytes:
        """A call proposal's calldata, or a release proposal's ABI-encoded (round, model hash); empty otherwise."""
        return bytes(self.chain.call(self.contract.functions.proposal_payload(int(proposal_id))))

    def released_at(self, task: str, model_hash: str | bytes, *, block: BlockIdentifier = "latest") -> int:
        """The block at which a vote released ``task``'s model ``model_hash``; 0 when it was not released."""
        fn = self.contract.functions.released_at(as_address(task, what="task address"), as_bytes32(model_hash))
        return int(self.chain.call(fn, block=block))

    def approve(self, proposal_id: int) -> bool:
        """Approve a proposal; True when this approval executed it."""
        self._send(self.contract.functions.approve(int(proposal_id)))
        return self.proposal(proposal_id).executed

    def cancel(self, proposal_id: int) -> None:
        self._send(self.contract.functions.cancel(int(proposal_id)))

    def update_metadata(self, *, cert_fingerprint: str | bytes, kx_public_key: str | bytes, store_uri: str) -> TxResult:
        return self._send(
            self.contract.functions.update_metadata(
                as_bytes32(cert_fingerprint, what="certificate fingerprint"),
                as_bytes32(kx_public_key, what="key-agreement public key"),
                store_uri,
            )
        )

    # -- reads -----------------------------------------------------------------

    def member(self, address: str, *, block: BlockIdentifier = "latest") -> Member:
        address = as_address(address, what="member address")
        raw = self.chain.call(self.contract.functions.members(address), block=block)
        return Member(
            address=address,
            org=raw[0],
            roles=Role(raw[1]),
            status=MemberStatus(raw[2]),
            cert_fingerprint=hex32(raw[3]),
            kx_public_key=hex32(raw[4]),
            store_uri=raw[5],
            admitted_at=raw[6],
            revoked_at=raw[7],
        )

    def members(self, *, block: BlockIdentifier = "latest") -> list[Member]:
        """Every address ever admitted, active or revoked, in admission order."""
        count = self.chain.call(self.contract.functions.member_count(), block=block)
        return [
            self.member(self.chain.call(self.contract.functions.member_at(i), block=block), block=block)
            for i in range(count)
        ]

    def trainer_since(self, address: str, *, block: BlockIdentifier = "latest") -> int:
        """The block from which ``address`` has held the trainer role without a break (0: it does not now)."""
        return int(self.chain.call(self.contract.functions.trainer_since(as_address(address)), block=block))

    def trainers_before(self, before_block: int, *, block: BlockIdentifier = "latest") -> list[str]:
        """The trainers a secure round opened at ``before_block`` lists (trainers without a break since an earlier
        block), in admission order, in one call."""
        raw = self.chain.call(self.contract.functions.trainers_before(int(before_block)), block=block)
        return [str(a) for a in raw]

    def trainer_listings(
        self, members: Sequence[str], before_block: int, *, block: BlockIdentifier = "latest"
    ) -> list[TrainerListing]:
        """Whether a secure round opened at ``before_block`` lists each of ``members``, with its registered
        key-agreement key (zero where not listed): at most :data:`MAX_LISTINGS` of them, in one call. Read at
        ``block=before_block`` it gives the keys the round uses."""
        if len(members) > MAX_LISTINGS:
            raise BadInput(f"{len(members)} members asked about, at most {MAX_LISTINGS} a call")
        fn = self.contract.functions.trainer_listings([as_address(m) for m in members], int(before_block))
        raw = self.chain.call(fn, block=block)
        return [TrainerListing(str(m), bool(r[0]), hex32(r[1])) for m, r in zip(members, raw, strict=True)]

    def is_active(self, address: str, *, block: BlockIdentifier = "latest") -> bool:
        return bool(self.chain.call(self.contract.functions.is_active(as_address(address)), block=block))

    def has_role(self, address: str, role: Role | str, *, block: BlockIdentifier = "latest") -> bool:
        fn = self.contract.functions.has_role(as_address(address), int(Role.parse(role)))
        return bool(self.chain.call(fn, block=block))

    @property
    def threshold(self) -> int:
        return int(self.chain.call(self.contract.functions.threshold()))

    @property
    def admin_count(self) -> int:
        return int(self.chain.call(self.contract.functions.admin_count()))

    @property
    def proposal_count(self) -> int:
        return int(self.chain.call(self.contract.functions.proposal_count()))

    def proposal(self, proposal_id: int) -> Proposal:
        raw = self.chain.call(self.contract.functions.proposals(int(proposal_id)))
        return Proposal(
            proposal_id=int(proposal_id),
            kind=ProposalKind(raw[0]) if raw[0] else ProposalKind.ADMIT,
            target=raw[1],
            roles=Role(raw[2]),
            threshold=raw[3],
            org=raw[4],
            proposer=raw[8],
            approvals=raw[9],
            executed=raw[10],
            cancelled=raw[11],
        )

    def pending_proposals(self) -> list[Proposal]:
        proposals = (self.proposal(i) for i in range(self.proposal_count))
        return [p for p in proposals if not p.executed and not p.cancelled]

    # -- internals -------------------------------------------------------------

    def _propose(self, fn: Any) -> int:
        result = self._send(fn)
        for event in decode_logs(self.NAME, list(result.receipt["logs"]), self.chain.w3.codec):
            if isinstance(event, ProposalCreated):
                return event.proposal_id
        raise AssertionError("propose call emitted no ProposalCreated event")  # pragma: no cover
