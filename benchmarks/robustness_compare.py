"""Paired comparison of two ``robustness.py --json`` runs of the same seeds: per setting and attack, one rule's
mean test error in each, the mean of the per-seed differences (B - A) and its standard error.

    python benchmarks/robustness_compare.py A.json B.json [--rule centered-clipping]

The seeds fix the data split, the malicious members and the training, so the difference of two cells with the
same seed is the effect of what changed between the runs (e.g. ``--clip-to-median-norm``), without the
seed-to-seed noise that dominates either mean (benchmarks/results/robustness.md, run 22).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cells(run: dict[str, Any], title: str, rule: str) -> dict[tuple[str, int], dict[str, Any]]:
    return {(r["attack"], r["seed"]): r for r in run["settings"][title]["results"] if r["rule"] == rule}


def _se(values: Sequence[float]) -> float:
    return statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else 0.0


def compare(first: dict[str, Any], second: dict[str, Any], rule: str) -> list[str]:
    """The comparison's lines: per setting present in both runs, one per attack run with the same seeds in both."""
    lines = []
    for title in [t for t in first["settings"] if t in second["settings"]]:
        a, b = _cells(first, title, rule), _cells(second, title, rule)
        common = sorted(set(a) & set(b))
        if not common:
            continue
        lines += [f"\n{title} ({rule}; error A, error B, mean of B - A over seeds ± its standard error):\n"]
        lines += ["| attack | seeds | A | B | B - A |", "|---|---:|---:|---:|---:|"]
        every: list[float] = []
        for attack in dict.fromkeys(attack for attack, _ in a if (attack, _) in b):  # run A's order
            seeds = [s for at, s in common if at == attack]
            ea = [a[(attack, s)]["test_error"] for s in seeds]
            eb = [b[(attack, s)]["test_error"] for s in seeds]
            diffs = [y - x for x, y in zip(ea, eb, strict=True)]
            every += diffs
            lines.append(
                f"| {attack} | {len(seeds)} | {statistics.fmean(ea):.4f} | {statistics.fmean(eb):.4f} | "
                f"{statistics.fmean(diffs):+.4f} ± {_se(diffs):.4f} |"
            )
        lines.append(f"| all | {len(every)} cells | | | {statistics.fmean(every):+.4f} ± {_se(every):.4f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="run A (robustness.py --json)")
    parser.add_argument("second", type=Path, help="run B, the same seeds")
    parser.add_argument("--rule", default="centered-clipping", help="the rule to compare (default centered-clipping)")
    args = parser.parse_args(argv)
    try:
        runs = [json.loads(path.read_text()) for path in (args.first, args.second)]
        lines = compare(*runs, args.rule)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"error: not two robustness.py --json files ({exc})", file=sys.stderr)
        return 2
    if not lines:
        print(f"error: no cell of rule {args.rule!r} has the same setting, attack and seed in both", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
