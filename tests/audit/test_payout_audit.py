"""The payout audit: a task with incentives whose rounds settled, a slash and a claim verifies; each forged record
(a credit, a settlement, a posted value, a claim, a slash) is named by round and member, and the rest still checked.

The contract cannot be made to pay wrongly, so the forgeries are made on the event lists the audit replays (and, for
the cross-check against the contract's books, on what the client reads): each one would pass if its check were
removed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from conftest import Ledger
from fedledger.audit import PayoutAudit, audit_payouts, verify_task
from fedledger.audit.incentives import ChainFacts, chain_facts, median_contribution, replay_payouts
from fedledger.chain import IncentivesClient, TrainingTaskClient
from fedledger.chain.events import LedgerEvent, ValidationClosed
from fedledger.chain.incentive_events import Claimed, ContributionsPosted, RewardCredited, RoundSettled, Slashed
from fedledger.store import BlobStore
from helpers.incentives import PARAMS, STAKE, Rewarded, deploy_rewarded, deposit, fund, honest, post_all, scored_round


@dataclass
class Scenario:
    rw: Rewarded
    task_events: list[LedgerEvent]
    incentive_events: list[LedgerEvent]
    block: int
    facts: ChainFacts

    def member(self, i: int) -> str:
        return self.rw.ledger.members[i].address


@pytest.fixture(scope="module")
def settled(deployed: Ledger) -> Iterator[Scenario]:
    """Round 1: update 3 rejected (its trainer slashed), the validators' values differ; round 2: all accepted;
    members[0] claims; round 3 finalized but not settled. Built once: the tests only read it (and what one of them
    deploys after it changes nothing they read); the chain goes back to its state before, after the module."""
    snapshot = deployed.chain.snapshot()
    try:
        yield _scenario(deployed)
    finally:
        deployed.chain.revert(snapshot)


def _scenario(ledger: Ledger) -> Scenario:
    rw = deploy_rewarded(ledger)
    ledger = rw.ledger  # its task is the stake-gated one
    fund(rw, 3_000)
    scores = honest()
    for j in (0, 1, 2):
        scores[j][3] = 1_000
    r1 = scored_round(rw, scores)
    assert ledger.task.round(r1).accepted_mask == 0b0111
    rows = {0: {1: 2_000, 2: 3_000}, 1: {0: 1_000, 2: 5_000}, 2: {0: 3_000, 1: 2_500}, 3: {0: 2_000, 1: 500, 2: 100}}
    for j, values in rows.items():
        rw.inc(j).post_contributions(r1, values)
    rw.incentives.settle_round(r1)
    rw.incentives.as_(ledger.outsider).slash_trainer(r1, 3)
    deposit(rw, 3, STAKE // 2)  # back to the stake a trainer needs
    r2 = scored_round(rw, honest())
    post_all(rw, r2, [1_000, 2_000, 3_000, 4_000])
    rw.incentives.settle_round(r2)
    rw.inc(0).claim()
    scored_round(rw, honest())
    block = ledger.chain.block_number
    incentive_events = rw.incentives.events(to_block=block)
    facts = chain_facts(ledger.chain, ledger.task, incentive_events)
    return Scenario(rw, ledger.task.events(to_block=block), incentive_events, block, facts)


def _replay(s: Scenario, incentive_events: list[LedgerEvent], facts: ChainFacts | None = None) -> PayoutAudit:
    params, address = s.rw.incentives.params(), s.rw.incentives.address
    audit, _ = replay_payouts(params, s.task_events, incentive_events, address, facts or s.facts)
    return audit


def test_a_clean_task_with_incentives_verifies(settled: Scenario) -> None:
    rw = settled.rw
    audit = audit_payouts(rw.ledger.chain, rw.ledger.task, settled.task_events, block=settled.block)
    assert audit.discrepancies == []
    assert audit.ok
    assert (audit.rounds_settled, audit.credits_checked, audit.claims_checked, audit.slashes_checked) == (2, 7, 1, 1)
    assert audit.unsettled_rounds == [3]
    # Round 1's medians (1000 and 3000 -> 2000, 2000 2500 500 -> 2000, 3000 5000 100 -> 3000) split 1000.
    credits = [e for e in settled.incentive_events if isinstance(e, RewardCredited) and e.round_id == 1]
    assert [(c.index, c.contribution, c.amount) for c in credits] == [(0, 2_000, 285), (1, 2_000, 285), (2, 3_000, 428)]
    assert audit.to_json()["trusted"].startswith("the validators' posted contribution values")


def test_the_median_is_the_contracts() -> None:
    assert median_contribution([]) == 0
    assert median_contribution([7]) == 7
    assert median_contribution([10, 9_000, 10]) == 10
    assert median_contribution([1_000, 3_000]) == 2_000
    assert median_contribution([1, 2]) == 1  # floor of the two middle values' mean


def _first(events: list[LedgerEvent], kind: type[Any], **match: Any) -> int:
    return next(
        k
        for k, e in enumerate(events)
        if isinstance(e, kind) and all(getattr(e, name) == value for name, value in match.items())
    )


def _forge(events: list[LedgerEvent], kind: type[Any], match: dict[str, Any], **changes: Any) -> list[LedgerEvent]:
    forged = list(events)
    k = _first(forged, kind, **match)
    forged[k] = replace(forged[k], **changes)
    return forged


def _credit_rejected(events: list[LedgerEvent], member: str) -> list[LedgerEvent]:
    """Round 1's credit of update 2 re-aimed at the rejected update 3, its trainer paid for harm."""
    return _forge(events, RewardCredited, {"round_id": 1, "index": 2}, index=3, member=member)


