"""Centered clipping.

Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust
Optimization", ICML 2021 (arXiv:2012.10333). Starting from a center ``v`` (the
previous aggregate, i.e. server momentum, or zero), repeat ``iterations`` times

    v <- v + (1/n) * sum_i (x_i - v) * min(1, tau / |x_i - v|)

so each update can move the center by at most ``tau / n`` and the whole step by at
most ``tau`` per iteration, however far away it is.

Distances ``|x_i - v|^2 = |x_i|^2 - 2<x_i, v> + |v|^2`` are exact integers (no
int64 subtraction that a hostile value could overflow); clip factors are rounded
down to ``2^-40`` and the center's own weight is what is left, so each iteration is
one exact convex combination of the updates and the center, rounded toward zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import IntArray, combine, exact_gram, exact_sq_norms, quantize
from fedledger.learning.aggregation._params import count_param, positive_real
from fedledger.learning.aggregation.norm_bounding import clip_factors

__all__ = ["centered_clip", "centered_clipping_rule"]


def centered_clip(
    matrix: IntArray, center: IntArray, tau: Fraction, iterations: int
) -> tuple[IntArray, list[Fraction]]:
    """The clipped center after ``iterations`` steps and the last step's clip factors (``tau`` in fixed-point units)."""
    n = matrix.shape[0]
    sq_norms = exact_sq_norms(matrix)
    factors: list[Fraction] = [Fraction(1)] * n
    for _ in range(iterations):
        inner = exact_gram(matrix, center[None, :])[:, 0]
        center_sq = exact_sq_norms(center[None, :])[0]
        distances = [sq - 2 * int(ip) + center_sq for sq, ip in zip(sq_norms, inner, strict=True)]
        factors = clip_factors(distances, tau * tau)
        coeffs, denom = quantize([c / n for c in factors])
        center = combine(matrix, coeffs, denom, extra=(center, denom - sum(coeffs)))
    return center, factors


def centered_clipping_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    tau = positive_real("centered-clipping", "tau", params["tau"]) * (1 << batch.frac_bits)
    iterations = count_param("centered-clipping", "iterations", params["iterations"], minimum=1)
    start = np.zeros(batch.matrix.shape[1], dtype=np.int64) if inputs.center is None else inputs.center
    row, factors = centered_clip(batch.matrix, start, tau, iterations)
    details: dict[str, object] = {"clip_factors": [float(c) for c in factors], "iterations": iterations}
    return RuleOutcome(row, tuple(range(batch.size)), None, details)
