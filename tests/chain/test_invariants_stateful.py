"""Stateful property test: random call sequences against the round machine.

A hypothesis ``RuleBasedStateMachine`` drives the TrainingTask and Consortium
contracts on the embedded chain with random callers (members, the admin, an
outsider, revoked members), random rounds and random timing, and keeps a plain
Python model of what the contracts should do. Every call's outcome (success, or
the exact revert string) must match the model, and after every step the DESIGN.md
invariants are checked against the chain:

- one commitment per member per round;
- finalization only with a quorum of identical proposals;
- revoked members cannot act (no event names them after their revocation);
- rounds only move forward (``current_round`` never decreases, a finalized
  round's model never changes).

A refused call must raise one of our typed contract errors, nothing else.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import Ledger, h, run_machine
from fedledger.chain import Phase, Role
from fedledger.chain.events import AggregateProposed, MemberRevoked, RoundFinalized
from fedledger.exceptions import ContractRevert, DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized

QUORUM = 2  # DEFAULT_PARAMS.proposal_quorum
MIN_COMMITMENTS = 2  # DEFAULT_PARAMS.min_commitments
THRESHOLD = 5000  # DEFAULT_PARAMS.acceptance_threshold
MAX_REVOKED = 2  # keep enough members for rounds to progress
ACTOR_FIELDS = ("member", "validator", "aggregator", "opener", "reporter")
CLOSED = (Phase.NONE, Phase.FINALIZED, Phase.ABORTED)

actors = st.integers(min_value=0, max_value=5)  # 0..3 members, 4 admin, 5 outsider
score_values = st.sampled_from([None, 0, 3000, 5000, 7000, 10_000])


def median(values: list[int]) -> int:
    xs = sorted(values)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2


@dataclass
class RoundModel:
    phase: Phase
    expected_trainers: int
    expected_validators: int
    commits: list[str] = field(default_factory=list)
    scored: set[str] = field(default_factory=set)
    scores: list[list[int]] = field(default_factory=list)
    mask: int = 0
    proposed: set[str] = field(default_factory=set)
    votes: Counter[str] = field(default_factory=Counter)
    model_hash: str | None = None


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self, ledger: Ledger) -> None:
        super().__init__()
        self.ledger = ledger
        self.chain = ledger.chain
        self.snapshot = self.chain.snapshot()
        self.accounts = [*ledger.members, ledger.admin, ledger.outsider]
        self.addresses = [a.address for a in self.accounts]
        self.roles: dict[str, Role] = {
            m.address: Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR for m in ledger.members
        }
        self.roles[ledger.admin.address] = Role.ADMIN
        self.revoked: dict[str, int] = {}  # address -> block it was revoked in
        self.rounds: dict[int, RoundModel] = {}
        self.current = 0
        self.latest_model = ledger.params.initial_model
        self.clock = 0  # number of time jumps (each longer than any phase)
        self.phase_started = 0  # clock when the current phase began
        self.max_round_seen = 0
        self.finalized_seen: dict[int, str] = {}
        self.events_from = self.chain.block_number + 1
        self.actions = Counter[str]()

    def teardown(self) -> None:
        self.chain.revert(self.snapshot)

    # -- model helpers ---------------------------------------------------------------

    def active(self, address: str) -> bool:
        return address in self.roles and address not in self.revoked

    def has_role(self, address: str, role: Role) -> bool:
        return self.active(address) and self.roles[address] & role == role

    def count_role(self, role: Role) -> int:
        return sum(self.has_role(a, role) for a in self.roles)

    def deadline_passed(self) -> bool:
        return self.clock > self.phase_started

    def round_check(self, round_id: int, phase: Phase, message: str) -> str | None:
        if round_id != self.current or round_id == 0:
            return "task: wrong round"
        if self.rounds[round_id].phase is not phase:
            return message
        return None

    def attempt(self, name: str, expected: str | None, fn: Callable[..., Any], *args: Any) -> bool:
        """Call ``fn``; it must succeed when ``expected`` is None, else be refused with exactly that reason."""
        block = self.chain.block_number
        try:
            fn(*args)
        except ContractRevert as exc:
            assert isinstance(exc, NotAuthorized | InvalidState | DeadlinePassed | InvalidArgument), repr(exc)
            assert expected is not None, f"{name}: unexpectedly refused: {exc.reason!r}"
            assert exc.reason == expected, f"{name}: refused with {exc.reason!r}, model expected {expected!r}"
            assert self.chain.block_number == block, f"{name}: a refused call changed the chain"
            self.actions[f"{name} refused"] += 1
            return False
        assert expected is None, f"{name}: succeeded, model expected refusal {expected!r}"
        self.actions[f"{name} ok"] += 1
        return True

    def task(self, actor: int) -> Any:
        return self.ledger.task.as_(self.accounts[actor])

    # -- rules --------------------------------------------------------------------

    @initialize(committers=st.integers(2, 4), first_choice=st.sampled_from(["A", "B"]))
    def honest_first_round(self, committers: int, first_choice: str) -> None:
        """Every example starts from one finalized round, through the model-checked rules,
        so that later steps always have a finalized model that must never change."""
        self.open_round(4)
        for i in range(committers):
            self.commit(i, 0, 0, False)
        if committers < 4:
            self.advance_time()
        self.close_commits(4)
        for i in range(4):
            self.submit_scores(i, [9000] * 4, "none")
        self.close_validation(4)
        for i, choice in enumerate([first_choice, "A", "A"]):
            if self.rounds[1].phase is Phase.AGGREGATE:
                self.propose_aggregate(i, choice, False, False)
        assert self.rounds[1].phase is Phase.FINALIZED

    @rule(actor=actors)
    def open_round(self, actor: int) -> None:
        who = self.addresses[actor]
        expected = None
        if not (self.has_role(who, Role.AGGREGATOR) or self.has_role(who, Role.ADMIN)):
            expected = "task: caller is not an aggregator or admin"
        elif self.current and self.rounds[self.current].phase not in CLOSED:
            expected = "task: previous round not closed"
        if self.attempt("open_round", expected, self.task(actor).open_round):
            self.current += 1
            self.rounds[self.current] = RoundModel(
                Phase.OPEN, self.count_role(Role.TRAINER), self.count_role(Role.VALIDATOR)
            )
            self.phase_started = self.clock

    @rule(
        actor=actors,
        offset=st.sampled_from([0, 0, 0, 0, -1, 1]),
        variant=st.integers(0, 1),
        zero=st.sampled_from([False] * 7 + [True]),
    )
    def commit(self, actor: int, offset: int, variant: int, zero: bool) -> None:
        who = self.addresses[actor]
        round_id = max(self.current + offset, 0)
        update = "0x" + "00" * 32 if zero else h(f"update-{round_id}-{actor}-{variant}")
        expected = None
        if not self.has_role(who, Role.TRAINER):
            expected = "task: caller is not a trainer"
        elif (bad := self.round_check(round_id, Phase.OPEN, "task: round not open")) is not None:
            expected = bad
        elif self.deadline_passed():
            expected = "task: commit deadline passed"
        elif zero:
            expected = "task: zero hash"
        elif who in self.rounds[round_id].commits:
            expected = "task: already committed"
        if self.attempt("commit_update", expected, self.task(actor).commit_update, round_id, update, 10 + actor):
            self.rounds[round_id].commits.append(who)

    @rule(actor=actors)
    def close_commits(self, actor: int) -> None:
        who = self.addresses[actor]
        r = self.rounds.get(self.current)
        expected = None
        if not self.active(who):
            expected = "task: caller is not a member"
        elif (bad := self.round_check(self.current, Phase.OPEN, "task: round not open")) is not None:
            expected = bad
        elif r is not None and not (self.deadline_passed() or len(r.commits) >= r.expected_trainers):
            expected = "task: commit phase still running"
        if self.attempt("close_commits", expected, self.task(actor).close_commits, self.current):
            assert r is not None
            if len(r.commits) < MIN_COMMITMENTS:
                self.actions["round aborted"] += 1
                r.phase = Phase.ABORTED
            else:
                r.phase = Phase.VALIDATE
                r.scores = [[] for _ in r.commits]
                self.phase_started = self.clock

    @rule(
        actor=actors,
        values=st.lists(score_values, min_size=4, max_size=4),
        corrupt=st.sampled_from(["none"] * 6 + ["self", "range", "length"]),
    )
    def submit_scores(self, actor: int, values: list[int | None], corrupt: str) -> None:
        who = self.addresses[actor]
        r = self.rounds.get(self.current)
        n = len(r.commits) if r is not None else 0
        own = r.commits.index(who) if r is not None and who in r.commits else None
        scores = values[:n]
        if own is not None:
            scores[own] = None
        if corrupt == "self" and own is not None:
            scores[own] = 9000
        elif corrupt == "range" and n:
            scores[-1] = 10_001
        elif corrupt == "length":
            scores.append(5000)
        expected = None
        if not self.has_role(who, Role.VALIDATOR):
            expected = "task: caller is not a validator"
        elif (bad := self.round_check(self.current, Phase.VALIDATE, "task: round not in validation")) is not None:
            expected = bad
        elif self.deadline_passed():
            expected = "task: validation deadline passed"
        elif who in r.scored:  # type: ignore[union-attr]
            expected = "task: already scored"
        else:
            for i, s in enumerate(scores):
                if s is None:
                    continue
                if i >= n:
                    expected = "task: unknown update"
                    break
                if s > 10_000:
                    expected = "task: score out of range"
                    break
                if own == i:
                    expected = "task: validator cannot score its own update"
                    break
        if self.attempt("submit_scores", expected, self.task(actor).submit_scores, self.current, scores):
            assert r is not None
            r.scored.add(who)
            for i, s in enumerate(scores):
                if s is not None:
                    r.scores[i].append(s)

    @rule(actor=actors)
    def close_validation(self, actor: int) -> None:
        who = self.addresses[actor]
        r = self.rounds.get(self.current)
        expected = None
        if not self.active(who):
            expected = "task: caller is not a member"
        elif (bad := self.round_check(self.current, Phase.VALIDATE, "task: round not in validation")) is not None:
            expected = bad
        elif r is not None and not (self.deadline_passed() or len(r.scored) >= r.expected_validators):
            expected = "task: validation phase still running"
        if self.attempt("close_validation", expected, self.task(actor).close_validation, self.current):
            assert r is not None
            r.mask = sum(1 << i for i, s in enumerate(r.scores) if s and median(s) >= THRESHOLD)
            if r.mask == 0:
                self.actions["round aborted"] += 1
                r.phase = Phase.ABORTED
            else:
                r.phase = Phase.AGGREGATE
                self.phase_started = self.clock

    @rule(
        actor=actors,
        choice=st.sampled_from(["A", "A", "B"]),
        wrong_mask=st.sampled_from([False] * 5 + [True]),
        zero=st.sampled_from([False] * 7 + [True]),
    )
    def propose_aggregate(self, actor: int, choice: str, wrong_mask: bool, zero: bool) -> None:
        who = self.addresses[actor]
        r = self.rounds.get(self.current)
        model = "0x" + "00" * 32 if zero else h(f"model-{self.current}-{choice}")
        mask = (r.mask if r is not None else 0) ^ (1 if wrong_mask else 0)
        expected = None
        if not self.has_role(who, Role.AGGREGATOR):
            expected = "task: caller is not an aggregator"
        elif (bad := self.round_check(self.current, Phase.AGGREGATE, "task: round not in aggregation")) is not None:
            expected = bad
        elif self.deadline_passed():
            expected = "task: aggregation deadline passed"
        elif zero:
            expected = "task: zero hash"
        elif wrong_mask:
            expected = "task: accepted set does not match validation"
        elif who in r.proposed:  # type: ignore[union-attr]
            expected = "task: already proposed"
        if self.attempt("propose_aggregate", expected, self.task(actor).propose_aggregate, self.current, model, mask):
            assert r is not None
            r.proposed.add(who)
            r.votes[model] += 1
            if r.votes[model] >= QUORUM:
                self.actions["round finalized"] += 1
                r.phase = Phase.FINALIZED
                r.model_hash = model
                self.latest_model = model

    @rule(actor=actors)
    def close_aggregation(self, actor: int) -> None:
        who = self.addresses[actor]
        expected = None
        if not self.active(who):
            expected = "task: caller is not a member"
        elif (bad := self.round_check(self.current, Phase.AGGREGATE, "task: round not in aggregation")) is not None:
            expected = bad
        elif not self.deadline_passed():
            expected = "task: aggregation phase still running"
        if self.attempt("close_aggregation", expected, self.task(actor).close_aggregation, self.current):
            self.rounds[self.current].phase = Phase.ABORTED
            self.actions["round aborted"] += 1

    @rule(actor=actors, index=st.integers(0, 4))
    def flag_update(self, actor: int, index: int) -> None:
        who = self.addresses[actor]
        expected = None
        if not (self.has_role(who, Role.VALIDATOR) or self.has_role(who, Role.AGGREGATOR)):
            expected = "task: caller is not a validator or aggregator"
        elif self.current == 0:
            expected = "task: wrong round"
        elif index >= len(self.rounds[self.current].commits):
            expected = "task: unknown update"
        self.attempt("flag_update", expected, self.task(actor).flag_update, self.current, index, "suspicious")

    @rule(member=st.integers(0, 3))
    def revoke(self, member: int) -> None:
        target = self.addresses[member]
        if target not in self.revoked and len(self.revoked) >= MAX_REVOKED:
            return
        expected = "consortium: not an active member" if target in self.revoked else None
        admin = self.ledger.consortium.as_(self.ledger.admin)
        if self.attempt("propose_revoke", expected, admin.propose_revoke, target):
            self.revoked[target] = self.chain.block_number

    def drive(self, pick: int, values: list[int | None], choice: str) -> None:
        """Play the current phase to its end, honestly, by the members still able to.

        Random calls alone rarely get a round to the end; this keeps rounds moving
        (through the same model-checked rules) so later phases are exercised too,
        while the random rules interleave between and within phases.
        """
        r = self.rounds.get(self.current)
        active = [i for i in range(4) if self.active(self.addresses[i])]
        if r is None or r.phase in CLOSED:
            self.open_round(active[pick % len(active)] if active else 4)
            return
        if r.phase is Phase.OPEN:
            if not self.deadline_passed():
                for i in active:
                    if self.addresses[i] not in r.commits:
                        self.commit(i, 0, pick, False)
            if len(r.commits) < r.expected_trainers:
                self.advance_time()
            self.close_commits(4)
        elif r.phase is Phase.VALIDATE:
            if not self.deadline_passed():
                for i in active:
                    if self.addresses[i] not in r.scored:
                        self.submit_scores(i, values, "none")
            if len(r.scored) < r.expected_validators:
                self.advance_time()
            self.close_validation(4)
        elif not self.deadline_passed():
            for n, i in enumerate(active):
                if r.phase is Phase.AGGREGATE and self.addresses[i] not in r.proposed:
                    self.propose_aggregate(i, choice if n == 0 else "A", False, False)
        else:
            self.close_aggregation(4)

    # Registered three times so that it is picked, and kept enabled by hypothesis'
    # swarm testing (which switches rules off per example), often enough.
    _drive_args = {
        "pick": st.integers(0, 3),
        "values": st.lists(st.sampled_from([None, 2000, 6000, 8000, 10_000]), min_size=4, max_size=4),
        "choice": st.sampled_from(["A", "A", "B"]),
    }
    drive_1 = rule(**_drive_args)(drive)
    drive_2 = rule(**_drive_args)(drive)
    drive_3 = rule(**_drive_args)(drive)

    @rule()
    def advance_time(self) -> None:
        self.chain.advance_time(601)
        self.clock += 1

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def rounds_only_move_forward(self) -> None:
        task = self.ledger.task
        current = task.current_round
        assert current >= self.max_round_seen
        assert current == self.current
        self.max_round_seen = current
        assert task.latest_model == self.latest_model
        for round_id, model in self.finalized_seen.items():
            assert task.model_at(round_id) == model, f"finalized round {round_id} changed its model"

    @invariant()
    def chain_matches_model(self) -> None:
        task = self.ledger.task
        for round_id, r in self.rounds.items():
            info = task.round(round_id)
            assert info.phase is r.phase, f"round {round_id}: chain {info.phase!r}, model {r.phase!r}"
            assert info.num_updates == len(r.commits)
            assert info.num_scored == len(r.scored)
            assert (info.expected_trainers, info.expected_validators) == (r.expected_trainers, r.expected_validators)
            if r.phase in (Phase.AGGREGATE, Phase.FINALIZED):
                assert info.accepted_mask == r.mask
            if r.phase is Phase.FINALIZED:
                assert info.model_hash == r.model_hash
                self.finalized_seen.setdefault(round_id, info.model_hash)
            else:
                assert info.model_hash == "0x" + "00" * 32
        if self.current:
            # One commitment per member per round, in the order the model saw them.
            members = [u.member for u in task.updates(self.current)]
            assert members == self.rounds[self.current].commits
            assert len(set(members)) == len(members)

    @invariant()
    def events_respect_quorum_and_revocation(self) -> None:
        task = self.ledger.task
        new = task.events(from_block=self.events_from)
        revocations = self.ledger.consortium.events(from_block=self.events_from)
        self.events_from = self.chain.block_number + 1
        for e in revocations:
            if isinstance(e, MemberRevoked):
                assert self.revoked.get(e.member) == e.block_number
        for e in new:
            for name in ACTOR_FIELDS:
                actor = getattr(e, name, None)
                if actor in self.revoked:
                    assert e.block_number < self.revoked[actor], f"revoked {actor} acted: {e}"
            if isinstance(e, RoundFinalized):
                proposals = [
                    p
                    for p in task.events(from_block=0, to_block=e.block_number)
                    if isinstance(p, AggregateProposed) and p.round_id == e.round_id and p.model_hash == e.model_hash
                ]
                assert len({p.aggregator for p in proposals}) >= QUORUM
                assert e.model_hash == self.rounds[e.round_id].model_hash


def test_round_machine_invariants(own_ledger: Ledger) -> None:
    ledger = own_ledger
    assert ledger.chain.kind == "embedded"
    run_machine(
        lambda: LedgerMachine(ledger),
        max_examples=15,
        reached=("open_round ok", "commit_update ok", "submit_scores ok", "propose_aggregate ok", "round finalized"),
    )
