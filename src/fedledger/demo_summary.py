"""What ``fedledger demo`` reports about each round and the whole run, read back from the chain and the store:
each round's accuracy, accepted and rejected updates (with the contract's reasons), how each malicious hospital was
kept out of the model, and each hospital's declared privacy spend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.events import RoundAborted, UpdateFlagged
from fedledger.chain.task import Phase, RoundInfo, TrainingTaskClient
from fedledger.federation import TaskConfig
from fedledger.federation.modes import DpMode
from fedledger.federation.rules import verdict
from fedledger.learning import decode_model, evaluate
from fedledger.privacy.accounting import micro_to_epsilon
from fedledger.store import BlobStore

__all__ = ["kept_out", "privacy_summary", "round_summary", "screening_summary", "secure_round_summary"]


def privacy_summary(config: TaskConfig, task: TrainingTaskClient, nodes: Sequence[Any]) -> dict[str, Any]:
    """The budget, the mode and each member's declared cumulative spend, as the contract holds it; in record-level
    mode also the mechanism each member's rounds ran (its noise multiplier depends on its number of records)."""
    privacy = config.privacy
    if privacy is None:
        return {"dp": False, "mode": None, "budget_epsilon": None, "delta": None, "members": []}
    members = []
    for node in nodes:
        micro = task.privacy_spent(node.account.address)
        row: dict[str, Any] = {"member": node.name, "epsilon": micro_to_epsilon(micro), "micro_epsilon": micro}
        if privacy.mode is DpMode.SAMPLE and node.data is not None:
            mechanism = privacy.mechanism(num_examples=len(node.data.y_train))
            row.update(
                noise_multiplier=mechanism.noise_multiplier,
                sample_rate=mechanism.sample_rate,
                steps_per_round=mechanism.steps,
            )
        members.append(row)
    summary: dict[str, Any] = {
        "dp": True,
        "mode": privacy.mode,
        "unit": "record" if privacy.mode is DpMode.SAMPLE else "member",
        "budget_epsilon": privacy.budget_epsilon,
        "delta": privacy.delta,
        "accountant": "dp-accounting RDP, Poisson-subsampled Gaussian",
        "noise_multiplier": privacy.noise_multiplier,
        "clip_norm": privacy.clip_norm,
        "noise_shares": config.dp_noise_shares,
        "members": members,
        "max_epsilon": max((m["epsilon"] for m in members), default=0.0),
    }
    if privacy.mode is DpMode.SAMPLE:
        summary.update(max_grad_norm=privacy.max_grad_norm, batch_size=privacy.batch_size)
    return summary


def kept_out(
    task: TrainingTaskClient, r: int, row: dict[str, Any], malicious: Sequence[str], names: dict[str, str]
) -> dict[str, str]:
    """How each malicious hospital was kept out of round ``r``'s model: its update rejected by the validators, or
    the hospital left out of the round by its trainer reputation; "accepted" if its update is in the model."""
    rejected = {rej["address"] for rej in row["rejected"]}
    accepted = set(row["accepted"])
    outcome: dict[str, str] = {}
    for address in malicious:
        name = names.get(address, address)
        if name in accepted:
            outcome[name] = "accepted"
        elif address in rejected:
            outcome[name] = "rejected"
        elif task.left_out_as_trainer(r, address):
            outcome[name] = "left out (trainer reputation)"
        else:
            outcome[name] = "no update"
    return outcome


def screening_summary(rounds: Sequence[dict[str, Any]], malicious: Sequence[str], *, secure: bool) -> dict[str, Any]:
    """Whether every malicious hospital was kept out of every round's model (validated rounds only: under secure
    aggregation nothing is screened)."""
    if secure:
        return {"per_update_validation": False, "attackers_kept_out_every_round": False, "rounds": []}
    per_round = [{"round": row["round"], **row.get("malicious_kept_out", {})} for row in rounds]
    every = bool(rounds) and all(
        outcome != "accepted" for row in rounds for outcome in row.get("malicious_kept_out", {}).values()
    )
    return {
        "per_update_validation": True,
        "malicious": len(malicious),
        "attackers_kept_out_every_round": every,
        "rounds": per_round,
    }


