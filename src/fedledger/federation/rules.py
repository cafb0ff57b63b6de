"""The round's rules that every party applies identically: checking an update blob
against its commitment, deriving the accepted set from the validators' scores, and
recomputing a round's model from its accepted updates.

Aggregators use these to propose; ``fedledger audit verify`` uses the very same
functions to check what was finalized, so the two can never disagree by drift.

A task with a server optimizer (``TaskConfig.server_optimizer``) takes the rule's
aggregate as the pseudo-gradient of Reddi et al.'s adaptive step
(:mod:`fedledger.learning.aggregation.server_optimizer`); :func:`next_model` is that
last step for validated and secure rounds alike, reading the optimizer's state from
the global model the round starts from and storing the new state in the next model blob.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import ZERO_ADDRESS, TrainingTaskClient, UpdateInfo, deciding_score, mask_of
from fedledger.exceptions import AggregationError, FedLedgerError, StoreError, UpdateRejected
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
from fedledger.learning.aggregation import OptimizerState, aggregate, apply_server_optimizer
from fedledger.learning.aggregation.example_cap import median_example_cap
from fedledger.learning.model_blob import ModelParams
from fedledger.learning.update import Tensors
from fedledger.store import BlobStore, BlobTooLarge

__all__ = [
    "RoundAggregate",
    "Verdict",
    "accepted_mask",
    "aggregate_round",
    "check_registered_rows",
    "check_update",
    "next_model",
    "optimizer_state_of",
    "previous_global_params",
    "registered_rows",
    "verdict",
]


@dataclass(frozen=True)
class Verdict:
    """An update's outcome in validation: its deciding score (:func:`~fedledger.chain.task.deciding_score`; None:
    nobody scored it) and whether it passed."""

    score: int | None
    accepted: bool


def verdict(scores: Sequence[int], threshold: int, min_approvals: int = 0) -> Verdict:
    """The TrainingTask contract's acceptance rule for one update: its deciding score (the median of the scores it
    got, or with ``min_approvals`` the score of its ``min_approvals``-th most favourable validator) reaches
    ``threshold``; an update nobody scored is rejected."""
    if not scores:
        return Verdict(None, False)
    score = deciding_score(scores, min_approvals)
    return Verdict(score, score >= threshold)


def accepted_mask(scores_per_update: Sequence[Sequence[int]], threshold: int, min_approvals: int = 0) -> int:
    """The accepted set (bit ``i``: update ``i``) that the scores of a round's updates give (:func:`verdict`)."""
    return mask_of(
        [i for i, scores in enumerate(scores_per_update) if verdict(scores, threshold, min_approvals).accepted]
    )


def registered_rows(task: TrainingTaskClient, updates: Sequence[UpdateInfo]) -> dict[int, int]:
    """The rows each update's dataset had registered when the update was committed (update index -> rows).

    Empty for a task without a data registry. With one, the contract already checked that every
    commitment names an active dataset of its committer that allows the task's purpose; its
    registered row count, read at the commitment's block (a later ``update_commitment`` cannot
    change it), is the most examples the update may declare: an honest member trains on at most
    the rows it registered, so a larger count is a lie the chain itself shows. Every party reads
    the same blocks, so every aggregator and auditor applies the same bound.
    """
    address = task.params().data_registry
    if address == ZERO_ADDRESS:
        return {}
    registry = DataRegistryClient(task.chain, address)
    return {u.index: registry.rows_of(u.dataset_id, block=u.block_number) for u in updates}


def check_registered_rows(update: UpdateInfo, rows: int | None) -> None:
    """Raise :class:`UpdateRejected` when ``update`` declares more examples than its dataset registered."""
    if rows is not None and update.num_examples > rows:
        raise UpdateRejected(
            f"commitment declares {update.num_examples} examples, "
            f"its dataset {update.dataset_id} registered {rows} rows"
        )


def check_update(
    store: BlobStore, config: TaskConfig, spec: ParamSpec, update: UpdateInfo, *, rows: int | None = None
) -> DecodedUpdate:
    """Fetch the blob committed for ``update`` and check it, or raise :class:`UpdateRejected`.

    Rejects an update that declares more examples than ``rows`` (its dataset's registered rows,
    :func:`registered_rows`; None: no registry), and a blob that is missing, does not match its
    committed hash, is not a well-formed update for this task (shape, dtype, size, norm bound), or
    claims another example count than the one committed on chain. The norm bound is the task's
    :meth:`TaskConfig.update_norm_bound`: ``clip_norm``, widened by a noise bound under client-level DP.
    """
    check_registered_rows(update, rows)
    try:
        # The task's size limit is applied from the blob's size, before its bytes are read.
        blob = store.get(update.update_hash.removeprefix("0x"), max_bytes=config.max_update_bytes)
    except BlobTooLarge as exc:
        raise UpdateRejected(f"oversized: {exc.size} bytes, limit {exc.limit}") from exc
    except StoreError as exc:
        raise UpdateRejected(f"blob unavailable: {exc}") from exc
    try:
        decoded = validate_update(
            blob,
            spec,
            max_bytes=config.max_update_bytes,
            frac_bits=config.frac_bits,
            max_norm=config.update_norm_bound(num_params(spec)),
            max_examples=config.max_examples,
        )
    except UpdateRejected:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, RecursionError, MemoryError) as exc:
        # A blob must never stop a validator: whatever the checks above missed is still a named rejection.
        raise UpdateRejected(f"malformed update: {type(exc).__name__}: {exc}") from exc
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


