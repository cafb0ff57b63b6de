"""``fedledger evaluate`` and ``fedledger task metrics``: score a round's global model on this member's holdout
data (and post the metrics on the task's Bulletin); show every member's posted metrics and their pooled value."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json

if TYPE_CHECKING:
    from fedledger.chain.task import TrainingTaskClient
    from fedledger.federation.evaluation import RoundMetrics
    from fedledger.learning.metrics import Metrics

__all__ = ["evaluate_command", "task_metrics"]

TaskOpt = Annotated[str, typer.Option(help="Task name in the workspace.")]
RoundOpt = Annotated[int | None, typer.Option("--round", help="Round (0: the initial model; default: the latest).")]


def _latest_round(client: TrainingTaskClient) -> int:
    """The latest finalized round (0 when none finalized: the initial model)."""
    return max(client.model_history(), default=0)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _metric_cells(m: Metrics) -> list[str]:
    return [str(m.n), _fmt(m.accuracy), _fmt(m.f1), _fmt(m.roc_auc), _fmt(m.pr_auc), _fmt(m.log_loss)]


_COLUMNS = ("n", "accuracy", "F1", "ROC-AUC", "PR-AUC", "log loss")


def evaluate_command(
    data: Annotated[
        Path, typer.Option(help="This member's holdout table, prepared as the task prepares training data.")
    ],
    label: Annotated[
        str | None, typer.Option(help="Label column (default: the one the task's preparation recipe names).")
    ] = None,
    round_id: RoundOpt = None,
    task: TaskOpt = "default",
    workspace: WorkspaceOpt = DEFAULT_WS,
    post: Annotated[
        bool, typer.Option("--post", help="Post the metrics on the task's Bulletin (once per member and round).")
    ] = False,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Score the global model of a round on this member's holdout CSV (and post it with --post)."""
    from fedledger.federation.evaluation import evaluate_round, post_metrics_report, task_bulletin, task_config
    from fedledger.federation.local_data import agreed_recipe, load_member_table

    with open_workspace(workspace) as ws:
        client = ws.task(task)
        store = ws.store()  # as `fedledger models export` reads it
        config = task_config(client, store)
        recipe = agreed_recipe(config, client, store)
        X, y, _ = load_member_table(config, data, label=label, recipe=recipe)
        r = _latest_round(client) if round_id is None else round_id
        account = ws.account(as_key) if post else None
        member = account.address if account is not None else ws.keystore.address(as_key or ws.config.key)
        report = evaluate_round(client, store, member, r, X, y)
        posted: dict[str, Any] | None = None
        if account is not None:
            blob_hash, new = post_metrics_report(task_bulletin(client, store, account), store, report)
            posted = {"blob": blob_hash, "new": new}
    m = report.metrics
    if json_out:
        print_json(
            {
                "task": report.task,
                "round": report.round_id,
                "model_hash": report.model_hash,
                "member": report.member,
                "metrics": m.to_json(),
                "posted": posted,
            }
        )
        return
    table = Table(*_COLUMNS, title=f"Round {r} model {report.model_hash[:12]}.. on {data.name}")
    table.add_row(*_metric_cells(m))
    console.print(table)
    if posted is not None:
        verb = "posted" if posted["new"] else "already posted"
        console.print(f"{verb}: metrics blob {posted['blob']}")


def task_metrics(
    round_id: Annotated[int | None, typer.Option("--round", help="Only this round (default: every round).")] = None,
    task: TaskOpt = "default",
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Every member's posted metrics and their pooled value, per round."""
    from fedledger.chain.bulletin import METRICS_TOPIC
    from fedledger.federation.evaluation import round_metrics, task_bulletin

    with open_workspace(workspace) as ws:
        client = ws.task(task)
        store = ws.store()  # as `fedledger models export` reads it
        bulletin = task_bulletin(client, store)
        if round_id is None:
            rounds = sorted({p.round_id for p in bulletin.posts(client.address, topic=METRICS_TOPIC)})
        else:
            rounds = [round_id]
        results = [round_metrics(client, bulletin, store, r) for r in rounds]
        posters = {p for res in results for p in (*res.members, *res.invalid)}
        orgs = {p: ws.consortium().member(p).org for p in posters}
    if json_out:
        print_json(
            {
                "task": client.address,
                "bulletin": bulletin.address,
                "rounds": [res.to_json() for res in results],
                "organizations": orgs,
            }
        )
        return
    if not results:
        console.print("no metrics posted yet")
    for res in results:
        _print_round(res, orgs)


def _print_round(res: RoundMetrics, orgs: dict[str, str]) -> None:
    table = Table("member", *_COLUMNS, title=f"Round {res.round_id} (model {res.model_hash[:12]}..)")
    for member, m in res.members.items():
        table.add_row(f"{orgs.get(member, '')} {member[:10]}..", *_metric_cells(m))
    if res.pooled is not None:
        table.add_row(f"[bold]pooled ({res.pooled.members} members)[/]", *_metric_cells(res.pooled))
    console.print(table)
    for member, reason in res.invalid.items():
        console.print(f"[red]invalid[/] {orgs.get(member, '')} {member}: {reason}")
