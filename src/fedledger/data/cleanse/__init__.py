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

The package follows the run: :mod:`._rules` (the ``[cleanse]`` table), :mod:`._reading` (the raw CSV),
:mod:`._values` (repairing one value), :mod:`._columns` (cleansing one column) and :mod:`._table` (every column,
duplicate rows and the report).
"""

from __future__ import annotations

from fedledger.data.cleanse._rules import CLEANSE_REPORT_FORMAT, DEFAULT_MISSING, CleanseColumn, CleanseRules
from fedledger.data.cleanse._table import CleanseResult, cleanse

__all__ = [
    "CLEANSE_REPORT_FORMAT",
    "DEFAULT_MISSING",
    "CleanseColumn",
    "CleanseResult",
    "CleanseRules",
    "cleanse",
]
