"""A chain-less simulation of fedledger rounds under attack: the round engine over the in-memory ledger.

Why no chain: the benchmark runs every attack against every aggregation rule, three times
(20 % and 30 % malicious trainers, then a third of validators lying), with 100 members and tens of
rounds each: thousands of member-rounds per configuration. A ledger round costs about 2N + 5
transactions (see ``benchmarks/ledger.py``), so the grid would need hundreds of thousands of
transactions, far beyond the benchmark's hour on two cores. What decides robustness does not
depend on the chain, so each round is the protocol every node runs, on the same code:

* the round: :class:`fedledger.federation.engine.RoundEngine` in the validated mode, one engine per member,
  over :class:`fedledger.federation.memory_ledger.InMemoryLedger`, which applies the contract's rules
  (commit and validation phases, acceptance by the committee median, validator and trainer reputation,
  finalization by proposal);
* member: local SGD from the global model, then :class:`fedledger.learning.UpdatePipeline`
  (``local - global`` -> clip to the task's L2 norm -> fixed-point encode), as ``MemberNode`` does;
* malicious member: the attack's hooks from :mod:`fedledger.attacks` (poison its data before
  training, craft its delta from the coalition's benign deltas, lie when validating);
* validators: a committee of ``committee_size`` members per update, drawn at random among the
  others the ledger still trusts, scores ``global + update`` on its local validation data with the task's
  scoring rule (batched: :mod:`robustness_lib.scenario`);
* aggregator: :func:`fedledger.learning.aggregation.aggregate` with the rule under test over the
  accepted updates, then :func:`fedledger.learning.apply_update` (a round with no accepted
  update, or whose rule fails, leaves the model unchanged, as an aborted round does).

The members' work is computed once per round for all of them (training and crafting when the first trainer
commits, the honest scores when the first validator scores): the same values a member computing its own
would get, at a fraction of the cost. Members take part in rounds as in cross-device FedAvg (McMahan et al.,
AISTATS 2017): ``clients_per_round`` of them per round, drawn so that malicious members are exactly their
share of every round (as in FLTrust, where all members take part and the fraction is fixed).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fedledger.attacks import Attack, AttackContext, LyingValidators
from fedledger.attacks.backdoor import PixelTrigger, backdoor_success_rate
from fedledger.chain.consortium import Role
from fedledger.chain.task import RoundInfo, TaskParams
from fedledger.exceptions import AggregationError, ConfigError
from fedledger.federation.engine import CLOSED, RoundEngine, ValidatedRounds, phase_deadline
from fedledger.federation.memory_ledger import InMemoryLedger
from fedledger.federation.rules import verdict
from fedledger.learning.aggregation import AGGREGATION_RULES, aggregate, apply_update
from fedledger.learning.aggregation.example_cap import median_example_cap
from fedledger.learning.params import Params
from fedledger.learning.scoring import MAX_SCORE, at_median_norm, scaled_update
from fedledger.learning.update import DecodedUpdate, UpdatePipeline

from .data import Federation
from .masked_checks import masked_clipped_delta, masked_decisions
from .models import LocalTrainer
from .scenario import (
    FLSetup,
    RoundStats,
    RunResult,
    Scenario,
    alignment_with_others,
    centered_per_validator,
    committee_scores,
    disagreement,
    expected_score,
    find_trigger,
    malicious_members,
    rule_params,
    trust_committee_scores,
)

__all__ = ["FLSetup", "RunResult", "Scenario", "run_scenario"]

OPERATOR = "operator"
"""The task's operator: opens rounds and aggregates (the simulation's one aggregator); it neither trains nor scores."""


@dataclass
class _RoundWork:
    """What the round's members compute, once for all of them (see the module docstring)."""

    r: int
    owners: list[int]
    updates: list[dict[str, np.ndarray]] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    committees: list[list[int]] | None = None
    honest_scores: list[list[int | None]] | None = None
    history_recorded: bool = False
    masked_pass: list[bool] | None = None


