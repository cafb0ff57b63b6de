"""Scanning a table: stream it once, profile every column, classify, and decide each column's class.

Files can hold millions of rows, so a scan streams batches (:func:`fedledger.data.tabular.iter_batches`), counts
rows and empty cells exactly over the whole file, and keeps a uniform sample of rows by reservoir sampling
(Vitter 1985, Algorithm R; one reservoir of whole rows, so every column is sampled from the same rows). The report
says how many rows were read and how many were sampled; it is built only after the last batch, so a file that fails
half-way raises instead of producing a partial report. :func:`profile_frame` samples a table already in memory
with the very same draws, so ``data protect`` classifies exactly what ``data scan`` showed.

:func:`decide` is the one place a column's class is decided, for ``data scan`` and ``data protect`` alike:

1. a class the user declared (the policy's ``class``, ``--classes``, a ``data label`` label) is taken as given;
2. otherwise the classifier's verdict; when its top probability is below :data:`UNSURE_BELOW` the column is
   *unsure*: it takes the most protective class (:data:`PROTECTIVE_ORDER`) among the smallest set of classes that
   together hold :data:`UNSURE_BELOW` of the probability, and is flagged;
3. whatever 1 and 2 said, a column whose values validate as direct identifiers
   (:func:`~fedledger.data.classify.validators.validated_identifier`: e-mails, phones, IBANs, card numbers, national
   ids) is an identifier. Only an explicit per-column policy ``action`` can then publish it, and the protect report
   flags that.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedledger.data.classify.features import ColumnProfile
from fedledger.data.classify.model import CLASSES, ColumnClassifier
from fedledger.data.classify.validators import ValidatedIdentifier, validated_identifier
from fedledger.data.tabular import DEFAULT_BATCH_ROWS, TableSource, detect_source, iter_batches
from fedledger.exceptions import BadInput, ConfigError

__all__ = [
    "DEFAULT_SAMPLE_ROWS",
    "PROTECTIVE_ORDER",
    "UNSURE_BELOW",
    "ColumnReport",
    "Decision",
    "ScanReport",
    "TableProfile",
    "decide",
    "profile_frame",
    "profile_table",
    "protective_class",
    "scan_table",
]

DEFAULT_SAMPLE_ROWS = 2_000
# Below this calibrated probability the classifier is "unsure" of a column. On the Faker tables probed when choosing
# it, clear columns (names, e-mails, ages, diagnoses, counts) scored 0.92-0.98 and the misclassified ones (a phone
# number called `other` at 0.64, a US state called `other` at 0.63 with `quasi_identifier` at 0.30) below 0.8; some
# right verdicts fall below too (a ZIP column at 0.52) and are flagged so that someone labels them.
UNSURE_BELOW = 0.8
# From most to least protective: what each class costs the published column (dropped or pseudonymized,
# generalized, checked for l-diversity, kept).
PROTECTIVE_ORDER: tuple[str, ...] = ("identifier", "quasi_identifier", "sensitive", "other")


@dataclass(frozen=True)
class Decision:
    """A column's class and why: ``source`` is who decided ("policy", "command line", "label", "classifier",
    "validated"); ``confidence`` is 1 for a declared class, the classifier's top probability, or the share of
    values that validated; ``unsure`` marks a classifier verdict below :data:`UNSURE_BELOW`; ``overrides`` says
    what a validated identifier overrode."""

    column_class: str
    confidence: float
    source: str
    unsure: bool = False
    classifier_class: str | None = None
    overrides: str = ""
    validated: ValidatedIdentifier | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "class": self.column_class,
            "class_source": self.source,
            "confidence": round(float(self.confidence), 4),
            "unsure": self.unsure,
        }
        if self.classifier_class is not None:
            out["classifier_class"] = self.classifier_class
        if self.overrides:
            out["overrides"] = self.overrides
        if self.validated is not None:
            out["validated"] = self.validated.to_json()
        return out

    def flag(self, column: str) -> str | None:
        """A sentence for the report when this decision needs a person's eyes, else None."""
        if self.overrides:
            return (
                f"column {column!r}: {self.validated.describe() if self.validated else 'validated'}: identifier, "
                f"overriding {self.overrides}"
            )
        if self.unsure:
            return (
                f"column {column!r}: the classifier is unsure ({self.classifier_class} at {self.confidence:.0%}, "
                f"below {UNSURE_BELOW:.0%}): treated as {self.column_class}; label it to decide"
            )
        return None


