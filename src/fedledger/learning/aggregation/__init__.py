"""Aggregation rules, one per module, as pure functions over fixed-point arrays.

:func:`aggregate` runs any rule of :data:`AGGREGATION_RULES` by name (FedAvg and
the Byzantine-robust rules: median, trimmed mean, Krum, Multi-Krum, Bulyan,
FLTrust, centered clipping, norm bounding, FoolsGold), bit-identically on every
machine.
"""

from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.aggregation.fedavg import fedavg, weighted_sum
from fedledger.learning.aggregation.registry import AGGREGATION_RULES, RuleResult, RuleSpec, aggregate

__all__ = ["AGGREGATION_RULES", "RuleResult", "RuleSpec", "aggregate", "apply_update", "fedavg", "weighted_sum"]
