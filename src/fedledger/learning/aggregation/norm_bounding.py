"""Norm bounding (norm thresholding) before federated averaging.

Sun, Kairouz, Suresh, McMahan, "Can You Really Backdoor Federated Learning?",
2019 (arXiv:1911.07963): clip every update to L2 norm ``M``,
``delta_k * min(1, M / |delta_k|)``, then take the example-weighted FedAvg. A
boosted (scaled-up) backdoor update can then pull the model no further than an
honest one.

Norms are exact integers; the clip factor is ``floor(sqrt(M^2 / |delta|^2) * 2^40)
/ 2^40`` (never above its true value) and the result is rounded toward zero, so
the aggregate's norm is at most ``M`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import FRACTION_BITS, exact_sq_norms, isqrt_ratio, mix
from fedledger.learning.aggregation._params import positive_real

__all__ = ["clip_factors", "norm_bounding_rule"]


def clip_factors(sq_norms: list[int], squared: Fraction) -> list[Fraction]:
    """``min(1, sqrt(squared / sq))`` for each squared norm ``sq``, rounded down to ``2^-40``: the factors that
    clip rows of those squared norms to the norm ``sqrt(squared)`` (fixed-point units)."""
    factors = []
    for sq in sq_norms:
        if sq <= squared:
            factors.append(Fraction(1))
        else:
            root = isqrt_ratio(squared.numerator, squared.denominator * sq)
            factors.append(Fraction(root, 1 << FRACTION_BITS))
    return factors


def norm_bounding_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    bound = positive_real("norm-bounding", "max_norm", params["max_norm"]) * (1 << batch.frac_bits)
    factors = clip_factors(exact_sq_norms(batch.matrix), bound * bound)
    total = sum(batch.num_examples)
    weights = tuple(Fraction(count, total) for count in batch.num_examples)
    row = mix(batch.matrix, [w * c for w, c in zip(weights, factors, strict=True)])
    details: dict[str, object] = {"clip_factors": [float(c) for c in factors]}
    return RuleOutcome(row, tuple(range(batch.size)), weights, details)
