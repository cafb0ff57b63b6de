"""An in-memory ledger: the TrainingTask contract's validated-round rules, in process, for simulations.

:class:`InMemoryLedger` implements the :class:`~fedledger.federation.ledger.Ledger` port with the contract's
rules for validated rounds: who may act in which phase and until when, one commitment per trainer and round, one
score vector per validator, acceptance by :func:`~fedledger.federation.rules.verdict` (by the median or by
approvals), finalization by a quorum of identical proposals, and the validator and trainer reputations of
:mod:`fedledger.chain.reputation`. Time is its own clock: it starts at the wall clock's time and moves on only by
:meth:`advance_time`, so deadlines pass without waiting. It holds no blobs: members keep those in their store, as
on chain. Each member acts through its own handle, :meth:`as_`.

Committees: by default every trusted validator scores every update but its own (a task without committees);
``draw_committee(round_id, index, eligible)`` picks an update's validators among ``eligible`` instead (a
simulation's own draw, where the contract draws from on-chain randomness).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from fedledger.chain.consortium import Role
from fedledger.chain.reputation import TrainerReputation, ValidatorReputation
from fedledger.chain.task import (
    MemberView,
    Phase,
    RoundInfo,
    TaskParams,
    TrainerStanding,
    UpdateInfo,
    ValidatorStanding,
    indices_of,
)
from fedledger.exceptions import InvalidArgument, InvalidState, NotAuthorized
from fedledger.federation.rules import verdict

__all__ = ["CommitteeDraw", "InMemoryLedger"]

CommitteeDraw = Callable[[int, int, list[str]], list[str]]
"""``draw(round_id, update_index, eligible) -> the update's validators`` (a subset of ``eligible``, in order)."""

_ZERO = "0x" + "00" * 32


@dataclass
class _Round:
    info: RoundInfo
    updates: list[UpdateInfo] = field(default_factory=list)
    committees: list[list[str]] = field(default_factory=list)
    scores: list[list[tuple[str, int]]] = field(default_factory=list)
    scored: set[str] = field(default_factory=set)
    proposals: dict[str, int] = field(default_factory=dict)
    proposed: set[str] = field(default_factory=set)
    left_out: set[str] = field(default_factory=set)


@dataclass
class _State:
    params: TaskParams
    roles: dict[str, int]
    draw: CommitteeDraw | None
    now: int = field(default_factory=lambda: int(time.time()))
    latest_model: str = ""
    rounds: dict[int, _Round] = field(default_factory=dict)
    current: int = 0
    validators: ValidatorReputation[str] = field(init=False)
    trainers: TrainerReputation[str] = field(init=False)

    def __post_init__(self) -> None:
        self.validators = ValidatorReputation(self.params.max_disagreement, self.params.reputation_warmup)
        self.trainers = TrainerReputation(
            self.params.max_rejection, self.params.reputation_warmup, self.params.min_mean_score
        )


