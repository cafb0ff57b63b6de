"""Typed records of the CommitmentBatches contract's events: roots posted, disputes, invalidations, finalizations.

An audit rebuilds each posted batch from its leaves blob and checks it against ``BatchPosted``'s root and count;
``BatchInvalidated`` names what was wrong and who showed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedledger.chain.event_record import LedgerEvent

__all__ = [
    "BATCH_EVENTS",
    "BatchDelivered",
    "BatchFinalized",
    "BatchInvalidated",
    "BatchPosted",
    "LeafRejected",
    "MissingAnswered",
    "MissingDisputed",
]


@dataclass(frozen=True)
class BatchPosted(LedgerEvent):
    batch_id: int
    task: str
    round_id: int
    relay: str
    root: str
    count: int
    leaves_blob: str  # sha256 of the store blob listing the signed commitments
    challenge_deadline: int
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class MissingDisputed(LedgerEvent):
    batch_id: int
    leaf: str
    member: str
    challenger: str
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class MissingAnswered(LedgerEvent):
    batch_id: int
    leaf: str
    index: int
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class BatchInvalidated(LedgerEvent):
    batch_id: int
    reason: str
    challenger: str
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class BatchFinalized(LedgerEvent):
    batch_id: int
    task: str
    round_id: int
    root: str
    count: int
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class LeafRejected(LedgerEvent):
    """A delivered leaf its task refused; ``reason`` is the task's revert reason (its commitment rules)."""

    batch_id: int
    member: str
    index: int  # the leaf's position in the tree
    reason: str
    source: ClassVar[str] = "CommitmentBatches"


@dataclass(frozen=True)
class BatchDelivered(LedgerEvent):
    """A chunk of a finalized batch's leaves, from position ``first``, handed to its task: ``accepted`` became the
    round's next updates, in tree order; ``rejected`` were refused (``LeafRejected``)."""

    batch_id: int
    task: str
    round_id: int
    first: int
    accepted: int
    rejected: int
    source: ClassVar[str] = "CommitmentBatches"


BATCH_EVENTS: tuple[type[LedgerEvent], ...] = (
    BatchPosted,
    MissingDisputed,
    MissingAnswered,
    BatchInvalidated,
    BatchFinalized,
    LeafRejected,
    BatchDelivered,
)
