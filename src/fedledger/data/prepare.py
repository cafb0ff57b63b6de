"""Preparation recipes: turn an organization's raw CSV into training data, identically at every member.

A :class:`Recipe` is a typed, validated description of how to read a raw table (column names, delimiter, missing
markers, skipped columns), how the label becomes the target (a binary rule or an ordered class list) and how each
feature column is prepared (numeric: clipping, a log1p transform, imputation, standard / min-max scaling;
categorical: imputation and one-hot encoding over an explicit, ordered category list). Its canonical JSON is hashed
into the task configuration, so every member that prepares with the same hash produces the same feature columns.

The statistics that imputation and scaling need (means, standard deviations, most frequent categories) are agreed
without pooling: every member computes :meth:`Recipe.local_stats` (count, sum and sum of squares per numeric column,
per-category counts per categorical column, a flat vector with the layout of :func:`stats_layout`), the consortium
adds the members' vectors with secure aggregation, and :meth:`Recipe.with_stats` turns the sum into the recipe's
``stats``. Sums cannot give a median, a mode of a numeric column, a minimum or a maximum: those must be written in
the recipe (``stats`` or ``clip``) when ``statistics = "consortium"``.

Reading never guesses silently and never half-reads: the encoding is detected (byte-order marks, strict UTF-8, then
``charset-normalizer``), every line ending is accepted, and every problem is a :class:`~fedledger.exceptions.BadInput`
naming the file, the line and the column, raised before a single row is returned. The recipe format is documented
in ``docs/preparation.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedledger.data.cleanse import CleanseRules
from fedledger.data.tabular import check_widths, decode_bytes, parse_number, read_records, require_columns
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ColumnSpec",
    "ColumnStats",
    "LabelRule",
    "PreparationReport",
    "PreparedData",
    "Recipe",
    "decode_bytes",
    "prepare",
    "stats_from_sum",
    "stats_layout",
    "stats_vector",
]

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
_FIXED_LIMIT = 2**62

Value = str | float  # a category or label value: a string, or a number (ints are stored as floats)

_TOP_KEYS = (
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
_NUMERIC_KEYS = ("impute", "scale", "clip", "transform", "missing")
_CATEGORICAL_KEYS = ("impute", "unknown", "missing")
_COLUMN_KEYS = ("name", "kind", "impute", "scale", "clip", "transform", "categories", "unknown", "missing")
_LABEL_KEYS = ("column", "positive", "negative", "classes")
_RULE = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*(\S+)\s*$")
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">": np.greater,
    ">=": np.greater_equal,
    "<": np.less,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}


# --------------------------------------------------------------------------------------------------- small helpers


def _fmt(v: Value) -> str:
    """A value as it appears in feature names and messages: integral numbers without ``.0``."""
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    return v


def _out(v: Value) -> str | int | float:
    """A value in canonical JSON: integral numbers as JSON integers, so TOML ``3`` and ``3.0`` hash the same."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    return v


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise ConfigError(f"{where}: expected a number, got {v!r}")
    x = float(v)
    if not math.isfinite(x):
        raise ConfigError(f"{where}: expected a finite number, got {v!r}")
    return x


def _value(v: Any, where: str) -> Value:
    if isinstance(v, str):
        s = v.strip()
        if not s:
            raise ConfigError(f"{where}: empty value")
        return s
    return _number(v, where)


def _values(v: Any, where: str) -> tuple[Value, ...]:
    """A non-empty list of distinct values, all strings or all numbers."""
    if not isinstance(v, list | tuple) or not v:
        raise ConfigError(f"{where}: expected a non-empty list of values, got {v!r}")
    out = tuple(_value(x, f"{where}[{i}]") for i, x in enumerate(v))
    if len({type(x) for x in out}) > 1:
        raise ConfigError(f"{where}: mixes numbers and strings; use all numbers (matched by value) or all strings")
    seen: set[Value] = set()
    for x in out:
        if x in seen:
            raise ConfigError(f"{where}: {_fmt(x)!r} is listed twice")
        seen.add(x)
    return out


def _strings(v: Any, where: str, *, allow_empty: bool = True) -> tuple[str, ...]:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: expected a list of strings, got {v!r}")
    if not allow_empty and not v:
        raise ConfigError(f"{where}: must not be empty")
    return tuple(v)


def _check_keys(d: Any, known: Sequence[str], where: str) -> Mapping[str, Any]:
    if not isinstance(d, Mapping):
        raise ConfigError(f"{where}: expected a table, got {type(d).__name__}")
    for key in d:
        if key not in known:
            raise ConfigError(f"{where}.{key}: unknown key; known: {', '.join(known)}")
    return d


