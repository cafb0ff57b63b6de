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

The package follows those steps: :mod:`._schema` (the recipe's vocabulary and value checks), :mod:`._columns`
(feature, label and statistics specs), :mod:`._recipe` (the validated, hashed recipe), :mod:`._reading` (reading
and parsing a table), :mod:`._stats` (sufficient statistics and what their sum gives) and :mod:`._transform`
(imputation, scaling and one-hot encoding into :class:`PreparedData`).
"""

from __future__ import annotations

from fedledger.data.prepare._columns import ColumnSpec, ColumnStats, LabelRule
from fedledger.data.prepare._recipe import Recipe
from fedledger.data.prepare._stats import stats_from_sum, stats_layout, stats_vector
from fedledger.data.prepare._transform import PreparationReport, PreparedData, prepare
from fedledger.data.tabular import decode_bytes

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