def optimizer_state_of(
    config: TaskConfig, global_params: Params, given: Mapping[str, npt.NDArray[Any]] | None = None
) -> OptimizerState | None:
    """The server optimizer's state ``(m, v)`` that the round's global model carries (None without one).

    ``given``: the state tensors read from the global model blob (``ModelBlob.optimizer_state``); None:
    those that ``global_params`` carries, when it is the :class:`ModelParams` decoded from that blob. A
    model without state (the task's initial model) starts the optimizer at zeros.
    """
    if config.server_optimizer == "none":
        return None
    if given is None:
        if not isinstance(global_params, ModelParams):
            raise FedLedgerError(
                f"task uses server optimizer {config.server_optimizer!r}: aggregate from the params decoded from the "
                "global model blob, or pass its optimizer_state"
            )
        given = global_params.optimizer_state
    if not given:
        return None
    try:
        return OptimizerState.from_tensors(given, global_params)
    except AggregationError as exc:
        raise FedLedgerError(f"global model's optimizer state is unusable: {exc}") from exc


def next_model(
    config: TaskConfig,
    global_params: Params,
    model_spec: dict[str, object],
    delta: Mapping[str, npt.NDArray[Any]],
    *,
    round_id: int,
    optimizer_state: Mapping[str, npt.NDArray[Any]] | None = None,
) -> tuple[Params, bytes]:
    """The next global model (params and blob) from the round's fixed-point aggregate ``delta``.

    Without a server optimizer: ``global + delta`` (:func:`apply_update`). With one: ``delta`` is the
    pseudo-gradient ``Δ_t``, the optimizer's step is applied instead and its new state is stored in the
    blob (so the model hash commits to it). ``optimizer_state``: see :func:`optimizer_state_of`.
    """
    metadata = {"round": str(round_id)}
    if config.server_optimizer == "none":
        params = apply_update(global_params, delta, frac_bits=config.frac_bits)
        return params, encode_model(params, model_spec, metadata=metadata)
    state = optimizer_state_of(config, global_params, optimizer_state)
    params, new_state = apply_server_optimizer(
        config.server_optimizer,
        global_params,
        delta,
        state,
        config.server_optimizer_params,
        frac_bits=config.frac_bits,
    )
    metadata["server_optimizer"] = config.server_optimizer
    blob = encode_model(params, model_spec, metadata=metadata, optimizer_state=new_state.to_tensors())
    return ModelParams(params, new_state.to_tensors()), blob


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
    rows: Mapping[int, int] | None = None,
    optimizer_state: Mapping[str, npt.NDArray[Any]] | None = None,
) -> RoundAggregate:
    """The next global model from the accepted updates of a round.

    An accepted update whose blob fails :func:`check_update` is left out (and
    reported in ``excluded``): every honest party sees the same blobs and applies the
    same check, so they still agree bit for bit. ``previous_params``: the global model
    of the round before (:func:`previous_global_params`), whose step to this round's
    global model is centered clipping's center (Karimireddy et al. clip around the
    last aggregate; without it the center is zero). ``updates`` are all the round's
    commitments: with ``config.cap_examples_to_median`` their declared example counts (each at
    most its dataset's registered rows) set the cap on every accepted update's weight. ``rows``:
    :func:`registered_rows` of the round (None or empty: the task has no data registry); an
    update declaring more examples than its dataset registered is left out. With a server optimizer
    (``config.server_optimizer``) the rule's aggregate is its pseudo-gradient (:func:`next_model`);
    ``optimizer_state``: the state tensors of the global model blob, by default those ``global_params``
    carries when decoded from it (:func:`optimizer_state_of`).
    """
    rows = rows or {}
    spec: ParamSpec = {name: tuple(arr.shape) for name, arr in global_params.items()}
    decoded: list[DecodedUpdate] = []
    included: list[int] = []
    excluded: dict[int, str] = {}
    for index in sorted(accepted):
        try:
            decoded.append(check_update(store, config, spec, updates[index], rows=rows.get(index)))
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
        lift_to_median_norm=bool(config.lift_to_median_norm),
        # Over every commitment of the round, accepted or not: the cap must not move with the verdicts.
        example_cap=median_example_cap([min(u.num_examples, rows.get(u.index, u.num_examples)) for u in updates])
        if config.cap_examples_to_median
        else None,
    )
    params, blob = next_model(
        config, global_params, model_spec, result.delta, round_id=round_id, optimizer_state=optimizer_state
    )
    return RoundAggregate(params, blob, "0x" + hashlib.sha256(blob).hexdigest(), included, excluded)


def previous_global_params(task: TrainingTaskClient, store: BlobStore, round_id: int) -> Params | None:
    """The global model round ``round_id - 1`` started from (None for the first round), read by the hash
    the chain holds: what :func:`aggregate_round` needs for centered clipping's center."""
    if round_id <= 1:
        return None
    previous = task.round(round_id - 1).global_model
    return decode_model(store.get(previous.removeprefix("0x"))).params
