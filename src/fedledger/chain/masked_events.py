"""Typed records of the masked-check events of secure rounds (``SecureTrainingTask``'s ``masked_outcomes``).

``CheckCommittee`` records the public seed a round's committee was drawn with (the committee itself is
``check_committee(round)``); each committee member's outcome or abort is ``CheckOutcomePosted`` or
``CheckAbortPosted``; ``ChecksAccepted`` is the outcome a strict majority posted, whose set the round
aggregates; ``CheckerSilent`` names a committee member that posted nothing in the phase.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedledger.chain.event_record import LedgerEvent

__all__ = [
    "MASKED_EVENTS",
    "CheckAbortPosted",
    "CheckCommittee",
    "CheckOutcomePosted",
    "CheckerSilent",
    "ChecksAccepted",
]


@dataclass(frozen=True)
class CheckCommittee(LedgerEvent):
    round_id: int
    seed: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class CheckOutcomePosted(LedgerEvent):
    round_id: int
    checker: str
    outcome_hash: str
    accepted_mask: int  # the set's first word (bits 0..255)
    votes: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class CheckAbortPosted(LedgerEvent):
    round_id: int
    checker: str
    abort_hash: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ChecksAccepted(LedgerEvent):
    round_id: int
    outcome_hash: str
    accepted_mask: int
    num_accepted: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class CheckerSilent(LedgerEvent):
    round_id: int
    checker: str
    source: ClassVar[str] = "TrainingTask"


MASKED_EVENTS = (CheckCommittee, CheckOutcomePosted, CheckAbortPosted, ChecksAccepted, CheckerSilent)
