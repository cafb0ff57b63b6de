"""A member's node: its part in a task's rounds, against any chain and store.

:meth:`MemberNode.step` runs one step of the round engine (:mod:`fedledger.federation.engine`, where the
round protocol is written), which performs the one action this member still owes in the current round. This
module is the member's own work in those actions: training and committing its update, scoring the updates of
its committee seats, aggregating and proposing. Everything the engine decides comes from the ledger, so a node
restarted mid-round resumes where the ledger says it is, and never commits twice (the contract refuses it
anyway). Tasks with secure aggregation run the engine in the secure mode
(:class:`~fedledger.federation.secure_node.SecureRounds`).

Before training in a task with a purpose, a node checks in the DataRegistry that its dataset
allows that purpose and refuses otherwise (:class:`PurposeNotAllowed`, a ``refuse`` event, no
commitment). In a task with a privacy budget it runs the task's DP (client-level noise in the
update pipeline, or DP-SGD), accounts its cumulative epsilon with dp-accounting, refuses a round
that would take it past the budget (look-ahead, :class:`PrivacyBudgetExceeded`) and declares its
spend with its commitment. With a data registry it also refuses to train on more rows than its dataset
registered (:class:`RegisteredRowsExceeded`): aggregators leave out any update declaring more examples
than its dataset's registered rows. A refusing node keeps validating and aggregating.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast, overload

import numpy.typing as npt
from eth_account.signers.local import LocalAccount

from fedledger.chain.consortium import Role
from fedledger.chain.events import UpdateCommitted
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import ZERO_ADDRESS, MemberView, RoundInfo, TrainingTaskClient, UpdateInfo
from fedledger.data.registration import check_purpose
from fedledger.exceptions import (
    BadInput,
    ConfigError,
    PurposeNotAllowed,
    RegisteredRowsExceeded,
    TrainingRefused,
    UpdateRejected,
)
from fedledger.federation.batched import BatchedCommits
from fedledger.federation.behavior import Behavior, Honest, Scorer
from fedledger.federation.config import TaskConfig
from fedledger.federation.engine import CLOSED, RoundEngine, RoundMode, ValidatedRounds
from fedledger.federation.incentive_duties import IncentiveDuties
from fedledger.federation.incentives import task_incentives
from fedledger.federation.masked_node import MaskedRounds
from fedledger.federation.mpc_endpoint import MpcSetting
from fedledger.federation.rules import aggregate_round, check_update, previous_global_params, registered_rows
from fedledger.federation.secure_node import SecureRounds
from fedledger.learning import (
    SCORING_RULES,
    DecodedUpdate,
    ModelAdapter,
    Params,
    UpdatePipeline,
    build_model,
    decode_model,
)
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.scoring import ScoringRule, at_median_norm, centered_on_round, reference_update
from fedledger.learning.update import ClipTransform, FixedPointEncode, Tensors, Transform, encode_update
from fedledger.privacy.accounting import PrivacyAccount, epsilon_to_micro
from fedledger.privacy.dp import DPSGDConfig, NoiseSource
from fedledger.store import BlobStore

__all__ = ["LocalData", "MemberNode", "NodeEvent"]

log = logging.getLogger("fedledger.node")

MAX_SEATS_READ = 64
"""The most seats a validator reads by index (the contract's ``updates_at`` bound); more read the whole round."""


@dataclass(frozen=True)
class LocalData:
    """A member's own data: a training split and a validation split."""

    X_train: npt.NDArray[Any]
    y_train: npt.NDArray[Any]
    X_val: npt.NDArray[Any]
    y_val: npt.NDArray[Any]


@dataclass(frozen=True)
class NodeEvent:
    node: str
    action: str
    round_id: int
    details: dict[str, Any] = field(default_factory=dict)


class MemberNode:
    """One member's node against any chain and store."""

    def __init__(
        self,
        *,
        name: str,
        account: LocalAccount,
        task: TrainingTaskClient,
        store: BlobStore,
        data: LocalData | None,
        behavior: Behavior | None = None,
        on_event: Callable[[NodeEvent], None] | None = None,
        dataset_id: int | None = None,
        privacy_account: PrivacyAccount | None = None,
        dp_noise: NoiseSource | None = None,
        state_dir: Path | None = None,
        relay_url: str | None = None,
        mpc_endpoint: MpcSetting | None = None,
    ) -> None:
        """``dataset_id``: this member's DataRegistry dataset that ``data`` comes from (tasks with a
        purpose). ``privacy_account``: this member's spend so far (default: replayed from its
        commitments on chain). ``dp_noise``: client-level DP noise (default: fresh OS randomness;
        a seeded source only for replayable simulations). ``state_dir``: where this member keeps its
        secure-aggregation round secrets (encrypted) so a restarted node can finish a secure round;
        without it they live in memory only. ``relay_url``: in a task with batched commitments, the relay this
        member hands its signed commitments to (without one it commits directly on the task). ``mpc_endpoint``: in a
        task with masked checks, the host (and ports) other committee members reach this member's MPC party at,
        published on the task's bulletin (:mod:`fedledger.federation.mpc_endpoint`); None: the whole committee runs
        on one host."""
        self.name = name
        self.account = account
        self.task = task.as_(account)
        self.store = store
        self.data = data
        self.behavior: Behavior = behavior if behavior is not None else Honest()
        """How this member acts where it may deviate from the protocol (attack simulations wrap the honest node)."""
        self.on_event = on_event
        if data is not None:
            self.behavior.attach(self)
        self._config: TaskConfig | None = None
        self._models: dict[str, tuple[Params, dict[str, Any]]] = {}
        self._round_updates: tuple[int, list[UpdateInfo]] | None = None
        self._round_rows: tuple[int, dict[int, int]] | None = None
        self.dataset_id = dataset_id
        self.dp_noise = dp_noise
        self._account = privacy_account
        self.refusals: dict[int, TrainingRefused] = {}
        """round -> why this node refused to train in it."""
        self.left_out: set[int] = set()
        """Rounds whose validators the contract fixed without this member (not drawn, or distrusted)."""
        self.left_out_as_trainer: set[int] = set()
        """Rounds that opened with this member distrusted as a trainer: it does not train in them."""
        self._state_dir = state_dir
        self._engine: RoundEngine[Any] | None = None
        self._duties: IncentiveDuties | None | bool = False  # False: not looked up yet
        self.relay_url = relay_url
        self.mpc_endpoint = mpc_endpoint
        self._batched: BatchedCommits | None | bool = False  # False: not looked up yet

    # -- configuration -------------------------------------------------------------

    @property
    def config(self) -> TaskConfig:
        if self._config is None:
            config_hash = self.task.params().config_hash
            try:
                raw = self.store.get(config_hash.removeprefix("0x"))
            except Exception as exc:
                raise ConfigError(f"task config {config_hash} is not in the store: {exc}") from exc
            self._config = TaskConfig.from_bytes(raw)
        return self._config

    def global_model(self, model_hash: str) -> tuple[Params, dict[str, Any]]:
        """Params and spec of a model, fetched by hash (the store verifies the bytes)."""
        if model_hash not in self._models:
            blob = decode_model(self.store.get(model_hash.removeprefix("0x")))
            self._models = {model_hash: (blob.params, blob.spec)}  # keep only the latest
        return self._models[model_hash]

    def closed_updates(self, round_id: int) -> list[UpdateInfo]:
        """A round's commitments once its commit phase closed (then they never change)."""
        if self._round_updates is None or self._round_updates[0] != round_id:
            self._round_updates = (round_id, self.task.updates(round_id))
        return self._round_updates[1]

    def closed_rows(self, round_id: int) -> dict[int, int]:
        """The rows registered for the datasets of a closed round's commitments (update index -> rows; empty
        without a data registry): the most examples each may declare (:func:`registered_rows`)."""
        if self._round_rows is None or self._round_rows[0] != round_id:
            self._round_rows = (round_id, registered_rows(self.task, self.closed_updates(round_id)))
        return self._round_rows[1]

    def rows_of(self, updates: list[UpdateInfo]) -> dict[int, int]:
        """:meth:`closed_rows` for some of a round's commitments only (a secure member's neighbours')."""
        return registered_rows(self.task, updates)

    def adapter(self, params: Params) -> ModelAdapter:
        model = build_model(self.config.model)
        model.set_params(params)
        return model

    # -- the loop body -----------------------------------------------------------------

    @property
    def engine(self) -> RoundEngine[Any]:
        """The round engine this node runs, in the task's mode (secure aggregation or validated rounds)."""
        if self._engine is None:
            config = self.config
            mode: RoundMode[Any]
            if config.masked.enabled:
                mode = MaskedRounds(self.task, self, self.emit, endpoint=self.mpc_endpoint)
            elif config.secure_aggregation:
                mode = SecureRounds(self.task, self, self.emit, self._state_dir)
            else:
                mode = ValidatedRounds(self.task, self, self.emit, batched=self.batched)
            self._engine = RoundEngine(self.task, mode, name=self.name, rounds=config.rounds, emit=self.emit)
        return self._engine

    @property
    def view(self) -> MemberView | None:
        """This member's view of the task read by the last step (None before the first)."""
        return None if self._engine is None else self._engine.view

    @property
    def incentives(self) -> IncentiveDuties | None:
        """This member's incentive duties (:mod:`fedledger.federation.incentive_duties`); None when the task has no
        incentives (its contract names no stake gate)."""
        if self._duties is False:
            gate = task_incentives(self.task, self.account)
            self._duties = None if gate is None else IncentiveDuties(self, gate, wall_clock=time.time)
        return self._duties if isinstance(self._duties, IncentiveDuties) else None

    @property
    def batched(self) -> BatchedCommits | None:
        """This member's part in the task's batched commitments; None when its trainers commit directly."""
        if self._batched is False:
            on = self.config.commitments == "batched"
            self._batched = (
                BatchedCommits(self.task, self.store, self.account, relay_url=self.relay_url) if on else None
            )
        return self._batched if isinstance(self._batched, BatchedCommits) else None

    def step(self) -> bool:
        """Do what this member owes: first a stake it lacks for a new round, then its duty in the current round
        (:meth:`RoundEngine.step`), and when the round asks nothing of it, an incentive duty of a closed round
        (contributions, settlement, slashing); True if it acted."""
        duties = self.incentives
        if duties is not None and duties.top_up_stake(self.view):
            return True
        if self.engine.step():
            return True
        return duties is not None and duties.step()

    def done(self) -> bool:
        """True once the task's last round is closed."""
        current = self.task.current_round
        return current >= self.config.rounds and self.task.round(current).phase in CLOSED

    def done_at_last_step(self) -> bool:
        """Whether the task's last round was closed when the last step read the chain (no read of its own: call
        it after a step that did not act, whose view is then current)."""
        view = self.view
        if view is None:
            return self.done()
        return view.current_round >= self.config.rounds and view.round is not None and view.round.phase in CLOSED

    @property
    def trains(self) -> bool:
        """Whether this member holds data: it trains and validates; without, it only aggregates."""
        return self.data is not None

    @property
    def trainer_reputation(self) -> bool:
        """Whether the task leaves distrusted trainers out of its rounds."""
        return bool(self.config.max_rejection or self.config.min_mean_score)

    # -- provenance and privacy ----------------------------------------------------------

    def registry(self) -> DataRegistryClient | None:
        """The task's DataRegistry (read-only), None when the task has none."""
        address = self.task.params().data_registry
        return None if address == ZERO_ADDRESS else DataRegistryClient(self.task.chain, address)

    def require_purpose(self) -> None:
        """Refuse (:class:`PurposeNotAllowed`) a task whose purpose this member's dataset does not allow."""
        purpose = self.config.purpose
        if not purpose:
            return
        registry = self.registry()
        if registry is None:
            raise PurposeNotAllowed(f"task has purpose {purpose!r} but no data registry to check datasets in")
        if self.dataset_id is None:
            raise PurposeNotAllowed(f"{self.name} has no registered dataset for the purpose {purpose!r}")
        check_purpose(registry, self.dataset_id, purpose)

    def own_registered_rows(self) -> int | None:
        """The rows this member's dataset registered, None when the task has no data registry or the node
        names no dataset: the most examples it may declare."""
        registry = self.registry()
        if registry is None or self.dataset_id is None:
            return None
        return registry.rows_of(self.dataset_id)

    def privacy_account(self) -> PrivacyAccount | None:
        """This member's spend in the task (None without DP): given, or replayed from its commitments."""
        privacy = self.config.privacy
        if privacy is None:
            return None
        if self._account is None:
            account = privacy.account(self.account.address)
            mine = [
                e for e in self.task.events() if isinstance(e, UpdateCommitted) and e.member == self.account.address
            ]
            for e in sorted(mine, key=lambda e: e.round_id):
                account.record(e.round_id, privacy.mechanism(num_examples=e.num_examples))
            self._account = account
        return self._account

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]:
        """This member's fixed-point update for the round, its blob metadata, its declared example count and its
        cumulative epsilon (None without DP): purpose and budget checked first (refusals raise), trained
        (DP-SGD in sample mode), deviated by its behaviour, clipped (or clipped and noised in client
        mode), encoded. With DP the round is recorded as spent here: call it once per round."""
        config = self.config
        r = info.round_id
        n = len(self._own_data().y_train)
        self.require_purpose()
        rows = self.own_registered_rows()
        if rows is not None and n > rows:
            raise RegisteredRowsExceeded(
                f"{self.name} would train on {n} examples, its dataset {self.dataset_id} registered {rows} rows: "
                "commit to the new rows in the data registry first"
            )
        privacy, account = config.privacy, self.privacy_account()
        mechanism = None
        if privacy is not None and account is not None:
            mechanism = privacy.mechanism(num_examples=n)
            account.require_budget(privacy.budget_epsilon, mechanism)  # look-ahead: refuse before training
        global_params, _ = self.global_model(info.global_model)
        seed = _seed(config.seed, self.account.address, r)
        if privacy is not None and privacy.mode == "sample":
            local = self.behavior.local_params(lambda: self._dp_sgd_train(global_params, r), global_params, r)
        else:
            local = self.behavior.local_params(lambda: self.train(global_params, r), global_params, r)
        first: Transform = ClipTransform(config.clip_norm)
        if privacy is not None and privacy.mode == "client":
            first = privacy.client_transform(noise=self.dp_noise, shares=config.dp_noise_shares)
        pipeline = UpdatePipeline([first, FixedPointEncode(FixedPoint(config.frac_bits))])
        # The most any check admits: the task's max_examples, or fewer when the dataset registered fewer rows.
        limit = config.max_examples if rows is None else min(config.max_examples, rows)
        declared = self.behavior.claimed_examples(n, max_examples=limit)
        update, meta = pipeline.transform(local, global_params, num_examples=declared, seed=seed)
        # The noisy update is spent once it leaves this process: record the round before storing it.
        epsilon = account.record(r, mechanism) if account is not None and mechanism is not None else None
        return update, meta, declared, epsilon

    # -- the member's duties ---------------------------------------------------------------

    def train_and_commit(self, info: RoundInfo) -> None:
        """Train this round's update, store its blob and commit its hash (refusals raise :class:`TrainingRefused`)."""
        started = time.perf_counter()
        self._require_stake(Role.TRAINER, info.round_id)
        update, meta, n, epsilon = self.local_update(info)
        # Local work (training, clipping, encoding), reported so round overhead can be told apart from training.
        train_seconds = round(time.perf_counter() - started, 4)
        self.commit(info.round_id, self.store.put(encode_update(update, meta)), n, epsilon, train_seconds=train_seconds)

    def commit(self, r: int, update_hash: str, n: int, epsilon: float | None, **extra: Any) -> None:
        """Commit an update blob's hash with this member's dataset and declared spend."""
        declared = 0 if epsilon is None else epsilon_to_micro(epsilon)
        details: dict[str, Any] = {"update_hash": "0x" + update_hash, "num_examples": n, **extra}
        batched = self.batched if self.relay_url else None
        try:
            if batched is not None:
                details.update(batched.send(r, update_hash, n, self.dataset_id or 0, declared))
        except BadInput as exc:  # no receipt, no claim: the member commits on the task itself instead
            self.emit("relay_refused", r, reason=str(exc))
            batched = None
        if batched is None:
            index = self.task.commit_update(r, update_hash, n, dataset_id=self.dataset_id or 0, epsilon_micro=declared)
            details = {"index": index, **details}
        if self.dataset_id is not None:
            details["dataset_id"] = self.dataset_id
        if epsilon is not None:
            details["epsilon"] = epsilon
            details["epsilon_micro"] = declared
        self.emit("commit", r, **details)

    def score(self, info: RoundInfo) -> None:
        """Score the round's updates this member's committee seats hold, and submit the scores."""
        config = self.config
        r = info.round_id
        self._require_stake(Role.VALIDATOR, r)
        global_params, _ = self.global_model(info.global_model)
        spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
        # Its committee seats (every other member's update when the task has no committees);
        # the contract refuses self-scores and scores outside the validator's committees.
        assigned = set(self.task.assignments_of(r, self.account.address))
        scorer = self.scorer(global_params, r) if assigned else None
        # Scoring at the round's median norm needs every update's norm, and centring on the round's median score
        # needs every update's score, not only the seats' (a cosine needs no norm).
        scale_to_median = bool(assigned) and bool(config.score_at_median_norm) and config.scoring != "trust"
        center = bool(assigned) and bool(config.center_scores)
        updates = self._updates_to_score(r, assigned, every=scale_to_median or center)
        rows = registered_rows(self.task, updates) if assigned else {}  # the updates read, not the round's
        # The yardstick is the others' updates: a validator's own update, trained on data like its own, would
        # raise its median and sink everyone else's.
        others = {u.index for u in updates if u.member.lower() != self.account.address.lower()}
        checked: dict[int, DecodedUpdate | str] = {}
        for update in updates:
            if update.index in assigned or scale_to_median or (center and update.index in others):
                try:
                    checked[update.index] = check_update(self.store, config, spec, update, rows=rows.get(update.index))
                except UpdateRejected as exc:
                    checked[update.index] = exc.reason
        valid = {i: d for i, d in checked.items() if isinstance(d, DecodedUpdate)}
        if scale_to_median and valid:
            valid = dict(zip(valid, at_median_norm(list(valid.values())), strict=True))
            checked.update(valid)
        measured: dict[int, int] = {}
        if valid and scorer is not None:
            measured = {i: scorer(decoded) for i, decoded in valid.items() if i in assigned or (center and i in others)}
            if center:
                measured = dict(zip(measured, centered_on_round(list(measured.values())), strict=True))
        scores: list[int | None] = [None] * info.num_updates
        for update in updates:
            if update.index not in assigned:
                continue
            decoded = checked[update.index]
            if isinstance(decoded, str):
                scores[update.index] = 0
                self.task.flag_update(r, update.index, decoded)
                self.emit("flag", r, index=update.index, member=update.member, reason=decoded)
                continue
            scores[update.index] = measured[update.index]
        owners = _Owners(lambda: self.closed_updates(r), info.num_updates)
        scores = self.behavior.scores(scores, owners, lambda: self.task.scorers_of(r, self.closed_updates(r)))
        self.task.submit_scores(r, scores)
        self.emit("score", r, scores=scores)

    def _updates_to_score(self, round_id: int, assigned: set[int], *, every: bool) -> list[UpdateInfo]:
        """The round's updates this validator reads: every one when its scores need the whole round (median
        norm, centring), otherwise only its seats' (one call: a committee's seats, not the round's updates)."""
        if every or len(assigned) > MAX_SEATS_READ:
            return self.closed_updates(round_id)
        if self._round_updates is not None and self._round_updates[0] == round_id:
            return [u for u in self._round_updates[1] if u.index in assigned]
        return self.task.updates_at(round_id, sorted(assigned)) if assigned else []

    def _scoring_rule(self, global_params: Params, round_id: int) -> ScoringRule:
        """The task's scoring rule; ``trust`` gets this validator's reference update, trained once per round
        on its validation data with the task's local schedule (seeded: replayable)."""
        rule = SCORING_RULES[self.config.scoring]
        if self.config.scoring != "trust":
            return rule
        scorer: ScoringRule = functools.partial(
            cast(Any, rule), reference=self.trust_reference(global_params, round_id)
        )
        return scorer

    def trust_reference(self, global_params: Params, round_id: int) -> Params:
        """This member's reference update of ``round_id``: local training from ``global_params`` on its validation
        data with the task's local schedule, minus ``global_params`` (seeded: replayable). What the trust score
        compares with, and what this member checks masked updates' direction against on a check committee."""
        data = self._own_data()
        seed = _seed(self.config.seed, self.account.address, round_id) ^ 0x5CA1E
        return reference_update(
            build_model(self.config.model),
            global_params,
            data.X_val,
            data.y_val,
            epochs=self.config.local_epochs,
            seed=seed,
        )

    def aggregate(self, info: RoundInfo) -> None:
        """Recompute the round's next model from its accepted updates, store it and propose its hash."""
        r = info.round_id
        global_params, model_spec = self.global_model(info.global_model)
        updates = self.closed_updates(r)
        previous = previous_global_params(self.task, self.store, r)
        result = aggregate_round(
            self.store,
            self.config,
            global_params,
            model_spec,
            updates,
            info.accepted,
            round_id=r,
            previous_params=previous,
            rows=self.closed_rows(r),
        )
        for index, reason in result.excluded.items():
            self.task.flag_update(r, index, f"excluded from aggregate: {reason}")
        model_hash = "0x" + self.store.put(self.behavior.proposal(result.blob, r))
        finalized = self.task.propose_aggregate(r, model_hash, info.accepted_mask)
        self.emit("propose", r, model_hash=model_hash, included=result.included, finalized=finalized)

    @property
    def address(self) -> str:
        return str(self.account.address)

    def scorer(self, global_params: Params, round_id: int) -> Scorer:
        """How this member, as a validator of ``round_id``, scores an update to ``global_params`` on its own
        validation data with the task's scoring rule (``trust``: against its reference update, trained here)."""
        data = self._own_data()
        rule, model_config = self._scoring_rule(global_params, round_id), self.config.model

        def score(decoded: DecodedUpdate) -> int:
            return int(rule(build_model(model_config), global_params, decoded, data.X_val, data.y_val))

        return score

    def train(self, global_params: Params, round_id: int) -> Params:
        """This member's honest local training in ``round_id`` (seeded by task, member and round: replayable)."""
        data, config = self._own_data(), self.config
        model = self.adapter(global_params)
        seed = _seed(config.seed, self.account.address, round_id)
        model.fit(data.X_train, data.y_train, epochs=config.local_epochs, seed=seed)
        return model.get_params()

    def _dp_sgd_train(self, global_params: Params, round_id: int) -> Params:
        """Local training with DP-SGD (Opacus) under the task's sample-level settings."""
        data, privacy = self._own_data(), self.config.privacy
        if privacy is None:
            raise ConfigError("DP-SGD training in a task without a privacy setting")
        dp = DPSGDConfig(
            noise_multiplier=privacy.noise_multiplier_for(len(data.y_train)),
            max_grad_norm=privacy.max_grad_norm,
            batch_size=privacy.batch_size,
            delta=privacy.delta,
        )
        seed = _seed(self.config.seed, self.account.address, round_id)
        model = self.adapter(global_params)
        return dp.train(model, data.X_train, data.y_train, epochs=self.config.local_epochs, seed=seed).params

    def validation_split(self) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        """The validation rows this member scores and measures contributions on."""
        data = self._own_data()
        return data.X_val, data.y_val

    # -- helpers --------------------------------------------------------------------------

    def _require_stake(self, role: Role, round_id: int) -> None:
        """Top the stake up for every role this member holds before acting in ``role``: a slash since the round's
        stake check would have the action refused."""
        duties = self.incentives
        if duties is not None:
            view = self.view
            duties.require_stake(view.roles if view is not None else int(role), round_id)

    def _own_data(self) -> LocalData:
        """This member's data; a node without data only aggregates and moves phases on, never trains or scores."""
        if self.data is None:
            raise BadInput(f"{self.name} has no local data to train or validate on")
        return self.data

    def emit(self, action: str, round_id: int, **details: Any) -> None:
        """Log what this member did and report it to ``on_event``."""
        log.info("%s %s round %d %s", self.name, action, round_id, details)
        if self.on_event is not None:
            self.on_event(NodeEvent(self.name, action, round_id, details))


class _Owners(Sequence[str]):
    """The owners of a round's updates, in commit order, read only when first used: an honest validator never
    reads them, an attack's behaviour may."""

    def __init__(self, read: Callable[[], list[UpdateInfo]], count: int) -> None:
        self._read, self._count = read, count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        return [u.member for u in self._read()][index]

    def __iter__(self) -> Iterator[str]:
        return iter([u.member for u in self._read()])


def _seed(task_seed: int, address: str, round_id: int) -> int:
    """Per member and round, reproducible: training can be replayed."""
    digest = hashlib.sha256(f"{task_seed}:{address}:{round_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")
