"""Aggregation rules, one per module, as pure functions over fixed-point arrays."""

from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.aggregation.fedavg import fedavg, weighted_sum

__all__ = ["apply_update", "fedavg", "weighted_sum"]
