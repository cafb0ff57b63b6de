"""Typed client for the DataRegistry contract: datasets, their purposes of processing, erasures.

Purposes are named by short canonical strings (``model-training:heart-disease``) and
stored on chain as the keccak256 of the name (:func:`purpose_id`): a fixed-size id that
any member recomputes from the name, so the contract compares ids without holding text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.types import BlockIdentifier

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_address, as_bytes32, hex32, name_id
from fedledger.chain.events import DatasetRegistered, decode_logs
from fedledger.exceptions import BadInput

__all__ = [
    "MAX_PURPOSES",
    "DataRegistryClient",
    "DatasetInfo",
    "DatasetStatus",
    "Purpose",
    "purpose_id",
    "purpose_ids",
]

MAX_PURPOSES = 16

# A purpose given by its canonical name, or by its 32-byte id.
Purpose = str | bytes


def purpose_id(purpose: Purpose) -> bytes:
    """The on-chain id of a purpose: keccak256 of its canonical name (or the 32-byte id itself)."""
    return name_id(purpose, what="purpose", example="model-training:heart-disease")


def purpose_ids(purposes: Sequence[Purpose]) -> list[bytes]:
    """Ids of a dataset's purposes: at least one, at most :data:`MAX_PURPOSES`, no repeats."""
    if isinstance(purposes, (str, bytes)):
        raise BadInput("purposes must be a list of names, not one string")
    ids = [purpose_id(p) for p in purposes]
    if not ids:
        raise BadInput("a dataset needs at least one purpose of processing")
    if len(ids) > MAX_PURPOSES:
        raise BadInput(f"a dataset has at most {MAX_PURPOSES} purposes, got {len(ids)}")
    if len(set(ids)) != len(ids):
        raise BadInput(f"duplicate purposes in {list(purposes)!r}")
    return ids


class DatasetStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    REVOKED = 2


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset as the contract holds it (hashes as 0x-hex)."""

    dataset_id: int
    owner: str
    status: DatasetStatus
    commitment: str
    schema_hash: str
    classification_hash: str
    policy_hash: str
    rows: int
    erasures: int
    registered_at: int
    purposes: tuple[str, ...]

    @property
    def active(self) -> bool:
        return self.status is DatasetStatus.ACTIVE

    def allows(self, purpose: Purpose) -> bool:
        return self.active and hex32(purpose_id(purpose)) in self.purposes

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.name.lower()
        data["purposes"] = list(self.purposes)
        return data


class DataRegistryClient(ContractClient):
    """The DataRegistry contract at ``address``, acting as ``account`` for writes."""

    NAME = "DataRegistry"

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str) -> DataRegistryClient:
        """Create the registry of ``consortium`` (``account`` must be one of its admins)."""
        address, _ = chain.deploy(account, cls.NAME, as_address(consortium, what="consortium address"))
        return cls(chain, address, account)

    # -- writes ----------------------------------------------------------------------

    def register_dataset(
        self,
        *,
        commitment: str | bytes,
        schema_hash: str | bytes,
        classification_hash: str | bytes,
        policy_hash: str | bytes,
        purposes: Sequence[Purpose],
        rows: int,
    ) -> int:
        """Register a dataset owned by this client's account; returns its id."""
        result = self._send(
            self.contract.functions.register_dataset(
                as_bytes32(commitment, what="dataset commitment"),
                as_bytes32(schema_hash, what="schema hash"),
                as_bytes32(classification_hash, what="classification hash"),
                as_bytes32(policy_hash, what="policy hash"),
                purpose_ids(purposes),
                _count(rows, "rows"),
            )
        )
        for event in decode_logs(self.NAME, list(result.receipt["logs"]), self.chain.w3.codec):
            if isinstance(event, DatasetRegistered):
                return event.dataset_id
        raise AssertionError("register_dataset emitted no DatasetRegistered event")  # pragma: no cover

    def update_commitment(self, dataset_id: int, *, commitment: str | bytes, rows: int) -> TxResult:
        """Commit to a new version of the dataset's rows."""
        return self._send(
            self.contract.functions.update_commitment(
                _count(dataset_id, "dataset id"),
                as_bytes32(commitment, what="dataset commitment"),
                _count(rows, "rows"),
            )
        )

    def set_purposes(self, dataset_id: int, purposes: Sequence[Purpose]) -> TxResult:
        """Replace the dataset's purposes of processing (consent given or withdrawn)."""
        return self._send(self.contract.functions.set_purposes(_count(dataset_id, "dataset id"), purpose_ids(purposes)))

    def record_erasure(self, dataset_id: int, subject_hash: str | bytes) -> TxResult:
        """Record on the ledger that a subject's values in the dataset were erased."""
        return self._send(
            self.contract.functions.record_erasure(
                _count(dataset_id, "dataset id"), as_bytes32(subject_hash, what="subject hash")
            )
        )

    def revoke_dataset(self, dataset_id: int) -> TxResult:
        """Withdraw the dataset for good."""
        return self._send(self.contract.functions.revoke_dataset(_count(dataset_id, "dataset id")))

    # -- reads -----------------------------------------------------------------------

    @property
    def consortium_address(self) -> str:
        return str(self.chain.call(self.contract.functions.consortium()))

    @property
    def dataset_count(self) -> int:
        return int(self.chain.call(self.contract.functions.dataset_count()))

    def dataset(self, dataset_id: int, *, block: BlockIdentifier = "latest") -> DatasetInfo:
        """A dataset's record; :class:`InvalidArgument` (the contract's revert) for an unknown id."""
        dataset_id = _count(dataset_id, "dataset id")
        raw = self.chain.call(self.contract.functions.dataset(dataset_id), block=block)
        purposes = self.chain.call(self.contract.functions.purposes_of(dataset_id), block=block)
        return DatasetInfo(
            dataset_id=dataset_id,
            owner=raw[0],
            status=DatasetStatus(raw[1]),
            commitment=hex32(raw[2]),
            schema_hash=hex32(raw[3]),
            classification_hash=hex32(raw[4]),
            policy_hash=hex32(raw[5]),
            rows=raw[6],
            erasures=raw[7],
            registered_at=raw[8],
            purposes=tuple(hex32(p) for p in purposes),
        )

    def rows_of(self, dataset_id: int, *, block: BlockIdentifier = "latest") -> int:
        """The number of rows the dataset's current commitment covers; :class:`InvalidArgument` for an unknown id."""
        return int(self.chain.call(self.contract.functions.dataset(_count(dataset_id, "dataset id")), block=block)[6])

    def datasets_of(self, owner: str, *, block: BlockIdentifier = "latest") -> list[int]:
        """Ids of every dataset ``owner`` registered, in registration order."""
        fn = self.contract.functions.datasets_of(as_address(owner, what="owner address"))
        return [int(i) for i in self.chain.call(fn, block=block)]

    def allows(self, dataset_id: int, purpose: Purpose, *, block: BlockIdentifier = "latest") -> bool:
        """Whether the dataset exists, is active and allows ``purpose``."""
        fn = self.contract.functions.allows(_count(dataset_id, "dataset id"), purpose_id(purpose))
        return bool(self.chain.call(fn, block=block))

    def owner_of(self, dataset_id: int, *, block: BlockIdentifier = "latest") -> str:
        """The dataset's owner; the zero address when it does not exist."""
        return str(self.chain.call(self.contract.functions.owner_of(_count(dataset_id, "dataset id")), block=block))

    def is_erased(self, dataset_id: int, subject_hash: str | bytes) -> bool:
        fn = self.contract.functions.is_erased(
            _count(dataset_id, "dataset id"), as_bytes32(subject_hash, what="subject hash")
        )
        return bool(self.chain.call(fn))


def _count(value: int, what: str) -> int:
    """A non-negative integer for a uint256 argument; :class:`BadInput` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
    return value
