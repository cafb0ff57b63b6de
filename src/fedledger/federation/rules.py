"""The round's rules that every party applies identically: checking an update blob
against its commitment, and recomputing a round's model from its accepted updates.

Aggregators use these to propose; ``fedledger audit verify`` uses the very same
functions to check what was finalized, so the two can never disagree by drift.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fedledger.chain.task import TrainingTaskClient, UpdateInfo
from fedledger.exceptions import FedLedgerError, StoreError, UpdateRejected
from fedledger.federation.config import TaskConfig
from fedledger.federation.privacy import num_params
from fedledger.learning import (
    DecodedUpdate,
    FixedPoint,
    Params,
    ParamSpec,
    apply_update,
    decode_model,
    encode_model,
    validate_update,
)
from fedledger.learning.aggregation import aggregate
from fedledger.learning.aggregation.example_cap import median_example_cap
from fedledger.learning.update import Tensors
from fedledger.store import BlobStore

__all__ = ["RoundAggregate", "aggregate_round", "check_update", "previous_global_params"]


def check_update(store: BlobStore, config: TaskConfig, spec: ParamSpec, update: UpdateInfo) -> DecodedUpdate:
    """Fetch the blob committed for ``update`` and check it, or raise :class:`UpdateRejected`.

    Rejects a blob that is missing, does not match its committed hash, is not a
    well-formed update for this task (shape, dtype, size, norm bound), or claims
    another example count than the one committed on chain. The norm bound is the task's
    :meth:`TaskConfig.update_norm_bound`: ``clip_norm``, widened by a noise bound under client-level DP.
    """
    try:
        blob = store.get(update.update_hash.removeprefix("0x"))
    except StoreError as exc:
        raise UpdateRejected(f"blob unavailable: {exc}") from exc
    decoded = validate_update(
        blob,
        spec,
        max_bytes=config.max_update_bytes,
        frac_bits=config.frac_bits,
        max_norm=config.update_norm_bound(num_params(spec)),
        max_examples=config.max_examples,
    )
    if decoded.encoding != "fixed64":
        raise UpdateRejected(f"encoding {decoded.encoding!r}, the task aggregates fixed64 updates")
    if decoded.num_examples != update.num_examples:
        raise UpdateRejected(f"blob claims {decoded.num_examples} examples, the commitment says {update.num_examples}")
    return decoded


@dataclass(frozen=True)
class RoundAggregate:
    params: Params
    blob: bytes
    model_hash: str  # 0x-prefixed sha256 of ``blob``
    included: list[int]  # update indices aggregated
    excluded: dict[int, str]  # accepted but unusable: index -> reason


def aggregate_round(
    store: BlobStore,
    config: TaskConfig,
    global_params: Params,
    model_spec: dict[str, object],
    updates: Sequence[UpdateInfo],
    accepted: Sequence[int],
    *,
    round_id: int,
    previous_params: Params | None = None,
) -> RoundAggregate:
    """The next global model from the accepted updates of a round.

    An accepted update whose blob fails :func:`check_update` is left out (and
    reported in ``excluded``): every honest party sees the same blobs and applies the
    same check, so they still agree bit for bit. ``previous_params``: the global model
    of the round before (:func:`previous_global_params`), whose step to this round's
    global model is centered clipping's center (Karimireddy et al. clip around the
    last aggregate; without it the center is zero). ``updates`` are all the round's
    commitments: with ``config.cap_examples_to_median`` their declared example counts set
    the cap on every accepted update's weight.
    """
    spec: ParamSpec = {name: tuple(arr.shape) for name, arr in global_params.items()}
    decoded: list[DecodedUpdate] = []
    included: list[int] = []
    excluded: dict[int, str] = {}
    for index in sorted(accepted):
        try:
            decoded.append(check_update(store, config, spec, updates[index]))
            included.append(index)
        except UpdateRejected as exc:
            excluded[index] = exc.reason
    if not decoded:
        raise FedLedgerError(f"round {round_id}: no usable accepted update to aggregate")
    rule_params: dict[str, object] = dict(config.aggregation_params)
    center: Tensors | None = None
    if config.aggregation == "centered-clipping":
        rule_params.setdefault("tau", config.clip_norm / 2)  # the radius the robustness benchmark measured
        if previous_params is not None:
            codec = FixedPoint(config.frac_bits)
            center = {
                name: codec.encode(global_params[name].astype(np.float64) - previous_params[name].astype(np.float64))
                for name in global_params
            }
    result = aggregate(
        config.aggregation,
        [d.tensors for d in decoded],
        [d.num_examples for d in decoded],
        frac_bits=config.frac_bits,
        center=center,
        params=rule_params,
        clip_to_median_norm=bool(config.clip_to_median_norm),
        # Over every commitment of the round, accepted or not: the cap must not move with the verdicts.
        example_cap=median_example_cap([u.num_examples for u in updates]) if config.cap_examples_to_median else None,
    )
    params = apply_update(global_params, result.delta, frac_bits=config.frac_bits)
    blob = encode_model(params, model_spec, metadata={"round": str(round_id)})
    return RoundAggregate(params, blob, "0x" + hashlib.sha256(blob).hexdigest(), included, excluded)


def previous_global_params(task: TrainingTaskClient, store: BlobStore, round_id: int) -> Params | None:
    """The global model round ``round_id - 1`` started from (None for the first round), read by the hash
    the chain holds: what :func:`aggregate_round` needs for centered clipping's center."""
    if round_id <= 1:
        return None
    previous = task.round(round_id - 1).global_model
    return decode_model(store.get(previous.removeprefix("0x"))).params
