"""``fedledger node``: run one member's node until its task ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedledger.cli.common import DEFAULT_WS, AsOpt, WorkspaceOpt, console, open_workspace
from fedledger.cli.evaluate import task_metrics
from fedledger.cli.task import task_app
from fedledger.exceptions import ChainError, ContractRevert, RoundsAborted, StoreError

if TYPE_CHECKING:
    from fedledger.federation import MemberNode, NodeEvent

__all__ = ["node", "task_app"]

log = logging.getLogger("fedledger.node")

MAX_BACKOFF = 30.0
STATS_WAIT = 3600.0  # how long a node waits for the other participants' preparation statistics


def node(
    data: Annotated[Path, typer.Option(help="This member's own table (CSV), prepared by the task's recipe.")],
    label: Annotated[
        str | None, typer.Option(help="Label column (default: the one the task's preparation recipe names).")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    as_key: AsOpt = None,
    store: Annotated[str | None, typer.Option(help="Blob store URL (default: the workspace's store).")] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Share of local rows kept for validating others' updates and evaluating models.")
    ] = 0.2,
    poll: Annotated[float, typer.Option(help="Seconds between chain reads while nothing is due.")] = 0.2,
    once: Annotated[bool, typer.Option(help="Do at most one action (or nothing, when nothing is due), then exit.")] = (
        False
    ),
) -> None:
    """Run this member's node until the task's last round closes (resumes from chain state after a restart).

    Exits 0 when every round finalized, and non-zero with a summary when rounds were aborted."""
    from fedledger.federation import MemberNode
    from fedledger.federation.local_data import agreed_recipe, load_member_data
    from fedledger.federation.setup import register_kx_key
    from fedledger.store import BlobStore

    with open_workspace(workspace) as ws:
        client = ws.task(task)
        blobs = BlobStore(store) if store else ws.store()
        account = ws.account(as_key)
        name = as_key or ws.config.key
        member = MemberNode(
            name=name,
            account=account,
            task=client,
            store=blobs,
            data=None,
            on_event=lambda e: console.print(_describe(e), highlight=False),
            # Secure rounds: the member's round secrets, encrypted, so a restarted node can still reveal.
            state_dir=ws.root / "secagg" / name,
        )
        if register_kx_key(ws.consortium(), account):
            console.print(f"registered the key-agreement key of {account.address} (secure aggregation, statistics)")
        recipe = agreed_recipe(
            member.config,
            client,
            blobs,
            account=account,
            table=data,
            wait=STATS_WAIT,
            on_wait=lambda missing: console.print(f"waiting for preparation statistics from {', '.join(missing)}"),
        )
        member.data = load_member_data(member.config, data, label=label, recipe=recipe, val_fraction=val_fraction)
        if once:
            if not member.step():
                console.print("nothing due")
            return
        _run(member, poll, _MetricsPoster(member))
        _finish(member)


class _MetricsPoster:
    """Federated evaluation: after each finalized round the member scores its model on its validation split and
    posts the metrics (a blob, its hash on the task's bulletin); nobody sees the rows."""

    def __init__(self, member: MemberNode) -> None:
        from fedledger.federation.evaluation import task_bulletin

        self.member = member
        self.bulletin = (
            task_bulletin(member.task, member.store, member.account) if member.config.evaluation_board else None
        )
        self.through = 0

    def __call__(self) -> None:
        from fedledger.chain.task import Phase
        from fedledger.federation.evaluation import post_round_metrics

        member, data = self.member, self.member.data
        if self.bulletin is None or data is None or len(data.y_val) == 0:
            return
        current = member.task.current_round
        for r in range(self.through + 1, current + 1):
            phase = member.task.round(r).phase
            if phase is Phase.FINALIZED:
                try:
                    post_round_metrics(
                        member.task, self.bulletin, member.store, member.account, r, data.X_val, data.y_val
                    )
                except ContractRevert as exc:  # evaluation is a report: its failure must not stop training
                    console.print(f"[yellow]round {r}: metrics not posted:[/] {exc}", highlight=False)
            elif phase is not Phase.ABORTED:
                return  # still running: later
            self.through = r


def _run(member: MemberNode, poll: float, after_step: Callable[[], None]) -> None:
    """Step until the task is done; an unreachable chain or store is retried with backoff."""
    backoff = poll
    while True:
        try:
            if member.done():
                after_step()
                return
            acted = member.step()
            if not acted:
                after_step()
            backoff = poll
        except (ChainError, StoreError) as exc:
            backoff = min(MAX_BACKOFF, max(2 * backoff, 0.5))
            console.print(f"[yellow]retrying in {backoff:.1f} s:[/] {exc}", highlight=False)
            time.sleep(backoff)
            continue
        if not acted:
            time.sleep(poll)


def _finish(member: MemberNode) -> None:
    from fedledger.federation.status import round_outcomes

    outcomes = round_outcomes(member.task)
    finalized, aborted = outcomes["finalized"], outcomes["aborted"]
    console.print(
        f"task done: {len(finalized)} rounds finalized, {len(aborted)} aborted; latest model {member.task.latest_model}"
    )
    if aborted:
        raise RoundsAborted(
            f"{len(aborted)} of {len(finalized) + len(aborted)} rounds aborted: {', '.join(map(str, aborted))} "
            "(`fedledger task status` and `fedledger ledger events` show why)",
            rounds=aborted,
        )


def _describe(event: NodeEvent) -> str:
    details = ", ".join(f"{k}={v}" for k, v in event.details.items())
    return f"round {event.round_id}: {event.action} {details}"


task_app.command("metrics")(task_metrics)
