"""Validator reputation: the TrainingTask contract's record of how often each validator voted against outcomes.

When a round's validation closes, every score counts once for the validator that gave it: it *agrees* when it
falls on the same side of the acceptance threshold as the update's outcome (accepted: its median reached the
threshold), and *disagrees* otherwise. A validator is **distrusted** once it has given at least ``warmup``
scores and more than ``max_disagreement`` (basis points) of them disagreed; from the next round on the contract
leaves it out of the round's validators, so it sits on no committee and its scores are refused.

Why it works: a lying validator sinks honest updates the others accept and vouches for malicious ones the
others reject, so most of its scores disagree; an honest validator disagrees only where its score and the
committee median straddle the threshold. Within a committee a lying minority cannot flip outcomes, but it
drags the median of honest updates down (with a third of liars the median is a low quantile of the honest
scores); reputation removes that drag after a few rounds. Reputation from the record of past interactions
follows Kang et al., "Incentive Mechanism for Reliable Federated Learning: A Joint Optimization Approach to
Combining Reputation and Contract Theory", IEEE IoT Journal 2019; committees that change with members' record,
Li et al., "A Blockchain-Based Decentralized Federated Learning Framework with Committee Consensus", IEEE
Network 2021.

Limits: a validator that lies only where its vote cannot be outvoted keeps its reputation, and one that lies
only for colluders' updates (a fifth of updates) stays under a 50 % bound; the median still holds those.
Distrust is permanent until an admin clears it (``clear_reputation``), e.g. after a dispute.

:class:`ValidatorReputation` is the contract's rule off chain, for auditors and the robustness benchmark;
``tests/test_task_reputation.py`` checks both give the same verdicts.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fedledger.exceptions import ConfigError

__all__ = ["BPS", "ValidatorReputation", "disagrees", "is_distrusted"]

BPS = 10_000
V = TypeVar("V", bound=Hashable)


def disagrees(score: int, accepted: bool, threshold: int) -> bool:
    """Whether ``score`` voted against the outcome: at or above ``threshold`` for a rejected update, or below
    it for an accepted one."""
    return (score >= threshold) != accepted


def is_distrusted(scored: int, disagreed: int, *, max_disagreement: int, warmup: int) -> bool:
    """The contract's test: reputation on (``max_disagreement`` > 0), at least ``warmup`` scores, and more
    than ``max_disagreement`` / 10,000 of them disagreed."""
    return max_disagreement > 0 and scored >= warmup and disagreed * BPS > max_disagreement * scored


@dataclass
class ValidatorReputation(Generic[V]):
    """Per-validator counts of scores given and scores that disagreed with the outcome, as the contract keeps."""

    max_disagreement: int
    """Basis points (0..10,000) of disagreeing scores above which a validator is distrusted; 0: reputation off."""
    warmup: int
    """Fewest scores a validator gives before it can be distrusted."""
    scored: dict[V, int] = field(default_factory=dict)
    disagreed: dict[V, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in (("max_disagreement", self.max_disagreement), ("warmup", self.warmup)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"reputation: {name} must be a non-negative integer, got {value!r}")
        if self.max_disagreement > BPS:
            raise ConfigError(f"reputation: max_disagreement must be within 0..{BPS} basis points")

    @property
    def enabled(self) -> bool:
        return self.max_disagreement > 0

    def record(self, validators: Sequence[V], scores: Sequence[int], *, accepted: bool, threshold: int) -> None:
        """Count one update's scores (``scores[k]`` given by ``validators[k]``) against its outcome. Counts with
        reputation off too (the benchmark reports disagreement rates either way; the contract, to save gas, does
        not)."""
        if len(validators) != len(scores):
            raise ValueError(f"{len(validators)} validators but {len(scores)} scores")
        for v, score in zip(validators, scores, strict=True):
            self.scored[v] = self.scored.get(v, 0) + 1
            self.disagreed[v] = self.disagreed.get(v, 0) + int(disagrees(score, accepted, threshold))

    def distrusted(self, validator: V) -> bool:
        return is_distrusted(
            self.scored.get(validator, 0),
            self.disagreed.get(validator, 0),
            max_disagreement=self.max_disagreement,
            warmup=self.warmup,
        )

    def trusted(self, validators: Sequence[V]) -> list[V]:
        """``validators`` without the distrusted ones, in order."""
        return [v for v in validators if not self.distrusted(v)]
