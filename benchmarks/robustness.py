"""Robustness of fedledger's acceptance rule plus aggregation rules, in FLTrust's setup.

Reproduces the setting of Cao, Fang, Liu, Gong, "FLTrust: Byzantine-robust Federated Learning via
Trust Bootstrapping", NDSS 2021, on Fashion-MNIST: 100 members, non-IID with bias 0.5 (Fang et
al.'s split), 20 % malicious, a small CNN; every attack of :data:`fedledger.attacks.ATTACKS`
against every rule of :data:`fedledger.learning.aggregation.AGGREGATION_RULES`, then the same
with 30 % malicious and with a third of the validators lying (colluding validators that vouch for
the malicious updates and sink the honest ones), there with committees of 21 validators per update and
checked against FedAvg with nobody attacking and nobody lying. Then the four-hospital heart-disease set
(FLamby's Fed-Heart-Disease) with one hospital of four malicious.

Each cell is one seeded run of :func:`robustness_lib.simulation.run_scenario` (chain-less, on
fedledger's own update pipeline, scoring, median acceptance and aggregation code; see that
module for why there is no chain). It prints the configuration, one markdown table per setting
(test error / backdoor success), the attack-free FedAvg reference, which rules meet the issue's
target and the recommended default rule.

    python benchmarks/robustness.py --quick          # a few minutes: 4 rules x 5 attacks, 20 % only
    nice -n 10 python benchmarks/robustness.py --json robustness.json   # the full grid
    python benchmarks/robustness.py --quick --settings 1,2,3 --seeds 0,1,2 --rules fedavg,fltrust-median

With ``--seeds`` every cell runs once per seed and the tables show mean ± sample sd (one seed's error moves
by about ±0.03, more than the target's 0.02 margin). ``--committee``, ``--scoring``, ``--threshold`` and
``--score-weight`` change the validation consensus (committee size, scoring rule, acceptance threshold,
whether validators score an update alone or at its weight 1/k in the round's mean). ``--report A.json
B.json`` prints the tables and a cross-setting recommendation from earlier ``--json`` files, no training.

Sizing. Every (attack, rule, setting) cell retrains from scratch, so the grid's cost is cells x rounds
x members per round. On the 2-core development machine a 20-round cell of 10 members per round (5 local
SGD steps of 32 images each, trust scoring by committees of three, aggregation, a 10,000-image test)
measured about 12 s of CPU (run 14 of benchmarks/results/robustness.md); with committees of 21 and a third lying, about
twice that (each honest validator of a round trains its trust reference once). The full grid is 14
rows (13 attacks and none) x 11 rules x 3 settings = 462 such cells plus 14 x 11 x 5 seeds = 770 heart-disease
cells of about 0.5 s each (``count-inflation`` runs on heart disease only by default, ``sybil`` on Fashion-MNIST
only: :data:`HEART_ONLY_ATTACKS`; wall times in
benchmarks/results/robustness.md, runs 14 and 17; run 21: the complete default grid, then with one heart seed, in 54.9
min on two
cores; run 26a, with five heart seeds, in 59.7 min; run 28a, after run 27a's faster CNN step, in 52.9 min; run 33e,
with the score-aware attack in every section, in 55.9 min); every cell's CPU seconds are printed and written to
``--json``.
FLTrust trains for thousands of iterations with all 100 members per round: our models are therefore less
accurate, and the target is relative (error within 0.02 of attack-free FedAvg trained the same way).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from robustness_lib.cli import build_parser, chosen_rules_and_attacks
from robustness_lib.data import Federation, find_fashion_mnist, heart_disease_federation
from robustness_lib.grid import (
    ATTACK_PARAMS,
    HEART_TRIGGER,
    GridContext,
    backdoor_probe,
    build_attack,
    fmnist_context,
    num_features,
    run_grid,
    scenarios_of,
)
from robustness_lib.masked_arm import masked_section
from robustness_lib.models import LocalTrainer, build_model
from robustness_lib.report import (
    Target,
    TargetCheck,
    check_target,
    lying_majority_probability,
    mean_over_seeds,
    print_setting,
    recommend,
    results_table,
)
from robustness_lib.scenario import FLSetup, RunResult, Scenario, malicious_members
from robustness_lib.setups import (
    CELL_LEGEND,
    FMNIST_FULL,
    FMNIST_QUICK,
    HEART,
    HEART_ONLY_ATTACKS,
    HEART_RULE,
    LYING_COMMITTEE,
    SETTINGS,
    Setting,
    profile_rule,
    profile_setup,
)
from robustness_lib.simulation import run_scenario
from sklearn.linear_model import LogisticRegression

from fedledger.exceptions import FedLedgerError
from fedledger.federation.config import ledger_rules
from fedledger.learning.aggregation import AGGREGATION_RULES

__all__ = [  # what robustness_trajectory.py and the tests use of this script
    "FMNIST_FULL",
    "HEART",
    "HEART_RULE",
    "LYING_COMMITTEE",
    "SETTINGS",
    "backdoor_probe",
    "build_attack",
    "fmnist_context",
    "ledger_checks",
    "main",
    "profile_rule",
    "profile_setup",
    "run_without_malicious",
    "scenarios_of",
]

REPO = Path(__file__).resolve().parent.parent


def setup_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The setup fields the command line sets (None: the setup's own value)."""
    return {
        "rounds": args.rounds,
        "scoring": args.scoring,
        "acceptance_threshold": args.threshold,
        "score_weight": args.score_weight,
        "center_previous": False if args.zero_center else None,
        "tau_fraction": args.tau,
        "clip_to_median_norm": args.clip_to_median_norm,
        "lift_to_median_norm": args.lift_to_median_norm,
        "score_at_median_norm": args.score_at_median_norm,
        "center_scores": args.center_scores,
        "cap_examples_to_median": args.cap_examples_to_median,
        "registered_rows": args.registered_rows,
        "max_disagreement": args.max_disagreement,
        "reputation_warmup": args.reputation_warmup,
        "max_rejection": args.max_rejection,
        "min_mean_score": args.min_mean_score,
        "min_approvals": args.min_approvals,
        "adaptive_liars": args.adaptive_liars or None,
    }


