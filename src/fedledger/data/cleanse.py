"""Cleansing a raw table before preparation: duplicates, type repair, invalid and out-of-range values.

``fedledger data cleanse`` runs :func:`cleanse`. It reads a CSV in any encoding that :func:`decode_bytes` detects
and writes a UTF-8 CSV with the same columns, in the layout the preparation recipe reads (its delimiter, its header
or none), so that ``fedledger data prepare`` reads the output with the same recipe. Per cell, in this order:

1. surrounding whitespace is stripped (non-breaking spaces included);
2. missing markers (the rules' ``missing`` list, case-insensitive, and the recipe's markers, numbers matched by
   value in numeric columns) become one marker: the recipe's first ``missing`` marker, or an empty cell without a
   recipe;
3. values are repaired to their column's type: numbers written with thousands separators (``1,234.5``,
   ``1.234,5``, ``1 234``) or a decimal comma (``12,5``) become plain numbers (``1234.5``, ``12.5``); booleans
   (``yes``/``no``, ``true``/``false``, ``y``/``n``...) become ``1``/``0``; a category spelled in another case or
   with extra spaces takes the recipe's spelling;
4. a value that does not fit its column (not a number in a numeric column, not one of a categorical column's
   categories when the recipe refuses unknown ones) is *invalid*, and a number outside the column's ``range`` is
   *out of range*: both become missing and are counted, or, with ``invalid = "error"``, stop the run with an error
   naming the file, the line and the column;
5. rows that are identical after 1-4 are dropped but for the first (``duplicates = "drop"``).

A column's type comes from the recipe (a feature's ``kind`` and categories, the label rule), else from the rules'
``type``, else it is inferred: boolean when every value is a boolean word or 0/1, numeric when at least 95 % of the
values are numbers once repaired, text otherwise (text is only stripped and its missing markers unified). Values
that are already plain numbers are written as they were: ``02139`` stays ``02139``.

The rules are the recipe's ``[cleanse]`` table (:class:`CleanseRules`), so one file drives both steps and the
recipe's hash covers them; they are documented in ``docs/preparation.md``. The report (:attr:`CleanseResult.report`)
counts what changed per column. Its examples show a repaired value's *shape* (digits as ``9``, letters as ``a``),
never a value, so an identifier never reaches the report.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedledger.data.tabular import check_widths, decode_bytes, parse_number, read_records, require_columns
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    from fedledger.data.prepare import Recipe

__all__ = [
    "CLEANSE_REPORT_FORMAT",
    "DEFAULT_MISSING",
    "CleanseColumn",
    "CleanseResult",
    "CleanseRules",
    "cleanse",
]

CLEANSE_REPORT_FORMAT = "fedledger-cleanse-report/1"
# Markers spreadsheets and statistics packages write for "no value" (pandas' defaults, minus words that are
# plausible categories such as "None"); compared case-insensitively after stripping.
DEFAULT_MISSING: tuple[str, ...] = ("", "?", "NA", "N/A", "NaN", "null", "#N/A")
DUPLICATES = ("drop", "keep")
DECIMALS = ("auto", ".", ",")
INVALID = ("missing", "error")
TYPES = ("numeric", "boolean", "text")
# A column without a declared type is numeric when this share of its non-missing values are numbers.
NUMERIC_SHARE = 0.95
MAX_EXAMPLES = 3
MAX_DUPLICATE_EXAMPLES = 5

_RULE_KEYS = ("duplicates", "missing", "decimal", "invalid", "columns")
_COLUMN_KEYS = ("type", "range", "missing")
_TRUE = frozenset({"true", "t", "yes", "y", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "off"})
# A number with digit groups: one separator used throughout, then an optional decimal part. Which of "," and "."
# is the decimal mark is decided per column (see _decimal_mark).
_GROUPED = re.compile(r"^([+-]?)(\d{1,3})(([,. '\u00a0\u202f\u2019])\d{3}(?:\4\d{3})*)(?:([.,])(\d+))?$")
_DECIMAL_COMMA = re.compile(r"^([+-]?)(\d*),(\d+)$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.(\d+)$")


# --------------------------------------------------------------------------------------------------- the rules


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        raise _fail(where, f"expected a finite number, got {v!r}")
    return float(v)


def _markers(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise _fail(where, f"expected a list of strings, got {v!r}")
    return tuple(x.strip() for x in v)


def _out(x: float) -> int | float:
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


@dataclass(frozen=True)
class CleanseColumn:
    """Rules for one column: ``type`` (numeric, boolean or text; for a recipe feature its ``kind`` decides),
    ``range`` (``[low, high]``, inclusive, numeric only: values outside are out of range) and extra ``missing``
    markers."""

    name: str
    type: str | None = None
    range: tuple[float, float] | None = None
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.type is not None:
            d["type"] = self.type
        if self.range is not None:
            d["range"] = [_out(self.range[0]), _out(self.range[1])]
        if self.missing:
            d["missing"] = list(self.missing)
        return d


@dataclass(frozen=True)
class CleanseRules:
    """The ``[cleanse]`` table of a recipe. Every field has a default, so a recipe without the table cleanses
    with these defaults (and keeps its hash)."""

    duplicates: str = "drop"
    missing: tuple[str, ...] = DEFAULT_MISSING
    decimal: str = "auto"
    invalid: str = "missing"
    columns: tuple[CleanseColumn, ...] = ()

    @property
    def column_map(self) -> dict[str, CleanseColumn]:
        return {c.name: c for c in self.columns}

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (every default written out), part of the recipe's canonical JSON."""
        return {
            "duplicates": self.duplicates,
            "missing": list(self.missing),
            "decimal": self.decimal,
            "invalid": self.invalid,
            "columns": {c.name: c.to_dict() for c in sorted(self.columns, key=lambda c: c.name)},
        }

    @classmethod
    def from_dict(
        cls,
        d: Any,
        *,
        where: str = "cleanse",
        kinds: Mapping[str, str] | None = None,
        names: Sequence[str] | None = None,
    ) -> CleanseRules:
        """Parse and validate; every ``ConfigError`` names the field. ``kinds`` maps the recipe's feature columns
        to their kind (they take no ``type``, and only numeric ones a ``range``); ``names``, when given, are the
        only columns the rules may name (a recipe without a header lists every column of the file)."""
        if not isinstance(d, Mapping):
            raise _fail(where, f"expected a table, got {type(d).__name__}")
        for key in d:
            if key not in _RULE_KEYS:
                raise _fail(f"{where}.{key}", f"unknown key; known: {', '.join(_RULE_KEYS)}")
        kinds = kinds or {}
        duplicates = d.get("duplicates", "drop")
        if duplicates not in DUPLICATES:
            raise _fail(f"{where}.duplicates", f"expected one of {', '.join(DUPLICATES)}, got {duplicates!r}")
        decimal = d.get("decimal", "auto")
        if decimal not in DECIMALS:
            raise _fail(f"{where}.decimal", f"expected one of {', '.join(map(repr, DECIMALS))}, got {decimal!r}")
        invalid = d.get("invalid", "missing")
        if invalid not in INVALID:
            raise _fail(f"{where}.invalid", f"expected one of {', '.join(INVALID)}, got {invalid!r}")
        missing = _markers(d.get("missing", list(DEFAULT_MISSING)), f"{where}.missing")
        raw_columns = d.get("columns", {})
        if not isinstance(raw_columns, Mapping):
            raise _fail(f"{where}.columns", "expected a table of column tables, e.g. [cleanse.columns.age]")
        columns = []
        for name, raw in raw_columns.items():
            here = f"{where}.columns.{name}"
            if names is not None and name not in names:
                raise _fail(here, f"not a column of the recipe (it lists {', '.join(names)})")
            if not isinstance(raw, Mapping):
                raise _fail(here, f"expected a table, got {type(raw).__name__}")
            for key in raw:
                if key not in _COLUMN_KEYS:
                    raise _fail(f"{here}.{key}", f"unknown key; known: {', '.join(_COLUMN_KEYS)}")
            kind = kinds.get(name)
            ctype = raw.get("type")
            if ctype is not None:
                if kind is not None:
                    raise _fail(f"{here}.type", f"not allowed for a feature column: the recipe's kind ({kind}) decides")
                if ctype not in TYPES:
                    raise _fail(f"{here}.type", f"expected one of {', '.join(TYPES)}, got {ctype!r}")
            bounds = None
            if "range" in raw:
                rng = raw["range"]
                if not isinstance(rng, list | tuple) or len(rng) != 2:
                    raise _fail(f"{here}.range", f"expected [low, high], got {rng!r}")
                bounds = (_number(rng[0], f"{here}.range[0]"), _number(rng[1], f"{here}.range[1]"))
                if bounds[0] > bounds[1]:
                    raise _fail(f"{here}.range", f"low {rng[0]!r} is above high {rng[1]!r}")
                if kind == "categorical" or ctype in ("boolean", "text"):
                    raise _fail(f"{here}.range", f"needs a numeric column, and {name!r} is {kind or ctype}")
                if kind is None and ctype is None:
                    ctype = "numeric"  # a range says what the column holds
            columns.append(CleanseColumn(name, ctype, bounds, _markers(raw.get("missing", []), f"{here}.missing")))
        return cls(duplicates, missing, decimal, invalid, tuple(columns))


