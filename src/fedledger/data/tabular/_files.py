"""Table files: detecting their format, delimiter and encoding, reading them whole or in batches, writing them
atomically."""

from __future__ import annotations

import csv
import io
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fedledger.data.tabular._encoding import detect_encoding
from fedledger.exceptions import BadInput

if TYPE_CHECKING:
    # pandas is imported where it is used: fedledger.data.prepare imports this package and stays light.
    import pandas as pd

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".data"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
DEFAULT_BATCH_ROWS = 100_000

_PARQUET_MAGIC = b"PAR1"
_DELIMITERS = (",", "\t", ";", "|")  # preference order on ties
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50


@dataclass(frozen=True)
class TableSource:
    """How a table file is read: its format and, for CSV, its encoding and delimiter.

    ``note`` is a human sentence about anything a reader should know (an encoding fallback), empty otherwise.
    """

    path: Path
    format: Literal["csv", "parquet"]
    encoding: str | None = None
    delimiter: str | None = None
    note: str = ""

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "note": self.note,
        }


def detect_source(path: str | Path) -> TableSource:
    """Format, encoding and delimiter of a table file; ``BadInput`` if it is missing, empty or not a table."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with p.open("rb") as fh:
            head = fh.read(_SNIFF_BYTES)
    except FileNotFoundError:
        raise BadInput(f"{p}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{p}: is a directory, expected a CSV or Parquet file") from None
    except OSError as exc:
        raise BadInput(f"{p}: cannot read: {exc}") from exc
    if size == 0:
        raise BadInput(f"{p}: file is empty (no header, no rows)")
    suffix = p.suffix.lower()
    if head.startswith(_PARQUET_MAGIC) or suffix in PARQUET_SUFFIXES:
        if not head.startswith(_PARQUET_MAGIC):
            raise BadInput(f"{p}: has a Parquet extension but is not a Parquet file (no PAR1 magic bytes)")
        return TableSource(p, "parquet")
    if suffix not in CSV_SUFFIXES and suffix not in ("",):
        known = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))
        raise BadInput(f"{p}: unknown format {suffix!r}: expected one of {known}")
    encoding, note = detect_encoding(p, head)
    text = head.decode(encoding, errors="replace")
    if not text.strip():
        raise BadInput(f"{p}: file is empty (only whitespace)")
    return TableSource(p, "csv", encoding=encoding, delimiter=_sniff_delimiter(text), note=note)


def _sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the first lines into the most consistent field count (> 1)."""
    lines = text.splitlines()[:_SNIFF_LINES]
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]  # the sniffed prefix may cut the last line short
    best, best_score = ",", (0, 0)
    for delimiter in _DELIMITERS:
        try:
            counts = [len(row) for row in csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter) if row]
        except csv.Error:
            continue
        if not counts:
            continue
        fields, agreeing = Counter(counts).most_common(1)[0]
        if fields < 2:
            continue
        score = (agreeing, fields)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _check_columns(source: TableSource, available: Sequence[str], columns: Sequence[str] | None) -> None:
    if columns is None:
        return
    missing = [c for c in columns if c not in available]
    if missing:
        raise BadInput(f"{source.path}: no column(s) {', '.join(map(repr, missing))}; it has {list(available)}")


def _tag(frame: pd.DataFrame, source: TableSource) -> pd.DataFrame:
    frame.attrs["source"] = source.describe()
    return frame


def read_table(path: str | Path, *, columns: Sequence[str] | None = None, as_text: bool = False) -> pd.DataFrame:
    """The whole table as a DataFrame (``as_text``: every cell as written, a string or missing).

    ``df.attrs["source"]`` holds :meth:`TableSource.describe` (encoding used, delimiter, note).
    """
    source = detect_source(path)
    if source.format == "parquet":
        batches = list(_iter_parquet(source, None, columns, as_text))
        return batches[0]
    text = next(_iter_csv(source, None, columns, as_text=True))
    return text if as_text else _tag(_infer_types(text), source)