# --------------------------------------------------------------------------------------------------- the recipe


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
            assert self.constant is not None
            return f"constant:{_fmt(self.constant)}"
        return self.impute

    @property
    def numeric_categories(self) -> bool:
        return bool(self.categories) and isinstance(self.categories[0], float)

    @property
    def feature_names(self) -> tuple[str, ...]:
        if self.kind == NUMERIC:
            return (self.name,)
        return tuple(f"{self.name}={_fmt(c)}" for c in self.categories)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind, "impute": self.impute_spec or "none"}
        if self.kind == NUMERIC:
            d["scale"] = self.scale
            d["clip"] = [_out(self.clip[0]), _out(self.clip[1])] if self.clip else None
            if self.transform != "none":  # omitted when "none", so recipes written before transforms keep their hash
                d["transform"] = self.transform
        else:
            d["categories"] = [_out(c) for c in self.categories]
            d["unknown"] = self.unknown
        d["missing"] = list(self.missing)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str, defaults: Mapping[str, Mapping[str, Any]]) -> ColumnSpec:
        name = d.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}.name: expected a column name, got {name!r}")
        where = f"{where.rsplit('[', 1)[0]}.{name}"
        _check_keys(d, _COLUMN_KEYS, where)
        kind = d.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        merged = {**defaults.get(kind, {}), **d}
        for key in ("categories", "unknown") if kind == NUMERIC else ("scale", "clip", "transform"):
            if key in d:
                raise ConfigError(f"{where}.{key}: not allowed for a {kind} column")
        missing = _strings(merged.get("missing", []), f"{where}.missing")
        if kind == NUMERIC:
            scale = merged.get("scale", "none")
            if scale not in SCALES:
                raise ConfigError(f"{where}.scale: unknown scaling {scale!r}; known: {', '.join(SCALES)}")
            clip = merged.get("clip")
            bounds: tuple[float, float] | None = None
            if clip is not None:
                if not isinstance(clip, list | tuple) or len(clip) != 2:
                    raise ConfigError(f"{where}.clip: expected [low, high], got {clip!r}")
                bounds = (_number(clip[0], f"{where}.clip[0]"), _number(clip[1], f"{where}.clip[1]"))
                if not bounds[0] < bounds[1]:
                    raise ConfigError(f"{where}.clip: low {clip[0]!r} must be below high {clip[1]!r}")
            transform = merged.get("transform", "none")
            if transform not in TRANSFORMS:
                raise ConfigError(f"{where}.transform: unknown transform {transform!r}; known: {', '.join(TRANSFORMS)}")
            impute, constant = _impute(merged.get("impute"), f"{where}.impute", kind, ())
            if transform == "log1p":
                if bounds is not None and bounds[0] <= -1:
                    raise ConfigError(
                        f"{where}.clip: low {_fmt(bounds[0])} lets values at or below -1 through, outside log1p's "
                        "domain"
                    )
                if isinstance(constant, float) and constant <= -1:
                    raise ConfigError(f"{where}.impute: constant {_fmt(constant)} is outside log1p's domain (> -1)")
            return cls(name, kind, impute, constant, scale, bounds, transform, (), "error", missing)
        if "categories" not in d:
            raise ConfigError(
                f"{where}.categories: required for a categorical column (an explicit, ordered list, so every "
                "member encodes to the same columns)"
            )
        categories = _values(d["categories"], f"{where}.categories")
        unknown = merged.get("unknown", "error")
        if unknown not in UNKNOWN_POLICIES:
            raise ConfigError(f"{where}.unknown: expected one of {', '.join(UNKNOWN_POLICIES)}, got {unknown!r}")
        impute, constant = _impute(merged.get("impute"), f"{where}.impute", kind, categories)
        return cls(name, kind, impute, constant, "none", None, "none", categories, unknown, missing)


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
        return tuple(_fmt(c) for c in self.classes) if self.classes else ("negative", "positive")

    def describe(self) -> str:
        if self.threshold:
            return f"positive = '{self.threshold[0]} {_fmt(self.threshold[1])}'"
        if self.classes:
            return f"classes ({', '.join(_fmt(c) for c in self.classes)})"
        parts = []
        if self.positive:
            parts.append(f"positive ({', '.join(_fmt(c) for c in self.positive)})")
        if self.negative:
            parts.append(f"negative ({', '.join(_fmt(c) for c in self.negative)})")
        return " and ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"column": self.column}
        if self.threshold:
            d["positive"] = f"{self.threshold[0]} {_fmt(self.threshold[1])}"
        if self.positive:
            d["positive"] = [_out(v) for v in self.positive]
        if self.negative:
            d["negative"] = [_out(v) for v in self.negative]
        if self.classes:
            d["classes"] = [_out(v) for v in self.classes]
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> LabelRule:
        d = _check_keys(d, _LABEL_KEYS, where)
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
            return cls(column, classes=_values(d["classes"], f"{where}.classes"))
        positive = d.get("positive")
        if isinstance(positive, str):
            if "negative" in d:
                raise ConfigError(f"{where}.negative: not allowed with a positive rule ({positive!r})")
            m = _RULE.match(positive)
            x = parse_number(m.group(2)) if m else None
            if m is None or x is None:
                raise ConfigError(
                    f"{where}.positive: expected a rule like '> 0' (operators {', '.join(_OPS)} and a "
                    f"number) or a list of values, got {positive!r}"
                )
            return cls(column, threshold=(m.group(1), x))
        pos = _values(positive, f"{where}.positive") if "positive" in d else None
        neg = _values(d["negative"], f"{where}.negative") if "negative" in d else None
        if pos and neg:
            if type(pos[0]) is not type(neg[0]):
                raise ConfigError(f"{where}: positive and negative mix numbers and strings")
            if both := set(pos) & set(neg):
                raise ConfigError(f"{where}: {_fmt(sorted(both, key=str)[0])!r} is both positive and negative")
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
                out[key] = _out(v)
        return out


