"""The robustness benchmark's command line (``benchmarks/robustness.py --help``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from fedledger.learning.aggregation import AGGREGATION_RULES

from .grid import all_attacks
from .setups import FMNIST_FULL, FMNIST_QUICK, HEART, HEART_SEEDS, LYING_COMMITTEE, QUICK_ATTACKS, QUICK_RULES

__all__ = ["build_parser", "chosen_rules_and_attacks"]


def build_parser(description: str | None, repo: Path) -> argparse.ArgumentParser:
    """The benchmark's arguments: what to run, then how validators and the task decide (``repo``: the checkout,
    whose sibling ``shared/data`` holds the shared data sets)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    _grid_options(parser, repo)
    _pipeline_options(parser)
    _task_options(parser)
    return parser


def _grid_options(parser: argparse.ArgumentParser, repo: Path) -> None:
    """What runs: data, rules, attacks, settings, seeds, workers and output."""
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"rules {QUICK_RULES}, attacks {QUICK_ATTACKS}, "
        f"{FMNIST_QUICK.rounds} rounds, the 20 %% setting only, heart disease on the same rules",
    )
    parser.add_argument("--data-dir", type=Path, help="folder with the Fashion-MNIST idx .gz files")
    parser.add_argument(
        "--shared-dir",
        type=Path,
        default=repo.parent / "shared" / "data",
        help="folder holding heart-disease/ (default: ../shared/data)",
    )
    parser.add_argument("--rules", help="comma-separated rules (default: all registered)")
    parser.add_argument("--attacks", help="comma-separated attacks (default: all registered but lying-validators)")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--settings", default=None, help="comma-separated setting numbers 1-3 (default: all; quick: 1)")
    parser.add_argument("--no-heart", action="store_true", help="skip the heart-disease section")
    parser.add_argument("--heart-only", action="store_true", help="run the heart-disease section alone")
    parser.add_argument("--seed", type=int, default=0, help="one seed (data split, members, training)")
    parser.add_argument(
        "--heart-seeds",
        default=HEART_SEEDS,
        help=f"comma-separated seeds of the heart-disease section; its tables show the mean (default {HEART_SEEDS})",
    )
    parser.add_argument(
        "--seeds", help="comma-separated seeds: every cell runs once per seed; tables show mean ± sample sd"
    )
    parser.add_argument(
        "--val-fraction",
        type=float,
        default=0.05,
        help="share of each member's images kept as its validation data (default 0.05, about 30 images)",
    )


def _pipeline_options(parser: argparse.ArgumentParser) -> None:
    """The update pipeline and aggregation: centered clipping, median norms, example counts."""
    parser.add_argument(
        "--zero-center",
        action="store_true",
        help="centered clipping around zero instead of the previous aggregate (a ledger aggregator passing no center)",
    )
    parser.add_argument(
        "--tau",
        type=float,
        help="centered clipping's radius as a share of the clip norm (default 0.5, the task default)",
    )
    parser.add_argument(
        "--clip-to-median-norm",
        "--median-norm-bound",  # its name in benchmarks/results/robustness.md run 20c
        action=argparse.BooleanOptionalAction,
        help="scale accepted updates above the round's median norm down to it before the rule (FLAME's adaptive "
        f"clipping, a task's clip_to_median_norm; default {'on' if FMNIST_FULL.clip_to_median_norm else 'off'})",
    )
    parser.add_argument(
        "--lift-to-median-norm",
        action=argparse.BooleanOptionalAction,
        help="scale accepted non-zero updates below the round's median norm up to it before the rule (a task's "
        "lift_to_median_norm; default: the profile's, on for Fashion-MNIST, off for heart disease)",
    )
    parser.add_argument(
        "--score-at-median-norm",
        action=argparse.BooleanOptionalAction,
        help="validators score an update shorter than the round's median norm as if scaled up to it (a task's "
        "score_at_median_norm; default: the profile's, off for Fashion-MNIST, on for heart disease)",
    )
    parser.add_argument(
        "--center-scores",
        action=argparse.BooleanOptionalAction,
        help="validators re-centre their scores of a round on their median score of the round (a task's "
        "center_scores; default: the profile's, off for Fashion-MNIST, on for heart disease)",
    )
    parser.add_argument(
        "--cap-examples-to-median",
        action=argparse.BooleanOptionalAction,
        help="read every declared example count as at most the round's upper median declared count (a task's "
        f"cap_examples_to_median; default {'on' if FMNIST_FULL.cap_examples_to_median else 'off'})",
    )
    parser.add_argument(
        "--registered-rows",
        action=argparse.BooleanOptionalAction,
        help="members registered their training rows and no update may declare more (a task with a data registry; "
        f"default {'on' if FMNIST_FULL.registered_rows else 'off'}); off: only max_examples bounds a declared count",
    )


