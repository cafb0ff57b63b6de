"""TrainingTask contract, the end of a round: validation and the acceptance rule, aggregate proposals, the
aggregation deadline, flags, members revoked mid-round, several rounds, the restored views and the client's task
kind. The start of a round is ``test_task_contract.py``, whose helpers these tests share.

Each refusal asserts the typed error, the contract's exact revert string, and that
the chain did not move (a refused call is caught before anything is sent).
"""

from __future__ import annotations

import pytest

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import ZERO_HASH, Phase, Role, TaskKind, TrainingTaskClient, mask_of
from fedledger.chain.events import (
    AggregateProposed,
    RoundAborted,
    RoundFinalized,
    RoundOpened,
    UpdateFlagged,
    ValidationClosed,
)
from fedledger.exceptions import BadInput, DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized
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
    to_aggregation,
    to_validation,
)

# -- close_validation and the acceptance rule ------------------------------------------


def test_close_validation_accepts_by_median(ledger: Ledger) -> None:
    r = to_validation(ledger)
    for i in range(4):
        t(ledger, i).submit_scores(r, honest_scores(i))
    block = ledger.chain.block_number
    assert t(ledger, 3).close_validation(r) is Phase.AGGREGATE  # early: every validator scored
    info = ledger.task.round(r)
    ts = ledger.chain.timestamp()
    assert (info.accepted_mask, info.num_accepted, info.aggregate_deadline) == (0b1111, 4, ts + 600)
    assert info.accepted == [0, 1, 2, 3]
    events = events_since(ledger, block)
    assert len(events) == 1
    e = events[0]
    assert isinstance(e, ValidationClosed)
    assert (e.round_id, e.accepted_mask, e.num_accepted, e.aggregate_deadline) == (r, 0b1111, 4, ts + 600)


def test_lying_minority_does_not_flip_acceptance(ledger: Ledger) -> None:
    """Update 2 is poor (honest validators score it 1000); member 3 lies both ways."""
    r = to_validation(ledger)
    honest = {0: [None, 9000, 1000, 9000], 1: [9000, None, 1000, 9000], 2: [9000, 9000, None, 9000]}
    for i, scores in honest.items():
        t(ledger, i).submit_scores(r, scores)
    t(ledger, 3).submit_scores(r, [0, 0, 10_000, None])  # the liar
    assert ledger.task.scores_of(r, 2) == [1000, 1000, 10_000]
    assert t(ledger, 0).close_validation(r) is Phase.AGGREGATE
    info = ledger.task.round(r)
    assert info.accepted == [0, 1, 3]
    assert info.accepted_mask == mask_of([0, 1, 3])
    assert info.num_accepted == 3


def test_median_of_even_count_and_threshold_edge(ledger: Ledger) -> None:
    """Two scores: their mean, floored; an update is accepted at exactly the threshold."""
    r = to_validation(ledger)
    t(ledger, 1).submit_scores(r, [4000, None, 8000, 4000])
    t(ledger, 2).submit_scores(r, [6000, 9000, None, 5998])
    refused(
        lambda: state_of(ledger), InvalidState, "task: validation phase still running", t(ledger, 0).close_validation, r
    )
    ledger.chain.advance_time(601)
    assert t(ledger, 0).close_validation(r) is Phase.AGGREGATE
    # update 0: (4000+6000)//2 = 5000 accepted; 1: [9000]; 2: [8000]; 3: (4000+5998)//2 = 4999 rejected.
    assert ledger.task.round(r).accepted == [0, 1, 2]


def test_update_without_scores_is_not_accepted(ledger: Ledger) -> None:
    r = to_validation(ledger)
    for i in range(4):
        t(ledger, i).submit_scores(r, [None if j in (i, 3) else 9000 for j in range(4)])
    assert t(ledger, 0).close_validation(r) is Phase.AGGREGATE
    assert ledger.task.round(r).accepted == [0, 1, 2]


def test_abort_when_no_update_accepted(ledger: Ledger) -> None:
    r = to_validation(ledger)
    for i in range(4):
        t(ledger, i).submit_scores(r, honest_scores(i, score=4999))
    block = ledger.chain.block_number
    assert t(ledger, 0).close_validation(r) is Phase.ABORTED
    aborted = events_since(ledger, block, RoundAborted)
    assert [(e.round_id, e.reason) for e in aborted] == [(r, "no update accepted")]
    assert ledger.task.round(r).accepted_mask == 0
    r2 = t(ledger, 0).open_round()
    assert ledger.task.round(r2).global_model == DEFAULT_PARAMS.initial_model