HEART_OVERRIDES = (
    "scoring",
    "acceptance_threshold",
    "score_weight",
    "clip_to_median_norm",
    "lift_to_median_norm",
    "score_at_median_norm",
    "center_scores",
    "cap_examples_to_median",
    "registered_rows",
    "max_disagreement",
    "reputation_warmup",
    "max_rejection",
    "min_mean_score",
    "min_approvals",
)
"""The fields of :func:`setup_overrides` that apply to the heart-disease section too (the task settings)."""


def heart_section(
    args: argparse.Namespace, rules: Sequence[str], attacks: Sequence[str], target: Target
) -> dict[str, Any]:
    seeds = [int(x) for x in args.heart_seeds.split(",")]
    overrides = {k: v for k, v in setup_overrides(args).items() if k in HEART_OVERRIDES and v is not None}
    setup = replace(HEART, **overrides)
    heart_attacks = [a for a in attacks if a != "sybil"]
    print("\n## Fed-Heart-Disease (4 hospitals, logistic regression)\n")
    print(
        f"Configuration: {json.dumps(asdict(setup))}; one hospital of four malicious (25 %); "
        f"seed(s) {', '.join(map(str, seeds))} (each its own validation split, initial model and malicious hospital)."
    )
    per_seed, pooled_accuracy, pooled_means, left_out = [], [], [], []
    for seed in seeds:
        federation, pooled = heart_disease_federation(args.shared_dir / "heart-disease", val_fraction=0.2, seed=seed)
        initial = LocalTrainer(build_model("logreg", num_features=num_features(federation), seed=seed)).get_params()
        if seed == seeds[0]:
            sizes = [(len(c.y_train), len(c.y_val)) for c in federation.clients]
            print(f"Hospitals (train, validation rows) at seed {seed}: {sizes}; test rows: {len(federation.y_test)}.")
        lr = LogisticRegression(max_iter=2000).fit(pooled.X_train, pooled.y_train)
        pooled_correct = lr.predict(federation.X_test) == federation.y_test
        if federation.test_groups is None:
            raise FedLedgerError("the heart-disease federation has no per-hospital test groups")
        pooled_accuracy.append(float(pooled_correct.mean()))
        pooled_means.append(float(np.mean([pooled_correct[federation.test_groups == g].mean() for g in range(4)])))
        context = GridContext(federation, setup, initial)
        per_seed.append(run_grid(context, scenarios_of(rules, heart_attacks, 0.25, 0.0, seed), args.workers))
        left_out.append(run_without_malicious(federation, setup, HEART_RULE, 0.25, seed, initial))
    results = per_seed[0] if len(seeds) == 1 else mean_over_seeds(per_seed)
    pooled_mean = float(np.mean(pooled_means))
    print("\nTest error on the four hospitals' test splits pooled. " + CELL_LEGEND)
    print(results_table(results, rules, heart_attacks))
    clean = next(r for r in results if r.scenario.attack == "none" and r.scenario.rule == "fedavg")
    if clean.mean_test_error_per_group is None:
        raise FedLedgerError("the attack-free FedAvg run has no per-hospital test error")
    print(
        f"\nAttack-free FedAvg accuracy: {1 - clean.test_error:.3f} pooled test, "
        f"{1 - clean.mean_test_error_per_group:.3f} averaged over hospitals "
        "(FLamby reports 0.776 for FedAvg, averaged over hospitals)."
    )
    print(
        f"Pooled logistic regression (scikit-learn, all training rows): {np.mean(pooled_accuracy):.3f} pooled test, "
        f"{pooled_mean:.3f} averaged over hospitals (FLamby: 0.791)."
    )
    checks = check_target(results, rules, clean.test_error, target)
    meeting = [c.rule for c in checks if c.meets]
    print(f"Rules meeting the target here: {', '.join(meeting) if meeting else 'none'}.")
    print(profile_rule_summary(checks, [r for runs in per_seed for r in runs], left_out, clean))
    print(reputation_summary([r for runs in per_seed for r in runs], setup, len(federation.clients)))
    return {
        "setup": asdict(setup),
        "profile": "few-silos",
        "left_out_reference": [r.to_json() for r in left_out],
        "seeds": seeds,
        "pooled_accuracy": float(np.mean(pooled_accuracy)),
        "pooled_accuracy_mean_over_hospitals": pooled_mean,
        "results": [r.to_json() for runs in per_seed for r in runs],
    }


