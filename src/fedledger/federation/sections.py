"""The sections of a task config, as typed, frozen, self-validating views.

:class:`~fedledger.federation.config.TaskConfig` stores its settings flat, because its canonical JSON (and so the
config hash on chain) is flat; it exposes them grouped here, resolved: no ``None`` or ``"auto"`` is left, modes
are enum members (:mod:`.modes`), and each section checks its own fields when it is built. Checks that relate two
sections (secure aggregation against per-update rules, DP-SGD against the model) are the config's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from eth_utils import is_address

from fedledger.chain.incentives import IncentiveParams
from fedledger.chain.task_records import GOVERNED_PARAMS, ZERO_ADDRESS
from fedledger.exceptions import BadInput, ConfigError
from fedledger.federation.modes import (
    AggregationRule,
    DpMode,
    ProfileName,
    Scoring,
    ServerOptimizer,
    parse_choice,
)
from fedledger.incentives.contribution import ContributionMethod, ContributionSettings
from fedledger.privacy.accounting import budget_to_micro

__all__ = [
    "BASIS_POINTS",
    "IncentiveSettings",
    "MAX_FRAC_BITS",
    "MAX_SECAGG_THRESHOLD",
    "PipelineSettings",
    "PrivacySettings",
    "ReputationSettings",
    "RobustnessSettings",
    "SecureAggregationSettings",
    "TimingSettings",
    "TrainingSettings",
]

BASIS_POINTS = 10_000
"""Scores, thresholds and reputation bounds are basis points: 10000 is a validator's full score."""

MAX_FRAC_BITS = 52
"""A float64 mantissa holds 52 fractional bits: more would encode noise, not the update."""

INT64_HEADROOM_BITS = 62
"""Clipped updates must stay below 2^62 fixed-point units so that exact norm computations, and lifting an update
to the round's median norm, stay inside int64."""

MAX_SECAGG_THRESHOLD = 128
"""The most updates a round holds in the TrainingTask contract (``MAX_UPDATES``): no threshold can exceed it."""


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # a bool is an int to Python, never to a config


def _is_positive_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


MAX_APPROVALS = 64
"""The most validators that score one update in the TrainingTask contract (``MAX_VALIDATORS``): no rule can ask
for more approvals."""


def _check_integer(name: str, value: object, *, low: int = 0, high: int | None = None) -> None:
    """``value`` is an integer within ``low..high`` (no upper bound without ``high``), or a ConfigError naming it."""
    if isinstance(value, int) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
        return
    if high is not None:
        bound = f"within {low}..{high}"
    else:
        bound = "a non-negative integer" if low == 0 else f"an integer of at least {low}"
    raise ConfigError(f"task config: {name} must be {bound}, got {value!r}")


def _check_switch(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"task config: {name} must be true or false, got {value!r}")


def _check_table(name: str, value: object) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"task config: {name} must be a table, got {value!r}")


@dataclass(frozen=True)
class TrainingSettings:
    """What every member trains, and how long: the model, the rounds, the local epochs, the seed and the recipe
    that turns each member's raw table into training data (empty: the files are already numeric)."""

    model: Mapping[str, Any]
    rounds: int
    local_epochs: int
    seed: int
    preparation: Mapping[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.model, dict) or "kind" not in self.model:
            raise ConfigError("task config: model spec needs a 'kind'")
        _check_integer("rounds", self.rounds, low=1)
        _check_integer("local_epochs", self.local_epochs, low=1)
        if not _is_int(self.seed):
            raise ConfigError(f"task config: seed must be an integer, got {self.seed!r}")
        _check_table("preparation", self.preparation)