@dataclass(frozen=True)
class Recipe:
    """A validated preparation recipe. Build it with :meth:`from_dict` (or :meth:`load`), never by hand."""

    columns: tuple[str, ...]
    features: tuple[ColumnSpec, ...]
    label: LabelRule
    header: bool = False
    delimiter: str = ","
    missing: tuple[str, ...] = ("",)
    skip_columns: tuple[str, ...] = ()
    statistics: str = "consortium"
    stats: tuple[tuple[str, ColumnStats], ...] = ()
    version: int = RECIPE_VERSION
    cleanse: CleanseRules | None = None  # the [cleanse] table, for `fedledger data cleanse`; None: defaults

    # ------------------------------------------------------------------ parsing

    @classmethod
    def from_dict(cls, d: Any, *, where: str = "preparation") -> Recipe:
        """Parse and validate a recipe; every ``ConfigError`` names the field (``preparation.columns.thal...``)."""
        d = _check_keys(d, _TOP_KEYS, where)
        version = d.get("version", RECIPE_VERSION)
        if version != RECIPE_VERSION:
            raise ConfigError(
                f"{where}.version: unsupported recipe version {version!r}; this fedledger reads {RECIPE_VERSION}"
            )
        header = d.get("header", False)
        if not isinstance(header, bool):
            raise ConfigError(f"{where}.header: expected true or false, got {header!r}")
        delimiter = d.get("delimiter", ",")
        if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
            raise ConfigError(f"{where}.delimiter: expected one character, got {delimiter!r}")
        missing = _strings(d.get("missing", [""]), f"{where}.missing")
        statistics = d.get("statistics", "consortium")
        if statistics not in STATISTICS:
            raise ConfigError(f"{where}.statistics: expected one of {', '.join(STATISTICS)}, got {statistics!r}")
        defaults_raw = _check_keys(d.get("defaults", {}), KINDS, f"{where}.defaults")
        defaults: dict[str, Mapping[str, Any]] = {}
        for kind, keys in ((NUMERIC, _NUMERIC_KEYS), (CATEGORICAL, _CATEGORICAL_KEYS)):
            defaults[kind] = _check_keys(defaults_raw.get(kind, {}), keys, f"{where}.defaults.{kind}")

        raw_columns = d.get("columns")
        if not isinstance(raw_columns, list | tuple) or not raw_columns:
            raise ConfigError(
                f"{where}.columns: required, a list of column names (strings) and feature tables "
                "({name = ..., kind = ...}) in the file's order"
            )
        names: list[str] = []
        features: list[ColumnSpec] = []
        for i, entry in enumerate(raw_columns):
            if isinstance(entry, str):
                if not entry.strip():
                    raise ConfigError(f"{where}.columns[{i}]: empty column name")
                names.append(entry.strip())
                continue
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where}.columns[{i}]: expected a name or a table, got {entry!r}")
            spec = ColumnSpec.from_dict(entry, f"{where}.columns[{i}]", defaults)
            names.append(spec.name)
            features.append(spec)
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"{where}.columns.{dup[0]}: listed twice")
        if not features:
            raise ConfigError(f"{where}.columns: no feature column (give at least one {{name = ..., kind = ...}})")
        kinds = {f.name: f.kind for f in features}
        dropped = _selection(d, where, [f.name for f in features])
        features = [f for f in features if f.name not in dropped]
        feature_names = {f.name for f in features}

        label = LabelRule.from_dict(d.get("label"), f"{where}.label")
        if label.column in feature_names:
            raise ConfigError(f"{where}.label.column: {label.column!r} is also a feature column")
        if not header and label.column not in names:
            raise ConfigError(f"{where}.label.column: {label.column!r} is not in {where}.columns")
        skip = _strings(d.get("skip_columns", []), f"{where}.skip_columns")
        # A dropped feature is read past like a skipped column, so equivalent recipes have one canonical form.
        skip += tuple(n for n in dropped if n not in skip)
        for s in skip:
            if s not in names and not header:
                raise ConfigError(f"{where}.skip_columns: {s!r} is not in {where}.columns")
            if s in feature_names or s == label.column:
                raise ConfigError(f"{where}.skip_columns: {s!r} is a feature or the label; it cannot be skipped")
        for n in names:
            if n not in feature_names and n != label.column and n not in skip:
                raise ConfigError(
                    f"{where}.columns.{n}: neither a feature (a table with a kind) nor the label; "
                    f"list it in {where}.skip_columns to read past it"
                )

        stats = _parse_stats(d.get("stats", {}), f"{where}.stats", {f.name: f for f in features})
        cleanse = (
            CleanseRules.from_dict(
                d["cleanse"], where=f"{where}.cleanse", kinds=kinds, names=None if header else tuple(names)
            )
            if "cleanse" in d
            else None
        )
        recipe = cls(
            tuple(names),
            tuple(features),
            label,
            header,
            delimiter,
            missing,
            skip,
            statistics,
            tuple(sorted(stats.items())),
            version,
            cleanse,
        )
        recipe._validate_stats(where)
        return recipe

    @classmethod
    def load(cls, path: str | Path) -> Recipe:
        """Read a recipe from a TOML or JSON file: the whole file, or its ``preparation`` table when it has one."""
        from fedledger.store.safejson import loads_shallow

        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
            if p.suffix.lower() == ".json":
                doc = loads_shallow(text, what="the recipe")
            else:
                import tomllib

                doc = tomllib.loads(text)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{p}: cannot read the recipe: {exc}") from exc
        except RecursionError:  # tomllib recurses once per nested array or inline table
            raise ConfigError(f"{p}: cannot read the recipe: nested too deeply") from None
        if isinstance(doc, Mapping) and isinstance(doc.get("preparation"), Mapping):
            doc = doc["preparation"]
        return cls.from_dict(doc)

    def _validate_stats(self, where: str) -> None:
        """Under "consortium", refuse statistics that sums cannot give unless the recipe gives them; under
        "given", require every statistic now."""
        if self.statistics == "local":
            return
        stats = self.stats_map
        for f in self.features:
            have = stats.get(f.name, ColumnStats())
            for stat in self._needed(f):
                if getattr(have, stat) is not None:
                    continue
                if self.statistics == "given":
                    raise ConfigError(
                        f'{where}.stats.{f.name}.{stat}: required with statistics = "given" ({self._why(f, stat)})'
                    )
                if not _summable(f, stat):
                    field_ = "impute" if stat in ("median", "most_frequent") else "scale"
                    raise ConfigError(
                        f"{where}.columns.{f.name}.{field_}: {self._why(f, stat)} needs the {stat}, which cannot be "
                        'computed from summed statistics (statistics = "consortium"); use mean, most_frequent '
                        f"(categorical) or constant:<value> imputation, clip bounds for minmax, or give "
                        f"{where}.stats.{f.name}.{stat}"
                    )

    @staticmethod
    def _needed(f: ColumnSpec) -> tuple[str, ...]:
        need: list[str] = []
        if f.impute in ("mean", "median", "most_frequent"):
            need.append(f.impute)
        if f.scale == "standard":
            need += ["mean", "std"]
        if f.scale == "minmax" and f.clip is None:
            need += ["min", "max"]
        return tuple(dict.fromkeys(need))

    @staticmethod
    def _why(f: ColumnSpec, stat: str) -> str:
        if stat in ("min", "max"):
            return "minmax scaling without clip bounds"
        if stat == "std" or (stat == "mean" and f.impute != "mean"):
            return "standard scaling"
        return f"{stat} imputation"

    # ------------------------------------------------------------------ canonical form

    @property
    def stats_map(self) -> dict[str, ColumnStats]:
        return dict(self.stats)

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The columns of ``X``, after one-hot encoding (``cp=1``, ``cp=2``, ...)."""
        return tuple(n for f in self.features for n in f.feature_names)

    def to_dict(self) -> dict[str, Any]:
        """The canonical form: every default written out, so equivalent recipes have the same hash."""
        by_name = {f.name: f for f in self.features}
        return {
            "version": self.version,
            "header": self.header,
            "delimiter": self.delimiter,
            "missing": list(self.missing),
            "columns": [by_name[n].to_dict() if n in by_name else n for n in self.columns],
            "skip_columns": list(self.skip_columns),
            "label": self.label.to_dict(),
            "statistics": self.statistics,
            "stats": {name: s.to_dict() for name, s in self.stats},
            # Only when given, so recipes written before cleansing rules existed keep their hash.
            **({"cleanse": self.cleanse.to_dict()} if self.cleanse is not None else {}),
        }

    def canonical_json(self) -> bytes:
        return json.dumps(
            self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        ).encode()

    def hash(self) -> str:
        """sha256 hex of the canonical JSON: what the task configuration commits to."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def missing_stats(self) -> tuple[tuple[str, str], ...]:
        """(column, statistic) pairs that preparation needs and the recipe does not give yet."""
        stats = self.stats_map
        return tuple(
            (f.name, s)
            for f in self.features
            for s in self._needed(f)
            if getattr(stats.get(f.name, ColumnStats()), s) is None
        )

    # ------------------------------------------------------------------ statistics

    def local_stats(
        self, table: str | Path | pd.DataFrame, *, frac_bits: int | None = None, encoding: str | None = None
    ) -> npt.NDArray[Any]:
        """This member's sufficient statistics, a flat vector in :func:`stats_layout` order (see
        :func:`stats_vector`)."""
        return stats_vector(self, table, frac_bits=frac_bits, encoding=encoding)

    def with_stats(self, summed: npt.ArrayLike, *, frac_bits: int | None = None) -> Recipe:
        """The recipe with the statistics that the SUM of the members' vectors gives (mean and std of numeric
        columns, most frequent category of categorical ones, where preparation needs them). Statistics the
        recipe gives already (min, max, median) are kept."""
        if self.statistics != "consortium":
            raise ConfigError(f'preparation.statistics: with_stats needs "consortium", not {self.statistics!r}')
        derived = stats_from_sum(self, summed, frac_bits=frac_bits)
        stats = self.stats_map
        for f in self.features:
            need = self._needed(f)
            got = derived[f.name]
            updates: dict[str, Any] = {}
            for stat in need:
                if not _summable(f, stat):
                    continue
                value = getattr(got, stat)
                if value is None:
                    raise ConfigError(
                        f"preparation.stats.{f.name}.{stat}: no member has a value in column "
                        f"{f.name!r}, so the summed statistics cannot give it"
                    )
                updates[stat] = value
            if updates:
                stats[f.name] = replace(stats.get(f.name, ColumnStats()), **updates)
        return replace(self, stats=tuple(sorted(stats.items())))


