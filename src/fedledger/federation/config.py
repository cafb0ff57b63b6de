"""The task configuration: everything members must agree on, committed by hash.

The configuration is canonical JSON stored in the blob store; the TrainingTask
contract holds its sha256 (``config_hash``), so a member that fetches it by hash
knows it trains, validates and aggregates by the same rules as everyone else.

Provenance and privacy are part of it: ``purpose`` is the canonical name of the
purpose of processing (the contract checks each commitment's dataset allows it in
the DataRegistry), and ``dp_*`` set differential privacy with a budget the
contract enforces on every member's declared spend (:mod:`fedledger.federation.privacy`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, cast

import numpy as np
from eth_utils import is_address

from fedledger.chain.encoding import ZERO_HASH
from fedledger.chain.incentives import IncentiveParams
from fedledger.chain.registry import purpose_id
from fedledger.chain.task import ZERO_ADDRESS, TaskParams
from fedledger.exceptions import AggregationError, BadInput, ConfigError
from fedledger.federation.batched import batch_contract, check_batched
from fedledger.federation.masked_settings import MASKED_UNSET, MaskedCheckSettings
from fedledger.federation.modes import (
    AUTO,
    AggregationRule,
    DpMode,
    ProfileName,
    Scoring,
    ServerOptimizer,
    ledger_rules,
    parse_choice,
)
from fedledger.federation.privacy import TaskPrivacy
from fedledger.federation.profiles import (
    DEFAULT_CLIP_TO_MEDIAN_NORM,
    DEFAULT_MAX_DISAGREEMENT,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_MAX_REJECTION,
    DEFAULT_REPUTATION_WARMUP,
    DEFAULT_RULE,
    DEFAULT_SCORING,
    DEFAULT_THRESHOLDS,
    PROFILES,
    Profile,
)
from fedledger.federation.sections import (
    IncentiveSettings,
    PipelineSettings,
    PrivacySettings,
    ReputationSettings,
    RobustnessSettings,
    SecureAggregationSettings,
    TimingSettings,
    TrainingSettings,
)
from fedledger.federation.secure_config import check_secure
from fedledger.incentives.contribution import DEFAULT_CONTRIBUTION_METHOD
from fedledger.learning.aggregation import aggregate, resolve_optimizer_params
from fedledger.store.safejson import loads_bounded

__all__ = [
    "CONFIG_FORMAT",
    "DEFAULT_CLIP_TO_MEDIAN_NORM",
    "DEFAULT_MAX_DISAGREEMENT",
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_MAX_REJECTION",
    "DEFAULT_REPUTATION_WARMUP",
    "DEFAULT_RULE",
    "DEFAULT_SCORING",
    "DEFAULT_THRESHOLDS",
    "DP_MODES",
    "PROFILES",
    "TaskConfig",
    "ledger_rules",
]

CONFIG_FORMAT = "fedledger-task/1"

DP_MODES = (AUTO, *DpMode)
"""The values ``dp_mode`` may take: ``auto`` (the profile's, resolved at construction) or a
:class:`~fedledger.federation.modes.DpMode`."""

_OMITTED_WHEN_UNSET: dict[str, Any] = {
    "preparation": {},
    "server_optimizer": ServerOptimizer.NONE,
    "server_optimizer_params": {},
    "evaluation_board": "",
    "commitments": "direct",
    "commitment_batches": "",
    "batch_window": 60,
    "min_approvals": 0,
    "mutable": {},
    # Incentives (IncentiveSettings): a task without them hashes as if they did not exist.
    "contribution_method": "",
    "contribution_params": {},
    "reward_per_round": 0,
    "reward_token": "",
    "trainer_stake": 0,
    "validator_stake": 0,
    "trainer_slash_bps": 0,
    "validator_slash_bps": 0,
    "contribution_window": IncentiveParams.contribution_window,
    "dispute_window": IncentiveParams.dispute_window,
    **MASKED_UNSET,
}
"""Settings left out of the canonical bytes while at these values: a config that does not use one hashes as if the
setting did not exist, so configs committed on chain without it keep their hash."""

_OFF_WHEN_ABSENT: dict[str, Any] = {
    "clip_to_median_norm": False,
    "lift_to_median_norm": False,
    "max_rejection": 0,
    "min_approvals": 0,
    "min_mean_score": 0,
    "cap_examples_to_median": False,
    "score_at_median_norm": False,
    "center_scores": False,
    "masked_reference": "previous",
}
"""Settings a committed config may lack: the code that wrote such a config did not apply them, so it loads with them
off (0 or false; for the masked direction check, the previous aggregate as its reference), which is what its members
did."""

_PROBE_UPDATES = 7
"""Tiny fixed-point updates a config's rule is tried on: enough for every rule (Bulyan needs 4f + 3) to run."""


@dataclass(frozen=True)
class TaskConfig:
    """Model, training, update and round rules of one task.

    **Why the storage is flat.** The canonical JSON (:meth:`to_bytes`) is a flat object of these fields, and its
    sha256 is the ``config_hash`` every task holds on chain: equal settings must give equal bytes for as long as
    tasks live. So the fields stay flat, with the constructor keywords of the same names, and the settings are also
    exposed grouped and typed, as read-only views built once from the fields: :attr:`training`, :attr:`pipeline`,
    :attr:`robustness`, :attr:`dp`, :attr:`secagg`, :attr:`timing` and :attr:`incentives`
    (:mod:`fedledger.federation.sections`).

    Settings left ``None`` or ``"auto"`` are resolved at construction from the :attr:`profile`
    (:mod:`fedledger.federation.profiles`), secure aggregation and DP, and the resolved value is stored, so the
    committed config states every rule its members follow; modes are stored as the enum members of
    :mod:`fedledger.federation.modes`, which are the strings the JSON holds.
    """

    model: dict[str, Any]
    # Which defaults fill the robustness settings left unset: "consortium" (many members, a sample training each
    # round) or "few-silos" (a handful that all train every round). See fedledger.federation.profiles.
    profile: str = ProfileName.CONSORTIUM
    # Training (TrainingSettings)
    rounds: int = 10
    local_epochs: int = 5
    seed: int = 0
    # Update pipeline (PipelineSettings). clip_norm bounds each update's L2 norm; 24 fractional bits keep
    # float32-level precision in the int64 fixed point every party aggregates bit-identically.
    clip_norm: float = 10.0
    frac_bits: int = 24
    max_update_bytes: int = 16 * 2**20  # about two million parameters at 8 bytes each (int64 fixed point)
    max_examples: int = DEFAULT_MAX_EXAMPLES
    # Robustness (RobustnessSettings): acceptance is the contract's rule (the median of validators' scores, or with
    # min_approvals that many approvals, reaching the threshold). "auto" scoring is the profile's, except under
    # client-level DP without secure aggregation, where the noise hides every update's direction and the change in
    # accuracy ("relative") is used; the threshold defaults to the scoring rule's (DEFAULT_THRESHOLDS). "auto"
    # aggregation is the profile's rule in validated rounds and fedavg under secure aggregation, which only sums.
    acceptance_threshold: int | None = None
    scoring: str = AUTO
    aggregation: str = AUTO
    aggregation_params: dict[str, Any] = field(default_factory=dict)  # the rule's parameters (see its module)
    # The per-update adjustments (fedledger.learning.aggregation.median_norm, example_cap; fedledger.learning.scoring).
    # None: the profile's in validated rounds, off under secure aggregation, which sees no individual update.
    # clip_to_median_norm: FLAME's adaptive clipping, each accepted update longer than the round's median scaled
    # down to it. lift_to_median_norm: each accepted non-zero update shorter than the median scaled up to it, so a
    # short copy of a step weighs what a typical step weighs. score_at_median_norm: validators score a short update
    # as if scaled up to the median norm, so a harmful direction cannot pass as a short step. center_scores:
    # validators re-centre their scores on their own median score of the round, so an update is judged by what it
    # costs beyond a typical update. cap_examples_to_median (None: on in validated rounds): declared example counts,
    # which nobody can check, are read as at most the round's upper median count.
    clip_to_median_norm: bool | None = None
    lift_to_median_norm: bool | None = None
    score_at_median_norm: bool | None = None
    center_scores: bool | None = None
    cap_examples_to_median: bool | None = None
    # Server-side adaptive optimizer (Reddi et al., ICLR 2021; fedledger.learning.aggregation.server_optimizer):
    # "none" applies the aggregate as the step; the others treat it as a pseudo-gradient, with their state in each
    # model blob. Unset params take the optimizer's defaults, written into the committed config.
    server_optimizer: str = ServerOptimizer.NONE
    server_optimizer_params: dict[str, Any] = field(default_factory=dict)
    # Timing and quorums (TimingSettings; block-time seconds). A phase ends as soon as every member has acted, so a
    # deadline only bounds how long a dead or late member can hold a round: an hour is generous on purpose.
    # committee_size 0: every validator scores every update, except in a round that opens with more than
    # fedledger.chain.task_records.AUTO_COMMITTEE_ABOVE validators, which draws committees of AUTO_COMMITTEE_SIZE.
    min_commitments: int = 2
    commit_duration: int = 3600
    validate_duration: int = 3600
    aggregate_duration: int = 3600
    proposal_quorum: int = 2
    committee_size: int = 0
    # Reputation (ReputationSettings, in robustness). None: max_disagreement 5000 (DEFAULT_MAX_DISAGREEMENT), the
    # profile's max_rejection, min_mean_score and reputation_warmup; 0 under secure aggregation, which has no
    # per-update scores.
    max_disagreement: int | None = None
    reputation_warmup: int | None = None
    max_rejection: int | None = None
    min_mean_score: int | None = None
    # Acceptance by approvals (RobustnessSettings.min_approvals): an update passes when at least this many of its
    # validators score it at or above the threshold; 0: when its validators' median does. None: the profile's; 0
    # under secure aggregation.
    min_approvals: int | None = None
    # Purpose of processing (canonical name, e.g. "model-training:breast-cancer-diagnosis"); empty: the task
    # has no data registry and commitments name no dataset.
    purpose: str = ""
    # Differential privacy (PrivacySettings): the budget over the whole task (None: no DP), at dp_delta, small
    # against one over the number of records as DP's delta must be.
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    # "client" (DP-FedAvg, any model) or "sample" (DP-SGD: a torch model, or sklearn-sgd with the log loss); "auto":
    # the profile's (few-silos: sample, consortium: client) when dp_epsilon is set, else "client" (no DP: unused).
    dp_mode: str = AUTO
    dp_noise_multiplier: float | None = None
    dp_batch_size: int = 64  # DP-SGD's expected batch; the sampling rate is it over the member's examples
    dp_max_grad_norm: float = 1.0  # DP-SGD's per-example clip bound (Opacus's max_grad_norm)
    # Secure aggregation (SecureAggregationSettings).
    secure_aggregation: bool = False
    secagg_threshold: int = 0
    # Validity checks on masked updates (MaskedCheckSettings, fedledger.federation.masked_settings).
    masked_checks: bool = False
    masked_committee: int = 3
    masked_norm_bound: float | None = None
    masked_min_cosine: float | None = None
    # "committee" (each check-committee member's own reference update) or "previous" (the previous round's global
    # update); "auto": "committee" when masked_min_cosine is set, else "previous" (no direction check: unused).
    masked_reference: str = AUTO
    # Centered clipping of the passing updates in the committee's MPC: clip factors in steps of 1/levels (0: off,
    # the plain sum) around the previous round's global update, to the radius (None: half the clip norm).
    masked_clip_levels: int = 0
    masked_clip_radius: float | None = None
    # How every member turns its raw table into training data (fedledger.data.prepare.Recipe as a dict), committed
    # with the config so every member prepares in exactly the same way; empty: the files are already numeric.
    preparation: dict[str, Any] = field(default_factory=dict)
    # The Bulletin contract (0x address) where members post the hash of their metrics blob for each round
    # (fedledger.federation.evaluation); empty: none. create_task deploys one when the config names none.
    evaluation_board: str = ""
    # "batched" (validated rounds): trainers sign commitments for a relay, one finalized batch a round delivers them
    # (docs/batched-commitments.md) at the CommitmentBatches contract commitment_batches (0x); create_task deploys
    # one, challengeable for batch_window seconds, when it is empty. "direct": one commit_update per trainer.
    commitments: str = "direct"
    commitment_batches: str = ""
    batch_window: int = 60
    # Incentives (IncentiveSettings; validated rounds only): on when reward_per_round or a stake is above 0.
    # Amounts in the pool's smallest unit, native currency (reward_token empty) or the ERC-20 at reward_token.
    # contribution_method empty: fedledger.incentives.DEFAULT_CONTRIBUTION_METHOD when incentives are on.
    contribution_method: str = ""
    # The method's parameters (fedledger.incentives.ContributionSettings field -> value); empty: its defaults.
    contribution_params: dict[str, Any] = field(default_factory=dict)
    reward_per_round: int = 0
    reward_token: str = ""
    trainer_stake: int = 0
    validator_stake: int = 0
    trainer_slash_bps: int = 0
    validator_slash_bps: int = 0
    contribution_window: int = IncentiveParams.contribution_window  # seconds after a round's aggregation deadline
    dispute_window: int = IncentiveParams.dispute_window  # seconds after the task's end before stakes come back
    # Settings a consortium vote may change while the task runs (fedledger.chain.governance), each with the bounds
    # [low, high] it must stay within: any of commit_duration, validate_duration, aggregate_duration,
    # proposal_quorum. Empty: only pausing and resuming the task can be voted.
    mutable: dict[str, list[int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        profile = PROFILES[parse_choice(ProfileName, self.profile, field="profile", what="profile")]
        for name, value in self._unset_defaults(profile).items():
            object.__setattr__(self, name, value)  # frozen: resolved once, so the committed config states it
        if self.contribution_method == "" and self.incentives_on:
            object.__setattr__(self, "contribution_method", str(DEFAULT_CONTRIBUTION_METHOD))
        self._check_sections()
        self._check_across_sections()

    # -- resolution --------------------------------------------------------------------------------------------

    def _unset_defaults(self, profile: Profile) -> dict[str, Any]:
        """The values of the settings left ``None`` or ``"auto"``: the profile's, overridden by secure aggregation
        (which sums masked updates with FedAvg and has no per-update norms, weights or scores)."""
        secure = bool(self.secure_aggregation)
        validated = not secure
        dp_mode = self.dp_mode
        if _is_unset(dp_mode, AUTO):
            dp_mode = profile.dp_mode if self.dp_epsilon is not None else DpMode.CLIENT
        client_dp = self.dp_epsilon is not None and dp_mode == DpMode.CLIENT and validated
        scoring = self.scoring if self.scoring != AUTO else Scoring.RELATIVE if client_dp else profile.scoring
        defaults: dict[str, tuple[object, Any]] = {
            "dp_mode": (AUTO, dp_mode),
            "scoring": (AUTO, scoring),
            "acceptance_threshold": (None, DEFAULT_THRESHOLDS.get(scoring) if isinstance(scoring, str) else None),
            "aggregation": (AUTO, AggregationRule.FEDAVG if secure else profile.aggregation),
            "clip_to_median_norm": (None, profile.clip_to_median_norm and validated),
            "lift_to_median_norm": (None, profile.lift_to_median_norm and validated),
            "score_at_median_norm": (None, profile.score_at_median_norm and validated),
            "center_scores": (None, profile.center_scores and validated),
            "cap_examples_to_median": (None, validated),
            "max_disagreement": (None, DEFAULT_MAX_DISAGREEMENT if validated else 0),
            "max_rejection": (None, profile.max_rejection if validated else 0),
            "min_mean_score": (None, profile.min_mean_score if validated else 0),
            "reputation_warmup": (None, profile.reputation_warmup),
            "min_approvals": (None, profile.min_approvals if validated else 0),
            "masked_reference": (AUTO, "committee" if self.masked_min_cosine is not None else "previous"),
        }
        return {name: default for name, (unset, default) in defaults.items() if _is_unset(getattr(self, name), unset)}

    def _check_sections(self) -> None:
        """Build each typed view (each checks its own fields), then store the parsed modes and resolved optimizer
        parameters in the flat fields."""
        _ = (self.training, self.pipeline, self.secagg, self.timing, self.incentives, self.masked)
        dp, robustness = self.dp, self.robustness
        resolved = {
            "profile": robustness.profile,
            "scoring": robustness.scoring,
            "aggregation": robustness.aggregation,
            "server_optimizer": robustness.server_optimizer,
            "server_optimizer_params": dict(robustness.server_optimizer_params),
            "dp_mode": dp.mode,
        }
        for name, value in resolved.items():
            object.__setattr__(self, name, value)

    def _check_across_sections(self) -> None:
        self._check_aggregation_params()
        if self.purpose:
            try:
                purpose_id(self.purpose)
            except BadInput as exc:
                raise ConfigError(f"task config: purpose: {exc}") from exc
        board = self.evaluation_board
        if not isinstance(board, str) or (board and not (board.startswith("0x") and is_address(board))):
            raise ConfigError(f"task config: evaluation_board must be empty or a 0x address, got {board!r}")
        _ = self.privacy  # resolves (and checks) the DP mechanism once
        check_batched(self)
        if self.secagg.enabled:
            check_secure(self)
        elif self.masked.enabled:
            raise ConfigError("task config: masked_checks screen masked updates, so they need secure_aggregation")

    def _check_aggregation_params(self) -> None:
        """Fail at config time, not in the first aggregation: run the rule once on a tiny input."""
        probe = [{"w": np.full(2, k, dtype=np.uint64)} for k in range(1, _PROBE_UPDATES + 1)]
        try:
            aggregate(
                self.robustness.aggregation,
                probe,
                [1] * len(probe),
                frac_bits=self.pipeline.frac_bits,
                params=dict(self.robustness.aggregation_params),
                clip_to_median_norm=self.robustness.clip_to_median_norm,
            )
        except AggregationError as exc:
            raise ConfigError(f"task config: {exc}") from exc

    # -- typed views ---------------------------------------------------------------------------------------------

    @functools.cached_property
    def training(self) -> TrainingSettings:
        """The model, rounds, local epochs, seed and preparation recipe."""
        return TrainingSettings(self.model, self.rounds, self.local_epochs, self.seed, self.preparation)

    @functools.cached_property
    def pipeline(self) -> PipelineSettings:
        """How an update becomes a blob: clipping, fixed point and size limits."""
        return PipelineSettings(self.clip_norm, self.frac_bits, self.max_update_bytes, self.max_examples)

    @functools.cached_property
    def robustness(self) -> RobustnessSettings:
        """Scoring, acceptance, aggregation, the per-update adjustments, the server optimizer and reputation."""
        # The settings left None are resolved before the views are built; the sections check the values' types.
        optimizer = parse_choice(ServerOptimizer, self.server_optimizer, field="server_optimizer", what="optimizer")
        return RobustnessSettings(
            profile=parse_choice(ProfileName, self.profile, field="profile", what="profile"),
            scoring=parse_choice(Scoring, self.scoring, field="scoring", what="scoring rule"),
            acceptance_threshold=cast(int, self.acceptance_threshold),
            min_approvals=cast(int, self.min_approvals),
            aggregation=parse_choice(
                AggregationRule, self.aggregation, field="aggregation", what="ledger aggregation rule"
            ),
            aggregation_params=self.aggregation_params,
            clip_to_median_norm=cast(bool, self.clip_to_median_norm),
            lift_to_median_norm=cast(bool, self.lift_to_median_norm),
            score_at_median_norm=cast(bool, self.score_at_median_norm),
            center_scores=cast(bool, self.center_scores),
            cap_examples_to_median=cast(bool, self.cap_examples_to_median),
            server_optimizer=optimizer,
            server_optimizer_params=_optimizer_params(optimizer, self.server_optimizer_params),
            reputation=ReputationSettings(
                max_disagreement=cast(int, self.max_disagreement),
                reputation_warmup=cast(int, self.reputation_warmup),
                max_rejection=cast(int, self.max_rejection),
                min_mean_score=cast(int, self.min_mean_score),
            ),
        )

    @functools.cached_property
    def dp(self) -> PrivacySettings:
        """Differential privacy as configured (:attr:`privacy` is the mechanism it resolves to)."""
        return PrivacySettings(
            epsilon=self.dp_epsilon,
            delta=self.dp_delta,
            mode=parse_choice(DpMode, self.dp_mode, field="dp_mode", what="DP mode"),
            noise_multiplier=self.dp_noise_multiplier,
            batch_size=self.dp_batch_size,
            max_grad_norm=self.dp_max_grad_norm,
        )

    @functools.cached_property
    def secagg(self) -> SecureAggregationSettings:
        """Whether rounds are secure-aggregation rounds, and their unmasking threshold."""
        return SecureAggregationSettings(self.secure_aggregation, self.secagg_threshold)

    @functools.cached_property
    def masked(self) -> MaskedCheckSettings:
        """Whether secure rounds screen masked updates, and how."""
        return MaskedCheckSettings(
            self.masked_checks,
            self.masked_committee,
            self.masked_norm_bound,
            self.masked_min_cosine,
            self.masked_reference,
            self.masked_clip_levels,
            self.masked_clip_radius,
        )

    @functools.cached_property
    def timing(self) -> TimingSettings:
        """Phase deadlines and quorums."""
        return TimingSettings(
            self.min_commitments,
            self.commit_duration,
            self.validate_duration,
            self.aggregate_duration,
            self.proposal_quorum,
            self.committee_size,
            {name: tuple(bounds) if isinstance(bounds, list) else bounds for name, bounds in self.mutable.items()},
        )

    @functools.cached_property
    def incentives(self) -> IncentiveSettings:
        """Rewards by measured contribution, stake and slashing."""
        return IncentiveSettings(
            contribution_method=self.contribution_method,
            contribution_params=self.contribution_params,
            reward_per_round=self.reward_per_round,
            reward_token=self.reward_token,
            trainer_stake=self.trainer_stake,
            validator_stake=self.validator_stake,
            trainer_slash_bps=self.trainer_slash_bps,
            validator_slash_bps=self.validator_slash_bps,
            contribution_window=self.contribution_window,
            dispute_window=self.dispute_window,
        )

    @property
    def incentives_on(self) -> bool:
        """Whether the task pays rewards or requires a stake (read from the flat fields, before the view is built)."""
        amounts = (self.reward_per_round, self.trainer_stake, self.validator_stake)
        return any(isinstance(a, int) and not isinstance(a, bool) and a > 0 for a in amounts)

    @functools.cached_property
    def privacy(self) -> TaskPrivacy | None:
        """The task's differential privacy mechanism, None without a budget."""
        return TaskPrivacy.resolve(self.dp, self.training, self.pipeline)

    # -- derived values ----------------------------------------------------------------------------------------

    @property
    def threshold(self) -> int:
        """The acceptance threshold, resolved."""
        return self.robustness.acceptance_threshold

    @property
    def dp_noise_shares(self) -> int:
        """Into how many shares client-level DP noise is split: ``min_commitments`` when secure aggregation
        hides individual updates (the sum of at least that many shares carries the whole noise), else 1."""
        privacy = self.privacy
        if privacy is not None and privacy.mode is DpMode.CLIENT and self.secagg.enabled:
            return self.min_commitments
        return 1

    def masking_weight(self, num_examples: int) -> int:
        """The weight a member's masked input carries in a secure round: its example count, or 1 when the
        DP noise is split into shares (then every member's noise must count equally: see federation/privacy)."""
        return 1 if self.dp_noise_shares > 1 else num_examples

    def update_norm_bound(self, num_params: int) -> float:
        """The L2 bound on an update of ``num_params`` parameters: ``clip_norm``, plus a high-probability
        bound on the noise under client-level DP (:meth:`TaskPrivacy.update_norm_bound`)."""
        return self.clip_norm if self.privacy is None else self.privacy.update_norm_bound(num_params)

    # -- bytes, hash and chain ---------------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """Canonical JSON: identical configs give identical bytes and hash."""
        body = {"format": CONFIG_FORMAT, **asdict(self)}
        for name, absent in _OMITTED_WHEN_UNSET.items():
            if body[name] == absent:
                del body[name]
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def purpose_id(self) -> str | None:
        """The on-chain purpose id (keccak256 of the name, 0x-hex); None without a purpose."""
        return "0x" + purpose_id(self.purpose).hex() if self.purpose else None

    def chain_params(self, initial_model: str, *, data_registry: str | None = None) -> TaskParams:
        """What the TrainingTask contract is created with for this config.

        A task with a purpose needs the ``data_registry`` that checks its commitments' datasets.
        """
        if self.purpose and data_registry is None:
            raise ConfigError(f"task config has purpose {self.purpose!r}: deploy it with a data registry")
        if data_registry is not None and not self.purpose:
            raise ConfigError("a task deployed with a data registry needs a purpose in its config")
        privacy, timing, reputation = self.privacy, self.timing, self.robustness.reputation
        return TaskParams(
            config_hash=self.hash,
            initial_model=initial_model,
            min_commitments=timing.min_commitments,
            commit_duration=timing.commit_duration,
            validate_duration=timing.validate_duration,
            aggregate_duration=timing.aggregate_duration,
            acceptance_threshold=self.threshold,
            proposal_quorum=timing.proposal_quorum,
            committee_size=self.masked.committee if self.masked.enabled else timing.committee_size,
            max_rounds=self.training.rounds,
            data_registry=data_registry or ZERO_ADDRESS,
            purpose=self.purpose_id or ZERO_HASH,
            privacy_budget=privacy.budget_micro if privacy is not None else 0,
            secagg_threshold=max(1, self.secagg.threshold) if self.secagg.enabled else 0,
            max_disagreement=reputation.max_disagreement,
            reputation_warmup=reputation.reputation_warmup,
            max_rejection=reputation.max_rejection,
            min_mean_score=reputation.min_mean_score,
            min_approvals=self.robustness.min_approvals,
            commitment_batches=batch_contract(self),
            param_bounds=tuple((name, low, high) for name, (low, high) in timing.mutable.items()),
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskConfig:
        try:
            body = loads_bounded(data, what="task config")
        except ValueError as exc:
            raise ConfigError(f"task config is not valid JSON: {exc}") from exc
        if not isinstance(body, dict) or body.pop("format", None) != CONFIG_FORMAT:
            raise ConfigError(f"task config is not in format {CONFIG_FORMAT}")
        for name, off in _OFF_WHEN_ABSENT.items():
            body.setdefault(name, off)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ConfigError(f"task config has unknown fields: {', '.join(unknown)}")
        try:
            return cls(**body)
        except TypeError as exc:
            raise ConfigError(f"task config is invalid: {exc}") from exc


def _is_unset(value: object, unset: object) -> bool:
    """Whether a setting holds its "resolve me" value: ``None``, or the string ``"auto"``."""
    return value is None if unset is None else isinstance(value, str) and value == unset


def _optimizer_params(optimizer: ServerOptimizer, params: object) -> dict[str, Any]:
    """The server optimizer's parameters with its defaults filled in (none for ``"none"``)."""
    if not isinstance(params, dict):
        raise ConfigError(f"task config: server_optimizer_params must be an object, got {params!r}")
    if optimizer is ServerOptimizer.NONE:
        return params
    try:
        return resolve_optimizer_params(optimizer, params)
    except AggregationError as exc:
        raise ConfigError(f"task config: server_optimizer_params: {exc}") from exc