class _Scenario:
    """One scenario's shared state: data, the attack's coalition, the global model and the round's work."""

    def __init__(
        self,
        federation: Federation,
        setup: FLSetup,
        scenario: Scenario,
        attack: Attack,
        trainer: LocalTrainer,
        initial_params: Params,
    ) -> None:
        self.federation, self.setup, self.scenario, self.attack, self.trainer = (
            federation,
            setup,
            scenario,
            attack,
            trainer,
        )
        seed = self.seed = scenario.seed
        n_clients = len(federation.clients)
        self.malicious = malicious_members(n_clients, scenario.malicious_fraction, seed)
        self.is_malicious = np.zeros(n_clients, dtype=bool)
        self.is_malicious[self.malicious] = True
        self.honest = np.flatnonzero(~self.is_malicious)
        n_lying = int(math.ceil(scenario.lying_validator_fraction * n_clients))
        # The lying validators are the malicious trainers plus as many colluding members as needed.
        extra = np.random.default_rng([seed, 11]).permutation(self.honest)[: max(0, n_lying - len(self.malicious))]
        self.lying: set[int] = set(self.malicious.tolist()) | set(extra.tolist()) if n_lying else set()
        self.liar = LyingValidators(adaptive=setup.adaptive_liars)
        self.liars = self.lying | (set(self.malicious.tolist()) if attack.lies_in_scores else set())
        self.train_data, self.val_data = self._data()
        self.pipeline = UpdatePipeline.default(max_norm=setup.clip_norm, frac_bits=setup.frac_bits)
        self.global_params = {k: v.copy() for k, v in initial_params.items()}
        self.previous_aggregate: dict[str, np.ndarray] | None = None
        self.history: dict[int, dict[str, np.ndarray]] = {}
        self.stats = RoundStats()
        self.rng = np.random.default_rng([seed, 17, 0])
        self.chosen: np.ndarray = np.zeros(0, dtype=np.int64)
        self.work: _RoundWork | None = None

    def _data(self) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[tuple[torch.Tensor, np.ndarray]]]:
        """Data as tensors once; malicious members poison theirs once (fixed poisoned share, as in BadNets)."""
        train_data = []
        for c, client in enumerate(self.federation.clients):
            X, y = client.X_train, client.y_train
            if self.is_malicious[c] and self.attack.poisons_data:
                rng = np.random.default_rng([self.seed, 13, c])
                X, y = self.attack.poison_data(X, y, rng=rng, num_classes=self.federation.num_classes)
            train_data.append((torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)), torch.from_numpy(y)))
        val_data = [
            (torch.from_numpy(np.ascontiguousarray(c.X_val, dtype=np.float32)), np.asarray(c.y_val))
            for c in self.federation.clients
        ]
        return train_data, val_data

    def choose(self, r: int) -> np.ndarray:
        """Round ``r``'s members: malicious ones exactly their share of the round."""
        self.rng = np.random.default_rng([self.seed, 17, r])
        per_round = min(self.setup.clients_per_round, len(self.federation.clients))
        mal_per_round = int(round(per_round * len(self.malicious) / len(self.federation.clients)))
        self.chosen = np.concatenate(
            [
                self.rng.choice(self.malicious, mal_per_round, replace=False),
                self.rng.choice(self.honest, per_round - mal_per_round, replace=False),
            ]
        )
        self.work = None
        return self.chosen

    def draw_committee(self, round_id: int, index: int, eligible: list[str]) -> list[str]:
        """An update's validators: ``committee_size`` of the trusted others (all of them when fewer remain)."""
        others = np.array([int(v) for v in eligible], dtype=np.int64)
        seats = min(self.setup.committee_size, len(others))
        return [str(v) for v in np.sort(self.rng.choice(others, seats, replace=False)).tolist()]

    # -- trainers ---------------------------------------------------------------------------

    def round_work(self, ledger: InMemoryLedger, info: RoundInfo) -> _RoundWork:
        """The round's updates: every owner's honest training, the coalition's crafted deltas, the pipeline."""
        if self.work is not None and self.work.r == info.round_id - 1:
            return self.work
        r = info.round_id - 1
        # The ledger refuses commitments from the trainers its trainer reputation distrusts when the round opens.
        owners = [int(c) for c in np.sort(self.chosen) if not ledger.left_out_as_trainer(info.round_id, str(int(c)))]
        work = self.work = _RoundWork(r, owners)
        deltas = self._deltas(r, owners)
        if 2 * r >= self.setup.rounds:
            honest_deltas = [deltas[c] for c in owners if not self.is_malicious[c]]
            self.stats.honest_alignment.extend(alignment_with_others(honest_deltas))
        # The node path: local = global + delta -> pipeline (clip, fixed point), then decode for scoring.
        for c in owners:
            local = {k: (self.global_params[k] + deltas[c][k]).astype(np.float32) for k in self.global_params}
            count = len(self.train_data[c][1])
            if self.is_malicious[c]:
                limit = min(self.setup.max_examples, count) if self.setup.registered_rows else self.setup.max_examples
                count = self.attack.claimed_examples(count, max_examples=limit)
            tensors, _ = self.pipeline.transform(local, self.global_params, num_examples=count)
            work.updates.append(tensors)
            work.counts.append(count)
        return work

    def _deltas(self, r: int, owners: list[int]) -> dict[int, Params]:
        setup, attack, global_params = self.setup, self.attack, self.global_params
        deltas: dict[int, Params] = {}
        for c in owners:
            if self.is_malicious[c] and not attack.needs_training:
                continue
            X, y = self.train_data[c]
            rng = np.random.default_rng([self.seed, 19, r, c])
            local = self.trainer.train(
                global_params, X, y, steps=setup.local_steps, batch_size=setup.batch_size, lr=setup.lr, rng=rng
            )
            deltas[c] = {k: local[k] - global_params[k] for k in local}
        round_malicious = [c for c in owners if self.is_malicious[c]]
        if round_malicious and attack.crafts_updates:
            expected = expected_score(
                self.trainer, global_params, self.pipeline, setup, self.val_data, round_malicious, len(owners),
                [self.seed, 43, r],
            )  # fmt: skip
            ctx = AttackContext(
                global_params,
                r,
                len(round_malicious),
                np.random.default_rng([self.seed, 23, r]),
                num_workers=len(owners),
                clip_norm=setup.clip_norm,
                score=expected,
                score_floor=max(setup.acceptance_threshold, setup.min_mean_score),
                scores_at_median_norm=setup.score_at_median_norm,
            )
            crafted = attack.craft([deltas[c] for c in round_malicious if c in deltas], ctx)
            deltas.update(zip(round_malicious, crafted, strict=True))
        return deltas

    # -- validators ---------------------------------------------------------------------------

    def scores_of(self, ledger: InMemoryLedger, info: RoundInfo, validator: int) -> list[int | None]:
        """What ``validator`` submits: its honest score of each update of its seats, or its lie."""
        work = self.round_work(ledger, info)
        if self.setup.masked_checks:
            if self.setup.masked_reference == "previous":
                return self._masked_scores(ledger, info, work, validator)
            return self._committee_reference_bits(ledger, info, work, validator)
        return self._validated_scores(ledger, info, work, validator)

    def _validated_scores(
        self, ledger: InMemoryLedger, info: RoundInfo, work: _RoundWork, validator: int
    ) -> list[int | None]:
        """A validated round's scores from ``validator``'s seats: honest, or the liars' lies."""
        if work.committees is None:
            work.committees = [[int(v) for v in c] for c in ledger.scorers_of(info.round_id)]
            work.honest_scores = self._honest_scores(work)
            self.record_history(work)
        honest = work.honest_scores
        if honest is None:
            raise ConfigError("the round's honest scores are missing")
        owner_ids = [str(c) for c in work.owners]
        # Whom the liars vouch for: the malicious trainers. Adaptive liars need the whole lying coalition to count
        # their seats on a committee, so they vouch for all of it (the extra colluders' updates are honest).
        colluders = [str(c) for c in (sorted(self.liars) if self.setup.adaptive_liars else self.malicious.tolist())]
        committee_ids = [[str(v) for v in committee] for committee in work.committees]
        submitted: list[int | None] = [None] * len(work.owners)
        for i, committee in enumerate(work.committees):
            if validator not in committee:
                continue
            honest_score = honest[i][committee.index(validator)]
            if validator in self.liars:
                # The validator's whole score vector is what the hook sees; only update i is read here. The
                # lying hooks of fedledger.attacks read which updates a liar scores, not its honest values.
                vector: list[int | None] = [None] * len(work.owners)
                vector[i] = MAX_SCORE // 2 if honest_score is None else honest_score
                scorer = self.liar if validator in self.lying else self.attack
                lied = scorer.scores(vector, owner_ids, colluders, committees=committee_ids)[i]
                submitted[i] = int(lied if lied is not None else 0)
            elif honest_score is None:
                raise ConfigError(f"validator {validator} has no honest score of update {i}")
            else:
                submitted[i] = honest_score
        return submitted

    def _masked_scores(
        self, ledger: InMemoryLedger, info: RoundInfo, work: _RoundWork, validator: int
    ) -> list[int | None]:
        """Under masked checks the committee's pass bit decides: every seat carries it (full score or zero)."""
        if work.committees is None or work.masked_pass is None:
            work.committees = [[int(v) for v in c] for c in ledger.scorers_of(info.round_id)]
            setup = self.setup
            work.masked_pass = masked_decisions(
                work.updates, self.previous_aggregate, clip_norm=setup.clip_norm,
                min_cosine=setup.masked_min_cosine, frac_bits=setup.frac_bits,
            )  # fmt: skip
        passed = work.masked_pass
        return [(MAX_SCORE if passed[i] else 0) if validator in c else None for i, c in enumerate(work.committees)]

    def _committee_reference_bits(
        self, ledger: InMemoryLedger, info: RoundInfo, work: _RoundWork, validator: int
    ) -> list[int | None]:
        """Masked checks against the committee's own references: each seat's bit is the norm bound and its trust
        score (its cosine with its own reference update) at least the minimum cosine's; what a lying seat submits
        is its lie, read as a bit. The contract's median of the seats is their majority. The MPC
        (:mod:`fedledger.privacy.masked_reference`) votes on the cosine of the update's and the reference's ``k = 256``
        random projections, an estimate of the exact cosine used here (they differ only near the threshold); computing
        that sketch exactly in clear for every member-round would cost ``d k`` integer products per update and seat."""
        if work.masked_pass is None:
            setup = self.setup
            work.masked_pass = masked_decisions(
                work.updates, None, clip_norm=setup.clip_norm, min_cosine=None, frac_bits=setup.frac_bits
            )
        within_bound = work.masked_pass
        floor = MAX_SCORE // 2 + int(round(MAX_SCORE // 2 * (self.setup.masked_min_cosine or 0.0)))
        seats = self._validated_scores(ledger, info, work, validator)
        return [
            None if score is None else (MAX_SCORE if within_bound[i] and score >= floor else 0)
            for i, score in enumerate(seats)
        ]

    def _honest_scores(self, work: _RoundWork) -> list[list[int | None]]:
        setup, committees = self.setup, work.committees or []
        if setup.scoring == "trust":
            # Liars' own references would be a third of the setting's training; their honest scores are unread
            # (but for adaptive liars, which submit them wherever they are a minority).
            unread = self.liars - self.lying if setup.adaptive_liars else self.liars
            center_over = work.owners if setup.center_scores else None
            return trust_committee_scores(
                self.trainer, self.global_params, work.updates, committees, self.val_data, setup,
                [self.seed, 41, work.r], skip=unread, center_over=center_over,
            )  # fmt: skip
        # What validators score: the update at full weight, or at its weight 1/k in the round's mean.
        divisor = len(work.updates) if setup.score_weight == "round" else 1
        scored_updates = work.updates
        if setup.score_at_median_norm:
            decoded = [DecodedUpdate(u, 1, "fixed64", setup.frac_bits, {}) for u in work.updates]
            scored_updates = [d.tensors for d in at_median_norm(decoded)]
        candidates = [
            apply_update(self.global_params, scaled_update(u, divisor), frac_bits=setup.frac_bits)
            for u in scored_updates
        ]
        scored = committee_scores(
            self.trainer, self.global_params, candidates, committees, self.val_data, scoring=setup.scoring
        )
        honest: list[list[int | None]] = [list(row) for row in scored]
        return centered_per_validator(honest, committees) if setup.center_scores else honest

    def record_history(self, work: _RoundWork) -> None:
        """Each owner's running sum of its updates (rules that read a member's history), once per round."""
        if work.history_recorded or not AGGREGATION_RULES[self.scenario.rule].accepts_history:
            return
        work.history_recorded = True
        for i, c in enumerate(work.owners):
            old = self.history.get(c)
            self.history[c] = {k: (old[k] + v if old else v.copy()) for k, v in work.updates[i].items()}

    # -- aggregator ---------------------------------------------------------------------------

    def aggregate(self, ledger: InMemoryLedger, info: RoundInfo) -> None:
        """The rule under test over the accepted updates; proposed (the round finalizes) unless the rule fails."""
        work = self.round_work(ledger, info)
        self.record_history(work)
        accepted, setup, rule = info.accepted, self.setup, self.scenario.rule
        spec = AGGREGATION_RULES[rule]
        kwargs: dict[str, Any] = {}
        if spec.needs_reference:
            # FLTrust's trusted root data: the validation data of one honest member drawn per round.
            root = int(self.rng.choice(self.honest))
            Xr, yr = self.val_data[root]
            ref_local = self.trainer.train(
                self.global_params, Xr, torch.from_numpy(yr), steps=setup.local_steps, batch_size=setup.batch_size,
                lr=setup.lr, rng=np.random.default_rng([self.seed, 29, work.r]),
            )  # fmt: skip
            kwargs["reference"], _ = self.pipeline.transform(ref_local, self.global_params, num_examples=len(yr))
        if spec.accepts_center and setup.center_previous and self.previous_aggregate is not None:
            kwargs["center"] = self.previous_aggregate
        if spec.accepts_history:
            kwargs["history"] = [self.history[work.owners[i]] for i in accepted]
        params = rule_params(
            rule, len(accepted), self.scenario.malicious_fraction, setup.clip_norm, tau_fraction=setup.tau_fraction
        )
        try:
            if setup.masked_checks and setup.masked_clip_levels:  # the committee's clipping, projections per round
                delta, _ = masked_clipped_delta(
                    [work.updates[i] for i in accepted], [work.counts[i] for i in accepted], self.previous_aggregate,
                    setup=setup, seed=hashlib.sha256(f"masked-clipping/{self.seed}/{work.r}".encode()).digest(),
                )  # fmt: skip
            else:
                delta = aggregate(
                    rule,
                    [work.updates[i] for i in accepted],
                    [work.counts[i] for i in accepted],
                    frac_bits=setup.frac_bits,
                    params=params,
                    clip_to_median_norm=setup.clip_to_median_norm,
                    lift_to_median_norm=setup.lift_to_median_norm,
                    # The cap comes from every update of the round, accepted or not (as the ledger's aggregators do).
                    example_cap=median_example_cap(work.counts) if setup.cap_examples_to_median else None,
                    **kwargs,
                ).delta
        except AggregationError as exc:
            self.stats.rule_errors.append(f"round {work.r}: {exc}")
            return  # no proposal: the round aborts at its deadline, the model stays
        self.previous_aggregate = delta
        self.global_params = apply_update(self.global_params, delta, frac_bits=setup.frac_bits)
        ledger.propose_aggregate(info.round_id, f"round-{info.round_id}", info.accepted_mask)

    def count_round(self, ledger: InMemoryLedger, round_id: int) -> None:
        """The round's outcome in the run's statistics, read from the ledger once the round is over."""
        work = self.work
        if work is None or work.r != round_id - 1 or work.committees is None:
            return
        stats, threshold = self.stats, self.setup.acceptance_threshold
        for i, committee in enumerate(work.committees):
            stats.committees += 1
            stats.lying_majorities += 2 * len(self.liars.intersection(committee)) > len(committee)
            outcome = verdict(ledger.scores_of(round_id, i), threshold, self.setup.min_approvals)
            if outcome.score is not None:
                owner_malicious = self.is_malicious[work.owners[i]]
                (stats.malicious_medians if owner_malicious else stats.honest_medians).append(outcome.score)
            if self.is_malicious[work.owners[i]]:
                stats.malicious_submitted += 1
                stats.malicious_accepted += int(outcome.accepted)
            else:
                stats.honest_submitted += 1
                stats.honest_accepted += int(outcome.accepted)


