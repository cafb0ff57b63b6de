"""FoolsGold.

Fung, Yoon, Beschastnikh, "The Limitations of Federated Learning in Sybil
Settings", RAID 2020 (arXiv:1808.04866). Sybil clones pushing one poisoning goal
send updates that point the same way round after round, while honest members'
updates differ. Per member, using its accumulated update history (or this round's
update if none is given):

1. ``cs_ij`` = cosine similarity of the histories of ``i`` and ``j``; ``v_i = max_j cs_ij``
   (at least 0: the reference code takes maxima over ``cs - I``, whose diagonal is 0);
2. pardoning: if ``v_j > v_i`` then ``cs_ij *= v_i / v_j`` (honest members that merely
   resemble a sybil are not punished as hard);
3. ``alpha_i = 1 - max(0, max_j cs_ij)``, divided by its maximum,
   ``1`` replaced by ``0.99``;
4. ``alpha_i = kappa * (ln(alpha_i / (1 - alpha_i)) + 0.5)`` clipped to ``[0, 1]``.

The aggregate is the ``alpha``-weighted mean of this round's updates (the paper
adds the ``alpha``-weighted sum times a learning rate; normalizing keeps FedAvg's
step size when everyone is honest).

Determinism: cosines come from the exact Gram matrix as ``floor(cos * 2^40)``,
steps 2-3 are exact fractions, and the logit uses :mod:`decimal`, whose ``ln`` is
correctly rounded by specification (unlike the platform ``libm``), then rounded
down to ``2^-40``.
"""

from __future__ import annotations

import decimal
import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import FRACTION_BITS, IntArray, exact_gram, isqrt_ratio, mix
from fedledger.learning.aggregation._params import positive_real

__all__ = ["cosine_matrix", "foolsgold_rule", "foolsgold_weights"]

_ONE = 1 << FRACTION_BITS
_ALMOST_ONE = Fraction(99, 100)
_LOGIT_CONTEXT = decimal.Context(prec=40, rounding=decimal.ROUND_HALF_EVEN)


def cosine_matrix(matrix: IntArray) -> list[list[Fraction]]:
    """Pairwise cosine similarity of the rows, each ``sign * floor(|cos| * 2^40) / 2^40`` (0 against a zero row)."""
    gram: list[list[int]] = exact_gram(matrix).tolist()
    n = len(gram)
    out = [[Fraction(0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            ip, denom = gram[i][j], gram[i][i] * gram[j][j]
            if ip and denom:
                magnitude = Fraction(isqrt_ratio(ip * ip, denom), _ONE)
                out[i][j] = out[j][i] = magnitude if ip > 0 else -magnitude
    return out


def _logit_weight(alpha: Fraction, confidence: Fraction) -> Fraction:
    """``clip(kappa * (ln(alpha / (1 - alpha)) + 0.5), 0, 1)`` for ``0 < alpha < 1``, rounded down to ``2^-40``."""
    ctx = _LOGIT_CONTEXT
    odds = ctx.divide(decimal.Decimal(alpha.numerator), decimal.Decimal(alpha.denominator - alpha.numerator))
    value = ctx.multiply(
        ctx.add(ctx.ln(odds), decimal.Decimal("0.5")),
        ctx.divide(decimal.Decimal(confidence.numerator), decimal.Decimal(confidence.denominator)),
    )
    if value <= 0:
        return Fraction(0)
    if value >= 1:
        return Fraction(1)
    return Fraction(math.floor(Fraction(value) * _ONE), _ONE)


def foolsgold_weights(similarity: list[list[Fraction]], confidence: Fraction) -> list[Fraction]:
    """FoolsGold's per-member weights in ``[0, 1]`` from a pairwise cosine similarity matrix."""
    n = len(similarity)
    if n == 1:
        return [Fraction(1)]
    cs = [row[:] for row in similarity]
    # The reference code subtracts the identity from the cosine matrix, so every maximum also sees a 0.
    top = [max(Fraction(0), *(cs[i][j] for j in range(n) if j != i)) for i in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j and top[j] > top[i]:
                cs[i][j] *= top[i] / top[j]
    alpha = [1 - max(Fraction(0), *(cs[i][j] for j in range(n) if j != i)) for i in range(n)]
    peak = max(alpha)
    if peak == 0:
        return [Fraction(0)] * n
    alpha = [a / peak for a in alpha]
    alpha = [_ALMOST_ONE if a == 1 else a for a in alpha]
    return [Fraction(0) if a == 0 else _logit_weight(a, confidence) for a in alpha]


def foolsgold_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    confidence = positive_real("foolsgold", "confidence", params["confidence"])
    source = batch.matrix if inputs.history is None else inputs.history
    if source.shape != batch.matrix.shape:
        raise AggregationError(f"rule 'foolsgold': history has shape {source.shape}, expected {batch.matrix.shape}")
    alphas = foolsgold_weights(cosine_matrix(source), confidence)
    total = sum(alphas, Fraction(0))
    details: dict[str, object] = {"alpha": [float(a) for a in alphas]}
    if total == 0:
        zero = tuple(Fraction(0) for _ in alphas)
        return RuleOutcome(np.zeros(batch.matrix.shape[1], dtype=np.int64), (), zero, details)
    weights = tuple(a / total for a in alphas)
    selected = tuple(k for k, w in enumerate(weights) if w)
    return RuleOutcome(mix(batch.matrix, weights), selected, weights, details)
