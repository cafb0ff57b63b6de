"""The cleansing rules: the recipe's ``[cleanse]`` table, parsed and validated, and its canonical form."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.exceptions import ConfigError

CLEANSE_REPORT_FORMAT = "fedledger-cleanse-report/1"
# Markers spreadsheets and statistics packages write for "no value" (pandas' defaults, minus words that are
# plausible categories such as "None"); compared case-insensitively after stripping.
DEFAULT_MISSING: tuple[str, ...] = ("", "?", "NA", "N/A", "NaN", "null", "#N/A")
DUPLICATES = ("drop", "keep")
DECIMALS = ("auto", ".", ",")
INVALID = ("missing", "error")
TYPES = ("numeric", "boolean", "text")
# A column without a declared type is numeric when this share of its non-missing values are numbers.
NUMERIC_SHARE = 0.95
MAX_EXAMPLES = 3
MAX_DUPLICATE_EXAMPLES = 5

_RULE_KEYS = ("duplicates", "missing", "decimal", "invalid", "columns")
_COLUMN_KEYS = ("type", "range", "missing")


def _fail(where: str, what: str) -> ConfigError:
    return ConfigError(f"{where}: {what}")


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        raise _fail(where, f"expected a finite number, got {v!r}")
    return float(v)


def _markers(v: Any, where: str) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise _fail(where, f"expected a list of strings, got {v!r}")
    return tuple(x.strip() for x in v)


def json_number(x: float) -> int | float:
    return int(x) if x.is_integer() and abs(x) < 2**53 else x


@dataclass(frozen=True)
class CleanseColumn:
    """Rules for one column: ``type`` (numeric, boolean or text; for a recipe feature its ``kind`` decides),
    ``range`` (``[low, high]``, inclusive, numeric only: values outside are out of range) and extra ``missing``
    markers."""

    name: str
    type: str | None = None
    range: tuple[float, float] | None = None
    missing: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.type is not None:
            d["type"] = self.type
        if self.range is not None:
            d["range"] = [json_number(self.range[0]), json_number(self.range[1])]
        if self.missing:
            d["missing"] = list(self.missing)
        return d


@dataclass(frozen=True)
class CleanseRules:
    """The ``[cleanse]`` table of a recipe. Every field has a default, so a recipe without the table cleanses
    with these defaults (and keeps its hash)."""

    duplicates: str = "drop"
    missing: tuple[str, ...] = DEFAULT_MISSING
    decimal: str = "auto"
    invalid: str = "missing"
    columns: tuple[CleanseColumn, ...] = ()

    @property
    def column_map(self) -> dict[str, CleanseColumn]:
        return {c.name: c for c in self.columns}

    def to_dict(self) -> dict[str, Any]:
        """The canonical form (every default written out), part of the recipe's canonical JSON."""
        return {
            "duplicates": self.duplicates,
            "missing": list(self.missing),
            "decimal": self.decimal,
            "invalid": self.invalid,
            "columns": {c.name: c.to_dict() for c in sorted(self.columns, key=lambda c: c.name)},
        }

    @classmethod
    def from_dict(
        cls,
        d: Any,
        *,
        where: str = "cleanse",
        kinds: Mapping[str, str] | None = None,
        names: Sequence[str] | None = None,
    ) -> CleanseRules:
        """Parse and validate; every ``ConfigError`` names the field. ``kinds`` maps the recipe's feature columns
        to their kind (they take no ``type``, and only numeric ones a ``range``); ``names``, when given, are the
        only columns the rules may name (a recipe without a header lists every column of the file)."""
        if not isinstance(d, Mapping):
            raise _fail(where, f"expected a table, got {type(d).__name__}")
        for key in d:
            if key not in _RULE_KEYS:
                raise _fail(f"{where}.{key}", f"unknown key; known: {', '.join(_RULE_KEYS)}")
        kinds = kinds or {}
        duplicates = d.get("duplicates", "drop")
        if duplicates not in DUPLICATES:
            raise _fail(f"{where}.duplicates", f"expected one of {', '.join(DUPLICATES)}, got {duplicates!r}")
        decimal = d.get("decimal", "auto")
        if decimal not in DECIMALS:
            raise _fail(f"{where}.decimal", f"expected one of {', '.join(map(repr, DECIMALS))}, got {decimal!r}")
        invalid = d.get("invalid", "missing")
        if invalid not in INVALID:
            raise _fail(f"{where}.invalid", f"expected one of {', '.join(INVALID)}, got {invalid!r}")
        missing = _markers(d.get("missing", list(DEFAULT_MISSING)), f"{where}.missing")
        raw_columns = d.get("columns", {})
        if not isinstance(raw_columns, Mapping):
            raise _fail(f"{where}.columns", "expected a table of column tables, e.g. [cleanse.columns.age]")
        columns = []
        for name, raw in raw_columns.items():
            here = f"{where}.columns.{name}"
            if names is not None and name not in names:
                raise _fail(here, f"not a column of the recipe (it lists {', '.join(names)})")
            if not isinstance(raw, Mapping):
                raise _fail(here, f"expected a table, got {type(raw).__name__}")
            for key in raw:
                if key not in _COLUMN_KEYS:
                    raise _fail(f"{here}.{key}", f"unknown key; known: {', '.join(_COLUMN_KEYS)}")
            kind = kinds.get(name)
            ctype = raw.get("type")
            if ctype is not None:
                if kind is not None:
                    raise _fail(f"{here}.type", f"not allowed for a feature column: the recipe's kind ({kind}) decides")
                if ctype not in TYPES:
                    raise _fail(f"{here}.type", f"expected one of {', '.join(TYPES)}, got {ctype!r}")
            bounds = None
            if "range" in raw:
                rng = raw["range"]
                if not isinstance(rng, list | tuple) or len(rng) != 2:
                    raise _fail(f"{here}.range", f"expected [low, high], got {rng!r}")
                bounds = (_number(rng[0], f"{here}.range[0]"), _number(rng[1], f"{here}.range[1]"))
                if bounds[0] > bounds[1]:
                    raise _fail(f"{here}.range", f"low {rng[0]!r} is above high {rng[1]!r}")
                if kind == "categorical" or ctype in ("boolean", "text"):
                    raise _fail(f"{here}.range", f"needs a numeric column, and {name!r} is {kind or ctype}")
                if kind is None and ctype is None:
                    ctype = "numeric"  # a range says what the column holds
            columns.append(CleanseColumn(name, ctype, bounds, _markers(raw.get("missing", []), f"{here}.missing")))
        return cls(duplicates, missing, decimal, invalid, tuple(columns))