def round_summary(
    task: TrainingTaskClient,
    store: BlobStore,
    info: RoundInfo,
    names: dict[str, str],
    evaluator: Any,
    X_test: npt.NDArray[Any],
    y_test: npt.NDArray[Any],
    threshold: int,
) -> dict[str, Any]:
    r = info.round_id
    model_hash = info.model_hash if info.phase is Phase.FINALIZED else info.global_model
    params = decode_model(store.get(model_hash.removeprefix("0x"))).params
    accuracy = float(evaluate(evaluator, params, X_test, y_test))
    updates = task.updates(r)
    flags: dict[int, list[str]] = {}
    first_block = min((u.block_number for u in updates), default=0)
    for event in task.events(from_block=first_block):
        if isinstance(event, UpdateFlagged) and event.round_id == r:
            flags.setdefault(event.index, []).append(event.reason)
    accepted = set(info.accepted)
    rejected = []
    min_approvals = task.params().min_approvals
    scores: dict[str, int | None] = {}
    for u in updates:
        values = task.scores_of(r, u.index)  # the contract keeps no abstentions
        scores[names.get(u.member, u.member)] = verdict(values, threshold, min_approvals).score if values else None
        if u.index in accepted:
            continue
        reason = _rejection_reason(values, threshold, min_approvals)
        if u.index in flags:
            reason += f"; flagged: {flags[u.index][0]}"
        rejected.append(
            {"member": names.get(u.member, u.member), "address": u.member, "index": u.index, "reason": reason}
        )
    return {
        "round": r,
        "phase": info.phase.name.lower(),
        "model_hash": info.model_hash if info.phase is Phase.FINALIZED else None,
        "accuracy": round(accuracy, 4),
        "updates": len(updates),
        "accepted": sorted(names.get(updates[i].member, updates[i].member) for i in accepted),
        "rejected": rejected,
        # The score that decided each update (its validators' median, 0-10000), as the contract compared it.
        "scores": scores,
    }


def secure_round_summary(
    task: TrainingTaskClient,
    store: BlobStore,
    info: RoundInfo,
    names: dict[str, str],
    evaluator: Any,
    X_test: npt.NDArray[np.float64],
    y_test: npt.NDArray[np.int64],
) -> dict[str, Any]:
    """A secure round: every masked input that unmasked is in the model, unscreened; only malformed
    blobs (flagged by the aggregators) and absent members stay out."""
    r = info.round_id
    finalized = info.phase is Phase.FINALIZED
    model_hash = info.model_hash if finalized else info.global_model
    params = decode_model(store.get(model_hash.removeprefix("0x"))).params
    accuracy = float(evaluate(evaluator, params, X_test, y_test))
    updates = task.updates(r)
    first_block = min((u.block_number for u in updates), default=0)
    dropped: dict[int, str] = {}
    abort_reason = None
    for event in task.events(from_block=first_block):
        if isinstance(event, UpdateFlagged) and event.round_id == r:
            dropped.setdefault(event.index, event.reason)
        elif isinstance(event, RoundAborted) and event.round_id == r:
            abort_reason = event.reason
    included = [u for u in updates if u.index not in dropped] if finalized else []
    rejected = [
        {"member": names.get(u.member, u.member), "address": u.member, "index": u.index, "reason": dropped[u.index]}
        for u in updates
        if u.index in dropped
    ]
    return {
        "round": r,
        "phase": info.phase.name.lower(),
        "model_hash": info.model_hash if finalized else None,
        "accuracy": round(accuracy, 4),
        "updates": len(updates),
        "accepted": sorted(names.get(u.member, u.member) for u in included),
        "rejected": rejected,
        "screened": False,
        "abort_reason": abort_reason,
    }


def _rejection_reason(scores: list[int], threshold: int, min_approvals: int) -> str:
    """Why the contract rejected an update with these scores, in its own terms."""
    if not scores:
        return "no validator scored it"
    deciding = verdict(scores, threshold, min_approvals).score
    which = f"score of its {min_approvals}-th most favourable validator" if min_approvals else "median validator score"
    return f"{which} {deciding} below the threshold {threshold} (scale 0-10000)"
