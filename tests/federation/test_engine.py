"""The round engine over the in-memory ledger and over the TrainingTask contract: a validated round's protocol.

Members here are minimal: a trainer commits a named hash, a validator scores each update from a table, an
aggregator proposes a hash derived from the accepted set. What is under test is the loop every member runs
(open, duty, close), the in-memory ledger's rules (deadlines, acceptance by median, quorum, reputation), and
that the contract and the in-memory ledger take the same members through the same rounds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from conftest import MEMBER_ROLES, h
from conftest import Ledger as ChainFixture
from fedledger.chain.consortium import Role
from fedledger.chain.task import Phase, RoundInfo, TaskParams, TrainingTaskClient
from fedledger.exceptions import InvalidState, NotAuthorized, TrainingRefused
from fedledger.federation.engine import RoundEngine, ValidatedRounds, phase_deadline
from fedledger.federation.ledger import Ledger, SecureLedger
from fedledger.federation.memory_ledger import InMemoryLedger
from fedledger.federation.rules import accepted_mask, verdict

ALL = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR


@dataclass
class ToyMember:
    """Trains by committing ``update-<name>-<round>``; scores update ``i`` by ``score_of[owner]``."""

    name: str
    ledger: Ledger
    score_of: dict[str, int]
    trains: bool = True
    trainer_reputation: bool = False
    refuse: bool = False
    refusals: dict[int, TrainingRefused] = field(default_factory=dict)
    left_out: set[int] = field(default_factory=set)
    left_out_as_trainer: set[int] = field(default_factory=set)
    events: list[tuple[str, int]] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.name

    def emit(self, action: str, round_id: int, **details: Any) -> None:
        self.events.append((action, round_id))

    def train_and_commit(self, info: RoundInfo) -> None:
        if self.refuse:
            raise TrainingRefused(f"{self.name} refuses")
        self.ledger.commit_update(info.round_id, h(f"update-{self.name}-{info.round_id}"), 10)
        self.emit("commit", info.round_id)

    def score(self, info: RoundInfo) -> None:
        updates = self.ledger.updates(info.round_id)
        seats = set(self.ledger.assignments_of(info.round_id, self.name))
        scores = [self.score_of[u.member] if u.index in seats else None for u in updates]
        self.ledger.submit_scores(info.round_id, scores)
        self.emit("score", info.round_id)

    def aggregate(self, info: RoundInfo) -> None:
        model = h(f"model-{info.round_id}-{info.accepted_mask}")
        self.ledger.propose_aggregate(info.round_id, model, info.accepted_mask)
        self.emit("propose", info.round_id)


def _federation(
    names: list[str], score_of: dict[str, int], **params: Any
) -> tuple[InMemoryLedger, list[ToyMember], list[RoundEngine[Any]]]:
    settings: dict[str, Any] = {"min_commitments": 2, "acceptance_threshold": 5_000, "proposal_quorum": 2}
    settings.update(params)
    ledger = InMemoryLedger(TaskParams("cfg", "model-0", **settings), dict.fromkeys(names, ALL))
    members, engines = [], []
    for name in names:
        seat = ledger.as_(name)
        member = ToyMember(name, seat, score_of, trainer_reputation=bool(params.get("max_rejection")))
        members.append(member)
        mode = ValidatedRounds(seat, member, member.emit)
        engines.append(RoundEngine(seat, mode, name=name, rounds=3, emit=member.emit, wall_clock=None))
    return ledger, members, engines


def _run(ledger: InMemoryLedger, engines: list[RoundEngine[Any]], *, max_passes: int = 200) -> None:
    """Step every engine until a pass does nothing; then move the clock past the phase's deadline."""
    for _ in range(max_passes):
        if not any([engine.step() for engine in engines]):
            info = ledger.round(ledger.current_round)
            deadline = phase_deadline(info)
            if deadline is None:
                return
            ledger.advance_time(deadline - ledger.now + 1)
    raise AssertionError("the rounds did not finish")