def iter_batches(
    path: str | Path,
    *,
    batch_rows: int | None = DEFAULT_BATCH_ROWS,
    columns: Sequence[str] | None = None,
    as_text: bool = False,
) -> Iterator[pd.DataFrame]:
    """Stream the table in DataFrames of at most ``batch_rows`` rows (``None``: one batch).

    Always yields at least one (possibly empty, header-only) DataFrame carrying the column names. Raises
    ``BadInput`` (possibly after earlier batches were yielded) on a malformed line: a consumer must treat the
    exception as "the file was not read", never keep what it got so far as the whole table. Each batch's types are
    inferred from that batch alone (as with pandas' chunked reader); pass ``as_text`` for stable types.
    """
    if batch_rows is not None and batch_rows < 1:
        raise BadInput(f"batch_rows must be >= 1, got {batch_rows}")
    source = detect_source(path)
    if source.format == "parquet":
        yield from _iter_parquet(source, batch_rows, columns, as_text)
    else:
        yield from _iter_csv(source, batch_rows, columns, as_text)


def _read_header(source: TableSource) -> list[str]:
    """The header row's names, made unique and non-empty the way pandas does ("Unnamed: 3", "age.1")."""
    with source.path.open(encoding=source.encoding, newline="") as fh:
        try:
            raw = next(csv.reader(fh, delimiter=source.delimiter or ","))
        except StopIteration:
            raise BadInput(f"{source.path}: file is empty (no header row)") from None
        except csv.Error as exc:
            raise BadInput(f"{source.path}: malformed CSV header: {exc}") from exc
    names: list[str] = []
    seen: Counter[str] = Counter()
    for i, name in enumerate(raw):
        name = name.strip() or f"Unnamed: {i}"
        unique = name if not seen[name] else f"{name}.{seen[name]}"
        seen[name] += 1
        names.append(unique)
    return names


def table_columns(path: str | Path) -> list[str]:
    """The column names of a table file (a CSV's header row, a Parquet file's schema) without reading its rows."""
    source = detect_source(path)
    if source.format == "csv":
        return _read_header(source)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return list(pq.ParquetFile(source.path).schema_arrow.names)
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: unreadable Parquet file: {exc}") from exc


