"""Task profiles: the defaults a task's unset robustness settings get, per kind of federation.

A task names its profile (``TaskConfig.profile``); every robustness setting it leaves unset takes the
profile's value, resolved when the config is built so that the committed config states it. The numbers come
from ``benchmarks/robustness.py``, whose results are in ``benchmarks/results/robustness.md``: a 100-member
Fashion-MNIST federation for ``consortium`` and the four-hospital heart-disease federation for ``few-silos``.
Secure aggregation overrides every profile: it sums masked updates with FedAvg and has no per-update scores
or norms.

A profile also names the unit differential privacy protects when a task has a budget and leaves ``dp_mode``
"auto": a record of a silo for a few silos with many records each, a member for many small members.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from fedledger.federation.modes import AggregationRule, DpMode, ProfileName, Scoring

__all__ = [
    "APPROVALS_OFF",
    "CONSORTIUM",
    "DEFAULT_CLIP_TO_MEDIAN_NORM",
    "DEFAULT_MAX_DISAGREEMENT",
    "DEFAULT_MAX_EXAMPLES",
    "DEFAULT_MAX_REJECTION",
    "DEFAULT_REPUTATION_WARMUP",
    "DEFAULT_RULE",
    "DEFAULT_SCORING",
    "DEFAULT_THRESHOLDS",
    "FEW_SILOS",
    "FEW_SILOS_MIN_MEAN_SCORE",
    "FEW_SILOS_REPUTATION_WARMUP",
    "PROFILES",
    "Profile",
]

DEFAULT_RULE = AggregationRule.CENTERED_CLIPPING
"""The consortium's rule in validated rounds: among the rules a ledger task can use, the smallest worst-case excess
over the benchmark's target error in every comparison, over the complete grid of attacks and over three seeds."""

DEFAULT_SCORING = Scoring.TRUST
"""The consortium's scoring: against accuracy scoring it cut the worst excess over the benchmark's target error from
0.092 to 0.019 over the three quick settings."""

DEFAULT_CLIP_TO_MEDIAN_NORM = False
"""Off for a consortium: on seeds it was not chosen on, clipping to the median norm did not lower the attacks'
success, and it caps honest updates longer than the median."""

DEFAULT_THRESHOLDS: Mapping[str, int] = MappingProxyType(
    {
        # trust: 5000 + 5000 cos; just above "orthogonal", so updates against or across the validators' own
        # direction (sign flipping, label flipping, free riders, noise) fail and honest non-IID ones pass.
        Scoring.TRUST: 5_100,
        # relative / accuracy: an update may cost a validator at most 5 accuracy points, which is what it takes to
        # reject the demo's attacker.
        Scoring.RELATIVE: 4_500,
        Scoring.RELATIVE_ACCURACY: 4_500,
        # relative-loss: an update may add at most 5 % of a know-nothing model's loss to a validator's (0.035 nats on
        # two classes), as relative accuracy lets it cost 5 points.
        Scoring.RELATIVE_LOSS: 4_500,
        Scoring.ACCURACY: 4_500,
    }
)
"""The acceptance threshold a task gets for its scoring rule when it sets none (0..10000, 5000 neutral)."""

DEFAULT_MAX_EXAMPLES = 10_000_000
"""The most examples one update may declare (its check refuses more): far above any member's rows in the benchmarks
and examples, so it refuses only absurd declarations; ``cap_examples_to_median`` is what bounds a count's weight."""

DEFAULT_MAX_DISAGREEMENT = 5_000
"""Validators are distrusted beyond half of their scores against the outcome: with a third of validators lying in
the benchmark, the liars voted against the outcome 0.62-0.88 of the time and honest validators 0.17-0.20, so half
separates them with room on both sides."""

DEFAULT_MAX_REJECTION = 0
"""Trainer reputation by rejections is off in both profiles: it strikes honest members wherever the scoring rule
rejects honest updates, as trust scoring did with 70 % of the four hospitals' honest updates. For a few silos the
bound on mean scores (:data:`FEW_SILOS_MIN_MEAN_SCORE`) strikes the attackers a rejection bound would."""

FEW_SILOS_MIN_MEAN_SCORE = 4_700
"""A few silos distrust a trainer whose scored updates' committee medians average below 4700 (5000 is no change in
the validators' accuracy). Fang et al.'s Krum attack among four hospitals is rejected too rarely for any rejection
bound to catch it, but its scores average 4400-4850 over its first rounds against about 5000 for honest hospitals.
Against a rejection bound of 4000 at the same warm-up, this bound lowered the attack's error from 0.269 to 0.228,
still struck the backdoor (trigger flips 0.000), and struck honest hospitals in 25 cells of 130 instead of 32."""

DEFAULT_REPUTATION_WARMUP = 10
"""Scores before a validator can be distrusted: about five rounds of the benchmark's committees of 21 among 100
members (10 updates x 21 seats / 100 validators per round), so one unlucky round cannot exclude anyone."""

