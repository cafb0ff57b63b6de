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
from fedledger.learning.aggregation._exact import COLUMN_CHUNK, IntArray, midpoint

__all__ = ["coordinate_median", "median_rule"]


def coordinate_median(matrix: IntArray) -> IntArray:
    """Median of each column of an int64 ``(n, d)`` matrix, as int64 (middle pair averaged toward zero)."""
    n, d = matrix.shape
    low, high = (n - 1) // 2, n // 2
    out = np.empty(d, dtype=np.int64)
    for start in range(0, d, COLUMN_CHUNK):
        block = np.partition(matrix[:, start : start + COLUMN_CHUNK], [low, high], axis=0)
        out[start : start + block.shape[1]] = midpoint(block[low], block[high])
    return out


def median_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    return RuleOutcome(coordinate_median(batch.matrix), tuple(range(batch.size)), None)
