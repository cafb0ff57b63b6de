"""Tables and the target check of the robustness benchmark (markdown, as the docs quote them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .simulation import RunResult

__all__ = ["Target", "TargetCheck", "check_target", "recommend", "results_table"]


@dataclass(frozen=True)
class Target:
    """Issue #4's target: under every attack, test error within ``error_margin`` of attack-free FedAvg
    and backdoor success at most ``max_backdoor``; attack-free error no worse than FedAvg's (up to
    ``clean_tolerance``, about the standard error of a 10,000-image test error)."""

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


def _cell(result: RunResult | None) -> str:
    if result is None:
        return "–"
    text = f"{result.test_error:.3f}"
    if result.backdoor_success is None:
        text += " / –"
    elif result.plants_backdoor:
        text += f" / {result.backdoor_success:.3f}"
    else:
        text += f" / ({result.backdoor_success:.3f})"  # the trigger's base rate, no backdoor planted
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


def check_target(
    results: Sequence[RunResult], rules: Sequence[str], reference_error: float, target: Target
) -> list[TargetCheck]:
    """Per rule, whether every attack's cell meets the target against ``reference_error``."""
    checks = []
    for rule in rules:
        cells = [r for r in results if r.scenario.rule == rule]
        failures: list[str] = []
        excess = 0.0
        for cell in cells:
            limit = reference_error + (
                target.clean_tolerance if cell.scenario.attack == "none" else target.error_margin
            )
            if cell.test_error > limit:
                failures.append(f"{cell.scenario.attack}: error {cell.test_error:.3f} > {limit:.3f}")
                excess = max(excess, cell.test_error - limit)
            if (
                cell.plants_backdoor
                and cell.backdoor_success is not None
                and cell.backdoor_success > target.max_backdoor
            ):
                failures.append(f"{cell.scenario.attack}: backdoor {cell.backdoor_success:.3f} > {target.max_backdoor}")
                excess = max(excess, cell.backdoor_success - target.max_backdoor)
            if cell.rule_errors:
                failures.append(f"{cell.scenario.attack}: rule failed in {len(cell.rule_errors)} rounds")
        checks.append(
            TargetCheck(
                rule,
                not failures and bool(cells),
                max((c.test_error for c in cells), default=float("nan")),
                max((c.backdoor_success or 0.0 for c in cells), default=0.0),
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
