"""Delimited text split into records with the line each starts on, and the checks a reader runs on them."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

from fedledger.exceptions import BadInput


@dataclass(frozen=True)
class CsvRecords:
    """A delimited text's records as written, with the line each starts on (blank lines skipped and counted)."""

    header: list[str] | None  # stripped names, when the text has a header line
    header_line: int
    rows: list[list[str]]
    lines: list[int]
    blank_lines: int


def read_records(text: str, delimiter: str, *, header: bool, name: str) -> CsvRecords:
    """Split decoded text into records (any line ending; a quoted field may span lines, so a record's line is
    where it starts). A malformed record is :class:`BadInput` naming ``name`` and its line; with ``header``, a
    text with no header line, an empty column name or a name given twice is too."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[list[str]] = []
    lines: list[int] = []
    blank = 0
    names: list[str] | None = None
    header_line = 0
    try:
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                blank += 1
                continue
            if header and names is None:
                names = [c.strip() for c in row]
                header_line = reader.line_num
                continue
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise BadInput(f"{name} line {reader.line_num}: {exc}") from exc
    if header:
        if names is None:
            raise BadInput(f"{name} line 1: expected a header line, and the file has none")
        for i, column in enumerate(names):
            if not column:
                raise BadInput(f"{name} line {header_line}, column {i + 1}: empty column name in the header")
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise BadInput(f"{name} line {header_line}, column {dups[0]}: appears twice in the header")
    return CsvRecords(names, header_line, rows, lines, blank)


def require_columns(records: CsvRecords, columns: Sequence[str], *, name: str) -> None:
    """Every one of ``columns`` is in the header, or :class:`BadInput` names the first missing one."""
    if records.header is None:
        raise BadInput(f"{name}: read without a header line, so its columns cannot be found by name")
    for column in columns:
        if column not in records.header:
            raise BadInput(
                f"{name} line {records.header_line}, column {column}: missing from the header "
                f"(the header has {', '.join(records.header)})"
            )


def check_widths(records: CsvRecords, names: Sequence[str], *, name: str) -> None:
    """Every record has one value per column of ``names``, or :class:`BadInput` names the line and the first
    missing or unexpected column."""
    width = len(names)
    for row, line in zip(records.rows, records.lines, strict=True):
        if len(row) < width:
            raise BadInput(
                f"{name} line {line}, column {names[len(row)]}: missing (the line has {len(row)} columns, "
                f"expected {width})"
            )
        if len(row) > width:
            raise BadInput(
                f"{name} line {line}, column {width + 1}: unexpected (the line has {len(row)} columns, "
                f"expected {width}: {', '.join(names)})"
            )


def parse_number(text: str) -> float | None:
    """A cell's finite number, or None: ``float`` syntax without ``_`` (Python reads "1_000"; a data file does
    not mean that), and neither NaN nor infinity."""
    if "_" in text:
        return None
    try:
        x = float(text)
    except ValueError:
        return None
    return x if math.isfinite(x) else None