def run_without_malicious(
    federation: Federation, setup: FLSetup, rule: str, malicious_fraction: float, seed: int, initial: dict[str, Any]
) -> RunResult:
    """Attack-free training of ``rule`` without the members the seed makes malicious, tested on every member's test
    split: what a defence that left the attacker out of every round would reach (it loses the attacker's data)."""
    malicious = set(malicious_members(len(federation.clients), malicious_fraction, seed).tolist())
    kept = replace(federation, clients=[c for i, c in enumerate(federation.clients) if i not in malicious])
    trainer = LocalTrainer(build_model(setup.model, num_features=num_features(federation), seed=seed))
    return run_scenario(
        kept,
        replace(setup, clients_per_round=min(setup.clients_per_round, len(kept.clients))),
        Scenario(rule, "none", 0.0, 0.0, seed),
        build_attack("none", federation.num_classes, tabular=True),
        trainer,
        initial,
    )


def profile_rule_summary(
    checks: Sequence[TargetCheck], runs: Sequence[RunResult], left_out: Sequence[RunResult], clean: RunResult
) -> str:
    """Where the few-silos profile's rule misses the target, against what leaving the attacker out would reach, how
    alike honest updates are, and how validators scored the attackers' updates against the honest ones."""
    check = next((c for c in checks if c.rule == HEART_RULE), None)
    if check is None:
        return ""
    misses = "; ".join(check.failures) if check.failures else "none"
    errors = [r.test_error for r in left_out]
    by_attack: dict[str, list[RunResult]] = {}
    for r in runs:
        if r.scenario.rule == HEART_RULE:
            by_attack.setdefault(r.scenario.attack, []).append(r)
    alignment = [r.honest_alignment for cells in by_attack.values() for r in cells if r.honest_alignment is not None]
    text = (
        f"\nThe few-silos profile's rule ({HEART_RULE}): misses {misses}. Left-out reference ({HEART_RULE} trained "
        f"without the malicious hospital, so without its data, tested on all four test splits: what a defence that "
        f"left the attacker out of every round would reach): test error {np.mean(errors):.3f}"
        f"{f'±{np.std(errors, ddof=1):.3f}' if len(errors) > 1 else ''} against {clean.test_error:.3f} with every "
        "hospital honest."
    )
    if alignment:
        text += (
            f" Honest hospitals' updates, second half of the rounds: mean cosine {np.mean(alignment):+.2f} with the "
            "mean of the other honest hospitals' updates (near or below 0: each pulls its own way)."
        )
    medians = []
    for attack, cells in by_attack.items():
        bad = [m for r in cells for m in r.malicious_medians]
        good = [m for r in cells for m in r.honest_medians]
        if bad and good:
            low = np.percentile(good, 10)
            medians.append(f"{attack} {np.mean(bad):.0f} vs {np.mean(good):.0f} (honest 10th percentile {low:.0f})")
    if medians:
        text += " Committee medians of the attacker's updates vs the honest ones, mean: " + "; ".join(medians) + "."
    return text


