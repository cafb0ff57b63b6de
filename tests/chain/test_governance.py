"""Governance of running tasks: proposals that carry a call and execute on M-of-N approval (pause, resume, a
setting the task declared mutable), and model releases by vote.

Each refusal asserts the typed error, the contract's exact revert string, and that the chain did not move.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import ConsortiumClient, Role, TrainingTaskClient
from fedledger.chain.consortium import ProposalKind
from fedledger.chain.governance import governance_state, set_param_call, set_paused_call
from fedledger.chain.governance_events import CallExecuted, ModelReleased, ParamChanged, ParamStaged, TaskPaused
from fedledger.exceptions import BadInput, InvalidArgument, InvalidState, NotAuthorized
from helpers.consortium import as_admin, events_since, two_admins_threshold_two
from helpers.task import finalize, t

BOUNDS = (("commit_duration", 60, 3_600), ("proposal_quorum", 1, 3))
OUTSIDE = "task: value outside mutable bounds"


@pytest.fixture
def governed(ledger: Ledger) -> TrainingTaskClient:
    """A task of the ledger's consortium declaring two mutable settings."""
    return TrainingTaskClient.deploy(
        ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, param_bounds=BOUNDS)
    )


def _state(ledger: Ledger, task: TrainingTaskClient) -> tuple[object, ...]:
    c = ledger.consortium
    return (ledger.chain.block_number, c.proposal_count, governance_state(task))


def test_a_task_reports_what_it_declared_mutable(governed: TrainingTaskClient, ledger: Ledger) -> None:
    state = governance_state(governed)
    assert state.bounds == {"commit_duration": (60, 3_600), "proposal_quorum": (1, 3)}
    assert state.in_force["commit_duration"] == DEFAULT_PARAMS.commit_duration and state.staged == {}
    assert not state.paused
    assert governed.params().param_bounds == BOUNDS
    assert governance_state(ledger.task).bounds == {}  # the default task declares nothing mutable


def test_a_voted_setting_takes_effect_from_the_next_round(governed: TrainingTaskClient, ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    task = governed.as_(ledger.members[0])
    running = task.open_round()
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_call(governed.address, set_param_call(governed, "commit_duration", 120))
    assert ledger.consortium.proposal(pid).kind is ProposalKind.CALL
    assert governance_state(governed).staged == {}  # one approval of two: nothing happened yet
    assert second.approve(pid)
    assert governance_state(governed).staged == {"commit_duration": 120}
    assert governance_state(governed).in_force["commit_duration"] == DEFAULT_PARAMS.commit_duration
    # The round already open keeps the deadline it opened with.
    assert governed.round(running).commit_deadline - ledger.chain.timestamp() > 120
    executed = [e for e in ledger.consortium.events(from_block=block + 1) if isinstance(e, CallExecuted)]
    assert [(e.proposal_id, e.target) for e in executed] == [(pid, governed.address)]
    assert [(e.param, e.value) for e in governed.events(from_block=block + 1) if isinstance(e, ParamStaged)] == [
        (1, 120)
    ]

    for i in range(4):
        governed.as_(ledger.members[i]).commit_update(running, h(f"gov-{i}"), 10)
    ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    task.close_commits(running)
    ledger.chain.advance_time(DEFAULT_PARAMS.validate_duration + 1)
    task.close_validation(running)  # nobody scored: the round aborts, and the next one may open
    nxt = task.open_round()
    opened = governed.round(nxt)
    assert opened.commit_deadline == ledger.chain.timestamp() + 120
    state = governance_state(governed)
    assert (state.in_force["commit_duration"], state.staged) == (120, {})
    changed = [e for e in governed.events(from_block=block + 1) if isinstance(e, ParamChanged)]
    assert [(e.param, e.old_value, e.new_value, e.round_id) for e in changed] == [(1, 600, 120, nxt)]


def test_pause_stops_new_rounds_until_resumed(governed: TrainingTaskClient, ledger: Ledger) -> None:
    admin, task = as_admin(ledger), governed.as_(ledger.members[0])
    admin.propose_call(governed.address, set_paused_call(governed, True))  # threshold 1: executes at once
    assert governance_state(governed).paused
    refused(lambda: _state(ledger, governed), InvalidState, "task: paused", task.open_round)
    refused(
        lambda: _state(ledger, governed), InvalidState, "task: already in that pause state",
        admin.propose_call, governed.address, set_paused_call(governed, True),
    )  # fmt: skip
    block = ledger.chain.block_number
    admin.propose_call(governed.address, set_paused_call(governed, False))
    assert task.open_round() == 1
    paused = [e.paused for e in governed.events() if isinstance(e, TaskPaused)]
    assert paused == [True, False]
    assert [type(e) for e in ledger.consortium.events(from_block=block + 1) if isinstance(e, CallExecuted)] == [
        CallExecuted
    ]


def test_a_round_open_when_paused_runs_to_its_end(ledger: Ledger) -> None:
    task = ledger.task  # declares nothing mutable: pausing needs no declaration
    r = t(ledger, 0).open_round()
    as_admin(ledger).propose_call(task.address, set_paused_call(task, True))
    for i in range(4):
        t(ledger, i).commit_update(r, h(f"paused-{i}"), 10)
    assert t(ledger, 0).close_commits(r).name == "VALIDATE"


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        (lambda task: set_param_call(task, "commit_duration", 30), InvalidArgument, OUTSIDE),
        (lambda task: set_param_call(task, "commit_duration", 3_601), InvalidArgument, OUTSIDE),
        (lambda task: set_param_call(task, "validate_duration", 120), InvalidArgument, "task: parameter not mutable"),
        (lambda task: set_paused_call(task, False), InvalidState, "task: already in that pause state"),
        (lambda task: bytes.fromhex(task.contract.encode_abi("open_round", []).removeprefix("0x")), InvalidArgument,
         "task: not a governed function"),
        (lambda task: set_paused_call(task, True)[:-1], InvalidArgument, "task: malformed governed call"),
        (lambda task: b"\x01\x02", InvalidArgument, "consortium: payload has no function selector"),
    ],
    ids=["below", "above", "not-mutable", "resume-running", "other-function", "truncated", "no-selector"],
)  # fmt: skip
def test_a_call_the_task_would_refuse_is_refused_when_proposed(
    governed: TrainingTaskClient, ledger: Ledger, payload: object, error: type[Exception], reason: str
) -> None:
    call = payload(governed)  # type: ignore[operator]
    refused(lambda: _state(ledger, governed), error, reason, as_admin(ledger).propose_call, governed.address, call)


