"""A task's progress as its members and operators follow it: rounds, phases, deadlines, who is late.

Everything is read from the chain (and the task config from the store by its hash), so any member's
workspace gives the same answer.
"""

from __future__ import annotations

from typing import Any

from fedledger.chain.consortium import ConsortiumClient, MemberStatus, Role
from fedledger.chain.task import Phase, TrainingTaskClient
from fedledger.federation.evaluation import task_config
from fedledger.store import BlobStore

__all__ = ["round_outcomes", "task_status"]


def round_outcomes(task: TrainingTaskClient) -> dict[str, list[int]]:
    """Which of the task's rounds so far finalized, aborted, or are still running."""
    outcomes: dict[str, list[int]] = {"finalized": [], "aborted": [], "running": []}
    for r in range(1, task.current_round + 1):
        phase = task.round(r).phase
        key = "finalized" if phase is Phase.FINALIZED else "aborted" if phase is Phase.ABORTED else "running"
        outcomes[key].append(r)
    return outcomes


def task_status(task: TrainingTaskClient, consortium: ConsortiumClient, store: BlobStore) -> dict[str, Any]:
    """The task's state now, as plain JSON-able data (``fedledger task status --json``)."""
    config = task_config(task, store)
    outcomes = round_outcomes(task)
    chain_time = task.chain.timestamp()
    report: dict[str, Any] = {
        "task": task.address,
        "rounds": config.rounds,
        "current_round": task.current_round,
        "rounds_finalized": len(outcomes["finalized"]),
        "rounds_aborted": len(outcomes["aborted"]),
        "aborted": outcomes["aborted"],
        "latest_model": task.latest_model,
        "chain_time": chain_time,
        "done": task.current_round >= config.rounds and not outcomes["running"],
        "round": None,
    }
    if task.current_round == 0:
        return report
    info = task.round(task.current_round)
    active = [m for m in consortium.members() if m.status is MemberStatus.ACTIVE]
    orgs = {m.address: m.org for m in active}
    trainers = [m.address for m in active if m.roles & Role.TRAINER]
    committed = [u.member for u in task.updates(info.round_id)]
    deadline_passed = chain_time > info.commit_deadline
    report["round"] = {
        **info.to_json(),
        "committed": [_label(a, orgs) for a in committed],
        "missing": [_label(a, orgs) for a in trainers if a not in committed],
        "commit_deadline_passed": deadline_passed,
    }
    return report


def _label(address: str, orgs: dict[str, str]) -> str:
    org = orgs.get(address)
    return f"{org} ({address})" if org else address
