"""Tables and the target check of the robustness benchmark (markdown, as the docs quote them)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from .scenario import RunResult
from .setups import CELL_LEGEND

__all__ = [
    "print_setting",
    "Target",
    "TargetCheck",
    "acceptance_table",
    "check_target",
    "lying_majority_probability",
    "mean_over_seeds",
    "recommend",
    "results_table",
]


@dataclass(frozen=True)
class Target:
    """Issue #4's target: under every attack, test error within ``error_margin`` of attack-free FedAvg
    and backdoor success at most ``max_backdoor``; attack-free error no worse than FedAvg's (up to
    ``clean_tolerance``, about the standard error of a 10,000-image test error).

    The backdoor limit is checked on the trigger's flips (``RunResult.backdoor_flips``) where measured:
    the classic success rate of our 20-round models is mostly natural confusion into the target class
    (0.02-0.05 with no backdoor planted), which the limit is not about; both are printed."""

    error_margin: float = 0.02
    max_backdoor: float = 0.03
    clean_tolerance: float = 0.005


@dataclass(frozen=True)
class TargetCheck:
    rule: str
    meets: bool
    worst_error: float
    worst_backdoor: float
    excess: float
    """How far the worst cell is past the target (0 when met): the larger of the error overshoot and
    the backdoor overshoot."""
    failures: tuple[str, ...]


def mean_over_seeds(per_seed: Sequence[Sequence[RunResult]]) -> list[RunResult]:
    """One result per (rule, attack) cell: means of test error, backdoor success and acceptance over the seeds,
    with the sample sd of error and backdoor success; rule failures of every seed are kept (prefixed by seed)."""
    cells: dict[tuple[str, str], list[RunResult]] = {}
    for results in per_seed:
        for r in results:
            cells.setdefault((r.scenario.rule, r.scenario.attack), []).append(r)
    out = []
    for runs in cells.values():
        errors = [r.test_error for r in runs]
        backdoors = [r.backdoor_success for r in runs if r.backdoor_success is not None]
        flips = [r.backdoor_flips for r in runs if r.backdoor_flips is not None]
        malicious = [r.malicious_acceptance for r in runs if r.malicious_acceptance is not None]
        groups = [r.mean_test_error_per_group for r in runs if r.mean_test_error_per_group is not None]
        alignments = [r.honest_alignment for r in runs if r.honest_alignment is not None]
        out.append(
            replace(
                runs[0],
                test_error=statistics.fmean(errors),
                test_error_sd=statistics.stdev(errors) if len(errors) > 1 else 0.0,
                backdoor_success=statistics.fmean(backdoors) if backdoors else None,
                backdoor_sd=statistics.stdev(backdoors) if len(backdoors) > 1 else None,
                backdoor_flips=statistics.fmean(flips) if flips else None,
                honest_acceptance=statistics.fmean(r.honest_acceptance for r in runs),
                malicious_acceptance=statistics.fmean(malicious) if malicious else None,
                mean_test_error_per_group=statistics.fmean(groups) if groups else None,
                honest_alignment=statistics.fmean(alignments) if alignments else None,
                seconds=sum(r.seconds for r in runs),
                cpu_seconds=sum(r.cpu_seconds for r in runs),
                rule_errors=[f"seed {r.scenario.seed} {e}" for r in runs for e in r.rule_errors],
                num_seeds=len(runs),
            )
        )
    return out


def _value(mean: float, sd: float | None) -> str:
    return f"{mean:.3f}" if sd is None else f"{mean:.3f}±{sd:.3f}"


def _cell(result: RunResult | None) -> str:
    if result is None:
        return "–"
    text = _value(result.test_error, result.test_error_sd)
    if result.backdoor_success is None:
        text += " / –"
    elif result.plants_backdoor:
        text += f" / {_value(result.backdoor_success, result.backdoor_sd)}"
        if result.backdoor_flips is not None:
            text += f" [{result.backdoor_flips:.3f}]"
    else:
        # the trigger's base rate, no backdoor planted
        text += f" / ({_value(result.backdoor_success, result.backdoor_sd)})"
    if result.rule_errors:
        text += f" ({len(result.rule_errors)} rounds failed)"
    return text


def results_table(results: Sequence[RunResult], rules: Sequence[str], attacks: Sequence[str]) -> str:
    """Rows: attacks; columns: rules; cells: ``test error / backdoor success``, the latter in parentheses
    when the attack plants no backdoor (the trigger's base rate) and – when not measured."""
    by_key = {(r.scenario.attack, r.scenario.rule): r for r in results}
    lines = ["| attack | " + " | ".join(rules) + " |", "|---|" + "---:|" * len(rules)]
    for attack in attacks:
        lines.append(f"| {attack} | " + " | ".join(_cell(by_key.get((attack, rule))) for rule in rules) + " |")
    return "\n".join(lines)


def lying_majority_probability(members: int, liars: int, committee: int) -> float:
    """Probability that a committee of ``committee`` validators drawn without replacement from the
    ``members - 1`` members other than an honest update's owner has a lying majority (hypergeometric)."""
    others = members - 1
    if not 0 <= liars <= others or not 1 <= committee <= others:
        raise ValueError(f"need 0 <= liars <= {others} and 1 <= committee <= {others}")
    majority = committee // 2 + 1
    total = math.comb(others, committee)
    ways = sum(math.comb(liars, j) * math.comb(others - liars, committee - j) for j in range(majority, committee + 1))
    return ways / total


def acceptance_table(results: Sequence[RunResult], rules: Sequence[str], attacks: Sequence[str]) -> str:
    """Rows: attacks; columns: rules; cells: share of honest / of malicious updates the validators accepted
    (– where nobody is malicious)."""
    by_key = {(r.scenario.attack, r.scenario.rule): r for r in results}
    lines = ["| attack | " + " | ".join(rules) + " |", "|---|" + "---:|" * len(rules)]
    for attack in attacks:
        cells = []
        for rule in rules:
            r = by_key.get((attack, rule))
            if r is None:
                cells.append("–")
                continue
            mal = "–" if r.malicious_acceptance is None else f"{r.malicious_acceptance:.2f}"
            cells.append(f"{r.honest_acceptance:.2f} / {mal}")
        lines.append(f"| {attack} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _checked_backdoor(cell: RunResult) -> float | None:
    """What the backdoor limit applies to: the trigger's flips where measured, else the success rate; ``None``
    where no backdoor is planted."""
    if not cell.plants_backdoor:
        return None
    return cell.backdoor_flips if cell.backdoor_flips is not None else cell.backdoor_success


def check_target(
    results: Sequence[RunResult],
    rules: Sequence[str],
    reference_error: float,
    target: Target,
    *,
    attack_free_row: bool = True,
) -> list[TargetCheck]:
    """Per rule, whether every attack's cell meets the target against ``reference_error``. The row ``none``
    is held to ``clean_tolerance`` if ``attack_free_row``, else (lying validators in it) to ``error_margin``."""
    checks = []
    attacks_run = {r.scenario.attack for r in results}
    for rule in rules:
        cells = [r for r in results if r.scenario.rule == rule]
        clean = next((r for r in cells if r.scenario.attack == "none"), None)
        base_rate = (
            f" (trigger base rate without attack {clean.backdoor_success:.3f})"
            if clean and clean.backdoor_success is not None
            else ""
        )
        failures: list[str] = []
        excess = 0.0
        for cell in cells:
            limit = reference_error + (
                target.clean_tolerance if cell.scenario.attack == "none" and attack_free_row else target.error_margin
            )
            if cell.test_error > limit:
                failures.append(f"{cell.scenario.attack}: error {cell.test_error:.3f} > {limit:.3f}")
                excess = max(excess, cell.test_error - limit)
            backdoor = _checked_backdoor(cell)
            if backdoor is not None and backdoor > target.max_backdoor:
                if cell.backdoor_flips is None:
                    what = f"backdoor {backdoor:.3f} > {target.max_backdoor}{base_rate}"
                else:
                    what = (
                        f"trigger flips {backdoor:.3f} > {target.max_backdoor} (backdoor {cell.backdoor_success:.3f})"
                    )
                failures.append(f"{cell.scenario.attack}: {what}")
                excess = max(excess, backdoor - target.max_backdoor)
            if cell.rule_errors:
                failures.append(f"{cell.scenario.attack}: rule failed in {len(cell.rule_errors)} rounds")
        unrun = attacks_run - {c.scenario.attack for c in cells}
        if unrun:  # e.g. FedAvg run only as the attack-free reference: never a candidate default
            failures.append(f"not run under {len(unrun)} of the {len(attacks_run)} attacks")
            excess = math.inf
        checks.append(
            TargetCheck(
                rule,
                not failures and bool(cells),
                max((c.test_error for c in cells), default=float("nan")),
                max((_checked_backdoor(c) or 0.0 for c in cells), default=0.0),
                excess,
                tuple(failures),
            )
        )
    return checks


def recommend(checks_per_setting: Sequence[Sequence[TargetCheck]]) -> tuple[str, bool]:
    """The default rule: among rules meeting the target in every setting, the lowest worst-case error;
    if none does, the rule with the smallest worst excess over the target (and ``False``)."""
    rules = [c.rule for c in checks_per_setting[0]]
    table = {rule: [next(c for c in checks if c.rule == rule) for checks in checks_per_setting] for rule in rules}
    meeting = [rule for rule, cs in table.items() if all(c.meets for c in cs)]
    if meeting:
        return min(meeting, key=lambda rule: max(c.worst_error for c in table[rule])), True
    return min(
        rules, key=lambda rule: (max(c.excess for c in table[rule]), max(c.worst_error for c in table[rule]))
    ), False


def print_setting(
    title: str,
    results: list[RunResult],
    rules: Sequence[str],
    attacks: Sequence[str],
    target: Target,
    reference: RunResult | None = None,
) -> tuple[float, list[Any]]:
    """The setting's tables and target check against ``reference`` (default: its FedAvg row without attack;
    where validators lie, pass FedAvg with nobody lying, since that row still has the liars)."""
    liars_only = next(r for r in results if r.scenario.attack == "none" and r.scenario.rule == "fedavg")
    reference = reference or liars_only
    print(f"\n### {title}\n")
    print(CELL_LEGEND)
    print(results_table(results, rules, attacks))
    print("\nShare of updates accepted by the validators, honest / malicious:\n")
    print(acceptance_table(results, rules, attacks))
    checks = check_target(results, rules, reference.test_error, target, attack_free_row=reference is liars_only)
    if reference is liars_only:
        print(f"\nAttack-free FedAvg test error: {reference.test_error:.3f}.")
    else:
        print(
            f"\nAttack-free FedAvg test error (no malicious trainer, no lying validator): {reference.test_error:.3f}"
            f"{_sd(reference)}; with the lying validators alone (row none): {liars_only.test_error:.3f}."
        )
    meeting = [c.rule for c in checks if c.meets]
    print(f"Rules meeting the target here: {', '.join(meeting) if meeting else 'none'}.")
    for check in checks:
        if not check.meets:
            print(f"- {check.rule}: {'; '.join(check.failures)}")
    return reference.test_error, checks


def _sd(result: RunResult) -> str:
    return "" if result.test_error_sd is None else f"±{result.test_error_sd:.3f}"