def _selection(d: Mapping[str, Any], where: str, features: Sequence[str]) -> tuple[str, ...]:
    """The feature columns that ``select`` (keep only these) or ``drop`` (leave these out) remove from ``X``."""
    if "select" in d and "drop" in d:
        raise ConfigError(f"{where}.select: give select or drop, not both")
    for key in ("select", "drop"):
        if key not in d:
            continue
        named = _strings(d[key], f"{where}.{key}", allow_empty=key == "drop")
        for n in named:
            if n not in features:
                raise ConfigError(f"{where}.{key}: {n!r} is not a feature column (features: {', '.join(features)})")
            if named.count(n) > 1:
                raise ConfigError(f"{where}.{key}: {n!r} is listed twice")
        dropped = tuple(f for f in features if (f not in named) == (key == "select"))
        if len(dropped) == len(features):
            raise ConfigError(f"{where}.{key}: leaves no feature column")
        return dropped
    return ()


def _summable(f: ColumnSpec, stat: str) -> bool:
    return stat in SUMMABLE_STATS or f"{stat}@{f.kind}" in SUMMABLE_STATS


def _parse_stats(d: Any, where: str, features: Mapping[str, ColumnSpec]) -> dict[str, ColumnStats]:
    d = _check_keys(d, tuple(features), where)
    out: dict[str, ColumnStats] = {}
    for name, raw in d.items():
        f = features[name]
        here = f"{where}.{name}"
        if f.kind == CATEGORICAL:
            table = _check_keys(raw, ("most_frequent",), here)
            mode = table.get("most_frequent")
            if mode is None:
                continue
            value = _value(mode, f"{here}.most_frequent")
            if f.numeric_categories and isinstance(value, str):
                parsed = parse_number(value)
                value = parsed if parsed is not None else value
            if value not in f.categories:
                raise ConfigError(f"{here}.most_frequent: {mode!r} is not one of the categories")
            out[name] = ColumnStats(most_frequent=value)
            continue
        table = _check_keys(raw, STAT_NAMES, here)
        nums = {k: _number(v, f"{here}.{k}") for k, v in table.items()}
        if nums.get("std", 0.0) < 0:
            raise ConfigError(f"{here}.std: must not be negative")
        if "min" in nums and "max" in nums and not nums["min"] < nums["max"]:
            raise ConfigError(f"{here}: min {nums['min']} must be below max {nums['max']}")
        out[name] = ColumnStats(**nums)
    return out


# --------------------------------------------------------------------------------------------------- reading


@dataclass
class _Table:
    name: str
    unit: str  # "line" for files, "row" for data frames
    lines: npt.NDArray[np.int64]
    cols: Mapping[str, Sequence[str]]
    absent: dict[str, npt.NDArray[np.bool_]]  # values that are absent in a data frame (NaN / None)
    encoding: str | None = None
    ignored: tuple[str, ...] = ()
    blank_lines: int = 0

    def where(self, i: int, column: str) -> str:
        return f"{self.name} {self.unit} {int(self.lines[i])}, column {column}"


def _needed_columns(recipe: Recipe) -> list[str]:
    return [f.name for f in recipe.features] + [recipe.label.column]