def test_only_a_governed_contract_is_a_call_target(governed: TrainingTaskClient, ledger: Ledger) -> None:
    admin, pause = as_admin(ledger), set_paused_call(governed, True)
    state = lambda: _state(ledger, governed)  # noqa: E731
    refused(
        state,
        InvalidArgument,
        "consortium: target is not a contract",
        admin.propose_call,
        ledger.outsider.address,
        pause,
    )
    other = ConsortiumClient.deploy(ledger.chain, ledger.outsider, org="Elsewhere", roles=Role.ADMIN)
    foreign = TrainingTaskClient.deploy(ledger.chain, ledger.outsider, other.address, DEFAULT_PARAMS)
    refused(
        state, InvalidArgument, "consortium: target is not governed by this consortium",
        admin.propose_call, foreign.address, pause,
    )  # fmt: skip
    refused(state, BadInput, "at most 260", admin.propose_call, governed.address, b"\x00" * 261)
    refused(
        state,
        NotAuthorized,
        "consortium: caller is not an admin",
        ledger.consortium.as_(ledger.members[0]).propose_call,
        governed.address,
        pause,
    )


def test_an_approval_that_the_target_refuses_reverts_and_leaves_the_proposal_pending(
    governed: TrainingTaskClient, ledger: Ledger
) -> None:
    second = two_admins_threshold_two(ledger)
    first = as_admin(ledger).propose_call(governed.address, set_paused_call(governed, True))
    again = as_admin(ledger).propose_call(governed.address, set_paused_call(governed, True))
    assert second.approve(first)
    # The second pause would now fail in the task: the approval that would execute it is refused with its reason.
    refused(lambda: _state(ledger, governed), InvalidState, "task: already in that pause state", second.approve, again)
    p = ledger.consortium.proposal(again)
    assert (p.executed, p.cancelled, p.approvals) == (False, False, 1)


def test_a_release_vote_marks_a_finalized_model(ledger: Ledger) -> None:
    second = two_admins_threshold_two(ledger)
    r = finalize(ledger, h("model-1"))
    block = ledger.chain.block_number
    pid = as_admin(ledger).propose_release(ledger.task.address, r)
    assert ledger.consortium.released_at(ledger.task.address, h("model-1")) == 0
    assert second.approve(pid)
    assert ledger.consortium.released_at(ledger.task.address, h("model-1")) == ledger.chain.block_number
    released = [e for e in events_since(ledger, block) if isinstance(e, ModelReleased)]
    assert [(e.task, e.round_id, e.model_hash, e.proposal_id) for e in released] == [
        (ledger.task.address, r, h("model-1"), pid)
    ]
    state = lambda: (ledger.chain.block_number, ledger.consortium.proposal_count)  # noqa: E731
    admin = as_admin(ledger)
    refused(state, InvalidState, "consortium: model already released", admin.propose_release, ledger.task.address, r)
    refused(state, InvalidState, "task: round not finalized", admin.propose_release, ledger.task.address, r + 1)


@pytest.mark.parametrize(
    ("bounds", "reason"),
    [
        ((("commit_duration", 700, 900),), "task: parameter outside its own bounds"),
        ((("commit_duration", 900, 700),), "task: bad parameter bounds"),
        ((("commit_duration", 0, 700),), "task: bad parameter bounds"),
        ((("commit_duration", 60, 900), ("commit_duration", 60, 900)), "task: parameter bounded twice"),
    ],
    ids=["outside", "inverted", "zero", "twice"],
)
def test_a_task_refuses_bounds_that_make_no_sense(
    ledger: Ledger, bounds: tuple[tuple[str, int, int], ...], reason: str
) -> None:
    params = replace(DEFAULT_PARAMS, param_bounds=bounds)
    refused(
        lambda: ledger.chain.block_number, InvalidArgument, reason,
        TrainingTaskClient.deploy, ledger.chain, ledger.admin, ledger.consortium.address, params,
    )  # fmt: skip


def test_an_unknown_setting_is_refused_before_anything_is_sent(ledger: Ledger) -> None:
    params = replace(DEFAULT_PARAMS, param_bounds=(("acceptance_threshold", 1, 9_000),))
    refused(
        lambda: ledger.chain.block_number, BadInput, "not a setting a vote can change",
        TrainingTaskClient.deploy, ledger.chain, ledger.admin, ledger.consortium.address, params,
    )  # fmt: skip


def test_a_secure_task_is_governed_too(ledger: Ledger) -> None:
    params = replace(DEFAULT_PARAMS, secagg_threshold=2, param_bounds=(("commit_duration", 60, 3_600),))
    secure = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    as_admin(ledger).propose_call(secure.address, set_paused_call(secure, True))
    refused(lambda: _state(ledger, secure), InvalidState, "task: paused", secure.as_(ledger.members[0]).open_round)
    as_admin(ledger).propose_call(secure.address, set_param_call(secure, "commit_duration", 90))
    assert governance_state(secure).staged == {"commit_duration": 90}
