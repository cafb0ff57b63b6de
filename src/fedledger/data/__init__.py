"""The local data privacy pipeline: classify columns, protect them, keep private values in an encrypted vault,
record ownership and consent on the ledger, and erase on request. Runs inside each organization; raw data never
leaves it."""

from fedledger.data.prepare import (
    ColumnSpec,
    ColumnStats,
    LabelRule,
    PreparationReport,
    PreparedData,
    Recipe,
    decode_bytes,
    prepare,
    stats_from_sum,
    stats_layout,
    stats_vector,
)

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