@dataclass(frozen=True)
class PipelineSettings:
    """How a member's update becomes a blob: clipped to ``clip_norm``, encoded in fixed point with ``frac_bits``
    fractional bits, at most ``max_update_bytes`` long and declaring at most ``max_examples`` examples."""

    clip_norm: float
    frac_bits: int
    max_update_bytes: int
    max_examples: int

    def __post_init__(self) -> None:
        clip = self.clip_norm
        if isinstance(clip, bool) or not isinstance(clip, int | float) or clip <= 0:  # inf and nan: the next check
            raise ConfigError(f"task config: clip_norm must be positive, got {clip!r}")
        if not (_is_int(self.frac_bits) and 0 <= self.frac_bits <= MAX_FRAC_BITS):
            raise ConfigError(
                f"task config: frac_bits must be an integer in [0, {MAX_FRAC_BITS}], got {self.frac_bits!r}"
            )
        room = INT64_HEADROOM_BITS - self.frac_bits
        if not self.clip_norm < 2.0**room:
            raise ConfigError(
                f"task config: clip_norm {self.clip_norm} does not fit int64 fixed point with {self.frac_bits} "
                f"fractional bits (it must be below 2^{room})"
            )
        _check_integer("max_update_bytes", self.max_update_bytes, low=1)
        _check_integer("max_examples", self.max_examples, low=1)


@dataclass(frozen=True)
class ReputationSettings:
    """When a member is left out of later rounds (:mod:`fedledger.chain.reputation`), in basis points; 0 is off.

    A validator with more than ``max_disagreement`` of its scores against the outcome, or a trainer with more than
    ``max_rejection`` of its scored updates rejected or whose deciding scores (committee medians, or by approvals
    the deciding ones) average below ``min_mean_score``, is distrusted once it has ``reputation_warmup`` scores."""

    max_disagreement: int
    reputation_warmup: int
    max_rejection: int
    min_mean_score: int

    def __post_init__(self) -> None:
        _check_integer("max_disagreement", self.max_disagreement, high=BASIS_POINTS)
        _check_integer("max_rejection", self.max_rejection, high=BASIS_POINTS)
        _check_integer("min_mean_score", self.min_mean_score, high=BASIS_POINTS)
        _check_integer("reputation_warmup", self.reputation_warmup)

    @property
    def enabled(self) -> bool:
        """Whether any reputation bound is on."""
        return bool(self.max_disagreement or self.max_rejection or self.min_mean_score)


@dataclass(frozen=True)
class RobustnessSettings:
    """How updates are scored, accepted and combined into the next model, with the profile they default from.

    The contract accepts an update when the median of its validators' scores is at least ``acceptance_threshold``
    or, with ``min_approvals`` > 0, when at least that many of them scored it at or above the threshold.
    Acceptance by approvals judges an update by its most favourable validators: an honest outlier that helps the
    validators whose data resemble its owner's passes, one that helps nobody fails, and it trusts that no
    ``min_approvals`` validators of a committee collude with the owner. Aggregators combine the accepted updates
    with ``aggregation`` (after the median-norm and example-count adjustments that are on) and take
    ``server_optimizer``'s step."""

    profile: ProfileName
    scoring: Scoring
    acceptance_threshold: int
    min_approvals: int
    aggregation: AggregationRule
    aggregation_params: Mapping[str, Any]
    clip_to_median_norm: bool
    lift_to_median_norm: bool
    score_at_median_norm: bool
    center_scores: bool
    cap_examples_to_median: bool
    server_optimizer: ServerOptimizer
    server_optimizer_params: Mapping[str, float]
    reputation: ReputationSettings

    def __post_init__(self) -> None:
        _check_integer("acceptance_threshold", self.acceptance_threshold, high=BASIS_POINTS)
        _check_integer("min_approvals", self.min_approvals, high=MAX_APPROVALS)
        _check_table("aggregation_params", self.aggregation_params)
        for name in ("clip_to_median_norm", "lift_to_median_norm", "score_at_median_norm", "center_scores"):
            _check_switch(name, getattr(self, name))
        _check_switch("cap_examples_to_median", self.cap_examples_to_median)
        if self.server_optimizer is ServerOptimizer.NONE and self.server_optimizer_params:
            raise ConfigError("task config: server_optimizer_params given, but server_optimizer is 'none'")

    @property
    def per_update_rules(self) -> dict[str, bool]:
        """The settings that need to see individual updates' norms, weights or scores, by field name."""
        return {
            "clip_to_median_norm": self.clip_to_median_norm,
            "lift_to_median_norm": self.lift_to_median_norm,
            "score_at_median_norm": self.score_at_median_norm,
            "center_scores": self.center_scores,
            "cap_examples_to_median": self.cap_examples_to_median,
        }