# --------------------------------------------------------------------------------------------------- values


def _shape(s: str) -> str:
    """A value with its digits as 9 and its letters as a: enough to show a repair, never the value."""
    return "".join("9" if ch.isdigit() else "a" if ch.isalpha() else ch for ch in s)


def _decimal_mark(values: Sequence[str], delimiter: str) -> str:
    """The decimal mark of a column's numbers: the one its unambiguous values use (``12,5`` and ``1.234,5`` vote
    for ",", ``1.5`` and ``1,234.5`` for "."). When no value tells (only ``1,234``-like values), a file separated by
    semicolons is taken to use decimal commas, as European spreadsheets export, and any other file decimal points.
    """
    comma = dot = 0
    for v in values:
        m = _GROUPED.match(v)
        if m:
            sep, dec = m.group(4), m.group(5)
            groups = m.group(3).count(sep)
            if dec is not None:
                if dec != sep:
                    comma += dec == ","
                    dot += dec == "."
            elif groups > 1:  # 1.234.567 and 1,234,567 can only be grouped digits
                comma += sep == "."
                dot += sep == ","
            continue
        m = _DECIMAL_COMMA.match(v)
        if m:
            comma += 1
            continue
        m = _DOT_DECIMAL.match(v)
        if m and len(m.group(1)) != 3:
            dot += 1
    if comma != dot:
        return "," if comma > dot else "."
    return "," if delimiter == ";" else "."


