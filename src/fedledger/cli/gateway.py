"""``fedledger gateway``: run an edge gateway's node, its update the secure aggregate of its own devices'."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console

from fedledger.cli.common import DEFAULT_WS, AsOpt, WorkspaceOpt, console, err_console, open_workspace
from fedledger.cli.node import _finish, _MetricsPoster, _retrying, _run
from fedledger.cli.node import _start as start_member

if TYPE_CHECKING:
    from fedledger.federation.gateway import GatewayNode
    from fedledger.federation.hierarchy import DeviceSettings
    from fedledger.workspace import Workspace

__all__ = ["gateway"]


def gateway(
    data: Annotated[Path, typer.Option(help="The gateway's table (CSV): its devices' rows, prepared by the recipe.")],
    devices: Annotated[int, typer.Option(help="Devices behind this gateway; each trains on its own slice of rows.")],
    neighbours: Annotated[
        int, typer.Option(help="Devices each device masks with (SecAgg+ degree, even); 0 for every other device.")
    ] = 8,
    dropout_tolerance: Annotated[
        float, typer.Option(help="Share of a device's group that may drop out with the sum still recovered.")
    ] = 0.3,
    device_epochs: Annotated[int, typer.Option(help="Local epochs each device trains per round.")] = 5,
    device_batch_size: Annotated[
        int, typer.Option(help="Each device's minibatch size (0: the task's).", show_default=True)
    ] = 8,
    device_dropout: Annotated[
        float, typer.Option(help="Simulated: share of devices going offline each round after sharing keys.")
    ] = 0.0,
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    as_key: AsOpt = None,
    store: Annotated[str | None, typer.Option(help="Blob store URL (default: the workspace's store).")] = None,
    val_fraction: Annotated[
        float, typer.Option(help="Share of the gateway's rows kept for validating others' updates and evaluating.")
    ] = 0.2,
    poll: Annotated[float, typer.Option(help="Seconds between checks for a new block while nothing is due.")] = 0.05,
    json_events: Annotated[
        bool, typer.Option("--json", help="Print each action as one JSON object per line (with its Unix time).")
    ] = False,
) -> None:
    """Run an edge gateway until the task's last round closes: each round its devices train, their updates are
    summed by secure aggregation among them, and the gateway commits their mean with a manifest the audit checks
    (docs/iot-hierarchy.md). Exits 0 when every round finalized."""
    from fedledger.federation.hierarchy import DeviceSettings

    settings = DeviceSettings(
        devices=devices,
        neighbours=neighbours or None,
        dropout_tolerance=dropout_tolerance,
        epochs=device_epochs,
        batch_size=device_batch_size or None,
        dropout=device_dropout,
    )
    say = err_console if json_events else console
    with open_workspace(workspace) as ws:
        member = _retrying(
            lambda: _start(ws, data, settings, task, as_key, store, val_fraction, json_events, say), poll, say
        )
        _run(member, poll, _MetricsPoster(member, say), say)
        _retrying(lambda: _finish(member, say), poll, say)


def _start(
    ws: Workspace,
    data: Path,
    settings: DeviceSettings,
    task: str,
    as_key: str | None,
    store: str | None,
    val_fraction: float,
    json_events: bool,
    say: Console,
) -> GatewayNode:
    """The gateway's node, ready to step: as ``fedledger node`` starts a member, with its devices dealt out."""
    from fedledger.federation.gateway import GatewayNode

    def build(**member: Any) -> GatewayNode:
        return GatewayNode(devices=settings, **member)

    gateway = cast(
        "GatewayNode", start_member(ws, data, None, task, as_key, store, val_fraction, json_events, say, build)
    )
    rows = len(gateway.data.y_train) if gateway.data is not None else 0
    say.print(f"{len(gateway.fleet.ids)} devices behind {gateway.name}, {rows} training rows among them")
    return gateway