@dataclass(frozen=True)
class PrivacySettings:
    """Differential privacy as configured: a budget of ``epsilon`` at ``delta`` over the whole task (``epsilon``
    None: no DP), spent in ``mode``. The resolved mechanism is :class:`fedledger.federation.privacy.TaskPrivacy`.

    ``noise_multiplier`` None: calibrated so that every member can train every round within the budget.
    ``batch_size`` and ``max_grad_norm`` are DP-SGD's (``sample`` mode): the expected batch and the per-example
    clip bound."""

    epsilon: float | None
    delta: float
    mode: DpMode
    noise_multiplier: float | None
    batch_size: int
    max_grad_norm: float

    def __post_init__(self) -> None:
        if self.epsilon is None:
            if self.noise_multiplier is not None:
                raise ConfigError("task config: dp_noise_multiplier is set but dp_epsilon (the budget) is not")
            return
        self._check_budget(self.epsilon)
        if self.noise_multiplier is not None and not _is_positive_number(self.noise_multiplier):
            raise ConfigError(
                f"task config: dp_noise_multiplier must be positive and finite, got {self.noise_multiplier!r}"
            )
        if self.mode is DpMode.SAMPLE and not (_is_int(self.batch_size) and self.batch_size >= 1):
            raise ConfigError("task config: dp_batch_size and dp_max_grad_norm must be positive")
        if self.mode is DpMode.SAMPLE and not _is_positive_number(self.max_grad_norm):
            raise ConfigError("task config: dp_batch_size and dp_max_grad_norm must be positive")

    def _check_budget(self, eps: float) -> None:
        if not _is_positive_number(eps):
            raise ConfigError(f"task config: dp_epsilon must be a positive finite number, got {eps!r}")
        try:
            below_one_micro = budget_to_micro(float(eps)) < 1
        except BadInput as exc:
            raise ConfigError(f"task config: dp_epsilon: {exc}") from exc
        if below_one_micro:
            raise ConfigError(f"task config: dp_epsilon {eps!r} is below one micro-epsilon")
        delta = self.delta
        if isinstance(delta, bool) or not (isinstance(delta, int | float) and 0 < delta < 1):
            raise ConfigError(f"task config: dp_delta must be in (0, 1), got {delta!r}")

    @property
    def enabled(self) -> bool:
        """Whether the task has a privacy budget."""
        return self.epsilon is not None


@dataclass(frozen=True)
class SecureAggregationSettings:
    """Secure aggregation (Bonawitz et al., CCS 2017): nobody sees an individual update, only the unmasked sum.

    ``threshold``: the fewest surviving members that unmask a round; the contract raises it to a strict majority
    of the round's trainers, so 0 means exactly that majority (floor(n/2) + 1 of n)."""

    enabled: bool
    threshold: int

    def __post_init__(self) -> None:
        _check_switch("secure_aggregation", self.enabled)
        if not _is_int(self.threshold):
            raise ConfigError(f"task config: secagg_threshold must be an integer, got {self.threshold!r}")
        if self.enabled and not 0 <= self.threshold <= MAX_SECAGG_THRESHOLD:
            raise ConfigError(f"task config: secagg_threshold must be within 0..{MAX_SECAGG_THRESHOLD}")


@dataclass(frozen=True)
class TimingSettings:
    """A round's deadlines (seconds of block time) and quorums: how many commitments a round needs, how many
    identical proposals finalize it, and how many validators score each update (0: every validator). ``mutable``
    names the ones a consortium vote may change later, each with the bounds (low, high) the vote must respect."""

    min_commitments: int
    commit_duration: int
    validate_duration: int
    aggregate_duration: int
    proposal_quorum: int
    committee_size: int
    mutable: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (
            "min_commitments",
            "commit_duration",
            "validate_duration",
            "aggregate_duration",
            "proposal_quorum",
            "committee_size",
        ):
            _check_integer(name, getattr(self, name))
        for name, bounds in self.mutable.items():
            if name not in GOVERNED_PARAMS:
                raise ConfigError(f"task config: mutable: {name!r} cannot change by vote; these can: "
                                  f"{', '.join(GOVERNED_PARAMS)}")  # fmt: skip
            if len(bounds) != 2 or not all(isinstance(b, int) and not isinstance(b, bool) for b in bounds):
                raise ConfigError(f"task config: mutable.{name}: expected [low, high], got {list(bounds)!r}")
            low, high = bounds
            if not 1 <= low <= getattr(self, name) <= high:
                raise ConfigError(
                    f"task config: mutable.{name}: bounds [{low}, {high}] must hold its value {getattr(self, name)} "
                    "and start at 1 or more"
                )