@dataclass
class _Member:
    """Member ``client`` of the federation (trainer when drawn, validator always), its work the scenario's."""

    client: int
    sim: _Scenario
    ledger: InMemoryLedger
    trains: bool = True
    refusals: dict[int, Any] = field(default_factory=dict)
    left_out: set[int] = field(default_factory=set)
    left_out_as_trainer: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return str(self.client)

    @property
    def address(self) -> str:
        return str(self.client)

    @property
    def trainer_reputation(self) -> bool:
        return bool(self.sim.setup.max_rejection or self.sim.setup.min_mean_score)

    def train_and_commit(self, info: RoundInfo) -> None:
        work = self.sim.round_work(self.ledger, info)
        i = work.owners.index(self.client)
        self.ledger.commit_update(info.round_id, f"update-{info.round_id}-{self.client}", work.counts[i])

    def score(self, info: RoundInfo) -> None:
        self.ledger.submit_scores(info.round_id, self.sim.scores_of(self.ledger, info, self.client))

    def aggregate(self, info: RoundInfo) -> None:
        raise ConfigError(f"member {self.client} has no aggregator role in the simulation")


@dataclass
class _Operator(_Member):
    """Opens the rounds and aggregates; holds no data."""

    trains: bool = False

    @property
    def name(self) -> str:
        return OPERATOR

    @property
    def address(self) -> str:
        return OPERATOR

    def aggregate(self, info: RoundInfo) -> None:
        self.sim.aggregate(self.ledger, info)


