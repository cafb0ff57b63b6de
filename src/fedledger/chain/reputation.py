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

Clients read the verdicts from the contract's own views (``is_distrusted``, ``is_trainer_distrusted``, through
:meth:`fedledger.chain.task.TrainingTaskClient.reputation_of` and ``trainer_standing``). The classes here are the
same rules for ledgers that run without a contract (the robustness benchmark's simulation);
``tests/chain/test_task_reputation.py`` checks both give the same verdicts.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fedledger.exceptions import ConfigError

__all__ = ["BPS", "TrainerReputation", "ValidatorReputation", "disagrees", "is_distrusted", "trainer_distrusted"]

BPS = 10_000
V = TypeVar("V", bound=Hashable)


def disagrees(score: int, accepted: bool, threshold: int, *, approvals_only: bool = False) -> bool:
    """Whether ``score`` voted against the outcome: at or above ``threshold`` for a rejected update, or below
    it for an accepted one. With ``approvals_only`` (acceptance by approvals) only the first counts: a validator
    whose data differ from the update's owner's may well lose by an update that others gain by, but vouching
    for an update its committee found harmful is what a liar does."""
    approved = score >= threshold
    return approved and not accepted if approvals_only else approved != accepted


def is_distrusted(counted: int, against: int, *, bound: int, warmup: int) -> bool:
    """The contract's test, for validators and trainers alike: reputation on (``bound`` > 0), at least ``warmup``
    counted (scores given, or scored updates committed), and more than ``bound`` / 10,000 of them against
    (scores against the outcome, or rejected updates)."""
    return bound > 0 and counted >= warmup and against * BPS > bound * counted


def trainer_distrusted(
    scored: int, rejected: int, score_sum: int, *, max_rejection: int, min_mean_score: int, warmup: int
) -> bool:
    """The contract's test on a trainer's record: at least ``warmup`` scored updates, and either more than
    ``max_rejection`` / 10,000 of them rejected or their committee medians (summing to ``score_sum``) averaging
    below ``min_mean_score``. A bound of 0 is off."""
    by_mean = scored >= warmup and score_sum < min_mean_score * scored
    return by_mean or is_distrusted(scored, rejected, bound=max_rejection, warmup=warmup)


def _check_reputation_params(bound_name: str, bound: object, warmup: object) -> None:
    for name, value in ((bound_name, bound), ("warmup", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"reputation: {name} must be a non-negative integer, got {value!r}")
    if isinstance(bound, int) and bound > BPS:
        raise ConfigError(f"reputation: {bound_name} must be within 0..{BPS} basis points")


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
        _check_reputation_params("max_disagreement", self.max_disagreement, self.warmup)

    @property
    def enabled(self) -> bool:
        return self.max_disagreement > 0

    def record(
        self,
        validators: Sequence[V],
        scores: Sequence[int],
        *,
        accepted: bool,
        threshold: int,
        approvals_only: bool = False,
    ) -> None:
        """Count one update's scores (``scores[k]`` given by ``validators[k]``) against its outcome
        (:func:`disagrees`). Counts with reputation off too (the benchmark reports disagreement rates either way;
        the contract, to save gas, does not)."""
        if len(validators) != len(scores):
            raise ValueError(f"{len(validators)} validators but {len(scores)} scores")
        for v, score in zip(validators, scores, strict=True):
            self.scored[v] = self.scored.get(v, 0) + 1
            against = disagrees(score, accepted, threshold, approvals_only=approvals_only)
            self.disagreed[v] = self.disagreed.get(v, 0) + int(against)

    def distrusted(self, validator: V) -> bool:
        return is_distrusted(
            self.scored.get(validator, 0),
            self.disagreed.get(validator, 0),
            bound=self.max_disagreement,
            warmup=self.warmup,
        )

    def trusted(self, validators: Sequence[V]) -> list[V]:
        """``validators`` without the distrusted ones, in order."""
        return [v for v in validators if not self.distrusted(v)]


@dataclass
class TrainerReputation(Generic[V]):
    """Per-trainer counts of scored updates, rejected ones and the sum of their committee medians, as the contract
    keeps with ``max_rejection`` or ``min_mean_score`` > 0.

    When a round's validation closes, every update that was scored counts once for its trainer, adds its
    committee median to the trainer's sum, and counts once more as a rejection when its median missed the
    threshold. A trainer with at least ``warmup`` scored updates of which more than ``max_rejection`` (basis
    points) were rejected, or whose medians average below ``min_mean_score``, is distrusted: every round that
    opens while it is distrusted leaves it out (``TrainerDistrusted`` logged, its commitment refused, the round
    not waiting for it), so its node does not train for nothing.

    Why: an attacker whose updates the validators reject most of the time still gets the rest through, and in a
    small consortium one accepted boosted update can plant a backdoor that honest training does not undo (the four
    hospitals of ``benchmarks/robustness.py``). Its record of rejections ends that after the warm-up, while honest
    trainers, rejected only where a noisy score straddles the threshold, stay far below a 50 % bound. Under a
    scoring rule that rejects honest updates often (trust scoring on a few heterogeneous silos) it would strike
    honest trainers too: turn it on with scoring that accepts them.

    Why a bound on the mean as well: an update crafted to stay just acceptable (Fang et al.'s Krum attack among
    four hospitals) is rejected too rarely for any rejection bound, but its deciding scores fall below 5000
    (no change) round after round, while an honest hospital's average about 5000: the mean over a few rounds
    tells them apart where no single round can (``benchmarks/results/robustness.md``).
    """

    max_rejection: int
    warmup: int
    min_mean_score: int = 0
    scored: dict[V, int] = field(default_factory=dict)
    rejected: dict[V, int] = field(default_factory=dict)
    score_sum: dict[V, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_reputation_params("max_rejection", self.max_rejection, self.warmup)
        _check_reputation_params("min_mean_score", self.min_mean_score, self.warmup)

    @property
    def enabled(self) -> bool:
        return self.max_rejection > 0 or self.min_mean_score > 0

    def record(self, trainer: V, *, accepted: bool, score: int) -> None:
        """Count one scored update of ``trainer``: its deciding ``score`` (the committee median, or under acceptance
        by approvals the score that decided it) and its outcome (a distrusted trainer has none: the contract
        refuses its commitments)."""
        self.scored[trainer] = self.scored.get(trainer, 0) + 1
        self.rejected[trainer] = self.rejected.get(trainer, 0) + int(not accepted)
        self.score_sum[trainer] = self.score_sum.get(trainer, 0) + score

    def distrusted(self, trainer: V) -> bool:
        return trainer_distrusted(
            self.scored.get(trainer, 0),
            self.rejected.get(trainer, 0),
            self.score_sum.get(trainer, 0),
            max_rejection=self.max_rejection,
            min_mean_score=self.min_mean_score,
            warmup=self.warmup,
        )