class InMemoryLedger:
    """A validated-round task in memory, acting as ``sender`` (see the module docstring)."""

    def __init__(
        self,
        params: TaskParams,
        roles: Mapping[str, int],
        *,
        draw_committee: CommitteeDraw | None = None,
        sender: str = "",
        _state: _State | None = None,
    ) -> None:
        """``roles``: each member's :class:`~fedledger.chain.consortium.Role` flags."""
        self._s = _state if _state is not None else _State(params, dict(roles), draw_committee)
        if _state is None:
            self._s.latest_model = params.initial_model
        self.sender = sender
        self.address = "in-memory:" + params.config_hash

    def as_(self, member: str) -> InMemoryLedger:
        """The same task, acting as ``member``."""
        return InMemoryLedger(self._s.params, self._s.roles, sender=member, _state=self._s)

    def set_roles(self, member: str, roles: int) -> None:
        """Grant ``member`` exactly ``roles`` (the consortium's role change; rounds already open keep their
        expected counts)."""
        self._s.roles[member] = int(roles)

    @property
    def validator_reputation(self) -> ValidatorReputation[str]:
        """Every validator's record: scores counted and scores against their update's outcome."""
        return self._s.validators

    @property
    def trainer_reputation(self) -> TrainerReputation[str]:
        """Every trainer's record: scored updates, rejected ones and their deciding scores."""
        return self._s.trainers

    def advance_time(self, seconds: int) -> None:
        self._s.now += int(seconds)

    @property
    def now(self) -> int:
        return self._s.now

    # -- reads ------------------------------------------------------------------------------

    @property
    def current_round(self) -> int:
        return self._s.current

    def round(self, round_id: int) -> RoundInfo:
        return self._round(round_id).info

    def member_view(self, member: str) -> MemberView:
        r = self._s.rounds.get(self._s.current)
        info = None if r is None else r.info
        return MemberView(
            current_round=self._s.current,
            round=info,
            roles=self._s.roles.get(member, 0),
            committed=r is not None and any(u.member == member for u in r.updates),
            scored=r is not None and member in r.scored,
            proposed=r is not None and member in r.proposed,
            timestamp=self._s.now,
        )

    def updates(self, round_id: int) -> list[UpdateInfo]:
        return list(self._round(round_id).updates)

    def assignments_of(self, round_id: int, validator: str) -> list[int]:
        return [i for i, committee in enumerate(self._round(round_id).committees) if validator in committee]

    def is_round_validator(self, round_id: int, validator: str) -> bool:
        return any(validator in committee for committee in self._round(round_id).committees)

    def scorers_of(self, round_id: int, updates: Sequence[UpdateInfo] | None = None) -> list[list[str]]:
        return [list(committee) for committee in self._round(round_id).committees]

    def scores_of(self, round_id: int, index: int) -> list[int]:
        return [score for _, score in self._round(round_id).scores[index]]

    def left_out_as_trainer(self, round_id: int, trainer: str) -> bool:
        return trainer in self._round(round_id).left_out

    def trainer_standing(self, trainer: str) -> TrainerStanding:
        t = self._s.trainers
        return TrainerStanding(
            t.scored.get(trainer, 0), t.rejected.get(trainer, 0), t.distrusted(trainer), t.score_sum.get(trainer, 0)
        )

    def reputation_of(self, validator: str) -> ValidatorStanding:
        v = self._s.validators
        return ValidatorStanding(v.scored.get(validator, 0), v.disagreed.get(validator, 0), v.distrusted(validator))

    # -- the round's actions ---------------------------------------------------------------

    def open_round(self) -> int:
        self._require(Role.AGGREGATOR | Role.ADMIN, "open_round")
        s = self._s
        previous = s.rounds.get(s.current)
        if previous is not None and previous.info.phase not in (Phase.FINALIZED, Phase.ABORTED):
            raise InvalidState("task: previous round not closed", function="open_round")
        if s.params.max_rounds and s.current >= s.params.max_rounds:
            raise InvalidState("task: all rounds done", function="open_round")
        s.current += 1
        trainers = self._with_role(Role.TRAINER)
        left_out = {t for t in trainers if s.trainers.distrusted(t)}
        info = RoundInfo(
            round_id=s.current,
            phase=Phase.OPEN,
            global_model=s.latest_model,
            commit_deadline=s.now + s.params.commit_duration,
            validate_deadline=0,
            aggregate_deadline=0,
            expected_trainers=len(trainers) - len(left_out),
            expected_validators=len(self._with_role(Role.VALIDATOR)),
            num_updates=0,
            num_scored=0,
            accepted_mask=0,
            num_accepted=0,
            model_hash=_ZERO,
            committee_seed=_ZERO,
        )
        s.rounds[s.current] = _Round(info, left_out=left_out)
        return s.current

    def commit_update(
        self, round_id: int, update_hash: str, num_examples: int, *, dataset_id: int = 0, epsilon_micro: int = 0
    ) -> int:
        self._require(Role.TRAINER, "commit_update")
        r = self._in_phase(round_id, Phase.OPEN, "commit_update", "task: round not open")
        if self.sender in r.left_out:
            raise InvalidState("task: trainer distrusted", function="commit_update")
        self._before(r.info.commit_deadline, "task: commit deadline passed", "commit_update")
        if num_examples <= 0:
            raise InvalidArgument("task: zero examples", function="commit_update")
        if any(u.member == self.sender for u in r.updates):
            raise InvalidState("task: already committed", function="commit_update")
        index = len(r.updates)
        block = self._s.now
        r.updates.append(
            UpdateInfo(round_id, index, self.sender, update_hash, num_examples, block, dataset_id, epsilon_micro)
        )
        r.info = replace(r.info, num_updates=index + 1)
        return index

    def close_commits(self, round_id: int) -> Phase:
        r = self._in_phase(round_id, Phase.OPEN, "close_commits", "task: round not open")
        if not (self._s.now > r.info.commit_deadline or r.info.num_updates >= r.info.expected_trainers):
            raise InvalidState("task: commit phase still running", function="close_commits")
        if r.info.num_updates < self._s.params.min_commitments:
            r.info = replace(r.info, phase=Phase.ABORTED)
            return Phase.ABORTED
        trusted = self._s.validators.trusted(self._with_role(Role.VALIDATOR))
        for u in r.updates:
            eligible = [v for v in trusted if v != u.member]
            r.committees.append(eligible if self._s.draw is None else self._s.draw(round_id, u.index, eligible))
            r.scores.append([])
        seated = {v for committee in r.committees for v in committee}
        r.info = replace(
            r.info,
            phase=Phase.VALIDATE,
            validate_deadline=self._s.now + self._s.params.validate_duration,
            expected_validators=len(seated),
        )
        return Phase.VALIDATE

    def submit_scores(self, round_id: int, scores: Sequence[int | None]) -> None:
        self._require(Role.VALIDATOR, "submit_scores")
        r = self._in_phase(round_id, Phase.VALIDATE, "submit_scores", "task: round not in validation")
        self._before(r.info.validate_deadline, "task: validation deadline passed", "submit_scores")
        if self.sender in r.scored:
            raise InvalidState("task: already scored", function="submit_scores")
        if len(scores) != len(r.updates):
            raise InvalidArgument("task: one score per update expected", function="submit_scores")
        for i, score in enumerate(scores):
            if score is None:
                continue
            if self.sender not in r.committees[i]:
                raise InvalidArgument("task: validator not in the update's committee", function="submit_scores")
            r.scores[i].append((self.sender, int(score)))
        r.scored.add(self.sender)
        r.info = replace(r.info, num_scored=r.info.num_scored + 1)

    def flag_update(self, round_id: int, index: int, reason: str) -> None:
        """Flags change no state (on chain they are events for the record)."""
        self._require(Role.VALIDATOR | Role.AGGREGATOR, "flag_update")
        if not 0 <= index < len(self._round(round_id).updates):
            raise InvalidArgument("task: unknown update", function="flag_update")

    def close_validation(self, round_id: int) -> Phase:
        r = self._in_phase(round_id, Phase.VALIDATE, "close_validation", "task: round not in validation")
        if not (self._s.now > r.info.validate_deadline or r.info.num_scored >= r.info.expected_validators):
            raise InvalidState("task: validation phase still running", function="close_validation")
        params, mask = self._s.params, 0
        threshold, approvals = params.acceptance_threshold, params.min_approvals
        for i, given in enumerate(r.scores):
            if not given:
                continue
            outcome = verdict([score for _, score in given], threshold, approvals)
            mask |= int(outcome.accepted) << i
            validators, values = [v for v, _ in given], [score for _, score in given]
            self._s.validators.record(
                validators, values, accepted=outcome.accepted, threshold=threshold, approvals_only=approvals > 0
            )
            if self._s.trainers.enabled and outcome.score is not None:
                self._s.trainers.record(r.updates[i].member, accepted=outcome.accepted, score=outcome.score)
        if not mask:
            r.info = replace(r.info, phase=Phase.ABORTED)
            return Phase.ABORTED
        r.info = replace(
            r.info,
            phase=Phase.AGGREGATE,
            accepted_mask=mask,
            num_accepted=len(indices_of(mask)),
            aggregate_deadline=self._s.now + self._s.params.aggregate_duration,
        )
        return Phase.AGGREGATE

    def propose_aggregate(self, round_id: int, model_hash: str, accepted_mask: int) -> bool:
        self._require(Role.AGGREGATOR, "propose_aggregate")
        r = self._in_phase(round_id, Phase.AGGREGATE, "propose_aggregate", "task: round not in aggregation")
        self._before(r.info.aggregate_deadline, "task: aggregation deadline passed", "propose_aggregate")
        if accepted_mask != r.info.accepted_mask:
            raise InvalidArgument("task: accepted set does not match validation", function="propose_aggregate")
        if self.sender in r.proposed:
            raise InvalidState("task: already proposed", function="propose_aggregate")
        r.proposed.add(self.sender)
        votes = r.proposals[model_hash] = r.proposals.get(model_hash, 0) + 1
        if votes < self._s.params.proposal_quorum:
            return False
        r.info = replace(r.info, phase=Phase.FINALIZED, model_hash=model_hash)
        self._s.latest_model = model_hash
        return True

    def close_aggregation(self, round_id: int) -> Phase:
        r = self._in_phase(round_id, Phase.AGGREGATE, "close_aggregation", "task: round not in aggregation")
        if not self._s.now > r.info.aggregate_deadline:
            raise InvalidState("task: aggregation phase still running", function="close_aggregation")
        r.info = replace(r.info, phase=Phase.ABORTED)
        return Phase.ABORTED

    # -- helpers ------------------------------------------------------------------------------

    def _round(self, round_id: int) -> _Round:
        r = self._s.rounds.get(round_id)
        if r is None:
            raise InvalidArgument("task: wrong round", function="round")
        return r

    def _in_phase(self, round_id: int, phase: Phase, function: str, reason: str) -> _Round:
        r = self._s.rounds.get(round_id)
        if r is None or r.info.phase is not phase:
            raise InvalidState(reason, function=function)
        return r

    def _before(self, deadline: int, reason: str, function: str) -> None:
        if self._s.now > deadline:
            raise InvalidState(reason, function=function)

    def _require(self, roles: int, function: str) -> None:
        if not self._s.roles.get(self.sender, 0) & roles:
            raise NotAuthorized(f"task: caller lacks the role for {function}", function=function)

    def _with_role(self, role: int) -> list[str]:
        return [m for m, flags in self._s.roles.items() if flags & role]
