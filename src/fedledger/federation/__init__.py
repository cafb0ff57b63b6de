"""Federation: task configuration, member nodes, round rules and simulations."""

from fedledger.federation.behavior import Behavior, Honest
from fedledger.federation.config import TaskConfig, ledger_rules
from fedledger.federation.node import LocalData, MemberNode, NodeEvent
from fedledger.federation.rules import RoundAggregate, aggregate_round, check_update
from fedledger.federation.simulation import Simulation

__all__ = [
    "Behavior",
    "Honest",
    "LocalData",
    "MemberNode",
    "NodeEvent",
    "RoundAggregate",
    "Simulation",
    "TaskConfig",
    "ledger_rules",
    "aggregate_round",
    "check_update",
]