def _read_file(recipe: Recipe, path: Path, encoding: str | None) -> _Table:
    name = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        text, enc = decode_bytes(data, encoding)
    except BadInput as exc:
        raise BadInput(f"{name}: {exc}") from exc
    records = read_records(text, recipe.delimiter, header=recipe.header, name=name)
    rows, lines, blank = records.rows, records.lines, records.blank_lines
    if records.header is not None:
        expected = records.header
        needed = _needed_columns(recipe)
        require_columns(records, needed + [c for c in recipe.columns if c not in needed], name=name)
        ignored = tuple(h for h in expected if h not in recipe.columns and h != recipe.label.column)
    else:
        expected = list(recipe.columns)
        ignored = ()
    check_widths(records, expected, name=name)
    index = {c: i for i, c in enumerate(expected)}
    by_position = list(zip(*rows, strict=True)) if rows else [() for _ in expected]
    cols = {c: by_position[index[c]] for c in _needed_columns(recipe)}
    return _Table(name, "line", np.asarray(lines, dtype=np.int64), cols, {}, enc, ignored, blank)


def _read_frame(recipe: Recipe, frame: pd.DataFrame, name: str) -> _Table:
    cols: dict[str, Sequence[str]] = {}
    absent: dict[str, npt.NDArray[np.bool_]] = {}
    names = [str(c) for c in frame.columns]
    for col in _needed_columns(recipe):
        if col not in names:
            raise BadInput(f"{name} header, column {col}: missing from the table (it has {', '.join(names)})")
        series = frame.iloc[:, names.index(col)]
        isna = series.isna().to_numpy(dtype=bool)
        absent[col] = isna
        cols[col] = [
            "" if na else (repr(float(v)) if isinstance(v, float | np.floating) else str(v))
            for v, na in zip(series.tolist(), isna, strict=True)
        ]
    ignored = tuple(n for n in names if n not in recipe.columns and n != recipe.label.column)
    return _Table(name, "row", np.arange(1, len(frame) + 1, dtype=np.int64), cols, absent, None, ignored)


def _read(recipe: Recipe, source: str | Path | pd.DataFrame, encoding: str | None) -> _Table:
    if isinstance(source, str | Path):
        return _read_file(recipe, Path(source), encoding)
    # A frame may say where its rows come from (attrs["name"]), so errors name that instead of "table".
    return _read_frame(recipe, source, str(source.attrs.get("name", "table")))


# --------------------------------------------------------------------------------------------------- parsing columns


@dataclass
class _Parsed:
    """Columns parsed and checked, rows with a missing label already dropped."""

    table: _Table
    rows_read: int
    keep: npt.NDArray[np.bool_]
    y: npt.NDArray[np.int64]
    numeric: dict[str, npt.NDArray[np.float64]]  # NaN where missing, clipped and transformed
    codes: dict[str, npt.NDArray[np.int64]]  # category index; -1 missing, -2 unknown
    unknown: dict[str, dict[str, int]]


class _Problems:
    """The first problem of each column; the earliest in the file is raised, so a user fixes the file top-down."""

    def __init__(self, table: _Table) -> None:
        self.table = table
        self.found: list[tuple[int, int, str]] = []

    def add(self, i: int, order: int, column: str, what: str) -> None:
        self.found.append((int(self.table.lines[i]), order, f"{self.table.where(i, column)}: {what}"))

    def raise_first(self) -> None:
        if self.found:
            self.found.sort()
            more = len(self.found) - 1
            tail = f" (and problems in {more} more column{'s' if more > 1 else ''})" if more else ""
            raise BadInput(self.found[0][2] + tail)


@dataclass
class _Column:
    """One column as its distinct (stripped) values and, per row, the index of its value: every check and
    conversion runs once per distinct value, then maps to the rows."""

    name: str
    values: list[str]
    inverse: npt.NDArray[np.intp]
    missing: npt.NDArray[np.bool_]  # per row

    @classmethod
    def of(cls, table: _Table, name: str, markers: Sequence[str], numeric: bool) -> _Column:
        import pandas as pd

        raw = np.empty(len(table.lines), dtype=object)
        raw[:] = table.cols[name]
        inverse, uniq = pd.factorize(raw)  # a hash table in C: fast on text, and no value is ever NaN here
        stripped = [str(u).strip() for u in uniq.tolist()]
        values = sorted(set(stripped))
        pos = {v: i for i, v in enumerate(values)}
        remap = np.array([pos[v] for v in stripped], dtype=np.intp)
        inverse = remap[inverse] if remap.size else inverse.astype(np.intp)
        numbers = [x for m in markers if (x := parse_number(m)) is not None] if numeric else []
        marked = np.array([v in markers or (bool(numbers) and parse_number(v) in numbers) for v in values], dtype=bool)
        missing = marked[inverse] if values else np.zeros(0, dtype=bool)
        if name in table.absent:
            missing = missing | table.absent[name]
        return cls(name, values, inverse, missing)

    def first(self, per_value: npt.NDArray[np.bool_]) -> int | None:
        """The first row whose (non-missing) value is flagged in ``per_value``, or None."""
        rows = np.flatnonzero(per_value[self.inverse] & ~self.missing) if self.values else np.zeros(0, dtype=np.intp)
        return int(rows[0]) if rows.size else None

    def value(self, row: int) -> str:
        return self.values[int(self.inverse[row])]


def _parse_numeric(spec: ColumnSpec, col: _Column, problems: _Problems, order: int) -> npt.NDArray[np.float64]:
    parsed = np.array([x if (x := parse_number(v)) is not None else np.nan for v in col.values], dtype=np.float64)
    out = parsed[col.inverse] if col.values else np.zeros(0, dtype=np.float64)
    out[col.missing] = np.nan
    bad = col.first(np.isnan(parsed))
    if bad is not None:
        value = col.value(bad)
        what = "is not a finite number" if _is_nonfinite(value) else "is not a number"
        problems.add(bad, order, spec.name, f"{value!r} {what}")
    if spec.clip is not None:
        np.clip(out, spec.clip[0], spec.clip[1], out=out)
    if spec.transform == "log1p":
        clipped = np.clip(parsed, *spec.clip) if spec.clip is not None else parsed
        bad = col.first(clipped <= -1)
        if bad is not None:
            problems.add(bad, order, spec.name, f"{col.value(bad)!r} is outside log1p's domain (values above -1)")
        with np.errstate(divide="ignore", invalid="ignore"):  # reported above; the rows are never returned
            out = np.log1p(out)
    return out