def _ledger(sim: _Scenario) -> InMemoryLedger:
    setup, n = sim.setup, len(sim.federation.clients)
    params = TaskParams(
        config_hash=f"robustness-{sim.scenario.rule}-{sim.scenario.attack}",
        initial_model="initial",
        min_commitments=1,
        acceptance_threshold=setup.acceptance_threshold,
        proposal_quorum=1,
        max_rounds=setup.rounds,
        committee_size=setup.committee_size,
        max_disagreement=setup.max_disagreement,
        reputation_warmup=setup.reputation_warmup,
        max_rejection=setup.max_rejection,
        min_mean_score=setup.min_mean_score,
        min_approvals=setup.min_approvals,
    )
    roles = {str(c): int(Role.VALIDATOR) for c in range(n)} | {OPERATOR: int(Role.AGGREGATOR | Role.ADMIN)}
    return InMemoryLedger(params, roles, draw_committee=sim.draw_committee)


def _run_round(ledger: InMemoryLedger, engines: list[RoundEngine[Any]], round_id: int) -> None:
    """Step every member's engine until round ``round_id`` is over, moving the clock past deadlines."""
    while True:
        acted = [engine.step() for engine in engines]
        info = ledger.round(round_id) if ledger.current_round >= round_id else None
        if info is not None and info.phase in CLOSED:
            return
        if not any(acted) and info is not None:
            deadline = phase_deadline(info)
            if deadline is None:
                raise ConfigError(f"simulated round {round_id} is stuck in {info.phase.name}")
            ledger.advance_time(deadline - ledger.now + 1)


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
    sim = _Scenario(federation, setup, scenario, attack, trainer, initial_params)
    ledger = _ledger(sim)
    members = [_Operator(-1, sim, ledger.as_(OPERATOR))]
    members += [_Member(c, sim, ledger.as_(str(c))) for c in range(len(federation.clients))]
    engines: list[RoundEngine[Any]] = []
    for m in members:
        mode = ValidatedRounds(m.ledger, m, _no_events)
        engines.append(RoundEngine(m.ledger, mode, name=m.name, rounds=setup.rounds, emit=_no_events, wall_clock=None))
    with _quiet_nodes():
        _run_rounds(sim, ledger, engines, on_round)
    return _result(sim, ledger, probe, time.perf_counter() - start, time.process_time() - start_cpu)


