"""The robustness grid's arm for secure rounds with masked validity checks, beside validated rounds.

``benchmarks/robustness.py --masked`` runs, after each setting without lying validators, the same attacks in secure
rounds: nobody sees an update, the committee's pass bit (:mod:`robustness_lib.masked_checks`) is the acceptance,
and the accepted updates are summed (FedAvg), or with ``--masked-clipping`` clipped around the previous aggregate
by the committee (centered clipping in the MPC: :mod:`fedledger.privacy.masked_clipping`). Its column is printed beside
the validated rounds' columns of the same setting and seeds, and held to the same target against the same attack-free
FedAvg reference. There are no validator reputations, no per-update norms and no example caps in this arm, as a
secure task's config refuses them.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from .grid import GridContext, run_grid, scenarios_of
from .report import Target, check_target, mean_over_seeds, results_table
from .scenario import FLSetup, RunResult
from .setups import SETTINGS

__all__ = ["MASKED_COLUMN", "masked_section", "masked_setup"]

MASKED_COLUMN = "secure+masked"
"""The arm's column in the tables (its rule is FedAvg)."""


def masked_setup(
    setup: FLSetup, min_cosine: float | None, reference: str = "previous", clip_levels: int = 0
) -> FLSetup:
    """``setup`` as a secure task with masked checks: acceptance by the pass bit, nothing per update beyond it (with
    ``clip_levels``, the committee's centered clipping of the passing updates)."""
    return replace(
        setup,
        masked_checks=True,
        masked_min_cosine=min_cosine,
        masked_reference=reference,
        masked_clip_levels=clip_levels,
        scoring="trust",
        acceptance_threshold=5_000,
        min_approvals=0,
        max_disagreement=0,
        max_rejection=0,
        min_mean_score=0,
        clip_to_median_norm=False,
        lift_to_median_norm=False,
        score_at_median_norm=False,
        center_scores=False,
        cap_examples_to_median=False,
    )


def masked_section(
    args: argparse.Namespace,
    contexts: Sequence[GridContext],
    seeds: Sequence[int],
    settings: Sequence[int],
    grid: tuple[Sequence[str], Sequence[str]],
    target: Target,
    validated: dict[str, Any],
) -> dict[str, Any]:
    """Every chosen setting without lying validators, in secure rounds with masked checks; tables and target checks
    printed beside ``validated`` (the raw results of the same settings in validated rounds)."""
    rules, attacks = grid
    raw: dict[str, Any] = {
        "min_cosine": args.masked_min_cosine,
        "reference": args.masked_reference,
        "clip_levels": args.masked_clipping,
        "settings": {},
    }
    reference_name = (
        "the previous round's aggregate"
        if args.masked_reference == "previous"
        else ("each committee seat's own update on its validation data")
    )
    clipping = (
        f"centered clipping of the passing updates around the previous aggregate, radius {context_tau(contexts)}, "
        f"clip factors in steps of 1/{args.masked_clipping}"
        if args.masked_clipping
        else "plain sum of the passing updates"
    )
    for number in settings:
        setting = SETTINGS[number - 1]
        if setting.lying_fraction:
            continue  # the arm has no validators to lie
        per_seed = []
        for context, seed in zip(contexts, seeds, strict=True):
            arm = masked_setup(context.setup, args.masked_min_cosine, args.masked_reference, args.masked_clipping)
            context = replace(context, setup=arm)
            scenarios = scenarios_of(["fedavg"], attacks, setting.malicious_fraction, 0.0, seed)
            cells = run_grid(context, scenarios, args.workers)
            per_seed.append([replace(r, scenario=replace(r.scenario, rule=MASKED_COLUMN)) for r in cells])
        masked = per_seed[0] if len(seeds) == 1 else mean_over_seeds(per_seed)
        body = validated.get(setting.title, {})
        validated_runs = [RunResult.from_json(row) for row in body.get("results", [])]
        by_seed = [[r for r in validated_runs if r.scenario.seed == seed] for seed in seeds]
        shown = (by_seed[0] if len(seeds) == 1 else mean_over_seeds(by_seed)) if validated_runs else []
        reference = float(
            body.get("reference_error", next(r.test_error for r in masked if r.scenario.attack == "none"))
        )
        print(f"\n### {setting.title}: validated rounds beside secure rounds with masked checks\n")
        print(results_table([*shown, *masked], [*rules, MASKED_COLUMN], attacks))
        (check,) = check_target(masked, [MASKED_COLUMN], reference, target)
        misses = "; ".join(check.failures) if check.failures else "none"
        print(
            f"\nSecure rounds with masked checks (L2 bound: the clip norm; minimum cosine with {reference_name}: "
            f"{args.masked_min_cosine}; {clipping}) against the attack-free FedAvg reference {reference:.3f}: "
            f"{'meets' if check.meets else 'misses'} the target (misses: {misses}). Malicious updates accepted: "
            + ", ".join(
                f"{r.scenario.attack} {r.malicious_acceptance:.2f}"
                for r in masked
                if r.malicious_acceptance is not None
            )
            + "; honest accepted: "
            + ", ".join(f"{r.scenario.attack} {r.honest_acceptance:.2f}" for r in masked)
            + "."
        )
        raw["settings"][setting.title] = {
            "reference_error": reference,
            "meets_target": check.meets,
            "results": [r.to_json() for runs in per_seed for r in runs],
        }
    return raw


def context_tau(contexts: Sequence[GridContext]) -> str:
    """Centered clipping's radius in the runs' units (the clip norm times ``tau_fraction``)."""
    setup = contexts[0].setup
    return f"{setup.clip_norm * setup.tau_fraction:g}"
