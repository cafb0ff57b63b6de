"""Reading a raw table (a CSV file or a DataFrame) and parsing its columns by the recipe, every problem found
before a row is returned."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fedledger.data.prepare._columns import ColumnSpec, LabelRule
from fedledger.data.prepare._schema import COMPARISONS, NUMERIC, Value, format_value
from fedledger.data.tabular import check_widths, decode_bytes, parse_number, read_records, require_columns
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from fedledger.data.prepare._recipe import Recipe


@dataclass
class _Table:
    name: str
    unit: str  # "line" for files, "row" for data frames
    lines: npt.NDArray[np.int64]
    cols: Mapping[str, Sequence[str]]
    absent: dict[str, npt.NDArray[np.bool_]]  # values that are absent in a data frame (NaN / None)
    encoding: str | None = None
    ignored: tuple[str, ...] = ()
    blank_lines: int = 0

    def where(self, i: int, column: str) -> str:
        return f"{self.name} {self.unit} {int(self.lines[i])}, column {column}"


def _needed_columns(recipe: Recipe) -> list[str]:
    return [f.name for f in recipe.features] + [recipe.label.column]


def _read_file(recipe: Recipe, path: Path, encoding: str | None) -> _Table:
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text, enc = decode_bytes(data, encoding)
    except BadInput as exc:
        raise BadInput(f"{name}: {exc}") from exc
    records = read_records(text, recipe.delimiter, header=recipe.header, name=name)
    rows, lines, blank = records.rows, records.lines, records.blank_lines
    if records.header is not None:
        expected = records.header
        needed = _needed_columns(recipe)
        require_columns(records, needed + [c for c in recipe.columns if c not in needed], name=name)
        ignored = tuple(h for h in expected if h not in recipe.columns and h != recipe.label.column)
    else:
        expected = list(recipe.columns)
        ignored = ()
    check_widths(records, expected, name=name)
    index = {c: i for i, c in enumerate(expected)}
    by_position = list(zip(*rows, strict=True)) if rows else [() for _ in expected]
    cols = {c: by_position[index[c]] for c in _needed_columns(recipe)}
    return _Table(name, "line", np.asarray(lines, dtype=np.int64), cols, {}, enc, ignored, blank)


def _read_frame(recipe: Recipe, frame: pd.DataFrame, name: str) -> _Table:
    cols: dict[str, Sequence[str]] = {}
    absent: dict[str, npt.NDArray[np.bool_]] = {}
    names = [str(c) for c in frame.columns]
    for col in _needed_columns(recipe):
        if col not in names:
            raise BadInput(f"{name} header, column {col}: missing from the table (it has {', '.join(names)})")
        series = frame.iloc[:, names.index(col)]
        isna = series.isna().to_numpy(dtype=bool)
        absent[col] = isna
        cols[col] = [
            "" if na else (repr(float(v)) if isinstance(v, float | np.floating) else str(v))
            for v, na in zip(series.tolist(), isna, strict=True)
        ]
    ignored = tuple(n for n in names if n not in recipe.columns and n != recipe.label.column)
    return _Table(name, "row", np.arange(1, len(frame) + 1, dtype=np.int64), cols, absent, None, ignored)


def _read(recipe: Recipe, source: str | Path | pd.DataFrame, encoding: str | None) -> _Table:
    if isinstance(source, str | Path):
        return _read_file(recipe, Path(source), encoding)
    # A frame may say where its rows come from (attrs["name"]), so errors name that instead of "table".
    return _read_frame(recipe, source, str(source.attrs.get("name", "table")))


# --------------------------------------------------------------------------------------------------- parsing columns


@dataclass
class ParsedTable:
    """Columns parsed and checked, rows with a missing label already dropped."""

    table: _Table
    rows_read: int
    keep: npt.NDArray[np.bool_]
    y: npt.NDArray[np.int64]
    numeric: dict[str, npt.NDArray[np.float64]]  # NaN where missing, clipped and transformed
    codes: dict[str, npt.NDArray[np.int64]]  # category index; -1 missing, -2 unknown
    unknown: dict[str, dict[str, int]]


class _Problems:
    """The first problem of each column; the earliest in the file is raised, so a user fixes the file top-down."""

    def __init__(self, table: _Table) -> None:
        self.table = table
        self.found: list[tuple[int, int, str]] = []

    def add(self, i: int, order: int, column: str, what: str) -> None:
        self.found.append((int(self.table.lines[i]), order, f"{self.table.where(i, column)}: {what}"))

    def raise_first(self) -> None:
        if self.found:
            self.found.sort()
            more = len(self.found) - 1
            tail = f" (and problems in {more} more column{'s' if more > 1 else ''})" if more else ""
            raise BadInput(self.found[0][2] + tail)


@dataclass
class _Column:
    """One column as its distinct (stripped) values and, per row, the index of its value: every check and
    conversion runs once per distinct value, then maps to the rows."""

    name: str
    values: list[str]
    inverse: npt.NDArray[np.intp]
    missing: npt.NDArray[np.bool_]  # per row

    @classmethod
    def of(cls, table: _Table, name: str, markers: Sequence[str], numeric: bool) -> _Column:
        import pandas as pd

        raw = np.empty(len(table.lines), dtype=object)
        raw[:] = table.cols[name]
        inverse, uniq = pd.factorize(raw)  # a hash table in C: fast on text, and no value is ever NaN here
        stripped = [str(u).strip() for u in uniq.tolist()]
        values = sorted(set(stripped))
        pos = {v: i for i, v in enumerate(values)}
        remap = np.array([pos[v] for v in stripped], dtype=np.intp)
        inverse = remap[inverse] if remap.size else inverse.astype(np.intp)
        numbers = [x for m in markers if (x := parse_number(m)) is not None] if numeric else []
        marked = np.array([v in markers or (bool(numbers) and parse_number(v) in numbers) for v in values], dtype=bool)
        missing = marked[inverse] if values else np.zeros(0, dtype=bool)
        if name in table.absent:
            missing = missing | table.absent[name]
        return cls(name, values, inverse, missing)

    def first(self, per_value: npt.NDArray[np.bool_]) -> int | None:
        """The first row whose (non-missing) value is flagged in ``per_value``, or None."""
        rows = np.flatnonzero(per_value[self.inverse] & ~self.missing) if self.values else np.zeros(0, dtype=np.intp)
        return int(rows[0]) if rows.size else None

    def value(self, row: int) -> str:
        return self.values[int(self.inverse[row])]


def _parse_numeric(spec: ColumnSpec, col: _Column, problems: _Problems, order: int) -> npt.NDArray[np.float64]:
    parsed = np.array([x if (x := parse_number(v)) is not None else np.nan for v in col.values], dtype=np.float64)
    out = parsed[col.inverse] if col.values else np.zeros(0, dtype=np.float64)
    out[col.missing] = np.nan
    bad = col.first(np.isnan(parsed))
    if bad is not None:
        value = col.value(bad)
        what = "is not a finite number" if _is_nonfinite(value) else "is not a number"
        problems.add(bad, order, spec.name, f"{value!r} {what}")
    if spec.clip is not None:
        np.clip(out, spec.clip[0], spec.clip[1], out=out)
    if spec.transform == "log1p":
        clipped = np.clip(parsed, *spec.clip) if spec.clip is not None else parsed
        bad = col.first(clipped <= -1)
        if bad is not None:
            problems.add(bad, order, spec.name, f"{col.value(bad)!r} is outside log1p's domain (values above -1)")
        with np.errstate(divide="ignore", invalid="ignore"):  # reported above; the rows are never returned
            out = np.log1p(out)
    return out


def transformed_value(spec: ColumnSpec, x: float) -> float:
    """A value in the file's units (a constant, a clip bound) as the column's transform maps the values read."""
    return math.log1p(x) if spec.transform == "log1p" else x


def _is_nonfinite(s: str) -> bool:
    try:
        return not math.isfinite(float(s))
    except ValueError:
        return False


def _lookup(listed: tuple[Value, ...], values: list[str]) -> npt.NDArray[np.int64]:
    """Index in ``listed`` of each distinct raw value, -2 when it is not listed (numbers match by value)."""
    pos: dict[Value, int] = {v: i for i, v in enumerate(listed)}
    numeric = bool(listed) and isinstance(listed[0], float)
    out = np.empty(len(values), dtype=np.int64)
    for k, v in enumerate(values):
        key: Value | None = parse_number(v) if numeric else v
        out[k] = pos.get(key, -2) if key is not None else -2
    return out


def _parse_categorical(
    spec: ColumnSpec, col: _Column, problems: _Problems, order: int, unknown: dict[str, int]
) -> npt.NDArray[np.int64]:
    found = _lookup(spec.categories, col.values)
    codes = found[col.inverse] if col.values else np.zeros(0, dtype=np.int64)
    codes[col.missing] = -1
    bad = col.first(found == -2)
    if bad is not None:
        if spec.unknown == "error":
            listed = ", ".join(format_value(c) for c in spec.categories)
            problems.add(bad, order, spec.name, f"{col.value(bad)!r} is not one of the categories ({listed})")
        else:
            counts = np.bincount(col.inverse[codes == -2], minlength=len(col.values))
            unknown.update({col.values[k]: int(c) for k, c in enumerate(counts.tolist()) if c})
    return codes


def _parse_label(rule: LabelRule, col: _Column, problems: _Problems, order: int) -> npt.NDArray[np.int64]:
    mapped = np.empty(len(col.values), dtype=np.int64)
    why = ""
    if rule.threshold is not None:
        op, bound = rule.threshold
        nums = np.array([x if (x := parse_number(v)) is not None else np.nan for v in col.values], dtype=np.float64)
        mapped[:] = COMPARISONS[op](nums, bound).astype(np.int64)
        mapped[np.isnan(nums)] = -2
        why = f"is not a number, and the label rule ({rule.describe()}) needs one"
    elif rule.classes is not None:
        mapped[:] = _lookup(rule.classes, col.values)
        why = f"is not one of the label's {rule.describe()}"
    else:
        pos = _lookup(rule.positive, col.values) >= 0 if rule.positive else None
        neg = _lookup(rule.negative, col.values) >= 0 if rule.negative else None
        if pos is not None and neg is not None:
            mapped[:] = np.where(pos, 1, np.where(neg, 0, -2))
            why = f"is in neither list of the label rule ({rule.describe()})"
        elif pos is not None:
            mapped[:] = pos.astype(np.int64)
        elif neg is not None:
            mapped[:] = (~neg).astype(np.int64)
        else:
            raise ConfigError(f"label.{rule.column}: the label rule gives no threshold, classes or value lists")
        listed = rule.positive or rule.negative or ()
        if listed and isinstance(listed[0], float):
            # Numeric lists: a value that is not a number cannot be compared with them.
            mapped[np.array([parse_number(v) is None for v in col.values], dtype=bool)] = -2
            why = why or f"is not a number, and the label rule ({rule.describe()}) lists numbers"
    y = mapped[col.inverse] if col.values else np.zeros(0, dtype=np.int64)
    y[col.missing] = -1
    bad = col.first(mapped == -2)
    if bad is not None:
        problems.add(bad, order, rule.column, f"label {col.value(bad)!r} {why}")
    return y


def parse_table(recipe: Recipe, source: str | Path | pd.DataFrame, encoding: str | None) -> ParsedTable:
    table = _read(recipe, source, encoding)
    problems = _Problems(table)
    position = {c: i for i, c in enumerate(recipe.columns)}
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    codes: dict[str, npt.NDArray[np.int64]] = {}
    unknown: dict[str, dict[str, int]] = {}
    for f in recipe.features:
        col = _Column.of(table, f.name, recipe.missing + f.missing, f.kind == NUMERIC or f.numeric_categories)
        order = position.get(f.name, 0)
        if f.impute is None and col.missing.any():
            i = int(np.flatnonzero(col.missing)[0])
            problems.add(i, order, f.name, f"missing value {col.value(i)!r}, and the recipe gives no imputation")
        if f.kind == NUMERIC:
            numeric[f.name] = _parse_numeric(f, col, problems, order)
        else:
            unknown[f.name] = {}
            codes[f.name] = _parse_categorical(f, col, problems, order, unknown[f.name])
    label = _Column.of(table, recipe.label.column, recipe.missing, False)
    y = _parse_label(recipe.label, label, problems, position.get(recipe.label.column, 0))
    problems.raise_first()
    keep = ~label.missing
    return ParsedTable(
        table,
        len(table.lines),
        keep,
        y[keep],
        {k: v[keep] for k, v in numeric.items()},
        {k: v[keep] for k, v in codes.items()},
        {k: v for k, v in unknown.items() if v},
    )
