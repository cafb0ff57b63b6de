"""SecureTrainingTask with a check committee: OPEN -> VALIDATE (committee outcomes) -> AGGREGATE.

The committee is drawn at round opening from the aggregators with a key-agreement key; the round aggregates
the set a strict majority of the committee posted. Each refusal (an outsider to the committee, the wrong
phase, a second post, a set naming unknown updates) carries the contract's exact reason and leaves the chain
unmoved; a minority that disagrees is outvoted; no majority aborts the round with its reason, names the
silent committee members, and the next round opens on the same model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import Phase, TrainingTaskClient
from fedledger.chain.events import RoundAborted
from fedledger.chain.masked_events import CheckAbortPosted, CheckerSilent, CheckOutcomePosted, ChecksAccepted
from fedledger.exceptions import DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized

MASKED_PARAMS = replace(DEFAULT_PARAMS, secagg_threshold=1, committee_size=3)


@pytest.fixture
def masked(ledger: Ledger) -> Iterator[Ledger]:
    """A secure task with a committee of 3, every member with a key-agreement key."""
    for i, member in enumerate(ledger.members):
        ledger.consortium.as_(member).update_metadata(
            cert_fingerprint=h(f"cert-{i}"), kx_public_key=h(f"kx-{i}"), store_uri=""
        )
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, MASKED_PARAMS)
    yield replace(ledger, task=task, params=MASKED_PARAMS)


def _as(ledger: Ledger, address: str) -> TrainingTaskClient:
    account = next(m for m in ledger.members if m.address == address)
    return ledger.task.as_(account)


def _to_checks(ledger: Ledger) -> tuple[int, list[str]]:
    """Open a round, commit four bundles, close commits: the round is in its masked checks."""
    task = ledger.task.as_(ledger.members[0])
    r = task.open_round()
    assert ledger.task.round(r).phase is Phase.OPEN
    committee = ledger.task.check_committee(r)
    for i, member in enumerate(ledger.members):
        ledger.task.as_(member).commit_update(r, h(f"bundle-{r}-{i}"), 10 + i)
    assert task.close_commits(r) is Phase.VALIDATE
    return r, committee


def _state(ledger: Ledger) -> tuple[object, ...]:
    r = max(ledger.task.current_round, 1)
    return (ledger.chain.block_number, ledger.task.round(r), tuple(ledger.task.check_posts(r)))


def test_a_majority_outcome_sets_the_accepted_set_and_the_round_finalizes(masked: Ledger) -> None:
    ledger = masked
    assert ledger.task.params().committee_size == 3
    r, committee = _to_checks(ledger)
    members = {m.address for m in ledger.members}
    assert len(set(committee)) == 3 and set(committee) <= members
    # A minority posts another outcome; the majority's set (updates 0, 1, 3: update 2 failed) wins.
    _as(ledger, committee[0]).post_check_outcome(r, 0b1111, h("outcome-lenient"))
    _as(ledger, committee[1]).post_check_outcome(r, 0b1011, h("outcome"))
    assert ledger.task.round(r).phase is Phase.VALIDATE
    assert ledger.task.accepted_outcome(r) is None
    _as(ledger, committee[2]).post_check_outcome(r, 0b1011, h("outcome"))
    info = ledger.task.round(r)
    assert info.phase is Phase.AGGREGATE
    assert info.accepted == [0, 1, 3]
    assert ledger.task.accepted_outcome(r) == h("outcome")
    events = [e for e in ledger.task.events() if getattr(e, "round_id", None) == r]
    accepted = [e for e in events if isinstance(e, ChecksAccepted)]
    assert [(e.outcome_hash, e.accepted_mask, e.num_accepted) for e in accepted] == [(h("outcome"), 0b1011, 3)]
    assert [e.votes for e in events if isinstance(e, CheckOutcomePosted)] == [1, 1, 2]
    assert not [e for e in events if isinstance(e, CheckerSilent)]
    # Aggregation works as in any round: identical proposals over that set finalize it.
    assert not ledger.task.as_(ledger.members[0]).propose_aggregate(r, h("model-1"), info.accepted_mask)
    assert ledger.task.as_(ledger.members[1]).propose_aggregate(r, h("model-1"), info.accepted_mask)
    assert ledger.task.round(r).phase is Phase.FINALIZED


def test_posts_are_refused_by_reason(masked: Ledger) -> None:
    ledger = masked
    task = ledger.task.as_(ledger.members[0])
    r = task.open_round()
    committee = ledger.task.check_committee(r)
    outsider = next(m for m in ledger.members if m.address not in committee)
    state = lambda: _state(ledger)  # noqa: E731
    # Wrong phase: the round is still taking commitments.
    refused(
        state,
        InvalidState,
        "task: round not in masked checks",
        _as(ledger, committee[0]).post_check_outcome,
        r,
        1,
        h("o"),
    )
    for i, member in enumerate(ledger.members):
        ledger.task.as_(member).commit_update(r, h(f"bundle-{r}-{i}"), 10)
    task.close_commits(r)
    refused(
        state,
        NotAuthorized,
        "task: caller is not on the check committee",
        ledger.task.as_(outsider).post_check_outcome,
        r,
        1,
        h("o"),
    )
    refused(
        state,
        InvalidArgument,
        "task: accepted set names unknown updates",
        _as(ledger, committee[0]).post_check_outcome,
        r,
        0b10000,
        h("o"),
    )
    _as(ledger, committee[0]).post_check_outcome(r, 0b0111, h("o"))
    for post in (_as(ledger, committee[0]).post_check_outcome, _as(ledger, committee[0]).post_check_abort):
        args = (r, 0b0111, h("o")) if post.__name__ == "post_check_outcome" else (r, h("abort"))
        refused(state, InvalidState, "task: outcome already posted", post, *args)
    refused(state, InvalidState, "task: check phase still running", task.close_checks, r)
    ledger.chain.advance_time(MASKED_PARAMS.validate_duration + 1)
    refused(
        state,
        DeadlinePassed,
        "task: check deadline passed",
        _as(ledger, committee[1]).post_check_outcome,
        r,
        0b0111,
        h("o"),
    )


def test_no_majority_aborts_the_round_names_the_silent_member_and_the_next_round_runs(masked: Ledger) -> None:
    ledger = masked
    r, committee = _to_checks(ledger)
    # Committee member 2 stops answering: the other two could not finish and post their aborts.
    _as(ledger, committee[0]).post_check_abort(r, h("abort-0"))
    _as(ledger, committee[1]).post_check_abort(r, h("abort-1"))
    assert ledger.task.round(r).phase is Phase.VALIDATE  # two identical aborts are no outcome
    ledger.chain.advance_time(MASKED_PARAMS.validate_duration + 1)
    ledger.task.as_(ledger.members[0]).close_checks(r)
    assert ledger.task.round(r).phase is Phase.ABORTED
    events = [e for e in ledger.task.events() if getattr(e, "round_id", None) == r]
    assert [e.reason for e in events if isinstance(e, RoundAborted)] == [
        "masked checks: no majority outcome from the committee"
    ]
    assert [e.checker for e in events if isinstance(e, CheckerSilent)] == [committee[2]]
    assert [e.checker for e in events if isinstance(e, CheckAbortPosted)] == committee[:2]
    r2, _ = _to_checks(ledger)
    assert r2 == r + 1 and ledger.task.round(r2).global_model == ledger.task.round(r).global_model


def test_a_round_without_enough_keyed_aggregators_aborts_by_name(ledger: Ledger) -> None:
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, MASKED_PARAMS)
    r = task.as_(ledger.members[0]).open_round()
    assert task.round(r).phase is Phase.ABORTED
    reasons = [e.reason for e in task.events() if isinstance(e, RoundAborted)]
    assert reasons == ["too few aggregators with keys for the check committee"]


def test_an_even_or_oversized_committee_is_refused(ledger: Ledger) -> None:
    for size in (2, 4, 17):
        with pytest.raises(InvalidArgument, match="check committee size out of range"):
            TrainingTaskClient.deploy(
                ledger.chain, ledger.admin, ledger.consortium.address, replace(MASKED_PARAMS, committee_size=size)
            )


def test_a_majority_that_passes_too_few_updates_aborts_the_round(masked: Ledger) -> None:
    ledger = masked
    r, committee = _to_checks(ledger)
    for checker in committee[:2]:
        _as(ledger, checker).post_check_outcome(r, 0b0100, h("outcome"))  # one update passed, min_commitments 2
    assert ledger.task.round(r).phase is Phase.ABORTED
    events = [e for e in ledger.task.events() if getattr(e, "round_id", None) == r]
    assert [e.reason for e in events if isinstance(e, RoundAborted)] == ["too few updates passed the masked checks"]
    assert [e.num_accepted for e in events if isinstance(e, ChecksAccepted)] == [1]
