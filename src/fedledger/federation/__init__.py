"""Federation: task configuration, member nodes, round rules and simulations."""

from fedledger.federation.config import AGGREGATION_RULES, TaskConfig
from fedledger.federation.node import Behavior, LocalData, MemberNode, NodeEvent
from fedledger.federation.rules import RoundAggregate, aggregate_round, check_update
from fedledger.federation.simulation import Simulation

__all__ = [
    "AGGREGATION_RULES",
    "Behavior",
    "LocalData",
    "MemberNode",
    "NodeEvent",
    "RoundAggregate",
    "Simulation",
    "TaskConfig",
    "aggregate_round",
    "check_update",
]
