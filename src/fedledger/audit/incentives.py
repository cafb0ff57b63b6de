"""The payout audit of a task with incentives: every credit, claim and slash re-derived from the ledger's events.

The task's and its Incentives contract's events are replayed together in chain order (block, log index), and the
contract's books are kept alongside: funding and slashes fill the pool, settlements allocate it, claims pay it out.
Checked, each discrepancy named by round and member:

- contributions are posted only for finalized rounds, before they settle and within the contribution window after
  the round's aggregation deadline, once per validator, by a validator that scored the round, for accepted updates
  it was assigned to score (its committee seats, or all but its own), in increasing order, each value in 0..10000;
- a settled round was finalized and settles once, while the window is open only once every scorer posted; its
  budget is min(reward per round, the pool at that point);
- each accepted update is credited once, to its committer, with the median of the values posted for it (0 when
  none) and the floored share ``budget * c / sum(c)`` of the budget; nothing is credited to a rejected update; the
  settlement's total contribution and allocation are the sums of its credits;
- a claim pays exactly the claimer's unclaimed earnings; a slash takes its reason's share of the stake it found, and
  a slash for a harmful update has an update of the member's to answer for: rejected, scored, every score below the
  acceptance threshold, not slashed for before; a withdrawal returns the whole remaining stake; the allocated never
  exceeds funded plus slashed;
- the contract's totals and each member's unclaimed earnings at the audited block are what the replay gives.

What it must trust: :data:`TRUSTED`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from fedledger.audit.discrepancy import Discrepancy
from fedledger.chain.connection import Chain
from fedledger.chain.events import (
    LedgerEvent,
    RoundFinalized,
    ScoresSubmitted,
    UpdateCommitted,
    ValidationClosed,
)
from fedledger.chain.incentive_events import (
    Claimed,
    ContributionsPosted,
    Funded,
    RewardCredited,
    RoundSettled,
    Slashed,
    StakeDeposited,
    StakeWithdrawn,
)
from fedledger.chain.incentives import IncentiveParams, IncentivesClient
from fedledger.chain.task import TrainingTaskClient, indices_of
from fedledger.chain.task_records import SCORE_SCALE
from fedledger.exceptions import FedLedgerError

__all__ = [
    "TRUSTED",
    "ChainFacts",
    "PayoutAudit",
    "audit_payouts",
    "chain_facts",
    "median_contribution",
    "replay_payouts",
]

TRUSTED = (
    "the validators' posted contribution values: each validator measures them on its own private validation split, "
    "so the audit checks that every settled contribution is the median of the values posted and that every payout "
    "follows from the medians, not the measurements themselves (the data-free cgsv method could be re-derived from "
    "the update blobs; this audit does not re-derive it)"
)

Fail = Callable[..., None]


def median_contribution(values: Sequence[int]) -> int:
    """The contract's median of posted values: the middle one, or the floor of the two middle ones' mean; 0 for none."""
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        return 0
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2


@dataclass
class PayoutAudit:
    """What the payout audit checked, and what it found wrong."""

    incentives: str
    rounds_settled: int = 0
    credits_checked: int = 0
    claims_checked: int = 0
    slashes_checked: int = 0
    unsettled_rounds: list[int] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def fail(self, message: str, *, round_id: int | None = None, member: str | None = None) -> None:
        self.discrepancies.append(Discrepancy(round_id, member, None, message))

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "incentives": self.incentives,
            "rounds_settled": self.rounds_settled,
            "credits_checked": self.credits_checked,
            "claims_checked": self.claims_checked,
            "slashes_checked": self.slashes_checked,
            "unsettled_rounds": self.unsettled_rounds,
            "trusted": TRUSTED,
            "discrepancies": [asdict(d) | {"text": str(d)} for d in self.discrepancies],
        }


@dataclass
class _Books:
    """The contract's books as the replay keeps them."""

    funded: int = 0
    slashed: int = 0
    allocated: int = 0
    paid: int = 0
    staked: int = 0
    earned: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stake: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def pool(self) -> int:
        return self.funded + self.slashed - self.allocated


@dataclass(frozen=True)
class ChainFacts:
    """What the replay needs besides the events, read from the chain (:func:`chain_facts`)."""

    times: Mapping[int, int]  # block -> time, for every block where contributions were posted or a round settled
    acceptance_threshold: int  # the task's
    assignments: Mapping[tuple[int, str], Sequence[int]]  # (round, validator) -> the updates it may score


