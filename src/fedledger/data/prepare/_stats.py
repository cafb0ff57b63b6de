"""Sufficient statistics: a member's vector for the consortium's secure sum, the statistics a sum gives, and
the local statistics of one table."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fedledger.data.prepare._columns import ColumnStats
from fedledger.data.prepare._reading import ParsedTable, parse_table
from fedledger.data.prepare._schema import FIXED_LIMIT, NUMERIC, format_value
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from fedledger.data.prepare._recipe import Recipe


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
            out += [(f.name, f"count:{format_value(c)}") for c in f.categories]
    return tuple(out)


def _exact_sum(q: npt.NDArray[np.int64], square: bool) -> int:
    if q.size == 0:
        return 0
    biggest = int(np.max(np.abs(q)))
    bound = q.size * (biggest * biggest if square else biggest)
    if bound < 2**63:
        return int(np.sum(q * q if square else q, dtype=np.int64))
    return sum(int(v) * int(v) for v in q.tolist()) if square else sum(int(v) for v in q.tolist())


def _vector(recipe: Recipe, parsed: ParsedTable, frac_bits: int | None) -> npt.NDArray[Any]:
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
                if abs(e) >= FIXED_LIMIT:
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
    return _vector(recipe, parse_table(recipe, table, encoding), frac_bits)


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


def local_stats_of(recipe: Recipe, parsed: ParsedTable) -> dict[str, ColumnStats]:
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