def _task_options(parser: argparse.ArgumentParser) -> None:
    """How the simulated task decides: committees, scoring, acceptance, reputation, update pipeline."""
    parser.add_argument(
        "--committee",
        type=int,
        help=f"validators per update in every setting (default 3; {LYING_COMMITTEE} where a third of validators lie)",
    )
    parser.add_argument("--scoring", help=f"validator scoring rule (default {FMNIST_FULL.scoring})")
    parser.add_argument(
        "--threshold", type=int, help=f"acceptance threshold (default {FMNIST_FULL.acceptance_threshold})"
    )
    parser.add_argument(
        "--score-weight",
        choices=("full", "round"),
        help="validators score the update at full weight (default) or at 1/k, k = updates in the round",
    )
    parser.add_argument(
        "--max-disagreement",
        type=int,
        help="validator reputation: basis points of a validator's scores against the outcome above which it sits "
        f"on no later committee (default {FMNIST_FULL.max_disagreement}; 0: off)",
    )
    parser.add_argument(
        "--max-rejection",
        type=int,
        help="trainer reputation: basis points of a trainer's scored updates rejected above which its later updates "
        f"are left out (default: {FMNIST_FULL.max_rejection} for Fashion-MNIST, {HEART.max_rejection} for heart "
        "disease; 0: off)",
    )
    parser.add_argument(
        "--min-mean-score",
        type=int,
        help="trainer reputation by scores: mean committee median of a trainer's scored updates below which its "
        f"later updates are left out (default: {FMNIST_FULL.min_mean_score} for Fashion-MNIST, "
        f"{HEART.min_mean_score} for heart disease; 0: off)",
    )
    parser.add_argument(
        "--min-approvals",
        type=int,
        help="acceptance by approvals: validators at or above the threshold an update needs (default: "
        f"{FMNIST_FULL.min_approvals} for Fashion-MNIST, {HEART.min_approvals} for heart disease; 0: the median)",
    )
    parser.add_argument(
        "--reputation-warmup",
        type=int,
        help="fewest scores before a validator (scored updates before a trainer) can be distrusted (default: "
        f"{FMNIST_FULL.reputation_warmup} for Fashion-MNIST, {HEART.reputation_warmup} for heart disease)",
    )
    parser.add_argument(
        "--adaptive-liars",
        action="store_true",
        help="lying validators lie only where they hold a strict majority of an update's committee and score "
        "honestly elsewhere (the liar validator reputation cannot see)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes, one torch thread each (default 2)")
    parser.add_argument("--json", type=Path, help="write raw results to this file")
    parser.add_argument(
        "--masked",
        action="store_true",
        help="after each setting without lying validators, run its attacks in secure rounds with masked validity "
        "checks (FedAvg of the updates that pass) and print them beside the validated rounds",
    )
    parser.add_argument(
        "--masked-min-cosine",
        type=float,
        default=0.0,
        help="the masked checks' minimum cosine with their reference (default 0: same half-space)",
    )
    parser.add_argument(
        "--masked-reference",
        choices=("previous", "committee"),
        default="previous",
        help="the masked direction check's reference: the previous round's aggregate, or each committee seat's own "
        "update on its validation data (majority of the seats' bits)",
    )
    parser.add_argument(
        "--masked-clipping",
        type=int,
        default=0,
        metavar="LEVELS",
        help="the masked committee clips each passing update around the previous aggregate (centered clipping, "
        "radius --tau times the clip norm, clip factors rounded down to multiples of 1/LEVELS, e.g. 16) instead "
        "of summing them (default 0: the plain sum)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        nargs="+",
        metavar="JSON",
        help="print tables and the cross-setting recommendation from earlier --json files (no training; "
        "--rules and --settings keep only those rules and settings)",
    )


def chosen_rules_and_attacks(args: argparse.Namespace) -> tuple[list[str], list[str], tuple[str, ...]]:
    """``--rules`` and ``--attacks`` (or the grid's defaults), with FedAvg and the attack-free row, which every
    table is checked against, added in front when missing, and the rules added only as that reference (FedAvg
    then runs attack-free only)."""
    rules = args.rules.split(",") if args.rules else list(QUICK_RULES if args.quick else AGGREGATION_RULES)
    attacks = args.attacks.split(",") if args.attacks else list(QUICK_ATTACKS if args.quick else all_attacks())
    if "none" not in attacks:
        attacks.insert(0, "none")
    reference_only: tuple[str, ...] = ()
    if "fedavg" not in rules:
        rules.insert(0, "fedavg")
        reference_only = ("fedavg",)
    return rules, attacks, reference_only
