"""The settings a secure-aggregation task refuses: whatever looks at an individual update, which nobody can see."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedledger.exceptions import ConfigError
from fedledger.federation.modes import AggregationRule

if TYPE_CHECKING:
    from fedledger.federation.config import TaskConfig

_SECURE_REFUSES = {
    "clip_to_median_norm": "secure aggregation sees no individual update norm",
    "lift_to_median_norm": "secure aggregation sees no individual update norm",
    "score_at_median_norm": "secure aggregation has no per-update scores",
    "center_scores": "secure aggregation has no per-update scores",
    "cap_examples_to_median": (
        "under secure aggregation members weight their masked inputs before the counts are known"
    ),
}
"""Why each per-update setting cannot be on under secure aggregation."""


def check_secure(config: TaskConfig) -> None:
    """Masked updates are only summed: nothing that looks at an individual update can run on them."""
    robustness = config.robustness
    if robustness.aggregation is not AggregationRule.FEDAVG:
        raise ConfigError(
            f"task config: secure aggregation sums masked updates, so the aggregation rule must be fedavg, "
            f"not {str(robustness.aggregation)!r} (robust rules need to see individual updates)"
        )
    if config.timing.committee_size:
        raise ConfigError("task config: secure aggregation has no per-update scoring, so no validator committees")
    if robustness.min_approvals:
        raise ConfigError("task config: secure aggregation has no per-update scoring, so min_approvals must be 0")
    if config.incentives.enabled:
        raise ConfigError(
            "task config: secure aggregation hides every individual update, so no validator can measure an "
            "update's contribution, and its contract takes no stake gate: set reward_per_round, trainer_stake "
            "and validator_stake to 0, or turn secure_aggregation off"
        )
    for name, why in _SECURE_REFUSES.items():
        if robustness.per_update_rules[name]:
            raise ConfigError(f"task config: {why}, so {name} must be false")
    for name in ("max_disagreement", "max_rejection", "min_mean_score"):
        if getattr(robustness.reputation, name):
            whose = "validator" if name == "max_disagreement" else "trainer"
            raise ConfigError(
                f"task config: secure aggregation has no per-update scores to keep {whose} reputation on; "
                f"set {name} to 0"
            )
