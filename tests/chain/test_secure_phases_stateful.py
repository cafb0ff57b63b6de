"""Stateful property test: random call sequences against a secure-aggregation task's round phases.

A hypothesis ``RuleBasedStateMachine`` drives a TrainingTask with ``secagg_threshold`` > 0 on
the embedded chain: KEYS (key adverts) -> SHARES (share bundles) -> OPEN (masked inputs)
-> UNMASK (share reveals) -> AGGREGATE -> FINALIZED, or ABORTED with a named reason. Random
callers (members, the admin, an outsider, revoked members, members whose trainer role was
taken away, a trainer admitted after the round opened) call every phase function, for the
current round or a neighbouring one, in any order, with time moved past deadlines at random.
A plain Python model of the phase machine says what each call must do; every outcome must
match it: success, or the exact typed error with the contract's exact revert string and no
new block.

Invariants checked against the chain after every step:

- rounds and phases only move forward; a finalized round's model never changes;
- the round's counts, threshold, listed trainers and message hashes agree with the model;
- each listed trainer posts at most one advert, bundle, masked input and reveal per round,
  and each step needs the previous one (only advertisers share, only sharers commit, only
  committers reveal: only survivors' reveals count);
- a round aborts exactly when the model says, with the model's named reason;
- no transaction on the task comes from an outsider, or from a member after its
  revocation, and no message names a trainer the round did not list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from conftest import DEFAULT_PARAMS, Ledger, Refusal, attempt_call, h, run_machine
from fedledger.chain import Phase, Role, TrainingTaskClient
from fedledger.chain.events import (
    KeysAdvertised,
    MemberAdmitted,
    MemberRevoked,
    RoundAborted,
    SharesPosted,
    SharesRevealed,
    UpdateCommitted,
)
from fedledger.exceptions import DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized

MIN_COMMITMENTS = DEFAULT_PARAMS.min_commitments
QUORUM = DEFAULT_PARAMS.proposal_quorum
MAX_REVOKED = 2  # keep enough trainers for rounds to get through
MEMBER_ROLES = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR
ADMIN, OUTSIDER, LATE = 4, 5, 6
CLOSED = (Phase.NONE, Phase.FINALIZED, Phase.ABORTED)
# The order phases pass in; FINALIZED and ABORTED are both final.
ORDER = (Phase.NONE, Phase.KEYS, Phase.SHARES, Phase.OPEN, Phase.UNMASK, Phase.AGGREGATE, Phase.FINALIZED)
RANK = {phase: rank for rank, phase in enumerate(ORDER)} | {Phase.ABORTED: len(ORDER) - 1}
ABORT_REASONS = {
    "too few key adverts for the secagg threshold",
    "too few share bundles for the secagg threshold",
    "commitment quorum not reached",
    "too few masked inputs for the secagg threshold",
    "too few reveals for the secagg threshold",
    "aggregate quorum not reached",
}
ZERO = "0x" + "00" * 32

WRONG_ROUND: Refusal = (InvalidState, "task: wrong round")
NOT_TRAINER: Refusal = (NotAuthorized, "task: caller is not a trainer")
NOT_MEMBER: Refusal = (NotAuthorized, "task: caller is not a member")
ZERO_HASH: Refusal = (InvalidArgument, "task: zero hash")

actors = st.integers(min_value=0, max_value=6)  # 0..3 members, 4 admin, 5 outsider, 6 admitted late
offsets = st.sampled_from([0, 0, 0, 0, 0, -1, 1])  # the current round, sometimes a neighbour
zeros = st.sampled_from([False] * 9 + [True])


@dataclass
class RoundModel:
    phase: Phase
    listed: list[str]
    threshold: int
    expected_trainers: int
    adverts: dict[str, str] = field(default_factory=dict)
    bundles: dict[str, str] = field(default_factory=dict)
    commits: list[str] = field(default_factory=list)
    reveals: dict[str, str] = field(default_factory=dict)
    mask: int = 0
    proposed: set[str] = field(default_factory=set)
    votes: Counter[str] = field(default_factory=Counter)
    model_hash: str | None = None
    abort_reason: str | None = None


class SecureMachine(RuleBasedStateMachine):
    def __init__(self, ledger: Ledger, tasks: dict[int, TrainingTaskClient], late: LocalAccount) -> None:
        super().__init__()
        self.ledger = ledger
        self.chain = ledger.chain
        self.tasks = tasks
        self.task = next(iter(tasks.values()))
        self.secagg_threshold = next(iter(tasks))
        self.snapshot = self.chain.snapshot()
        self.accounts = [*ledger.members, ledger.admin, ledger.outsider, late]
        self.addresses = [a.address for a in self.accounts]
        # Admission order (the order the contract lists trainers in): the admin, then the members.
        self.admitted = [ledger.admin.address, *self.addresses[:4]]
        self.roles: dict[str, Role] = {a: MEMBER_ROLES for a in self.addresses[:4]}
        self.roles[ledger.admin.address] = Role.ADMIN
        self.revoked: dict[str, int] = {}  # address -> block it was revoked in
        self.admitted_at: dict[str, int] = {}  # the late member -> block it was admitted in
        self.rounds: dict[int, RoundModel] = {}
        self.current = 0
        self.latest_model = ledger.params.initial_model
        self.clock = 0  # number of time jumps (each longer than any phase)
        self.phase_started = 0  # clock when the current phase began
        self.max_round_seen = 0
        self.rank_seen: dict[int, int] = {}
        self.finalized_seen: dict[int, str] = {}
        self.senders: dict[str, str] = {}
        self.events_from = self.chain.block_number + 1
        self.actions = Counter[str]()

    def teardown(self) -> None:
        try:
            for round_id in self.rounds:
                self.check_round(round_id)
        finally:
            self.chain.revert(self.snapshot)

    # -- model helpers ---------------------------------------------------------------

    def active(self, address: str) -> bool:
        return address in self.roles and address not in self.revoked

    def has_role(self, address: str, role: Role) -> bool:
        return self.active(address) and self.roles[address] & role == role

    def deadline_passed(self) -> bool:
        return self.clock > self.phase_started

    def round_check(self, round_id: int, phase: Phase, message: str) -> Refusal | None:
        if round_id != self.current or round_id == 0:
            return WRONG_ROUND
        if self.rounds[round_id].phase is not phase:
            return (InvalidState, message)
        return None

    def closer_refusal(self, actor: int, phase: Phase, message: str) -> Refusal | None:
        """The checks every close_* function starts with: an active member, the current round in ``phase``."""
        if not self.active(self.addresses[actor]):
            return NOT_MEMBER
        return self.round_check(self.current, phase, message)

    def attempt(self, name: str, expected: Refusal | None, fn: Callable[..., Any], *args: Any) -> bool:
        return attempt_call(self.chain, self.actions, name, expected, lambda: fn(*args))

    def as_(self, actor: int) -> TrainingTaskClient:
        return self.task.as_(self.accounts[actor])

    def abort(self, r: RoundModel, reason: str) -> None:
        r.phase = Phase.ABORTED
        r.abort_reason = reason
        self.actions[f"aborted: {reason}"] += 1

    def next_phase(self, r: RoundModel, phase: Phase) -> None:
        r.phase = phase
        self.phase_started = self.clock

    # -- rules: the phase functions -----------------------------------------------------

    @initialize(threshold=st.sampled_from([2, 2, 2, 4]))
    def choose_task(self, threshold: int) -> None:
        """Threshold 2 is raised to a strict majority of each round's trainers; 4 needs every one of four."""
        self.secagg_threshold = threshold
        self.task = self.tasks[threshold]

    @rule(actor=actors)
    def open_round(self, actor: int) -> None:
        who = self.addresses[actor]
        expected: Refusal | None = None
        if not (self.has_role(who, Role.AGGREGATOR) or self.has_role(who, Role.ADMIN)):
            expected = (NotAuthorized, "task: caller is not an aggregator or admin")
        elif self.current and self.rounds[self.current].phase not in CLOSED:
            expected = (InvalidState, "task: previous round not closed")
        if self.attempt("open_round", expected, self.as_(actor).open_round):
            self.current += 1
            listed = [a for a in self.admitted if self.has_role(a, Role.TRAINER)]
            threshold = max(self.secagg_threshold, len(listed) // 2 + 1)
            self.rounds[self.current] = RoundModel(Phase.KEYS, listed, threshold, len(listed))
            self.phase_started = self.clock

    @rule(actor=actors, offset=offsets, zero=zeros)
    def post_key_advert(self, actor: int, offset: int, zero: bool) -> None:
        who = self.addresses[actor]
        round_id = max(self.current + offset, 0)
        advert = ZERO if zero else h(f"advert-{round_id}-{actor}")
        r = self.rounds.get(round_id)
        expected: Refusal | None = None
        if not self.has_role(who, Role.TRAINER):
            expected = NOT_TRAINER
        elif bad := self.round_check(round_id, Phase.KEYS, "task: round not in key exchange"):
            expected = bad
        elif self.deadline_passed():
            expected = (DeadlinePassed, "task: key deadline passed")
        elif zero:
            expected = ZERO_HASH
        elif r is not None and who not in r.listed:
            expected = (InvalidState, "task: trainer not listed for this round")
        elif r is not None and who in r.adverts:
            expected = (InvalidState, "task: keys already advertised")
        if self.attempt("post_key_advert", expected, self.as_(actor).post_key_advert, round_id, advert):
            assert r is not None
            r.adverts[who] = advert

    @rule(actor=actors)
    def close_keys(self, actor: int) -> None:
        r = self.rounds.get(self.current)
        expected = self.closer_refusal(actor, Phase.KEYS, "task: round not in key exchange")
        if expected is None and r is not None and not (self.deadline_passed() or len(r.adverts) >= len(r.listed)):
            expected = (InvalidState, "task: key phase still running")
        if self.attempt("close_keys", expected, self.as_(actor).close_keys, self.current):
            assert r is not None
            if len(r.adverts) < r.threshold:
                self.abort(r, "too few key adverts for the secagg threshold")
            else:
                self.next_phase(r, Phase.SHARES)

    @rule(actor=actors, offset=offsets, zero=zeros)
    def post_share_bundle(self, actor: int, offset: int, zero: bool) -> None:
        who = self.addresses[actor]
        round_id = max(self.current + offset, 0)
        bundle = ZERO if zero else h(f"bundle-{round_id}-{actor}")
        r = self.rounds.get(round_id)
        expected: Refusal | None = None
        if not self.has_role(who, Role.TRAINER):
            expected = NOT_TRAINER
        elif bad := self.round_check(round_id, Phase.SHARES, "task: round not in share distribution"):
            expected = bad
        elif self.deadline_passed():
            expected = (DeadlinePassed, "task: share deadline passed")
        elif zero:
            expected = ZERO_HASH
        elif r is not None and who not in r.adverts:
            expected = (InvalidState, "task: keys not advertised")
        elif r is not None and who in r.bundles:
            expected = (InvalidState, "task: shares already posted")
        if self.attempt("post_share_bundle", expected, self.as_(actor).post_share_bundle, round_id, bundle):
            assert r is not None
            r.bundles[who] = bundle

    @rule(actor=actors)
    def close_shares(self, actor: int) -> None:
        r = self.rounds.get(self.current)
        expected = self.closer_refusal(actor, Phase.SHARES, "task: round not in share distribution")
        if expected is None and r is not None and not (self.deadline_passed() or len(r.bundles) >= len(r.adverts)):
            expected = (InvalidState, "task: share phase still running")
        if self.attempt("close_shares", expected, self.as_(actor).close_shares, self.current):
            assert r is not None
            if len(r.bundles) < r.threshold:
                self.abort(r, "too few share bundles for the secagg threshold")
            else:
                # Commits close early once every member that shared has committed.
                r.expected_trainers = len(r.bundles)
                self.next_phase(r, Phase.OPEN)

    @rule(actor=actors, offset=offsets, zero=zeros)
    def commit(self, actor: int, offset: int, zero: bool) -> None:
        """A masked input: only from a trainer whose share bundle is out."""
        who = self.addresses[actor]
        round_id = max(self.current + offset, 0)
        masked = ZERO if zero else h(f"masked-{round_id}-{actor}")
        r = self.rounds.get(round_id)
        expected: Refusal | None = None
        if not self.has_role(who, Role.TRAINER):
            expected = NOT_TRAINER
        elif bad := self.round_check(round_id, Phase.OPEN, "task: round not open"):
            expected = bad
        elif self.deadline_passed():
            expected = (DeadlinePassed, "task: commit deadline passed")
        elif zero:
            expected = ZERO_HASH
        elif r is not None and who in r.commits:
            expected = (InvalidState, "task: already committed")
        elif r is not None and who not in r.bundles:
            expected = (InvalidState, "task: shares not posted")
        if self.attempt("commit_update", expected, self.as_(actor).commit_update, round_id, masked, 10 + actor):
            assert r is not None
            r.commits.append(who)

    @rule(actor=actors)
    def close_commits(self, actor: int) -> None:
        r = self.rounds.get(self.current)
        expected = self.closer_refusal(actor, Phase.OPEN, "task: round not open")
        if expected is None and r is not None and not (self.deadline_passed() or len(r.commits) >= r.expected_trainers):
            expected = (InvalidState, "task: commit phase still running")
        if self.attempt("close_commits", expected, self.as_(actor).close_commits, self.current):
            assert r is not None
            if len(r.commits) < MIN_COMMITMENTS:
                self.abort(r, "commitment quorum not reached")
            elif len(r.commits) < r.threshold:
                self.abort(r, "too few masked inputs for the secagg threshold")
            else:
                self.next_phase(r, Phase.UNMASK)

    @rule(actor=actors, offset=offsets, zero=zeros)
    def submit_reveal(self, actor: int, offset: int, zero: bool) -> None:
        """A share reveal: only from a survivor, i.e. a trainer that committed its masked input."""
        who = self.addresses[actor]
        round_id = max(self.current + offset, 0)
        reveal = ZERO if zero else h(f"reveal-{round_id}-{actor}")
        r = self.rounds.get(round_id)
        expected: Refusal | None = None
        if not self.has_role(who, Role.TRAINER):
            expected = NOT_TRAINER
        elif bad := self.round_check(round_id, Phase.UNMASK, "task: round not in unmasking"):
            expected = bad
        elif self.deadline_passed():
            expected = (DeadlinePassed, "task: unmask deadline passed")
        elif zero:
            expected = ZERO_HASH
        elif r is not None and who not in r.commits:
            expected = (InvalidState, "task: no masked input committed")
        elif r is not None and who in r.reveals:
            expected = (InvalidState, "task: shares already revealed")
        if self.attempt("submit_reveal", expected, self.as_(actor).submit_reveal, round_id, reveal):
            assert r is not None
            r.reveals[who] = reveal

    @rule(actor=actors)
    def close_unmask(self, actor: int) -> None:
        r = self.rounds.get(self.current)
        expected = self.closer_refusal(actor, Phase.UNMASK, "task: round not in unmasking")
        if expected is None and r is not None and not (self.deadline_passed() or len(r.reveals) >= len(r.commits)):
            expected = (InvalidState, "task: unmask phase still running")
        if self.attempt("close_unmask", expected, self.as_(actor).close_unmask, self.current):
            assert r is not None
            if len(r.reveals) < r.threshold:
                self.abort(r, "too few reveals for the secagg threshold")
            else:
                # Every masked input goes on to aggregation (malformed ones count as dropouts there).
                r.mask = (1 << len(r.commits)) - 1
                self.next_phase(r, Phase.AGGREGATE)

    @rule(actor=actors, choice=st.sampled_from(["A", "A", "B"]), wrong_mask=st.sampled_from([False] * 5 + [True]))
    def propose_aggregate(self, actor: int, choice: str, wrong_mask: bool) -> None:
        who = self.addresses[actor]
        r = self.rounds.get(self.current)
        model = h(f"model-{self.current}-{choice}")
        mask = (r.mask if r is not None else 0) ^ (1 if wrong_mask else 0)
        expected: Refusal | None = None
        if not self.has_role(who, Role.AGGREGATOR):
            expected = (NotAuthorized, "task: caller is not an aggregator")
        elif bad := self.round_check(self.current, Phase.AGGREGATE, "task: round not in aggregation"):
            expected = bad
        elif self.deadline_passed():
            expected = (DeadlinePassed, "task: aggregation deadline passed")
        elif wrong_mask:
            expected = (InvalidArgument, "task: accepted set does not match validation")
        elif r is not None and who in r.proposed:
            expected = (InvalidState, "task: already proposed")
        if self.attempt("propose_aggregate", expected, self.as_(actor).propose_aggregate, self.current, model, mask):
            assert r is not None
            r.proposed.add(who)
            r.votes[model] += 1
            if r.votes[model] >= QUORUM:
                r.phase = Phase.FINALIZED
                r.model_hash = model
                self.latest_model = model
                self.actions["round finalized"] += 1

    @rule(actor=actors)
    def close_aggregation(self, actor: int) -> None:
        expected = self.closer_refusal(actor, Phase.AGGREGATE, "task: round not in aggregation")
        if expected is None and not self.deadline_passed():
            expected = (InvalidState, "task: aggregation phase still running")
        if self.attempt("close_aggregation", expected, self.as_(actor).close_aggregation, self.current):
            self.abort(self.rounds[self.current], "aggregate quorum not reached")

    # -- rules: membership and time ------------------------------------------------------

    @rule(member=st.sampled_from([0, 1, 2, 3, LATE]))
    def revoke(self, member: int) -> None:
        target = self.addresses[member]
        if not self.active(target) or (member != LATE and len(self.revoked) >= MAX_REVOKED):
            return
        self.ledger.consortium.as_(self.ledger.admin).propose_revoke(target)
        self.revoked[target] = self.chain.block_number
        self.actions["member revoked"] += 1

    @rule(member=st.integers(0, 3), trainer=st.booleans())
    def set_trainer_role(self, member: int, trainer: bool) -> None:
        """Take the trainer role away, or give it back: a listed member acts only while it holds it."""
        target = self.addresses[member]
        roles = MEMBER_ROLES if trainer else Role.VALIDATOR | Role.AGGREGATOR
        if not self.active(target) or self.roles[target] == roles:
            return
        self.ledger.consortium.as_(self.ledger.admin).propose_roles(target, roles)
        self.roles[target] = roles
        self.actions["trainer role " + ("given" if trainer else "taken")] += 1

    @rule()
    def admit_late(self) -> None:
        """A trainer admitted after a round opened is not listed for it: it cannot take part."""
        late = self.addresses[LATE]
        if late in self.roles:
            return
        self.ledger.consortium.as_(self.ledger.admin).propose_admit(late, org="Late", roles=MEMBER_ROLES)
        self.roles[late] = MEMBER_ROLES
        self.admitted.append(late)
        self.admitted_at[late] = self.chain.block_number
        self.actions["late member admitted"] += 1

    @rule()
    def advance_time(self) -> None:
        self.chain.advance_time(601)
        self.clock += 1

    def drive(self, drop: int, choice: str, phases: int) -> None:
        """Play the next ``phases`` phases to their end, by the trainers still able to, less those in ``drop``.

        Random calls alone rarely get a secure round through five phases; this keeps rounds
        moving (through the same model-checked rules), with dropouts, so that every phase and
        every abort is reached while the random rules interleave between and within phases.
        """
        for _ in range(phases):
            self.drive_phase(drop, choice)

    def drive_phase(self, drop: int, choice: str) -> None:
        r = self.rounds.get(self.current)
        able = [i for i in (0, 1, 2, 3, LATE) if self.has_role(self.addresses[i], Role.TRAINER) and not drop >> i & 1]
        if r is None or r.phase in CLOSED:
            self.open_round(ADMIN)
            return
        if r.phase is Phase.AGGREGATE:
            if self.deadline_passed():
                self.close_aggregation(ADMIN)
                return
            aggregators = [i for i in (0, 1, 2, 3, LATE) if self.has_role(self.addresses[i], Role.AGGREGATOR)]
            for n, i in enumerate(aggregators):
                if r.phase is Phase.AGGREGATE and self.addresses[i] not in r.proposed:
                    self.propose_aggregate(i, choice if n == 0 else "A", False)
            return
        steps: dict[Phase, tuple[Callable[..., None], Callable[[str], bool], Callable[[], bool], Callable[..., None]]]
        steps = {
            Phase.KEYS: (
                self.post_key_advert,
                lambda a: a in r.listed and a not in r.adverts,
                lambda: len(r.adverts) >= len(r.listed),
                self.close_keys,
            ),
            Phase.SHARES: (
                self.post_share_bundle,
                lambda a: a in r.adverts and a not in r.bundles,
                lambda: len(r.bundles) >= len(r.adverts),
                self.close_shares,
            ),
            Phase.OPEN: (
                self.commit,
                lambda a: a in r.bundles and a not in r.commits,
                lambda: len(r.commits) >= r.expected_trainers,
                self.close_commits,
            ),
            Phase.UNMASK: (
                self.submit_reveal,
                lambda a: a in r.commits and a not in r.reveals,
                lambda: len(r.reveals) >= len(r.commits),
                self.close_unmask,
            ),
        }
        post, due, complete, close = steps[r.phase]
        if not self.deadline_passed():
            for i in able:
                if due(self.addresses[i]):
                    post(i, 0, False)
        if not complete():
            self.advance_time()
        close(ADMIN)

    # Registered four times so that it is picked, and kept enabled by hypothesis' swarm
    # testing (which switches rules off per example), often enough.
    _drive_args = {
        "drop": st.sampled_from([0] * 6 + [1, 2, 8, 3, 12, 1 << LATE]),
        "choice": st.sampled_from(["A", "A", "B"]),
        "phases": st.integers(1, 4),
    }
    drive_1 = rule(**_drive_args)(drive)
    drive_2 = rule(**_drive_args)(drive)
    drive_3 = rule(**_drive_args)(drive)
    drive_4 = rule(**_drive_args)(drive)

    # -- invariants ---------------------------------------------------------------

    def check_round(self, round_id: int) -> None:
        """One round on chain against the model, and the step-by-step rules on the chain's own data."""
        task = self.task
        r = self.rounds[round_id]
        info = task.round(round_id)
        assert info.phase is r.phase, f"round {round_id}: chain {info.phase!r}, model {r.phase!r}"
        assert info.num_updates == len(r.commits)
        assert info.expected_trainers == r.expected_trainers
        if r.phase in (Phase.AGGREGATE, Phase.FINALIZED):
            assert info.accepted_mask == r.mask == (1 << info.num_updates) - 1
        assert info.model_hash == (r.model_hash if r.phase is Phase.FINALIZED else ZERO)
        s = task.secure_round(round_id)
        assert (s.threshold, s.num_members) == (r.threshold, len(r.listed))
        assert (s.num_adverts, s.num_bundles, s.num_reveals) == (len(r.adverts), len(r.bundles), len(r.reveals))
        # The threshold is at least a strict majority of the listed trainers (secrecy needs it).
        assert s.threshold >= max(self.secagg_threshold, s.num_members // 2 + 1)
        messages = task.secure_messages(round_id)
        assert [m.member for m in messages] == r.listed
        committers = [u.member for u in task.updates(round_id)]
        assert committers == r.commits
        assert len(set(committers)) == len(committers), "a member committed twice"
        for m in messages:
            assert m.advert_hash == r.adverts.get(m.member)
            assert m.bundle_hash == r.bundles.get(m.member)
            assert m.reveal_hash == r.reveals.get(m.member)
            # Each step needs the previous one.
            assert m.bundle_hash is None or m.advert_hash is not None
            assert m.reveal_hash is None or m.member in committers
        shared = {m.member for m in messages if m.bundle_hash is not None}
        assert set(committers) <= shared, "a masked input from a member whose shares are not out"

    @invariant()
    def rounds_only_move_forward(self) -> None:
        task = self.task
        current = task.current_round
        assert current == self.current
        assert current >= self.max_round_seen
        self.max_round_seen = current
        assert task.latest_model == self.latest_model
        if current:
            self.check_round(current)
            phase = task.round(current).phase
            assert RANK[phase] >= self.rank_seen.get(current, 0), f"round {current} went back to {phase!r}"
            self.rank_seen[current] = RANK[phase]
            if phase is Phase.FINALIZED:
                model = self.finalized_seen.setdefault(current, task.model_at(current))
                assert task.model_at(current) == model, f"finalized round {current} changed its model"
        # Earlier rounds, finalized models included, are read back against the model at teardown.

    @invariant()
    def only_members_act(self) -> None:
        new = self.task.events(from_block=self.events_from)
        for e in self.ledger.consortium.events(from_block=self.events_from):
            if isinstance(e, MemberRevoked):
                assert self.revoked.get(e.member) == e.block_number
            if isinstance(e, MemberAdmitted):
                assert self.admitted_at.get(e.member) == e.block_number
        self.events_from = self.chain.block_number + 1
        for e in new:
            if e.tx_hash not in self.senders:
                self.senders[e.tx_hash] = self.chain.w3.eth.get_transaction(e.tx_hash)["from"]
            sender = self.senders[e.tx_hash]
            assert sender != self.addresses[OUTSIDER], f"the outsider acted: {e}"
            if sender in self.revoked:
                assert e.block_number < self.revoked[sender], f"revoked {sender} acted: {e}"
            if sender in self.admitted_at:
                assert e.block_number > self.admitted_at[sender], f"{sender} acted before its admission: {e}"
            r = self.rounds[e.round_id]  # type: ignore[attr-defined]
            if isinstance(e, KeysAdvertised | SharesPosted | UpdateCommitted | SharesRevealed):
                assert e.member == sender and e.member in r.listed, f"a trainer the round did not list: {e}"
            if isinstance(e, RoundAborted):
                assert e.reason in ABORT_REASONS and e.reason == r.abort_reason, e


def test_secure_phase_machine_invariants(own_ledger: Ledger) -> None:
    ledger = own_ledger
    # Funded by the `deployed` fixture, never admitted there: the machine admits it mid-test.
    late = Account.from_key(h(f"fedledger-test-account-6-{ledger.chain.kind}"))
    assert late.address not in {a.address for a in (*ledger.members, ledger.admin, ledger.outsider)}
    tasks = {
        threshold: TrainingTaskClient.deploy(
            ledger.chain,
            ledger.admin,
            ledger.consortium.address,
            replace(DEFAULT_PARAMS, secagg_threshold=threshold),
        )
        for threshold in (2, 4)
    }
    totals = run_machine(
        lambda: SecureMachine(ledger, tasks, late),
        max_examples=15,
        reached=(
            "post_key_advert ok",
            "post_share_bundle ok",
            "commit_update ok",
            "submit_reveal ok",
            "propose_aggregate ok",
            "round finalized",
        ),
    )
    # Whether these draws reach an abort varies with what ran earlier in the same pytest process (the trajectory
    # is the same on every lone run, but differs after some other tests), so aborts are not a coverage requirement
    # here: every abort reason has its own deterministic test (test_secure_task_contract, test_task_contract,
    # test_task_rounds_end), and whenever the machine does abort a round, the model checks it.
    print("aborted rounds:", sum(v for k, v in totals.items() if k.startswith("aborted: ")))