FEW_SILOS_REPUTATION_WARMUP = 5
"""A few silos that all train and score every round reach five scored updates in five rounds: the warm-up bounds
the damage Fang et al.'s Krum attack does before it is struck."""


APPROVALS_OFF = 0
"""Both profiles accept an update by its committee's median score, not by approvals (``min_approvals``). Among four
hospitals, acceptance by one approval left no honest hospital out, but it let a backdoor that keeps accuracy and
Fang et al.'s Krum attack through: one validator whose data the poisoned update does not hurt is enough to pass
it (``benchmarks/results/honest_members.md``)."""


@dataclass(frozen=True)
class Profile:
    """The robustness defaults of one kind of federation (each field is the ``TaskConfig`` field of that name)."""

    name: ProfileName
    scoring: Scoring
    aggregation: AggregationRule
    clip_to_median_norm: bool
    lift_to_median_norm: bool
    score_at_median_norm: bool
    center_scores: bool
    max_rejection: int
    min_mean_score: int
    reputation_warmup: int
    min_approvals: int
    dp_mode: DpMode


CONSORTIUM = Profile(
    name=ProfileName.CONSORTIUM,
    scoring=DEFAULT_SCORING,
    aggregation=DEFAULT_RULE,
    clip_to_median_norm=DEFAULT_CLIP_TO_MEDIAN_NORM,
    # Trust scoring is a cosine, blind to length: the score-aware attack passes it with 1 % copies of honest steps
    # that dilute the aggregate; lifted to the median norm they are honest steps again.
    lift_to_median_norm=True,
    # Trust scoring reads only directions, so scoring at the median norm would change nothing but cost reading
    # every update of the round.
    score_at_median_norm=False,
    # When honest directions barely agree, a free rider's or a noise update's cosine is as good as the round's
    # median, and centred trust scores let them through (benchmarks/results/honest_members.md).
    center_scores=False,
    max_rejection=DEFAULT_MAX_REJECTION,
    min_mean_score=0,  # measured on the four-hospital federation only
    reputation_warmup=DEFAULT_REPUTATION_WARMUP,
    min_approvals=APPROVALS_OFF,
    # A member with few records is a small part of any one record's context; what it must hide is its whole
    # contribution, and with many members the noise of client-level DP averages out.
    dp_mode=DpMode.CLIENT,
)
"""Dozens of members or more, a sample training each round, validator committees: the benchmark's 100-member
Fashion-MNIST federation."""

FEW_SILOS = Profile(
    name=ProfileName.FEW_SILOS,
    # Trust scoring's references, trained on one silo's few validation rows, rejected 70 % of the other silos'
    # honest updates; the change in the validator's accuracy accepts them.
    scoring=Scoring.RELATIVE,
    # Of the rules that met the target under every attack over five seeds and over ten, the coordinate-wise
    # median had the lowest worst-case error, with an attack-free error within 0.001 of FedAvg's. It ignores
    # declared example counts, so a 24-row hospital pulls as hard as a 159-row one.
    aggregation=AggregationRule.MEDIAN,
    clip_to_median_norm=True,  # a boosted update cannot outweigh the rest
    # With the lift the median's heart-disease results moved only within a seed's noise, and FedAvg's (the rule a
    # few-silos task may switch back to) let the backdoor through in one seed of five (trigger flips 0.000 to 0.090).
    lift_to_median_norm=False,
    # The score-aware attack hides a harmful direction in a short step (a tenth of an honest one's length); scored
    # at the median norm, its five-seed error fell from 0.248 to 0.235 and IPM's from 0.231 to 0.220.
    score_at_median_norm=True,
    # Honest hospitals with very different patients cost each other accuracy; centred on the round's median
    # score, an update is judged by what it costs beyond a typical update (benchmarks/results/honest_members.md).
    center_scores=True,
    max_rejection=DEFAULT_MAX_REJECTION,
    min_mean_score=FEW_SILOS_MIN_MEAN_SCORE,
    reputation_warmup=FEW_SILOS_REPUTATION_WARMUP,
    min_approvals=APPROVALS_OFF,
    # Record-level DP-SGD: each silo's patients are protected from everyone who sees its updates, and the updates
    # stay readable, so validators still score them and screen a poisoned one. Client-level DP among five members
    # must hide a whole hospital in a sum of five, which costs far more noise than the model tolerates, and it
    # needs secure aggregation, under which nothing is screened.
    dp_mode=DpMode.SAMPLE,
)
"""A handful of members that all train every round: the four-hospital heart-disease federation."""

PROFILES: Mapping[str, Profile] = MappingProxyType({profile.name: profile for profile in (CONSORTIUM, FEW_SILOS)})
"""The profiles by name, as ``TaskConfig.profile`` selects them."""
