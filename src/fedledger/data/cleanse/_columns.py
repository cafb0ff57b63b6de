"""Cleansing one column: deciding what it holds, then repairing, unifying or invalidating each distinct value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedledger.data.cleanse._reading import Problems, SourceTable
from fedledger.data.cleanse._rules import MAX_EXAMPLES, NUMERIC_SHARE, CleanseColumn, CleanseRules
from fedledger.data.cleanse._values import boolean_value, column_decimal_mark, repair_number, value_shape
from fedledger.data.tabular import parse_number

if TYPE_CHECKING:
    from fedledger.data.prepare import Recipe


@dataclass
class ColumnType:
    """What a column holds and where that was decided."""

    kind: str  # numeric, boolean, categorical, text
    source: str  # recipe, cleanse rules, inferred
    categories: tuple[Any, ...] = ()
    strict: bool = False  # a value outside the categories is invalid
    range: tuple[float, float] | None = None
    exact_missing: frozenset[str] = frozenset()
    numeric_missing: frozenset[float] = frozenset()

    @property
    def numeric_categories(self) -> bool:
        return bool(self.categories) and isinstance(self.categories[0], float)


def recipe_column_types(recipe: Recipe) -> dict[str, ColumnType]:
    from fedledger.data.prepare._schema import NUMERIC

    specs: dict[str, ColumnType] = {}
    for f in recipe.features:
        markers = recipe.missing + f.missing
        if f.kind == NUMERIC:
            specs[f.name] = ColumnType("numeric", "recipe", exact_missing=frozenset(markers))
        else:
            specs[f.name] = ColumnType(
                "categorical",
                "recipe",
                categories=f.categories,
                strict=f.unknown == "error",
                exact_missing=frozenset(markers),
            )
    rule = recipe.label
    label_markers = frozenset(recipe.missing)
    listed = rule.classes or tuple(rule.positive or ()) + tuple(rule.negative or ())
    if rule.threshold is not None:
        specs[rule.column] = ColumnType("numeric", "recipe", exact_missing=label_markers)
    elif rule.classes is not None or (rule.positive and rule.negative):
        specs[rule.column] = ColumnType(
            "categorical", "recipe", categories=listed, strict=True, exact_missing=label_markers
        )
    elif listed and isinstance(listed[0], float):
        specs[rule.column] = ColumnType("numeric", "recipe", exact_missing=label_markers)
    else:
        specs[rule.column] = ColumnType("text", "recipe", exact_missing=label_markers)
    for spec in specs.values():
        if spec.kind == "numeric" or spec.numeric_categories:
            spec.numeric_missing = frozenset(x for m in spec.exact_missing if (x := parse_number(m)) is not None)
    return specs


def _infer(values: Sequence[str], counts: Sequence[int], mark: str) -> str:
    """numeric, boolean or text, from a column's distinct non-missing values and their counts."""
    if not values:
        return "text"
    if all(boolean_value(v) is not None or v in ("0", "1") for v in values) and any(boolean_value(v) for v in values):
        return "boolean"
    numeric = sum(c for v, c in zip(values, counts, strict=True) if repair_number(v, mark) is not None)
    return "numeric" if numeric >= NUMERIC_SHARE * sum(counts) else "text"


@dataclass
class ColumnOutcome:
    spec: ColumnType
    mark: str | None
    values: npt.NDArray[Any]  # cleansed value per row (object array of str)
    events: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    missing_after: int = 0


REPAIRS = ("whitespace", "decimal_comma", "thousands_separator", "boolean", "category_spelling")
MISSING_EVENTS = ("unified", "invalid", "out_of_range")