def _slashed_twice(events: list[LedgerEvent]) -> list[LedgerEvent]:
    """Member 3's slash for its one harmful update, repeated in a later block (of half its remaining stake)."""
    k = _first(events, Slashed)
    slash = events[k]
    again = replace(slash, amount=slash.amount // 2, block_number=slash.block_number + 1, log_index=0)
    return [*events[: k + 1], again, *events[k + 1 :]]


FORGERIES: dict[str, Any] = {
    # name: (forge(events, scenario), expected round, expected member index or None, text in the message)
    "credit amount": (
        lambda ev, s: _forge(ev, RewardCredited, {"round_id": 2, "index": 1}, amount=201),
        2, 1, "its share of the budget is 1000 * 2000 // 10000 = 200",
    ),
    "credit to a rejected update": (lambda ev, s: _credit_rejected(ev, s.member(3)), 1, 3, "which was not accepted"),
    "credit to another member": (
        lambda ev, s: _forge(ev, RewardCredited, {"round_id": 2, "index": 1}, member=s.member(2)),
        2, 2, "credited to the wrong member",
    ),
    "credited contribution": (
        lambda ev, s: _forge(ev, RewardCredited, {"round_id": 1, "index": 0}, contribution=3_000),
        1, 0, "the median of the values posted [1000, 2000, 3000] is 2000",
    ),
    "poster that did not score": (
        lambda ev, s: _forge(
            ev, ContributionsPosted, {"round_id": 2, "validator": s.member(3)}, validator=s.rw.ledger.outsider.address
        ),
        2, None, "did not score the round",
    ),
    "settlement budget": (
        lambda ev, s: _forge(ev, RoundSettled, {"round_id": 2}, budget=900),
        2, None, "round budget 900 is not min(reward per round 1000, pool 2052) = 1000",
    ),
    "claim over earnings": (
        lambda ev, s: _forge(ev, Claimed, {}, amount=10_000),
        None, 0, "claimed 10000, its unclaimed earnings were",
    ),
    "slash share": (
        lambda ev, s: _forge(ev, Slashed, {}, amount=STAKE),
        None, 3, f"its share of the stake {STAKE} is {STAKE * PARAMS.trainer_slash_bps // 10_000}",
    ),
    "slash of a member without a harmful update": (
        lambda ev, s: _forge(ev, Slashed, {}, member=s.member(0)),
        None, 0, "slashed 50 for a harmful update, but none of its updates was rejected with every score below",
    ),
    "a second slash for the same harmful update": (
        lambda ev, s: _slashed_twice(ev),
        None, 3, "or each such one was slashed for already",
    ),
}  # fmt: skip


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_forged_record_is_named_by_round_and_member(settled: Scenario, forgery: str) -> None:
    forge, round_id, member, text = FORGERIES[forgery]
    clean = _replay(settled, settled.incentive_events)
    assert clean.ok, clean.discrepancies
    forged = _replay(settled, forge(settled.incentive_events, settled))
    named = [d for d in forged.discrepancies if text in d.message]
    assert named, forged.discrepancies
    assert named[0].round_id == round_id
    if member is not None:
        assert named[0].member == settled.member(member)
    # The verdict on the rest still comes out: every settlement and credit was still replayed.
    assert (forged.rounds_settled, forged.credits_checked) == (2, 7)


def test_a_posted_value_changes_the_median_the_credit_must_follow(settled: Scenario) -> None:
    """Update 2 of round 1 had 3000, 5000, 100 posted (median 3000): with 50 posted instead of 5000 its median is
    100, and neither its credit nor the round's total follows any more."""
    forged = _forge(settled.incentive_events, ContributionsPosted, {"round_id": 1, "validator": settled.member(1)},
                    values=(1_000, 50))  # fmt: skip
    audit = _replay(settled, forged)
    texts = [str(d) for d in audit.discrepancies]
    assert any("update 2 credited with contribution 3000, the median of the values posted [50, 100, 3000]" in t
               for t in texts), texts  # fmt: skip
    assert any("total contribution 7000, the posted medians sum to 4100" in t for t in texts), texts


def test_posts_and_settlements_keep_to_the_contribution_window(settled: Scenario) -> None:
    """A round settled early must have every scorer's post; a post must come before the window closed."""
    events = settled.incentive_events
    dropped = _first(events, ContributionsPosted, round_id=2, validator=settled.member(3))
    early = _replay(settled, events[:dropped] + events[dropped + 1 :])
    assert any(
        d.round_id == 2 and d.message == "settled while the contribution window was open, 3 of 4 scorers posted"
        for d in early.discrepancies
    ), early.discrepancies
    post = events[dropped]
    closed = next(e for e in settled.task_events if isinstance(e, ValidationClosed) and e.round_id == 2)
    times = {**settled.facts.times, post.block_number: closed.aggregate_deadline + PARAMS.contribution_window + 1}
    late = _replay(settled, events, replace(settled.facts, times=times))
    assert [str(d) for d in late.discrepancies] == [
        f"round 2, member {settled.member(3)}: contributions posted after the contribution window closed at "
        f"{closed.aggregate_deadline + PARAMS.contribution_window}"
    ]


def test_a_validator_posts_only_for_the_updates_it_was_assigned(settled: Scenario) -> None:
    """Without committees a validator is assigned every update but its own: read from the task, and checked."""
    who = settled.member(1)
    assert settled.facts.assignments[(2, who)] == [0, 2, 3]
    narrowed = {**settled.facts.assignments, (2, who): [0, 3]}  # as if a committee had left update 2 out
    audit = _replay(settled, settled.incentive_events, replace(settled.facts, assignments=narrowed))
    assert [str(d) for d in audit.discrepancies] == [
        f"round 2, member {who}: validator posted a contribution for update 2, which it was not assigned to score"
    ]


def test_the_contracts_books_must_match_its_events(settled: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    """A claim left out of the events the audit reads: the contract still says it paid, and the audit names both."""
    rw = settled.rw
    events = IncentivesClient.events

    def without_claims(self: IncentivesClient, **kwargs: Any) -> list[LedgerEvent]:
        return [e for e in events(self, **kwargs) if not isinstance(e, Claimed)]

    monkeypatch.setattr(IncentivesClient, "events", without_claims)
    audit = audit_payouts(rw.ledger.chain, rw.ledger.task, settled.task_events, block=settled.block)
    texts = [str(d) for d in audit.discrepancies]
    assert any("the contract's total paid is" in t for t in texts), texts
    assert any(f"member {settled.member(0)}: the contract holds 0 unclaimed earnings" in t for t in texts), texts


def test_verify_task_audits_the_payouts_and_only_of_a_task_with_incentives(settled: Scenario, tmp_path: Path) -> None:
    """The test tasks' config is no blob in the store, so the rounds are not re-derived: the payouts still are."""
    rw, store = settled.rw, BlobStore(tmp_path / "store")
    report = verify_task(rw.ledger.chain, rw.ledger.consortium.address, rw.ledger.task.address, store)
    assert report.payouts is not None and report.payouts.ok
    assert report.payouts.rounds_settled == 2
    assert report.to_json()["payouts"]["credits_checked"] == 7
    (config_missing,) = report.discrepancies
    assert config_missing.message.startswith("task config unavailable or invalid")
    plain = TrainingTaskClient.deploy(
        rw.ledger.chain,
        rw.ledger.admin,
        rw.ledger.consortium.address,
        replace(rw.ledger.params, stake_gate="0x" + "00" * 20),
    )
    assert verify_task(rw.ledger.chain, rw.ledger.consortium.address, plain.address, store).payouts is None
