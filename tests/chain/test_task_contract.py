"""TrainingTask contract: every state-changing function, its success and its refusals,
and the round machine (commit -> validate -> aggregate -> finalized / aborted).

Each refusal asserts the typed error, the contract's exact revert string, and that
the chain did not move (a refused call is caught before anything is sent).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from conftest import DEFAULT_PARAMS, MEMBER_ROLES, Ledger, h, refused
from fedledger.chain import ZERO_HASH, Phase, Role, TaskParams, TrainingTaskClient
from fedledger.chain.events import (
    CommitsClosed,
    RoundAborted,
    RoundOpened,
    ScoresSubmitted,
    UpdateCommitted,
)
from fedledger.exceptions import (
    BadInput,
    DeadlinePassed,
    InvalidArgument,
    InvalidState,
    NotAuthorized,
)
from helpers.task import (
    admin,
    events_since,
    finalize,
    honest_scores,
    open_with_commits,
    outsider,
    revoke,
    set_roles,
    state_of,
    t,
    to_validation,
)

# -- constructor -------------------------------------------------------------------


def test_deploy_task(ledger: Ledger) -> None:
    params = TaskParams(
        config_hash=h("cfg-2"),
        initial_model=h("m0-2"),
        min_commitments=3,
        commit_duration=60,
        validate_duration=70,
        aggregate_duration=80,
        acceptance_threshold=10_000,
        proposal_quorum=1,
        max_rounds=5,
    )
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    assert task.params() == params
    assert task.current_round == 0
    assert task.latest_model == h("m0-2")
    assert task.consortium_address == ledger.consortium.address
    assert ledger.chain.call(task.contract.functions.creator()) == ledger.admin.address
    assert task.model_history() == {}
    assert ledger.task.params() == DEFAULT_PARAMS


def test_deploy_task_refused_for_non_admins(ledger: Ledger) -> None:
    # A member promoted to admin and then revoked is no admin any more.
    ledger.consortium.as_(ledger.admin).propose_roles(ledger.members[3].address, MEMBER_ROLES | Role.ADMIN)
    revoke(ledger, 3)
    chain = ledger.chain
    for who in (ledger.members[0], ledger.outsider, ledger.members[3]):
        # Refused before sending, on both backends: nothing mined, no nonce or gas spent.
        refused(
            lambda: (chain.block_number, chain.w3.eth.get_transaction_count(who.address)),  # noqa: B023
            NotAuthorized,
            "task: caller is not an admin",
            TrainingTaskClient.deploy,
            chain,
            who,
            ledger.consortium.address,
            DEFAULT_PARAMS,
        )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"config_hash": ZERO_HASH}, "task: zero config hash"),
        ({"initial_model": ZERO_HASH}, "task: zero model hash"),
        ({"min_commitments": 0}, "task: min commitments out of range"),
        ({"min_commitments": 1025}, "task: min commitments out of range"),  # over MAX_UPDATES
        ({"commit_duration": 0}, "task: zero duration"),
        ({"validate_duration": 0}, "task: zero duration"),
        ({"aggregate_duration": 0}, "task: zero duration"),
        ({"acceptance_threshold": 10_001}, "task: threshold out of range"),
        ({"proposal_quorum": 0}, "task: zero proposal quorum"),
    ],
)
def test_deploy_task_bad_params(ledger: Ledger, change: dict[str, Any], reason: str) -> None:
    params = replace(DEFAULT_PARAMS, **change)
    refused(
        lambda: ledger.chain.block_number,
        InvalidArgument,
        reason,
        TrainingTaskClient.deploy,
        ledger.chain,
        ledger.admin,
        ledger.consortium.address,
        params,
    )


def test_deploy_task_malformed_input_is_bad_input(ledger: Ledger) -> None:
    block = ledger.chain.block_number
    with pytest.raises(BadInput, match="malformed consortium address"):
        TrainingTaskClient.deploy(ledger.chain, ledger.admin, "0x1234", DEFAULT_PARAMS)
    with pytest.raises(BadInput, match="malformed config hash"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, config_hash="0xabc")
        )
    with pytest.raises(BadInput, match="malformed initial model hash"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, initial_model="nothex!")
        )
    assert ledger.chain.block_number == block


# -- open_round --------------------------------------------------------------------


def test_open_round(ledger: Ledger) -> None:
    block = ledger.chain.block_number
    r = t(ledger, 2).open_round()
    assert r == 1
    info = ledger.task.round(r)
    ts = ledger.chain.timestamp()
    assert info.phase is Phase.OPEN
    assert info.global_model == DEFAULT_PARAMS.initial_model
    assert info.commit_deadline == ts + 600
    assert (info.expected_trainers, info.expected_validators) == (4, 4)
    assert (info.num_updates, info.num_scored, info.accepted_mask, info.model_hash) == (0, 0, 0, ZERO_HASH)
    events = events_since(ledger, block)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, RoundOpened)
    assert (e.round_id, e.global_model, e.commit_deadline, e.opener) == (
        1,
        DEFAULT_PARAMS.initial_model,
        ts + 600,
        ledger.members[2].address,
    )


def test_admin_may_open_round(ledger: Ledger) -> None:
    assert admin(ledger).open_round() == 1


def test_open_round_counts_active_roles(ledger: Ledger) -> None:
    revoke(ledger, 3)
    set_roles(ledger, 2, Role.VALIDATOR | Role.AGGREGATOR)
    r = t(ledger, 0).open_round()
    info = ledger.task.round(r)
    assert (info.expected_trainers, info.expected_validators) == (2, 3)


def test_open_round_refused_for_wrong_callers(ledger: Ledger) -> None:
    trainer_only = set_roles(ledger, 1, Role.TRAINER | Role.VALIDATOR)
    revoked = revoke(ledger, 3)
    for who in (outsider(ledger), revoked, trainer_only):
        refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not an aggregator or admin", who.open_round)


def test_open_round_refused_while_round_running(ledger: Ledger) -> None:
    reason = "task: previous round not closed"
    r = open_with_commits(ledger)
    refused(lambda: state_of(ledger), InvalidState, reason, t(ledger, 1).open_round)
    t(ledger, 0).close_commits(r)
    refused(lambda: state_of(ledger), InvalidState, reason, admin(ledger).open_round)
    for i in range(4):
        t(ledger, i).submit_scores(r, honest_scores(i))
    t(ledger, 0).close_validation(r)
    refused(lambda: state_of(ledger), InvalidState, reason, t(ledger, 1).open_round)
    mask = ledger.task.round(r).accepted_mask
    t(ledger, 0).propose_aggregate(r, h("m1"), mask)
    refused(lambda: state_of(ledger), InvalidState, reason, t(ledger, 1).open_round)
    t(ledger, 1).propose_aggregate(r, h("m1"), mask)
    assert t(ledger, 1).open_round() == 2


def test_max_rounds(ledger: Ledger) -> None:
    params = replace(DEFAULT_PARAMS, max_rounds=2, min_commitments=1)
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    opener = task.as_(ledger.members[0])
    for expected in (1, 2):
        r = opener.open_round()
        assert r == expected
        ledger.chain.advance_time(601)
        assert opener.close_commits(r) is Phase.ABORTED
    refused(lambda: state_of(replace(ledger, task=task)), InvalidState, "task: all rounds done", opener.open_round)
    assert task.current_round == 2


# -- commit_update -----------------------------------------------------------------


def test_commit_update(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    block = ledger.chain.block_number
    assert t(ledger, 2).commit_update(r, h("a"), 120) == 0
    assert t(ledger, 0).commit_update(r, h("b"), 80) == 1
    task = ledger.task
    assert task.round(r).num_updates == 2
    assert [(u.member, u.update_hash, u.num_examples, u.index) for u in task.updates(r)] == [
        (ledger.members[2].address, h("a"), 120, 0),
        (ledger.members[0].address, h("b"), 80, 1),
    ]
    # The batch read (updates_of) agrees with reading one update at a time.
    assert task.updates(r) == [task.update(r, i) for i in range(2)]
    assert task.updates(r + 1) == []
    assert task.has_committed(r, ledger.members[2].address)
    assert not task.has_committed(r, ledger.members[1].address)
    with pytest.raises(InvalidState):
        task.commit_index(r, ledger.members[1].address)
    events = events_since(ledger, block)
    assert events[0] == UpdateCommitted(
        contract=task.address,
        block_number=events[0].block_number,
        tx_hash=events[0].tx_hash,
        log_index=events[0].log_index,
        round_id=1,
        member=ledger.members[2].address,
        update_hash=h("a"),
        num_examples=120,
        index=0,
        dataset_id=0,
        epsilon_micro=0,
    )
    assert isinstance(events[1], UpdateCommitted)
    assert (events[1].round_id, events[1].member, events[1].index) == (1, ledger.members[0].address, 1)


def test_commit_refused_for_non_trainers(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    validator_only = set_roles(ledger, 1, Role.VALIDATOR | Role.AGGREGATOR)
    revoked = revoke(ledger, 3)
    for who in (outsider(ledger), admin(ledger), validator_only, revoked):
        refused(
            lambda: state_of(ledger), NotAuthorized, "task: caller is not a trainer", who.commit_update, r, h("x"), 1
        )
    assert ledger.task.round(r).num_updates == 0


def test_duplicate_commitment_refused(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    t(ledger, 1).commit_update(r, h("first"), 10)
    for update in (h("first"), h("second")):
        refused(
            lambda: state_of(ledger), InvalidState, "task: already committed", t(ledger, 1).commit_update, r, update, 10
        )
    assert [u.update_hash for u in ledger.task.updates(r)] == [h("first")]


def test_late_commitment_refused(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    t(ledger, 0).commit_update(r, h("on time"), 10)
    ledger.chain.advance_time(601)
    exc = refused(
        lambda: state_of(ledger),
        DeadlinePassed,
        "task: commit deadline passed",
        t(ledger, 1).commit_update,
        r,
        h("late"),
        1,
    )
    assert isinstance(exc, InvalidState)  # DeadlinePassed is a kind of InvalidState
    assert ledger.task.round(r).num_updates == 1


def test_commit_wrong_round_refused(ledger: Ledger) -> None:
    me = t(ledger, 0)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.commit_update, 1, h("x"), 1)  # no round yet
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.commit_update, 0, h("x"), 1)
    r = me.open_round()
    for wrong in (0, r + 1, 2**64):
        refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.commit_update, wrong, h("x"), 1)


def test_commit_to_past_round_refused(ledger: Ledger) -> None:
    r = finalize(ledger, h("m1"))
    refused(lambda: state_of(ledger), InvalidState, "task: round not open", t(ledger, 0).commit_update, r, h("x"), 1)
    r2 = t(ledger, 0).open_round()
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).commit_update, r, h("x"), 1)
    t(ledger, 0).commit_update(r2, h("x"), 1)


def test_commit_zero_hash_or_examples_refused(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    refused(lambda: state_of(ledger), InvalidArgument, "task: zero hash", t(ledger, 0).commit_update, r, ZERO_HASH, 5)
    refused(
        lambda: state_of(ledger), InvalidArgument, "task: zero hash", t(ledger, 0).commit_update, r, b"\x00" * 32, 5
    )
    refused(lambda: state_of(ledger), InvalidArgument, "task: zero examples", t(ledger, 0).commit_update, r, h("x"), 0)


def test_commit_malformed_hash_is_bad_input(ledger: Ledger) -> None:
    r = t(ledger, 0).open_round()
    for bad in ("0x1234", "zz" * 32, h("x") + "00", b"short"):
        exc = refused(lambda: state_of(ledger), BadInput, None, t(ledger, 0).commit_update, r, bad, 5)
        assert "update hash" in str(exc)


def test_commit_when_round_not_open_refused(ledger: Ledger) -> None:
    r = to_validation(ledger)
    refused(
        lambda: state_of(ledger), InvalidState, "task: round not open", t(ledger, 0).commit_update, r, h("again"), 5
    )


# -- close_commits -----------------------------------------------------------------


def test_close_commits_early_when_all_committed(ledger: Ledger) -> None:
    r = open_with_commits(ledger)
    block = ledger.chain.block_number
    assert admin(ledger).close_commits(r) is Phase.VALIDATE  # any active member may close
    info = ledger.task.round(r)
    ts = ledger.chain.timestamp()
    assert info.validate_deadline == ts + 600
    events = events_since(ledger, block)
    assert len(events) == 1
    assert isinstance(events[0], CommitsClosed)
    assert (events[0].round_id, events[0].num_updates, events[0].validate_deadline) == (1, 4, ts + 600)


def test_close_commits_before_deadline_refused(ledger: Ledger) -> None:
    r = open_with_commits(ledger, 3)
    refused(lambda: state_of(ledger), InvalidState, "task: commit phase still running", t(ledger, 0).close_commits, r)
    ledger.chain.advance_time(601)
    assert t(ledger, 0).close_commits(r) is Phase.VALIDATE
    assert ledger.task.round(r).num_updates == 3


def test_expected_trainers_is_fixed_at_open(ledger: Ledger) -> None:
    """A trainer revoked mid-round still counts: the round waits for the deadline."""
    r = t(ledger, 0).open_round()
    revoke(ledger, 3)
    for i in range(3):
        t(ledger, i).commit_update(r, h(f"u{i}"), 1)
    refused(lambda: state_of(ledger), InvalidState, "task: commit phase still running", t(ledger, 0).close_commits, r)
    ledger.chain.advance_time(601)
    assert t(ledger, 0).close_commits(r) is Phase.VALIDATE


def test_abort_when_too_few_commitments(ledger: Ledger) -> None:
    r = open_with_commits(ledger, 1)
    ledger.chain.advance_time(601)
    block = ledger.chain.block_number
    assert t(ledger, 1).close_commits(r) is Phase.ABORTED
    events = events_since(ledger, block)
    assert len(events) == 1
    assert isinstance(events[0], RoundAborted)
    assert (events[0].round_id, events[0].reason) == (r, "commitment quorum not reached")
    assert ledger.task.model_history() == {}
    refused(lambda: state_of(ledger), InvalidState, "task: round not finalized", ledger.task.model_at, r)
    # The next round opens on the same model.
    r2 = t(ledger, 0).open_round()
    assert r2 == r + 1
    assert ledger.task.round(r2).global_model == DEFAULT_PARAMS.initial_model
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 1).commit_update, r, h("old"), 1)


def test_close_commits_refused(ledger: Ledger) -> None:
    revoked = revoke(ledger, 3)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_commits, 1)
    r = open_with_commits(ledger, 3)
    ledger.chain.advance_time(601)
    for who in (outsider(ledger), revoked):
        refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a member", who.close_commits, r)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_commits, r + 1)
    t(ledger, 0).close_commits(r)
    refused(lambda: state_of(ledger), InvalidState, "task: round not open", t(ledger, 0).close_commits, r)


# -- submit_scores -----------------------------------------------------------------


def test_submit_scores(ledger: Ledger) -> None:
    r = to_validation(ledger)
    block = ledger.chain.block_number
    t(ledger, 1).submit_scores(r, [7000, None, 3000, 10_000])
    assert ledger.task.has_scored(r, ledger.members[1].address)
    assert not ledger.task.has_scored(r, ledger.members[0].address)
    assert ledger.task.round(r).num_scored == 1
    assert [ledger.task.scores_of(r, i) for i in range(4)] == [[7000], [], [3000], [10_000]]
    events = events_since(ledger, block)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, ScoresSubmitted)
    assert (e.round_id, e.validator) == (r, ledger.members[1].address)
    assert (e.indices, e.scores) == ((0, 2, 3), (7000, 3000, 10_000))
    assert [e.score_for(i) for i in range(4)] == [7000, None, 3000, 10_000]


def test_validator_may_abstain_everywhere(ledger: Ledger) -> None:
    r = to_validation(ledger)
    t(ledger, 0).submit_scores(r, [None] * 4)
    assert ledger.task.round(r).num_scored == 1
    assert all(ledger.task.scores_of(r, i) == [] for i in range(4))


def test_submit_scores_refused_for_non_validators(ledger: Ledger) -> None:
    r = to_validation(ledger)
    trainer_only = set_roles(ledger, 1, Role.TRAINER | Role.AGGREGATOR)
    revoked = revoke(ledger, 3)
    for who in (outsider(ledger), admin(ledger), trainer_only, revoked):
        refused(
            lambda: state_of(ledger), NotAuthorized, "task: caller is not a validator", who.submit_scores, r, [9000] * 4
        )


def test_submit_scores_refused(ledger: Ledger) -> None:
    me = t(ledger, 1)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.submit_scores, 1, [])
    r = open_with_commits(ledger)
    refused(
        lambda: state_of(ledger), InvalidState, "task: round not in validation", me.submit_scores, r, honest_scores(1)
    )
    t(ledger, 0).close_commits(r)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.submit_scores, r + 1, honest_scores(1))
    refused(
        lambda: state_of(ledger),
        InvalidArgument,
        "task: unknown update",
        me.submit_scores,
        r,
        [9000, None, 9000, 9000, 9000],
    )

    def raw(indices: list[int], scores: list[int]) -> object:
        return me._send(me.contract.functions.submit_scores(r, indices, scores))

    refused(lambda: state_of(ledger), InvalidArgument, "task: indices and scores differ in length", raw, [0, 2], [9000])
    refused(lambda: state_of(ledger), InvalidArgument, "task: indices not increasing", raw, [2, 0], [9000, 9000])
    refused(lambda: state_of(ledger), InvalidArgument, "task: indices not increasing", raw, [2, 2], [9000, 9000])
    refused(lambda: state_of(ledger), InvalidArgument, "task: unknown update", raw, [0, 4], [9000, 9000])
    for bad in (10_001, 2**255):
        refused(
            lambda: state_of(ledger),
            InvalidArgument,
            "task: score out of range",
            me.submit_scores,
            r,
            [9000, None, bad, 9000],
        )
    refused(
        lambda: state_of(ledger),
        InvalidArgument,
        "task: validator cannot score its own update",
        me.submit_scores,
        r,
        [9000, 9000, 9000, 9000],
    )
    me.submit_scores(r, honest_scores(1))
    refused(lambda: state_of(ledger), InvalidState, "task: already scored", me.submit_scores, r, honest_scores(1))


def test_late_scores_refused(ledger: Ledger) -> None:
    r = to_validation(ledger)
    t(ledger, 0).submit_scores(r, honest_scores(0))
    ledger.chain.advance_time(601)
    refused(
        lambda: state_of(ledger),
        DeadlinePassed,
        "task: validation deadline passed",
        t(ledger, 1).submit_scores,
        r,
        honest_scores(1),
    )
