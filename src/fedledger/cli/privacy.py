"""``fedledger privacy``: differential-privacy spend per member and for the task.

The spends shown are the cumulative epsilons members declared with their
updates (:class:`fedledger.privacy.accounting.SpendRecord`): by default read from
the task's ``UpdateCommitted`` events (the TrainingTask contract records each
commitment's declared micro-epsilon and refuses one above the budget), or from a
file (``--from``): a spends file (``fedledger-privacy-spends/1``) or a saved
privacy ledger (``fedledger-privacy-ledger/1``, e.g. a simulation's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import ConfigError
from fedledger.workspace import Workspace

__all__ = ["app", "report", "spends_on_chain"]

app = typer.Typer(help="Differential privacy: budget spend per member and task.", no_args_is_help=True)


@app.command("report")
def report(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    from_file: Annotated[
        Path | None,
        typer.Option("--from", help="Spends file or saved privacy ledger (JSON) to report on instead of the chain."),
    ] = None,
    budget: Annotated[
        float | None, typer.Option(help="Budget epsilon to compare with (default: the file's, if any).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Epsilon spent by each member (latest cumulative declaration) and by the task (the largest)."""
    from fedledger.privacy.accounting import build_privacy_report, read_spends

    if from_file is None:
        records, file_budget, delta = _spends_on_chain(workspace, task)
    else:
        records, file_budget, delta = read_spends(from_file)
    result = build_privacy_report(records, budget_epsilon=budget if budget is not None else file_budget, delta=delta)
    if json_out:
        print_json(result.to_json())
        return
    table = Table(title="Privacy spend" + (f" (delta = {result.delta:g})" if result.delta is not None else ""))
    table.add_column("member")
    table.add_column("rounds", justify="right")
    table.add_column("epsilon", justify="right")
    table.add_column("remaining", justify="right")
    table.add_column("status")
    for spend in result.members:
        status = "[red]over budget[/]" if spend.over_budget else ("ok" if spend.remaining is not None else "")
        table.add_row(
            spend.member,
            str(len(spend.rounds)),
            f"{spend.epsilon:.4f}",
            "" if spend.remaining is None else f"{spend.remaining:.4f}",
            status,
        )
    console.print(table)
    budget_text = f" of budget {result.budget_epsilon:g}" if result.budget_epsilon is not None else ""
    console.print(f"task: epsilon {result.task_epsilon:.4f}{budget_text} over {len(result.members)} members")


def _spends_on_chain(workspace: Path, task_name: str) -> tuple[list[Any], float | None, float | None]:
    with open_workspace(workspace) as ws:
        return spends_on_chain(ws, task_name)


def spends_on_chain(ws: Workspace, task_name: str) -> tuple[list[Any], float | None, float | None]:
    """Every member's declared cumulative spend, from the task's UpdateCommitted events; the budget the
    contract enforces; delta from the task config the contract commits to (fetched from the store by hash)."""
    from fedledger.chain.events import UpdateCommitted
    from fedledger.federation import TaskConfig
    from fedledger.privacy.accounting import SpendRecord, micro_to_epsilon

    task = ws.task(task_name)
    params = task.params()
    if params.privacy_budget == 0:
        raise ConfigError(f"task {task_name!r} has no privacy budget: it runs without differential privacy")
    config = TaskConfig.from_bytes(ws.store().get(params.config_hash.removeprefix("0x")))
    records = [
        SpendRecord(e.member, e.round_id, micro_to_epsilon(e.epsilon_micro))
        for e in task.events()
        if isinstance(e, UpdateCommitted)
    ]
    return records, micro_to_epsilon(params.privacy_budget), config.dp_delta
