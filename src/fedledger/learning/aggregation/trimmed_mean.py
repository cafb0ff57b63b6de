"""Coordinate-wise trimmed mean.

Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML 2018 (arXiv:1803.01498): per coordinate, drop
the ``k`` largest and ``k`` smallest values (``k = beta * n``) and average the
rest. With at most ``k`` arbitrary updates every coordinate stays within the
range of the honest values.

Selection is exact on int64 values; the mean of the kept values is exact and
rounded toward zero (:func:`~fedledger.learning.aggregation._exact.combine`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import COLUMN_CHUNK, IntArray, combine
from fedledger.learning.aggregation._params import bounded_fraction, count_param

__all__ = ["trim_count", "trimmed_mean", "trimmed_mean_rule"]


def trimmed_mean(matrix: IntArray, trim: int) -> IntArray:
    """Per column, the mean of the values left after dropping the ``trim`` smallest and ``trim`` largest."""
    n, d = matrix.shape
    if not 0 <= 2 * trim < n:
        raise ValueError(f"cannot trim {trim} from each side of {n} values")
    kept = n - 2 * trim
    out = np.empty(d, dtype=np.int64)
    for start in range(0, d, COLUMN_CHUNK):
        block = matrix[:, start : start + COLUMN_CHUNK]
        if trim:
            # After partitioning at both cut points, rows trim..n-trim-1 hold exactly the middle values.
            block = np.partition(block, [trim - 1, n - trim], axis=0)[trim : n - trim]
        out[start : start + block.shape[1]] = combine(block, [1] * kept, kept)
    return out


def trim_count(rule: str, n: int, params: Mapping[str, object]) -> int:
    """``trim`` if given, else ``floor(beta * n)``; at least one value per coordinate must remain."""
    if params.get("trim") is not None:
        trim = count_param(rule, "trim", params["trim"])
    else:
        beta = bounded_fraction(rule, "beta", params["beta"], upper=Fraction(1, 2))
        trim = math.floor(beta * n)
    if 2 * trim >= n:
        raise AggregationError(
            f"rule {rule!r}: trimming {trim} from each side needs more than {2 * trim} updates, got {n}"
        )
    return trim


def trimmed_mean_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    trim = trim_count("trimmed-mean", batch.size, params)
    return RuleOutcome(trimmed_mean(batch.matrix, trim), tuple(range(batch.size)), None, {"trim": trim})
