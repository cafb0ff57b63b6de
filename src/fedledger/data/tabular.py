"""Reading and writing the organization's tables (CSV and Parquet), robustly and in bounded memory.

Every data command (scan, protect, ...) reads through here so that bad input fails the same way everywhere:
a :class:`~fedledger.exceptions.BadInput` naming the file (and, for CSV, the line) instead of a pandas traceback
or a silently half-read table.

CSV is messy in practice, so :func:`detect_source` works out, before any row is parsed:

* the **encoding**: strict UTF-8 (``utf-8-sig`` when the file starts with a byte-order mark); when the bytes are not
  valid UTF-8, Windows-1252 (the usual spreadsheet export), or Latin-1 when the file holds bytes cp1252 leaves
  undefined. The whole file is checked (incrementally, ~1 GB/s) because a stray byte at row 900 000 must not be
  discovered after 899 999 rows were already consumed. The decision is recorded in :attr:`TableSource.note`,
  including "mixed encodings" when valid multi-byte UTF-8 and invalid bytes occur in the same file.
* the **delimiter**: the candidate (``,`` ``;`` tab ``|``) that splits the first lines into the most consistent
  number of fields (the same idea as :class:`csv.Sniffer`, but deterministic over a fixed candidate set).

Parquet is recognised by its ``PAR1`` magic bytes as well as its extension, and streamed by row groups through
pyarrow. :func:`iter_batches` yields DataFrames of at most ``batch_rows`` rows; a malformed line met mid-stream raises
``BadInput`` from the iterator, so a consumer never mistakes a partial read for the whole file.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from fedledger.exceptions import BadInput

__all__ = [
    "CSV_SUFFIXES",
    "DEFAULT_BATCH_ROWS",
    "PARQUET_SUFFIXES",
    "TableSource",
    "detect_source",
    "iter_batches",
    "read_table",
    "write_table",
]

CSV_SUFFIXES = frozenset({".csv", ".tsv", ".txt", ".data"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
DEFAULT_BATCH_ROWS = 100_000

_PARQUET_MAGIC = b"PAR1"
_DELIMITERS = (",", "\t", ";", "|")  # preference order on ties
_SNIFF_BYTES = 64 * 1024
_SNIFF_LINES = 50
_CHUNK_BYTES = 1 << 20
# Bytes that Windows-1252 leaves undefined: a file holding them is not cp1252, so read it as Latin-1.
_CP1252_UNDEFINED_BYTES = tuple(bytes([b]) for b in b"\x81\x8d\x8f\x90\x9d")


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
    if b"\x00" in head:
        raise BadInput(f"{p}: unknown format: binary content that is neither CSV nor Parquet")
    if suffix not in CSV_SUFFIXES and suffix not in ("",):
        known = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))
        raise BadInput(f"{p}: unknown format {suffix!r}: expected one of {known}")
    encoding, note = _detect_encoding(p)
    text = head.decode(encoding, errors="replace")
    if not text.strip():
        raise BadInput(f"{p}: file is empty (only whitespace)")
    return TableSource(p, "csv", encoding=encoding, delimiter=_sniff_delimiter(text), note=note)


def _detect_encoding(path: Path) -> tuple[str, str]:
    """(encoding, note): strict UTF-8 over the whole file, else cp1252, else Latin-1."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    newlines = 0
    saw_multibyte = False
    has_bom = False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            if offset == 0 and chunk.startswith(codecs.BOM_UTF8):
                has_bom = True
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_at = offset + exc.start
                line = newlines + chunk.count(b"\n", 0, exc.start) + 1
                saw_multibyte = saw_multibyte or any(b >= 0xC2 for b in chunk[: exc.start])
                undefined_in_cp1252 = _has_cp1252_undefined(chunk)
                while not undefined_in_cp1252 and (more := fh.read(_CHUNK_BYTES)):
                    undefined_in_cp1252 = _has_cp1252_undefined(more)
                fallback = "latin-1" if undefined_in_cp1252 else "cp1252"
                mixed = " (mixed encodings: valid UTF-8 text appears before it)" if saw_multibyte else ""
                return fallback, (
                    f"not valid UTF-8 (byte {bad_at}, line {line}){mixed}; decoded as {fallback}, "
                    "so some characters may be wrong"
                )
            saw_multibyte = saw_multibyte or max(chunk, default=0) >= 0x80
            newlines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252", "the file ends inside a UTF-8 character (truncated?); decoded as cp1252"
    return ("utf-8-sig", "") if has_bom else ("utf-8", "")


def _has_cp1252_undefined(chunk: bytes) -> bool:
    return any(chunk.find(byte) >= 0 for byte in _CP1252_UNDEFINED_BYTES)


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