def _transformed(spec: ColumnSpec, x: float) -> float:
    """A value in the file's units (a constant, a clip bound) as the column's transform maps the values read."""
    return math.log1p(x) if spec.transform == "log1p" else x


def _is_nonfinite(s: str) -> bool:
    try:
        return not math.isfinite(float(s))
    except ValueError:
        return False


def _lookup(listed: tuple[Value, ...], values: list[str]) -> npt.NDArray[np.int64]:
    """Index in ``listed`` of each distinct raw value, -2 when it is not listed (numbers match by value)."""
    pos: dict[Value, int] = {v: i for i, v in enumerate(listed)}
    numeric = bool(listed) and isinstance(listed[0], float)
    out = np.empty(len(values), dtype=np.int64)
    for k, v in enumerate(values):
        key: Value | None = parse_number(v) if numeric else v
        out[k] = pos.get(key, -2) if key is not None else -2
    return out


def _parse_categorical(
    spec: ColumnSpec, col: _Column, problems: _Problems, order: int, unknown: dict[str, int]
) -> npt.NDArray[np.int64]:
    found = _lookup(spec.categories, col.values)
    codes = found[col.inverse] if col.values else np.zeros(0, dtype=np.int64)
    codes[col.missing] = -1
    bad = col.first(found == -2)
    if bad is not None:
        if spec.unknown == "error":
            listed = ", ".join(_fmt(c) for c in spec.categories)
            problems.add(bad, order, spec.name, f"{col.value(bad)!r} is not one of the categories ({listed})")
        else:
            counts = np.bincount(col.inverse[codes == -2], minlength=len(col.values))
            unknown.update({col.values[k]: int(c) for k, c in enumerate(counts.tolist()) if c})
    return codes


def _parse_label(rule: LabelRule, col: _Column, problems: _Problems, order: int) -> npt.NDArray[np.int64]:
    mapped = np.empty(len(col.values), dtype=np.int64)
    why = ""
    if rule.threshold is not None:
        op, bound = rule.threshold
        nums = np.array([x if (x := parse_number(v)) is not None else np.nan for v in col.values], dtype=np.float64)
        mapped[:] = _OPS[op](nums, bound).astype(np.int64)
        mapped[np.isnan(nums)] = -2
        why = f"is not a number, and the label rule ({rule.describe()}) needs one"
    elif rule.classes is not None:
        mapped[:] = _lookup(rule.classes, col.values)
        why = f"is not one of the label's {rule.describe()}"
    else:
        pos = _lookup(rule.positive, col.values) >= 0 if rule.positive else None
        neg = _lookup(rule.negative, col.values) >= 0 if rule.negative else None
        if pos is not None and neg is not None:
            mapped[:] = np.where(pos, 1, np.where(neg, 0, -2))
            why = f"is in neither list of the label rule ({rule.describe()})"
        elif pos is not None:
            mapped[:] = pos.astype(np.int64)
        else:
            assert neg is not None
            mapped[:] = (~neg).astype(np.int64)
        listed = rule.positive or rule.negative or ()
        if listed and isinstance(listed[0], float):
            # Numeric lists: a value that is not a number cannot be compared with them.
            mapped[np.array([parse_number(v) is None for v in col.values], dtype=bool)] = -2
            why = why or f"is not a number, and the label rule ({rule.describe()}) lists numbers"
    y = mapped[col.inverse] if col.values else np.zeros(0, dtype=np.int64)
    y[col.missing] = -1
    bad = col.first(mapped == -2)
    if bad is not None:
        problems.add(bad, order, rule.column, f"label {col.value(bad)!r} {why}")
    return y


def _parse(recipe: Recipe, source: str | Path | pd.DataFrame, encoding: str | None) -> _Parsed:
    table = _read(recipe, source, encoding)
    problems = _Problems(table)
    position = {c: i for i, c in enumerate(recipe.columns)}
    numeric: dict[str, npt.NDArray[np.float64]] = {}
    codes: dict[str, npt.NDArray[np.int64]] = {}
    unknown: dict[str, dict[str, int]] = {}
    for f in recipe.features:
        col = _Column.of(table, f.name, recipe.missing + f.missing, f.kind == NUMERIC or f.numeric_categories)
        order = position.get(f.name, 0)
        if f.impute is None and col.missing.any():
            i = int(np.flatnonzero(col.missing)[0])
            problems.add(i, order, f.name, f"missing value {col.value(i)!r}, and the recipe gives no imputation")
        if f.kind == NUMERIC:
            numeric[f.name] = _parse_numeric(f, col, problems, order)
        else:
            unknown[f.name] = {}
            codes[f.name] = _parse_categorical(f, col, problems, order, unknown[f.name])
    label = _Column.of(table, recipe.label.column, recipe.missing, False)
    y = _parse_label(recipe.label, label, problems, position.get(recipe.label.column, 0))
    problems.raise_first()
    keep = ~label.missing
    return _Parsed(
        table,
        len(table.lines),
        keep,
        y[keep],
        {k: v[keep] for k, v in numeric.items()},
        {k: v[keep] for k, v in codes.items()},
        {k: v for k, v in unknown.items() if v},
    )


# --------------------------------------------------------------------------------------------------- statistics


def stats_layout(recipe: Recipe) -> tuple[tuple[str, str], ...]:
    """The meaning of each entry of a stats vector: (column, field), features in recipe order.

    A numeric column contributes ``count``, ``sum``, ``sum_sq`` (over its non-missing values, after clipping and
    the transform); a
    categorical column contributes ``count:<category>`` for each listed category in order (missing and unknown
    values are not counted). Minimum and maximum are not in the vector: a sum of minima means nothing.
    """
    out: list[tuple[str, str]] = []
    for f in recipe.features:
        if f.kind == NUMERIC:
            out += [(f.name, "count"), (f.name, "sum"), (f.name, "sum_sq")]
        else:
            out += [(f.name, f"count:{_fmt(c)}") for c in f.categories]
    return tuple(out)


def _exact_sum(q: npt.NDArray[np.int64], square: bool) -> int:
    if q.size == 0:
        return 0
    biggest = int(np.max(np.abs(q)))
    bound = q.size * (biggest * biggest if square else biggest)
    if bound < 2**63:
        return int(np.sum(q * q if square else q, dtype=np.int64))
    return sum(int(v) * int(v) for v in q.tolist()) if square else sum(int(v) for v in q.tolist())


