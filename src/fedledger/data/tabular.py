"""Reading and writing the organization's tables (CSV and Parquet), robustly and in bounded memory.

Every data command (scan, protect, ...) reads through here so that bad input fails the same way everywhere:
a :class:`~fedledger.exceptions.BadInput` naming the file (and, for CSV, the line) instead of a pandas traceback
or a silently half-read table.

CSV is messy in practice, so :func:`detect_source` works out, before any row is parsed:

* the **encoding**: a byte-order mark first (UTF-8, UTF-16 and UTF-32: Excel's "Unicode text" export is
  tab-separated UTF-16 with a BOM), then strict UTF-8 over the whole file (incrementally, ~1 GB/s: a stray byte at
  row 900 000 must not be discovered after 899 999 rows were already consumed), then ``charset-normalizer`` on a
  sample around the first invalid byte, the same rule :func:`decode_bytes` applies to whole files: a multi-byte or
  non-Latin-script encoding it finds is used, and Latin-script text is read as Windows-1252 (the usual spreadsheet
  export) or as Latin-1 when the file holds bytes cp1252 leaves undefined. UTF-16 or UTF-32 without a BOM is
  recognised the same way from its NUL bytes; anything else holding NUL bytes is binary. The encoding is reported
  (:meth:`TableSource.describe`), and :attr:`TableSource.note` says why when it is not plain UTF-8, including
  "mixed encodings" when valid multi-byte UTF-8 and invalid bytes occur in the same file.
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
import math
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from fedledger.exceptions import BadInput

if TYPE_CHECKING:
    # pandas is imported where it is used: fedledger.data.prepare imports decode_bytes from here and stays light.
    import pandas as pd

__all__ = [
    "CSV_SUFFIXES",
    "DEFAULT_BATCH_ROWS",
    "PARQUET_SUFFIXES",
    "TableSource",
    "cell_location",
    "decode_bytes",
    "detect_source",
    "iter_batches",
    "read_table",
    "table_columns",
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
# Bytes around the first invalid UTF-8 byte that charset-normalizer looks at (with the file's first bytes).
_DETECT_BYTES = 256 * 1024
_MIN_DETECT_BYTES = 16
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Scripts (Unicode block names, as charset-normalizer reports them) that rule out a Western code page.
_NON_LATIN_SCRIPTS = (
    "Cyrillic",
    "Greek",
    "Arabic",
    "Hebrew",
    "CJK",
    "Hangul",
    "Hiragana",
    "Katakana",
    "Thai",
    "Devanagari",
    "Armenian",
    "Georgian",
)
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
    if suffix not in CSV_SUFFIXES and suffix not in ("",):
        known = ", ".join(sorted(CSV_SUFFIXES | PARQUET_SUFFIXES))
        raise BadInput(f"{p}: unknown format {suffix!r}: expected one of {known}")
    encoding, note = _detect_encoding(p, head)
    text = head.decode(encoding, errors="replace")
    if not text.strip():
        raise BadInput(f"{p}: file is empty (only whitespace)")
    return TableSource(p, "csv", encoding=encoding, delimiter=_sniff_delimiter(text), note=note)


def _bom_encoding(head: bytes) -> str | None:
    return next((encoding for bom, encoding in _BOMS if head.startswith(bom)), None)


def _legacy_encoding(sample: bytes, *, cp1252_undefined: bool) -> str:
    """The encoding of bytes that are neither UTF-8 nor marked by a BOM.

    Statistical detection cannot tell the Western 8-bit code pages apart on short tables (it calls a Latin-1 file
    with a few accents cp775 or cp1250), so only a multi-byte or non-Latin-script verdict of charset-normalizer is
    taken as is; Latin-script text is cp1252, the usual spreadsheet export and a superset of Latin-1's printable
    characters, or Latin-1 when the bytes hold one that cp1252 leaves undefined. Below
    :data:`_MIN_DETECT_BYTES` non-ASCII bytes there is too little text to tell scripts apart (charset-normalizer
    calls "José" Farsi in cp1006), so such a sample gets the Western default too.
    """
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    western = "latin-1" if cp1252_undefined else "cp1252"
    if sum(byte >= 0x80 for byte in sample) < _MIN_DETECT_BYTES:
        return western
    best = from_bytes(sample).best()
    if best is None:
        return western
    found = codecs.lookup(best.encoding).name
    # A delimited file in UTF-16/32 is full of NUL bytes (handled before this); without them such a verdict is
    # charset-normalizer over-fitting a few accented bytes.
    if found.startswith(("utf-16", "utf-32")):
        return western
    if is_multi_byte_encoding(best.encoding) or any(s in a for a in best.alphabets for s in _NON_LATIN_SCRIPTS):
        return found
    return western


def decode_bytes(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding) for a whole raw file's bytes.

    Byte-order marks first (UTF-8, UTF-16 and UTF-32, BOM removed); then strict UTF-8 (which covers ASCII); then
    ``charset-normalizer`` with the Western code-page rule of :func:`_legacy_encoding`. Pass ``encoding`` to skip
    detection. Files too large to hold in memory go through :func:`detect_source`, which applies the same rules
    while streaming.
    """
    if encoding:
        try:
            return data.decode(encoding), codecs.lookup(encoding).name
        except (LookupError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot decode as {encoding}: {exc}") from exc
    bom = _bom_encoding(data)
    if bom is not None:
        try:
            return data.decode(bom), bom
        except UnicodeDecodeError as exc:
            raise BadInput(f"starts with a {bom} byte-order mark but is not {bom}: {exc}") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = _legacy_encoding(data, cp1252_undefined=_has_cp1252_undefined(data))
    try:
        return data.decode(found), found
    except UnicodeDecodeError as exc:
        raise BadInput(f"detected as {found} but not decodable as it: {exc}") from exc


def _detect_encoding(path: Path, head: bytes) -> tuple[str, str]:
    """(encoding, note) of a CSV file whose first bytes are ``head`` (see the module docstring)."""
    bom = _bom_encoding(head)
    if bom in ("utf-16", "utf-32"):
        _check_decodes(path, bom)
        return bom, ""
    if bom is None and b"\x00" in head:
        # UTF-16/32 text without a BOM is full of NUL bytes; so is every binary format.
        from charset_normalizer import from_bytes

        best = from_bytes(head).best()
        wide = None if best is None else codecs.lookup(best.encoding).name
        if wide is None or not wide.startswith(("utf-16", "utf-32")):
            raise BadInput(f"{path}: unknown format: binary content that is neither CSV nor Parquet")
        _check_decodes(path, wide)
        return wide, f"no byte-order mark; detected as {wide} by charset-normalizer"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    newlines = 0
    saw_multibyte = False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_at = offset + exc.start
                line = newlines + chunk.count(b"\n", 0, exc.start) + 1
                saw_multibyte = saw_multibyte or any(b >= 0xC2 for b in chunk[: exc.start])
                around = chunk[max(0, exc.start - _DETECT_BYTES // 2) : exc.start + _DETECT_BYTES // 2]
                sample = around if offset == 0 and exc.start < _DETECT_BYTES // 2 else head + around
                undefined_in_cp1252 = _has_cp1252_undefined(chunk)
                while not undefined_in_cp1252 and (more := fh.read(_CHUNK_BYTES)):
                    undefined_in_cp1252 = _has_cp1252_undefined(more)
                found = _legacy_encoding(sample, cp1252_undefined=undefined_in_cp1252)
                mixed = " (mixed encodings: valid UTF-8 text appears before it)" if saw_multibyte else ""
                return found, (
                    f"not valid UTF-8 (byte {bad_at}, line {line}){mixed}; decoded as {found}, "
                    "so some characters may be wrong"
                )
            saw_multibyte = saw_multibyte or max(chunk, default=0) >= 0x80
            newlines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252", "the file ends inside a UTF-8 character (truncated?); decoded as cp1252"
    return bom or "utf-8", ""


def _check_decodes(path: Path, encoding: str) -> None:
    """Decode the whole file (streaming) so that a broken UTF-16/32 file fails before any row is read."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_CHUNK_BYTES):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not valid {encoding} at byte {offset + exc.start}: {exc.reason}") from exc


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
    assert records.header is not None
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
