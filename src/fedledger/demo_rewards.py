"""The demo's incentives: what its task pays, and each hospital's contributions, rewards, stake and slashes.

In validated rounds the demo task pays :data:`DEMO_REWARD_PER_ROUND` a round out of a pool the operator funds for
every round, and asks each hospital for a stake; the nodes post their measured contributions, settle each round and
slash harmful updates themselves (:mod:`fedledger.federation.incentive_duties`). Under secure aggregation no update
is seen, so none can be measured: the summary says so rather than inventing numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fedledger.chain.incentives import IncentivesClient
from fedledger.federation.config import TaskConfig
from fedledger.federation.node import MemberNode

__all__ = [
    "DEMO_REWARD_PER_ROUND",
    "DEMO_TRAINER_STAKE",
    "DEMO_VALIDATOR_STAKE",
    "NOT_MEASURED",
    "demo_incentives",
    "incentives_summary",
]

DEMO_REWARD_PER_ROUND = 10**18
"""One unit of the dev chain's currency (1 ETH in wei) per round."""
DEMO_TRAINER_STAKE = 10**17
DEMO_VALIDATOR_STAKE = 5 * 10**16
"""Half the trainer's stake: a hospital slashed for a harmful update (a tenth of its stake) still holds a validator's
stake, so a slash never changes who validates a round, only what the harmful hospital holds."""
DEMO_TRAINER_SLASH_BPS = 1_000
NOT_MEASURED = (
    "secure aggregation masks every update, so no validator can measure one update's contribution and the task "
    "pays no rewards (run with --no-secure-aggregation for rewards by measured contribution)"
)


def demo_incentives(*, secure_aggregation: bool) -> dict[str, Any]:
    """The demo task config's incentive fields: none under secure aggregation (its contract refuses them)."""
    if secure_aggregation:
        return {}
    return {
        "reward_per_round": DEMO_REWARD_PER_ROUND,
        "trainer_stake": DEMO_TRAINER_STAKE,
        "validator_stake": DEMO_VALIDATOR_STAKE,
        "trainer_slash_bps": DEMO_TRAINER_SLASH_BPS,
    }


def incentives_summary(config: TaskConfig, nodes: Sequence[MemberNode]) -> dict[str, Any]:
    """What the task paid, read from its Incentives contract: per hospital its settled contribution in each round
    (the validators' median, in basis points; None when it had no accepted update), its credited total, stake and
    slashes."""
    duties = nodes[0].incentives if nodes else None
    if not config.incentives.enabled or duties is None:
        return {"measured": False, "reason": NOT_MEASURED if config.secure_aggregation else "the task pays no rewards"}
    incentives: IncentivesClient = duties.incentives
    records = incentives.records()
    rounds = sorted({s.round_id for s in records.settlements})
    contributions: dict[str, dict[str, int | None]] = {
        node.address.lower(): dict.fromkeys(map(str, rounds)) for node in nodes
    }
    earned: dict[str, int] = dict.fromkeys(contributions, 0)
    for credit in records.credits:
        member = credit.member.lower()
        if member in contributions:
            contributions[member][str(credit.round_id)] = credit.contribution
            earned[member] += credit.amount
    totals = incentives.totals()
    members = [
        {
            "member": node.name,
            "address": node.address,
            "contributions": contributions[node.address.lower()],
            "earned": earned[node.address.lower()],
            "claimable": incentives.earned(node.address),
            "stake": incentives.stake_of(node.address),
            "slashed": incentives.slashed_of(node.address),
        }
        for node in nodes
    ]
    summary: dict[str, Any] = {
        "measured": True,
        "contract": incentives.address,
        "method": config.incentives.contribution_method,
        "currency": "native" if not config.reward_token else config.reward_token,
        "reward_per_round": config.incentives.reward_per_round,
        "funded": totals.funded,
        "paid_out": totals.allocated,
        "slashed": totals.slashed,
        "pool_left": totals.pool,
        "rounds_settled": rounds,
        "members": members,
    }
    privacy = config.privacy
    if privacy is not None and privacy.mode == "client":
        summary["caveat"] = (
            f"client-level DP adds noise of multiplier {privacy.noise_multiplier:.3g} at clip {privacy.clip_norm:g} to "
            "every update, far above what one round's training moves it: the contributions measured are mostly "
            "that noise, and a free rider's or an attacker's noisy update can be accepted and paid (run with "
            "--dp-epsilon 0 to see contributions without it)"
        )
    return summary
