"""Typed records of the Incentives contract's events: funding, stake, contributions, credits, claims, slashes.

An audit re-derives every payout from them: each ``RewardCredited`` names the round, the update, its contribution
(the median of the ``ContributionsPosted`` values for it) and the amount credited; ``RoundSettled`` the round's
budget and total contribution; ``Claimed`` and ``Slashed`` what left a member's earnings or stake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedledger.chain.event_record import LedgerEvent

__all__ = [
    "INCENTIVE_EVENTS",
    "Claimed",
    "ContributionsPosted",
    "Funded",
    "RewardCredited",
    "RoundSettled",
    "Slashed",
    "StakeDeposited",
    "StakeWithdrawn",
    "TaskBound",
    "TaskEnded",
]


@dataclass(frozen=True)
class TaskBound(LedgerEvent):
    task: str
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class Funded(LedgerEvent):
    funder: str
    amount: int
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class StakeDeposited(LedgerEvent):
    member: str
    amount: int
    stake: int  # the member's stake after the deposit
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class ContributionsPosted(LedgerEvent):
    round_id: int
    validator: str
    indices: tuple[int, ...]  # accepted updates, increasing
    values: tuple[int, ...]  # contribution values, 0..10000
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class RewardCredited(LedgerEvent):
    round_id: int
    member: str
    index: int
    contribution: int  # the median of the values posted for the update (0: none posted)
    amount: int
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class RoundSettled(LedgerEvent):
    round_id: int
    budget: int  # min(reward per round, pool) when the round settled
    allocated: int  # credited in total (the budget less rounding dust; 0 with no contribution)
    total_contribution: int
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class Claimed(LedgerEvent):
    member: str
    amount: int
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class Slashed(LedgerEvent):
    member: str
    amount: int
    reason: str  # "harmful update" or "distrusted validator"
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class TaskEnded(LedgerEvent):
    ended_at: int
    source: ClassVar[str] = "Incentives"


@dataclass(frozen=True)
class StakeWithdrawn(LedgerEvent):
    member: str
    amount: int
    source: ClassVar[str] = "Incentives"


INCENTIVE_EVENTS: tuple[type[LedgerEvent], ...] = (
    TaskBound,
    Funded,
    StakeDeposited,
    ContributionsPosted,
    RewardCredited,
    RoundSettled,
    Claimed,
    Slashed,
    TaskEnded,
    StakeWithdrawn,
)
