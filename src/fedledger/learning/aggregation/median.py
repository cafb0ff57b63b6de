"""Coordinate-wise median.

Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning: Towards
Optimal Statistical Rates", ICML 2018 (arXiv:1803.01498): each coordinate of the
aggregate is the median of that coordinate over the updates, so fewer than half
arbitrary updates cannot move it outside the range of the honest values.

The median is taken on the signed int64 fixed-point values (selection is exact);
for an even count it is the mean of the two middle values, rounded toward zero.
Example counts are ignored, as in the paper: they are self-reported and would let
one member outweigh the others.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import COLUMN_CHUNK, IntArray, column_blocks, midpoint

__all__ = ["coordinate_median", "median_rule"]

_SORT_MAX_ROWS = 64
"""Up to this many updates sorting a block beats one introselect pass, above it loses; both give the same values."""


def coordinate_median(matrix: IntArray) -> IntArray:
    """Median of each column of an int64 ``(n, d)`` matrix, as int64 (middle pair averaged toward zero)."""
    n, d = matrix.shape
    low, high = (n - 1) // 2, n // 2
    out = np.empty(d, dtype=np.int64)
    for columns, block in column_blocks(matrix, COLUMN_CHUNK):
        if n <= _SORT_MAX_ROWS:
            block.sort(axis=1)
            lower, upper = block[:, low], block[:, high]
        else:
            # One selection: values left of ``high`` are the ``high`` smallest, so their maximum is the value of
            # rank ``low`` (a second partition point would cost nearly as much again as the first).
            block.partition(high, axis=1)
            upper = block[:, high]
            lower = upper if low == high else block[:, :high].max(axis=1)
        out[columns] = midpoint(lower, upper)
    return out


def median_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    return RuleOutcome(coordinate_median(batch.matrix), tuple(range(batch.size)), None)
