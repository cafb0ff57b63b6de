"""Test error of the global model after every round, for a few cells of the robustness benchmark.

Why: the benchmark's target compares the last round's test error of a defence with attack-free FedAvg's,
within 0.02. With 10 non-IID members per round the last round alone moves the error by several hundredths
(whichever labels the round's members over-represent), so a final error tells apart a defence and a noisy
round only over many seeds. This prints each cell's whole trajectory, the same runs as
``benchmarks/robustness.py`` (same seeds, same draws), so one can see which it is:

    python benchmarks/robustness_trajectory.py --seed 2 --rounds 40 fedavg:none centered-clipping:free-rider

Each argument is ``rule:attack``; ``--malicious`` and ``--lying`` set the shares as in the benchmark's settings,
``--committee`` the validators per update. benchmarks/results/robustness.md quotes the output (run 16).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from robustness import FMNIST_FULL, backdoor_probe, build_attack, fmnist_context
from robustness_lib import simulation
from robustness_lib.data import find_fashion_mnist
from robustness_lib.models import LocalTrainer, build_model

from fedledger.exceptions import FedLedgerError
from fedledger.learning.params import Params


def trajectory(args: argparse.Namespace, rule: str, attack: str) -> tuple[list[float], simulation.RunResult]:
    """The test error after every round of one cell, and the cell's result."""
    setup = replace(FMNIST_FULL, rounds=args.rounds, committee_size=args.committee or FMNIST_FULL.committee_size)
    context, _ = fmnist_context(find_fashion_mnist(args.data_dir), setup, args.seed)
    trainer = LocalTrainer(build_model(setup.model, seed=0))  # as the benchmark's workers build theirs
    federation = context.federation
    X_test = torch.from_numpy(np.ascontiguousarray(federation.X_test, dtype=np.float32))
    errors: list[float] = []

    def record(_: int, params: Params) -> None:
        errors.append(float((trainer.predict(params, X_test) != federation.y_test).mean()))

    scenario = simulation.Scenario(rule, attack, args.malicious, args.lying, args.seed)
    result = simulation.run_scenario(
        federation,
        setup,
        scenario,
        build_attack(attack, federation.num_classes),
        trainer,
        context.initial,
        probe=backdoor_probe(federation.num_classes, tabular=False),
        on_round=record,
    )
    return errors, result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cells", nargs="+", metavar="RULE:ATTACK")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=FMNIST_FULL.rounds)
    parser.add_argument("--malicious", type=float, default=0.2)
    parser.add_argument("--lying", type=float, default=0.0)
    parser.add_argument("--committee", type=int)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print(f"# Test error after every round (seed {args.seed}, {args.malicious:g} malicious, {args.lying:g} lying)\n")
    print("| rule:attack | accepted honest / malicious | " + " | ".join(map(str, range(1, args.rounds + 1))) + " |")
    print("|---|---|" + "---:|" * args.rounds)
    jumps = {}
    try:
        for cell in args.cells:
            rule, _, attack = cell.partition(":")
            errors, result = trajectory(args, rule, attack or "none")
            malicious = "–" if result.malicious_acceptance is None else f"{result.malicious_acceptance:.2f}"
            print(
                f"| {cell} | {result.honest_acceptance:.2f} / {malicious} | "
                + " | ".join(f"{e:.3f}" for e in errors)
                + " |",
                flush=True,
            )
            late = errors[len(errors) // 2 :]
            jumps[cell] = statistics.fmean(abs(b - a) for a, b in zip(late, late[1:], strict=False))
    except FedLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        "\nMean absolute change of the test error from one round to the next over the second half: "
        + ", ".join(f"{cell} {jump:.3f}" for cell, jump in jumps.items())
        + "."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