def test_close_validation_refused(ledger: Ledger) -> None:
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_validation, 1)
    r = open_with_commits(ledger, 3)
    revoked = revoke(ledger, 3)
    refused(lambda: state_of(ledger), InvalidState, "task: round not in validation", t(ledger, 0).close_validation, r)
    ledger.chain.advance_time(601)
    t(ledger, 0).close_commits(r)
    for i in range(3):
        t(ledger, i).submit_scores(r, honest_scores(i, n=3))
    for who in (outsider(ledger), revoked):
        refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a member", who.close_validation, r)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_validation, r + 1)
    # members[3] was a validator when the round opened, so the round waits for the deadline.
    refused(
        lambda: state_of(ledger), InvalidState, "task: validation phase still running", t(ledger, 0).close_validation, r
    )
    ledger.chain.advance_time(601)
    assert admin(ledger).close_validation(r) is Phase.AGGREGATE
    refused(lambda: state_of(ledger), InvalidState, "task: round not in validation", t(ledger, 0).close_validation, r)


# -- propose_aggregate ---------------------------------------------------------------


def test_quorum_of_identical_proposals_finalizes(ledger: Ledger) -> None:
    r, mask = to_aggregation(ledger)
    block = ledger.chain.block_number
    assert t(ledger, 2).propose_aggregate(r, h("m1"), mask) is False
    assert ledger.task.round(r).phase is Phase.AGGREGATE
    assert ledger.task.has_proposed(r, ledger.members[2].address)
    assert t(ledger, 0).propose_aggregate(r, h("m1"), mask) is True
    info = ledger.task.round(r)
    assert (info.phase, info.model_hash) == (Phase.FINALIZED, h("m1"))
    assert ledger.task.latest_model == h("m1")
    assert ledger.task.model_at(r) == h("m1")
    assert ledger.task.model_history() == {r: h("m1")}
    events = events_since(ledger, block)
    assert [type(e) for e in events] == [AggregateProposed, AggregateProposed, RoundFinalized]
    first, second, final = events
    assert (first.round_id, first.aggregator, first.model_hash, first.accepted_mask, first.votes) == (
        r,
        ledger.members[2].address,
        h("m1"),
        mask,
        1,
    )
    assert (second.aggregator, second.votes) == (ledger.members[0].address, 2)
    assert (final.round_id, final.model_hash, final.num_accepted) == (r, h("m1"), 4)
    # The next round trains on the finalized model.
    r2 = t(ledger, 1).open_round()
    assert ledger.task.round(r2).global_model == h("m1")


def test_different_proposals_do_not_finalize(ledger: Ledger) -> None:
    r, mask = to_aggregation(ledger)
    assert t(ledger, 0).propose_aggregate(r, h("honest"), mask) is False
    assert t(ledger, 1).propose_aggregate(r, h("cheat"), mask) is False
    votes = ledger.task.contract.functions.proposal_votes
    assert ledger.chain.call(votes(r, bytes.fromhex(h("honest")[2:]))) == 1
    assert ledger.chain.call(votes(r, bytes.fromhex(h("cheat")[2:]))) == 1
    info = ledger.task.round(r)
    assert (info.phase, info.model_hash) == (Phase.AGGREGATE, ZERO_HASH)
    assert ledger.task.latest_model == DEFAULT_PARAMS.initial_model
    assert t(ledger, 2).propose_aggregate(r, h("honest"), mask) is True  # the cheater is outvoted
    assert ledger.task.model_at(r) == h("honest")


def test_propose_refused_for_non_aggregators(ledger: Ledger) -> None:
    r, mask = to_aggregation(ledger)
    not_aggregator = set_roles(ledger, 1, Role.TRAINER | Role.VALIDATOR)
    revoked = revoke(ledger, 3)
    for who in (outsider(ledger), admin(ledger), not_aggregator, revoked):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "task: caller is not an aggregator",
            who.propose_aggregate,
            r,
            h("m"),
            mask,
        )


def test_propose_refused(ledger: Ledger) -> None:
    me = t(ledger, 0)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.propose_aggregate, 1, h("m"), 0b1111)
    r = to_validation(ledger)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: round not in aggregation",
        me.propose_aggregate,
        r,
        h("m"),
        0b1111,
    )
    for i in range(4):
        t(ledger, i).submit_scores(r, [None if j in (i, 2) else 9000 for j in range(4)])
    t(ledger, 0).close_validation(r)
    mask = ledger.task.round(r).accepted_mask
    assert mask == 0b1011
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", me.propose_aggregate, r + 1, h("m"), mask)
    refused(lambda: state_of(ledger), InvalidArgument, "task: zero hash", me.propose_aggregate, r, ZERO_HASH, mask)
    for wrong in (0b1111, 0b0011, 0, mask_of([0, 1, 3, 4])):
        refused(
            lambda: state_of(ledger),
            InvalidArgument,
            "task: accepted set does not match validation",
            me.propose_aggregate,
            r,
            h("m"),
            wrong,
        )
    assert "model hash" in str(refused(lambda: state_of(ledger), BadInput, None, me.propose_aggregate, r, "0x00", mask))
    me.propose_aggregate(r, h("m"), mask)
    for model in (h("m"), h("other")):
        refused(lambda: state_of(ledger), InvalidState, "task: already proposed", me.propose_aggregate, r, model, mask)
    t(ledger, 1).propose_aggregate(r, h("m"), mask)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: round not in aggregation",
        t(ledger, 2).propose_aggregate,
        r,
        h("m"),
        mask,
    )
    assert ledger.task.model_at(r) == h("m")


