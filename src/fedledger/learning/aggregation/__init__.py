"""Aggregation rules, one per module, as pure functions over fixed-point arrays.

:func:`aggregate` runs any rule of :data:`AGGREGATION_RULES` by name (FedAvg and
the Byzantine-robust rules: median, trimmed mean, Krum, Multi-Krum, Bulyan,
FLTrust, centered clipping, norm bounding, FoolsGold), bit-identically on every
machine. :mod:`~fedledger.learning.aggregation.server_optimizer` turns a rule's
aggregate into an adaptive server step (FedAdam, FedYogi, FedAdagrad).
"""

from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.aggregation.fedavg import fedavg, weighted_sum
from fedledger.learning.aggregation.registry import AGGREGATION_RULES, RuleResult, RuleSpec, aggregate
from fedledger.learning.aggregation.server_optimizer import (
    OPTIMIZER_DEFAULTS,
    SERVER_OPTIMIZERS,
    OptimizerState,
    apply_server_optimizer,
    resolve_optimizer_params,
    server_step,
)

__all__ = [
    "AGGREGATION_RULES",
    "OPTIMIZER_DEFAULTS",
    "SERVER_OPTIMIZERS",
    "OptimizerState",
    "RuleResult",
    "RuleSpec",
    "aggregate",
    "apply_server_optimizer",
    "apply_update",
    "fedavg",
    "resolve_optimizer_params",
    "server_step",
    "weighted_sum",
]
