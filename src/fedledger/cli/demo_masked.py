"""The masked checks' part of ``fedledger demo``'s summary: what the check committee decided, round by round, and
what it did not catch, in plain words."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["print_masked_summary"]


def print_masked_summary(
    out: Console, setup: Mapping[str, Any], screening: Mapping[str, Any], rounds: Sequence[Mapping[str, Any]]
) -> None:
    """The committee's decisions per round, each attacker's fate, and what the audit re-checked."""
    masked = setup["masked_checks"]
    out.print("secure aggregation         [bold]on[/]: every update was masked; no one saw one in clear")
    committee_reference = masked.get("reference") == "committee"
    direction = "; no direction check"
    if masked["min_cosine"] is not None and committee_reference:
        direction = (
            f", and its cosine >= {masked['min_cosine']:g} with a majority of the committee members' own reference "
            "updates (each trained on its validation data, kept private)"
        )
    elif masked["min_cosine"] is not None:
        direction = (
            f", and its cosine with the previous round's global update >= {masked['min_cosine']:g} (from round 2)"
        )
    out.print(
        f"masked checks              [bold]on[/]: a committee of {masked['committee']} aggregators (one MPyC party "
        f"process each) checked every update on secret shares: L2 norm <= {masked['norm_bound']:g} (the task's "
        f"update norm bound){direction}. Only each update's pass/fail bit and the sum of the passing updates "
        "were revealed; the contract aggregated the passing set"
    )
    table = Table("round", "committee", "passed", "rejected (check)", title="Masked checks (from the chain)")
    for row in rounds:
        decided = row.get("masked") or {}
        rejected = [f"{rej['member']} ({rej['check']})" for rej in decided.get("rejected", [])]
        status = ", ".join(decided.get("passed", [])) or f"none ({row.get('abort_reason') or row['phase']})"
        table.add_row(str(row["round"]), ", ".join(decided.get("committee", [])), status, ", ".join(rejected) or "-")
    out.print(table)
    for name, fate in screening["attackers"].items():
        out.print(f"{name + ' (' + fate['behavior'] + ')':<26} {_fate(fate, masked)}")
    checked = screening["transcripts_rechecked_rounds"]
    out.print(
        "masked-check audit         re-checked the committee's transcripts, the accepted sets and the models of "
        f"round(s) {_rounds(checked)}; the norm and direction bits rest on an honest majority of the committee"
        if checked
        else "masked-check audit         [red]did not pass[/]: the committee's outcomes were not re-checked"
    )


def _fate(fate: Mapping[str, Any], masked: Mapping[str, Any]) -> str:
    """Whether an attacker's updates passed or failed the masked checks, and why it passed (never a screening
    that did not happen)."""
    passed, rejected = fate["passed_rounds"], fate["rejected_rounds"]
    parts = []
    if rejected:
        parts.append(f"[green]rejected by the masked checks[/] in round(s) {_rounds(rejected)}")
    if passed:
        why = (
            "its norm is within the bound and its direction above the minimum cosine"
            + (
                " (round 1 has no reference, so no direction check)"
                if 1 in passed and masked.get("reference") != "committee"
                else ""
            )
            if masked["min_cosine"] is not None
            else "its norm is within the bound (its node clips like every node), and no direction check ran: "
            "masked checks cannot see direction without a trusted reference"
        )
        parts.append(f"[bold red]passed the masked checks[/] in round(s) {_rounds(passed)}: {why}")
    return "; ".join(parts) or "sent no update"


def _rounds(rounds: Sequence[int]) -> str:
    return ", ".join(str(r) for r in rounds)
