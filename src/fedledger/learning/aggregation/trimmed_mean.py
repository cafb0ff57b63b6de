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
from fedledger.learning.aggregation._exact import COLUMN_CHUNK, IntArray, column_blocks, combine, magnitude_bits
from fedledger.learning.aggregation._params import bounded_fraction, count_param

__all__ = ["trim_count", "trimmed_mean", "trimmed_mean_rule"]

_INT64_VALUE_BITS = 63
_SORT_MAX_ROWS = 128
"""Up to this many updates sorting a block beats two introselect passes, above it loses; both give the same values."""


def trimmed_mean(matrix: IntArray, trim: int) -> IntArray:
    """Per column, the mean of the values left after dropping the ``trim`` smallest and ``trim`` largest."""
    n, d = matrix.shape
    if not 0 <= 2 * trim < n:
        raise ValueError(f"cannot trim {trim} from each side of {n} values")
    if not trim:
        return _truncated_row_means(matrix.T)  # nothing to select: sum the columns where they lie
    out = np.empty(d, dtype=np.int64)
    for columns, block in column_blocks(matrix, COLUMN_CHUNK):
        if n <= _SORT_MAX_ROWS:
            block.sort(axis=1)
        else:
            # Two single-point selections: the first leaves the n - trim smallest values left of n - trim,
            # the second moves the trim smallest of those to the front, so trim..n-trim-1 hold the middle.
            block.partition(n - trim, axis=1)
            block[:, : n - trim].partition(trim, axis=1)
        out[columns] = _truncated_row_means(block[:, trim : n - trim])
    return out


def _truncated_row_means(rows: IntArray) -> IntArray:
    """``trunc(mean)`` of each row of an int64 matrix, exactly."""
    kept = rows.shape[1]
    # |v| <= 2^bits, so a row's sum stays within kept * 2^bits < 2^63 and the int64 sum is exact. Larger
    # (hostile) values go through the limb-wise exact combination instead.
    if magnitude_bits(rows) + kept.bit_length() > _INT64_VALUE_BITS:
        return combine(rows.T, [1] * kept, kept)
    quotient, remainder = np.divmod(rows.sum(axis=1), kept)
    # divmod floors; a negative mean with a remainder rounds up by one to truncate toward zero.
    truncated: IntArray = quotient + ((remainder != 0) & (quotient < 0))
    return truncated


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
