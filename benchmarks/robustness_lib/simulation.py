"""A chain-less simulation of fedledger rounds under attack, on fedledger's own learning code.

Why no chain: the benchmark runs every attack against every aggregation rule, three times
(20 % and 30 % malicious trainers, then a third of validators lying), with 100 members and tens of
rounds each: thousands of member-rounds per configuration. A ledger round costs about 2N + 5
transactions (see ``benchmarks/ledger.py``), so the grid would need hundreds of thousands of
transactions, far beyond the benchmark's hour on two cores. What decides robustness does not
depend on the chain, so it runs the same code that fedledger nodes and the contract run:

* member: local SGD from the global model, then :class:`fedledger.learning.UpdatePipeline`
  (``local - global`` -> clip to the task's L2 norm -> fixed-point encode), as
  ``MemberNode`` does;
* malicious member: the attack's hooks from :mod:`fedledger.attacks` (poison its data before
  training, craft its delta from the coalition's benign deltas, lie when validating);
* validators: a committee of ``committee_size`` members per update, drawn at random among the
  others, scores ``global + update`` (decoded with :func:`fedledger.learning.apply_update`) on
  its local validation data with the task's scoring rule (``relative``: the formula of
  :func:`fedledger.learning.scoring.score_relative`, :func:`~fedledger.learning.scoring.relative_score` on
  :func:`fedledger.learning.accuracy_bps`), the update at full weight or at ``1/k`` of it
  (:func:`~fedledger.learning.scoring.scaled_update`, ``k`` the round's committed updates);
* contract: an update is accepted when :func:`fedledger.chain.task.contract_median` of its
  committee's scores reaches the acceptance threshold; with validator reputation on
  (``max_disagreement`` > 0), :class:`fedledger.chain.reputation.ValidatorReputation` counts each
  score against its update's outcome and committees are drawn among the validators it still trusts;
* aggregator: :func:`fedledger.learning.aggregation.aggregate` with the rule under test over the
  accepted updates, then :func:`fedledger.learning.apply_update` (a round with no accepted
  update leaves the model unchanged, as an aborted round does).

Only the scoring is batched differently from a node: instead of one adapter call per (update,
validator) pair, each candidate model predicts once on its whole committee's validation data and
the predictions are split per validator; ``tests/test_robustness_bench.py`` checks the scores
equal :func:`fedledger.learning.score_update_relative` on the same inputs.

Members take part in rounds as in cross-device FedAvg (McMahan et al., AISTATS 2017):
``clients_per_round`` of them per round, drawn so that malicious members are exactly their
share of every round (as in FLTrust, where all members take part and the fraction is fixed).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

import numpy as np
import torch

from fedledger.attacks import Attack, AttackContext, LyingValidators
from fedledger.attacks.backdoor import PixelTrigger, backdoor_success_rate
from fedledger.chain.reputation import TrainerReputation, ValidatorReputation
from fedledger.chain.task import contract_median
from fedledger.exceptions import AggregationError, ConfigError
from fedledger.federation.config import (
    DEFAULT_MAX_DISAGREEMENT,
    DEFAULT_MAX_EXAMPLES,
    DEFAULT_MAX_REJECTION,
    DEFAULT_REPUTATION_WARMUP,
)
from fedledger.learning.aggregation import AGGREGATION_RULES, aggregate, apply_update
from fedledger.learning.aggregation.example_cap import median_example_cap
from fedledger.learning.params import Params
from fedledger.learning.scoring import (
    MAX_SCORE,
    accuracy_bps,
    at_median_norm,
    centered_on_round,
    cosine_score,
    relative_score,
    scaled_update,
)
from fedledger.learning.update import DecodedUpdate, UpdatePipeline, global_l2_norm

from .data import Federation
from .models import LocalTrainer

__all__ = [
    "FLSetup",
    "RoundStats",
    "RunResult",
    "Scenario",
    "alignment_with_others",
    "committee_scores",
    "honest_update_norms",
    "malicious_members",
    "score_of",
    "rule_params",
    "run_scenario",
]


SCORINGS = ("accuracy", "relative-accuracy", "relative", "relative-accuracy-v0", "trust")
"""``accuracy``, ``relative`` and ``relative-accuracy`` are fedledger's :data:`~fedledger.learning.SCORING_RULES`
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


def _find_trigger(attack: Attack) -> tuple[PixelTrigger, int] | None:
    """The backdoor trigger and target of an attack (or of a part of a composed one)."""
    parts = list(getattr(attack, "parts", (attack,)))
    parts += [p.inner for p in parts if isinstance(getattr(p, "inner", None), Attack)]  # sybils replay an attack
    for part in parts:
        if hasattr(part, "trigger") and hasattr(part, "target_label"):
            return part.trigger, int(part.target_label)
    return None


