"""A member node's incentive duties: stake, contributions, settlement and slashing, beside the round engine.

A task with incentives (:mod:`fedledger.federation.incentives`) asks more of its members than the rounds do, and
none of it may hold a round up, so :class:`IncentiveDuties` runs only in the steps where the round engine had
nothing to do (:meth:`fedledger.federation.node.MemberNode.step`), one action per step:

* **stake**: before the member takes part in a round, it tops its stake up to what its roles require (the most of
  the trainer's and the validator's stake it holds a role for), from its own funds. A validator must hold it when
  the round's commits close (the contract fixes the round's validators then), so it is checked at each new round,
  and again right before a commitment (a slash since the last check would have the commitment refused);
* **contributions**: a validator that scored a finalized round measures the round's accepted updates on its own
  validation split with the task's ``contribution_method`` (:func:`~fedledger.incentives.measure_round`, seeded by
  :func:`~fedledger.incentives.round_seed` over the task, the round and its accepted updates' hashes, so every
  validator draws the same permutations) and posts the values of the updates it was a scorer of, once. A post the
  contract refuses (its window closed) is reported as a ``contribution-missed`` event and not retried;
* **settlement**: any member settles a finalized round once every validator that scored it posted, or its window
  passed; a settlement that another member won is no error;
* **slashing** (only with a slash share above 0): any member slashes the trainer of an update that every one of its
  validators scored below the threshold, and a validator the task distrusts, naming a round it scored.

Every duty is decided from the chain, so a restarted node resumes them; what a member already did in a round is
read back (``has_posted``, ``settled``, ``update_slashed``), never remembered alone.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount

from fedledger.chain.consortium import Role
from fedledger.chain.events import ScoresSubmitted
from fedledger.chain.incentives import IncentiveParams, IncentivesClient
from fedledger.chain.task import MemberView, Phase, RoundInfo, TrainingTaskClient
from fedledger.exceptions import ContractRevert, InvalidState, UpdateRejected
from fedledger.federation.config import TaskConfig
from fedledger.federation.engine import CLOSED
from fedledger.federation.rules import check_update, registered_rows
from fedledger.incentives import measure_round, round_seed, validation_metric
from fedledger.learning import DecodedUpdate, ModelAdapter, Params, build_model
from fedledger.store import BlobStore

__all__ = ["IncentiveDuties", "IncentiveMember"]

log = logging.getLogger("fedledger.node")


class IncentiveMember(Protocol):
    """What the duties need of the member node they run for."""

    @property
    def name(self) -> str: ...

    @property
    def address(self) -> str: ...

    @property
    def account(self) -> LocalAccount: ...

    @property
    def task(self) -> TrainingTaskClient: ...

    @property
    def store(self) -> BlobStore: ...

    @property
    def config(self) -> TaskConfig: ...

    @property
    def trains(self) -> bool: ...

    @property
    def view(self) -> MemberView | None: ...

    def global_model(self, model_hash: str) -> tuple[Params, dict[str, Any]]: ...

    def validation_split(self) -> tuple[Any, Any]: ...

    def emit(self, action: str, round_id: int, **details: Any) -> None: ...


class IncentiveDuties:
    """One member's incentive duties in a task with incentives (see the module docstring)."""

    def __init__(
        self, member: IncentiveMember, incentives: IncentivesClient, *, wall_clock: Callable[[], float] | None = None
    ) -> None:
        """``wall_clock``: a second clock a contribution window closes by (a chain that mines only on demand keeps
        its last block time while idle); None: only the chain's."""
        self.member = member
        self.incentives = incentives.as_(member.account)
        self.params: IncentiveParams = incentives.params()
        self.wall_clock = wall_clock
        self._stake_round: int | None = None
        self._first_open = 1
        self._done: set[int] = set()
        self._posted: set[int] = set()
        self._slashes_checked: set[int] = set()

    # -- stake ---------------------------------------------------------------------------

    def required_stake(self, roles: int) -> int:
        """The stake a member with ``roles`` deposits: the most its trainer and validator roles require (a member
        without data neither trains nor scores, and stakes nothing)."""
        if not self.member.trains:
            return 0
        needs = [0]
        if roles & Role.TRAINER:
            needs.append(self.params.trainer_stake)
        if roles & Role.VALIDATOR:
            needs.append(self.params.validator_stake)
        return max(needs)

    def top_up_stake(self, view: MemberView | None) -> bool:
        """Once per round (by the member's last view), deposit what its stake lacks; True if it deposited."""
        round_now = 0 if view is None else view.current_round
        if self._stake_round == round_now:
            return False
        self._stake_round = round_now
        roles = view.roles if view is not None else self.member.task.member_view(self.member.address).roles
        return self.require_stake(roles, round_now)

    def require_stake(self, roles: int, round_id: int) -> bool:
        """Deposit what this member's stake lacks for ``roles``; True if it deposited."""
        required = self.required_stake(roles)
        if not required:
            return False
        have = self.incentives.stake_of(self.member.address)
        if have >= required:
            return False
        self.incentives.deposit_stake(required - have)
        self.member.emit("stake", round_id, deposited=required - have, stake=required)
        return True

    # -- the rounds' duties ----------------------------------------------------------------

    def step(self) -> bool:
        """Do one incentive duty owed in a closed round, oldest first; True if it acted."""
        view = self.member.view
        if view is None:
            return False
        for r in range(self._first_open, view.current_round + 1):
            if r in self._done:
                continue
            info = view.round if r == view.current_round and view.round is not None else self.member.task.round(r)
            if info.phase not in CLOSED:
                break
            acted = self._round_duty(info)
            if acted is None:
                self._done.add(r)
            elif acted:
                return True
        while self._first_open in self._done:
            self._first_open += 1
        return False

    @property
    def waiting(self) -> bool:
        """Whether a closed round still waits for a duty (its settlement) as of the last step."""
        view = self.member.view
        return view is not None and self._first_open <= view.current_round

    def _round_duty(self, info: RoundInfo) -> bool | None:
        """One duty in a closed round: True if done now, False if one waits (its settlement), None if none is left."""
        r = info.round_id
        finalized = info.phase is Phase.FINALIZED
        if finalized and r not in self._posted:
            self._posted.add(r)
            if self.member.trains and self.member.task.has_scored(r, self.member.address) and self._post(info):
                return True
        if r not in self._slashes_checked:
            if self._slash_one(info):
                return True
            self._slashes_checked.add(r)
        if not finalized or self.incentives.settled(r):
            return None
        posters = int(self.incentives.chain.call(self.incentives.contract.functions.posters(r)))
        if posters < info.num_scored and not self._past(info.aggregate_deadline + self.params.contribution_window):
            return False
        self._attempt("settle", r, lambda: self.incentives.settle_round(r))
        return True

    def _past(self, deadline: int) -> bool:
        now = self.incentives.chain.timestamp()
        if self.wall_clock is not None:
            now = max(now, int(self.wall_clock()))
        return now > deadline

    def _attempt(self, action: str, round_id: int, fn: Callable[[], object], **details: Any) -> bool:
        """Send a duty any member may do; losing the race to another member (a refusal) is fine."""
        try:
            fn()
        except InvalidState as exc:
            log.debug("%s: %s for round %d skipped: %s", self.member.name, action, round_id, exc.reason)
            return False
        self.member.emit(action, round_id, **details)
        return True

    # -- contributions -------------------------------------------------------------------

    def _post(self, info: RoundInfo) -> bool:
        """Measure and post this validator's contributions for a finalized round it scored (once). A blob the store
        cannot give now defers the post to a later step: a validator posts nothing rather than a 0 it did not
        measure."""
        r, me = info.round_id, self.member.address
        if self.incentives.has_posted(r, me):
            return False
        if self.incentives.chain.timestamp() > info.aggregate_deadline + self.params.contribution_window:
            return self._missed(r, "incentives: contribution window closed")
        updates = self.member.task.updates(r)
        missing = [i for i in info.accepted if not self.member.store.has(updates[i].update_hash.removeprefix("0x"))]
        if missing:
            self._posted.discard(r)
            log.warning("%s defers its contributions for round %d: blobs %s unavailable", self.member.name, r, missing)
            return False
        started = time.perf_counter()
        measured = self.measure(info)
        assigned = set(self.member.task.assignments_of(r, me))
        values = {i: v for i, v in measured.items() if i in assigned}
        try:
            self.incentives.post_contributions(r, values)
        except ContractRevert as exc:  # the window closed, or the contract disagrees: either way the node goes on
            return self._missed(r, exc.reason)
        seconds = round(time.perf_counter() - started, 4)
        self.member.emit("contribution", r, values={str(i): v for i, v in values.items()}, seconds=seconds)
        return True

    def _missed(self, round_id: int, reason: str) -> bool:
        """Report a post that can no longer be made; the node goes on (the round settles without it)."""
        log.warning("%s could not post its contributions for round %d: %s", self.member.name, round_id, reason)
        self.member.emit("contribution-missed", round_id, reason=reason)
        return True

    def measure(self, info: RoundInfo) -> dict[int, int]:
        """Each accepted update's contribution to ``info``'s round, in basis points, on this member's validation
        split (by update index); an accepted update whose blob fails the checks counts as no update (0)."""
        member, config, r = self.member, self.member.config, info.round_id
        global_params, _ = member.global_model(info.global_model)
        spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
        updates = member.task.updates(r)
        rows = registered_rows(member.task, updates)
        decoded: dict[int, DecodedUpdate] = {}
        for i in info.accepted:
            try:
                decoded[i] = check_update(member.store, config, spec, updates[i], rows=rows.get(i))
            except UpdateRejected as exc:
                log.warning("%s: accepted update %d of round %d fails its checks: %s", member.name, i, r, exc.reason)
        X_val, y_val = member.validation_split()
        metric = validation_metric(self._scratch_model(), X_val, y_val)
        seed = round_seed(member.task.address, r, *(updates[i].update_hash for i in info.accepted))
        incentives = config.incentives
        shares = (
            measure_round(
                incentives.contribution_method,
                global_params,
                list(decoded.values()),
                metric,
                seed=seed,
                settings=incentives.contribution_settings,
            )
            if decoded
            else []
        )
        measured = dict.fromkeys(info.accepted, 0)
        measured.update(zip(decoded, shares, strict=True))
        return measured

    def _scratch_model(self) -> ModelAdapter:
        return build_model(self.member.config.model)

    # -- slashing ------------------------------------------------------------------------

    def _slash_one(self, info: RoundInfo) -> bool:
        """Slash one trainer or validator of a closed round that the task's rules make slashable; True if sent."""
        if self.params.trainer_slash_bps and self._slash_trainer(info):
            return True
        return bool(self.params.validator_slash_bps and info.phase is not Phase.ABORTED and self._slash_validator(info))

    def _slash_trainer(self, info: RoundInfo) -> bool:
        r, task = info.round_id, self.member.task
        f, call = self.incentives.contract.functions, self.incentives.chain.call
        threshold = task.params().acceptance_threshold
        for update in task.updates(r):
            if (info.accepted_mask >> update.index) & 1:
                continue
            scores = task.scores_of(r, update.index)
            if not scores or any(s >= threshold for s in scores) or call(f.update_slashed(r, update.index)):
                continue
            if not self.incentives.stake_of(update.member):
                continue
            details = {"index": update.index, "member": update.member, "scores": scores}
            if self._attempt(
                "slash-trainer", r, functools.partial(self.incentives.slash_trainer, r, update.index), **details
            ):
                return True
        return False

    def _slash_validator(self, info: RoundInfo) -> bool:
        r, task = info.round_id, self.member.task
        f, call = self.incentives.contract.functions, self.incentives.chain.call
        # Who scored, from the round's score events: the task's own seat lists leave a distrusted validator out.
        updates = task.updates(r)
        first = min((u.block_number for u in updates), default=0)
        events = task.events(from_block=first) if updates else []
        scorers = sorted({e.validator for e in events if isinstance(e, ScoresSubmitted) and e.round_id == r})
        for v in scorers:
            if not task.reputation_of(v).distrusted or r <= int(call(f.validator_slashed_round(v))):
                continue
            if not self.incentives.stake_of(v):
                continue
            if self._attempt(
                "slash-validator", r, functools.partial(self.incentives.slash_validator, v, r), validator=v
            ):
                return True
        return False
