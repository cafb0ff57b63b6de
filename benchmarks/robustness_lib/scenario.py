"""The robustness benchmark's task setup, scenarios and results, and the honest validators' batched scoring.

Scoring is batched: instead of one adapter call per (update, validator) pair as a node makes, each candidate model
predicts once on its whole committee's validation data and the predictions are split per validator;
``tests/benchmarks/test_robustness_bench.py`` checks the scores equal
:func:`fedledger.learning.score_update_relative` and :func:`fedledger.learning.scoring.score_trust` on the same
inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from fedledger.attacks import Attack
from fedledger.attacks.backdoor import PixelTrigger
from fedledger.chain.reputation import ValidatorReputation
from fedledger.chain.task import contract_median
from fedledger.exceptions import ConfigError
from fedledger.federation.config import (
    DEFAULT_MAX_DISAGREEMENT,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_MAX_REJECTION,
    DEFAULT_REPUTATION_WARMUP,
)
from fedledger.learning.aggregation import apply_update
from fedledger.learning.params import Params
from fedledger.learning.scoring import (
    MAX_SCORE,
    accuracy_bps,
    centered_on_round,
    cosine_score,
    loss_change_score,
    mean_cross_entropy,
    relative_score,
    scaled_update,
)
from fedledger.learning.update import UpdatePipeline, global_l2_norm

from .data import Federation
from .models import LocalTrainer

__all__ = [
    "FLSetup",
    "RoundStats",
    "RunResult",
    "SCORE_WEIGHTS",
    "SCORINGS",
    "Scenario",
    "alignment_with_others",
    "centered_per_validator",
    "committee_scores",
    "disagreement",
    "expected_score",
    "find_trigger",
    "honest_update_norms",
    "malicious_members",
    "rule_params",
    "score_of",
    "trust_committee_scores",
    "trust_references",
]


SCORINGS = ("accuracy", "relative-accuracy", "relative", "relative-accuracy-v0", "relative-loss", "trust")
"""``accuracy``, ``relative``, ``relative-accuracy`` and ``relative-loss`` are fedledger's
:data:`~fedledger.learning.SCORING_RULES`
(``relative-accuracy`` now scores as ``relative``: ``5000 + after - before`` clamped to [0, 10000]).
``relative-accuracy-v0`` is relative-accuracy's formula before that fix, ``max(0, min(after, 5000 + after -
before))``, kept to measure the fix: its absolute term rejects every update while the global model's
accuracy is below the threshold, so a task started from random weights never accepts anything."""


SCORE_WEIGHTS = ("full", "round")
"""How much of the update a validator applies before scoring: all of it (``full``) or ``1/k`` of it
(``round``), ``k`` the number of updates committed in the round (its weight in an equal-weight mean)."""


@dataclass(frozen=True)
class FLSetup:
    """The task: model, training schedule, update pipeline and acceptance rule."""

    model: str
    rounds: int
    clients_per_round: int
    local_steps: int
    batch_size: int
    lr: float
    clip_norm: float
    committee_size: int
    frac_bits: int = 24
    acceptance_threshold: int = 5_100
    scoring: str = "trust"
    score_weight: str = "full"
    center_previous: bool = True
    """Centered clipping's center: the previous round's aggregate (Karimireddy et al.'s momentum form), or
    zero (what a ledger aggregator computes when it passes no ``center``)."""
    max_disagreement: int = DEFAULT_MAX_DISAGREEMENT
    """Validator reputation (the contract's ``max_disagreement``, basis points; default: a task config's):
    validators with more than this share of scores against the outcome sit on no later committee; 0: off."""
    reputation_warmup: int = DEFAULT_REPUTATION_WARMUP
    """Fewest scores before a validator can be distrusted (the contract's ``reputation_warmup``); for trainer
    reputation, fewest scored updates."""
    max_rejection: int = DEFAULT_MAX_REJECTION
    """Trainer reputation (the contract's ``max_rejection``, basis points): a trainer with more than this share of
    its scored updates rejected is left out of later rounds (it commits nothing); 0: off."""
    min_mean_score: int = 0
    """Trainer reputation by scores (the contract's ``min_mean_score``): a trainer whose scored updates' committee
    medians average below this is left out of later rounds; 0: off."""
    min_approvals: int = 0
    """Acceptance by approvals (the contract's ``min_approvals``): an update passes when that many of its
    validators score it at or above the threshold, and validators are counted against only for approving a
    rejected update; 0: by the committee median."""
    adaptive_liars: bool = False
    """Lying validators lie only where they hold a strict majority of an update's committee and score
    honestly elsewhere (``LyingValidators(adaptive=True)``: the liar that keeps its reputation)."""
    tau_fraction: float = 0.5
    """Centered clipping's radius ``tau`` as a share of the clip norm (the task default: half)."""
    clip_to_median_norm: bool = False
    """Before the rule, scale every accepted update longer than the round's median accepted norm down to it
    (FLAME's adaptive clipping: ``aggregate(..., clip_to_median_norm=True)``, a task's
    ``TaskConfig.clip_to_median_norm``)."""
    lift_to_median_norm: bool = False
    """Likewise scale every accepted non-zero update shorter than that median up to it (a task's
    ``TaskConfig.lift_to_median_norm``)."""
    score_at_median_norm: bool = False
    """Validators score an update shorter than the round's median committed norm as if scaled up to it (a task's
    ``TaskConfig.score_at_median_norm``, :func:`fedledger.learning.scoring.at_least_norm`); no effect on
    ``trust`` scoring, a cosine."""
    center_scores: bool = False
    """Each validator re-centres its scores of a round on its median score of the round (a task's
    ``TaskConfig.center_scores``, :func:`fedledger.learning.scoring.centered_on_round`). A node centres over every
    other member's update of the round; here over its committee seats, the same set when committees seat every
    validator (the heart-disease setup)."""
    cap_examples_to_median: bool = True
    """Read every declared example count as at most the upper median of the round's declared counts
    (``aggregate(..., example_cap=...)``, a task's ``TaskConfig.cap_examples_to_median``)."""
    max_examples: int = DEFAULT_MAX_EXAMPLES
    """The most examples an update may declare (the task's ``max_examples``: what ``count-inflation`` claims)."""
    masked_checks: bool = False
    """Secure rounds with masked validity checks (a task's ``masked_checks``): an update is accepted when its L2
    norm is within the clip bound and, from the second round, its cosine with the previous round's aggregate is at
    least ``masked_min_cosine`` (:mod:`robustness_lib.masked_checks`); validators' scores play no part."""
    masked_min_cosine: float | None = 0.0
    masked_reference: str = "previous"
    """What the masked direction check compares an update with: ``previous`` (the previous round's aggregate, one
    public vector) or ``committee`` (each check-committee seat's own trust reference, its update on its own
    validation data, as validators' trust scores use; the pass bit is the seats' majority)."""
    masked_clip_levels: int = 0
    """Secure rounds clip each passing update around the previous aggregate to ``tau`` in the committee's MPC, with
    clip factors in steps of ``1 / masked_clip_levels`` (:func:`robustness_lib.masked_checks.masked_clipped_delta`);
    0: the plain sum of the passing updates."""
    registered_rows: bool = True
    """Each member registered its training rows in the task's data registry (a task with a purpose, as the demo
    deploys), and no update may declare more (``fedledger.federation.rules.registered_rows``): ``count-inflation``
    then claims its own rows. False: members could register any count (only ``max_examples`` bounds a claim)."""

    def __post_init__(self) -> None:
        if self.scoring not in SCORINGS:
            raise ConfigError(f"unknown scoring rule {self.scoring!r}")
        if self.score_weight not in SCORE_WEIGHTS:
            raise ConfigError(f"unknown score weight {self.score_weight!r} (known: {', '.join(SCORE_WEIGHTS)})")
        if min(self.rounds, self.clients_per_round, self.local_steps, self.batch_size, self.committee_size) < 1:
            raise ConfigError("rounds, clients per round, local steps, batch size and committee size must be >= 1")
        if not (self.lr > 0 and self.clip_norm > 0 and self.tau_fraction > 0):
            raise ConfigError("lr, clip_norm and tau_fraction must be positive")


@dataclass(frozen=True)
class Scenario:
    """One cell of a table: a rule under an attack, with a malicious share of trainers and of validators."""

    rule: str
    attack: str
    malicious_fraction: float
    lying_validator_fraction: float = 0.0
    seed: int = 0


@dataclass
class RoundStats:
    honest_submitted: int = 0
    honest_accepted: int = 0
    malicious_submitted: int = 0
    malicious_accepted: int = 0
    rule_errors: list[str] = field(default_factory=list)
    honest_medians: list[int] = field(default_factory=list)
    malicious_medians: list[int] = field(default_factory=list)
    committees: int = 0
    lying_majorities: int = 0
    honest_alignment: list[float] = field(default_factory=list)


@dataclass
class RunResult:
    scenario: Scenario
    test_error: float
    backdoor_success: float | None
    honest_acceptance: float
    malicious_acceptance: float | None
    seconds: float
    rule_errors: list[str]
    mean_test_error_per_group: float | None = None
    cpu_seconds: float = 0.0
    """CPU time of the run's process (the machine-independent part of its cost)."""
    plants_backdoor: bool = False
    """The attack plants a backdoor; otherwise ``backdoor_success`` (if set) is the trigger's base rate."""
    test_error_sd: float | None = None
    """Over seeds (:func:`robustness_lib.report.mean_over_seeds`): the sample sd of the test error, whose mean
    is then ``test_error``; likewise ``backdoor_sd``. ``None`` for a single run."""
    backdoor_sd: float | None = None
    num_seeds: int = 1
    backdoor_flips: float | None = None
    """Like ``backdoor_success`` but counting only inputs the trigger turned from correct to the target
    (``backdoor_success_rate(..., flips_only=True)``): the backdoor without the model's natural confusion."""
    honest_medians: list[int] = field(default_factory=list)
    """Committee median score of every honest update (to choose a threshold); likewise malicious ones."""
    malicious_medians: list[int] = field(default_factory=list)
    liar_disagreement: float | None = None
    """Share of the lying validators' scores that fell on the other side of the threshold from the update's
    outcome (None without liars); likewise the honest validators'. Counted with reputation off too."""
    honest_disagreement: float | None = None
    distrusted_liars: int = 0
    """Lying validators distrusted by the end of the run (reputation on), of ``num_liars``; likewise honest
    members, and malicious trainers that score honestly (not liars: their attack is on their updates)."""
    distrusted_honest: int = 0
    distrusted_attackers: int = 0
    distrusted_honest_trainers: int = 0
    """Trainer reputation: honest members whose updates are left out by the end of the run; likewise malicious."""
    distrusted_malicious_trainers: int = 0
    num_liars: int = 0
    num_attackers: int = 0
    lying_majority: float | None = None
    """Share of the committees drawn in which lying validators held a strict majority (None without liars)."""
    honest_alignment: float | None = None
    """Mean cosine of each honest update with the mean of the round's other honest updates, over the second half of
    the rounds: whether honest members pull the same way. Near or below 0 the data are heterogeneous enough that a
    crafted update cannot be told from an honest outlier (Karimireddy, He, Jaggi, ICLR 2022)."""
    malicious_submitted: int = 0
    """Updates the malicious members committed over the run (none while trainer reputation distrusts them)."""

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> RunResult:
        """A run as :meth:`to_json` wrote it (for ``robustness.py --report``). Fields added after a file was
        written take their defaults, so older runs' files still load."""
        scenario = Scenario(**{f.name: row[f.name] for f in fields(Scenario) if f.name in row})
        given: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "scenario":
                continue
            if f.name in row:
                value = row[f.name]
                given[f.name] = list(value) if isinstance(value, list) else value
            elif f.default is MISSING and f.default_factory is MISSING:
                raise ConfigError(f"run record of {scenario.rule}/{scenario.attack} lacks {f.name!r}")
        return cls(scenario, **given)

    def to_json(self) -> dict[str, Any]:
        """The scenario's fields and every result field, flat (one row of ``--json``)."""
        row = asdict(self.scenario)
        row.update((f.name, getattr(self, f.name)) for f in fields(self) if f.name != "scenario")
        return row


def malicious_members(num_clients: int, fraction: float, seed: int) -> np.ndarray:
    """The malicious members: ``round(fraction * N)`` of them, a seeded random choice (sorted)."""
    if not 0 <= fraction < 1:
        raise ConfigError(f"malicious fraction must be in [0, 1), got {fraction}")
    count = int(round(fraction * num_clients))
    return np.sort(np.random.default_rng([seed, 7]).permutation(num_clients)[:count])


def score_of(scoring: str, before_bps: int, after_bps: int) -> int:
    """The score of an update under ``scoring`` from the validator's accuracies before and after it."""
    if scoring == "accuracy":
        return after_bps
    if scoring == "relative-accuracy-v0":
        return max(0, min(after_bps, MAX_SCORE // 2 + after_bps - before_bps))
    return relative_score(before_bps, after_bps)


def rule_params(
    rule: str, num_updates: int, malicious_fraction: float, clip_norm: float, *, tau_fraction: float = 0.5
) -> dict[str, object]:
    """Each rule's parameters for this benchmark: the registry defaults, except that rules with a
    Byzantine count are told the malicious share (as in FLTrust's experiments: f = expected
    attackers among the updates, capped to what ``n`` allows), and norm-based rules get bounds in
    the task's units (half the clip norm)."""
    expected = int(math.floor(malicious_fraction * num_updates))
    if rule == "trimmed-mean":
        return {"beta": min(malicious_fraction, 0.45)}
    if rule in ("krum", "multi-krum"):
        return {"f": max(0, min(expected, (num_updates - 3) // 2))}
    if rule == "bulyan":
        return {"f": max(0, min(expected, (num_updates - 3) // 4))}
    if rule == "norm-bounding":
        return {"max_norm": clip_norm / 2}
    if rule == "centered-clipping":
        return {"tau": clip_norm * tau_fraction}
    return {}


def committee_scores(
    trainer: LocalTrainer,
    global_params: Params,
    candidates: Sequence[Params],
    committees: Sequence[Sequence[int]],
    val_data: Sequence[tuple[torch.Tensor, np.ndarray]],
    *,
    scoring: str,
) -> list[list[int]]:
    """Honest scores: ``scores[i][k]`` is validator ``committees[i][k]``'s score of candidate ``i``.

    Each candidate predicts once on its committee's validation data, concatenated; the global
    model predicts once per validator (the "before" of relative-accuracy)."""
    if scoring == "relative-loss":
        return _loss_committee_scores(trainer, global_params, candidates, committees, val_data)
    before: dict[int, int] = {}
    if scoring != "accuracy":
        for v in sorted({v for c in committees for v in c}):
            X, y = val_data[v]
            before[v] = accuracy_bps(trainer.predict(global_params, X), y)
    out = []
    for candidate, committee in zip(candidates, committees, strict=True):
        X_all = torch.cat([val_data[v][0] for v in committee])
        predictions = trainer.predict(candidate, X_all)
        scores, offset = [], 0
        for v in committee:
            y = val_data[v][1]
            after = accuracy_bps(predictions[offset : offset + len(y)], y)
            offset += len(y)
            scores.append(score_of(scoring, before.get(v, 0), after))
        out.append(scores)
    return out


def _loss_committee_scores(
    trainer: LocalTrainer,
    global_params: Params,
    candidates: Sequence[Params],
    committees: Sequence[Sequence[int]],
    val_data: Sequence[tuple[torch.Tensor, np.ndarray]],
) -> list[list[int]]:
    """:func:`committee_scores` for ``relative-loss``: each validator's validation loss (mean cross-entropy)
    before and after each candidate, scored by :func:`fedledger.learning.scoring.loss_change_score`."""
    before: dict[int, float] = {}
    n_classes = 2
    for v in sorted({v for c in committees for v in c}):
        X, y = val_data[v]
        probabilities = trainer.probabilities(global_params, X)
        before[v] = mean_cross_entropy(probabilities, y)
        n_classes = probabilities.shape[1] or n_classes
    out = []
    for candidate, committee in zip(candidates, committees, strict=True):
        probabilities = trainer.probabilities(candidate, torch.cat([val_data[v][0] for v in committee]))
        scores, offset = [], 0
        for v in committee:
            y = val_data[v][1]
            after = mean_cross_entropy(probabilities[offset : offset + len(y)], y)
            offset += len(y)
            scores.append(loss_change_score(before[v], after, n_classes=n_classes))
        out.append(scores)
    return out


def expected_score(
    trainer: LocalTrainer,
    global_params: Params,
    pipeline: UpdatePipeline,
    setup: FLSetup,
    val_data: Sequence[tuple[torch.Tensor, np.ndarray]],
    colluders: Sequence[int],
    num_updates: int,
    rng_key: Sequence[int],
) -> Callable[[Params], int]:
    """The committee median the colluders expect for a delta (``AttackContext.score``): the setup's scoring on
    their own validation data, each scoring as a validator would, the median over them."""

    references: dict[int, np.ndarray] = {}  # trust references, trained on the first call (an attack calls often)

    def score(delta: Params) -> int:
        local = {k: (global_params[k] + delta[k]).astype(np.float32) for k in global_params}
        tensors, _ = pipeline.transform(local, global_params, num_examples=1)
        committee = [list(colluders)]
        if setup.scoring == "trust":
            if not references:
                references.update(trust_references(trainer, global_params, colluders, val_data, setup, rng_key))
            row = _cosine_scores([tensors], committee, references)[0]
        else:
            divisor = num_updates if setup.score_weight == "round" else 1
            candidate = apply_update(global_params, scaled_update(tensors, divisor), frac_bits=setup.frac_bits)
            row = committee_scores(trainer, global_params, [candidate], committee, val_data, scoring=setup.scoring)[0]
        return contract_median([int(s) for s in row if s is not None])

    return score


def centered_per_validator(
    scores: Sequence[Sequence[int | None]], committees: Sequence[Sequence[int]]
) -> list[list[int | None]]:
    """``scores[i][k]`` (validator ``committees[i][k]``'s score of update ``i``) with each validator's scores of the
    round re-centred by :func:`fedledger.learning.scoring.centered_on_round`, as its node would submit them."""
    seats: dict[int, list[tuple[int, int]]] = {}
    for i, committee in enumerate(committees):
        for k, v in enumerate(committee):
            if scores[i][k] is not None:
                seats.setdefault(int(v), []).append((i, k))
    out = [list(row) for row in scores]
    for places in seats.values():
        centered = centered_on_round([int(scores[i][k]) for i, k in places])  # type: ignore[arg-type]
        for (i, k), value in zip(places, centered, strict=True):
            out[i][k] = value
    return out


def trust_committee_scores(
    trainer: LocalTrainer,
    global_params: Params,
    updates: Sequence[Params],
    committees: Sequence[Sequence[int]],
    val_data: Sequence[tuple[torch.Tensor, np.ndarray]],
    setup: FLSetup,
    rng_key: Sequence[int],
    *,
    skip: Collection[int] = (),
    center_over: Sequence[int] | None = None,
) -> list[list[int | None]]:
    """Honest ``trust`` scores (:func:`fedledger.learning.scoring.score_trust`): each validator trains its
    reference update once (:func:`trust_references`), then scores every update of its committees by
    :func:`~fedledger.learning.scoring.cosine_score` against it. Validators in ``skip`` (liars, whose honest
    scores nobody reads) train nothing and get ``None``.

    With ``center_over`` (the owner of each update), each validator scores every other member's update of the
    round and centres those scores on their median (:func:`~fedledger.learning.scoring.centered_on_round`), as
    its node does, whatever seats it holds; its seats then read the centred scores."""
    validators = sorted({v for c in committees for v in c} - set(skip))
    references = trust_references(trainer, global_params, validators, val_data, setup, rng_key)
    if center_over is None:
        return _cosine_scores(updates, committees, references)
    everyone = [[v for v in validators if v != owner] for owner in center_over]
    full = _cosine_scores(updates, everyone, references)
    centered = centered_per_validator(full, everyone)
    by_seat = {(i, v): score for i, row in enumerate(everyone) for v, score in zip(row, centered[i], strict=True)}
    return [[by_seat.get((i, v)) for v in committee] for i, committee in enumerate(committees)]


def trust_references(
    trainer: LocalTrainer,
    global_params: Params,
    validators: Iterable[int],
    val_data: Sequence[tuple[torch.Tensor, np.ndarray]],
    setup: FLSetup,
    rng_key: Sequence[int],
) -> dict[int, np.ndarray]:
    """Each validator's trust reference: its update on its own validation data with the task's local schedule,
    flattened in sorted-name order (seeded by ``rng_key`` and the validator, so the same on every call)."""
    names = sorted(global_params)
    references: dict[int, np.ndarray] = {}
    for v in validators:
        X, y = val_data[v]
        local = trainer.train(
            global_params,
            X,
            torch.from_numpy(y),
            steps=setup.local_steps,
            batch_size=setup.batch_size,
            lr=setup.lr,
            rng=np.random.default_rng([*rng_key, v]),
        )
        references[v] = np.concatenate([(local[k].astype(np.float64) - global_params[k]).ravel() for k in names])
    return references


def _cosine_scores(
    updates: Sequence[Params], committees: Sequence[Sequence[int]], references: Mapping[int, np.ndarray]
) -> list[list[int | None]]:
    """Each committee member's cosine score of its update, ``None`` for a member without a reference."""
    names = sorted(updates[0]) if updates else []
    vectors = [np.concatenate([u[k].view(np.int64).ravel() for k in names]) for u in updates]
    return [
        [cosine_score(vec, references[v]) if v in references else None for v in committee]
        for vec, committee in zip(vectors, committees, strict=True)
    ]


def find_trigger(attack: Attack) -> tuple[PixelTrigger, int] | None:
    """The backdoor trigger and target of an attack (or of a part of a composed one)."""
    parts = list(getattr(attack, "parts", (attack,)))
    parts += [p.inner for p in parts if isinstance(getattr(p, "inner", None), Attack)]  # sybils replay an attack
    for part in parts:
        if hasattr(part, "trigger") and hasattr(part, "target_label"):
            return part.trigger, int(part.target_label)
    return None


def alignment_with_others(deltas: Sequence[Params]) -> list[float]:
    """Each delta's cosine with the mean of the others (none for fewer than two)."""
    if len(deltas) < 2:
        return []
    vectors = np.stack([np.concatenate([np.ravel(d[k]) for k in sorted(d)]).astype(np.float64) for d in deltas])
    out = []
    for i, v in enumerate(vectors):
        others = np.delete(vectors, i, axis=0).mean(axis=0)
        norm = float(np.linalg.norm(v) * np.linalg.norm(others))
        if norm > 0:
            out.append(float(v @ others) / norm)
    return out


def disagreement(reputation: ValidatorReputation[str], validators: Sequence[str]) -> float | None:
    # Pooled over the validators' scores: the share that fell against the outcome.
    scored = sum(reputation.scored.get(v, 0) for v in validators)
    return sum(reputation.disagreed.get(v, 0) for v in validators) / scored if scored else None


def honest_update_norms(
    federation: Federation, setup: FLSetup, trainer: LocalTrainer, params: Params, *, count: int, seed: int
) -> list[float]:
    """L2 norms of ``count`` honest members' deltas from ``params`` (to size the clip norm)."""
    rng = np.random.default_rng([seed, 31])
    norms = []
    for c in rng.choice(len(federation.clients), count, replace=False):
        client = federation.clients[int(c)]
        local = trainer.train(
            params,
            torch.from_numpy(client.X_train),
            torch.from_numpy(client.y_train),
            steps=setup.local_steps,
            batch_size=setup.batch_size,
            lr=setup.lr,
            rng=np.random.default_rng([seed, 37, int(c)]),
        )
        norms.append(global_l2_norm({k: local[k] - params[k] for k in params}))
    return norms