def protective_class(probabilities: Mapping[str, float]) -> tuple[str, bool]:
    """(class, unsure) from the classifier's probabilities (see the module docstring, rule 2)."""
    ranked = sorted(probabilities.items(), key=lambda item: (-item[1], PROTECTIVE_ORDER.index(item[0])))
    if not ranked:
        raise ConfigError("the classifier gave no probabilities")
    if ranked[0][1] >= UNSURE_BELOW:
        return ranked[0][0], False
    credible, mass = [], 0.0
    for name, probability in ranked:
        credible.append(name)
        mass += probability
        if mass >= UNSURE_BELOW:
            break
    return min(credible, key=PROTECTIVE_ORDER.index), True


def decide(
    *,
    declared: tuple[str, str] | None = None,
    probabilities: Mapping[str, float] | None = None,
    validated: ValidatedIdentifier | None = None,
    confidence: float = 1.0,
) -> Decision:
    """A column's class: ``declared`` (class, who declared it) wins over the classifier's ``probabilities``, and a
    ``validated`` identifier column is an identifier whatever either said. ``confidence`` goes with ``declared``."""
    if declared is not None:
        column_class, source = declared
        if column_class not in CLASSES:
            raise ConfigError(f"unknown class {column_class!r} from {source}: expected one of {', '.join(CLASSES)}")
        decision = Decision(column_class, confidence, source)
    elif probabilities is not None:
        top = max(probabilities, key=lambda name: probabilities[name])
        column_class, unsure = protective_class(probabilities)
        decision = Decision(column_class, probabilities[top], "classifier", unsure=unsure, classifier_class=top)
    else:
        raise ConfigError("decide() needs a declared class or the classifier's probabilities")
    if validated is None:
        return decision
    if decision.column_class == "identifier":
        return Decision(**{**decision.__dict__, "validated": validated})
    said = f"{decision.source} {decision.column_class!r}"
    if decision.source == "classifier":
        said = f"classifier {decision.classifier_class!r} ({decision.confidence:.0%}"
        said += f", unsure: {decision.column_class!r})" if decision.unsure else ")"
    return Decision(
        "identifier",
        validated.share,
        "validated",
        classifier_class=decision.classifier_class,
        overrides=said,
        validated=validated,
    )


@dataclass
class TableProfile:
    source: TableSource
    rows: int
    sampled_rows: int
    columns: list[ColumnProfile]


@dataclass
class ColumnReport:
    """One column of a scan: the classifier's verdict (``label``, ``confidence``, ``probabilities``,
    ``evidence``) and the :class:`Decision` that ``data protect`` acts on."""

    name: str
    label: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[str]
    nulls: int
    null_ratio: float
    decision: Decision | None = None

    def to_json(self) -> dict[str, Any]:
        decision = self.decision or decide(probabilities=self.probabilities)
        return {
            "name": self.name,
            **decision.to_json(),
            "classifier_class": self.label,
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
        flags = [f for c in self.columns if c.decision is not None and (f := c.decision.flag(c.name))]
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
            "unsure_below": UNSURE_BELOW,
            "flags": flags,
            "columns": [c.to_json() for c in self.columns],
        }


