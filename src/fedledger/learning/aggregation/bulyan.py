"""Bulyan.

El Mhamdi, Guerraoui, Rouault, "The Hidden Vulnerability of Distributed Learning
in Byzantium", ICML 2018 (arXiv:1802.07927). With ``f`` Byzantine updates among
``n >= 4f + 3``: select ``theta = n - 2f`` updates by applying Krum repeatedly
(each time removing the winner and rescoring the rest), then per coordinate
average the ``beta = theta - 2f`` selected values closest to their median. The
second stage bounds every coordinate, which Krum alone does not.

Krum scoring reuses one exact distance matrix (:mod:`.krum`). Like the authors'
reference code (S. Rouault's ``bulyan.py``, EPFL), every round of Krum counts a
fixed ``n - f - 2`` nearest neighbours (``n`` the original count) among the
updates still remaining, or all of them once fewer are left: shrinking the count with the set would
leave one neighbour at the end, where every mutual-nearest pair ties and the
choice depends on the order of the updates. The
"closest to the median" values form a contiguous window of the sorted column; it
is grown from the median outwards, taking the lower side on equal distance.
Distances are compared as uint64 (exact, no overflow); ties between updates go to
the lowest index.

Too few updates for ``f`` (``n < 4f + 3``): with ``fallback="median"`` (the default) the round
aggregates with the coordinate-wise median instead of failing; see :mod:`.krum`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import COLUMN_CHUNK, IntArray, column_blocks, combine, midpoint
from fedledger.learning.aggregation._params import count_param
from fedledger.learning.aggregation.krum import (
    TooFewUpdates,
    krum_scores,
    median_fallback,
    pairwise_sq_distances,
    ranked_by_score,
)

__all__ = ["bulyan_rule", "bulyan_select", "bulyan_tolerance", "closest_to_median_mean"]


def bulyan_select(matrix: IntArray, f: int) -> list[int]:
    """The ``n - 2f`` row indices chosen by iterated Krum, in the order chosen."""
    distances = pairwise_sq_distances(matrix)
    remaining = list(range(matrix.shape[0]))
    chosen: list[int] = []
    neighbours = matrix.shape[0] - f - 2
    for _ in range(matrix.shape[0] - 2 * f):
        scores = krum_scores(distances, remaining, neighbours)
        winner = ranked_by_score(remaining, scores)[0]
        chosen.append(winner)
        remaining.remove(winner)
    return chosen


def closest_to_median_mean(matrix: IntArray, beta: int) -> IntArray:
    """Per column, the mean (toward zero) of the ``beta`` values closest to the column's median."""
    theta, d = matrix.shape
    if not 1 <= beta <= theta:
        raise ValueError(f"beta={beta} out of range for {theta} values")
    out = np.empty(d, dtype=np.int64)
    for columns, block in column_blocks(matrix, COLUMN_CHUNK):
        block.sort(axis=1)  # each column's values are contiguous in the transposed block
        ordered = block.T
        cols = np.arange(ordered.shape[1])
        median = midpoint(ordered[(theta - 1) // 2], ordered[theta // 2]).view(np.uint64)
        left = np.full(ordered.shape[1], (theta - 1) // 2 - (theta % 2), dtype=np.int64)
        right = np.full(ordered.shape[1], theta // 2 + (theta % 2), dtype=np.int64)
        as_unsigned = ordered.view(np.uint64)
        for _ in range(beta - theta % 2):
            has_left = left >= 0
            has_right = right < theta
            # Both differences are non-negative and below 2^64: exact in uint64.
            gap_left = median - as_unsigned[np.clip(left, 0, theta - 1), cols]
            gap_right = as_unsigned[np.clip(right, 0, theta - 1), cols] - median
            take_left = has_left & (~has_right | (gap_left <= gap_right))
            left -= take_left
            right += ~take_left
        window = np.take_along_axis(ordered, left[None, :] + 1 + np.arange(beta)[:, None], axis=0)
        out[columns] = combine(window, [1] * beta, beta)
    return out


def bulyan_tolerance(n: int, params: Mapping[str, object]) -> int:
    """``f`` from params (default: the largest with ``n >= 4f + 3``), checked against ``n``."""
    if params.get("f") is None:
        f = (n - 3) // 4
        if f < 0:
            raise TooFewUpdates(f"rule 'bulyan' needs at least 3 updates, got {n}")
        return f
    f = count_param("bulyan", "f", params["f"])
    if n < 4 * f + 3:
        raise TooFewUpdates(f"rule 'bulyan' with f={f} needs n >= 4f+3 = {4 * f + 3} updates, got {n}")
    return f


def bulyan_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    try:
        f = bulyan_tolerance(batch.size, params)
    except TooFewUpdates as exc:
        return median_fallback("bulyan", inputs, params, exc)
    chosen = bulyan_select(batch.matrix, f)
    beta = len(chosen) - 2 * f
    row = closest_to_median_mean(batch.matrix[sorted(chosen)], beta)
    return RuleOutcome(row, tuple(sorted(chosen)), None, {"f": f, "beta": beta, "krum_order": chosen})