def _vector(recipe: Recipe, parsed: _Parsed, frac_bits: int | None) -> npt.NDArray[Any]:
    if frac_bits is None:
        fvals: list[float] = []
        for f in recipe.features:
            if f.kind == NUMERIC:
                v = parsed.numeric[f.name]
                v = v[~np.isnan(v)]
                fvals += [float(v.size), float(np.sum(v)), float(np.sum(v * v))]
            else:
                fvals += (
                    np.bincount(parsed.codes[f.name][parsed.codes[f.name] >= 0], minlength=len(f.categories))
                    .astype(np.float64)
                    .tolist()
                )
        return np.asarray(fvals, dtype=np.float64)
    if not isinstance(frac_bits, int) or not 0 <= frac_bits <= 30:
        raise ConfigError(f"frac_bits: expected an integer in [0, 30], got {frac_bits!r}")
    scale = float(2**frac_bits)
    ivals: list[int] = []
    for f in recipe.features:
        if f.kind == NUMERIC:
            v = parsed.numeric[f.name]
            v = v[~np.isnan(v)]
            scaled = np.rint(v * scale)
            if scaled.size and float(np.max(np.abs(scaled))) >= 2.0**62:
                raise BadInput(
                    f"{parsed.table.name}, column {f.name}: values too large for frac_bits={frac_bits}; lower "
                    'frac_bits, give clip bounds or transform = "log1p"'
                )
            q = scaled.astype(np.int64)
            entries = [int(q.size), _exact_sum(q, False), _exact_sum(q, True)]
            for what, e in zip(("sum", "sum of squares"), entries[1:], strict=True):
                if abs(e) >= _FIXED_LIMIT:
                    raise BadInput(
                        f"{parsed.table.name}, column {f.name}: the {what} needs {abs(e).bit_length()} bits at "
                        f"frac_bits={frac_bits}, above the 62 a member may send; lower frac_bits, give clip bounds "
                        'or transform = "log1p"'
                    )
            ivals += entries
        else:
            ivals += np.bincount(parsed.codes[f.name][parsed.codes[f.name] >= 0], minlength=len(f.categories)).tolist()
    return np.asarray(ivals, dtype=np.int64)


def stats_vector(
    recipe: Recipe, table: str | Path | pd.DataFrame, *, frac_bits: int | None = None, encoding: str | None = None
) -> npt.NDArray[Any]:
    """One member's sufficient statistics as a flat vector in :func:`stats_layout` order (rows whose label is
    missing are left out, as :func:`prepare` leaves them out).

    ``frac_bits=None``: float64 (counts are exact; sums are float64 sums, so the members' vectors add up to the
    pooled vector to rounding, ~1e-15 relative). ``frac_bits=F`` (0 to 30): int64 fixed point, exact. Every value
    ``x`` is first quantised to ``q = round(x * 2**F)``; the entries are ``count``, ``sum(q)`` (scale ``2**F``)
    and ``sum(q*q)`` (scale ``2**(2F)``), computed without overflow, and category counts. Integer addition is
    exact, so the members' vectors add up to exactly the vector of their concatenated rows, and ``.view(uint64)``
    puts it in the ring of :class:`~fedledger.learning.fixedpoint.FixedPoint` that secure aggregation masks in.
    Each entry must stay below 2**62 (``BadInput`` names the column otherwise), and the consortium's sum below
    2**63.
    """
    return _vector(recipe, _parse(recipe, table, encoding), frac_bits)


def stats_from_sum(recipe: Recipe, summed: npt.ArrayLike, *, frac_bits: int | None = None) -> dict[str, ColumnStats]:
    """The statistics that a sum of stats vectors gives, per feature column: mean and population std of numeric
    columns, the most frequent category (ties: the first listed) of categorical ones; ``None`` where no member
    has a value. With ``frac_bits`` the sum is int64 (or its uint64 view) and the arithmetic is exact rational
    arithmetic, rounded once to float64."""
    layout = stats_layout(recipe)
    arr = np.asarray(summed)
    if arr.ndim != 1 or arr.shape[0] != len(layout):
        raise BadInput(
            f"the summed statistics vector has shape {arr.shape}, the recipe's layout has {len(layout)} entries"
        )
    if frac_bits is None:
        if not np.issubdtype(arr.dtype, np.number):
            raise BadInput(f"the summed statistics vector has dtype {arr.dtype}, expected numbers")
        values: list[Any] = arr.astype(np.float64).tolist()
    else:
        if arr.dtype == np.uint64:
            arr = arr.view(np.int64)
        if not np.issubdtype(arr.dtype, np.integer):
            raise BadInput(f"the summed fixed-point statistics vector has dtype {arr.dtype}, expected int64")
        values = [int(v) for v in arr.tolist()]
    for (col, what), v in zip(layout, values, strict=True):
        if (what != "sum") and v < 0:
            raise BadInput(
                f"summed statistics, column {col}, {what}: {v} is negative (the sum wrapped around or a "
                "member sent a bad vector)"
            )
    out: dict[str, ColumnStats] = {}
    k = 0
    for f in recipe.features:
        if f.kind == NUMERIC:
            n, s, ss = values[k : k + 3]
            k += 3
            if n == 0:
                out[f.name] = ColumnStats()
                continue
            if frac_bits is None:
                mean = s / n
                var = max((ss - s * s / n) / n, 0.0)
            else:
                mean = s / (n * 2**frac_bits)
                var = (n * ss - s * s) / (n * n * 4**frac_bits)
            out[f.name] = ColumnStats(mean=float(mean), std=math.sqrt(var))
        else:
            counts = values[k : k + len(f.categories)]
            k += len(f.categories)
            best = max(range(len(counts)), key=lambda j: (counts[j], -j))
            out[f.name] = ColumnStats(most_frequent=f.categories[best] if counts[best] > 0 else None)
    return out


