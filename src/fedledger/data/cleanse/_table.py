"""Cleansing a whole table: every column, then duplicate rows, and the report of what changed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedledger.data.cleanse._columns import (
    MISSING_EVENTS,
    REPAIRS,
    ColumnOutcome,
    cleanse_column,
    format_number,
    recipe_column_types,
)
from fedledger.data.cleanse._reading import Problems, read_source
from fedledger.data.cleanse._rules import CLEANSE_REPORT_FORMAT, MAX_DUPLICATE_EXAMPLES, CleanseRules, json_number
from fedledger.exceptions import BadInput

if TYPE_CHECKING:
    from fedledger.data.prepare import Recipe


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
    table = read_source(path, recipe, encoding, header)
    for name in rules.column_map:
        if name not in table.names:
            raise BadInput(f"{path} line 1, column {name}: named in the cleanse rules, not in the file")
    specs = recipe_column_types(recipe) if recipe is not None else {}
    canonical_missing = recipe.missing[0] if recipe is not None and recipe.missing else ""
    problems = Problems(table)
    outcomes = [
        cleanse_column(
            table, j, specs.get(name), rules.column_map.get(name), rules, canonical_missing.strip(), problems
        )
        for j, name in enumerate(table.names)
    ]
    problems.raise_first()

    n = len(table.rows)
    cleaned = list(zip(*(o.values.tolist() for o in outcomes), strict=True)) if n and outcomes else []
    kept, removed, duplicates = _drop_duplicates(cleaned, table.lines, rules.duplicates)
    columns = {name: _column_report(o) for name, o in zip(table.names, outcomes, strict=True)}
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


def _drop_duplicates(
    cleaned: list[tuple[str, ...]], lines: list[int], policy: str
) -> tuple[list[tuple[str, ...]], int, list[dict[str, int]]]:
    """(rows kept, rows removed, a few examples) under the ``duplicates`` policy: "drop" keeps the first of rows
    that are identical once cleansed."""
    kept: list[tuple[str, ...]] = []
    first_line: dict[tuple[str, ...], int] = {}
    duplicates: list[dict[str, int]] = []
    removed = 0
    for i, row in enumerate(cleaned):
        if policy == "drop":
            seen = first_line.get(row)
            if seen is not None:
                removed += 1
                if len(duplicates) < MAX_DUPLICATE_EXAMPLES:
                    duplicates.append({"line": lines[i], "same_as_line": seen})
                continue
            first_line[row] = lines[i]
        kept.append(row)
    return kept, removed, duplicates


def _column_report(o: ColumnOutcome) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": o.spec.kind, "type_from": o.spec.source}
    if o.mark is not None:
        entry["decimal_mark"] = o.mark
    if o.spec.categories:
        entry["categories"] = [format_number(c) if isinstance(c, float) else c for c in o.spec.categories]
    if o.spec.range is not None:
        entry["range"] = [json_number(o.spec.range[0]), json_number(o.spec.range[1])]
    entry["changed"] = sum(o.events.values())
    entry["repaired"] = {k: o.events[k] for k in REPAIRS if o.events.get(k)}
    entry["to_missing"] = {k: o.events[k] for k in MISSING_EVENTS if o.events.get(k)}
    entry["missing_after"] = o.missing_after
    entry["examples"] = o.examples
    return entry
