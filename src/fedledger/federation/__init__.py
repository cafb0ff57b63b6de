"""Federation: the round engine and its ledger port, member nodes, round rules, task configuration and simulations.

What happens in a round is :mod:`fedledger.federation.engine`; the rules every party applies identically are
:mod:`fedledger.federation.rules`; a member's own work is :class:`MemberNode`.
"""

from fedledger.federation.behavior import Behavior, Honest
from fedledger.federation.config import TaskConfig, ledger_rules
from fedledger.federation.engine import RoundEngine, ValidatedRounds
from fedledger.federation.ledger import Ledger, SecureLedger
from fedledger.federation.memory_ledger import InMemoryLedger
from fedledger.federation.node import LocalData, MemberNode, NodeEvent
from fedledger.federation.rules import RoundAggregate, aggregate_round, check_update
from fedledger.federation.simulation import Simulation

__all__ = [
    "Behavior",
    "Honest",
    "InMemoryLedger",
    "Ledger",
    "LocalData",
    "MemberNode",
    "NodeEvent",
    "RoundAggregate",
    "RoundEngine",
    "SecureLedger",
    "Simulation",
    "TaskConfig",
    "ValidatedRounds",
    "ledger_rules",
    "aggregate_round",
    "check_update",
]
