"""Repairing single values: numbers with thousands separators or a decimal comma, boolean words, and the
shape of a value that a report may show instead of the value."""

from __future__ import annotations

import re
from collections.abc import Sequence

from fedledger.data.tabular import parse_number

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "off"})
# A number with digit groups: one separator used throughout, then an optional decimal part. Which of "," and "."
# is the decimal mark is decided per column (see column_decimal_mark).
_GROUPED = re.compile(r"^([+-]?)(\d{1,3})(([,. '\u00a0\u202f\u2019])\d{3}(?:\4\d{3})*)(?:([.,])(\d+))?$")
_DECIMAL_COMMA = re.compile(r"^([+-]?)(\d*),(\d+)$")
_DOT_DECIMAL = re.compile(r"^[+-]?\d*\.(\d+)$")


def value_shape(s: str) -> str:
    """A value with its digits as 9 and its letters as a: enough to show a repair, never the value."""
    return "".join("9" if ch.isdigit() else "a" if ch.isalpha() else ch for ch in s)


def column_decimal_mark(values: Sequence[str], delimiter: str) -> str:
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


def repair_number(s: str, mark: str) -> tuple[str, float, str | None] | None:
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


def boolean_value(s: str) -> str | None:
    low = s.casefold()
    if low in TRUE_WORDS:
        return "1"
    if low in FALSE_WORDS:
        return "0"
    return None