LEDGER_NOTE = "among the rules a ledger task can use: fltrust's trusted root is an honest member the simulator picks"


def ledger_checks(checks_per_setting: Sequence[Sequence[TargetCheck]]) -> list[list[TargetCheck]]:
    """The checks of rules a ledger task can use (:func:`fedledger.federation.config.ledger_rules`): a default
    must not rely on a trusted party. All checks when none of their rules qualifies (e.g. ``--rules fltrust``)."""
    usable = set(ledger_rules())
    kept = [[c for c in checks if c.rule in usable] for checks in checks_per_setting]
    return kept if all(kept) else [list(checks) for checks in checks_per_setting]


def report_from_json(
    paths: Sequence[Path],
    target: Target,
    rules_wanted: Sequence[str] | None = None,
    settings_wanted: Sequence[str] | None = None,
) -> int:
    """Tables and the cross-setting recommendation from earlier ``--json`` files, without training.

    Runs are merged per setting and keyed by (rule, attack, seed): the same cell in two files (FedAvg,
    which every run includes) is the same deterministic run and is counted once. ``rules_wanted`` keeps
    only those rules (and FedAvg, the reference), e.g. to average the rules run with extra seeds. A rule
    enters the recommendation only if it has results in every setting present. ``settings_wanted`` (titles)
    keeps only those settings, leaving out e.g. an older file's table with other committees."""
    settings: dict[str, dict[tuple[str, str, int], RunResult]] = {}
    references: dict[str, dict[int, RunResult]] = {}
    order: dict[str, tuple[list[str], list[str]]] = {}
    for path in paths:
        try:
            raw = json.loads(path.read_text())
            for title, body in raw["settings"].items():
                if settings_wanted is not None and title not in settings_wanted:
                    continue
                for row in body.get("reference_results", []):
                    result = RunResult.from_json(row)
                    references.setdefault(title, {}).setdefault(result.scenario.seed, result)
                cells = settings.setdefault(title, {})
                rules, attacks = order.setdefault(title, ([], []))
                for row in body["results"]:
                    result = RunResult.from_json(row)
                    s = result.scenario
                    if rules_wanted and s.rule not in rules_wanted and s.rule != "fedavg":
                        continue
                    cells.setdefault((s.rule, s.attack, s.seed), result)
                    rules.extend([s.rule] if s.rule not in rules else [])
                    attacks.extend([s.attack] if s.attack not in attacks else [])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"error: {path}: not a robustness.py --json file ({exc})", file=sys.stderr)
            return 2
    if not settings:
        print("error: none of the settings asked for is in these files", file=sys.stderr)
        return 2
    print(f"# Robustness benchmark: report from {', '.join(p.name for p in paths)}\n")
    all_checks = []
    common = [r for r in next(iter(order.values()))[0] if all(r in rules for rules, _ in order.values())]
    titles = [setting.title for setting in SETTINGS]
    for title in sorted(settings, key=lambda t: titles.index(t) if t in titles else len(titles)):
        rules, attacks = order[title]
        by_seed: dict[int, list[RunResult]] = {}
        for (_, _, seed), result in settings[title].items():
            by_seed.setdefault(seed, []).append(result)
        seeds = sorted(by_seed)
        results = by_seed[seeds[0]] if len(seeds) == 1 else mean_over_seeds(list(by_seed.values()))
        reference = None
        if title in references:
            missing = sorted(set(seeds) - set(references[title]))
            if missing:
                print(f"error: {title}: no reference run for seed(s) {missing}", file=sys.stderr)
                return 2
            reference = _seed_mean([references[title][seed] for seed in seeds])
        _, checks = print_setting(title, results, rules, attacks, target, reference)
        print(f"Seeds: {', '.join(map(str, seeds))}.")
        all_checks.append([c for c in checks if c.rule in common])
    best, met = recommend(ledger_checks(all_checks))
    print(
        f"\nRecommended default rule over these settings (rules present in all of them: {', '.join(common)}; "
        f"{LEDGER_NOTE}): **{best}**"
        + (" (meets the target in every setting)." if met else " (none meets the target everywhere; closest).")
    )
    return 0


