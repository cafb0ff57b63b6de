"""Centered clipping of the passing updates inside the masked checks' MPC.

Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust Optimization", ICML 2021
(arXiv:2012.10333), one iteration. The masked checks screen updates one at a time (norm and direction); what
passes is summed. A coalition whose updates pass still moves the model by its whole share of the sum, and a
sign-flipped update within the norm bound pulls as hard as an honest one pushes. Centered clipping bounds every
update's pull around a public center ``v``, the previous round's global update (the center validated rounds'
centered clipping uses, :func:`fedledger.federation.rules.aggregate_round`), to the radius ``tau``:

    next update = v + sum_i n_i c_i (x_i - v) / sum_i n_i,    c_i = min(1, tau / |x_i - v|)

over the passing updates, ``n_i`` their example counts. Nobody may see ``x_i``, so the committee computes the clip
factors from what it already has, the projections ``y_i = A x_i`` (:mod:`fedledger.privacy.masked_sketch`):

- ``|x_i - v|^2`` is estimated as ``2 S'_i / k`` with ``S'_i = sum_j (y_ij - (A v)_j)^2`` (the projections of the
  center are public; the entries' second moment is 1/2);
- ``c_i`` is rounded down to a multiple of ``1/L``: the level ``l_i = #{l in 1..L : 2 l^2 S'_i <= k L^2 tau^2}``,
  ``L`` secure comparisons per update, is the largest ``l`` with ``l / L <= tau / |x_i - v|`` on that estimate
  (capped at ``L``);
- it reveals ``W = sum_i n_i l_i x_i`` (a secure product of the secret levels with the shared updates) and
  ``M = sum_i n_i l_i``, and the next update is ``floor((W + (L N - M) v) / (L N))`` with ``N = sum_i n_i``
  (:func:`clipped_update`): the formula above with ``c_i = l_i / L``, in the task's fixed point.

What is revealed beyond the plain FedAvg round: the scalar ``M``, i.e. the example-weighted mean clip level of the
passing updates (with ``W`` and ``N`` public anyway, nothing per update). The levels themselves stay secret.

:func:`clip_levels` and :func:`clipped_sums` are the rule in clear on the same projections, the reference the MPC is
tested equal to and what the robustness grid applies; :func:`clip_and_sum` is the committee's secure version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError, BadInput, ConfigError
from fedledger.privacy.masked_checks import CheckParams
from fedledger.privacy.masked_reference import square_norms
from fedledger.privacy.masked_shares import from_words

__all__ = [
    "clip_and_sum",
    "clip_levels",
    "clipped_sums",
    "clipped_update",
    "gap_bits",
]

IntArray = npt.NDArray[np.int64]


def _gap(y: Sequence[int], center_y: Sequence[int]) -> int:
    return sum((int(a) - int(c)) ** 2 for a, c in zip(y, center_y, strict=True))


def _radius(params: CheckParams) -> int:
    if params.clip_radius is None:
        raise ConfigError("these check parameters do not clip (no clip radius)")
    return params.clip_radius_units


def clip_levels(projections: Sequence[Sequence[int]], center_y: Sequence[int], params: CheckParams) -> list[int]:
    """Each update's clip level ``l_i`` in ``0..L`` from its projections and the center's (the committee's rule)."""
    k, levels, tau = params.projections, params.clip_levels, _radius(params)
    limit = k * levels * levels * tau * tau
    out = []
    for y in projections:
        gap = _gap(y, center_y)
        out.append(sum(1 for level in range(1, levels + 1) if 2 * level * level * gap <= limit))
    return out


def clipped_sums(rows: IntArray, levels: Sequence[int], examples: Sequence[int]) -> tuple[npt.NDArray[Any], int]:
    """``(W, M)``: ``sum_i n_i l_i x_i`` (Python ints per coordinate) and ``sum_i n_i l_i`` (reads the updates)."""
    weights = [int(n) * int(level) for n, level in zip(examples, levels, strict=True)]
    matrix = np.atleast_2d(np.asarray(rows, dtype=np.int64)).astype(object)
    total = np.zeros(matrix.shape[1], dtype=object)
    for weight, row in zip(weights, matrix, strict=True):
        total = total + weight * row
    return total, sum(weights)


def clipped_update(
    weighted: npt.ArrayLike, level_weight: int, total_examples: int, center: IntArray, levels: int
) -> IntArray:
    """The next update ``floor((W + (L N - M) v) / (L N))`` from the revealed ``W`` and ``M``, fixed point."""
    if total_examples <= 0:
        raise AggregationError("no update passed the masked checks")
    denominator = levels * total_examples
    if not 0 <= level_weight <= denominator:
        raise BadInput(f"revealed clip weight {level_weight} outside [0, {denominator}]")
    w = np.asarray(weighted, dtype=object)
    v = np.asarray(center, dtype=np.int64).astype(object)
    if w.shape != v.shape:
        raise BadInput(f"revealed sum has {w.size} values, the center {v.size}")
    out = (w + (denominator - level_weight) * v) // denominator
    return np.asarray(out, dtype=np.int64)


def gap_bits(params: CheckParams, center_y: Sequence[int]) -> int:
    """Bits of ``2 L^2 S' - (k L^2 tau^2 + 1)`` for any update that passed the norm check (``S <= T``).

    ``sqrt(S') <= sqrt(S) + |A v|`` (triangle inequality), so ``S' <= 2 (T + |A v|^2)``.
    """
    center2 = sum(int(c) * int(c) for c in center_y)
    levels, tau = params.clip_levels, _radius(params)
    gap = 2 * (params.norm_threshold + center2)
    bound = 2 * levels * levels * gap + params.projections * levels * levels * tau * tau + 1
    return int(bound.bit_length()) + 2


async def clip_and_sum(
    mpc: Any,
    params: CheckParams,
    y: Any,
    center_y: Sequence[int],
    shares: Sequence[npt.NDArray[np.uint32]],
    examples: Sequence[int],
) -> tuple[IntArray, int]:
    """The committee's ``(W, M)`` for the passing members: ``y`` their secure projections (``(n, k)`` in the
    comparison ``SecInt``), ``shares`` this party's shares of their updates, ``examples`` their counts.

    The levels are ``L`` comparisons per member, all in one vectorised ``np_sgn``; they are converted to the
    shares' field and multiplied with the shared updates (one secure matrix-vector product); only ``W`` and ``M``
    are opened.
    """
    levels, tau = params.clip_levels, _radius(params)
    bits = gap_bits(params, center_y)
    if bits > params.big_bits:
        raise ConfigError(f"the clip comparison needs {bits} bits, the comparison type holds {params.big_bits}")
    diff = y - np.array([int(c) for c in center_y], dtype=object)
    gap = square_norms(mpc, diff).reshape(-1, 1)
    squares = np.array([2 * level * level for level in range(1, levels + 1)], dtype=object).reshape(1, -1)
    limit = params.projections * levels * levels * tau * tau
    within = mpc.np_sgn(gap * squares - (limit + 1), l=bits, LT=True)  # 1 exactly when 2 l^2 S' <= k L^2 tau^2
    secret_levels = mpc.np_sum(within, axis=1)
    small = mpc.SecInt(params.small_bits, p=params.modulus)
    converted = mpc.np_fromlist(mpc.convert(mpc.np_tolist(secret_levels), small))
    weights = converted * np.array([int(n) for n in examples], dtype=object)
    updates = small.array(small.field.array(np.stack([from_words(s[:-1]) for s in shares])))
    opened = await mpc.output(mpc.np_append(weights @ updates, mpc.np_fromlist([mpc.np_sum(weights)])))
    values = [int(v) for v in opened]
    return np.array(values[:-1], dtype=np.int64), values[-1]
