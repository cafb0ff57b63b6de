"""The recipe: parsed and validated from TOML or JSON, written back in canonical form and hashed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from fedledger.data.cleanse import CleanseRules
from fedledger.data.prepare._columns import ColumnSpec, ColumnStats, LabelRule
from fedledger.data.prepare._schema import (
    CATEGORICAL,
    CATEGORICAL_KEYS,
    KINDS,
    NUMERIC,
    NUMERIC_KEYS,
    RECIPE_VERSION,
    STAT_NAMES,
    STATISTICS,
    SUMMABLE_STATS,
    TOP_KEYS,
    check_keys,
    config_number,
    config_strings,
    config_value,
)
from fedledger.data.prepare._stats import stats_from_sum, stats_vector
from fedledger.data.tabular import parse_number
from fedledger.exceptions import ConfigError

if TYPE_CHECKING:
    import pandas as pd


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
        d = check_keys(d, TOP_KEYS, where)
        version, header, delimiter, missing, statistics = _layout(d, where)
        names, features = _column_list(d.get("columns"), where, _column_defaults(d, where))
        kinds = {f.name: f.kind for f in features}
        dropped = _selection(d, where, [f.name for f in features])
        features = [f for f in features if f.name not in dropped]
        label = LabelRule.from_dict(d.get("label"), f"{where}.label")
        skip = _skip_columns(d, where, names, header, {f.name for f in features}, label, dropped)
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


def _layout(d: Mapping[str, Any], where: str) -> tuple[int, bool, str, tuple[str, ...], str]:
    """The recipe's version and how its table is read: (version, header, delimiter, missing, statistics)."""
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
    missing = config_strings(d.get("missing", [""]), f"{where}.missing")
    statistics = d.get("statistics", "consortium")
    if statistics not in STATISTICS:
        raise ConfigError(f"{where}.statistics: expected one of {', '.join(STATISTICS)}, got {statistics!r}")
    return version, header, delimiter, missing, statistics


def _column_defaults(d: Mapping[str, Any], where: str) -> dict[str, Mapping[str, Any]]:
    """The ``defaults`` table: per kind, the settings a feature column takes unless it gives its own."""
    defaults_raw = check_keys(d.get("defaults", {}), KINDS, f"{where}.defaults")
    defaults: dict[str, Mapping[str, Any]] = {}
    for kind, keys in ((NUMERIC, NUMERIC_KEYS), (CATEGORICAL, CATEGORICAL_KEYS)):
        defaults[kind] = check_keys(defaults_raw.get(kind, {}), keys, f"{where}.defaults.{kind}")
    return defaults


def _column_list(
    raw_columns: Any, where: str, defaults: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], list[ColumnSpec]]:
    """Every column's name in the file's order, and the specs of the feature columns among them."""
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
    return names, features


def _skip_columns(
    d: Mapping[str, Any],
    where: str,
    names: Sequence[str],
    header: bool,
    feature_names: set[str],
    label: LabelRule,
    dropped: tuple[str, ...],
) -> tuple[str, ...]:
    """The columns read past: ``skip_columns`` and the features ``select``/``drop`` removed. Every column of the
    file must be a feature, the label or skipped."""
    if label.column in feature_names:
        raise ConfigError(f"{where}.label.column: {label.column!r} is also a feature column")
    if not header and label.column not in names:
        raise ConfigError(f"{where}.label.column: {label.column!r} is not in {where}.columns")
    skip = config_strings(d.get("skip_columns", []), f"{where}.skip_columns")
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
    return skip


def _selection(d: Mapping[str, Any], where: str, features: Sequence[str]) -> tuple[str, ...]:
    """The feature columns that ``select`` (keep only these) or ``drop`` (leave these out) remove from ``X``."""
    if "select" in d and "drop" in d:
        raise ConfigError(f"{where}.select: give select or drop, not both")
    for key in ("select", "drop"):
        if key not in d:
            continue
        named = config_strings(d[key], f"{where}.{key}", allow_empty=key == "drop")
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
    d = check_keys(d, tuple(features), where)
    out: dict[str, ColumnStats] = {}
    for name, raw in d.items():
        f = features[name]
        here = f"{where}.{name}"
        if f.kind == CATEGORICAL:
            table = check_keys(raw, ("most_frequent",), here)
            mode = table.get("most_frequent")
            if mode is None:
                continue
            value = config_value(mode, f"{here}.most_frequent")
            if f.numeric_categories and isinstance(value, str):
                parsed = parse_number(value)
                value = parsed if parsed is not None else value
            if value not in f.categories:
                raise ConfigError(f"{here}.most_frequent: {mode!r} is not one of the categories")
            out[name] = ColumnStats(most_frequent=value)
            continue
        table = check_keys(raw, STAT_NAMES, here)
        nums = {k: config_number(v, f"{here}.{k}") for k, v in table.items()}
        if nums.get("std", 0.0) < 0:
            raise ConfigError(f"{here}.std: must not be negative")
        if "min" in nums and "max" in nums and not nums["min"] < nums["max"]:
            raise ConfigError(f"{here}: min {nums['min']} must be below max {nums['max']}")
        out[name] = ColumnStats(**nums)
    return out