def reputation_summary(runs: Sequence[RunResult], setup: FLSetup, members: int) -> str:
    """How the validators' scores sided with outcomes over ``runs`` (cells of one setting of ``members``
    members), and whom validator reputation left out of committees by the end."""
    liars = [r.liar_disagreement for r in runs if r.liar_disagreement is not None]
    honest = [r.honest_disagreement for r in runs if r.honest_disagreement is not None]
    text = ""
    if liars:
        majorities = [r.lying_majority for r in runs if r.lying_majority is not None]
        kind = "adaptive (lie only where they hold a committee's majority)" if setup.adaptive_liars else "always lying"
        text += (
            f"\nLying validators: {kind}; committees with a lying majority: {np.mean(majorities):.3f} "
            "(mean over cells)."
        )
    text += (
        "\nValidator scores against the outcome (mean over cells): "
        + (f"lying validators {np.mean(liars):.2f}, " if liars else "")
        + f"honest validators {np.mean(honest):.2f} (highest cell {np.max(honest):.2f})."
    )
    if setup.max_disagreement:
        num_liars = np.mean([r.num_liars for r in runs])
        attackers = np.mean([r.num_attackers for r in runs])
        lying = f"{np.mean([r.distrusted_liars for r in runs]):.1f} of {num_liars:.0f} lying validators, "
        text += (
            f" Reputation (max disagreement {setup.max_disagreement} bps after {setup.reputation_warmup} scores) "
            f"distrusted by the last round, mean over cells: "
            + (lying if liars else "")
            + f"{np.mean([r.distrusted_honest for r in runs]):.2f} of {members - num_liars - attackers:.0f} honest "
            f"ones (most in one cell: {max(r.distrusted_honest for r in runs)})"
            + (
                f", {np.mean([r.distrusted_attackers for r in runs]):.2f} of {attackers:.0f} malicious trainers "
                "scoring honestly."
                if attackers
                else "."
            )
        )
    if setup.max_rejection or setup.min_mean_score:
        bounds = [f"max rejection {setup.max_rejection} bps"] if setup.max_rejection else []
        bounds += [f"min mean score {setup.min_mean_score}"] if setup.min_mean_score else []
        text += (
            f" Trainer reputation ({', '.join(bounds)} after {setup.reputation_warmup} scored "
            f"updates) left out by the last round, mean over cells: "
            f"{np.mean([r.distrusted_malicious_trainers for r in runs]):.2f} malicious trainers, "
            f"{np.mean([r.distrusted_honest_trainers for r in runs]):.2f} honest ones (most in one cell: "
            f"{max(r.distrusted_honest_trainers for r in runs)})."
        )
    return text


