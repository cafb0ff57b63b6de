"""Turning a parsed table into training data: imputation, scaling and one-hot encoding by the agreed
statistics."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedledger.data.prepare._columns import ColumnSpec, ColumnStats
from fedledger.data.prepare._reading import ParsedTable, parse_table, transformed_value
from fedledger.data.prepare._schema import NUMERIC, STAT_NAMES
from fedledger.data.prepare._stats import local_stats_of
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from fedledger.data.prepare._recipe import Recipe


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
    parsed = parse_table(recipe, source, encoding)
    stats = _agreed_stats(recipe, parsed)
    n = int(parsed.y.shape[0])
    blocks: list[npt.NDArray[np.float64]] = []
    imputed: dict[str, int] = {}
    for f in recipe.features:
        s = stats.get(f.name, ColumnStats())
        if f.kind == NUMERIC:
            blocks.append(_numeric_block(f, parsed.numeric[f.name], s, parsed.table.name, imputed).reshape(n, 1))
        else:
            blocks.append(_one_hot_block(f, parsed.codes[f.name], s, parsed.table.name, imputed))
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


def _agreed_stats(recipe: Recipe, parsed: ParsedTable) -> dict[str, ColumnStats]:
    """The statistics preparation scales and imputes by: the recipe's, completed from this table alone under
    ``statistics = "local"``; otherwise every one preparation needs must be in the recipe already."""
    stats = recipe.stats_map
    if recipe.statistics == "local":
        local = local_stats_of(recipe, parsed)
        for name, got in local.items():
            given = stats.get(name, ColumnStats())
            stats[name] = ColumnStats(
                **{k: getattr(given, k) if getattr(given, k) is not None else getattr(got, k) for k in STAT_NAMES}
            )
        return stats
    lacking = recipe.missing_stats()
    if lacking:
        col, stat = lacking[0]
        how = (
            "agree them first: Recipe.local_stats at every member, a secure sum, Recipe.with_stats"
            if recipe.statistics == "consortium"
            else "give them in the recipe"
        )
        raise ConfigError(f"preparation.stats.{col}.{stat}: not set ({len(lacking)} statistic(s) missing); {how}")
    return stats


def _numeric_block(
    f: ColumnSpec, values: npt.NDArray[np.float64], s: ColumnStats, source: str, imputed: dict[str, int]
) -> npt.NDArray[np.float64]:
    """A numeric column imputed and scaled (``values`` are already clipped and transformed, NaN where missing);
    the number of imputed values goes into ``imputed``."""
    v = values.copy()
    miss = np.isnan(v)
    if miss.any():
        if f.impute == "constant":
            if not isinstance(f.constant, float):
                raise ConfigError(f"columns.{f.name}.impute: a numeric column's constant must be a number")
            fill: float | None = transformed_value(f, f.constant)
        else:
            fill = getattr(s, str(f.impute))
        if fill is None:  # statistics = "local" and the column has no value at all
            raise BadInput(f"{source}, column {f.name}: every value is missing, so there is no {f.impute} to impute")
        v[miss] = float(fill)
        imputed[f.name] = int(miss.sum())
    if f.scale == "standard":
        if s.mean is None or s.std is None:  # statistics = "local" and the column has no value at all
            raise BadInput(f"{source}, column {f.name}: no value at all, so no mean and standard deviation to scale by")
        v = (v - s.mean) / (s.std if s.std > 0 else 1.0)
    elif f.scale == "minmax":
        if s.min is not None and s.max is not None:
            lo, hi = s.min, s.max
        elif f.clip is not None:
            lo, hi = transformed_value(f, f.clip[0]), transformed_value(f, f.clip[1])
        else:
            lo, hi = 0.0, 1.0
        v = (v - lo) / (hi - lo if hi > lo else 1.0)
    return v


def _one_hot_block(
    f: ColumnSpec, codes: npt.NDArray[np.int64], s: ColumnStats, source: str, imputed: dict[str, int]
) -> npt.NDArray[np.float64]:
    """A categorical column imputed and one-hot encoded over its categories (an unknown value, code -2, is an
    all-zero row); the number of imputed values goes into ``imputed``."""
    c = codes.copy()
    miss = c == -1
    if miss.any():
        fill_value = f.constant if f.impute == "constant" else s.most_frequent
        if fill_value is None:
            raise BadInput(
                f"{source}, column {f.name}: every value is missing, so there is no most frequent category to impute"
            )
        c[miss] = f.categories.index(fill_value)
        imputed[f.name] = int(miss.sum())
    onehot = np.zeros((len(c), len(f.categories)), dtype=np.float64)
    known = c >= 0
    onehot[np.flatnonzero(known), c[known]] = 1.0
    return onehot