def cell_location(source: Any, row: int, column: str) -> str:
    """Where data row ``row`` (0-based) and ``column`` of a table are, for an error message: ``FILE line L, column
    'C'`` for a CSV (the physical line, counted again on this error path, so quoted line breaks are right), ``FILE
    row R`` for Parquet. ``source`` is :meth:`TableSource.describe` (a frame's ``attrs["source"]``) or None."""
    if not isinstance(source, dict) or "path" not in source:
        return f"row {row + 1}, column {column!r}"
    path = Path(source["path"])
    if source.get("format") != "csv":
        return f"{path} row {row + 1}, column {column!r}"
    try:
        with path.open(encoding=source.get("encoding") or "utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter=source.get("delimiter") or ",")
            records = -1  # the header is record -1
            start = 1
            for fields in reader:
                if fields and records == row:
                    return f"{path} line {start}, column {column!r}"  # where the record starts
                records += bool(fields)
                start = reader.line_num + 1
    except (OSError, UnicodeDecodeError, csv.Error):
        pass
    return f"{path} data row {row + 1}, column {column!r}"


def _locate_bad_row(source: TableSource, width: int) -> str:
    """Where a CSV row has the wrong number of fields (only called on the error path, so speed does not matter)."""
    with source.path.open(encoding=source.encoding, newline="") as fh:
        reader = csv.reader(fh, delimiter=source.delimiter or ",")
        try:
            for row in reader:
                if row and len(row) != width:
                    return f"line {reader.line_num}: expected {width} fields, saw {len(row)}"
        except csv.Error as exc:
            return f"line {reader.line_num}: {exc}"
    return ""


def _csv_error(source: TableSource, width: int, exc: Exception) -> BadInput:
    where = _locate_bad_row(source, width)
    detail = str(exc).strip().removeprefix("CSV parse error: ")
    return BadInput(f"{source.path}: malformed CSV: {where or detail}")


def _infer_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers and booleans from text columns (what pandas.read_csv infers); anything else stays text."""
    import pandas as pd

    typed = {}
    for name, column in frame.items():
        values = column.dropna()
        if values.empty:
            typed[name] = column
        elif values.isin(("True", "False", "true", "false", "TRUE", "FALSE")).all() and len(values) == len(column):
            typed[name] = column.str.lower() == "true"
        else:
            try:
                typed[name] = pd.to_numeric(column)
            except (ValueError, TypeError):
                typed[name] = column
    return pd.DataFrame(typed, index=frame.index)


def _iter_csv(
    source: TableSource, batch_rows: int | None, columns: Sequence[str] | None, as_text: bool
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    # pyarrow rather than pandas' chunked reader: pandas silently drops the extra fields of a ragged row that
    # happens to start a chunk; pyarrow refuses every ragged row.
    names = _read_header(source)
    _check_columns(source, names, columns)
    string_types = {name: pa.string() for name in names}
    options = {
        "read_options": pacsv.ReadOptions(column_names=names, skip_rows=1, encoding=source.encoding or "utf8"),
        "parse_options": pacsv.ParseOptions(delimiter=source.delimiter or ","),
        "convert_options": pacsv.ConvertOptions(
            column_types=string_types,
            include_columns=list(columns) if columns is not None else None,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            null_values=[""],
        ),
    }
    schema = pa.schema([(name, pa.string()) for name in (columns if columns is not None else names)])

    def to_frame(table: pa.Table) -> pd.DataFrame:
        # skipinitialspace: "a, b, c" exports (adult.data) read as "b", not " b"
        table = pa.table({name: pc.utf8_ltrim_whitespace(table[name]) for name in table.column_names})
        frame = table.to_pandas()
        return _tag(frame if as_text else _infer_types(frame), source)

    try:
        reader = pacsv.open_csv(source.path, **options)
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        yielded = False
        for record_batch in reader:
            pending.append(record_batch)
            pending_rows += record_batch.num_rows
            while batch_rows is not None and pending_rows >= batch_rows:
                table = pa.Table.from_batches(pending, schema)
                yield to_frame(table.slice(0, batch_rows))
                yielded = True
                rest = table.slice(batch_rows)
                pending, pending_rows = rest.to_batches(), rest.num_rows
        if pending_rows or not yielded:
            yield to_frame(pa.Table.from_batches(pending, schema))
    except pa.ArrowInvalid as exc:
        raise _csv_error(source, len(names), exc) from exc
    except UnicodeDecodeError as exc:
        raise BadInput(f"{source.path}: cannot decode as {source.encoding}: {exc}") from exc


def _iter_parquet(
    source: TableSource, batch_rows: int | None, columns: Sequence[str] | None, as_text: bool
) -> Iterator[pd.DataFrame]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source.path)
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: unreadable Parquet file: {exc}") from exc
    _check_columns(source, parquet.schema_arrow.names, columns)
    selected = list(columns) if columns is not None else None

    def to_frame(batch: pa.RecordBatch | pa.Table) -> pd.DataFrame:
        frame = batch.to_pandas()
        if as_text:
            frame = frame.astype(object).where(frame.notna(), None)
            frame = frame.map(lambda v: v if v is None or isinstance(v, str) else str(v))
        return _tag(frame, source)

    try:
        if batch_rows is None or parquet.metadata.num_rows == 0:
            yield to_frame(parquet.read(columns=selected))
            return
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=selected):
            yield to_frame(batch)
    except (pa.ArrowException, OSError) as exc:
        raise BadInput(f"{source.path}: corrupt Parquet data: {exc}") from exc


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write by extension (.csv, .tsv, .parquet/.pq), atomically: a crash never leaves a half-written table."""
    p = Path(path)
    suffix = p.suffix.lower()
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        if suffix in PARQUET_SUFFIXES:
            frame.to_parquet(tmp, index=False)
        elif suffix == ".tsv":
            frame.to_csv(tmp, index=False, sep="\t")
        elif suffix in CSV_SUFFIXES:
            frame.to_csv(tmp, index=False)
        else:
            known = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))
            raise BadInput(f"{p}: unknown output format {suffix!r}: expected one of {known}")
        os.replace(tmp, p)
    finally:
        tmp.unlink(missing_ok=True)
    return p
