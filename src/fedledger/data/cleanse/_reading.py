"""Reading the raw CSV to cleanse, and collecting its invalid values so that the earliest is reported."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fedledger.data.tabular import check_widths, decode_bytes, read_records, require_columns
from fedledger.exceptions import BadInput

if TYPE_CHECKING:
    from fedledger.data.prepare import Recipe


class SourceTable:
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


def read_source(path: Path, recipe: Recipe | None, encoding: str | None, header: bool | None) -> SourceTable:
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
    return SourceTable(path, enc, delimiter, tuple(names) if has_header else None, tuple(names), rows, lines, blank)


class Problems:
    """Invalid values under ``invalid = "error"``: the earliest in the file is raised, naming line and column."""

    def __init__(self, source: SourceTable) -> None:
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