@contextmanager
def _quiet_nodes() -> Iterator[None]:
    """Members left out of a committee log it as a warning (worth seeing on a node); here it is every round."""
    logger = logging.getLogger("fedledger.node")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _run_rounds(
    sim: _Scenario,
    ledger: InMemoryLedger,
    engines: list[RoundEngine[Any]],
    on_round: Callable[[int, Params], None] | None,
) -> None:
    """Every round: its members drawn and made trainers, the round run, its outcome counted."""
    federation = sim.federation
    for r in range(sim.setup.rounds):
        for c in range(len(federation.clients)):
            ledger.set_roles(str(c), int(Role.VALIDATOR))
        for c in sim.choose(r):
            ledger.set_roles(str(int(c)), int(Role.TRAINER | Role.VALIDATOR))
        _run_round(ledger, engines, r + 1)
        if sim.work is not None and sim.work.r == r:
            sim.record_history(sim.work)
        sim.count_round(ledger, r + 1)
        if on_round is not None:
            on_round(r, sim.global_params)


def _no_events(action: str, round_id: int, **details: Any) -> None:
    """The simulation keeps no event log: its statistics come from the ledger."""


def _result(
    sim: _Scenario, ledger: InMemoryLedger, probe: tuple[PixelTrigger, int] | None, seconds: float, cpu: float
) -> RunResult:
    federation, trainer, global_params, stats = sim.federation, sim.trainer, sim.global_params, sim.stats
    X_test = torch.from_numpy(np.ascontiguousarray(federation.X_test, dtype=np.float32))
    correct = trainer.predict(global_params, X_test) == federation.y_test
    per_group = None
    if federation.test_groups is not None:
        groups = federation.test_groups
        per_group = float(np.mean([1 - correct[groups == g].mean() for g in np.unique(groups)]))
    backdoor = flips = None
    planted = find_trigger(sim.attack)
    trigger = planted or probe
    if trigger is not None:

        def predict(X: np.ndarray) -> np.ndarray:
            return trainer.predict(global_params, torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)))

        test = (predict, federation.X_test, federation.y_test)
        backdoor = backdoor_success_rate(*test, trigger=trigger[0], target_label=trigger[1])
        flips = backdoor_success_rate(*test, trigger=trigger[0], target_label=trigger[1], flips_only=True)
    reputation, trainers = ledger.validator_reputation, ledger.trainer_reputation
    honest_validators = [str(int(c)) for c in sim.honest if int(c) not in sim.liars]
    liars = [str(c) for c in sorted(sim.liars)]
    attackers = [str(c) for c in set(sim.malicious.tolist()) - sim.liars]  # malicious trainers scoring honestly
    return RunResult(
        sim.scenario,
        float(1 - correct.mean()),
        backdoor,
        stats.honest_accepted / max(1, stats.honest_submitted),
        stats.malicious_accepted / stats.malicious_submitted if stats.malicious_submitted else None,
        seconds,
        stats.rule_errors,
        per_group,
        cpu,
        planted is not None,
        honest_medians=stats.honest_medians,
        malicious_medians=stats.malicious_medians,
        backdoor_flips=flips,
        liar_disagreement=disagreement(reputation, liars),
        honest_disagreement=disagreement(reputation, honest_validators),
        distrusted_liars=sum(reputation.distrusted(v) for v in liars),
        distrusted_honest=sum(reputation.distrusted(v) for v in honest_validators),
        distrusted_attackers=sum(reputation.distrusted(v) for v in attackers),
        distrusted_honest_trainers=sum(trainers.distrusted(str(int(c))) for c in sim.honest),
        distrusted_malicious_trainers=sum(trainers.distrusted(str(int(c))) for c in sim.malicious),
        num_liars=len(sim.liars),
        num_attackers=len(attackers),
        lying_majority=stats.lying_majorities / stats.committees if sim.liars and stats.committees else None,
        honest_alignment=float(np.mean(stats.honest_alignment)) if stats.honest_alignment else None,
        malicious_submitted=stats.malicious_submitted,
    )
