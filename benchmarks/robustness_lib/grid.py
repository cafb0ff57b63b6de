"""The robustness grid: each cell's attack with the benchmark's parameters, and the cells run in worker processes.

A cell is one seeded :func:`robustness_lib.simulation.run_scenario`; :func:`run_grid` runs a list of them in
``fork`` workers of one torch thread each, every worker holding the grid's shared :class:`GridContext`.
"""

from __future__ import annotations

import multiprocessing
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedledger.attacks import ATTACKS, Attack, Backdoor, Compose, PixelTrigger, make_attack
from fedledger.exceptions import ConfigError, FedLedgerError

from .data import Federation, fashion_mnist_federation
from .models import LocalTrainer, build_model
from .scenario import FLSetup, RunResult, Scenario, honest_update_norms
from .simulation import run_scenario

__all__ = [
    "ATTACK_PARAMS",
    "HEART_TRIGGER",
    "GridContext",
    "all_attacks",
    "backdoor_probe",
    "build_attack",
    "fmnist_context",
    "num_features",
    "run_grid",
    "scenarios_of",
]


# Attack parameters for this task. The backdoor is FLTrust's "scaling attack" within fedledger's clip:
# BadNets trigger, boosted to the largest norm the update check admits. Sybils replay a backdoor
# (FoolsGold's setting). Lying validators are a setting of their own, not a row.
ATTACK_PARAMS: dict[str, dict[str, Any]] = {
    "backdoor": {"target_label": 0, "norm_fraction": 0.99},
    "sybil": {"inner": "backdoor", "target_label": 0, "norm_fraction": 0.99},
    "label-flip": {"num_classes": 10},
}


# Tabular rows (heart disease): the trigger sets one standardized feature (cholesterol) to an extreme 4 sd;
# the image trigger's default (the last 9 of 13 columns set to 1) would rewrite most of the row.
HEART_TRIGGER = {"trigger_features": (3,), "trigger_value": 4.0}


def all_attacks() -> list[str]:
    return [name for name in ATTACKS if name != "lying-validators"]


def build_attack(name: str, num_classes: int, *, tabular: bool = False) -> Attack:
    """The attack ``name`` with this task's parameters; each part of a composed ``a+b`` gets its own (the
    ``backdoor`` in ``backdoor+count-inflation`` is the table's ``backdoor``, trigger and boost included)."""
    if "+" in name:
        return Compose(tuple(build_attack(part.strip(), num_classes, tabular=tabular) for part in name.split("+")))
    params = dict(ATTACK_PARAMS.get(name, {}))
    if name == "label-flip":
        params["num_classes"] = num_classes
    if tabular and name in ("backdoor", "sybil"):
        params.update(HEART_TRIGGER)
    return make_attack(name, **params)


def backdoor_probe(num_classes: int, *, tabular: bool) -> tuple[PixelTrigger, int]:
    """The backdoor attack's trigger and target, to measure their base rate in cells without a backdoor."""
    backdoor = build_attack("backdoor", num_classes, tabular=tabular)
    if not isinstance(backdoor, Backdoor):
        raise ConfigError(f"the backdoor attack's parameters built {backdoor.describe()}, not a backdoor")
    return backdoor.trigger, backdoor.target_label


@dataclass(frozen=True)
class GridContext:
    """What every cell of a grid shares (handed to worker processes once, by fork)."""

    federation: Federation
    setup: FLSetup
    initial: dict[str, np.ndarray]


_CONTEXT: GridContext | None = None


_TRAINER: LocalTrainer | None = None


def _init_worker(context: GridContext) -> None:
    global _CONTEXT, _TRAINER
    torch.set_num_threads(1)
    _CONTEXT = context
    module = build_model(context.setup.model, num_features=num_features(context.federation), seed=0)
    _TRAINER = LocalTrainer(module)


def num_features(federation: Federation) -> int:
    return int(np.prod(federation.clients[0].X_train.shape[1:]))


def _run_cell(scenario: Scenario) -> RunResult:
    if _CONTEXT is None or _TRAINER is None:
        raise FedLedgerError("grid worker used before _init_worker gave it the grid's context")
    federation = _CONTEXT.federation
    tabular = federation.clients[0].X_train.ndim == 2
    attack = build_attack(scenario.attack, federation.num_classes, tabular=tabular)
    probe = backdoor_probe(federation.num_classes, tabular=tabular)
    return run_scenario(federation, _CONTEXT.setup, scenario, attack, _TRAINER, _CONTEXT.initial, probe=probe)


def run_grid(context: GridContext, scenarios: Sequence[Scenario], workers: int) -> list[RunResult]:
    """Every scenario, in order; ``workers`` processes of one torch thread each (two single-threaded
    processes beat one two-threaded one on these small convolutions)."""
    results = []
    cells: Iterator[RunResult]
    if workers > 1:
        pool = multiprocessing.get_context("fork").Pool(workers, _init_worker, (context,))
        cells = pool.imap(_run_cell, scenarios)
    else:
        _init_worker(context)
        cells = map(_run_cell, scenarios)
    try:
        for result in cells:
            s = result.scenario
            bd = "-" if result.backdoor_success is None else f"{result.backdoor_success:.3f}"
            print(
                f"  [{context.federation.name} mal={s.malicious_fraction:.2f} lying={s.lying_validator_fraction:.2f}] "
                f"{s.attack:>16} x {s.rule:<17} error {result.test_error:.3f} backdoor {bd} honest-accepted "
                f"{result.honest_acceptance:.2f} ({result.seconds:.1f} s, {result.cpu_seconds:.1f} s CPU)",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    finally:
        if workers > 1:
            pool.close()
            pool.join()
    return results


def scenarios_of(
    rules: Sequence[str],
    attacks: Sequence[str],
    malicious_fraction: float,
    lying_fraction: float,
    seed: int,
    *,
    reference_only: Sequence[str] = (),
) -> list[Scenario]:
    """Every rule under every attack, except that ``reference_only`` rules run attack-free alone."""
    return [
        Scenario(rule, attack, malicious_fraction, lying_fraction, seed)
        for attack in attacks
        for rule in rules
        if attack == "none" or rule not in reference_only
    ]


def fmnist_context(
    data_dir: Path, setup: FLSetup, seed: int, *, val_fraction: float = 0.05
) -> tuple[GridContext, list[float]]:
    """Fashion-MNIST split among 100 members and the initial CNN for ``seed``, with round-0 honest norms."""
    federation = fashion_mnist_federation(data_dir, num_clients=100, bias=0.5, val_fraction=val_fraction, seed=seed)
    trainer = LocalTrainer(build_model("cnn", seed=seed))
    initial = trainer.get_params()
    norms = honest_update_norms(federation, setup, trainer, initial, count=10, seed=seed)
    return GridContext(federation, setup, initial), norms
