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

from fedledger.data.tabular._encoding import decode_bytes
from fedledger.data.tabular._files import (
    CSV_SUFFIXES,
    DEFAULT_BATCH_ROWS,
    PARQUET_SUFFIXES,
    TableSource,
    cell_location,
    detect_source,
    iter_batches,
    read_table,
    table_columns,
    write_table,
)
from fedledger.data.tabular._records import CsvRecords, check_widths, parse_number, read_records, require_columns

__all__ = [
    "CSV_SUFFIXES",
    "DEFAULT_BATCH_ROWS",
    "PARQUET_SUFFIXES",
    "CsvRecords",
    "TableSource",
    "cell_location",
    "check_widths",
    "decode_bytes",
    "detect_source",
    "iter_batches",
    "parse_number",
    "read_records",
    "read_table",
    "require_columns",
    "table_columns",
    "write_table",
]