@dataclass(frozen=True)
class IncentiveSettings:
    """Rewards, stake and slashing (:mod:`fedledger.chain.incentives`): on when ``reward_per_round`` or a stake is
    above 0. Amounts are in the pool's smallest unit: wei of the native currency (``reward_token`` empty) or of the
    ERC-20 at ``reward_token``. Each round's validators measure every accepted update's contribution with
    ``contribution_method`` (:mod:`fedledger.incentives.contribution`) and post it within ``contribution_window``
    seconds of the round's aggregation deadline; a settled round pays at most ``reward_per_round`` out of the pool
    in proportion to the median contributions. A trainer whose update every validator scored below the threshold
    loses ``trainer_slash_bps`` of its stake, a distrusted validator ``validator_slash_bps``; stakes come back
    ``dispute_window`` seconds after the task's last round."""

    contribution_method: str
    contribution_params: Mapping[str, Any]
    reward_per_round: int
    reward_token: str
    trainer_stake: int
    validator_stake: int
    trainer_slash_bps: int
    validator_slash_bps: int
    contribution_window: int
    dispute_window: int

    def __post_init__(self) -> None:
        for name in ("reward_per_round", "trainer_stake", "validator_stake", "dispute_window"):
            _check_integer(name, getattr(self, name))
        _check_integer("contribution_window", self.contribution_window, low=1)
        _check_integer("trainer_slash_bps", self.trainer_slash_bps, high=BASIS_POINTS)
        _check_integer("validator_slash_bps", self.validator_slash_bps, high=BASIS_POINTS)
        token = self.reward_token
        if not isinstance(token, str) or (
            token and not (token.startswith("0x") and is_address(token) and int(token, 16) != 0)
        ):
            raise ConfigError(
                f"task config: reward_token must be empty (native currency) or a token's 0x address, got {token!r}"
            )
        _check_table("contribution_params", self.contribution_params)
        if self.enabled:
            parse_choice(
                ContributionMethod, self.contribution_method, field="contribution_method", what="contribution method"
            )
            _ = self.contribution_settings  # checks the parameters' names and values
            return
        for name in (
            "contribution_method",
            "contribution_params",
            "reward_token",
            "trainer_slash_bps",
            "validator_slash_bps",
        ):
            if getattr(self, name):
                raise ConfigError(
                    f"task config: {name} is set but the task has no incentives (reward_per_round, trainer_stake "
                    "and validator_stake are 0)"
                )

    @property
    def contribution_settings(self) -> ContributionSettings:
        """The contribution method's parameters: its defaults, with ``contribution_params`` over them."""
        known = {f.name: f.type for f in fields(ContributionSettings)}
        unknown = sorted(set(self.contribution_params) - set(known))
        if unknown:
            raise ConfigError(
                f"task config: contribution_params has unknown parameters {', '.join(unknown)}; known: "
                f"{', '.join(known)}"
            )
        for name, value in self.contribution_params.items():
            numeric = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not numeric or value < 0 or (known[name] == "int" and not isinstance(value, int)):
                raise ConfigError(
                    f"task config: contribution_params.{name} must be a non-negative {known[name]}, got {value!r}"
                )
        return ContributionSettings(**self.contribution_params)

    @property
    def enabled(self) -> bool:
        """Whether the task pays rewards or requires a stake."""
        return bool(self.reward_per_round or self.trainer_stake or self.validator_stake)

    def chain_params(self) -> IncentiveParams:
        """What the task's Incentives contract is created with."""
        return IncentiveParams(
            reward_per_round=self.reward_per_round,
            token=self.reward_token or ZERO_ADDRESS,
            trainer_stake=self.trainer_stake,
            validator_stake=self.validator_stake,
            trainer_slash_bps=self.trainer_slash_bps,
            validator_slash_bps=self.validator_slash_bps,
            contribution_window=self.contribution_window,
            dispute_window=self.dispute_window,
        )