def run_scenario(
    federation: Federation,
    setup: FLSetup,
    scenario: Scenario,
    attack: Attack,
    trainer: LocalTrainer,
    initial_params: Params,
    *,
    probe: tuple[PixelTrigger, int] | None = None,
    on_round: Callable[[int, Params], None] | None = None,
) -> RunResult:
    """Train ``setup.rounds`` rounds of ``scenario`` and report test error and backdoor success.

    Backdoor success uses the attack's own trigger and target when it plants one; otherwise the
    ``probe`` trigger and target, if given, measure the base rate (how often the trigger alone,
    with no backdoor planted, turns a prediction into the target). ``on_round(r, global_params)`` sees
    the global model after every round (``benchmarks/robustness_trajectory.py``)."""
    if scenario.rule not in AGGREGATION_RULES:
        raise ConfigError(f"unknown aggregation rule {scenario.rule!r}")
    start, start_cpu = time.perf_counter(), time.process_time()
    seed = scenario.seed
    n_clients = len(federation.clients)
    malicious = malicious_members(n_clients, scenario.malicious_fraction, seed)
    is_malicious = np.zeros(n_clients, dtype=bool)
    is_malicious[malicious] = True
    honest = np.flatnonzero(~is_malicious)
    n_lying = int(math.ceil(scenario.lying_validator_fraction * n_clients))
    # The lying validators are the malicious trainers plus as many colluding members as needed.
    extra = np.random.default_rng([seed, 11]).permutation(honest)[: max(0, n_lying - len(malicious))]
    lying = set(malicious.tolist()) | set(extra.tolist()) if n_lying else set()
    liar = LyingValidators(adaptive=setup.adaptive_liars)
    liars = lying | (set(malicious.tolist()) if attack.lies_in_scores else set())
    reputation: ValidatorReputation[int] = ValidatorReputation(setup.max_disagreement, setup.reputation_warmup)
    trainer_record: TrainerReputation[int] = TrainerReputation(
        setup.max_rejection, setup.reputation_warmup, setup.min_mean_score
    )

    # Data as tensors once; malicious members poison theirs once (fixed poisoned share, as in BadNets).
    train_data: list[tuple[torch.Tensor, torch.Tensor]] = []
    for c, client in enumerate(federation.clients):
        X, y = client.X_train, client.y_train
        if is_malicious[c] and attack.poisons_data:
            X, y = attack.poison_data(
                X, y, rng=np.random.default_rng([seed, 13, c]), num_classes=federation.num_classes
            )
        train_data.append((torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(y)))
    val_data = [
        (torch.from_numpy(np.ascontiguousarray(c.X_val, dtype=np.float32)), np.asarray(c.y_val))
        for c in federation.clients
    ]

    pipeline = UpdatePipeline.default(max_norm=setup.clip_norm, frac_bits=setup.frac_bits)
    spec = AGGREGATION_RULES[scenario.rule]
    global_params = {k: v.copy() for k, v in initial_params.items()}
    per_round = min(setup.clients_per_round, n_clients)
    mal_per_round = int(round(per_round * len(malicious) / n_clients))
    stats = RoundStats()
    history: dict[int, dict[str, np.ndarray]] = {}
    previous_aggregate: dict[str, np.ndarray] | None = None

    for r in range(setup.rounds):
        rng = np.random.default_rng([seed, 17, r])
        chosen = np.concatenate(
            [
                rng.choice(malicious, mal_per_round, replace=False),
                rng.choice(honest, per_round - mal_per_round, replace=False),
            ]
        )
        # The contract refuses commitments from the trainers its trainer reputation distrusts when the round opens.
        owners = np.array([c for c in np.sort(chosen) if not trainer_record.distrusted(int(c))], dtype=chosen.dtype)
        if owners.size == 0:
            if on_round is not None:
                on_round(r, global_params)
            continue
        deltas: dict[int, Params] = {}
        for c in owners:
            if is_malicious[c] and not attack.needs_training:
                continue
            X, y = train_data[c]
            local = trainer.train(
                global_params,
                X,
                y,
                steps=setup.local_steps,
                batch_size=setup.batch_size,
                lr=setup.lr,
                rng=np.random.default_rng([seed, 19, r, int(c)]),
            )
            deltas[int(c)] = {k: local[k] - global_params[k] for k in local}
        round_malicious = [int(c) for c in owners if is_malicious[c]]
        if round_malicious and attack.crafts_updates:
            ctx = AttackContext(
                global_params,
                r,
                len(round_malicious),
                np.random.default_rng([seed, 23, r]),
                num_workers=len(owners),
                clip_norm=setup.clip_norm,
                score=expected_score(
                    trainer, global_params, pipeline, setup, val_data, round_malicious, len(owners), [seed, 43, r]
                ),
                score_floor=max(setup.acceptance_threshold, setup.min_mean_score),
                scores_at_median_norm=setup.score_at_median_norm,
            )
            crafted = attack.craft([deltas[c] for c in round_malicious if c in deltas], ctx)
            deltas.update(zip(round_malicious, crafted, strict=True))

        if 2 * r >= setup.rounds:
            honest_deltas = [deltas[int(c)] for c in owners if not is_malicious[c]]
            stats.honest_alignment.extend(alignment_with_others(honest_deltas))

        # The node path: local = global + delta -> pipeline (clip, fixed point), then decode for scoring.
        updates: list[dict[str, np.ndarray]] = []
        counts: list[int] = []
        for c in owners:
            local = {k: (global_params[k] + deltas[int(c)][k]).astype(np.float32) for k in global_params}
            count = len(train_data[c][1])
            if is_malicious[c]:
                limit = min(setup.max_examples, count) if setup.registered_rows else setup.max_examples
                count = attack.claimed_examples(count, max_examples=limit)
            tensors, _ = pipeline.transform(local, global_params, num_examples=count)
            updates.append(tensors)
            counts.append(count)
        committees = []
        # The contract snapshots the trusted validators when commits close: distrust counts from the next round.
        pool = np.array(reputation.trusted(range(n_clients)))
        for c in owners:
            others = pool[pool != c]
            seats = min(setup.committee_size, len(others))  # the contract seats every validator when fewer remain
            committees.append(np.sort(rng.choice(others, seats, replace=False)).tolist())
        honest_scores: list[list[int | None]]
        if setup.scoring == "trust":
            # Liars' own references would be a third of the setting's training; their honest scores are unread
            # (but for adaptive liars, which submit them wherever they are a minority).
            unread = liars - lying if setup.adaptive_liars else liars
            honest_scores = trust_committee_scores(
                trainer,
                global_params,
                updates,
                committees,
                val_data,
                setup,
                [seed, 41, r],
                skip=unread,
                center_over=[int(c) for c in owners] if setup.center_scores else None,
            )
        else:
            # What validators score: the update at full weight, or at its weight 1/k in the round's mean.
            divisor = len(updates) if setup.score_weight == "round" else 1
            scored_updates = updates
            if setup.score_at_median_norm:
                decoded = [DecodedUpdate(u, 1, "fixed64", setup.frac_bits, {}) for u in updates]
                scored_updates = [d.tensors for d in at_median_norm(decoded)]
            candidates = [
                apply_update(global_params, scaled_update(u, divisor), frac_bits=setup.frac_bits)
                for u in scored_updates
            ]
            scored = committee_scores(trainer, global_params, candidates, committees, val_data, scoring=setup.scoring)
            honest_scores = [list(row) for row in scored]
        if setup.center_scores and setup.scoring != "trust":  # trust centres over every update (above)
            honest_scores = centered_per_validator(honest_scores, committees)
        accepted = []
        owner_ids = [str(int(c)) for c in owners]
        # Whom the liars vouch for: the malicious trainers. Adaptive liars need the whole lying coalition to count
        # their seats on a committee, so they vouch for all of it (the extra colluders' updates are honest).
        colluders = [str(c) for c in (sorted(liars) if setup.adaptive_liars else malicious.tolist())]
        committee_ids = [[str(v) for v in committee] for committee in committees]
        for i, committee in enumerate(committees):
            stats.committees += 1
            stats.lying_majorities += 2 * len(liars.intersection(committee)) > len(committee)
            scores = []
            for k, v in enumerate(committee):
                honest_score = honest_scores[i][k]
                if v in liars:
                    # The validator's whole score vector is what the hook sees; only update i is read here. The
                    # lying hooks of fedledger.attacks read which updates a liar scores, not its honest values.
                    vector: list[int | None] = [None] * len(owners)
                    vector[i] = MAX_SCORE // 2 if honest_score is None else honest_score
                    scorer = liar if v in lying else attack
                    lied = scorer.scores(vector, owner_ids, colluders, committees=committee_ids)[i]
                    scores.append(int(lied if lied is not None else 0))
                else:
                    assert honest_score is not None
                    scores.append(honest_score)
            ok = False  # the contract leaves an update nobody could score out
            if scores:
                median = contract_median(scores)
                ok = median >= setup.acceptance_threshold
                reputation.record(committee, scores, accepted=ok, threshold=setup.acceptance_threshold)
                if trainer_record.enabled:
                    trainer_record.record(int(owners[i]), accepted=ok, median=median)
                (stats.malicious_medians if is_malicious[owners[i]] else stats.honest_medians).append(median)
            if ok:
                accepted.append(i)
            if is_malicious[owners[i]]:
                stats.malicious_submitted += 1
                stats.malicious_accepted += int(ok)
            else:
                stats.honest_submitted += 1
                stats.honest_accepted += int(ok)

        for i, c in enumerate(owners):
            if spec.accepts_history:
                old = history.get(int(c))
                history[int(c)] = {k: (old[k] + v if old else v.copy()) for k, v in updates[i].items()}
        if not accepted:
            if on_round is not None:
                on_round(r, global_params)
            continue
        kwargs: dict[str, Any] = {}
        if spec.needs_reference:
            # FLTrust's trusted root data: the validation data of one honest member drawn per round.
            root = int(rng.choice(honest))
            Xr, yr = val_data[root]
            ref_local = trainer.train(
                global_params,
                Xr,
                torch.from_numpy(yr),
                steps=setup.local_steps,
                batch_size=setup.batch_size,
                lr=setup.lr,
                rng=np.random.default_rng([seed, 29, r]),
            )
            kwargs["reference"], _ = pipeline.transform(ref_local, global_params, num_examples=len(yr))
        if spec.accepts_center and setup.center_previous and previous_aggregate is not None:
            kwargs["center"] = previous_aggregate
        if spec.accepts_history:
            kwargs["history"] = [history[int(owners[i])] for i in accepted]
        try:
            result = aggregate(
                scenario.rule,
                [updates[i] for i in accepted],
                [counts[i] for i in accepted],
                frac_bits=setup.frac_bits,
                params=rule_params(
                    scenario.rule,
                    len(accepted),
                    scenario.malicious_fraction,
                    setup.clip_norm,
                    tau_fraction=setup.tau_fraction,
                ),
                clip_to_median_norm=setup.clip_to_median_norm,
                lift_to_median_norm=setup.lift_to_median_norm,
                # The cap comes from every update of the round, accepted or not (as the ledger's aggregators do).
                example_cap=median_example_cap(counts) if setup.cap_examples_to_median else None,
                **kwargs,
            )
        except AggregationError as exc:
            stats.rule_errors.append(f"round {r}: {exc}")
        else:
            previous_aggregate = result.delta
            global_params = apply_update(global_params, result.delta, frac_bits=setup.frac_bits)
        if on_round is not None:
            on_round(r, global_params)

    X_test = torch.from_numpy(np.ascontiguousarray(federation.X_test, dtype=np.float32))
    predictions = trainer.predict(global_params, X_test)
    correct = predictions == federation.y_test
    per_group = None
    if federation.test_groups is not None:
        per_group = float(
            np.mean([1 - correct[federation.test_groups == g].mean() for g in np.unique(federation.test_groups)])
        )
    backdoor = flips = None
    planted = _find_trigger(attack)
    trigger = planted or probe
    if trigger is not None:

        def predict(X: np.ndarray) -> np.ndarray:
            return trainer.predict(global_params, torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))

        test = (predict, federation.X_test, federation.y_test)
        backdoor = backdoor_success_rate(*test, trigger=trigger[0], target_label=trigger[1])
        flips = backdoor_success_rate(*test, trigger=trigger[0], target_label=trigger[1], flips_only=True)
    honest_validators = [int(c) for c in honest if int(c) not in liars]
    attackers = set(malicious.tolist()) - liars  # malicious trainers whose scores are honest
    return RunResult(
        scenario,
        float(1 - correct.mean()),
        backdoor,
        stats.honest_accepted / max(1, stats.honest_submitted),
        stats.malicious_accepted / stats.malicious_submitted if stats.malicious_submitted else None,
        time.perf_counter() - start,
        stats.rule_errors,
        per_group,
        time.process_time() - start_cpu,
        planted is not None,
        honest_medians=stats.honest_medians,
        malicious_medians=stats.malicious_medians,
        backdoor_flips=flips,
        liar_disagreement=_disagreement(reputation, sorted(liars)),
        honest_disagreement=_disagreement(reputation, honest_validators),
        distrusted_liars=sum(reputation.distrusted(v) for v in liars),
        distrusted_honest=sum(reputation.distrusted(v) for v in honest_validators),
        distrusted_attackers=sum(reputation.distrusted(v) for v in attackers),
        distrusted_honest_trainers=sum(trainer_record.distrusted(int(c)) for c in honest),
        distrusted_malicious_trainers=sum(trainer_record.distrusted(int(c)) for c in malicious),
        num_liars=len(liars),
        num_attackers=len(attackers),
        lying_majority=stats.lying_majorities / stats.committees if liars and stats.committees else None,
        honest_alignment=float(np.mean(stats.honest_alignment)) if stats.honest_alignment else None,
        malicious_submitted=stats.malicious_submitted,
    )


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


def _disagreement(reputation: ValidatorReputation[int], validators: Sequence[int]) -> float | None:
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
