"""``fedledger audit``: independent verification from chain events and the store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import VerificationFailed

if TYPE_CHECKING:
    from fedledger.audit import PayoutAudit

app = typer.Typer(help="Independent audit of the ledger.", no_args_is_help=True)


@app.command("verify")
def verify(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    json_out: JsonOpt = False,
    batches: Annotated[
        str | None,
        typer.Option(
            help="CommitmentBatches contract: also check every leaf of the task's batches (default: a batched "
            "task's own)."
        ),
    ] = None,
) -> None:
    """Re-derive every round (and, for a task with incentives, every payout) from chain events and blobs; exit
    non-zero at the first discrepancy.

    Oversized or malformed committed blobs are listed as refused, and everything else is still checked.
    """
    from fedledger.audit import verify_task

    with open_workspace(workspace) as ws:
        report = verify_task(ws.chain, ws.config.consortium, ws.task(task).address, ws.store(), batches=batches)
    if json_out:
        print_json(report.to_json())
    else:
        for refused in report.refused:
            console.print(f"[yellow]refused blob[/]: {escape(str(refused))}")
        if report.ok:
            left_out = f" ({len(report.refused)} refused blobs left out, as the rules do)" if report.refused else ""
            console.print(
                f"[green]verified[/]: {report.rounds_checked} finalized rounds, {report.updates_checked} updates, "
                f"{report.models_checked} models match the ledger{left_out}"
            )
        if report.payouts is not None:
            _print_payouts(report.payouts)
        if report.batches is not None:
            b = report.batches
            verdict = "[green]batches verified[/]" if b.ok else "[red]batches disputed[/]"
            console.print(
                f"{verdict}: {b.batches_checked} batches, {b.leaves_checked} leaves, "
                f"{b.deliveries_checked} deliveries checked"
            )
            for d in b.caught:
                console.print(f"  invalidated on chain: {escape(str(d))}")
    if not report.ok:
        raise VerificationFailed(str(report.discrepancies[0]))


def _print_payouts(payouts: PayoutAudit) -> None:
    from fedledger.audit import TRUSTED

    verdict = "[green]payouts verified[/]" if payouts.ok else "[red]payouts disputed[/]"
    unsettled = f"; rounds not settled yet: {payouts.unsettled_rounds}" if payouts.unsettled_rounds else ""
    console.print(
        f"{verdict}: {payouts.rounds_settled} settled rounds, {payouts.credits_checked} credits, "
        f"{payouts.claims_checked} claims, {payouts.slashes_checked} slashes re-derived from the ledger{unsettled}"
    )
    for d in payouts.discrepancies:
        console.print(f"  [red]discrepancy[/]: {escape(str(d))}")
    console.print(f"  trusted: {TRUSTED}")