def _repair_number(s: str, mark: str) -> tuple[str, float, str | None] | None:
    """(text, value, repair) of a number written with decimal mark ``mark``; None when ``s`` is not a number.
    ``repair`` names what changed (None: ``s`` was a plain number and is kept as written)."""
    m = _GROUPED.match(s)
    if m:
        sign, head, groups, sep, dec, frac = m.groups()
        # The group separator cannot be the decimal mark ("1.234" under "." is one point two three four).
        if sep != mark and dec in (None, mark):
            text = sign + head + groups.replace(sep, "") + (f".{frac}" if frac is not None else "")
            x = parse_number(text)
            if x is not None:
                return text, x, "thousands_separator"
    m = _DECIMAL_COMMA.match(s)
    # "12,5" is a decimal comma whatever the column's mark; "1,234" only where the mark is ",".
    if m and (mark == "," or len(m.group(3)) != 3):
        sign, whole, frac = m.groups()
        text = f"{sign}{whole or '0'}.{frac}"
        x = parse_number(text)
        if x is not None:
            return text, x, "decimal_comma"
    x = parse_number(s)
    if x is not None:
        return s, x, None
    return None


def _boolean(s: str) -> str | None:
    low = s.casefold()
    if low in _TRUE:
        return "1"
    if low in _FALSE:
        return "0"
    return None


# --------------------------------------------------------------------------------------------------- columns


@dataclass
class _Spec:
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


def _recipe_specs(recipe: Recipe) -> dict[str, _Spec]:
    from fedledger.data.prepare import NUMERIC

    specs: dict[str, _Spec] = {}
    for f in recipe.features:
        markers = recipe.missing + f.missing
        if f.kind == NUMERIC:
            specs[f.name] = _Spec("numeric", "recipe", exact_missing=frozenset(markers))
        else:
            specs[f.name] = _Spec(
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
        specs[rule.column] = _Spec("numeric", "recipe", exact_missing=label_markers)
    elif rule.classes is not None or (rule.positive and rule.negative):
        specs[rule.column] = _Spec("categorical", "recipe", categories=listed, strict=True, exact_missing=label_markers)
    elif listed and isinstance(listed[0], float):
        specs[rule.column] = _Spec("numeric", "recipe", exact_missing=label_markers)
    else:
        specs[rule.column] = _Spec("text", "recipe", exact_missing=label_markers)
    for spec in specs.values():
        if spec.kind == "numeric" or spec.numeric_categories:
            spec.numeric_missing = frozenset(x for m in spec.exact_missing if (x := parse_number(m)) is not None)
    return specs


def _infer(values: Sequence[str], counts: Sequence[int], mark: str) -> str:
    """numeric, boolean or text, from a column's distinct non-missing values and their counts."""
    if not values:
        return "text"
    if all(_boolean(v) is not None or v in ("0", "1") for v in values) and any(_boolean(v) for v in values):
        return "boolean"
    numeric = sum(c for v, c in zip(values, counts, strict=True) if _repair_number(v, mark) is not None)
    return "numeric" if numeric >= NUMERIC_SHARE * sum(counts) else "text"


@dataclass
class _ColumnOutcome:
    spec: _Spec
    mark: str | None
    values: npt.NDArray[Any]  # cleansed value per row (object array of str)
    events: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, str]] = field(default_factory=list)
    missing_after: int = 0


