"""The recipe's vocabulary (column kinds, scalings, transforms, statistics) and the checks every part of a
recipe runs on the values it is given."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fedledger.exceptions import ConfigError

RECIPE_VERSION = 1
NUMERIC = "numeric"
CATEGORICAL = "categorical"
KINDS = (NUMERIC, CATEGORICAL)
SCALES = ("standard", "minmax", "none")
# Per-value transforms of a numeric column, applied after clipping and before statistics, imputation and scaling.
# log1p turns heavy-tailed counts (NSL-KDD's byte counts reach 1.4e9) into a range whose sums of squares fit the
# consortium's fixed-point secure sum and whose standard scaling is not dominated by a handful of rows.
TRANSFORMS = ("none", "log1p")
UNKNOWN_POLICIES = ("error", "ignore")
STATISTICS = ("consortium", "given", "local")
KNOWN_STRATEGIES = "mean, median, most_frequent, constant:<value>"
STAT_NAMES = ("mean", "std", "median", "min", "max", "most_frequent")
# Statistics a secure sum of stats vectors yields; the others must be given in the recipe under "consortium".
SUMMABLE_STATS = frozenset({"mean", "std", "most_frequent@categorical"})
# Each member's fixed-point entry must stay below 2**62, leaving headroom for the consortium's sum below 2**63.
FIXED_LIMIT = 2**62

Value = str | float  # a category or label value: a string, or a number (ints are stored as floats)

TOP_KEYS = (
    "version",
    "header",
    "columns",
    "delimiter",
    "missing",
    "skip_columns",
    "label",
    "defaults",
    "statistics",
    "stats",
    "select",
    "drop",
    "cleanse",
)
NUMERIC_KEYS = ("impute", "scale", "clip", "transform", "missing")
CATEGORICAL_KEYS = ("impute", "unknown", "missing")
COLUMN_KEYS = ("name", "kind", "impute", "scale", "clip", "transform", "categories", "unknown", "missing")
LABEL_KEYS = ("column", "positive", "negative", "classes")
RULE_PATTERN = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


# --------------------------------------------------------------------------------------------------- small helpers


def format_value(v: Value) -> str:
    """A value as it appears in feature names and messages: integral numbers without ``.0``."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    return v


def json_value(v: Value) -> str | int | float:
    """A value in canonical JSON: integral numbers as JSON integers, so TOML ``3`` and ``3.0`` hash the same."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def config_number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}: expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ConfigError(f"{where}: expected a finite number, got {v!r}")
    return x


def config_value(v: Any, where: str) -> Value:
    if isinstance(v, str):
        s = v.strip()
        if not s:
            raise ConfigError(f"{where}: empty value")
        return s
    return config_number(v, where)


def config_values(v: Any, where: str) -> tuple[Value, ...]:
    """A non-empty list of distinct values, all strings or all numbers."""
    if not isinstance(v, list | tuple) or not v:
        raise ConfigError(f"{where}: expected a non-empty list of values, got {v!r}")
    out = tuple(config_value(x, f"{where}[{i}]") for i, x in enumerate(v))
    if len({type(x) for x in out}) > 1:
        raise ConfigError(f"{where}: mixes numbers and strings; use all numbers (matched by value) or all strings")
    seen: set[Value] = set()
    for x in out:
        if x in seen:
            raise ConfigError(f"{where}: {format_value(x)!r} is listed twice")
        seen.add(x)
    return out


def config_strings(v: Any, where: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: expected a list of strings, got {v!r}")
    if not allow_empty and not v:
        raise ConfigError(f"{where}: must not be empty")
    return tuple(v)


def check_keys(d: Any, known: Sequence[str], where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(d).__name__}")
    for key in d:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key; known: {', '.join(known)}")
    return d