def _seed_mean(runs: Sequence[RunResult]) -> RunResult:
    """One run, or the mean over seeds of runs of the same cell."""
    return runs[0] if len(runs) == 1 else mean_over_seeds([[r] for r in runs])[0]


def print_header(
    args: argparse.Namespace,
    setup: FLSetup,
    data_dir: Path,
    federation: Federation,
    norms: Sequence[float],
    seeds: Sequence[int],
    rules: Sequence[str],
    attacks: Sequence[str],
    target: Target,
) -> None:
    """The run's configuration, printed before its tables."""
    print(f"# Robustness benchmark ({'--quick' if args.quick else 'full grid'})\n")
    print(
        f"Python {platform.python_version()}, torch {torch.__version__}, {args.workers} worker process(es) "
        f"of 1 thread, seed(s) {', '.join(map(str, seeds))}."
    )
    print(
        f"Fashion-MNIST from {data_dir}: 100 members, bias 0.5, {len(federation.y_test)} test images, "
        f"{args.val_fraction:g} of each member's images kept for validation "
        f"(median {int(np.median([len(c.y_val) for c in federation.clients]))} images)."
    )
    print(f"Configuration: {json.dumps(asdict(setup))}.")
    print(f"Honest delta L2 norms at round 0 (10 members): median {np.median(norms):.3f}, max {max(norms):.3f}.")
    print(f"Rules: {', '.join(rules)}. Attacks: {', '.join(attacks)}.")
    print(
        f"Attack parameters: {json.dumps(ATTACK_PARAMS)}; heart disease backdoor trigger {json.dumps(HEART_TRIGGER)}."
    )
    print(
        f"Target: under every attack, error <= attack-free FedAvg + {target.error_margin} and backdoor success "
        f"(trigger flips) <= {target.max_backdoor}; attack-free error <= FedAvg's + {target.clean_tolerance}."
    )