def cleanse_column(
    source: SourceTable,
    j: int,
    spec: ColumnType | None,
    rule: CleanseColumn | None,
    rules: CleanseRules,
    canonical_missing: str,
    problems: Problems,
) -> ColumnOutcome:
    """Column ``j`` cleansed value by value; each distinct value is cleansed once. ``spec`` is what the recipe
    says the column holds (None: the rules' ``type``, else inferred)."""
    column = _DistinctValues.of(source, j)
    cleaner = _ValueCleaner.for_column(_column_type(spec, rule), column, rules, canonical_missing, source.delimiter)
    cleaned = [cleaner.clean(r, s) for r, s in zip(column.raws, column.stripped, strict=True)]
    out_values = [value for value, _ in cleaned]
    outcome = ColumnOutcome(cleaner.spec, cleaner.mark, np.empty(0, dtype=object))
    _record_events(outcome, column, [event for _, event in cleaned], out_values, rules, problems, order=j)
    values = np.empty(len(out_values), dtype=object)
    values[:] = out_values
    outcome.values = values[column.codes] if len(column.codes) else np.empty(0, dtype=object)
    outcome.missing_after = int(np.count_nonzero(outcome.values == canonical_missing)) if len(column.codes) else 0
    return outcome


@dataclass
class _DistinctValues:
    """A column as its distinct raw values (and stripped), how often each occurs, and per row its index."""

    name: str
    codes: npt.NDArray[np.intp]
    counts: npt.NDArray[np.int64]
    raws: list[str]
    stripped: list[str]

    @classmethod
    def of(cls, source: SourceTable, j: int) -> _DistinctValues:
        import pandas as pd

        raw = np.empty(len(source.rows), dtype=object)
        raw[:] = [row[j] for row in source.rows]
        codes, uniques = pd.factorize(raw)
        counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, dtype=np.int64)
        raws = [str(u) for u in uniques.tolist()]
        return cls(source.names[j], codes, counts, raws, [r.strip() for r in raws])


def _column_type(spec: ColumnType | None, rule: CleanseColumn | None) -> ColumnType:
    """The recipe's type of a column, else the rules' ``type``, else one to infer; with the rules' missing
    markers and range added."""
    if spec is None:
        spec = ColumnType("text", "inferred")
        if rule is not None and rule.type is not None:
            spec = ColumnType(rule.type, "cleanse rules")
    spec.exact_missing = spec.exact_missing | (frozenset(rule.missing) if rule is not None else frozenset())
    if rule is not None and rule.range is not None:
        spec.range = rule.range
    return spec