def test_three_validated_rounds_finalize_with_the_accepted_set_the_scores_give() -> None:
    names = ["a", "b", "c", "d"]
    ledger, members, engines = _federation(names, {"a": 9000, "b": 8000, "c": 7000, "d": 1000})
    _run(ledger, engines)
    assert ledger.current_round == 3
    for r in (1, 2, 3):
        info = ledger.round(r)
        assert info.phase is Phase.FINALIZED
        updates = ledger.updates(r)
        assert sorted(u.member for u in updates) == names  # each member once
        # "d" scores below the threshold everywhere
        assert info.accepted == sorted(u.index for u in updates if u.member != "d")
        assert info.model_hash == h(f"model-{r}-{info.accepted_mask}")
        scores = [ledger.scores_of(r, i) for i in range(4)]
        assert all(len(s) == 3 for s in scores)  # every other validator, never the owner
        assert accepted_mask(scores, 5_000) == info.accepted_mask
    # One action per step: the opener commits on its next step, the first member to find a phase complete closes
    # it, and the second proposal of the same model reaches the quorum.
    assert {m.name: [action for action, r in m.events if r == 1] for m in members} == {
        "a": ["open_round", "commit", "score", "propose"],
        "b": ["commit", "close_commits", "score"],
        "c": ["commit", "score", "close_validation"],
        "d": ["commit", "score", "propose"],
    }


def test_a_round_below_the_commitment_quorum_aborts_at_its_deadline_and_the_next_one_opens() -> None:
    ledger, members, engines = _federation(["a", "b", "c"], {"a": 9000, "b": 9000, "c": 9000}, min_commitments=3)
    members[2].refuse = True
    _run(ledger, engines)
    assert [ledger.round(r).phase for r in (1, 2, 3)] == [Phase.ABORTED] * 3
    assert sorted(members[2].refusals) == [1, 2, 3]
    assert ("refuse", 1) in members[2].events


def test_trainer_reputation_leaves_a_rejected_trainer_out_of_later_rounds() -> None:
    scores = {"a": 9000, "b": 8000, "c": 7000, "d": 1000}
    ledger, members, engines = _federation(list(scores), scores, max_rejection=5_000, reputation_warmup=1)
    _run(ledger, engines)
    assert sorted(u.member for u in ledger.updates(1)) == ["a", "b", "c", "d"]
    assert sorted(u.member for u in ledger.updates(2)) == ["a", "b", "c"]  # distrusted once round 1's outcome is in
    assert members[3].left_out_as_trainer == {2, 3}
    assert ledger.trainer_standing("d").distrusted and not ledger.trainer_standing("a").distrusted


def test_the_in_memory_ledger_refuses_what_the_contract_refuses() -> None:
    ledger, _, _ = _federation(["a", "b"], {"a": 9000, "b": 9000})
    a, outsider = ledger.as_("a"), ledger.as_("z")
    with pytest.raises(NotAuthorized):
        outsider.open_round()
    a.open_round()
    with pytest.raises(InvalidState, match="previous round not closed"):
        a.open_round()
    a.commit_update(1, "h", 1)
    with pytest.raises(InvalidState, match="already committed"):
        a.commit_update(1, "h", 1)
    with pytest.raises(InvalidState, match="commit phase still running"):
        a.close_commits(1)
    ledger.advance_time(10_000)
    with pytest.raises(InvalidState, match="commit deadline passed"):
        ledger.as_("b").commit_update(1, "h", 1)


def test_acceptance_is_the_median_of_the_scores_given() -> None:
    assert verdict([], 5_000).accepted is False and verdict([], 5_000).score is None
    assert verdict([4_000, 6_000], 5_000).score == 5_000  # the floor of the two middle values' mean
    assert verdict([1, 9_000, 9_000], 5_000).accepted
    assert accepted_mask([[9_000], [], [4_999]], 5_000) == 0b1


def test_acceptance_by_approvals_takes_the_kth_most_favourable_score() -> None:
    assert verdict([1_000, 2_000, 9_000], 5_000, 1) == verdict([9_000], 5_000)  # one validator gains: accepted
    assert verdict([1_000, 2_000, 9_000], 5_000, 2).score == 2_000  # two approvals needed: rejected
    assert verdict([6_000, 7_000], 5_000, 3).score == 6_000  # fewer scores than approvals: every one must approve
    assert not verdict([4_999, 4_999, 4_999], 5_000, 1).accepted  # nobody gains: rejected
    assert accepted_mask([[9_000, 0, 0], [4_000, 4_000], []], 5_000, 1) == 0b1


