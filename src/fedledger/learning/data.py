"""Local data: CSV loading, non-IID Dirichlet splits, the breast-cancer demo data, standardization.

Standardization choice. Each member computes :class:`FeatureStats` (count, mean,
sum of squared deviations per feature) on its own rows; nothing else leaves the
member. Stats combine exactly (Chan et al.'s parallel formula), so a consortium
can pool them into shared statistics (:meth:`FeatureStats.combine`) and
give every member the same :class:`Standardizer` (recommended: one input space
for one global model), or a member can standardize with its own stats alone
(``Standardizer.fit``) when pooling is not wanted.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import ConfigError

__all__ = [
    "Dataset",
    "FeatureStats",
    "HospitalSplit",
    "Standardizer",
    "breast_cancer_hospitals",
    "dirichlet_partition",
    "dirichlet_split",
    "load_csv_dataset",
    "train_val_split",
    "write_csv_dataset",
]


class Dataset(NamedTuple):
    X: npt.NDArray[Any]  # float64 (n, n_features)
    y: npt.NDArray[Any]  # int64 (n,)
    feature_names: list[str]


def load_csv_dataset(path: str | Path, label_column: str) -> Dataset:
    """Read a CSV with a header row: numeric feature columns and an integer label column.

    ``ConfigError`` naming the file (and line) if it is missing, empty, ragged or non-numeric.
    """
    p = Path(path)
    try:
        fh = p.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read dataset {p}: {exc}") from exc
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise ConfigError(f"{p}: empty file, expected a header row") from None
        except csv.Error as exc:
            raise ConfigError(f"{p}:1: malformed CSV: {exc}") from exc
        header = [h.strip() for h in header]
        if label_column not in header:
            raise ConfigError(f"{p}:1: no label column {label_column!r} in header {header}")
        if len(set(header)) != len(header):
            raise ConfigError(f"{p}:1: duplicate column names in header")
        li = header.index(label_column)
        rows: list[list[float]] = []
        labels: list[int] = []
        try:
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ConfigError(f"{p}:{line}: {len(row)} fields, header has {len(header)}")
                try:
                    values = [float(c) for c in row]
                except ValueError:
                    bad = next(c for c in row if not _is_float(c))
                    raise ConfigError(f"{p}:{line}: non-numeric value {bad!r}") from None
                if not all(math.isfinite(v) for v in values):
                    raise ConfigError(f"{p}:{line}: NaN or Inf value")
                label = values.pop(li)
                if label != int(label) or label < 0:
                    raise ConfigError(f"{p}:{line}: label {row[li]!r} is not a non-negative integer")
                labels.append(int(label))
                rows.append(values)
        except csv.Error as exc:
            raise ConfigError(f"{p}:{reader.line_num}: malformed CSV: {exc}") from exc
    if not rows:
        raise ConfigError(f"{p}: no data rows")
    names = [h for i, h in enumerate(header) if i != li]
    return Dataset(np.asarray(rows, dtype=np.float64), np.asarray(labels, dtype=np.int64), names)


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def write_csv_dataset(
    path: str | Path, X: npt.ArrayLike, y: npt.ArrayLike, feature_names: Sequence[str], label_column: str
) -> Path:
    """Write (X, y) as CSV with a header; floats in ``repr`` so they read back exactly."""
    from fedledger.identity.private import open_private

    p = Path(path)
    Xa, ya = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)
    # Rows of (possibly personal) data: owner-only, in an owner-only folder.
    with open_private(p, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*feature_names, label_column])
        for row, label in zip(Xa, ya, strict=True):
            w.writerow([repr(float(v)) for v in row] + [str(int(label))])
    return p


def dirichlet_partition(
    y: npt.ArrayLike, n_parts: int, alpha: float, seed: int, *, min_per_class: int = 2
) -> list[npt.NDArray[np.int64]]:
    """Indices of a non-IID split: per class, shares drawn from Dirichlet(alpha, ..., alpha).

    Guarantee: every part gets at least ``min_per_class`` examples of every class
    (so each member can train and hold out a validation split); the remaining
    examples follow the Dirichlet shares. Small ``alpha`` -> more skew. Each part's
    indices are sorted; the same inputs and seed give the same split.
    """
    ya = np.asarray(y)
    if n_parts < 1 or alpha <= 0:
        raise ValueError("need n_parts >= 1 and alpha > 0")
    rng = np.random.default_rng(seed)
    parts: list[list[npt.NDArray[np.int64]]] = [[] for _ in range(n_parts)]
    for c in np.unique(ya):
        idx = rng.permutation(np.flatnonzero(ya == c))
        reserved = n_parts * min_per_class
        if len(idx) < reserved:
            raise ValueError(
                f"class {c} has {len(idx)} examples, fewer than {min_per_class} for each of {n_parts} parts"
            )
        for k in range(n_parts):
            parts[k].append(idx[k * min_per_class : (k + 1) * min_per_class])
        rest = idx[reserved:]
        shares = rng.dirichlet(np.full(n_parts, alpha))
        cuts = (np.cumsum(shares)[:-1] * len(rest)).astype(np.int64)
        for k, chunk in enumerate(np.split(rest, cuts)):
            parts[k].append(chunk)
    return [np.sort(np.concatenate(p)) for p in parts]


def dirichlet_split(
    X: npt.ArrayLike, y: npt.ArrayLike, n_parts: int, alpha: float, seed: int, *, min_per_class: int = 2
) -> list[tuple[npt.NDArray[Any], npt.NDArray[Any]]]:
    """(X, y) per part, from :func:`dirichlet_partition`."""
    Xa, ya = np.asarray(X), np.asarray(y)
    return [(Xa[i], ya[i]) for i in dirichlet_partition(ya, n_parts, alpha, seed, min_per_class=min_per_class)]


def train_val_split(
    X: npt.ArrayLike, y: npt.ArrayLike, *, val_fraction: float, seed: int
) -> tuple[npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any], npt.NDArray[Any]]:
    """Stratified split into (X_train, y_train, X_val, y_val); each class keeps >= 1 training row."""
    Xa, ya = np.asarray(X), np.asarray(y)
    rng = np.random.default_rng(seed)
    val: list[npt.NDArray[np.int64]] = []
    for c in np.unique(ya):
        idx = rng.permutation(np.flatnonzero(ya == c))
        n_val = min(int(round(len(idx) * val_fraction)), len(idx) - 1)
        val.append(idx[:n_val])
    vi = np.sort(np.concatenate(val)) if val else np.zeros(0, dtype=np.int64)
    ti = np.setdiff1d(np.arange(len(ya)), vi)
    return Xa[ti], ya[ti], Xa[vi], ya[vi]


class HospitalSplit(NamedTuple):
    hospitals: list[Path]
    test: Path
    feature_names: list[str]
    label_column: str


def breast_cancer_hospitals(
    out_dir: str | Path,
    n_hospitals: int = 5,
    alpha: float = 0.5,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
) -> HospitalSplit:
    """scikit-learn's breast cancer data as per-hospital CSVs plus a pooled held-out test CSV.

    Files: ``hospital_1.csv`` .. ``hospital_N.csv`` and ``test.csv``; label column
    ``diagnosis`` (0 = malignant, 1 = benign, scikit-learn's coding). The test set
    is a stratified ``test_fraction`` of all rows; the rest is split across
    hospitals by :func:`dirichlet_partition` (non-IID by label).
    """
    from sklearn.datasets import load_breast_cancer

    data: Any = load_breast_cancer()
    X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)
    names = [str(n) for n in data.feature_names]
    X_tr, y_tr, X_te, y_te = train_val_split(X, y, val_fraction=test_fraction, seed=seed)
    out = Path(out_dir)
    label = "diagnosis"
    paths = [
        write_csv_dataset(out / f"hospital_{k + 1}.csv", Xp, yp, names, label)
        for k, (Xp, yp) in enumerate(dirichlet_split(X_tr, y_tr, n_hospitals, alpha, seed + 1))
    ]
    test = write_csv_dataset(out / "test.csv", X_te, y_te, names, label)
    return HospitalSplit(paths, test, names, label)


@dataclass(frozen=True)
class FeatureStats:
    """Per-feature count, mean and M2 (sum of squared deviations): mergeable without the rows."""

    count: int
    mean: npt.NDArray[np.float64]
    m2: npt.NDArray[np.float64]

    @classmethod
    def of(cls, X: npt.ArrayLike) -> FeatureStats:
        Xa = np.asarray(X, dtype=np.float64)
        if Xa.ndim != 2 or Xa.shape[0] == 0:
            raise ValueError("need a non-empty 2-D array")
        mean = Xa.mean(axis=0)
        return cls(int(Xa.shape[0]), mean, ((Xa - mean) ** 2).sum(axis=0))

    def __add__(self, other: FeatureStats) -> FeatureStats:
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return FeatureStats(n, mean, m2)

    @staticmethod
    def combine(stats: Iterable[FeatureStats]) -> FeatureStats:
        items = list(stats)
        if not items:
            raise ValueError("no stats to combine")
        total = items[0]
        for s in items[1:]:
            total = total + s
        return total

    @property
    def std(self) -> npt.NDArray[np.float64]:
        return np.asarray(np.sqrt(self.m2 / self.count), dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureStats:
        return cls(int(d["count"]), np.asarray(d["mean"], np.float64), np.asarray(d["m2"], np.float64))


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / std`` per feature; constant features (std 0) are only centred."""

    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]

    @classmethod
    def from_stats(cls, stats: FeatureStats) -> Standardizer:
        return cls(stats.mean.copy(), stats.std)

    @classmethod
    def fit(cls, X: npt.ArrayLike) -> Standardizer:
        """From this member's rows alone."""
        return cls.from_stats(FeatureStats.of(X))

    def transform(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        Xa = np.asarray(X, dtype=np.float64)
        scale = np.where(self.std > 0, self.std, 1.0)
        out: npt.NDArray[np.float64] = (Xa - self.mean) / scale
        return out

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, list[float]]) -> Standardizer:
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["std"], np.float64))
