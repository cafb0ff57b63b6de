"""Clipping every update to the round's median norm, before any rule.

FLAME's adaptive clipping (Nguyen et al., "FLAME: Taming Backdoors in Federated
Learning", USENIX Security 2022, section 4.3): with ``M`` the median of the
updates' L2 norms, each update becomes ``x_i * min(1, M / |x_i|)``. The bound
adapts to the round (no clip norm to tune) and no attacker among a minority can
raise it above the norms of the honest updates: more than half of the norms are
at most ``M``, so ``M`` lies within the honest norms whenever the honest updates
are a majority. A boosted, norm-stretched or sign-flipped update then weighs
what a typical honest update weighs under whatever rule follows (centered
clipping's radius only bounds its distance from the center).

``M`` is the lower median (the ``(n - 1) // 2``-th smallest norm, an update's
own norm, so nothing is averaged); squared norms are exact integers, clip
factors are rounded down to ``2^-40`` (as :func:`.norm_bounding.clip_factors` rounds) and
the clipped values toward zero, so every clipped update has norm at most ``M``
and every machine gets the same bits.

Lifting (:func:`scale_to_median_norm` with ``lift=True``) is the other half: each
non-zero update *shorter* than ``M`` is scaled up to it. Rules that look at
directions alone let a short update through unharmed: a validator's cosine
(trust scoring) cannot tell ``0.01 x`` from ``x``, so an attacker can submit a
tiny copy of its honest step and dilute the aggregate with a near-zero update
that scores as well as an honest one (the score-aware attack does exactly this
against trust scoring: its best blend is a copy of its honest step about a hundredth as long;
docs/robustness.md has the numbers). Lifted to the typical honest
norm, such an update weighs what its direction is worth. Clip and lift together
normalize every update to ``M``, as FLTrust normalizes to its reference's norm.
The lift factor ``floor(sqrt(M^2 / |x|^2) * 2^40) / 2^40`` is applied as an
integer part (exact int64 products, which cannot overflow: each is at most ``M``,
and ``M`` below 2^63 is checked) plus a fraction through :func:`.combine`, so the
lifted update is exact, rounded toward zero, and at most ``M`` long.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._exact import (
    FRACTION_BITS,
    IntArray,
    combine,
    exact_sq_norms,
    isqrt_ratio,
    quantize,
)

__all__ = ["MedianNormScaling", "lower_median", "scale_factor", "scale_to_median_norm", "scaled_row"]


def lower_median(values: list[int]) -> int:
    """The ``(n - 1) // 2``-th smallest of ``values`` (one of them: no averaging, no rounding)."""
    if not values:
        raise ValueError("the median of no values")
    return sorted(values)[(len(values) - 1) // 2]


@dataclass(frozen=True)
class MedianNormScaling:
    """The scaled rows and what scaled them (factors below 1 clipped a row, above 1 lifted it)."""

    matrix: IntArray
    median_sq_norm: int
    factors: list[Fraction]


def scale_to_median_norm(matrix: IntArray, *, clip: bool, lift: bool) -> MedianNormScaling:
    """Rows longer than the rows' lower-median norm scaled down to it (``clip``), non-zero rows shorter than it
    scaled up to it (``lift``); every other row unchanged. One median, taken before any row moves."""
    sq_norms = exact_sq_norms(matrix)
    median_sq = lower_median(sq_norms)
    factors = [scale_factor(sq, median_sq, clip=clip, lift=lift) for sq in sq_norms]
    scaled = matrix.copy()
    for k, factor in enumerate(factors):
        if factor != 1:
            scaled[k] = scaled_row(matrix[k], factor)
    return MedianNormScaling(np.ascontiguousarray(scaled), median_sq, factors)


def scale_factor(sq_norm: int, target_sq: int, *, clip: bool, lift: bool) -> Fraction:
    """``sqrt(target_sq / sq_norm)`` rounded down to ``2^-40`` where a row of squared norm ``sq_norm`` is to move
    (longer than the target and ``clip``, or non-zero, shorter and ``lift``), else 1."""
    moves = (clip and sq_norm > target_sq) or (lift and 0 < sq_norm < target_sq)
    if not moves:
        return Fraction(1)
    if sq_norm < target_sq and target_sq >= 1 << 126:
        # Only hostile values get here (a task's norm bound is far below): lifted values might not fit in int64.
        raise AggregationError("cannot lift updates to a median norm of 2^63 fixed-point units or more")
    return Fraction(isqrt_ratio(target_sq, sq_norm), 1 << FRACTION_BITS)


def scaled_row(row: IntArray, factor: Fraction) -> IntArray:
    """``trunc(row * factor)``, exactly: the integer part as int64 products (row and products share a sign, so
    truncating the sum is the integer part plus the truncated fraction), the fraction through :func:`combine`."""
    whole = factor.numerator // factor.denominator
    coeffs, denom = quantize([factor - whole])
    part = combine(row[None, :], coeffs, denom)
    out: IntArray = row * np.int64(whole) + part if whole else part
    return out
