"""The task configuration: everything members must agree on, committed by hash.

The configuration is canonical JSON stored in the blob store; the TrainingTask
contract holds its sha256 (``config_hash``), so a member that fetches it by hash
knows it trains, validates and aggregates by the same rules as everyone else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from fedledger.chain.task import TaskParams
from fedledger.exceptions import ConfigError

__all__ = ["TaskConfig", "ledger_rules"]


def ledger_rules() -> list[str]:
    """The aggregation rules a ledger task can use: every registered rule that needs no trusted
    reference update (FLTrust's server update has no trusted source among mutually distrusting
    members; the on-chain validator committees play that part)."""
    from fedledger.learning.aggregation import AGGREGATION_RULES

    return sorted(name for name, spec in AGGREGATION_RULES.items() if not spec.needs_reference)


CONFIG_FORMAT = "fedledger-task/1"


@dataclass(frozen=True)
class TaskConfig:
    """Model, training, update and round rules of one task."""

    model: dict[str, Any]
    rounds: int = 10
    local_epochs: int = 5
    seed: int = 0
    # Update pipeline
    clip_norm: float = 10.0
    frac_bits: int = 24
    max_update_bytes: int = 16 * 2**20
    max_examples: int = 10_000_000
    # Acceptance (contract rule: median of validators' scores >= threshold) and aggregation
    acceptance_threshold: int = 4_500
    scoring: str = "relative-accuracy"
    aggregation: str = "fedavg"
    aggregation_params: dict[str, Any] = field(default_factory=dict)  # the rule's parameters (see its module)
    # Round timing and quorums (block-time seconds)
    min_commitments: int = 2
    commit_duration: int = 3600
    validate_duration: int = 3600
    aggregate_duration: int = 3600
    proposal_quorum: int = 2
    # Validators scoring each update, drawn on chain per round; 0: every validator scores every update.
    committee_size: int = 0
    # Secure aggregation (Bonawitz et al.): no one sees an individual update; per-update scoring is off.
    secure_aggregation: bool = False
    # Fewest surviving members that unmask a secure round; the contract raises it to a strict majority of the
    # round's trainers, so 0 means exactly that majority (floor(n/2) + 1 of n).
    secagg_threshold: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if "kind" not in self.model:
            raise ConfigError("task config: model spec needs a 'kind'")
        if self.aggregation not in ledger_rules():
            raise ConfigError(
                f"task config: aggregation rule {self.aggregation!r} is not available to ledger tasks; "
                f"known: {', '.join(ledger_rules())}"
            )
        self._check_aggregation_params()
        from fedledger.learning import SCORING_RULES

        if self.scoring not in SCORING_RULES:
            raise ConfigError(f"task config: unknown scoring rule {self.scoring!r}; known: {', '.join(SCORING_RULES)}")
        if not 0 <= self.acceptance_threshold <= 10_000:
            raise ConfigError("task config: acceptance_threshold must be within 0..10000")
        if self.rounds < 1 or self.local_epochs < 1 or self.clip_norm <= 0:
            raise ConfigError("task config: rounds, local_epochs and clip_norm must be positive")
        if self.secure_aggregation:
            self._check_secure()

    def _check_secure(self) -> None:
        # Masked updates are only summed: rules that look at individual updates cannot run on them.
        if self.aggregation != "fedavg":
            raise ConfigError(
                f"task config: secure aggregation sums masked updates, so the aggregation rule must be fedavg, "
                f"not {self.aggregation!r} (robust rules need to see individual updates)"
            )
        if self.committee_size:
            raise ConfigError("task config: secure aggregation has no per-update scoring, so no validator committees")
        if not 0 <= self.secagg_threshold <= 128:
            raise ConfigError("task config: secagg_threshold must be within 0..128")

    def _check_aggregation_params(self) -> None:
        # Fail at config time, not in the first aggregation: run the rule once on a tiny input.
        import numpy as np

        from fedledger.exceptions import AggregationError
        from fedledger.learning.aggregation import aggregate

        probe = [{"w": np.full(2, k, dtype=np.uint64)} for k in range(1, 8)]
        try:
            aggregate(
                self.aggregation, probe, [1] * len(probe), frac_bits=self.frac_bits, params=self.aggregation_params
            )
        except AggregationError as exc:
            raise ConfigError(f"task config: {exc}") from exc

    def to_bytes(self) -> bytes:
        """Canonical JSON: identical configs give identical bytes and hash."""
        body = {"format": CONFIG_FORMAT, **asdict(self)}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def chain_params(self, initial_model: str) -> TaskParams:
        """What the TrainingTask contract is created with for this config."""
        return TaskParams(
            config_hash=self.hash,
            initial_model=initial_model,
            min_commitments=self.min_commitments,
            commit_duration=self.commit_duration,
            validate_duration=self.validate_duration,
            aggregate_duration=self.aggregate_duration,
            acceptance_threshold=self.acceptance_threshold,
            proposal_quorum=self.proposal_quorum,
            committee_size=self.committee_size,
            max_rounds=self.rounds,
            secagg_threshold=max(1, self.secagg_threshold) if self.secure_aggregation else 0,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskConfig:
        try:
            body = json.loads(data)
        except ValueError as exc:
            raise ConfigError(f"task config is not valid JSON: {exc}") from exc
        if not isinstance(body, dict) or body.pop("format", None) != CONFIG_FORMAT:
            raise ConfigError(f"task config is not in format {CONFIG_FORMAT}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(body) - known)
        if unknown:
            raise ConfigError(f"task config has unknown fields: {', '.join(unknown)}")
        try:
            return cls(**body)
        except TypeError as exc:
            raise ConfigError(f"task config is invalid: {exc}") from exc
