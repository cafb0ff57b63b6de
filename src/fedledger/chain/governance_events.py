"""Typed records of governance events: calls the consortium executed on approval, model releases, and what a
governed task did with them (pause, staged and applied parameter changes).

An audit replays them: every ``CallExecuted`` must follow approvals that reached the threshold in force, every
``ParamStaged`` must come from such a call, every ``ParamChanged`` must put the last staged value in force when a
round opens, and every ``ModelReleased`` must name a model the task finalized.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from fedledger.chain.event_record import LedgerEvent

__all__ = ["GOVERNANCE_EVENTS", "CallExecuted", "ModelReleased", "ParamChanged", "ParamStaged", "TaskPaused"]


@dataclass(frozen=True)
class CallExecuted(LedgerEvent):
    proposal_id: int
    target: str
    selector: str  # 0x-hex, the called function's 4-byte selector
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class ModelReleased(LedgerEvent):
    task: str
    round_id: int
    model_hash: str
    proposal_id: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class TaskPaused(LedgerEvent):
    paused: bool  # True: paused; False: resumed
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ParamStaged(LedgerEvent):
    param: int  # fedledger.chain.task_records.GOVERNED_PARAMS
    value: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ParamChanged(LedgerEvent):
    param: int
    old_value: int
    new_value: int
    round_id: int  # the first round that runs with the new value
    source: ClassVar[str] = "TrainingTask"


GOVERNANCE_EVENTS: tuple[type[LedgerEvent], ...] = (CallExecuted, ModelReleased, TaskPaused, ParamStaged, ParamChanged)