_REPAIRS = ("whitespace", "decimal_comma", "thousands_separator", "boolean", "category_spelling")
_MISSING_EVENTS = ("unified", "invalid", "out_of_range")


class _Source:
    """The file as read: names, rows and their physical line numbers."""

    def __init__(
        self,
        path: Path,
        encoding: str,
        delimiter: str,
        header: tuple[str, ...] | None,
        names: tuple[str, ...],
        rows: list[list[str]],
        lines: list[int],
        blank_lines: int,
    ) -> None:
        self.path, self.encoding, self.delimiter = path, encoding, delimiter
        self.header, self.names, self.rows, self.lines, self.blank_lines = header, names, rows, lines, blank_lines

    def where(self, row: int, column: str) -> str:
        return f"{self.path} line {self.lines[row]}, column {column}"


def _read(path: Path, recipe: Recipe | None, encoding: str | None, header: bool | None) -> _Source:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise BadInput(f"{path} line 1: the file is empty")
    if data.startswith(b"PAR1"):
        raise BadInput(f"{path}: a Parquet file; cleanse reads CSV (Parquet columns are typed already)")
    try:
        text, enc = decode_bytes(data, encoding)
    except BadInput as exc:
        raise BadInput(f"{path}: {exc}") from exc
    if recipe is not None:
        delimiter, has_header = recipe.delimiter, recipe.header
    else:
        from fedledger.data.tabular import detect_source

        delimiter = detect_source(path).delimiter or ","
        has_header = True if header is None else header
    records = read_records(text, delimiter, header=has_header, name=str(path))
    rows, lines, blank = records.rows, records.lines, records.blank_lines
    if records.header is not None:
        names = records.header
        if recipe is not None:
            require_columns(records, recipe.columns, name=str(path))
    elif recipe is not None:
        names = list(recipe.columns)
    else:
        width = max((len(r) for r in rows), default=0)
        names = [str(i + 1) for i in range(width)]
    check_widths(records, names, name=str(path))
    return _Source(path, enc, delimiter, tuple(names) if has_header else None, tuple(names), rows, lines, blank)


class _Problems:
    """Invalid values under ``invalid = "error"``: the earliest in the file is raised, naming line and column."""

    def __init__(self, source: _Source) -> None:
        self.source = source
        self.found: list[tuple[int, int, str, str]] = []

    def add(self, row: int, order: int, column: str, what: str) -> None:
        self.found.append((row, order, f"{self.source.where(row, column)}: {what}", column))

    def raise_first(self) -> None:
        if self.found:
            self.found.sort()
            more = len({column for *_, column in self.found}) - 1
            tail = f" (and problems in {more} more column{'s' if more > 1 else ''})" if more else ""
            raise BadInput(self.found[0][2] + tail)


