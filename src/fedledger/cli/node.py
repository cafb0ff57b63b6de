"""``fedledger node``: run one member's node until its task ends."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from fedledger.cli.common import DEFAULT_WS, AsOpt, WorkspaceOpt, console, err_console, open_workspace
from fedledger.cli.evaluate import task_metrics
from fedledger.cli.task import task_app
from fedledger.exceptions import ChainError, ContractRevert, RoundsAborted, StoreError

if TYPE_CHECKING:
    from fedledger.chain import Chain
    from fedledger.federation import MemberNode, NodeEvent
    from fedledger.federation.mpc_endpoint import MpcSetting
    from fedledger.workspace import Workspace

__all__ = ["node", "task_app"]

log = logging.getLogger("fedledger.node")
T = TypeVar("T")

MAX_BACKOFF = 30.0
STATS_WAIT = 3600.0  # how long a node waits for the other participants' preparation statistics
REREAD_SECONDS = 1.0  # the longest a node goes without reading its view of the task


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
    poll: Annotated[
        float, typer.Option(help="Seconds between checks for a new block while nothing is due (a cheap read).")
    ] = 0.05,
    once: Annotated[bool, typer.Option(help="Do at most one action (or nothing, when nothing is due), then exit.")] = (
        False
    ),
    json_events: Annotated[
        bool, typer.Option("--json", help="Print each action as one JSON object per line (with its Unix time).")
    ] = False,
    relay: Annotated[
        str | None,
        typer.Option(help="In a task with batched commitments: the relay's URL this member sends its commitments to."),
    ] = None,
    mpc_host: Annotated[
        str | None,
        typer.Option(
            help="In a task with masked checks: the host (IP address or DNS name) other committee members reach this "
            "member's MPC party at, published on the task's bulletin (default: the workspace's mpc_host; none: the "
            "committee runs on one host)."
        ),
    ] = None,
    mpc_ports: Annotated[
        str | None,
        typer.Option(
            help="The port range LOW-HIGH this member's MPC party listens in (default: the workspace's mpc_ports, "
            "else 14000-14099)."
        ),
    ] = None,
) -> None:
    """Run this member's node until the task's last round closes (resumes from chain state after a restart).

    Exits 0 when every round finalized, and non-zero with a summary when rounds were aborted."""
    # With --json, stdout carries only the event lines; everything else goes to stderr.
    say = err_console if json_events else console
    with open_workspace(workspace) as ws:
        # A node started (or restarted) while its chain node or store is down waits for them, as a running one does.
        endpoint = _mpc_setting(ws, mpc_host, mpc_ports)
        member = _retrying(
            lambda: _start(
                ws, data, label, task, as_key, store, val_fraction, json_events, say, relay_url=relay, mpc=endpoint
            ),
            poll,
            say,
        )
        if once:
            if not member.step():
                say.print("nothing due")
            return
        _run(member, poll, _MetricsPoster(member, say), say)
        _retrying(lambda: _finish(member, say), poll, say)


def _start(
    ws: Workspace,
    data: Path,
    label: str | None,
    task: str,
    as_key: str | None,
    store: str | None,
    val_fraction: float,
    json_events: bool,
    say: Console,
    build: Callable[..., MemberNode] | None = None,
    *,
    relay_url: str | None = None,
    mpc: MpcSetting | None = None,
) -> MemberNode:
    """This member's node, ready to step: its key-agreement key registered, its data prepared by the agreed recipe.
    ``build`` makes the node from the member's settings (a gateway's node); a plain :class:`MemberNode` otherwise."""
    from fedledger.federation import MemberNode
    from fedledger.federation.local_data import agreed_recipe, load_member_data
    from fedledger.federation.setup import register_kx_key
    from fedledger.store import BlobStore

    client = ws.task(task)
    blobs = BlobStore(store) if store else ws.store()
    account = ws.account(as_key)
    name = as_key or ws.config.key
    member = (build or MemberNode)(
        name=name,
        account=account,
        task=client,
        store=blobs,
        data=None,
        on_event=_print_json if json_events else _print_line,
        # Secure rounds: the member's round secrets, encrypted, so a restarted node can still reveal.
        state_dir=ws.root / "secagg" / name,
        relay_url=relay_url,
        mpc_endpoint=mpc,
    )
    if register_kx_key(ws.consortium(), account):
        say.print(f"registered the key-agreement key of {account.address} (secure aggregation, statistics)")
    recipe = agreed_recipe(
        member.config,
        client,
        blobs,
        account=account,
        table=data,
        wait=STATS_WAIT,
        on_wait=lambda missing: say.print(f"waiting for preparation statistics from {', '.join(missing)}"),
    )
    member.data = load_member_data(member.config, data, label=label, recipe=recipe, val_fraction=val_fraction)
    return member


def _mpc_setting(ws: Workspace, host: str | None, ports: str | None) -> MpcSetting | None:
    """This node's MPC endpoint: the options, else the workspace's ``mpc_host`` / ``mpc_ports``; None without a host."""
    from fedledger.federation.mpc_endpoint import MpcSetting

    host = ws.config.mpc_host if host is None else host
    ports = ws.config.mpc_ports if ports is None else ports
    return MpcSetting.parse(host, ports) if host.strip() else None


class _MetricsPoster:
    """Federated evaluation: after each finalized round the member scores its model on its validation split and
    posts the metrics (a blob, its hash on the task's bulletin); nobody sees the rows."""

    def __init__(self, member: MemberNode, say: Console) -> None:
        from fedledger.federation.evaluation import task_bulletin

        self.member = member
        self.say = say
        self.bulletin = (
            task_bulletin(member.task, member.store, member.account) if member.config.evaluation_board else None
        )
        self.through = 0

    def __call__(self) -> None:
        from fedledger.chain.task import Phase
        from fedledger.federation.evaluation import post_round_metrics

        member, data, view = self.member, self.member.data, self.member.view
        if self.bulletin is None or data is None or len(data.y_val) == 0 or view is None or view.round is None:
            return
        current = view.current_round
        for r in range(self.through + 1, current + 1):
            # The current round's phase is in the last step's view; an earlier one is read once, when it is past.
            phase = view.round.phase if r == current else member.task.round(r).phase
            if phase is Phase.FINALIZED:
                try:
                    post_round_metrics(
                        member.task, self.bulletin, member.store, member.account, r, data.X_val, data.y_val
                    )
                except ContractRevert as exc:  # evaluation is a report: its failure must not stop training
                    self.say.print(f"[yellow]round {r}: metrics not posted:[/] {exc}", highlight=False)
            elif phase is not Phase.ABORTED:
                return  # still running: later
            self.through = r


def _retrying(fn: Callable[[], T], poll: float, say: Console) -> T:
    """``fn()``, retried with the run loop's backoff while the chain or the store cannot be reached."""
    backoff = poll
    while True:
        try:
            return fn()
        except (ChainError, StoreError) as exc:
            backoff = _back_off(backoff, exc, say)


def _back_off(backoff: float, exc: Exception, say: Console) -> float:
    """Say why, sleep the next, doubled backoff (half a second at least, ``MAX_BACKOFF`` at most) and return it."""
    backoff = min(MAX_BACKOFF, max(2 * backoff, 0.5))
    say.print(f"[yellow]retrying in {backoff:.1f} s:[/] {exc}", highlight=False)
    time.sleep(backoff)
    return backoff


def _run(member: MemberNode, poll: float, after_step: Callable[[], None], say: Console) -> None:
    """Step until the task is done; an unreachable chain or store is retried with backoff.

    Between steps the node watches the chain head (one cheap ``eth_blockNumber`` every ``poll`` seconds) and
    reads its view again when a block arrives: every other member's action is a transaction, so a member reacts
    within ``poll`` of it without loading the node with full reads. It also reads at least every
    ``REREAD_SECONDS``, for deadlines on a chain that mines no block while idle."""
    backoff = poll
    chain = member.task.chain
    while True:
        try:
            head = chain.block_number
            if member.step():
                backoff = poll
                continue
            after_step()
            if member.done_at_last_step():
                return
            backoff = poll
            _wait_for_block(chain, head, poll)
        except (ChainError, StoreError) as exc:
            backoff = _back_off(backoff, exc, say)


def _wait_for_block(chain: Chain, head: int, poll: float) -> None:
    """Return once the chain has a block after ``head``, or after ``REREAD_SECONDS``."""
    give_up = time.monotonic() + REREAD_SECONDS
    while time.monotonic() < give_up:
        time.sleep(poll)
        if chain.block_number != head:
            return


def _finish(member: MemberNode, say: Console) -> None:
    from fedledger.federation.status import round_outcomes

    outcomes = round_outcomes(member.task)
    finalized, aborted = outcomes["finalized"], outcomes["aborted"]
    say.print(
        f"task done: {len(finalized)} rounds finalized, {len(aborted)} aborted; latest model {member.task.latest_model}"
    )
    if aborted:
        raise RoundsAborted(
            f"{len(aborted)} of {len(finalized) + len(aborted)} rounds aborted: {', '.join(map(str, aborted))} "
            "(`fedledger task status` and `fedledger ledger events` show why)",
            rounds=aborted,
        )


def _print_line(event: NodeEvent) -> None:
    details = ", ".join(f"{k}={v}" for k, v in event.details.items())
    stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    console.print(f"{stamp} round {event.round_id}: {event.action} {details}", highlight=False, soft_wrap=True)


def _print_json(event: NodeEvent) -> None:
    record = {"time": round(time.time(), 3), "round": event.round_id, "action": event.action, **event.details}
    print(json.dumps(record, default=str), flush=True)


task_app.command("metrics")(task_metrics)