def test_late_proposal_refused(ledger: Ledger) -> None:
    r, mask = to_aggregation(ledger)
    t(ledger, 0).propose_aggregate(r, h("m"), mask)
    ledger.chain.advance_time(601)
    refused(
        lambda: state_of(ledger),
        DeadlinePassed,
        "task: aggregation deadline passed",
        t(ledger, 1).propose_aggregate,
        r,
        h("m"),
        mask,
    )


# -- close_aggregation ---------------------------------------------------------------


def test_aggregation_deadline_aborts(ledger: Ledger) -> None:
    r, mask = to_aggregation(ledger)
    t(ledger, 0).propose_aggregate(r, h("a"), mask)
    t(ledger, 1).propose_aggregate(r, h("b"), mask)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: aggregation phase still running",
        t(ledger, 2).close_aggregation,
        r,
    )
    ledger.chain.advance_time(601)
    block = ledger.chain.block_number
    assert t(ledger, 2).close_aggregation(r) is Phase.ABORTED
    aborted = events_since(ledger, block, RoundAborted)
    assert [(e.round_id, e.reason) for e in aborted] == [(r, "aggregate quorum not reached")]
    assert ledger.task.latest_model == DEFAULT_PARAMS.initial_model
    assert ledger.task.model_history() == {}
    r2 = t(ledger, 0).open_round()
    assert ledger.task.round(r2).global_model == DEFAULT_PARAMS.initial_model


def test_close_aggregation_refused(ledger: Ledger) -> None:
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_aggregation, 1)
    r = to_validation(ledger)
    revoked = revoke(ledger, 3)
    refused(lambda: state_of(ledger), InvalidState, "task: round not in aggregation", t(ledger, 0).close_aggregation, r)
    for i in range(3):
        t(ledger, i).submit_scores(r, honest_scores(i))
    ledger.chain.advance_time(601)
    t(ledger, 0).close_validation(r)
    ledger.chain.advance_time(601)
    for who in (outsider(ledger), revoked):
        refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a member", who.close_aggregation, r)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).close_aggregation, r + 1)
    t(ledger, 0).close_aggregation(r)
    refused(lambda: state_of(ledger), InvalidState, "task: round not in aggregation", t(ledger, 0).close_aggregation, r)


# -- flag_update ---------------------------------------------------------------------


def test_flag_update(ledger: Ledger) -> None:
    r = to_validation(ledger)
    block = ledger.chain.block_number
    t(ledger, 1).flag_update(r, 2, "NaN in layer 3")
    validator_only = set_roles(ledger, 0, Role.VALIDATOR)
    validator_only.flag_update(r, 0, "hash mismatch")
    events = events_since(ledger, block, UpdateFlagged)
    assert [(e.round_id, e.index, e.reporter, e.reason) for e in events] == [
        (r, 2, ledger.members[1].address, "NaN in layer 3"),
        (r, 0, ledger.members[0].address, "hash mismatch"),
    ]
    # Flagging has no effect on acceptance, and a past round can still be flagged.
    assert ledger.task.round(r).phase is Phase.VALIDATE
    ledger.chain.advance_time(601)
    assert t(ledger, 1).close_validation(r) is Phase.ABORTED  # nobody scored
    t(ledger, 1).open_round()
    t(ledger, 2).flag_update(r, 3, "found later")


def test_flag_reason_truncated_to_128_bytes(ledger: Ledger) -> None:
    r = open_with_commits(ledger, 1)
    block = ledger.chain.block_number
    t(ledger, 1).flag_update(r, 0, "é" * 100)  # 200 UTF-8 bytes
    (event,) = events_since(ledger, block, UpdateFlagged)
    assert event.reason == "é" * 64


