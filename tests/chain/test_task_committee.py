"""Validation committees: each update scored by a committee drawn on chain when commits close.

A task with ``committee_size`` c > 0 draws, per round, a seed no committer could
know and gives each update a committee of c validators (never its owner). Scoring
cost grows with updates x c, a validator may only score where it sits, and a
lying minority inside a committee cannot move that committee's median.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import Phase, TrainingTaskClient
from fedledger.chain.events import CommitsClosed
from fedledger.exceptions import InvalidArgument, NotAuthorized
from helpers.consortium import (
    admit,
)

COMMITTEE = 3


def committee_task(ledger: Ledger, size: int = COMMITTEE) -> TrainingTaskClient:
    params = replace(DEFAULT_PARAMS, committee_size=size)
    return TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)


def validation_round(ledger: Ledger, task: TrainingTaskClient, members: list[LocalAccount]) -> int:
    """Every member commits; commits closed (the committee draw happens here)."""
    r = task.as_(members[0]).open_round()
    for i, member in enumerate(members):
        task.as_(member).commit_update(r, h(f"committee-update-{r}-{i}"), 100)
    assert task.as_(members[0]).close_commits(r) is Phase.VALIDATE
    return r


@pytest.fixture
def seven(ledger: Ledger) -> list[LocalAccount]:
    return ledger.members + admit(ledger, 3, "seven")


def test_each_update_gets_a_committee_without_its_owner(ledger: Ledger, seven: list[LocalAccount]) -> None:
    task = committee_task(ledger)
    block = ledger.chain.block_number
    r = validation_round(ledger, task, seven)
    info = task.round(r)
    assert info.committee_seed != "0x" + "00" * 32
    assert info.expected_validators == len(seven)
    closed = [e for e in task.events(from_block=block + 1) if isinstance(e, CommitsClosed)]
    assert [e.committee_seed for e in closed] == [info.committee_seed]
    addresses = [m.address for m in seven]
    committees = [task.committee_of(r, i) for i in range(len(seven))]
    for i, committee in enumerate(committees):
        assert len(committee) == COMMITTEE == len(set(committee))
        assert addresses[i] not in committee
        assert set(committee) <= set(addresses)
    # Total seats = updates x committee size: the cost scales with N x c, not N^2.
    seats = {a: task.assignments_of(r, a) for a in addresses}
    assert sum(len(s) for s in seats.values()) == len(seven) * COMMITTEE
    for a, indices in seats.items():
        assert indices == [i for i, c in enumerate(committees) if a in c]


def test_a_new_round_draws_new_committees(ledger: Ledger, seven: list[LocalAccount]) -> None:
    task = committee_task(ledger)
    draws = []
    for _ in range(2):
        r = validation_round(ledger, task, seven)
        draws.append((task.round(r).committee_seed, [task.committee_of(r, i) for i in range(len(seven))]))
        for member in seven:
            task.as_(member).submit_scores(
                r, [9000 if i in task.assignments_of(r, member.address) else None for i in range(len(seven))]
            )
        task.as_(seven[0]).close_validation(r)
        task.as_(seven[0]).propose_aggregate(r, h(f"model-{r}"), task.round(r).accepted_mask)
        task.as_(seven[1]).propose_aggregate(r, h(f"model-{r}"), task.round(r).accepted_mask)
    assert draws[0][0] != draws[1][0]


def test_scores_outside_the_committee_are_refused(ledger: Ledger, seven: list[LocalAccount]) -> None:
    task = committee_task(ledger)
    r = validation_round(ledger, task, seven)
    # The draw is random: take a validator with a seat missing (21 seats over 7 validators leave some, but any
    # single validator may sit on all six other committees).
    seats = [task.assignments_of(r, m.address) for m in seven]
    me = next(k for k in range(len(seven)) if len(seats[k]) < len(seven) - 1)
    v, mine = seven[me], seats[me]
    outside = next(i for i in range(len(seven)) if i not in mine and i != me)

    def state() -> tuple[int, list[list[int]]]:
        return ledger.chain.block_number, [task.scores_of(r, i) for i in range(len(seven))]

    scores: list[int | None] = [None] * len(seven)
    scores[outside] = 9000
    refused(state, NotAuthorized, "task: validator not in the update's committee", task.as_(v).submit_scores, r, scores)
    own: list[int | None] = [None] * len(seven)
    own[me] = 9000
    refused(state, InvalidArgument, "task: validator cannot score its own update", task.as_(v).submit_scores, r, own)
    # A validator admitted after the draw has no seat in this round.
    (late,) = admit(ledger, 1, "late")
    scores = [9000 if i == 0 else None for i in range(len(seven))]
    refused(state, NotAuthorized, "task: validator not drawn for this round", task.as_(late).submit_scores, r, scores)
    # Its own seats are fine.
    task.as_(v).submit_scores(r, [9000 if i in mine else None for i in range(len(seven))])
    assert all(task.scores_of(r, i) == [9000] for i in mine)


def test_a_lying_minority_in_every_committee_cannot_flip_acceptance(ledger: Ledger, seven: list[LocalAccount]) -> None:
    task = committee_task(ledger)
    r = validation_round(ledger, task, seven)
    poisoned, liar = 6, seven[0]  # one liar: at most one of the three seats in any committee
    for member in seven:
        seats = task.assignments_of(r, member.address)
        honest = [None if i not in seats else (1000 if i == poisoned else 9000) for i in range(len(seven))]
        lies = [None if s is None else 10_000 - s for s in honest]
        task.as_(member).submit_scores(r, lies if member is liar else honest)
    assert task.round(r).num_scored == len(seven)
    task.as_(seven[1]).close_validation(r)  # early: every drawn validator scored
    assert task.round(r).accepted == [i for i in range(len(seven)) if i != poisoned]


def test_committee_size_is_bounded(ledger: Ledger) -> None:
    with pytest.raises(InvalidArgument, match="task: committee size out of range"):
        committee_task(ledger, size=65)


def test_committees_are_not_runs_of_neighbours_in_admission_order(ledger: Ledger, seven: list[LocalAccount]) -> None:
    """Colluders admitted (and committing) one after another must not sit together: were committees the next
    committers in order, each committee with its update's owner would be a run of neighbours there."""
    task = committee_task(ledger)
    r = validation_round(ledger, task, seven)
    position = {m.address: k for k, m in enumerate(seven)}

    def is_run(addresses: set[str]) -> bool:
        at = {position[a] for a in addresses}
        return any(at == {(start + k) % len(seven) for k in range(len(at))} for start in range(len(seven)))

    runs = [
        is_run(set(task.committee_of(r, i))) or is_run(set(task.committee_of(r, i)) | {m.address})
        for i, m in enumerate(seven)
    ]
    assert not all(runs)
    # Still a committee of distinct validators per update, drawn among the round's validators.
    assert all(len(set(task.committee_of(r, i))) == COMMITTEE for i in range(len(seven)))
