"""Secure rounds with masked checks: what members, the committee, aggregators and auditors derive from chain and store.

Under ``masked_checks`` a secure round runs OPEN -> VALIDATE -> AGGREGATE on ``SecureTrainingTask``:

- each trainer shares its update to the round's check committee (drawn by the contract at opening) with
  :func:`fedledger.privacy.masked_checks.share_update`, stores the bundle and commits its sha256 as its update hash;
- each committee member runs its MPyC party on every committed bundle
  (:mod:`fedledger.privacy.masked_party`, :mod:`fedledger.privacy.masked_committee`) and posts the outcome: the set
  that passed and the sha256 of the outcome blob (:func:`outcome_blob`: verdicts, the revealed example-weighted sum
  of the passing updates, the transcript the audit re-checks), or an abort record when its checks could not finish;
- the contract aggregates the set a strict majority posted, and any aggregator turns the outcome's sum into the next
  model (:func:`masked_aggregate`): the FedAvg of the passing updates, bit for bit, or with ``masked_clip_levels``
  their centered clipping around the previous round's global update (:func:`clip_center`).

Everything here is a pure function of the chain and the store, so every party derives the same context, parameters,
bundles, reference and model.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.consortium import ConsortiumClient
from fedledger.chain.task import Phase, TrainingTaskClient, UpdateInfo
from fedledger.exceptions import AggregationError, BadInput, FedLedgerError
from fedledger.federation.config import TaskConfig
from fedledger.federation.rules import next_model
from fedledger.learning import Params, decode_model
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import Tensors
from fedledger.privacy.masked_checks import CheckParams
from fedledger.privacy.masked_clipping import clipped_update
from fedledger.privacy.masked_committee import CheckOutcome
from fedledger.store import BlobStore

__all__ = [
    "ABORT_FORMAT",
    "OUTCOME_FORMAT",
    "MaskedOutcome",
    "accepted_mask_of",
    "check_params",
    "clip_center",
    "committee_keys",
    "flatten",
    "masked_aggregate",
    "masked_bound",
    "masked_context",
    "outcome_blob",
    "read_bundles",
    "read_outcome",
    "reference_update",
]

OUTCOME_FORMAT = "fedledger-masked-outcome/1"
ABORT_FORMAT = "fedledger-masked-abort/1"
_CONTEXT_LABEL = b"fedledger/masked-round/1"


def masked_context(task: str, round_id: int) -> bytes:
    """The round context every share bundle and challenge is bound to: task and round."""
    return hashlib.sha256(
        _CONTEXT_LABEL + bytes.fromhex(task.lower().removeprefix("0x")) + round_id.to_bytes(8, "big")
    ).digest()


def masked_bound(norm_bound: float, length: int, frac_bits: int) -> float:
    """The L2 bound the committee checks for a float bound: plus half a fixed-point unit per coordinate, so an
    update clipped to exactly the bound still passes once each coordinate is rounded to the fixed point."""
    return float(norm_bound) + 0.5 * math.sqrt(length) * 2.0**-frac_bits


def check_params(config: TaskConfig, length: int) -> CheckParams:
    """The round's public check parameters: the task's bound (default: its update norm bound), cosine, reference,
    committee and centered clipping (its radius by default half the clip norm, validated centered clipping's)."""
    masked = config.masked
    bound = masked.norm_bound if masked.norm_bound is not None else config.update_norm_bound(length)
    clipping: dict[str, Any] = {}
    if masked.clip_levels:
        radius = masked.clip_radius if masked.clip_radius is not None else config.clip_norm / 2
        clipping = {"clip_radius": float(radius), "clip_levels": masked.clip_levels}
    return CheckParams(
        length=length,
        norm_bound=masked_bound(bound, length, config.frac_bits),
        min_cosine=masked.min_cosine,
        frac_bits=config.frac_bits,  # the task's fixed point: the revealed sum is the FedAvg numerator, exactly
        committee=masked.committee,
        reference=masked.reference,
        **clipping,
    )


def flatten(tensors: Mapping[str, npt.NDArray[Any]], frac_bits: int) -> npt.NDArray[np.float64]:
    """A fixed-point update (or float params with ``frac_bits`` 0) as one float vector, tensors in name order."""
    codec = FixedPoint(frac_bits) if frac_bits else None
    parts = [
        codec.decode(np.asarray(tensors[name])).ravel() if codec else np.asarray(tensors[name], np.float64).ravel()
        for name in sorted(tensors)
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def committee_keys(task: TrainingTaskClient, round_id: int) -> tuple[list[str], list[bytes]]:
    """The round's committee (party order) and their key-agreement keys as registered when the round opened."""
    committee = task.check_committee(round_id)
    opened = task.secure_round(round_id).opened_block
    consortium = ConsortiumClient(task.chain, task.consortium_address)
    keys = [bytes.fromhex(consortium.member(m, block=opened).kx_public_key.removeprefix("0x")) for m in committee]
    return committee, keys


def read_bundles(store: BlobStore, updates: Sequence[UpdateInfo], params: CheckParams) -> dict[str, bytes]:
    """Every committed bundle by member; one that is missing, too large or corrupt reads as empty, which every
    committee member then names as malformed (the committee must screen the same members everywhere)."""
    limit = params.committee * (params.shared_length * params.element_bytes + 64) + 4096
    bundles = {}
    for u in updates:
        try:
            bundles[u.member] = store.get(u.update_hash.removeprefix("0x"), max_bytes=limit)
        except FedLedgerError:
            bundles[u.member] = b""
    return bundles


def reference_update(task: TrainingTaskClient, store: BlobStore, round_id: int) -> npt.NDArray[np.float64] | None:
    """The previous round's global update (this round's global model minus the one before it): the direction
    the checks compare with. None in the first round, or when no round finalized yet."""
    current = task.round(round_id).global_model
    for r in range(round_id - 1, 0, -1):
        info = task.round(r)
        if info.phase is Phase.FINALIZED and info.model_hash == current:
            now = decode_model(store.get(current.removeprefix("0x"))).params
            before = decode_model(store.get(info.global_model.removeprefix("0x"))).params
            return flatten(now, 0) - flatten(before, 0)
    return None


def clip_center(
    config: TaskConfig, task: TrainingTaskClient, store: BlobStore, round_id: int
) -> npt.NDArray[np.int64] | None:
    """The public center of the committee's centered clipping: the previous round's global update in the task's
    fixed point (None: zero, in the first round; also None when the task does not clip)."""
    if not config.masked.clip_levels:
        return None
    step = reference_update(task, store, round_id)
    if step is None:
        return None
    center: npt.NDArray[np.int64] = FixedPoint(config.frac_bits).encode(step).view(np.int64)
    return center


def accepted_mask_of(passed: Sequence[str], updates: Sequence[UpdateInfo]) -> int:
    """The accepted set (bit i = update i) of the members that passed."""
    index = {u.member: u.index for u in updates}
    return sum(1 << index[m] for m in passed)


def outcome_blob(
    task: str, round_id: int, params: CheckParams, bundles: Mapping[str, str], outcome: CheckOutcome
) -> bytes:
    """The canonical outcome blob: what every honest committee member publishes identically (no per-party costs)."""
    doc = {
        "format": OUTCOME_FORMAT,
        "task": task,
        "round": round_id,
        "params": params.to_dict(),
        "bundles": dict(sorted(bundles.items())),
        "passed": sorted(outcome.passed),
        "rejected": dict(sorted(outcome.rejected.items())),
        "weighted_sum": [int(v) for v in outcome.weighted_sum],
        "total_examples": int(outcome.total_examples),
        "transcript": outcome.transcript,
    }
    if outcome.clip_weight is not None:
        doc["clip_weight"] = int(outcome.clip_weight)
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class MaskedOutcome:
    """An outcome blob read back: its parameters, the bundle hashes it screened, and the committee's outcome."""

    task: str
    round_id: int
    params: CheckParams
    bundles: dict[str, str]
    outcome: CheckOutcome


def read_outcome(data: bytes) -> MaskedOutcome:
    """Parse an outcome blob (:class:`BadInput` when it is not one)."""
    try:
        doc = json.loads(data)
        if doc.get("format") != OUTCOME_FORMAT:
            raise BadInput("not a masked-check outcome")
        return MaskedOutcome(
            task=str(doc["task"]),
            round_id=int(doc["round"]),
            params=CheckParams.from_dict(doc["params"]),
            bundles={str(k): str(v) for k, v in doc["bundles"].items()},
            outcome=CheckOutcome.from_dict(doc),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"malformed masked-check outcome: {exc}") from exc


def masked_aggregate(
    config: TaskConfig,
    global_params: Params,
    model_spec: dict[str, object],
    outcome: CheckOutcome,
    *,
    round_id: int,
    center: npt.NDArray[np.int64] | None = None,
) -> tuple[Params, bytes]:
    """The next model from the revealed sum: ``floor(sum n_i x_i / sum n_i)`` over the passing updates (FedAvg of
    them, bit for bit, in the task's fixed point), applied as any round's aggregate. With ``masked_clip_levels``
    the outcome holds centered clipping's sums instead, around ``center`` (:func:`clip_center`; None: zero), and
    the update is :func:`fedledger.privacy.masked_clipping.clipped_update` of them."""
    if outcome.total_examples <= 0 or not outcome.passed:
        raise AggregationError(f"round {round_id}: no update passed the masked checks")
    levels = config.masked.clip_levels
    if bool(levels) != (outcome.clip_weight is not None):
        raise BadInput(f"round {round_id}: the outcome's clipping does not match the task's")
    if outcome.clip_weight is not None:
        v = np.zeros(outcome.weighted_sum.size, dtype=np.int64) if center is None else center
        average = clipped_update(outcome.weighted_sum, outcome.clip_weight, outcome.total_examples, v, levels)
    else:
        average = np.floor_divide(outcome.weighted_sum.astype(np.int64), np.int64(outcome.total_examples))
    delta: Tensors = {}
    offset = 0
    for name in sorted(global_params):
        shape = np.shape(global_params[name])
        size = int(np.prod(shape, dtype=np.int64))
        if offset + size > average.size:
            raise AggregationError(f"round {round_id}: the revealed sum has {average.size} values, the model more")
        delta[name] = average[offset : offset + size].reshape(shape).view(np.uint64)
        offset += size
    if offset != average.size:
        raise AggregationError(f"round {round_id}: the revealed sum has {average.size} values, the model {offset}")
    return next_model(config, global_params, model_spec, delta, round_id=round_id)
