"""FLTrust.

Cao, Fang, Liu, Gong, "FLTrust: Byzantine-robust Federated Learning via Trust
Bootstrapping", NDSS 2021 (arXiv:2012.13995). The server holds a small clean data
set and trains its own reference update ``g0``. Each member update ``g_i`` gets the
trust score ``TS_i = ReLU(cos(g_i, g0))``, is rescaled to the reference's norm,
and the aggregate is the trust-weighted mean
``sum_i TS_i * (|g0| / |g_i|) * g_i / sum_i TS_i``. Updates pointing away from the
reference get zero weight, and the aggregate's norm never exceeds ``|g0|``.

In fedledger the reference is trained by validators on their local data and
passed in. Inner products and norms are exact integers; the cosine and the norm
ratio are computed as ``floor(x * 2^40) / 2^40`` with integer square roots, so
they never exceed their true values and the norm bound holds exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import FRACTION_BITS, exact_gram, exact_sq_norms, isqrt_ratio, mix

__all__ = ["fltrust_rule", "trust_scores"]

_ONE = 1 << FRACTION_BITS


def trust_scores(inner: list[int], sq_norms: list[int], reference_sq_norm: int) -> list[Fraction]:
    """``ReLU(cos(g_i, g0))`` rounded down to ``2^-40`` (0 for a zero update or a zero reference)."""
    scores = []
    for ip, sq in zip(inner, sq_norms, strict=True):
        if ip <= 0 or sq == 0 or reference_sq_norm == 0:
            scores.append(Fraction(0))
        else:
            scores.append(Fraction(isqrt_ratio(ip * ip, sq * reference_sq_norm), _ONE))
    return scores


def fltrust_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    if inputs.reference is None:
        raise AggregationError("rule 'fltrust' needs a reference update (the server/validator update g0)")
    batch = inputs.batch
    reference = inputs.reference[None, :]
    inner = [int(v) for v in exact_gram(batch.matrix, reference)[:, 0]]
    sq_norms = exact_sq_norms(batch.matrix)
    reference_sq_norm = exact_sq_norms(reference)[0]
    scores = trust_scores(inner, sq_norms, reference_sq_norm)
    total = sum(scores, Fraction(0))
    details: dict[str, object] = {"trust_scores": [float(s) for s in scores]}
    if total == 0:
        # No update agrees with the reference: the model stays where it is.
        zero = tuple(Fraction(0) for _ in scores)
        return RuleOutcome(np.zeros(batch.matrix.shape[1], dtype=np.int64), (), zero, details)
    weights = tuple(s / total for s in scores)
    # |g0| / |g_i| rounded down, so each rescaled update has norm <= |g0|.
    coeffs = [
        w * Fraction(isqrt_ratio(reference_sq_norm, sq), _ONE) if w else Fraction(0)
        for w, sq in zip(weights, sq_norms, strict=True)
    ]
    try:
        row = mix(batch.matrix, coeffs)
    except ValueError as exc:
        raise AggregationError(f"rule 'fltrust': cannot rescale the updates to the reference norm: {exc}") from exc
    selected = tuple(k for k, w in enumerate(weights) if w)
    return RuleOutcome(row, selected, weights, details)
