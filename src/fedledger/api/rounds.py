"""A task's rounds as the API serves them: phases, commitments, scores, verdicts with reasons, aggregate proposals
and aborts, read from the task contract and its events.

Acceptance is the contract's: the accepted set is what the contract derived (``RoundInfo.accepted``); the reason
given for a rejection restates the contract's rule (:func:`fedledger.federation.rules.verdict`) over the scores the
contract kept, and names any flag an aggregator raised on the update.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from fedledger.chain.events import (
    AggregateProposed,
    LedgerEvent,
    RoundAborted,
    ScoresSubmitted,
    UnmaskClosed,
    UpdateCommitted,
    UpdateFlagged,
    ValidationClosed,
)
from fedledger.chain.masked_events import ChecksAccepted
from fedledger.chain.task import Phase, TaskKind, TrainingTaskClient
from fedledger.chain.task_records import RoundInfo, indices_of
from fedledger.federation.rules import verdict
from fedledger.privacy.accounting import micro_to_epsilon

__all__ = ["RoundEvents", "read_rounds", "rejection_reason"]


def rejection_reason(scores: Sequence[int], threshold: int, min_approvals: int) -> tuple[str, int | None]:
    """Why the contract's rule rejects an update with these scores, and its deciding score (None: nobody scored)."""
    outcome = verdict(scores, threshold, min_approvals)
    if outcome.score is None:
        return "no validator scored it", None
    which = f"score of its {min_approvals}-th most favourable validator" if min_approvals else "median validator score"
    return f"{which} {outcome.score} below the threshold {threshold} (scale 0-10000)", outcome.score


class RoundEvents:
    """A task's round events, grouped by round (one read of the event log for any number of rounds)."""

    def __init__(self, events: Sequence[LedgerEvent]) -> None:
        self.by_round: dict[int, list[LedgerEvent]] = defaultdict(list)
        for e in events:
            round_id = getattr(e, "round_id", None)
            if isinstance(round_id, int):
                self.by_round[round_id].append(e)

    def of(self, round_id: int, kind: type[Any]) -> list[Any]:
        return [e for e in self.by_round.get(round_id, []) if isinstance(e, kind)]


def read_rounds(task: TrainingTaskClient, round_ids: Sequence[int], orgs: Mapping[str, str]) -> list[dict[str, Any]]:
    """The rounds ``round_ids`` of ``task`` (each opened already), as :class:`~fedledger.api.schemas.RoundModel`
    data; ``orgs`` names members by address."""
    if not round_ids:
        return []
    params = task.params()
    secure = task.kind is TaskKind.SECURE
    events = RoundEvents(task.events())
    rows = []
    for r in round_ids:
        info = task.round(r)
        rows.append(_round(task, info, events, orgs, secure, params.acceptance_threshold, params.min_approvals))
    return rows


def _org(orgs: Mapping[str, str], address: str) -> str:
    return orgs.get(address, "")


def _round(
    task: TrainingTaskClient,
    info: RoundInfo,
    events: RoundEvents,
    orgs: Mapping[str, str],
    secure: bool,
    threshold: int,
    min_approvals: int,
) -> dict[str, Any]:
    r = info.round_id
    commits: list[UpdateCommitted] = events.of(r, UpdateCommitted)
    decided = bool(events.of(r, ValidationClosed) or events.of(r, UnmaskClosed) or events.of(r, ChecksAccepted))
    decided = decided or info.phase is Phase.FINALIZED
    aborts: list[RoundAborted] = events.of(r, RoundAborted)
    scores = [
        {"validator": e.validator, "org": _org(orgs, e.validator), "index": index, "score": score}
        for e in events.of(r, ScoresSubmitted)
        for index, score in zip(e.indices, e.scores, strict=True)
    ]
    return {
        "round": r,
        "phase": info.phase.name.lower(),
        "screened": not secure or task.params().committee_size > 0,  # a secure task with masked checks screens
        "global_model": info.global_model,
        "model_hash": info.model_hash if info.phase is Phase.FINALIZED else None,
        "commit_deadline": info.commit_deadline,
        "validate_deadline": info.validate_deadline,
        "aggregate_deadline": info.aggregate_deadline,
        "decided": decided,
        "commitments": [
            {
                "index": c.index,
                "member": c.member,
                "org": _org(orgs, c.member),
                "update_hash": c.update_hash,
                "num_examples": c.num_examples,
                "dataset_id": c.dataset_id,
                "epsilon": micro_to_epsilon(c.epsilon_micro),
                "block": c.block_number,
            }
            for c in commits
        ],
        "scores": scores,
        "verdicts": _verdicts(task, info, commits, events, orgs, secure, threshold, min_approvals) if decided else [],
        "proposals": [
            {
                "aggregator": e.aggregator,
                "org": _org(orgs, e.aggregator),
                "model_hash": e.model_hash,
                "accepted": indices_of(e.accepted_mask),
                "votes": e.votes,
                "block": e.block_number,
            }
            for e in events.of(r, AggregateProposed)
        ],
        "abort_reason": aborts[0].reason if aborts else None,
    }


def _verdicts(
    task: TrainingTaskClient,
    info: RoundInfo,
    commits: Sequence[UpdateCommitted],
    events: RoundEvents,
    orgs: Mapping[str, str],
    secure: bool,
    threshold: int,
    min_approvals: int,
) -> list[dict[str, Any]]:
    """Each committed update's outcome once the accepted set is fixed, with the reason for a rejection."""
    flags: dict[int, str] = {}
    for flag in events.of(info.round_id, UpdateFlagged):
        flags.setdefault(flag.index, flag.reason)
    accepted = set(info.accepted)
    rows = []
    for c in commits:
        reason: str | None = None
        deciding: int | None = None
        if c.index not in accepted:
            if secure:
                reason = flags.get(c.index, "left out of the unmasked sum")
            else:
                reason, deciding = rejection_reason(task.scores_of(info.round_id, c.index), threshold, min_approvals)
                if deciding is not None and deciding >= threshold:
                    reason = "not in the accepted set the contract derived"
                if c.index in flags:
                    reason += f"; flagged: {flags[c.index]}"
        rows.append(
            {
                "index": c.index,
                "member": c.member,
                "org": _org(orgs, c.member),
                "accepted": c.index in accepted,
                "reason": reason,
                "deciding_score": deciding,
            }
        )
    return rows