@dataclass
class _ValueCleaner:
    """How one column's values are cleansed, decided once from the column as a whole: its type (inferred from
    the values that are not missing markers, when nothing declares it), its decimal mark, its categories."""

    spec: ColumnType
    mark: str | None  # the decimal mark, for numbers and numeric categories
    folded_missing: frozenset[str]
    canonical_missing: str
    by_fold: dict[str, Any]  # a category by its case-folded, space-normalised spelling
    binary: bool  # numeric categories 0 and 1, which boolean words also spell

    @classmethod
    def for_column(
        cls, spec: ColumnType, column: _DistinctValues, rules: CleanseRules, canonical_missing: str, delimiter: str
    ) -> _ValueCleaner:
        folded_missing = frozenset(m.casefold() for m in rules.missing)
        present = [
            k for k, s in enumerate(column.stripped) if not (s.casefold() in folded_missing or s in spec.exact_missing)
        ]
        present_values = [column.stripped[k] for k in present]

        def decimal_mark() -> str:
            return rules.decimal if rules.decimal != "auto" else column_decimal_mark(present_values, delimiter)

        if spec.source == "inferred":
            spec.kind = _infer(present_values, [int(column.counts[k]) for k in present], decimal_mark())
        if spec.kind == "numeric" and spec.source != "recipe":
            spec.numeric_missing = frozenset(x for m in spec.exact_missing if (x := parse_number(m)) is not None)
        mark = decimal_mark() if spec.kind == "numeric" or spec.numeric_categories else None
        by_fold = (
            {" ".join(str(c).split()).casefold(): c for c in spec.categories}
            if spec.kind == "categorical" and not spec.numeric_categories
            else {}
        )
        binary = spec.numeric_categories and set(spec.categories) <= {0.0, 1.0}
        return cls(spec, mark, folded_missing, canonical_missing, by_fold, binary)

    def is_marker(self, s: str) -> bool:
        return s.casefold() in self.folded_missing or s in self.spec.exact_missing

    def clean(self, raw: str, s: str) -> tuple[str, str | None]:
        """(cleansed value, event) of the raw value ``raw``, ``s`` stripped; the event names the repair, or why the
        value became missing, or is None when nothing changed."""
        event: str | None = "whitespace" if s != raw else None
        if self.is_marker(s):
            return self.canonical_missing, ("unified" if s != self.canonical_missing else event)
        if self.mark is not None:
            return self._number(s, self.mark, event)
        if self.spec.kind == "boolean":
            b = boolean_value(s) if s not in ("0", "1") else s
            if b is None:
                return self.canonical_missing, "invalid"
            return (b, "boolean") if b != s else (s, event)
        if self.spec.kind == "categorical" and s not in self.spec.categories:
            listed = self.by_fold.get(" ".join(s.split()).casefold())
            if listed is not None:
                return str(listed), "category_spelling"
            if self.spec.strict:
                return self.canonical_missing, "invalid"
        return s, event

    def _number(self, s: str, mark: str, event: str | None) -> tuple[str, str | None]:
        got = repair_number(s, mark)
        if got is None and self.binary and (b := boolean_value(s)) is not None:
            got = (b, float(b), "boolean")
        if got is None:
            return self.canonical_missing, "invalid"
        text, x, repair = got
        spec = self.spec
        if x in spec.numeric_missing:
            return self.canonical_missing, "unified"
        if spec.kind == "categorical" and x not in spec.categories and spec.strict:
            return self.canonical_missing, "invalid"
        if spec.range is not None and not spec.range[0] <= x <= spec.range[1]:
            return self.canonical_missing, "out_of_range"
        return text, repair or event


def _record_events(
    outcome: ColumnOutcome,
    column: _DistinctValues,
    events: Sequence[str | None],
    out_values: Sequence[str],
    rules: CleanseRules,
    problems: Problems,
    order: int,
) -> None:
    """Count each distinct value's event over its rows, report invalid values under ``invalid = "error"``, and
    keep a few examples."""
    for k, event in enumerate(events):
        if event is None:
            continue
        outcome.events[event] = outcome.events.get(event, 0) + int(column.counts[k])
        if event in ("invalid", "out_of_range") and rules.invalid == "error":
            row = int(np.argmax(column.codes == k))
            problems.add(row, order, column.name, _problem(outcome.spec, event, column.stripped[k]))
        if event != "out_of_range" and len(outcome.examples) < MAX_EXAMPLES:
            example = _example(event, column.raws[k], out_values[k])
            if example not in outcome.examples:
                outcome.examples.append(example)


def _problem(spec: ColumnType, event: str, value: str) -> str:
    if event == "out_of_range" and spec.range is not None:
        lo, hi = (format_number(b) for b in spec.range)
        return f"{value!r} is outside the range [{lo}, {hi}]"
    return f"{value!r} {_why_invalid(spec)}"


def format_number(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def _why_invalid(spec: ColumnType) -> str:
    if spec.kind == "categorical":
        listed = ", ".join(format_number(c) if isinstance(c, float) else c for c in spec.categories)
        return f"is not one of the categories ({listed})"
    if spec.kind == "boolean":
        return "is not a boolean (true/false, yes/no, 1/0)"
    return "is not a number"


def _example(event: str, before: str, after: str) -> dict[str, str]:
    """A report example. Markers, boolean words and the recipe's categories come from fixed vocabularies and are
    shown as written; anything else is shown as its shape."""
    if event in ("unified", "boolean", "category_spelling"):
        return {"change": event, "from": before.strip() if event != "category_spelling" else before, "to": after}
    return {"change": event, "from": value_shape(before), "to": value_shape(after)}