class _Reservoir:
    """Exact null counts and a reservoir of whole rows, fed batch by batch (Algorithm R)."""

    def __init__(self, sample_rows: int, seed: int) -> None:
        if sample_rows < 1:
            raise BadInput(f"sample_rows must be >= 1, got {sample_rows}")
        self.capacity = sample_rows
        self.rng = np.random.default_rng(seed)
        self.names: list[str] = []
        self.rows: dict[str, npt.NDArray[Any]] = {}
        self.nulls: dict[str, int] = {}
        self.seen = 0

    def add(self, batch: pd.DataFrame) -> None:
        if not self.names:
            self.names = [str(c) for c in batch.columns]
            self.rows = {n: np.empty(0, dtype=object) for n in self.names}
            self.nulls = dict.fromkeys(self.names, 0)
        count = len(batch)
        if not count:
            return
        for name, column in zip(self.names, batch.columns, strict=True):
            self.nulls[name] += int(batch[column].isna().sum())
        picks = _reservoir_picks(self.rng, self.seen, count, self.capacity, len(self.rows[self.names[0]]))
        for name, column in zip(self.names, batch.columns, strict=True):
            values = batch[column].to_numpy(dtype=object)
            # Fill first: rows after the fill point may replace slots the same batch just filled.
            current = np.concatenate([self.rows[name], values[picks.fill]])
            current[picks.slots] = values[picks.rows]
            self.rows[name] = current
        self.seen += count

    def profiles(self) -> list[ColumnProfile]:
        return [
            ColumnProfile(
                name=name,
                rows=self.seen,
                nulls=self.nulls[name],
                sample=[str(v) for v in self.rows[name] if v is not None and not (isinstance(v, float) and pd.isna(v))],
            )
            for name in self.names
        ]

    @property
    def sampled(self) -> int:
        return len(self.rows[self.names[0]]) if self.names else 0


def profile_table(
    path: str | Path,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    seed: int = 0,
) -> TableProfile:
    """Exact row and null counts per column over the whole file, and a reservoir sample of rows."""
    reservoir = _Reservoir(sample_rows, seed)
    for batch in iter_batches(path, batch_rows=batch_rows, columns=columns, as_text=True):
        reservoir.add(batch)
    return TableProfile(
        detect_source(path), rows=reservoir.seen, sampled_rows=reservoir.sampled, columns=reservoir.profiles()
    )


def _slices(frame: pd.DataFrame, batch_rows: int) -> Iterator[pd.DataFrame]:
    yield frame.iloc[:batch_rows]
    for start in range(batch_rows, len(frame), batch_rows):
        yield frame.iloc[start : start + batch_rows]


def profile_frame(
    frame: pd.DataFrame,
    *,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    seed: int = 0,
) -> list[ColumnProfile]:
    """The profiles :func:`profile_table` gives for the file ``frame`` was read from (values as text), from the
    same batches and the same random draws."""
    reservoir = _Reservoir(sample_rows, seed)
    for batch in _slices(frame, batch_rows):
        reservoir.add(batch)
    return reservoir.profiles()


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
    labels: Mapping[str, str] | None = None,
) -> ScanReport:
    """Profile the file, classify every column (default classifier: the shipped corpus, no org labels) and decide
    each column's class (:func:`decide`) with the user's ``labels`` (column -> class) for this file."""
    table = profile_table(path, sample_rows=sample_rows, batch_rows=batch_rows)
    model = classifier or ColumnClassifier.load()
    predictions = model.classify(table.columns)
    labels = labels or {}
    reports = [
        ColumnReport(
            name=profile.name,
            label=prediction.label,
            confidence=prediction.confidence,
            probabilities=prediction.probabilities,
            evidence=prediction.evidence,
            nulls=profile.nulls,
            null_ratio=profile.null_ratio,
            decision=decide(
                declared=(labels[profile.name], "label") if profile.name in labels else None,
                probabilities=prediction.probabilities,
                validated=validated_identifier(profile.sample),
            ),
        )
        for profile, prediction in zip(table.columns, predictions, strict=True)
    ]
    info = {"corpus_columns": model.corpus_columns, "org_labels": model.org_labels, "stale_labels": stale_labels}
    return ScanReport(table.source, rows=table.rows, sampled_rows=table.sampled_rows, columns=reports, model=info)