def _cleanse_column(
    source: _Source,
    j: int,
    spec: _Spec | None,
    rule: CleanseColumn | None,
    rules: CleanseRules,
    canonical_missing: str,
    problems: _Problems,
) -> _ColumnOutcome:
    import pandas as pd

    name = source.names[j]
    raw = np.empty(len(source.rows), dtype=object)
    raw[:] = [row[j] for row in source.rows]
    codes, uniques = pd.factorize(raw)
    counts = np.bincount(codes, minlength=len(uniques)) if len(uniques) else np.zeros(0, dtype=np.int64)
    raws = [str(u) for u in uniques.tolist()]
    stripped = [r.strip() for r in raws]
    folded_missing = {m.casefold() for m in rules.missing}
    extra = frozenset(rule.missing) if rule is not None else frozenset()

    if spec is None:
        spec = _Spec("text", "inferred")
        if rule is not None and rule.type is not None:
            spec = _Spec(rule.type, "cleanse rules")
    spec.exact_missing = spec.exact_missing | extra
    if rule is not None and rule.range is not None:
        spec.range = rule.range

    def is_marker(s: str) -> bool:
        return s.casefold() in folded_missing or s in spec.exact_missing

    present = [k for k, s in enumerate(stripped) if not is_marker(s)]
    present_values = [stripped[k] for k in present]

    def decimal_mark() -> str:
        return rules.decimal if rules.decimal != "auto" else _decimal_mark(present_values, source.delimiter)

    if spec.source == "inferred":
        spec.kind = _infer(present_values, [int(counts[k]) for k in present], decimal_mark())
    if spec.kind == "numeric" and spec.source != "recipe":
        spec.numeric_missing = frozenset(x for m in spec.exact_missing if (x := parse_number(m)) is not None)
    mark = decimal_mark() if spec.kind == "numeric" or spec.numeric_categories else None
    by_fold = (
        {" ".join(str(c).split()).casefold(): c for c in spec.categories}
        if spec.kind == "categorical" and not spec.numeric_categories
        else {}
    )
    binary = spec.numeric_categories and set(spec.categories) <= {0.0, 1.0}

    out_values: list[str] = []
    events: list[str | None] = []
    for r, s in zip(raws, stripped, strict=True):
        event: str | None = "whitespace" if s != r else None
        value = s
        if is_marker(s):
            value, event = canonical_missing, ("unified" if s != canonical_missing else event)
        elif mark is not None:
            got = _repair_number(s, mark)
            if got is None and binary and (b := _boolean(s)) is not None:
                got = (b, float(b), "boolean")
            if got is None:
                value, event = canonical_missing, "invalid"
            else:
                text, x, repair = got
                value, event = text, repair or event
                if x in spec.numeric_missing:
                    value, event = canonical_missing, "unified"
                elif spec.kind == "categorical" and x not in spec.categories and spec.strict:
                    value, event = canonical_missing, "invalid"
                elif spec.range is not None and not spec.range[0] <= x <= spec.range[1]:
                    value, event = canonical_missing, "out_of_range"
        elif spec.kind == "boolean":
            b = _boolean(s) if s not in ("0", "1") else s
            if b is None:
                value, event = canonical_missing, "invalid"
            elif b != s:
                value, event = b, "boolean"
        elif spec.kind == "categorical" and s not in spec.categories:
            listed = by_fold.get(" ".join(s.split()).casefold())
            if listed is not None:
                value, event = str(listed), "category_spelling"
            elif spec.strict:
                value, event = canonical_missing, "invalid"
        out_values.append(value)
        events.append(event)

    outcome = _ColumnOutcome(spec, mark, np.empty(0, dtype=object))
    order = j
    for k, event in enumerate(events):
        if event is None:
            continue
        outcome.events[event] = outcome.events.get(event, 0) + int(counts[k])
        if event in ("invalid", "out_of_range") and rules.invalid == "error":
            row = int(np.argmax(codes == k))
            if event == "invalid":
                problems.add(row, order, name, f"{stripped[k]!r} {_why_invalid(spec)}")
            else:
                assert spec.range is not None
                lo, hi = (_fmt(b) for b in spec.range)
                problems.add(row, order, name, f"{stripped[k]!r} is outside the range [{lo}, {hi}]")
        if event != "out_of_range" and len(outcome.examples) < MAX_EXAMPLES:
            example = _example(event, raws[k], out_values[k])
            if example not in outcome.examples:
                outcome.examples.append(example)
    values = np.empty(len(out_values), dtype=object)
    values[:] = out_values
    outcome.values = values[codes] if len(codes) else np.empty(0, dtype=object)
    outcome.missing_after = int(np.count_nonzero(outcome.values == canonical_missing)) if len(codes) else 0
    return outcome


