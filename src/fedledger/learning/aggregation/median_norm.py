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
factors are rounded down to ``2^-40`` (:func:`.norm_bounding.clip_factors`) and
the clipped values toward zero, so every clipped update has norm at most ``M``
and every machine gets the same bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from fedledger.learning.aggregation._exact import IntArray, combine, exact_sq_norms, quantize
from fedledger.learning.aggregation.norm_bounding import clip_factors

__all__ = ["MedianNormClip", "clip_to_median_norm", "lower_median"]


def lower_median(values: list[int]) -> int:
    """The ``(n - 1) // 2``-th smallest of ``values`` (one of them: no averaging, no rounding)."""
    if not values:
        raise ValueError("the median of no values")
    return sorted(values)[(len(values) - 1) // 2]


@dataclass(frozen=True)
class MedianNormClip:
    """The clipped rows and what clipped them."""

    matrix: IntArray
    median_sq_norm: int
    factors: list[Fraction]


def clip_to_median_norm(matrix: IntArray) -> MedianNormClip:
    """Each row longer than the rows' lower-median norm scaled down to it (rows at most that long unchanged)."""
    sq_norms = exact_sq_norms(matrix)
    median_sq = lower_median(sq_norms)
    factors = clip_factors(sq_norms, Fraction(median_sq))
    clipped = matrix.copy()
    for k, factor in enumerate(factors):
        if factor != 1:
            coeffs, denom = quantize([factor])
            clipped[k] = combine(matrix[k : k + 1], coeffs, denom)
    return MedianNormClip(np.ascontiguousarray(clipped), median_sq, factors)