def chain_facts(chain: Chain, task: TrainingTaskClient, incentive_events: Sequence[LedgerEvent]) -> ChainFacts:
    """The block times, the task's acceptance threshold and each poster's assignments (the task's committee draw, or
    every update but its own) the replay of ``incentive_events`` needs."""
    posts = [e for e in incentive_events if isinstance(e, ContributionsPosted)]
    timed = {e.block_number for e in incentive_events if isinstance(e, ContributionsPosted | RoundSettled)}
    return ChainFacts(
        times={block: chain.timestamp(block) for block in sorted(timed)},
        acceptance_threshold=task.params().acceptance_threshold,
        assignments={(e.round_id, e.validator): task.assignments_of(e.round_id, e.validator) for e in posts},
    )


class _PayoutReplay:
    """The task's and the incentives' events, applied in chain order."""

    def __init__(self, params: IncentiveParams, audit: PayoutAudit, facts: ChainFacts) -> None:
        self.params, self.audit, self.fail, self.facts = params, audit, audit.fail, facts
        self.times, self.threshold = facts.times, facts.acceptance_threshold
        self.scores: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.harmful_slashed: set[tuple[int, int]] = set()
        self.window_end: dict[int, int] = {}
        self.books = _Books()
        self.committer: dict[int, dict[int, str]] = defaultdict(dict)
        self.scorers: dict[int, set[str]] = defaultdict(set)
        self.accepted: dict[int, int] = {}
        self.finalized: set[int] = set()
        self.settled: set[int] = set()
        self.posters: dict[int, set[str]] = defaultdict(set)
        self.posted: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.credits: dict[int, list[RewardCredited]] = defaultdict(list)

    def apply(self, e: LedgerEvent) -> None:
        books = self.books
        if isinstance(e, UpdateCommitted):
            self.committer[e.round_id][e.index] = e.member
        elif isinstance(e, ScoresSubmitted):
            self.scorers[e.round_id].add(e.validator)
            for i, score in zip(e.indices, e.scores, strict=False):
                self.scores[(e.round_id, i)].append(score)
        elif isinstance(e, ValidationClosed):
            self.accepted[e.round_id] = e.accepted_mask
            self.window_end[e.round_id] = e.aggregate_deadline + self.params.contribution_window
        elif isinstance(e, RoundFinalized):
            self.finalized.add(e.round_id)
        elif isinstance(e, Funded):
            books.funded += e.amount
        elif isinstance(e, StakeDeposited):
            books.stake[e.member] += e.amount
            books.staked += e.amount
            if books.stake[e.member] != e.stake:
                replayed = books.stake[e.member]
                self.fail(
                    f"stake after a deposit is {e.stake}, its deposits less slashes give {replayed}", member=e.member
                )
        elif isinstance(e, ContributionsPosted):
            self._posted(e)
        elif isinstance(e, RewardCredited):
            self.credits[e.round_id].append(e)
        elif isinstance(e, RoundSettled):
            self._settled(e)
        elif isinstance(e, Claimed):
            self._claimed(e)
        elif isinstance(e, Slashed):
            self._slashed(e)
        elif isinstance(e, StakeWithdrawn):
            self._withdrawn(e)

    def _posted(self, e: ContributionsPosted) -> None:
        r, who = e.round_id, e.validator
        where: dict[str, Any] = {"round_id": r, "member": who}
        if r not in self.finalized:
            self.fail("contributions posted for a round that was not finalized", **where)
        if r in self.settled:
            self.fail("contributions posted after the round settled", **where)
        if who in self.posters[r]:
            self.fail("validator posted contributions twice for the round", **where)
        if who not in self.scorers[r]:
            self.fail("contributions posted by a validator that did not score the round", **where)
        if not self._window_open(e):
            self.fail(f"contributions posted after the contribution window closed at {self.window_end.get(r)}", **where)
        if len(e.indices) != len(e.values):
            self.fail(f"{len(e.indices)} indices posted with {len(e.values)} values", **where)
        self.posters[r].add(who)
        mask = self.accepted.get(r, 0)
        for k, (i, value) in enumerate(zip(e.indices, e.values, strict=False)):
            if k and i <= e.indices[k - 1]:
                self.fail(f"posted indices not increasing at update {i}", **where)
            if not mask >> i & 1:
                self.fail(f"contribution posted for update {i}, which was not accepted", **where)
                continue
            if self.committer[r].get(i) == who:
                self.fail(f"validator posted a contribution for its own update {i}", **where)
            elif i not in self.facts.assignments.get((r, who), ()):
                self.fail(
                    f"validator posted a contribution for update {i}, which it was not assigned to score", **where
                )
            if value > SCORE_SCALE:
                self.fail(f"contribution {value} for update {i} is over {SCORE_SCALE}", **where)
            self.posted[(r, i)].append(value)

    def _settled(self, e: RoundSettled) -> None:
        r, books = e.round_id, self.books
        credits = self.credits.pop(r, [])
        if r not in self.finalized:
            self.fail("settled a round that was not finalized", round_id=r)
        if r in self.settled:
            self.fail("round settled twice", round_id=r)
        posted, scored = len(self.posters[r]), len(self.scorers[r])
        if self._window_open(e) and posted < scored:
            self.fail(
                f"settled while the contribution window was open, {posted} of {scored} scorers posted", round_id=r
            )
        self.settled.add(r)
        self.audit.rounds_settled += 1
        accepted = indices_of(self.accepted.get(r, 0))
        medians = {i: median_contribution(self.posted[(r, i)]) for i in accepted}
        total = sum(medians.values())
        budget = min(self.params.reward_per_round, books.pool)
        if e.budget != budget:
            self.fail(
                f"round budget {e.budget} is not min(reward per round {self.params.reward_per_round}, "
                f"pool {books.pool}) = {budget}",
                round_id=r,
            )
        if e.total_contribution != total:
            self.fail(f"total contribution {e.total_contribution}, the posted medians sum to {total}", round_id=r)
        self._check_credits(r, credits, medians, budget, total)
        credited = sum(c.amount for c in credits)
        if e.allocated != credited:
            self.fail(f"settlement allocated {e.allocated}, its credits sum to {credited}", round_id=r)
        books.allocated += e.allocated
        if books.allocated > books.funded + books.slashed:
            self.fail(
                f"allocated {books.allocated} exceeds funded {books.funded} plus slashed {books.slashed}", round_id=r
            )

    def _window_open(self, e: ContributionsPosted | RoundSettled) -> bool:
        """Whether the round's contribution window was still open when ``e`` happened (by its block's time)."""
        end = self.window_end.get(e.round_id)
        return end is not None and self.times[e.block_number] <= end

    def _check_credits(
        self, r: int, credits: list[RewardCredited], medians: dict[int, int], budget: int, total: int
    ) -> None:
        seen: set[int] = set()
        for c in credits:
            self.audit.credits_checked += 1
            self.books.earned[c.member] += c.amount
            where: dict[str, Any] = {"round_id": r, "member": c.member}
            if c.index not in medians:
                self.fail(f"credited {c.amount} for update {c.index}, which was not accepted", **where)
                continue
            if c.index in seen:
                self.fail(f"update {c.index} credited twice", **where)
            seen.add(c.index)
            committer = self.committer[r].get(c.index)
            if c.member != committer:
                self.fail(f"update {c.index} credited to the wrong member: its committer is {committer}", **where)
            median = medians[c.index]
            if c.contribution != median:
                posted = sorted(self.posted[(r, c.index)])
                self.fail(
                    f"update {c.index} credited with contribution {c.contribution}, the median of the values "
                    f"posted {posted} is {median}",
                    **where,
                )
            share = budget * median // total if total else 0
            if c.amount != share:
                self.fail(
                    f"update {c.index} credited {c.amount}, its share of the budget is {budget} * {median} // "
                    f"{total} = {share}",
                    **where,
                )
        for i in sorted(set(medians) - seen):
            self.fail(f"accepted update {i} was not credited", round_id=r, member=self.committer[r].get(i))

    def _claimed(self, e: Claimed) -> None:
        self.audit.claims_checked += 1
        books = self.books
        owed = books.earned[e.member]
        if e.amount != owed:
            self.fail(f"claimed {e.amount}, its unclaimed earnings were {owed}", member=e.member)
        books.earned[e.member] = max(owed - e.amount, 0)
        books.paid += e.amount
        if books.paid > books.allocated:
            self.fail(f"paid {books.paid} exceeds allocated {books.allocated}", member=e.member)

    def _slashed(self, e: Slashed) -> None:
        self.audit.slashes_checked += 1
        books = self.books
        bps = {"harmful update": self.params.trainer_slash_bps, "distrusted validator": self.params.validator_slash_bps}
        stake = books.stake[e.member]
        if e.reason not in bps:
            self.fail(f"slashed {e.amount} for an unknown reason {e.reason!r}", member=e.member)
        elif e.amount != stake * bps[e.reason] // SCORE_SCALE:
            expected = stake * bps[e.reason] // SCORE_SCALE
            self.fail(
                f"slashed {e.amount} for {e.reason}: its share of the stake {stake} is {expected}", member=e.member
            )
        if e.reason == "harmful update":
            self._check_harm(e)
        books.stake[e.member] = stake - e.amount
        books.staked -= e.amount
        books.slashed += e.amount

    def _check_harm(self, e: Slashed) -> None:
        """The event does not name the update, so the slash is matched to the member's earliest one that the rule
        allows (rejected, scored, every score below the threshold) and that no earlier slash used."""
        for r, updates in sorted(self.committer.items()):
            for i, member in sorted(updates.items()):
                scores = self.scores.get((r, i), [])
                rejected = not self.accepted.get(r, 0) >> i & 1
                harmful = rejected and scores and all(score < self.threshold for score in scores)
                if member == e.member and harmful and (r, i) not in self.harmful_slashed:
                    self.harmful_slashed.add((r, i))
                    return
        self.fail(
            f"slashed {e.amount} for a harmful update, but none of its updates was rejected with every score below "
            f"the acceptance threshold {self.threshold} (or each such one was slashed for already)",
            member=e.member,
        )

    def _withdrawn(self, e: StakeWithdrawn) -> None:
        books = self.books
        if e.amount != books.stake[e.member]:
            self.fail(f"withdrew {e.amount}, its remaining stake was {books.stake[e.member]}", member=e.member)
        books.staked -= e.amount
        books.stake[e.member] = 0

    def finish(self) -> None:
        for r, credits in sorted(self.credits.items()):
            for c in credits:
                self.fail(f"update {c.index} credited {c.amount} without a settlement", round_id=r, member=c.member)
        self.audit.unsettled_rounds = sorted(self.finalized - self.settled)


