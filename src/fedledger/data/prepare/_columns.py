"""The parts of a recipe: how a feature column is prepared, how the label becomes the target, and a column's
agreed statistics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedledger.data.prepare._schema import (
    CATEGORICAL,
    COLUMN_KEYS,
    COMPARISONS,
    KINDS,
    KNOWN_STRATEGIES,
    LABEL_KEYS,
    NUMERIC,
    RULE_PATTERN,
    SCALES,
    STAT_NAMES,
    TRANSFORMS,
    UNKNOWN_POLICIES,
    Value,
    check_keys,
    config_number,
    config_strings,
    config_values,
    format_value,
    json_value,
)
from fedledger.data.tabular import parse_number
from fedledger.exceptions import ConfigError


@dataclass(frozen=True)
class ColumnSpec:
    """How one feature column is prepared.

    ``impute`` is ``None`` (a missing value is an error), ``"mean"``, ``"median"``, ``"most_frequent"`` or
    ``"constant"`` (with ``constant``, in the file's units: it is transformed like a value read). ``transform``
    (numeric only) maps every value after clipping, so statistics, imputation and scaling see transformed values.
    ``categories`` (categorical only) is the explicit, ordered one-hot list;
    ``unknown`` says whether a value outside it is an error or encodes as an all-zero row. ``missing`` adds
    column-specific missing markers to the recipe's; a marker that is a number also matches numerically equal
    values in a numeric column (``"0"`` matches ``0.0``).
    """

    name: str
    kind: str
    impute: str | None = None
    constant: Value | None = None
    scale: str = "none"
    clip: tuple[float, float] | None = None
    transform: str = "none"
    categories: tuple[Value, ...] = ()
    unknown: str = "error"
    missing: tuple[str, ...] = ()

    @property
    def impute_spec(self) -> str | None:
        if self.impute == "constant":
            if self.constant is None:
                raise ConfigError(f"columns.{self.name}.impute: 'constant' imputation needs a value")
            return f"constant:{format_value(self.constant)}"
        return self.impute

    @property
    def numeric_categories(self) -> bool:
        return bool(self.categories) and isinstance(self.categories[0], float)

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.kind == NUMERIC:
            return (self.name,)
        return tuple(f"{self.name}={format_value(c)}" for c in self.categories)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "impute": self.impute_spec or "none"}
        if self.kind == NUMERIC:
            d["scale"] = self.scale
            d["clip"] = [json_value(self.clip[0]), json_value(self.clip[1])] if self.clip else None
            if self.transform != "none":  # omitted when "none", so recipes written before transforms keep their hash
                d["transform"] = self.transform
        else:
            d["categories"] = [json_value(c) for c in self.categories]
            d["unknown"] = self.unknown
        d["missing"] = list(self.missing)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str, defaults: Mapping[str, Mapping[str, Any]]) -> ColumnSpec:
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: expected a column name, got {name!r}")
        where = f"{where.rsplit('[', 1)[0]}.{name}"
        check_keys(d, COLUMN_KEYS, where)
        kind = d.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        merged = {**defaults.get(kind, {}), **d}
        for key in ("categories", "unknown") if kind == NUMERIC else ("scale", "clip", "transform"):
            if key in d:
                raise ConfigError(f"{where}.{key}: not allowed for a {kind} column")
        missing = config_strings(merged.get("missing", []), f"{where}.missing")
        if kind == NUMERIC:
            return _numeric_spec(name, merged, where, missing)
        return _categorical_spec(name, d, merged, where, missing)


def _numeric_spec(name: str, merged: Mapping[str, Any], where: str, missing: tuple[str, ...]) -> ColumnSpec:
    """A numeric column's spec from its table merged over the recipe's numeric defaults."""
    scale = merged.get("scale", "none")
    if scale not in SCALES:
        raise ConfigError(f"{where}.scale: unknown scaling {scale!r}; known: {', '.join(SCALES)}")
    bounds = _clip_bounds(merged.get("clip"), where)
    transform = merged.get("transform", "none")
    if transform not in TRANSFORMS:
        raise ConfigError(f"{where}.transform: unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}")
    impute, constant = _impute(merged.get("impute"), f"{where}.impute", NUMERIC, ())
    if transform == "log1p":
        if bounds is not None and bounds[0] <= -1:
            raise ConfigError(
                f"{where}.clip: low {format_value(bounds[0])} lets values at or below -1 through, outside "
                "log1p's domain"
            )
        if isinstance(constant, float) and constant <= -1:
            raise ConfigError(f"{where}.impute: constant {format_value(constant)} is outside log1p's domain (> -1)")
    return ColumnSpec(name, NUMERIC, impute, constant, scale, bounds, transform, (), "error", missing)


def _clip_bounds(clip: Any, where: str) -> tuple[float, float] | None:
    if clip is None:
        return None
    if not isinstance(clip, list | tuple) or len(clip) != 2:
        raise ConfigError(f"{where}.clip: expected [low, high], got {clip!r}")
    bounds = (config_number(clip[0], f"{where}.clip[0]"), config_number(clip[1], f"{where}.clip[1]"))
    if not bounds[0] < bounds[1]:
        raise ConfigError(f"{where}.clip: low {clip[0]!r} must be below high {clip[1]!r}")
    return bounds


def _categorical_spec(
    name: str, d: Mapping[str, Any], merged: Mapping[str, Any], where: str, missing: tuple[str, ...]
) -> ColumnSpec:
    """A categorical column's spec; its categories come from the column's own table, never from defaults."""
    if "categories" not in d:
        raise ConfigError(
            f"{where}.categories: required for a categorical column (an explicit, ordered list, so every "
            "member encodes to the same columns)"
        )
    categories = config_values(d["categories"], f"{where}.categories")
    unknown = merged.get("unknown", "error")
    if unknown not in UNKNOWN_POLICIES:
        raise ConfigError(f"{where}.unknown: expected one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")
    impute, constant = _impute(merged.get("impute"), f"{where}.impute", CATEGORICAL, categories)
    return ColumnSpec(name, CATEGORICAL, impute, constant, "none", None, "none", categories, unknown, missing)


def _impute(spec: Any, where: str, kind: str, categories: tuple[Value, ...]) -> tuple[str | None, Value | None]:
    if spec is None or spec == "none":
        return None, None
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: expected a strategy name, got {spec!r}; known: {KNOWN_STRATEGIES}")
    if spec.startswith("constant:"):
        raw = spec[len("constant:") :].strip()
        if not raw:
            raise ConfigError(f"{where}: 'constant:' needs a value, e.g. 'constant:0'")
        if kind == NUMERIC:
            x = parse_number(raw)
            if x is None:
                raise ConfigError(f"{where}: constant {raw!r} is not a number")
            return "constant", x
        value: Value = raw
        if categories and isinstance(categories[0], float):
            x = parse_number(raw)
            if x is None:
                raise ConfigError(f"{where}: constant {raw!r} is not a number, and the categories are numbers")
            value = x
        if value not in categories:
            raise ConfigError(f"{where}: constant {raw!r} is not one of the categories")
        return "constant", value
    if spec not in ("mean", "median", "most_frequent"):
        raise ConfigError(f"{where}: unknown strategy {spec!r}; known: {KNOWN_STRATEGIES}")
    if kind == CATEGORICAL and spec != "most_frequent":
        raise ConfigError(
            f"{where}: {spec!r} needs a numeric column; a categorical column takes most_frequent or constant:<value>"
        )
    return spec, None


@dataclass(frozen=True)
class LabelRule:
    """How the label column becomes the target ``y`` (int64).

    Exactly one of: ``threshold`` (binary, e.g. ``("> ", 0.0)`` from ``positive = "> 0"``), ``positive`` and/or
    ``negative`` value lists (binary; with only one list every other value is the other class, with both a value in
    neither is an error), or ``classes`` (multi-class, ``y`` is the index in the list). Numbers in the lists match
    numerically (``"1.0"`` is ``1``); strings match exactly (after stripping spaces).
    """

    column: str
    threshold: tuple[str, float] | None = None
    positive: tuple[Value, ...] | None = None
    negative: tuple[Value, ...] | None = None
    classes: tuple[Value, ...] | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(format_value(c) for c in self.classes) if self.classes else ("negative", "positive")

    def describe(self) -> str:
        if self.threshold:
            return f"positive = '{self.threshold[0]} {format_value(self.threshold[1])}'"
        if self.classes:
            return f"classes ({', '.join(format_value(c) for c in self.classes)})"
        parts = []
        if self.positive:
            parts.append(f"positive ({', '.join(format_value(c) for c in self.positive)})")
        if self.negative:
            parts.append(f"negative ({', '.join(format_value(c) for c in self.negative)})")
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"column": self.column}
        if self.threshold:
            d["positive"] = f"{self.threshold[0]} {format_value(self.threshold[1])}"
        if self.positive:
            d["positive"] = [json_value(v) for v in self.positive]
        if self.negative:
            d["negative"] = [json_value(v) for v in self.negative]
        if self.classes:
            d["classes"] = [json_value(v) for v in self.classes]
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> LabelRule:
        d = check_keys(d, LABEL_KEYS, where)
        column = d.get("column")
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{where}.column: expected the label column's name, got {column!r}")
        given = [k for k in ("positive", "negative", "classes") if k in d]
        if not given or ("classes" in given and len(given) > 1):
            raise ConfigError(
                f"{where}: give 'positive' (a rule like '> 0' or a list), 'negative' (a list), both "
                "lists, or 'classes' (an ordered list)"
            )
        if "classes" in d:
            return cls(column, classes=config_values(d["classes"], f"{where}.classes"))
        positive = d.get("positive")
        if isinstance(positive, str):
            if "negative" in d:
                raise ConfigError(f"{where}.negative: not allowed with a positive rule ({positive!r})")
            m = RULE_PATTERN.match(positive)
            x = parse_number(m.group(2)) if m else None
            if m is None or x is None:
                raise ConfigError(
                    f"{where}.positive: expected a rule like '> 0' (operators {', '.join(COMPARISONS)} and a "
                    f"number) or a list of values, got {positive!r}"
                )
            return cls(column, threshold=(m.group(1), x))
        pos = config_values(positive, f"{where}.positive") if "positive" in d else None
        neg = config_values(d["negative"], f"{where}.negative") if "negative" in d else None
        if pos and neg:
            if type(pos[0]) is not type(neg[0]):
                raise ConfigError(f"{where}: positive and negative mix numbers and strings")
            if both := set(pos) & set(neg):
                raise ConfigError(f"{where}: {format_value(sorted(both, key=str)[0])!r} is both positive and negative")
        return cls(column, positive=pos, negative=neg)


@dataclass(frozen=True)
class ColumnStats:
    """Agreed statistics of one feature column (numbers for numeric columns; ``most_frequent`` a category for
    categorical ones). ``std`` is the population standard deviation (ddof 0)."""

    mean: float | None = None
    std: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None
    most_frequent: Value | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in STAT_NAMES:
            v = getattr(self, key)
            if v is not None:
                out[key] = json_value(v)
        return out
