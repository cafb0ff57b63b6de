"""Scanning a table: stream it once, profile every column, classify.

Files can hold millions of rows, so a scan streams batches (:func:`fedledger.data.tabular.iter_batches`), counts
rows and empty cells exactly over the whole file, and keeps a uniform sample of rows by reservoir sampling
(Vitter 1985, Algorithm R; one reservoir of whole rows, so every column is sampled from the same rows). The report
says how many rows were read and how many were sampled; it is built only after the last batch, so a file that fails
half-way raises instead of producing a partial report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedledger.data.classify.features import ColumnProfile
from fedledger.data.classify.model import ColumnClassifier
from fedledger.data.tabular import DEFAULT_BATCH_ROWS, TableSource, detect_source, iter_batches
from fedledger.exceptions import BadInput

__all__ = ["DEFAULT_SAMPLE_ROWS", "ColumnReport", "ScanReport", "TableProfile", "profile_table", "scan_table"]

DEFAULT_SAMPLE_ROWS = 2_000


@dataclass
class TableProfile:
    source: TableSource
    rows: int
    sampled_rows: int
    columns: list[ColumnProfile]


@dataclass
class ColumnReport:
    name: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[str]
    nulls: int
    null_ratio: float

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "class": self.label,
            "confidence": round(self.confidence, 4),
            "probabilities": self.probabilities,
            "evidence": self.evidence,
            "nulls": self.nulls,
            "null_ratio": round(self.null_ratio, 4),
        }


@dataclass
class ScanReport:
    source: TableSource
    rows: int
    sampled_rows: int
    columns: list[ColumnReport]
    model: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": str(self.source.path),
            "format": self.source.format,
            "encoding": self.source.encoding,
            "delimiter": self.source.delimiter,
            "note": self.source.note,
            "rows": self.rows,
            "sampled_rows": self.sampled_rows,
            "complete": True,  # a report exists only once every row was read
            "model": self.model,
            "columns": [c.to_json() for c in self.columns],
        }


def profile_table(
    path: str | Path,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    seed: int = 0,
) -> TableProfile:
    """Exact row and null counts per column over the whole file, and a reservoir sample of rows."""
    if sample_rows < 1:
        raise BadInput(f"sample_rows must be >= 1, got {sample_rows}")
    rng = np.random.default_rng(seed)
    names: list[str] = []
    reservoir: dict[str, npt.NDArray[Any]] = {}
    nulls: dict[str, int] = {}
    seen = 0
    for batch in iter_batches(path, batch_rows=batch_rows, columns=columns, as_text=True):
        if not names:
            names = [str(c) for c in batch.columns]
            reservoir = {n: np.empty(0, dtype=object) for n in names}
            nulls = dict.fromkeys(names, 0)
        count = len(batch)
        if not count:
            continue
        for name, column in zip(names, batch.columns, strict=True):
            nulls[name] += int(batch[column].isna().sum())
        picks = _reservoir_picks(rng, seen, count, sample_rows, len(reservoir[names[0]]))
        for name, column in zip(names, batch.columns, strict=True):
            values = batch[column].to_numpy(dtype=object)
            # Fill first: rows after the fill point may replace slots the same batch just filled.
            current = np.concatenate([reservoir[name], values[picks.fill]])
            current[picks.slots] = values[picks.rows]
            reservoir[name] = current
        seen += count
    profiles = [
        ColumnProfile(
            name=name,
            rows=seen,
            nulls=nulls[name],
            sample=[str(v) for v in reservoir[name] if v is not None and not (isinstance(v, float) and pd.isna(v))],
        )
        for name in names
    ]
    sampled = len(reservoir[names[0]]) if names else 0
    return TableProfile(detect_source(path), rows=seen, sampled_rows=sampled, columns=profiles)


@dataclass
class _Picks:
    fill: npt.NDArray[Any]  # batch rows appended while the reservoir is not full
    slots: npt.NDArray[Any]  # reservoir slots replaced...
    rows: npt.NDArray[Any]  # ...by these batch rows


def _reservoir_picks(rng: np.random.Generator, seen: int, count: int, capacity: int, filled: int) -> _Picks:
    """Algorithm R over one batch: row t (0-based over the file) replaces slot j ~ U[0, t] when j < capacity."""
    take = max(0, min(capacity - filled, count))
    fill = np.arange(take)
    rest = np.arange(take, count)
    if not len(rest):
        return _Picks(fill, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
    positions = seen + rest  # 0-based index of each row in the whole file
    draws = (rng.random(len(rest)) * (positions + 1)).astype(np.int64)
    hit = draws < capacity
    slots, rows = draws[hit], rest[hit]
    # Sequential semantics: a later row replacing the same slot wins, so keep each slot's last replacement.
    last = len(slots) - 1 - np.unique(slots[::-1], return_index=True)[1]
    return _Picks(fill, slots[last], rows[last])


def scan_table(
    path: str | Path,
    *,
    classifier: ColumnClassifier | None = None,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    stale_labels: int = 0,
) -> ScanReport:
    """Profile the file and classify every column (default classifier: the shipped corpus, no org labels)."""
    table = profile_table(path, sample_rows=sample_rows, batch_rows=batch_rows)
    model = classifier or ColumnClassifier.load()
    predictions = model.classify(table.columns)
    reports = [
        ColumnReport(
            name=profile.name,
            label=prediction.label,
            confidence=prediction.confidence,
            probabilities=prediction.probabilities,
            evidence=prediction.evidence,
            nulls=profile.nulls,
            null_ratio=profile.null_ratio,
        )
        for profile, prediction in zip(table.columns, predictions, strict=True)
    ]
    info = {"corpus_columns": model.corpus_columns, "org_labels": model.org_labels, "stale_labels": stale_labels}
    return ScanReport(table.source, rows=table.rows, sampled_rows=table.sampled_rows, columns=reports, model=info)
