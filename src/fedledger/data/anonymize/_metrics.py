"""Privacy and utility measures over equivalence classes, vectorized with numpy.

An *equivalence class* is a set of rows sharing the same (generalized) quasi-identifier values. Given each row's
class label and a sensitive attribute coded as integers ``0..m-1``, one 2-D histogram (classes x values) answers all:

* k-anonymity (Sweeney 2002): the smallest class size;
* distinct l-diversity and entropy l-diversity (Machanavajjhala et al., TKDD 2007): the fewest distinct sensitive
  values in a class, and ``exp`` of the smallest class entropy;
* t-closeness (Li, Li & Venkatasubramanian, ICDE 2007): the largest Earth Mover's Distance between a class's
  sensitive distribution and the whole table's, with the *equal distance* ground metric for categorical values
  (EMD = half the L1 distance) and the *ordered distance* for numeric ones (EMD = sum of |cumulative differences|
  / (m - 1)).

The same definitions as pycanon (which the tests cross-check), but one pass instead of one per class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "distinct_l_diversity",
    "emd_to_distribution",
    "entropy_l_diversity",
    "equivalence_classes",
    "k_anonymity",
    "sensitive_histogram",
    "t_closeness",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def equivalence_classes(frame: pd.DataFrame, columns: Sequence[str]) -> IntArray:
    """Each row's class label (0..n_classes-1): rows with equal values in ``columns`` (nulls equal to nulls)."""
    if not columns:
        return np.zeros(len(frame), dtype=np.int64)
    labels = frame.groupby(list(columns), dropna=False, sort=False).ngroup().to_numpy()
    return np.asarray(labels, dtype=np.int64)


def sensitive_histogram(labels: IntArray, codes: IntArray, n_values: int) -> IntArray:
    """(n_classes, n_values) counts of each sensitive value in each class."""
    n_classes = int(labels.max()) + 1 if len(labels) else 0
    flat = np.bincount(labels * n_values + codes, minlength=n_classes * n_values)
    return flat.reshape(n_classes, n_values)


def k_anonymity(labels: IntArray) -> int:
    return int(np.bincount(labels).min()) if len(labels) else 0


def distinct_l_diversity(histogram: IntArray) -> int:
    return int((histogram > 0).sum(axis=1).min()) if len(histogram) else 0


def _entropy(histogram: IntArray) -> FloatArray:
    sizes = histogram.sum(axis=1, keepdims=True)
    p = histogram / np.maximum(sizes, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    entropy: FloatArray = -terms.sum(axis=1)
    return entropy


def entropy_l_diversity(histogram: IntArray) -> float:
    """``exp(min entropy)``: a table is entropy l-diverse for every l up to this value."""
    return float(np.exp(_entropy(histogram).min())) if len(histogram) else 0.0


def emd_to_distribution(histogram: IntArray, reference: IntArray, *, ordered: bool) -> FloatArray:
    """Each class's EMD to the distribution of ``reference`` counts (ordered or equal ground distance)."""
    p = histogram / np.maximum(histogram.sum(axis=1, keepdims=True), 1)
    q = reference / max(int(reference.sum()), 1)
    diff = p - q
    m = len(reference)
    if m <= 1:
        return np.zeros(len(histogram))
    if ordered:
        emd: FloatArray = np.abs(np.cumsum(diff, axis=1)).sum(axis=1) / (m - 1)
    else:
        emd = 0.5 * np.abs(diff).sum(axis=1)
    return emd


def t_closeness(histogram: IntArray, *, ordered: bool) -> float:
    """The smallest ``t`` the classes satisfy: the largest EMD of a class to the table."""
    if not len(histogram):
        return 0.0
    return float(emd_to_distribution(histogram, histogram.sum(axis=0), ordered=ordered).max())