def _local_stats(recipe: Recipe, parsed: _Parsed) -> dict[str, ColumnStats]:
    """Statistics from this table alone (statistics = "local"): the summable ones as the consortium would compute
    them, plus median, min, max and the mode of numeric columns."""
    derived = stats_from_sum(recipe, _vector(recipe, parsed, None))
    out: dict[str, ColumnStats] = {}
    for f in recipe.features:
        got = derived[f.name]
        if f.kind == NUMERIC:
            v = parsed.numeric[f.name]
            v = v[~np.isnan(v)]
            if v.size:
                vals, counts = np.unique(v, return_counts=True)
                got = replace(
                    got,
                    median=float(np.median(v)),
                    min=float(v.min()),
                    max=float(v.max()),
                    most_frequent=float(vals[int(np.argmax(counts))]),
                )
        out[f.name] = got
    return out


# --------------------------------------------------------------------------------------------------- preparing


@dataclass(frozen=True)
class PreparationReport:
    """What preparation did, for the member's own records (it stays with the member)."""

    source: str
    encoding: str | None
    rows_read: int
    rows_used: int
    rows_dropped: dict[str, int] = field(default_factory=dict)
    imputed: dict[str, int] = field(default_factory=dict)
    unknown_categories: dict[str, dict[str, int]] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    blank_lines: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "encoding": self.encoding,
            "rows_read": self.rows_read,
            "rows_used": self.rows_used,
            "rows_dropped": dict(self.rows_dropped),
            "imputed": dict(self.imputed),
            "unknown_categories": {k: dict(v) for k, v in self.unknown_categories.items()},
            "ignored_columns": list(self.ignored_columns),
            "blank_lines": self.blank_lines,
        }


@dataclass(frozen=True)
class PreparedData:
    """Training data: ``X`` float64 (rows x features, C order), ``y`` int64, column names after one-hot."""

    X: npt.NDArray[np.float64]
    y: npt.NDArray[np.int64]
    feature_names: tuple[str, ...]
    classes: tuple[str, ...]
    report: PreparationReport
    recipe_hash: str


def prepare(recipe: Recipe, source: str | Path | pd.DataFrame, *, encoding: str | None = None) -> PreparedData:
    """Read ``source`` (a CSV path or a DataFrame, whose columns are matched by name) and prepare it.

    Deterministic: the same file and recipe give the same bytes. Rows whose label is missing are dropped (and
    counted in the report); every other problem raises :class:`BadInput` naming the file, line and column before
    anything is returned. Per numeric column: parse, clip, transform, impute, scale; per categorical column: impute,
    one-hot over the recipe's categories (an unknown value, with ``unknown = "ignore"``, is an all-zero row).
    """
    parsed = _parse(recipe, source, encoding)
    stats = recipe.stats_map
    if recipe.statistics == "local":
        local = _local_stats(recipe, parsed)
        for name, got in local.items():
            given = stats.get(name, ColumnStats())
            stats[name] = ColumnStats(
                **{k: getattr(given, k) if getattr(given, k) is not None else getattr(got, k) for k in STAT_NAMES}
            )
    else:
        lacking = recipe.missing_stats()
        if lacking:
            col, stat = lacking[0]
            how = (
                "agree them first: Recipe.local_stats at every member, a secure sum, Recipe.with_stats"
                if recipe.statistics == "consortium"
                else "give them in the recipe"
            )
            raise ConfigError(f"preparation.stats.{col}.{stat}: not set ({len(lacking)} statistic(s) missing); {how}")
    n = int(parsed.y.shape[0])
    blocks: list[npt.NDArray[np.float64]] = []
    imputed: dict[str, int] = {}
    for f in recipe.features:
        s = stats.get(f.name, ColumnStats())
        if f.kind == NUMERIC:
            v = parsed.numeric[f.name].copy()
            miss = np.isnan(v)
            if miss.any():
                if f.impute == "constant":
                    assert isinstance(f.constant, float)
                    fill: float | None = _transformed(f, f.constant)
                else:
                    fill = getattr(s, str(f.impute))
                if fill is None:  # statistics = "local" and the column has no value at all
                    raise BadInput(
                        f"{parsed.table.name}, column {f.name}: every value is missing, so there is no "
                        f"{f.impute} to impute"
                    )
                v[miss] = float(fill)
                imputed[f.name] = int(miss.sum())
            if f.scale == "standard":
                if s.mean is None or s.std is None:  # statistics = "local" and the column has no value at all
                    raise BadInput(
                        f"{parsed.table.name}, column {f.name}: no value at all, so no mean and standard deviation "
                        "to scale by"
                    )
                v = (v - s.mean) / (s.std if s.std > 0 else 1.0)
            elif f.scale == "minmax":
                if s.min is not None and s.max is not None:
                    lo, hi = s.min, s.max
                elif f.clip is not None:
                    lo, hi = _transformed(f, f.clip[0]), _transformed(f, f.clip[1])
                else:
                    lo, hi = 0.0, 1.0
                v = (v - lo) / (hi - lo if hi > lo else 1.0)
            blocks.append(v.reshape(n, 1))
        else:
            c = parsed.codes[f.name].copy()
            miss = c == -1
            if miss.any():
                fill_value = f.constant if f.impute == "constant" else s.most_frequent
                if fill_value is None:
                    raise BadInput(
                        f"{parsed.table.name}, column {f.name}: every value is missing, so there is no "
                        "most frequent category to impute"
                    )
                c[miss] = f.categories.index(fill_value)
                imputed[f.name] = int(miss.sum())
            onehot = np.zeros((n, len(f.categories)), dtype=np.float64)
            known = c >= 0
            onehot[np.flatnonzero(known), c[known]] = 1.0
            blocks.append(onehot)
    X = np.ascontiguousarray(np.hstack(blocks) if blocks else np.zeros((n, 0)), dtype=np.float64)
    dropped = parsed.rows_read - n
    report = PreparationReport(
        source=parsed.table.name,
        encoding=parsed.table.encoding,
        rows_read=parsed.rows_read,
        rows_used=n,
        rows_dropped={"missing label": dropped} if dropped else {},
        imputed=imputed,
        unknown_categories=parsed.unknown,
        ignored_columns=parsed.table.ignored,
        blank_lines=parsed.table.blank_lines,
    )
    return PreparedData(
        X,
        np.ascontiguousarray(parsed.y, dtype=np.int64),
        recipe.feature_names,
        recipe.label.class_names,
        report,
        recipe.hash(),
    )