def replay_payouts(
    params: IncentiveParams,
    task_events: Sequence[LedgerEvent],
    incentive_events: Sequence[LedgerEvent],
    address: str,
    facts: ChainFacts,
) -> tuple[PayoutAudit, _Books]:
    """Replay the events of a task and of its incentives together, in chain order; the audit and the books."""
    audit = PayoutAudit(incentives=address)
    replay = _PayoutReplay(params, audit, facts)
    for event in sorted([*task_events, *incentive_events], key=lambda e: (e.block_number, e.log_index)):
        replay.apply(event)
    replay.finish()
    return audit, replay.books


def audit_payouts(
    chain: Chain, task: TrainingTaskClient, task_events: Sequence[LedgerEvent], *, block: int
) -> PayoutAudit:
    """The payout audit of ``task`` (whose stake gate is its Incentives contract), up to ``block``: ``task_events``
    are the task's events up to that block. Never raises for a discrepancy."""
    gate = task.params().stake_gate
    incentives = IncentivesClient(chain, gate)
    try:
        bound, params = incentives.task_address, incentives.params()
        events = incentives.events(to_block=block)
    except FedLedgerError as exc:
        audit = PayoutAudit(incentives=gate)
        audit.fail(f"the task's stake gate {gate} is not a readable Incentives contract: {exc}")
        return audit
    if bound != task.address:
        audit = PayoutAudit(incentives=gate)
        audit.fail(f"the task's stake gate {gate} pays for another task ({bound})")
        return audit
    audit, books = replay_payouts(params, task_events, events, incentives.address, chain_facts(chain, task, events))
    _check_state(incentives, books, audit, block)
    return audit


def _check_state(incentives: IncentivesClient, books: _Books, audit: PayoutAudit, block: int) -> None:
    """The contract's own books at ``block`` must be what the replay of its events gives."""
    totals = incentives.totals(block=block)
    for name in ("funded", "slashed", "allocated", "paid", "staked"):
        on_chain, replayed = getattr(totals, name), getattr(books, name)
        if on_chain != replayed:
            audit.fail(f"the contract's total {name} is {on_chain}, its events give {replayed}")
    earned = incentives.contract.functions.earned
    for member, owed in sorted(books.earned.items()):
        on_chain = int(incentives.chain.call(earned(member), block=block))
        if on_chain != owed:
            audit.fail(f"the contract holds {on_chain} unclaimed earnings, its events give {owed}", member=member)