def _fmt(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 2**53 else repr(x)


def _why_invalid(spec: _Spec) -> str:
    if spec.kind == "categorical":
        listed = ", ".join(_fmt(c) if isinstance(c, float) else c for c in spec.categories)
        return f"is not one of the categories ({listed})"
    if spec.kind == "boolean":
        return "is not a boolean (true/false, yes/no, 1/0)"
    return "is not a number"


def _example(event: str, before: str, after: str) -> dict[str, str]:
    """A report example. Markers, boolean words and the recipe's categories come from fixed vocabularies and are
    shown as written; anything else is shown as its shape."""
    if event in ("unified", "boolean", "category_spelling"):
        return {"change": event, "from": before.strip() if event != "category_spelling" else before, "to": after}
    return {"change": event, "from": _shape(before), "to": _shape(after)}


# --------------------------------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class CleanseResult:
    """The cleansed table (``header`` None when the file has none) and the report (a JSON-ready dict)."""

    header: tuple[str, ...] | None
    rows: list[tuple[str, ...]]
    delimiter: str
    report: dict[str, Any]

    def to_csv(self) -> str:
        """The table as CSV text (write it UTF-8 encoded): the delimiter it was read with, ``\\n`` line ends."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=self.delimiter, lineterminator="\n")
        if self.header is not None:
            writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()


def cleanse(
    source: str | Path,
    recipe: Recipe | None = None,
    *,
    rules: CleanseRules | None = None,
    encoding: str | None = None,
    header: bool | None = None,
) -> CleanseResult:
    """Cleanse the CSV file ``source`` (see the module docstring).

    ``recipe`` gives the file's layout (delimiter, header, column names), the columns' types and missing markers,
    and its ``[cleanse]`` table the rules; ``rules`` overrides them (without a recipe: defaults, a header line and
    a detected delimiter unless ``header=False``). Nothing is returned when a line has the wrong number of
    columns or, under ``invalid = "error"``, a value is invalid: :class:`BadInput` names the file, line and column.
    """
    path = Path(source)
    if rules is None:
        rules = (recipe.cleanse if recipe is not None else None) or CleanseRules()
    table = _read(path, recipe, encoding, header)
    for name in rules.column_map:
        if name not in table.names:
            raise BadInput(f"{path} line 1, column {name}: named in the cleanse rules, not in the file")
    specs = _recipe_specs(recipe) if recipe is not None else {}
    canonical_missing = recipe.missing[0] if recipe is not None and recipe.missing else ""
    problems = _Problems(table)
    outcomes = [
        _cleanse_column(
            table, j, specs.get(name), rules.column_map.get(name), rules, canonical_missing.strip(), problems
        )
        for j, name in enumerate(table.names)
    ]
    problems.raise_first()

    n = len(table.rows)
    cleaned = list(zip(*(o.values.tolist() for o in outcomes), strict=True)) if n and outcomes else []
    kept: list[tuple[str, ...]] = []
    first_line: dict[tuple[str, ...], int] = {}
    duplicates: list[dict[str, int]] = []
    removed = 0
    for i, row in enumerate(cleaned):
        if rules.duplicates == "drop":
            seen = first_line.get(row)
            if seen is not None:
                removed += 1
                if len(duplicates) < MAX_DUPLICATE_EXAMPLES:
                    duplicates.append({"line": table.lines[i], "same_as_line": seen})
                continue
            first_line[row] = table.lines[i]
        kept.append(row)

    columns: dict[str, Any] = {}
    for name, o in zip(table.names, outcomes, strict=True):
        entry: dict[str, Any] = {"type": o.spec.kind, "type_from": o.spec.source}
        if o.mark is not None:
            entry["decimal_mark"] = o.mark
        if o.spec.categories:
            entry["categories"] = [_fmt(c) if isinstance(c, float) else c for c in o.spec.categories]
        if o.spec.range is not None:
            entry["range"] = [_out(o.spec.range[0]), _out(o.spec.range[1])]
        entry["changed"] = sum(o.events.values())
        entry["repaired"] = {k: o.events[k] for k in _REPAIRS if o.events.get(k)}
        entry["to_missing"] = {k: o.events[k] for k in _MISSING_EVENTS if o.events.get(k)}
        entry["missing_after"] = o.missing_after
        entry["examples"] = o.examples
        columns[name] = entry
    report: dict[str, Any] = {
        "format": CLEANSE_REPORT_FORMAT,
        "source": str(path),
        "encoding": table.encoding,
        "delimiter": table.delimiter,
        "header": table.header is not None,
        "recipe_hash": recipe.hash() if recipe is not None else None,
        "rules": rules.to_dict(),
        "missing_marker": canonical_missing,
        "rows_read": n,
        "rows_written": len(kept),
        "blank_lines": table.blank_lines,
        "duplicates": {"policy": rules.duplicates, "removed": removed, "examples": duplicates},
        "changed_cells": sum(c["changed"] for c in columns.values()),
        "columns": columns,
    }
    return CleanseResult(table.header, kept, table.delimiter, report)
