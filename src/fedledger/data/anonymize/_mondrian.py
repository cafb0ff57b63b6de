"""Mondrian multidimensional k-anonymity, vectorized with numpy.

Mondrian (LeFevre, DeWitt & Ramakrishnan, "Mondrian Multidimensional K-Anonymity", ICDE 2006) partitions the table
top-down: a partition is split on the quasi-identifier whose values it spreads widest (normalized by the domain),
as long as every part keeps at least ``k`` rows; when no dimension can be split, its rows are published with each
QI generalized to the partition's extent. Categorical QIs split along a generalization hierarchy, one part per child
of the partition's lowest common ancestor (Basic Mondrian, LeFevre et al., "Workload-aware Anonymization", KDD 2006).

Two split models:

* ``strict``: parts never overlap. Numeric QIs are cut between two distinct values, at the boundary closest to the
  median that leaves ``>= k`` rows on each side (the textbook median cut can leave fewer); categorical QIs split only
  if every non-empty child has ``>= k`` rows.
* ``relaxed``: numeric QIs are cut at the exact median, rows holding the median value shared out so the halves are
  equal; categorical children with fewer than ``k`` rows are pooled into one part (generalized to the parent) instead
  of blocking the split. Published extents may then overlap.

Extra constraints (l-diversity, t-closeness on sensitive attributes) are enforced the way LeFevre et al. describe:
a split is allowed only if every part satisfies them, so a table that satisfies them as a whole yields a partitioning
that does too.

Information loss is the normalized certainty penalty (Xu et al., "Utility-based anonymization using local
recoding", KDD 2006): per row and QI, range width / domain width for numeric values and leaves under the published
node / all leaves for categorical ones (0 for an ungeneralized value), averaged over rows and QIs, in percent.

The implementation keeps one permutation of the row indices; a partition is a slice of it, split by a stable
reordering, and work left to do lives on an explicit stack (no recursion limit on millions of rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from fedledger.data.anonymize._hierarchy import MISSING, Hierarchy
from fedledger.data.anonymize._metrics import emd_to_distribution

__all__ = [
    "CategoricalQI",
    "Constraints",
    "NumericQI",
    "Partitioning",
    "SensitiveAttribute",
    "SplitMode",
    "format_number",
    "mondrian",
]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
SplitMode = Literal["strict", "relaxed"]

# Numeric cuts tried per dimension when l-diversity / t-closeness reject the one closest to the median.
_MAX_CUTS_TRIED = 8


def format_number(value: float) -> str:
    """``17`` rather than ``17.0``; other floats in their shortest round-tripping form."""
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


@dataclass(frozen=True)
class NumericQI:
    """A numeric quasi-identifier: ``codes[i]`` indexes the sorted distinct ``values`` (-1: missing)."""

    name: str
    values: FloatArray
    codes: IntArray

    @classmethod
    def from_array(cls, name: str, x: npt.ArrayLike) -> NumericQI:
        arr = np.asarray(x, dtype=np.float64)
        missing = np.isnan(arr)
        values, codes = np.unique(arr[~missing], return_inverse=True)
        full = np.full(len(arr), -1, dtype=np.int64)
        full[~missing] = codes
        return cls(name, values, full)

    @property
    def span(self) -> float:
        return float(self.values[-1] - self.values[0]) if len(self.values) else 0.0

    def describe(self, low: int, high: int) -> str | None:
        """The published form of the extent ``[values[low], values[high]]``."""
        if high < 0:
            return None  # every row missing: nothing to hide
        if low < 0:
            return "*"  # missing and present values together
        if low == high:
            return format_number(float(self.values[low]))
        return f"[{format_number(float(self.values[low]))}, {format_number(float(self.values[high]))}]"


@dataclass(frozen=True)
class CategoricalQI:
    """A categorical quasi-identifier: ``codes[i]`` is the hierarchy leaf of row ``i``."""

    name: str
    hierarchy: Hierarchy
    codes: IntArray

    @classmethod
    def from_values(cls, name: str, values: Sequence[str | None], hierarchy: Hierarchy) -> CategoricalQI:
        return cls(name, hierarchy, hierarchy.leaf_ids(values))

    def describe(self, node: int) -> str | None:
        label = self.hierarchy.labels[node]
        return None if label == MISSING else label


QI = NumericQI | CategoricalQI


@dataclass(frozen=True)
class SensitiveAttribute:
    """A sensitive column coded ``0..n_values-1``; ``ordered`` for numeric values (t-closeness ground distance)."""

    name: str
    codes: IntArray
    n_values: int
    ordered: bool

    @classmethod
    def from_values(cls, name: str, values: Sequence[str | None], *, numeric: bool) -> SensitiveAttribute:
        if numeric:
            arr = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
            # Missing sorts last; it is one more value of the attribute.
            uniq, codes = np.unique(arr, return_inverse=True, equal_nan=True)
        else:
            keyed = np.array([MISSING if v is None else v for v in values], dtype=object)
            uniq, codes = np.unique(keyed, return_inverse=True)
        return cls(name, np.asarray(codes, dtype=np.int64).reshape(-1), len(uniq), numeric)


@dataclass(frozen=True)
class Constraints:
    k: int
    l: float | None = None  # noqa: E741  (the literature's name)
    l_kind: Literal["distinct", "entropy"] = "distinct"
    t: float | None = None


@dataclass(frozen=True)
class Partitioning:
    """The result: each row's partition, and each partition's extent per QI (``low``/``high`` codes; for a
    categorical QI both are the published hierarchy node) and NCP per QI."""

    qis: tuple[QI, ...]
    labels: IntArray
    sizes: IntArray
    low: IntArray
    high: IntArray
    penalty: FloatArray

    @property
    def n_partitions(self) -> int:
        return len(self.sizes)

    @property
    def ncp_percent(self) -> float:
        """Normalized certainty penalty averaged over rows and QIs, in percent."""
        if not self.qis or not len(self.labels):
            return 0.0
        return float((self.penalty * self.sizes[:, None]).sum() / (len(self.labels) * len(self.qis)) * 100)

    def ncp_percent_by_qi(self) -> dict[str, float]:
        n = max(len(self.labels), 1)
        per = (self.penalty * self.sizes[:, None]).sum(axis=0) / n * 100
        return {qi.name: float(v) for qi, v in zip(self.qis, per, strict=True)}

    def generalized(self, index: int) -> list[str | None]:
        """The published value of QI ``index`` for every row."""
        qi = self.qis[index]
        if isinstance(qi, NumericQI):
            extents = zip(self.low[:, index], self.high[:, index], strict=True)
            per_partition = [qi.describe(int(lo), int(hi)) for lo, hi in extents]
        else:
            per_partition = [qi.describe(int(node)) for node in self.low[:, index]]
        table = np.array(per_partition, dtype=object)
        out: list[str | None] = table[self.labels].tolist()
        return out


class _Splitter:
    def __init__(
        self, qis: Sequence[QI], constraints: Constraints, mode: SplitMode, sensitive: Sequence[SensitiveAttribute]
    ) -> None:
        self.qis = tuple(qis)
        self.constraints = constraints
        self.mode = mode
        self.sensitive = tuple(sensitive)
        self.codes = np.stack([qi.codes for qi in qis], axis=1) if qis else np.zeros((0, 0), dtype=np.int64)
        self.spans = [qi.span if isinstance(qi, NumericQI) else 0.0 for qi in qis]
        self.node_penalty = [qi.hierarchy.penalty() if isinstance(qi, CategoricalQI) else None for qi in qis]
        self.table_histograms = {
            sa.name: np.bincount(sa.codes, minlength=sa.n_values).astype(np.int64) for sa in self.sensitive
        }

    # -- describing a partition -------------------------------------------------------------------------

    def describe(self, sub: IntArray) -> tuple[IntArray, IntArray, FloatArray, IntArray]:
        """(low, high, penalty, lca_depth) per QI for the rows ``sub`` (codes, one column per QI)."""
        d = len(self.qis)
        low = np.empty(d, dtype=np.int64)
        high = np.empty(d, dtype=np.int64)
        penalty = np.empty(d, dtype=np.float64)
        depth = np.zeros(d, dtype=np.int64)
        for j, qi in enumerate(self.qis):
            col = sub[:, j]
            if isinstance(qi, NumericQI):
                lo, hi = int(col.min()), int(col.max())
                low[j], high[j] = lo, hi
                if hi < 0:
                    penalty[j] = 0.0
                elif lo < 0:
                    penalty[j] = 1.0
                else:
                    span = self.spans[j]
                    penalty[j] = (qi.values[hi] - qi.values[lo]) / span if span > 0 else 0.0
            else:
                paths = qi.hierarchy.ancestors[col]
                same = (paths == paths[0]).all(axis=0)
                # The lowest common ancestor is the last level at which every row's path agrees.
                lca_depth = len(same) - 1 if same.all() else int(np.argmin(same)) - 1
                node = int(paths[0, lca_depth])
                low[j] = high[j] = node
                depth[j] = lca_depth
                table_penalty = self.node_penalty[j]
                assert table_penalty is not None
                penalty[j] = table_penalty[node]
        return low, high, penalty, depth

    # -- candidate splits -------------------------------------------------------------------------------

    def _satisfied(self, idx: IntArray, groups: IntArray, n_groups: int) -> bool:
        c = self.constraints
        if np.bincount(groups, minlength=n_groups).min() < c.k:
            return False
        if c.l is None and c.t is None:
            return True
        for sa in self.sensitive:
            hist = np.bincount(groups * sa.n_values + sa.codes[idx], minlength=n_groups * sa.n_values)
            hist = hist.reshape(n_groups, sa.n_values)
            if c.l is not None:
                if c.l_kind == "distinct":
                    if (hist > 0).sum(axis=1).min() < c.l:
                        return False
                else:
                    p = hist / hist.sum(axis=1, keepdims=True)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
                    if np.exp(entropy.min()) < c.l - 1e-9:
                        return False
            if c.t is not None:
                emd = emd_to_distribution(hist, self.table_histograms[sa.name], ordered=sa.ordered)
                if emd.max() > c.t + 1e-12:
                    return False
        return True

    def split_numeric(self, j: int, idx: IntArray, col: IntArray, low: int, high: int) -> IntArray | None:
        n = len(col)
        k = self.constraints.k
        if low < 0 <= high:
            groups = (col >= 0).astype(np.int64)  # missing apart from present values
            return groups if self._satisfied(idx, groups, 2) else None
        if self.mode == "relaxed":
            if n // 2 < k:
                return None
            groups = np.zeros(n, dtype=np.int64)
            groups[np.argsort(col, kind="stable")[n // 2 :]] = 1
            return groups if self._satisfied(idx, groups, 2) else None
        ordered = np.sort(col)
        cuts = np.flatnonzero(ordered[1:] != ordered[:-1]) + 1  # left-part sizes at value boundaries
        cuts = cuts[(cuts >= k) & (cuts <= n - k)]
        if not len(cuts):
            return None
        for cut in cuts[np.argsort(np.abs(2 * cuts - n), kind="stable")][:_MAX_CUTS_TRIED]:
            cut_groups: IntArray = (col > ordered[cut - 1]).astype(np.int64)
            if self._satisfied(idx, cut_groups, 2):
                return cut_groups
        return None

    def split_categorical(self, qi: CategoricalQI, idx: IntArray, col: IntArray, depth: int) -> IntArray | None:
        children = qi.hierarchy.ancestors[col, depth + 1]
        _, groups = np.unique(children, return_inverse=True)
        groups = groups.reshape(-1).astype(np.int64)
        counts = np.bincount(groups)
        k = self.constraints.k
        if self.mode == "relaxed" and (counts < k).any():
            # Pool the small children into one part (published as the parent); if the pool itself is too small,
            # it joins the smallest large child.
            small = counts < k
            big = np.flatnonzero(~small)
            if not len(big):
                return None
            relabel = np.empty(len(counts), dtype=np.int64)
            relabel[big] = np.arange(len(big))
            relabel[small] = len(big) if counts[small].sum() >= k else relabel[big[np.argmin(counts[big])]]
            groups = relabel[groups]
            counts = np.bincount(groups)
        if len(counts) < 2:
            return None
        return groups if self._satisfied(idx, groups, len(counts)) else None

    # -- the partitioning loop --------------------------------------------------------------------------

    def run(self) -> Partitioning:
        n, d = self.codes.shape[0], len(self.qis)
        perm = np.arange(n, dtype=np.int64)
        labels = np.zeros(n, dtype=np.int64)
        finals_low: list[IntArray] = []
        finals_high: list[IntArray] = []
        finals_penalty: list[FloatArray] = []
        sizes: list[int] = []
        stack = [(0, n)] if n else []
        while stack:
            start, end = stack.pop()
            idx = perm[start:end]
            sub = self.codes[idx]
            low, high, penalty, depth = self.describe(sub)
            groups = None
            # Widest (normalized) dimension first; a dimension whose values are all equal cannot be split.
            for j in np.argsort(-penalty, kind="stable"):
                if penalty[j] <= 0:
                    break
                qi = self.qis[j]
                if isinstance(qi, NumericQI):
                    groups = self.split_numeric(int(j), idx, sub[:, j], int(low[j]), int(high[j]))
                else:
                    groups = self.split_categorical(qi, idx, sub[:, j], int(depth[j]))
                if groups is not None:
                    break
            if groups is None:
                labels[idx] = len(sizes)
                sizes.append(end - start)
                finals_low.append(low)
                finals_high.append(high)
                finals_penalty.append(penalty)
                continue
            order = np.argsort(groups, kind="stable")
            perm[start:end] = idx[order]
            bounds = start + np.concatenate([[0], np.cumsum(np.bincount(groups))])
            stack.extend((int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a)
        shape = (len(sizes), d)
        return Partitioning(
            qis=self.qis,
            labels=labels,
            sizes=np.asarray(sizes, dtype=np.int64),
            low=np.asarray(finals_low, dtype=np.int64).reshape(shape),
            high=np.asarray(finals_high, dtype=np.int64).reshape(shape),
            penalty=np.asarray(finals_penalty, dtype=np.float64).reshape(shape),
        )


def mondrian(
    qis: Sequence[QI],
    *,
    k: int,
    mode: SplitMode = "strict",
    sensitive: Sequence[SensitiveAttribute] = (),
    l: float | None = None,  # noqa: E741
    l_kind: Literal["distinct", "entropy"] = "distinct",
    t: float | None = None,
) -> Partitioning:
    """Partition the rows so every partition has ``>= k`` rows (and, when given, is l-diverse and t-close on every
    sensitive attribute), generalizing each QI to the partition's extent. All QIs must have the same length.

    The constraints are only as achievable as the whole table allows: a table with fewer than ``k`` rows comes back
    as one partition, and callers must check the achieved values (see :mod:`._metrics`) rather than assume them.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    if mode not in ("strict", "relaxed"):
        raise ValueError(f"unknown Mondrian mode {mode!r}")
    lengths = {len(qi.codes) for qi in qis} | {len(sa.codes) for sa in sensitive}
    if len(lengths) > 1:
        raise ValueError("quasi-identifiers and sensitive attributes must have one value per row")
    return _Splitter(qis, Constraints(k=k, l=l, l_kind=l_kind, t=t), mode, sensitive).run()