def test_the_chain_client_and_the_in_memory_ledger_implement_the_port() -> None:
    # Checked by mypy (strict) on these assignments; at run time, both offer every operation of the port.
    def as_ledger(ledger: Ledger) -> Ledger:
        return ledger

    def as_secure(ledger: SecureLedger) -> SecureLedger:
        return ledger

    as_ledger(InMemoryLedger(TaskParams("cfg", "m"), {}))
    port = [name for name in dir(SecureLedger) if not name.startswith("_")]
    missing = [name for name in port if not hasattr(TrainingTaskClient, name) and name != "address"]
    assert not missing, missing
    assert as_secure is not None


def test_the_honest_behavior_is_the_protocol_at_every_point() -> None:
    from fedledger.federation import Behavior, Honest

    honest: Behavior = Honest()
    trained = {"w": np.ones(2, np.float32)}
    calls: list[int] = []

    def train() -> dict[str, np.ndarray[Any, Any]]:
        calls.append(1)
        return trained

    assert honest.local_params(train, {"w": np.zeros(2, np.float32)}, 1) is trained and calls == [1]
    assert honest.claimed_examples(7, max_examples=100) == 7
    committees_read: list[int] = []

    def committees() -> list[list[str]]:
        committees_read.append(1)
        return [["a"]]

    assert honest.scores([9000, None], ["a", "b"], committees) == [9000, None]
    assert not committees_read  # an honest validator needs no committee read


def test_the_contract_and_the_in_memory_ledger_take_members_through_the_same_rounds(ledger: ChainFixture) -> None:
    """The same members, stepped in the same order, over the TrainingTask contract and the in-memory ledger with
    the same parameters and roles: the same actions, commitments, accepted sets and finalized models."""
    scores = [9000, 7000, 3000, 8000]  # member i's update scores scores[i] with every validator
    runs: dict[str, tuple[list[ToyMember], Any]] = {}
    chain_members: list[str] = [str(m.address) for m in ledger.members]
    admin_address = str(ledger.admin.address)
    roles = {admin_address: int(Role.ADMIN)} | dict.fromkeys(chain_members, int(MEMBER_ROLES))
    memory = InMemoryLedger(ledger.params, roles)
    seats: dict[str, tuple[Ledger, list[tuple[str, Ledger]]]] = {
        "chain": (ledger.task.as_(ledger.admin), [(a.address, ledger.task.as_(a)) for a in ledger.members]),
        "memory": (memory.as_(admin_address), [(address, memory.as_(address)) for address in chain_members]),
    }
    for kind, (admin_seat, member_seats) in seats.items():
        score_of = {address: scores[i] for i, (address, _) in enumerate(member_seats)}
        admin = ToyMember(admin_address, admin_seat, score_of, trains=False)
        members = [ToyMember(address, seat, score_of) for address, seat in member_seats]
        engines = [
            RoundEngine(m.ledger, ValidatedRounds(m.ledger, m, m.emit), name=m.name, rounds=2, emit=m.emit)
            for m in (admin, *members)
        ]
        for _ in range(20):
            if not any([engine.step() for engine in engines]):
                break
        runs[kind] = (members, admin_seat)
    (chain_run, chain_seat), (memory_run, memory_seat) = runs["chain"], runs["memory"]
    assert [m.events for m in chain_run] == [m.events for m in memory_run]
    assert chain_seat.current_round == memory_seat.current_round == 2
    for r in (1, 2):
        on_chain, in_memory = chain_seat.round(r), memory_seat.round(r)
        assert on_chain.phase is in_memory.phase is Phase.FINALIZED
        committed = [u.member for u in chain_seat.updates(r)]
        assert committed == [u.member for u in memory_seat.updates(r)] and sorted(committed) == sorted(chain_members)
        passing = [i for i, member in enumerate(committed) if scores[chain_members.index(member)] >= 5000]
        assert on_chain.accepted == in_memory.accepted == passing and len(passing) == 3
        assert on_chain.model_hash == in_memory.model_hash
