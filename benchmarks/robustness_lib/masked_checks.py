"""The masked validity checks' decision, as the simulated rounds of the robustness grid apply it.

Under secure aggregation with ``masked_checks`` the committee's MPC reveals one bit per update: L2 norm within the
bound and, with a minimum cosine, direction within it against the previous round's global update
(:mod:`fedledger.privacy.masked_committee`). The grid needs thousands of member-rounds, so it computes that bit in
clear with :func:`fedledger.privacy.masked_checks.plain_decision`, the function the MPC is tested equal to
(``tests/privacy/test_masked_checks.py``), on the same fixed-point update and the same parameters a node uses
(:func:`fedledger.federation.masked_round.masked_bound`). What the grid measures is the rule's robustness; the MPC's
cost and trust are another matter (``docs/masked-checks.md``). With ``--masked-reference committee`` the direction
votes are each seat's trust score against its own reference instead (``simulation._committee_reference_bits``), on
exact cosines where the MPC votes on the projections' estimate of them.

With ``--masked-clipping`` the passing updates are not summed but clipped around the previous round's aggregate
(:func:`masked_clipped_delta`), with the clip levels the committee computes from the ``k`` projections
(:mod:`fedledger.privacy.masked_clipping`), on projections drawn from a per-round seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.federation.masked_round import flatten, masked_bound
from fedledger.privacy.masked_checks import CheckParams, plain_decision, quantize_reference
from fedledger.privacy.masked_clipping import clip_levels, clipped_sums, clipped_update
from fedledger.privacy.masked_sketch import project_exact

from .scenario import FLSetup

__all__ = ["masked_clipped_delta", "masked_decisions"]


def masked_decisions(
    updates: Sequence[Mapping[str, np.ndarray[Any, Any]]],
    previous_aggregate: Mapping[str, np.ndarray[Any, Any]] | None,
    *,
    clip_norm: float,
    min_cosine: float | None,
    frac_bits: int,
) -> list[bool]:
    """Each fixed-point update's pass bit: within the task's norm bound and, from the second round, within the
    minimum cosine of the previous round's aggregate."""
    if not updates:
        return []
    length = sum(int(np.asarray(a).size) for a in updates[0].values())
    params = CheckParams(
        length=length,
        norm_bound=masked_bound(clip_norm, length, frac_bits),
        min_cosine=min_cosine,
        frac_bits=frac_bits,
    )
    reference = None
    if previous_aggregate is not None:
        reference = quantize_reference(flatten(previous_aggregate, frac_bits), params)
    return [
        plain_decision(
            np.asarray([v for k in sorted(u) for v in np.asarray(u[k]).view(np.int64).ravel()]), params, reference
        )
        for u in updates
    ]


def masked_clipped_delta(
    updates: Sequence[Mapping[str, np.ndarray[Any, Any]]],
    counts: Sequence[int],
    center: Mapping[str, np.ndarray[Any, Any]] | None,
    *,
    setup: FLSetup,
    seed: bytes,
) -> tuple[dict[str, np.ndarray[Any, Any]], list[int]]:
    """The passing fixed-point updates clipped around ``center`` (the previous aggregate; zero when ``None``) to
    validated centered clipping's radius (``tau_fraction`` of the clip norm) with the committee's clip levels
    (``setup.masked_clip_levels``), example-weighted: the next aggregate, as the aggregator derives it from what
    the MPC reveals, and each update's level (what the MPC keeps secret)."""
    clip_norm, levels, frac_bits = setup.clip_norm, setup.masked_clip_levels, setup.frac_bits
    if not updates:
        raise AggregationError("no update passed the masked checks")
    names = sorted(updates[0])
    rows = np.stack([np.concatenate([np.asarray(u[k]).view(np.int64).ravel() for k in names]) for u in updates])
    params = CheckParams(
        length=rows.shape[1],
        norm_bound=masked_bound(clip_norm, rows.shape[1], frac_bits),
        frac_bits=frac_bits,
        clip_radius=clip_norm * setup.tau_fraction,
        clip_levels=levels,
    )
    v = np.zeros(rows.shape[1], dtype=np.int64)
    if center is not None:
        v = np.concatenate([np.asarray(center[k]).view(np.int64).ravel() for k in names])
    y, center_y = project_exact(rows, seed, params.projections), project_exact(v, seed, params.projections)
    chosen = clip_levels(y.tolist(), center_y.tolist(), params)
    weighted, level_weight = clipped_sums(rows, chosen, counts)
    flat = clipped_update(weighted, level_weight, sum(counts), v, levels)
    delta, offset = {}, 0
    for k in names:
        shape = np.shape(updates[0][k])
        size = int(np.prod(shape, dtype=np.int64))
        delta[k] = flat[offset : offset + size].reshape(shape).view(np.uint64)
        offset += size
    return delta, chosen