def run_setting(
    args: argparse.Namespace,
    setting: Setting,
    setup: FLSetup,
    contexts: Sequence[GridContext],
    seeds: Sequence[int],
    grid: tuple[list[str], list[str], tuple[str, ...]],
    target: Target,
) -> tuple[list[Any], dict[str, Any]]:
    """One setting's cells over every seed, its tables printed; its target checks and raw results."""
    rules, attacks, reference_only = grid
    committee = args.committee or setting.committee_size or setup.committee_size
    fraction, lying = setting.malicious_fraction, setting.lying_fraction
    per_seed, clean_runs = [], []
    for context, seed in zip(contexts, seeds, strict=True):
        context = replace(context, setup=replace(context.setup, committee_size=committee))
        scenarios = scenarios_of(rules, attacks, fraction, lying, seed, reference_only=reference_only)
        if lying:  # the reference: the same committees with nobody lying
            scenarios.append(Scenario("fedavg", "none", fraction, 0.0, seed))
        cells = run_grid(context, scenarios, args.workers)
        per_seed.append(cells[: len(cells) - bool(lying)])
        clean_runs.extend(cells[len(per_seed[-1]) :])
    results = per_seed[0] if len(seeds) == 1 else mean_over_seeds(per_seed)
    clean = _seed_mean(clean_runs) if clean_runs else None
    reference, checks = print_setting(setting.title, results, rules, attacks, target, clean)
    print(f"Committees of {committee} validators per update in this setting.")
    if lying:
        liars = int(math.ceil(lying * 100))
        odds = ", ".join(f"{k}: {lying_majority_probability(100, liars, k):.3f}" for k in (3, 5, 7, 9, 11, 15, 21, 31))
        print(
            f"\nProbability that an honest member's update draws a committee with a lying majority "
            f"({liars} of 100 members lying; committee size: probability, hypergeometric): {odds}. "
            f"This run: committees of {committee}."
        )
        cells = [r for seed_results in per_seed for r in seed_results]
        print(reputation_summary(cells, setup, len(context.federation.clients)))
    return checks, {
        "committee_size": committee,
        "reference_error": reference,
        "results": [r.to_json() for seed_results in per_seed for r in seed_results],
        "reference_results": [r.to_json() for r in clean_runs],
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser(__doc__, REPO).parse_args(argv)
    if args.report:
        titles = [SETTINGS[int(n) - 1].title for n in args.settings.split(",")] if args.settings else None
        return report_from_json(args.report, Target(), args.rules.split(",") if args.rules else None, titles)

    torch.set_num_threads(1)  # before any fork: worker processes run one thread each
    rules, attacks, reference_only = chosen_rules_and_attacks(args)
    if args.heart_only:
        return heart_only(args, rules, attacks)
    heart_attacks = attacks
    if not args.attacks:
        attacks = [a for a in attacks if a not in HEART_ONLY_ATTACKS]
    settings = [int(s) for s in (args.settings or ("1" if args.quick else "1,2,3")).split(",")]
    setup = FMNIST_QUICK if args.quick else FMNIST_FULL
    overrides = setup_overrides(args)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    target = Target()
    started = time.perf_counter()
    try:
        setup = replace(setup, **{k: v for k, v in overrides.items() if v is not None})
        for name in rules:
            if name not in AGGREGATION_RULES:
                raise FedLedgerError(f"unknown rule {name!r}; known: {', '.join(AGGREGATION_RULES)}")
        for name in attacks:
            build_attack(name, 10)
        data_dir = find_fashion_mnist(args.data_dir)
        if not 0 < args.val_fraction < 1:
            raise FedLedgerError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
        contexts = [fmnist_context(data_dir, setup, seed, val_fraction=args.val_fraction) for seed in seeds]
    except FedLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_header(args, setup, data_dir, contexts[0][0].federation, contexts[0][1], seeds, rules, attacks, target)

    raw: dict[str, Any] = {"setup": asdict(setup), "rules": rules, "attacks": attacks, "settings": {}}
    all_checks = []
    for number in settings:
        setting = SETTINGS[number - 1]
        checks, raw["settings"][setting.title] = run_setting(
            args, setting, setup, [c for c, _ in contexts], seeds, (rules, attacks, reference_only), target
        )
        all_checks.append(checks)
    best, met = recommend(ledger_checks(all_checks))
    print(
        f"\nRecommended default rule ({LEDGER_NOTE}): **{best}**"
        + (
            " (meets the target in every setting above)."
            if met
            else " (no rule meets the target in every setting; this one comes closest)."
        )
    )
    raw["recommended"] = {"rule": best, "meets_target": met}
    if args.masked:
        grid = (rules, attacks)
        raw["masked"] = masked_section(args, [c for c, _ in contexts], seeds, settings, grid, target, raw["settings"])
    if not args.no_heart:
        try:
            raw["heart_disease"] = heart_section(args, rules, heart_attacks, target)
        except FedLedgerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    elapsed = time.perf_counter() - started
    cpu = sum(r["cpu_seconds"] for s in raw["settings"].values() for r in s["results"])
    print(f"\nTotal time: {elapsed / 60:.1f} min wall; Fashion-MNIST cells {cpu / 60:.1f} min of CPU in all.")
    raw["seconds"] = elapsed
    if args.json:
        args.json.write_text(json.dumps(raw, indent=2))
    return 0


def heart_only(args: argparse.Namespace, rules: list[str], attacks: list[str]) -> int:
    """``--heart-only``: the heart-disease section with the chosen rules and attacks, nothing else."""
    print("# Robustness benchmark: heart disease only\n")
    print(f"Python {platform.python_version()}, torch {torch.__version__}, {args.workers} worker process(es).")
    started = time.perf_counter()
    try:
        raw = heart_section(args, rules, attacks, Target())
    except FedLedgerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nTotal time: {(time.perf_counter() - started) / 60:.1f} min wall.")
    if args.json:
        args.json.write_text(json.dumps({"heart_disease": raw}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
