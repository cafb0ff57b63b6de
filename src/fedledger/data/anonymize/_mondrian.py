"""Mondrian multidimensional k-anonymity, vectorized with numpy.

Mondrian (LeFevre, DeWitt & Ramakrishnan, "Mondrian Multidimensional K-Anonymity", ICDE 2006) partitions the table
top-down: a partition is split along one quasi-identifier as long as every part keeps at least ``k`` rows; when no
split is allowed, its rows are published with each QI generalized to the partition's extent. Categorical QIs split
along a generalization hierarchy, by the children of the partition's lowest common ancestor (Basic Mondrian, LeFevre
et al., "Workload-aware Anonymization", KDD 2006).

Which split. Textbook Mondrian takes the dimension with the widest normalized span, cuts it at the median and falls
back to the next dimension when that cut is not allowed. Here every dimension proposes its allowed split that loses
least, and the proposals compete, as in Workload-aware Mondrian (which scores every candidate split by its workload's
measure: information gain, variance), scored by the normalized certainty penalty this module reports:

* a numeric dimension proposes, among every cut between two distinct values that leaves ``>= k`` rows on each side,
  the one whose parts have the smallest total NCP (all cuts scored in one vectorized pass over prefix and suffix
  extents; ties go to the cut nearest the median), so a heavily tied median (Adult's ages and years of education)
  never blocks a split;
* a categorical dimension proposes the split by the children of the partition's lowest common ancestor (below);
* the proposal with the highest *gain ratio* wins: NCP removed divided by the split information (the entropy of the
  parts' shares), Quinlan's C4.5 normalization (Quinlan, "C4.5: Programs for Machine Learning", 1993), which keeps
  a balanced split from beating one that removes almost as much loss by peeling off a homogeneous group. On UCI
  Adult it gives lower NCP than ranking by the loss removed alone (``benchmarks/anonymization.py``), and lower on
  most of the other tables tried (Adult's test split, other Adult QIs, heart disease, NSL-KDD).

Refining a partition never raises its NCP, so splitting goes on until no proposal is allowed. Dimensions are tried
widest first, so ties go to the textbook choice; the result is deterministic.

Two split models:

* ``strict``: the parts are disjoint regions of the QI domain (LeFevre's strict multidimensional partitioning): every
  combination of original QI values lies in exactly one partition. Numeric QIs are cut between two distinct values.
  A categorical split groups the lowest common ancestor's children: each child with ``>= k`` rows is a part of its
  own, the smaller children are pooled into one part (published as the ancestor), and a pool smaller than ``k``
  joins the smallest large child. The parts' value sets are disjoint; two parts may still *publish* the same label
  (a pool and a later pool both ``*``), which merges them into one equivalence class of ``>= 2k`` rows.
* ``relaxed``: a numeric QI may also be cut at the exact median, rows holding the median value shared out so the
  halves are equal (taken when it loses less than every strict cut), so one value can lie in two partitions
  (overlapping regions); categorical splits as in ``strict``.

Extra constraints (l-diversity, t-closeness on sensitive attributes) are enforced the way LeFevre et al. describe:
a split is allowed only if every part satisfies them, so a table that satisfies them as a whole yields a partitioning
that does too.

Information loss is the normalized certainty penalty (Xu et al., "Utility-based anonymization using local
recoding", KDD 2006): per row and QI, range width / domain width for numeric values and leaves under the published
node / all leaves for categorical ones (0 for an ungeneralized value), averaged over rows and QIs, in percent.

Every QI is one or more columns of a single integer matrix (a numeric QI's value code, a categorical QI's
root-to-leaf path), so the extent of any group of rows is its column-wise min and max, and the NCP of any number of
candidate parts is a handful of array operations. The implementation keeps one permutation of the row indices; a
partition is a slice of it, split by a stable reordering, and work left to do lives on an explicit stack (no
recursion limit on millions of rows).
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

# Candidate cuts tried per numeric dimension, best first, when l-diversity / t-closeness reject the best one.
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
        numeric = [qi for qi in self.qis if isinstance(qi, NumericQI)]
        categorical = [qi for qi in self.qis if isinstance(qi, CategoricalQI)]
        # QI indices of the numeric QIs, then of the categorical ones: the order of the columns of ``wide``.
        self.order = np.array(
            [j for j, qi in enumerate(self.qis) if isinstance(qi, NumericQI)]
            + [j for j, qi in enumerate(self.qis) if isinstance(qi, CategoricalQI)],
            dtype=np.int64,
        )
        self.n_numeric = len(numeric)
        self.categorical = tuple(categorical)  # at positions n_numeric, n_numeric + 1, ...
        self.position = {int(j): p for p, j in enumerate(self.order)}  # QI index -> position in that order
        # Numeric QIs: one column of value codes each; their values laid end to end, ``value_offset`` apart.
        sizes = [len(qi.values) for qi in numeric]
        self.value_offset = np.cumsum([0, *sizes], dtype=np.int64)[:-1]
        # One padding value at the end, so an all-missing QI (no values) still indexes inside the array.
        self.values = np.concatenate([*(qi.values for qi in numeric), [0.0]])
        spans = np.array([qi.span for qi in numeric], dtype=np.float64)
        self.spans = np.where(spans > 0, spans, np.inf)  # a constant column loses nothing
        # Categorical QIs: ``levels`` columns each, the root-to-leaf path in node ids made global by
        # ``node_offset``, padded with the leaf; the levels at which a group's paths agree end at its lowest
        # common ancestor.
        self.levels = max((qi.hierarchy.ancestors.shape[1] for qi in categorical), default=1)
        node_counts = [len(qi.hierarchy.labels) for qi in categorical]
        node_offset = np.cumsum([0, *node_counts], dtype=np.int64)[:-1]
        self.node_offset = node_offset
        self.path_start = self.n_numeric + self.levels * np.arange(len(categorical), dtype=np.int64)
        self.node_penalty = (
            np.concatenate([qi.hierarchy.penalty() for qi in categorical]) if categorical else np.zeros(0)
        )
        blocks: list[IntArray] = [qi.codes[:, None] for qi in numeric]
        for qi, offset in zip(categorical, node_offset, strict=True):
            paths = qi.hierarchy.ancestors[qi.codes]
            pad = np.repeat(paths[:, -1:], self.levels - paths.shape[1], axis=1)
            blocks.append(np.concatenate([paths, pad], axis=1) + offset)
        self.wide: npt.NDArray[np.int32] = (
            np.concatenate(blocks, axis=1).astype(np.int32) if blocks else np.zeros((0, 0), dtype=np.int32)
        )
        self.table_histograms = {
            sa.name: np.bincount(sa.codes, minlength=sa.n_values).astype(np.int64) for sa in self.sensitive
        }

    # -- describing groups of rows ----------------------------------------------------------------------

    def _loss(self, lo: npt.NDArray[np.int32], hi: npt.NDArray[np.int32]) -> tuple[FloatArray, IntArray]:
        """From the column-wise min and max of G groups (each ``(G, width)``): the NCP of each numeric QI
        ``(G, n_numeric)`` and the published (global) node of each categorical QI ``(G, n_categorical)``."""
        nn = self.n_numeric
        a, b = lo[:, :nn], hi[:, :nn]
        width = (
            self.values[np.maximum(b, 0) + self.value_offset] - self.values[np.maximum(a, 0) + self.value_offset]
        ) / self.spans
        # All missing: nothing generalized; missing mixed with present values: published as ``*``.
        numeric_penalty: FloatArray = np.where(b < 0, 0.0, np.where(a < 0, 1.0, width))
        agree = (lo[:, nn:] == hi[:, nn:]).reshape(len(lo), -1, self.levels)
        lca = np.logical_and.accumulate(agree, axis=2).sum(axis=2) - 1  # the root always agrees
        node: IntArray = lo[np.arange(len(lo))[:, None], self.path_start + lca].astype(np.int64)
        return numeric_penalty, node

    def total_penalty(self, lo: npt.NDArray[np.int32], hi: npt.NDArray[np.int32]) -> FloatArray:
        """NCP of each of G groups summed over its QIs."""
        numeric_penalty, node = self._loss(lo, hi)
        total: FloatArray = numeric_penalty.sum(axis=1) + self.node_penalty[node].sum(axis=1)
        return total

    def extents(self, lo: npt.NDArray[np.int32], hi: npt.NDArray[np.int32]) -> tuple[IntArray, IntArray, FloatArray]:
        """Per group and QI (in QI order): the published ``low``/``high`` codes (for a categorical QI both are the
        published node) and the NCP."""
        numeric_penalty, node = self._loss(lo, hi)
        local_node = node - self.node_offset
        low = np.empty((len(lo), len(self.qis)), dtype=np.int64)
        high = np.empty_like(low)
        penalty = np.empty((len(lo), len(self.qis)), dtype=np.float64)
        low[:, self.order] = np.concatenate([lo[:, : self.n_numeric], local_node], axis=1)
        high[:, self.order] = np.concatenate([hi[:, : self.n_numeric], local_node], axis=1)
        penalty[:, self.order] = np.concatenate([numeric_penalty, self.node_penalty[node]], axis=1)
        return low, high, penalty

    def split_cost(self, sub: npt.NDArray[np.int32], groups: IntArray) -> float:
        """Total NCP (summed over rows and QIs) of the rows ``sub`` once split into ``groups``."""
        counts = np.bincount(groups)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ordered = sub[np.argsort(groups, kind="stable")]
        lo = np.minimum.reduceat(ordered, starts, axis=0)
        hi = np.maximum.reduceat(ordered, starts, axis=0)
        return float((self.total_penalty(lo, hi) * counts).sum())

    # -- candidate splits: (total NCP of the parts, part of each row) -----------------------------------

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

    def _scored(self, idx: IntArray, sub: npt.NDArray[np.int32], groups: IntArray) -> tuple[float, IntArray] | None:
        n_groups = int(groups.max()) + 1
        if n_groups < 2 or not self._satisfied(idx, groups, n_groups):
            return None
        return self.split_cost(sub, groups), groups

    def split_numeric(self, column: int, idx: IntArray, sub: npt.NDArray[np.int32]) -> tuple[float, IntArray] | None:
        col = sub[:, column]
        if col.min() < 0 <= col.max():
            return self._scored(idx, sub, (col >= 0).astype(np.int64))  # missing apart from present values
        order = np.argsort(col, kind="stable")
        best = self._cut_between_values(idx, sub, col, order)
        n = len(col)
        if self.mode == "relaxed" and n // 2 >= self.constraints.k:
            # The exact median, ties shared out; taken when it loses less than every cut between values.
            groups = np.zeros(n, dtype=np.int64)
            groups[order[n // 2 :]] = 1
            median = self._scored(idx, sub, groups)
            if median is not None and (best is None or median[0] < best[0] - 1e-9):
                best = median
        return best

    def _cut_between_values(
        self, idx: IntArray, sub: npt.NDArray[np.int32], col: npt.NDArray[np.int32], order: IntArray
    ) -> tuple[float, IntArray] | None:
        """The allowed cut between two distinct values of ``col`` that loses least (ties: nearest the median)."""
        n = len(col)
        k = self.constraints.k
        ordered = col[order]
        starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))  # first row of each value
        cuts = starts[1:]  # left-part sizes at value boundaries; cut v leaves values < v on the left
        allowed = np.flatnonzero((cuts >= k) & (cuts <= n - k))
        if not len(allowed):
            return None
        # The extent of each value's rows, then of every prefix and suffix of values: both parts of every cut at
        # once, in memory proportional to the number of distinct values.
        rows = sub[order]
        value_lo, value_hi = np.minimum.reduceat(rows, starts, axis=0), np.maximum.reduceat(rows, starts, axis=0)
        prefix_lo, prefix_hi = np.minimum.accumulate(value_lo, axis=0), np.maximum.accumulate(value_hi, axis=0)
        suffix_lo = np.minimum.accumulate(value_lo[::-1], axis=0)[::-1]
        suffix_hi = np.maximum.accumulate(value_hi[::-1], axis=0)[::-1]
        cuts = cuts[allowed]
        both = self.total_penalty(
            np.concatenate([prefix_lo[allowed], suffix_lo[allowed + 1]]),
            np.concatenate([prefix_hi[allowed], suffix_hi[allowed + 1]]),
        )
        costs = cuts * both[: len(cuts)] + (n - cuts) * both[len(cuts) :]
        for best in np.lexsort((np.abs(2 * cuts - n), costs))[:_MAX_CUTS_TRIED]:
            groups = (col > ordered[cuts[best] - 1]).astype(np.int64)
            if self._satisfied(idx, groups, 2):
                return float(costs[best]), groups
        return None

    def split_categorical(
        self, column: int, idx: IntArray, sub: npt.NDArray[np.int32]
    ) -> tuple[float, IntArray] | None:
        """Split by the children of the rows' lowest common ancestor (``column`` is the ancestor's level)."""
        _, groups = np.unique(sub[:, column + 1], return_inverse=True)
        groups = groups.reshape(-1).astype(np.int64)
        counts = np.bincount(groups)
        k = self.constraints.k
        if (counts < k).any():
            # Pool the small children into one part (published as the ancestor); if the pool itself is too small,
            # it joins the smallest large child. The parts' value sets stay disjoint.
            small = counts < k
            big = np.flatnonzero(~small)
            if not len(big):
                return None
            relabel = np.empty(len(counts), dtype=np.int64)
            relabel[big] = np.arange(len(big))
            relabel[small] = len(big) if counts[small].sum() >= k else relabel[big[np.argmin(counts[big])]]
            groups = relabel[groups]
        return self._scored(idx, sub, groups)

    def best_split(
        self, idx: IntArray, sub: npt.NDArray[np.int32], penalty: FloatArray, node: IntArray
    ) -> IntArray | None:
        """The allowed split with the highest gain ratio, or None; dimensions are tried widest first, so ties go
        to the textbook Mondrian choice."""
        parent_cost = float(penalty.sum()) * len(idx)
        best: tuple[float, IntArray] | None = None
        for j in np.argsort(-penalty, kind="stable"):
            if penalty[j] <= 0:
                break  # a dimension whose values are all equal cannot be split
            position = self.position[j]
            if position < self.n_numeric:
                candidate = self.split_numeric(position, idx, sub)
            else:
                qi = self.categorical[position - self.n_numeric]
                depth = int(qi.hierarchy.depth[node[j]])
                column = self.n_numeric + (position - self.n_numeric) * self.levels + depth
                candidate = self.split_categorical(column, idx, sub)
            if candidate is None:
                continue
            cost, groups = candidate
            shares = np.bincount(groups) / len(groups)
            ratio = (parent_cost - cost) / float(-(shares * np.log(shares)).sum())
            if best is None or ratio > best[0] * (1 + 1e-12):
                best = ratio, groups
        return None if best is None else best[1]

    # -- the partitioning loop --------------------------------------------------------------------------

    def run(self) -> Partitioning:
        n, d = self.wide.shape[0], len(self.qis)
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
            sub = self.wide[idx]
            low, high, penalty = (a[0] for a in self.extents(sub.min(axis=0)[None], sub.max(axis=0)[None]))
            # Every part of a split keeps >= k rows, so fewer than 2k rows cannot split.
            groups = self.best_split(idx, sub, penalty, low) if end - start >= 2 * self.constraints.k else None
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
