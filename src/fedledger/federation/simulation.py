"""Run a whole consortium's nodes on one machine, against one chain and store.

Nodes are stepped cooperatively (each :meth:`MemberNode.step` does one action),
which keeps a simulation deterministic and lets a 2-core machine run many
members. When every live node is waiting on a phase deadline (a member died,
a validator is missing), the simulation moves block time past it on the dev
chain instead of sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fedledger.chain.task import RoundInfo, TrainingTaskClient
from fedledger.exceptions import FedLedgerError
from fedledger.federation.engine import CLOSED, phase_deadline
from fedledger.federation.node import MemberNode

__all__ = ["Simulation"]


@dataclass
class Simulation:
    task: TrainingTaskClient
    nodes: Sequence[MemberNode]
    crash_at_round: dict[str, int] = field(default_factory=dict)
    """node name -> first round in which the node is dead (stops acting)."""
    on_round_closed: Callable[[RoundInfo], None] | None = None
    max_steps: int = 100_000

    def _alive(self, node: MemberNode, round_id: int) -> bool:
        return round_id < self.crash_at_round.get(node.name, 1 << 62)

    def run(self) -> None:
        """Step the nodes until the task's last round is closed."""
        chain = self.task.chain
        reported = 0
        for _ in range(self.max_steps):
            current = self.task.current_round
            reported = self._report_closed(reported, current)
            if self.nodes[0].done():
                self._report_closed(reported, current + 1)
                self._finish_incentives(current)
                return
            acted = False
            for node in self.nodes:
                # Re-read the round (another node may have opened the next one in this pass), only
                # when some node is due to crash: each read is a chain call.
                round_now = self.task.current_round if self.crash_at_round else current
                if self._alive(node, max(round_now, 1)):
                    acted = node.step() or acted
            if not acted:
                info = self.task.round(current)
                deadline = phase_deadline(info)
                if deadline is None:
                    raise FedLedgerError(f"simulation stuck in round {current} ({info.phase.name.lower()})")
                wait = deadline - chain.timestamp() + 1
                if wait > 0:
                    if chain.kind == "rpc" and "127.0.0.1" not in chain.location and "localhost" not in chain.location:
                        time.sleep(min(wait, 5))
                    else:
                        chain.advance_time(wait)
        raise FedLedgerError(f"simulation did not finish in {self.max_steps} steps")

    def _finish_incentives(self, last: int) -> None:
        """Once the last round closed, step the live nodes until their incentive duties are done: the last
        rounds' contributions posted, and every finalized round settled (past its contribution window when a
        validator never posts: block time is moved there as for a phase deadline)."""
        live = [node for node in self.nodes if self._alive(node, last) and node.incentives is not None]
        for _ in range(self.max_steps):
            acted = False
            for node in live:
                acted = node.step() or acted
            if acted:
                continue
            waiting = [n.incentives for n in live if n.incentives is not None and n.incentives.waiting]
            if not waiting:
                return
            chain = self.task.chain
            if chain.kind == "rpc" and "127.0.0.1" not in chain.location and "localhost" not in chain.location:
                return  # a real network's clock is nobody's to move: the rounds settle later, by any member
            chain.advance_time(waiting[0].params.contribution_window + 1)
        raise FedLedgerError(f"the incentive duties did not finish in {self.max_steps} steps")

    def _report_closed(self, reported: int, current: int) -> int:
        """Call ``on_round_closed`` once for every round closed since the last call."""
        if self.on_round_closed is None:
            return current
        while reported + 1 <= current:
            info = self.task.round(reported + 1)
            if info.phase not in CLOSED:
                break
            self.on_round_closed(info)
            reported += 1
        return reported
