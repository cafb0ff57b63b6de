"""The chaos run's settings and its seeded plan: which members are killed, when, for how long, and when the
chain node restarts (``benchmarks/chaos_lib.py`` carries the plan out)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

from fedledger.exceptions import RoundsAborted
from fedledger.localnet import HEART_DISEASE_FILES

__all__ = [
    "ABORTED_EXIT",
    "AGGREGATOR_ROLES",
    "DEFAULT_DATA",
    "EXAMPLE",
    "HOSPITALS",
    "PLAIN_ROLES",
    "POLL",
    "PROPOSAL_QUORUM",
    "ROOT",
    "TRIGGERS",
    "ChainRestart",
    "Kill",
    "Plan",
    "Settings",
    "plan",
]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "heart-disease"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "heart-disease"
HOSPITALS = HEART_DISEASE_FILES
AGGREGATOR_ROLES = "trainer,validator,aggregator"
PLAIN_ROLES = "trainer,validator"
PROPOSAL_QUORUM = 2
# A node that ends because rules aborted rounds exits with this code: an outcome, not a crash.
ABORTED_EXIT = RoundsAborted.exit_code
TRIGGERS = ("in-round", "commit", "score", "propose")
POLL = 0.2


@dataclass(frozen=True)
class Settings:
    workdir: Path
    members: int = 6
    rounds: int = 30
    seed: int = 0
    chain: str = "served"
    phase_seconds: int = 10
    """Each phase's deadline (commit, validate, aggregate): how long a dead member can hold a round."""
    kills_per_victim: int = 2
    data: Path = DEFAULT_DATA
    timeout: float = 1800.0
    block_time: float = 0.5
    setup_in_process: bool = True
    """Set the consortium up through the CLI in this process (each node still runs as its own process)."""


# -- the plan ---------------------------------------------------------------------------------------------------------


@dataclass
class Kill:
    member: str
    round_id: int
    trigger: str
    """``in-round``: ``after`` seconds after the round opens; else right after the member's action in the round."""
    after: float
    down: float
    """Seconds the member stays down before its node is started again."""
    done_at: float | None = None
    in_round: int | None = None
    """The round the chain was in when the kill happened (from the node's events)."""


@dataclass
class ChainRestart:
    round_id: int
    after: float
    down: float
    member: str
    """A victim killed as the chain node stops and started again while it is still down (an outage of both)."""
    done_at: float | None = None


@dataclass
class Plan:
    aggregators: list[str]
    victims: list[str]
    kills: list[Kill]
    chain_restart: ChainRestart


def plan(members: list[str], settings: Settings) -> Plan:
    """The seeded schedule: which members aggregate, which are victims (one aggregator among them, a third of the
    members at most), when each is killed and for how long, and when the chain node restarts."""
    rng = random.Random(settings.seed)
    n = len(members)
    # Enough aggregators that the quorum holds with one of them down.
    aggregators = members[: max(PROPOSAL_QUORUM + 1, math.ceil(n / 2))]
    n_victims = max(1, n // 3)
    victims = [rng.choice(aggregators[1:])]  # not the founder: any aggregator can open rounds, but keep one admin up
    others = [m for m in members if m not in aggregators]
    victims += rng.sample(others, min(n_victims - 1, len(others)))
    last = max(2, settings.rounds - 1)  # rounds 2..rounds-1: round 1 agrees the data statistics with everyone up
    kills = []
    for victim in victims:
        rounds = sorted(rng.sample(range(2, last + 1), min(settings.kills_per_victim, last - 1)))
        for r in rounds:
            triggers = TRIGGERS if victim in aggregators else TRIGGERS[:-1]
            kills.append(
                Kill(
                    member=victim,
                    round_id=r,
                    trigger=rng.choice(triggers),
                    after=round(rng.uniform(0, 2.0), 2),
                    down=round(rng.uniform(0.5, 1.5 * settings.phase_seconds), 2),
                )
            )
    member = rng.choice(victims)
    # Away from that member's own kills, so that it is up to be killed with the chain node.
    busy = {k.round_id + d for k in kills if k.member == member for d in (0, 1)}
    rounds = [r for r in range(2, last + 1) if r not in busy] or list(range(2, last + 1))
    restart = ChainRestart(
        round_id=rng.choice(rounds),
        after=round(rng.uniform(0, 2.0), 2),
        down=round(rng.uniform(2.0, 6.0), 2),
        member=member,
    )
    return Plan(aggregators, victims, sorted(kills, key=lambda k: k.round_id), restart)
