"""Training-task helpers shared by the contract tests: a snapshot of the task's state, members' clients, and a round
driven to each phase."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conftest import Ledger, h
from fedledger.chain import Phase, Role, RoundInfo, TrainingTaskClient


@dataclass(frozen=True)
class TaskState:
    block: int
    current_round: int
    latest_model: str
    round: RoundInfo
    history: dict[int, str]


def state_of(ledger: Ledger) -> TaskState:
    """Enough to see any change: no new block means nothing at all was written."""
    task = ledger.task
    current = task.current_round
    return TaskState(
        block=ledger.chain.block_number,
        current_round=current,
        latest_model=task.latest_model,
        round=task.round(current),
        history=task.model_history(),
    )


def t(ledger: Ledger, i: int) -> TrainingTaskClient:
    return ledger.member_task(i)


def outsider(ledger: Ledger) -> TrainingTaskClient:
    return ledger.task.as_(ledger.outsider)


def admin(ledger: Ledger) -> TrainingTaskClient:
    return ledger.task.as_(ledger.admin)


def revoke(ledger: Ledger, i: int) -> TrainingTaskClient:
    """Revoke members[i]; returns its task client."""
    ledger.consortium.as_(ledger.admin).propose_revoke(ledger.members[i].address)
    assert not ledger.consortium.is_active(ledger.members[i].address)
    return t(ledger, i)


def set_roles(ledger: Ledger, i: int, roles: Role) -> TrainingTaskClient:
    ledger.consortium.as_(ledger.admin).propose_roles(ledger.members[i].address, roles)
    return t(ledger, i)


def events_since(ledger: Ledger, block: int, kind: type | None = None) -> list[Any]:
    events = ledger.task.events(from_block=block + 1)
    return [e for e in events if kind is None or isinstance(e, kind)]


def open_with_commits(ledger: Ledger, n: int = 4) -> int:
    r = t(ledger, 0).open_round()
    for i in range(n):
        t(ledger, i).commit_update(r, h(f"update-{r}-{i}"), 100 + i)
    return r


def honest_scores(i: int, n: int = 4, score: int = 9000) -> list[int | None]:
    return [None if j == i else score for j in range(n)]


def to_validation(ledger: Ledger) -> int:
    """Round with 4 commitments, in validation."""
    r = open_with_commits(ledger)
    assert t(ledger, 0).close_commits(r) is Phase.VALIDATE
    return r


def to_aggregation(ledger: Ledger) -> tuple[int, int]:
    """Round with 4 accepted updates, in aggregation; returns (round, accepted mask)."""
    r = to_validation(ledger)
    for i in range(4):
        t(ledger, i).submit_scores(r, honest_scores(i))
    assert t(ledger, 0).close_validation(r) is Phase.AGGREGATE
    return r, ledger.task.round(r).accepted_mask


def finalize(ledger: Ledger, model: str) -> int:
    r, mask = to_aggregation(ledger)
    assert t(ledger, 0).propose_aggregate(r, model, mask) is False  # one of two: the quorum is not reached yet
    assert t(ledger, 1).propose_aggregate(r, model, mask)
    return r
