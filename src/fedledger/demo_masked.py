"""``fedledger demo --secure-aggregation --masked-checks``: the secure task screens masked updates on chain.

A committee of aggregators drawn by the contract checks every masked update on secret shares (each committee
member runs its MPyC party as its own process): its L2 norm against the task's update norm bound and, with a
minimum cosine, its direction against each committee member's own reference update (its validation data's pull
from the round's model; the task's ``masked_reference``), a majority deciding. Only the pass/fail bit per update and
the sum of the passing updates are revealed; the contract aggregates the set a majority of the committee posted.

What the demo reports of each round is read back from the chain (the accepted set, the committee, the reasons the
committee flagged) and from the outcome blob the majority posted, so the summary says only what the ledger holds.

The demo's ``--attack`` hospitals run the honest node's pipeline, which clips every update to the bound: a
sign-flipped update at the largest admitted norm passes a norm check by construction. So that the summary shows
what the checks do catch, ``unclipped`` hospitals skip clipping and send their honest update boosted
:data:`UNCLIPPED_BOOST` times (Bhagoji et al.'s explicit boosting, ICML 2019), far outside the bound.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedledger.chain.task import Phase, RoundInfo, TrainingTaskClient
from fedledger.demo_masked_options import UNCLIPPED_BOOST
from fedledger.federation import MemberNode
from fedledger.learning.update import Tensors

__all__ = ["UnclippedMember", "masked_round_details", "masked_screening_summary"]


class UnclippedMember(MemberNode):
    """A hospital that skips clipping: it shares its honest update boosted :data:`UNCLIPPED_BOOST` times."""

    behavior_name = f"unclipped, boosted {UNCLIPPED_BOOST}x"

    def __init__(self, base: MemberNode) -> None:
        super().__init__(
            name=base.name,
            account=base.account,
            task=base.task,
            store=base.store,
            data=base.data,
            on_event=base.on_event,
            state_dir=base._state_dir,
        )

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]:
        update, meta, n, epsilon = super().local_update(info)
        # Fixed-point values are two's complement in uint64: scale them as signed integers.
        boosted = {k: (v.view(np.int64) * UNCLIPPED_BOOST).view(np.uint64) for k, v in update.items()}
        return boosted, meta, n, epsilon


def _check_failed(reason: str, *, direction: bool) -> str:
    """Which check an update failed, from the committee's flag (its norm and direction bits are revealed as one)."""
    if "failed the norm or direction check" in reason:
        return "norm bound or direction" if direction else "norm bound"
    if "do not reconstruct" in reason:
        return "inconsistent shares"
    return "malformed shares" if "malformed" in reason else "other"


def masked_round_details(
    task: TrainingTaskClient,
    info: RoundInfo,
    row: Mapping[str, Any],
    names: Mapping[str, str],
    *,
    direction: bool,
    committee_reference: bool = False,
) -> dict[str, Any]:
    """What the round's check committee decided, from the chain: who passed (the accepted set the contract
    derived), who was rejected and by which check, the committee and the outcome blob's hash."""
    r = info.round_id
    # The committee members' own references exist in every round; the previous round's global update not in the first.
    direction = direction and (committee_reference or r > 1)
    finalized = info.phase is Phase.FINALIZED
    updates = task.updates(r)
    accepted = {updates[i].member for i in info.accepted} if finalized else set()
    rejected = [
        {**rej, "check": _check_failed(rej["reason"], direction=direction)}
        for rej in row["rejected"]
        if rej["address"] not in accepted
    ]
    return {
        "committee": [names.get(m, m) for m in task.check_committee(r)],
        "outcome_hash": task.accepted_outcome(r) if finalized else None,
        "passed": sorted(names.get(m, m) for m in accepted),
        "rejected": rejected,
        # Only the pass/fail bit per update and the sum of the passing updates left the committee's MPC.
        "updates_seen_in_clear": 0,
        "direction_checked": direction,
    }


def masked_screening_summary(
    rounds: Sequence[Mapping[str, Any]], attackers: Mapping[str, str], verification: Mapping[str, Any]
) -> dict[str, Any]:
    """Per attacking hospital (name -> behaviour), in how many rounds its update passed or failed the masked
    checks, and whether the audit re-checked the committee's transcripts of every finalized round."""
    per_member: dict[str, dict[str, Any]] = {
        name: {"behavior": behavior, "passed_rounds": [], "rejected_rounds": []} for name, behavior in attackers.items()
    }
    for row in rounds:
        masked = row.get("masked")
        if not masked:
            continue
        rejected = {rej["member"] for rej in masked["rejected"]}
        for name, outcome in per_member.items():
            if name in masked["passed"]:
                outcome["passed_rounds"].append(row["round"])
            elif name in rejected:
                outcome["rejected_rounds"].append(row["round"])
    finalized = [row["round"] for row in rounds if row.get("masked", {}).get("outcome_hash")]
    return {
        "per_update_validation": "masked checks",
        "attackers": per_member,
        "attackers_kept_out_every_round": bool(rounds) and all(not o["passed_rounds"] for o in per_member.values()),
        "transcripts_rechecked_rounds": finalized if verification.get("ok") else [],
    }
