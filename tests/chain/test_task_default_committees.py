"""Committees on by default: a task created with ``committee_size`` 0 draws committees once a round opens with more
than ``AUTO_COMMITTEE_ABOVE`` validators, among the round's committers by a seeded step, and a small round keeps
every validator scoring every other update.

The contract's draw is checked against its off-chain mirror (:func:`committee_indices`, :func:`seat_indices`).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, Ledger, h
from fedledger.chain import Phase, TrainingTaskClient
from fedledger.chain.task import (
    AUTO_COMMITTEE_ABOVE,
    AUTO_COMMITTEE_SIZE,
    committee_indices,
    round_committee_size,
    seat_indices,
)
from helpers.consortium import admit

TWELVE = 12


@pytest.fixture
def twelve(ledger: Ledger) -> list[LocalAccount]:
    return ledger.members + admit(ledger, TWELVE - len(ledger.members), "twelve")


def default_task(ledger: Ledger) -> TrainingTaskClient:
    params = replace(DEFAULT_PARAMS, committee_size=0, max_disagreement=5_000, reputation_warmup=10)
    return TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)


def test_the_mirror_fixes_the_size_and_inverts_the_draw() -> None:
    assert round_committee_size(0, AUTO_COMMITTEE_ABOVE) == 0
    assert round_committee_size(0, AUTO_COMMITTEE_ABOVE + 1) == AUTO_COMMITTEE_SIZE
    assert round_committee_size(3, 1000) == 3
    n, size, step = 1000, AUTO_COMMITTEE_SIZE, 377
    seats: dict[int, list[int]] = {q: [] for q in range(n)}
    for i in range(n):
        committee = committee_indices(i, n, size, step)
        assert len(set(committee)) == size and i not in committee
        for q in committee:
            seats[q].append(i)
    assert all(sorted(seats[q]) == seat_indices(q, n, size, step) for q in range(n))
    assert committee_indices(0, 3, size, 1) == [1, 2]  # at most every other update


def test_a_twelve_member_round_draws_default_committees(ledger: Ledger, twelve: list[LocalAccount]) -> None:
    task = default_task(ledger)
    r = task.as_(twelve[0]).open_round()
    assert task.round_committee(r) == AUTO_COMMITTEE_SIZE
    for i, member in enumerate(twelve):
        task.as_(member).commit_update(r, h(f"default-committee-{i}"), 100)
    assert task.committee_step(r) == 0  # drawn only when commits close
    assert task.as_(twelve[0]).close_commits(r) is Phase.VALIDATE
    step, addresses, poisoned = task.committee_step(r), [m.address for m in twelve], 5
    assert step not in (0, 1, TWELVE - 1)
    assert task.round(r).expected_validators == TWELVE
    for i in range(TWELVE):
        assert task.committee_of(r, i) == [
            addresses[q] for q in committee_indices(i, TWELVE, AUTO_COMMITTEE_SIZE, step)
        ]
    for q, member in enumerate(twelve):
        seats = task.assignments_of(r, member.address)
        assert seats == seat_indices(q, TWELVE, AUTO_COMMITTEE_SIZE, step)
        task.as_(member).submit_scores(
            r, [(1000 if i == poisoned else 9000) if i in seats else None for i in range(TWELVE)]
        )
    assert all(len(task.scores_of(r, i)) == AUTO_COMMITTEE_SIZE for i in range(TWELVE))
    assert task.as_(twelve[1]).close_validation(r) is Phase.AGGREGATE  # early: every seated committer scored
    assert task.round(r).accepted == [i for i in range(TWELVE) if i != poisoned]


def test_a_round_of_few_validators_has_no_committee(ledger: Ledger) -> None:
    task = default_task(ledger)
    r = task.as_(ledger.members[0]).open_round()
    assert task.round_committee(r) == 0
    for i, member in enumerate(ledger.members):
        task.as_(member).commit_update(r, h(f"small-round-{i}"), 100)
    task.as_(ledger.members[0]).close_commits(r)
    assert task.committee_step(r) == 0
    addresses = [m.address for m in ledger.members]
    for q, a in enumerate(addresses):
        assert task.assignments_of(r, a) == [i for i in range(len(addresses)) if i != q]
