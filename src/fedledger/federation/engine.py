"""What happens in a round: the protocol, written once, top to bottom.

A task runs rounds one after the other on its :class:`~fedledger.federation.ledger.Ledger`. Every member's
node runs the same loop, :meth:`RoundEngine.step`, which does at most one thing per call:

1. **Read** the member's view of the current round (one read of the ledger).
2. **Open** the next round when the last one is closed (finalized or aborted) and the task has rounds left;
   any aggregator or admin may, the first one wins.
3. **Do its duty** in the current phase, if it owes one and the phase's deadline has not passed.
4. **Close** the phase once everyone it waits for has acted, or its deadline has passed; any member may, the
   first one wins. A phase closed by another member, or an action the ledger refuses because the round moved
   on, is a normal outcome: the next step re-reads the ledger and goes on from where it is.

What each phase asks and when it is complete is the round's *mode*, a table of :class:`PhaseRule` s like the
hooks of Flower's ``Strategy``:

* :class:`ValidatedRounds` (this module): **OPEN** trainers train and commit their update; **VALIDATE** the
  round's validators score the updates of their committee seats, and the ledger derives the accepted set from
  the scores; **AGGREGATE** aggregators recompute the next model from the accepted updates and propose it,
  and the ledger finalizes it once a quorum proposes the same.
* :class:`~fedledger.federation.secure_node.SecureRounds`: **KEYS** and **SHARES** (key agreement and secret
  sharing), **OPEN** (masked commitments), **UNMASK** (share reveals), **AGGREGATE** (the unmasked sum).

The member's own work in each duty (training, scoring, aggregating) is its node's
(:class:`~fedledger.federation.node.MemberNode`); the rules every party applies identically (checking an
update, acceptance, aggregation) are :mod:`fedledger.federation.rules`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from fedledger.chain.consortium import Role
from fedledger.chain.task import MemberView, Phase, RoundInfo
from fedledger.exceptions import InvalidState, TrainingRefused
from fedledger.federation.ledger import Ledger

if TYPE_CHECKING:
    from fedledger.federation.batched import BatchedCommits

__all__ = [
    "CLOSED",
    "EventSink",
    "PhaseRule",
    "RoundEngine",
    "RoundMode",
    "ValidatedMember",
    "ValidatedRounds",
    "phase_deadline",
]

log = logging.getLogger("fedledger.node")

V = TypeVar("V")

CLOSED = (Phase.FINALIZED, Phase.ABORTED)
"""The phases of a round that is over."""


def phase_deadline(info: RoundInfo) -> int | None:
    """The deadline the round's current phase runs on (None for a closed round). Secure rounds run KEYS and
    SHARES on the commit deadline, and UNMASK on the validation deadline."""
    return {
        Phase.KEYS: info.commit_deadline,
        Phase.SHARES: info.commit_deadline,
        Phase.OPEN: info.commit_deadline,
        Phase.UNMASK: info.validate_deadline,
        Phase.VALIDATE: info.validate_deadline,
        Phase.AGGREGATE: info.aggregate_deadline,
    }.get(info.phase)


class EventSink(Protocol):
    """Where the engine reports what a member did (the node's log and ``on_event``)."""

    def __call__(self, action: str, round_id: int, **details: Any) -> None: ...


@dataclass(frozen=True)
class PhaseRule(Generic[V]):
    """One phase of a mode: the member's duty in it and when it closes. ``V`` is the mode's view of the round."""

    owes: Callable[[V, RoundInfo], bool]
    """Whether this member still owes its duty (roles, what it already did): a pure read of the view."""
    act: Callable[[RoundInfo], bool]
    """Do the duty; False when the member turns out to have nothing to do (then the phase may be closed)."""
    complete: Callable[[V, RoundInfo], bool]
    """Whether everyone the phase waits for has acted: it may close before its deadline."""
    close: Callable[[int], object]
    """The ledger's close of this phase."""
    close_action: str
    """The close's name in the member's events."""


class RoundMode(Protocol[V]):
    """The hooks of one kind of round: how a member reads it, and the rule of each of its phases."""

    def read(self) -> V:
        """The member's view of the current round, read once per step."""
        ...

    def member_view(self, view: V) -> MemberView: ...

    def rule(self, phase: Phase) -> PhaseRule[V] | None: ...

    def round_over(self, view: V) -> None:
        """Called on every step that finds the current round closed (secure rounds forget their secrets)."""
        ...


class RoundEngine(Generic[V]):
    """One member's loop over a task's rounds (see the module docstring)."""

    def __init__(
        self,
        ledger: Ledger,
        mode: RoundMode[V],
        *,
        name: str,
        rounds: int,
        emit: EventSink,
        wall_clock: Callable[[], float] | None = time.time,
    ) -> None:
        """``wall_clock``: a second clock deadlines pass by (see :meth:`past`); None: only the ledger's time,
        for a ledger with a clock of its own (:class:`~fedledger.federation.memory_ledger.InMemoryLedger`)."""
        self.ledger = ledger
        self.wall_clock = wall_clock
        self.mode = mode
        self.name = name
        self.rounds = rounds
        self.emit = emit
        self.view: MemberView | None = None
        """The member's view read by the last step (None before the first)."""
        self._last_refusal: tuple[int, str, str] | None = None

    def step(self) -> bool:
        """Do what this member owes in the current round; True if it acted.

        Members race to move a round on: another member may close a phase, or a quorum may finalize the round,
        between this member's read and its transaction. The ledger then refuses the late action
        (:class:`InvalidState`), logged as a ``refused`` event; the next step goes on from where the ledger is.
        """
        try:
            return self._step()
        except InvalidState as exc:
            round_id = self.ledger.current_round
            key = (round_id, exc.function or "", exc.reason)
            if key != self._last_refusal:  # the same refusal on every poll is one event, not a flood
                self._last_refusal = key
                log.info("%s: %s refused in round %d, the round moved on: %s", self.name, exc.function, round_id, exc)
                self.emit("refused", round_id, function=exc.function, reason=exc.reason)
            return False

    def _step(self) -> bool:
        view = self.mode.read()
        status = self.view = self.mode.member_view(view)
        info = status.round
        if info is None or info.phase in CLOSED:
            self.mode.round_over(view)
            return self._open_next(status)
        rule, deadline = self.mode.rule(info.phase), phase_deadline(info)
        if rule is None or deadline is None:
            return False
        if rule.owes(view, info) and not self.past(status, deadline) and rule.act(info):
            return True
        if rule.complete(view, info) or self.past(status, deadline):
            return self.attempt(rule.close_action, info.round_id, lambda: rule.close(info.round_id))
        return False

    def _open_next(self, status: MemberView) -> bool:
        if status.current_round >= self.rounds or not status.roles & (Role.AGGREGATOR | Role.ADMIN):
            return False
        return self.attempt("open_round", status.current_round + 1, self.ledger.open_round)

    def past(self, status: MemberView, deadline: int) -> bool:
        """Whether ``deadline`` has passed: by the block time read, or by the wall clock, since a chain that mines
        only when sent a transaction (anvil's automine) keeps its last block time while idle; the ledger checks
        the real rule, and refuses a close that comes too early at no cost."""
        now = status.timestamp if self.wall_clock is None else max(status.timestamp, int(self.wall_clock()))
        return now > deadline

    def attempt(self, action: str, round_id: int, fn: Callable[[], object]) -> bool:
        """Run a phase transition that any member may trigger; losing the race is fine."""
        try:
            fn()
        except InvalidState as exc:
            log.debug("%s: %s for round %d skipped: %s", self.name, action, round_id, exc.reason)
            return False
        self.emit(action, round_id)
        return True


class ValidatedMember(Protocol):
    """What a validated round needs of the member taking part: its state and its work in each duty."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def trains(self) -> bool:
        """Whether it holds data to train and validate on."""
        ...

    @property
    def trainer_reputation(self) -> bool:
        """Whether the task distrusts trainers by their record (``max_rejection`` or ``min_mean_score``)."""
        ...

    refusals: dict[int, TrainingRefused]
    left_out: set[int]
    left_out_as_trainer: set[int]

    def train_and_commit(self, info: RoundInfo) -> None: ...

    def score(self, info: RoundInfo) -> None: ...

    def aggregate(self, info: RoundInfo) -> None: ...


class ValidatedRounds:
    """A validated round's phases: commit, validate, aggregate (see the module docstring)."""

    def __init__(
        self, ledger: Ledger, member: ValidatedMember, emit: EventSink, *, batched: BatchedCommits | None = None
    ) -> None:
        """``batched``: the member's part in a task with batched commitments (its commitment goes to the relay, and
        an aggregator delivers the round's finalized batch to the task before the commit phase closes)."""
        self.ledger, self.member, self.emit, self.batched = ledger, member, emit, batched
        self._rules: Mapping[Phase, PhaseRule[MemberView]] = {
            Phase.OPEN: PhaseRule(
                owes=lambda v, info: self._owes_commit(v, info) or self._owes_delivery(v, info),
                act=self._commit_or_deliver,
                complete=lambda v, info: info.num_updates >= info.expected_trainers,
                close=self._close_commits,
                close_action="close_commits",
            ),
            Phase.VALIDATE: PhaseRule(
                owes=lambda v, info: bool(v.roles & Role.VALIDATOR) and member.trains and not v.scored,
                act=self._validate,
                complete=lambda v, info: info.num_scored >= info.expected_validators,
                close=ledger.close_validation,
                close_action="close_validation",
            ),
            Phase.AGGREGATE: PhaseRule(
                owes=lambda v, info: bool(v.roles & Role.AGGREGATOR) and not v.proposed,
                act=self._aggregate,
                complete=lambda v, info: False,  # proposals finalize the round; otherwise it waits for its deadline
                close=ledger.close_aggregation,
                close_action="close_aggregation",
            ),
        }

    # -- the mode's hooks ----------------------------------------------------------------

    def read(self) -> MemberView:
        return self.ledger.member_view(self.member.address)

    def member_view(self, view: MemberView) -> MemberView:
        return view

    def rule(self, phase: Phase) -> PhaseRule[MemberView] | None:
        return self._rules.get(phase)

    def round_over(self, view: MemberView) -> None:
        """A validated round keeps nothing once it is over."""

    # -- the duties ----------------------------------------------------------------------

    def _owes_commit(self, v: MemberView, info: RoundInfo) -> bool:
        member, r = self.member, info.round_id
        sent = self.batched is not None and r in self.batched.sent  # handed to the relay: in the batch, not yet here
        return (
            bool(v.roles & Role.TRAINER) and member.trains and not v.committed and r not in member.refusals and not sent
        )

    def _owes_delivery(self, v: MemberView, info: RoundInfo) -> bool:
        """An aggregator of a batched task delivers the round's batch once its window is over (the first one wins)."""
        return (
            self.batched is not None
            and bool(v.roles & Role.AGGREGATOR)
            and self.batched.delivery_due(info.round_id, v.timestamp)
        )

    def _commit_or_deliver(self, info: RoundInfo) -> bool:
        batched = self.batched
        if batched is None or self._owes_commit(self.ledger.member_view(self.member.address), info):
            return self._commit(info)
        delivered = batched.deliver(info.round_id)
        if delivered is None:
            return False
        results, batch_id = delivered
        self.emit("deliver_batch", info.round_id, batch_id=batch_id, transactions=len(results))
        return True

    def _close_commits(self, round_id: int) -> object:
        """Close the commit phase; in a batched task whose round has no delivered batch, say why first."""
        if self.batched is not None:
            missing = self.batched.missing(round_id)
            if missing is not None:
                log.warning("round %d closes without batched commitments: %s", round_id, missing)
                self.emit("batch_missing", round_id, reason=missing)
        return self.ledger.close_commits(round_id)

    def _commit(self, info: RoundInfo) -> bool:
        """Train and commit: a refusal (purpose, privacy budget, registered rows) is an action too, reported
        once; a member its trainer reputation leaves out of the round does nothing."""
        r = info.round_id
        if not self._trains_in(r):
            return False
        try:
            self.member.train_and_commit(info)
        except TrainingRefused as exc:
            self.member.refusals[r] = exc
            log.warning("%s refuses to train in round %d: %s", self.member.name, r, exc)
            self.emit("refuse", r, error=type(exc).__name__, reason=str(exc))
        return True

    def _validate(self, info: RoundInfo) -> bool:
        if not self._seated(info.round_id):
            return False
        self.member.score(info)
        return True

    def _aggregate(self, info: RoundInfo) -> bool:
        self.member.aggregate(info)
        return True

    # -- who takes part --------------------------------------------------------------------

    def _trains_in(self, r: int) -> bool:
        # A round that opened with this member distrusted as a trainer refuses its commitment: training for it
        # would spend compute and privacy budget on an update nobody will use.
        member = self.member
        if r in member.left_out_as_trainer:
            return False
        if not member.trainer_reputation or not self.ledger.left_out_as_trainer(r, member.address):
            return True
        member.left_out_as_trainer.add(r)
        standing = self.ledger.trainer_standing(member.address)
        log.warning(
            "%s is distrusted as a trainer (%d of %d scored updates rejected, mean score %.0f): it does not train "
            "in round %d",
            member.name,
            standing.rejected,
            standing.scored,
            standing.mean_score or 0,
            r,
        )
        self.emit(
            "left-out",
            r,
            role="trainer",
            scored=standing.scored,
            rejected=standing.rejected,
            mean_score=standing.mean_score,
        )
        return False

    def _seated(self, r: int) -> bool:
        # Committee draws and validator reputation fix a round's validators when commits close; a validator left
        # out (not drawn, or distrusted by its reputation) has nothing to score in that round.
        member = self.member
        if r in member.left_out:
            return False
        if self.ledger.is_round_validator(r, member.address):
            return True
        member.left_out.add(r)
        distrusted = self.ledger.reputation_of(member.address).distrusted
        log.warning("%s is not among round %d's validators%s", member.name, r, " (distrusted)" if distrusted else "")
        self.emit("left-out", r, distrusted=distrusted)
        return False