def test_flag_update_refused(ledger: Ledger) -> None:
    revoked = revoke(ledger, 3)
    trainer_only = set_roles(ledger, 2, Role.TRAINER)
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).flag_update, 1, 0, "x")
    r = open_with_commits(ledger, 2)
    for who in (outsider(ledger), admin(ledger), revoked, trainer_only):
        refused(
            lambda: state_of(ledger),
            NotAuthorized,
            "task: caller is not a validator or aggregator",
            who.flag_update,
            r,
            0,
            "x",
        )
    for wrong in (0, r + 1):
        refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).flag_update, wrong, 0, "x")
    refused(lambda: state_of(ledger), InvalidArgument, "task: unknown update", t(ledger, 0).flag_update, r, 2, "x")
    refused(lambda: state_of(ledger), InvalidArgument, "task: empty reason", t(ledger, 0).flag_update, r, 1, "")


# -- revoked members across the whole round -------------------------------------------


def test_member_revoked_mid_round_cannot_act(ledger: Ledger) -> None:
    r = open_with_commits(ledger, 3)  # members 0..2 committed
    gone = revoke(ledger, 3)
    refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a trainer", gone.commit_update, r, h("u3"), 1)
    ledger.chain.advance_time(601)
    refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a member", gone.close_commits, r)
    t(ledger, 0).close_commits(r)
    refused(
        lambda: state_of(ledger), NotAuthorized, "task: caller is not a validator", gone.submit_scores, r, [9000] * 3
    )
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "task: caller is not a validator or aggregator",
        gone.flag_update,
        r,
        0,
        "x",
    )
    for i in range(3):
        t(ledger, i).submit_scores(r, honest_scores(i, n=3))
    ledger.chain.advance_time(601)
    t(ledger, 0).close_validation(r)
    mask = ledger.task.round(r).accepted_mask
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "task: caller is not an aggregator",
        gone.propose_aggregate,
        r,
        h("m"),
        mask,
    )
    refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not a member", gone.close_aggregation, r)
    t(ledger, 0).propose_aggregate(r, h("m"), mask)
    assert t(ledger, 1).propose_aggregate(r, h("m"), mask)
    refused(lambda: state_of(ledger), NotAuthorized, "task: caller is not an aggregator or admin", gone.open_round)
    actors = {
        getattr(e, field)
        for e in ledger.task.events()
        for field in ("member", "validator", "aggregator", "opener", "reporter")
        if hasattr(e, field)
    }
    assert ledger.members[3].address not in actors


def test_two_full_rounds_history(ledger: Ledger) -> None:
    r1 = finalize(ledger, h("m1"))
    r2 = finalize(ledger, h("m2"))
    assert (r1, r2) == (1, 2)
    assert ledger.task.model_history() == {1: h("m1"), 2: h("m2")}
    assert ledger.task.round(2).global_model == h("m1")
    assert ledger.task.latest_model == h("m2")
    opened = [e for e in ledger.task.events() if isinstance(e, RoundOpened)]
    assert [(e.round_id, e.global_model) for e in opened] == [(1, DEFAULT_PARAMS.initial_model), (2, h("m1"))]


def test_client_without_account_is_bad_input(ledger: Ledger) -> None:
    reader = TrainingTaskClient(ledger.chain, ledger.task.address)
    refused(lambda: state_of(ledger), BadInput, None, reader.open_round)
    with pytest.raises(BadInput):
        reader.has_committed(1, "0xnot-an-address")
    with pytest.raises(BadInput):
        reader.update(1, 0)


# -- views and the task kind ---------------------------------------------------------


def test_phase_and_update_count_views(ledger: Ledger) -> None:
    f = ledger.task.contract.functions
    assert ledger.chain.call(f.phase_of(1)) == Phase.NONE and ledger.chain.call(f.update_count(1)) == 0
    r = open_with_commits(ledger, 3)
    assert ledger.chain.call(f.phase_of(r)) == Phase.OPEN
    assert ledger.chain.call(f.update_count(r)) == 3 == len(ledger.task.updates(r))
    assert ledger.chain.call(f.secagg_threshold()) == 0


def test_a_validated_task_refuses_secure_methods_by_name(ledger: Ledger) -> None:
    """A client of a validated task names the method and the kind for a secure-round method, sending nothing."""
    fresh = TrainingTaskClient(ledger.chain, ledger.task.address, ledger.members[0])
    assert fresh.kind is TaskKind.VALIDATED and fresh.params() == DEFAULT_PARAMS
    block = ledger.chain.block_number
    for method, args in (
        ("post_key_advert", (1, h("a"))),
        ("close_unmask", (1,)),
        ("secure_view", ("0x" + "11" * 20,)),
    ):
        with pytest.raises(BadInput, match=f"{method} needs a secure-round task; .* runs validated rounds"):
            getattr(fresh, method)(*args)
    assert ledger.chain.block_number == block
