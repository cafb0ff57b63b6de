"""``fedledger node`` and ``fedledger task``: run one member's node; create a task."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.cli.evaluate import task_metrics
from fedledger.exceptions import ConfigError

if TYPE_CHECKING:
    from fedledger.federation import NodeEvent

task_app = typer.Typer(help="Training tasks.", no_args_is_help=True)


def node(
    data: Annotated[Path, typer.Option(help="This member's training data (CSV with a header).")],
    label: Annotated[str, typer.Option(help="Name of the label column.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    as_key: AsOpt = None,
    store: Annotated[str | None, typer.Option(help="Blob store URL (default: the workspace's store).")] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of local rows kept for validating others.")] = 0.2,
    poll: Annotated[float, typer.Option(help="Seconds between chain polls when idle.")] = 1.0,
    once: Annotated[bool, typer.Option(help="Do at most one action, then exit.")] = False,
) -> None:
    """Run this member's node until the task's last round closes (resumes from chain state)."""
    from fedledger.federation import LocalData, MemberNode
    from fedledger.learning import Standardizer, load_csv_dataset, train_val_split
    from fedledger.store import BlobStore

    dataset = load_csv_dataset(data, label)
    with open_workspace(workspace) as ws:
        client = ws.task(task)
        blobs = BlobStore(store or ws.root / ws.config.store)
        account = ws.account(as_key)
        member = MemberNode(
            name=as_key or ws.config.key,
            account=account,
            task=client,
            store=blobs,
            data=None,
            on_event=lambda e: console.print(_describe(e)),
            # Secure rounds: the member's round secrets, encrypted, so a restarted node can still reveal.
            state_dir=ws.root / "secagg" / (as_key or ws.config.key),
        )
        scaler = member.config.extra.get("standardizer")
        X = Standardizer.from_dict(scaler).transform(dataset.X) if scaler else dataset.X
        X_tr, y_tr, X_val, y_val = train_val_split(X, dataset.y, val_fraction=val_fraction, seed=member.config.seed)
        member.data = LocalData(X_tr, y_tr, X_val, y_val)
        while not member.done():
            acted = member.step()
            if once and acted:
                return
            if not acted:
                time.sleep(poll)
        console.print(f"task done: latest model {client.latest_model}")


def _describe(event: NodeEvent) -> str:
    details = ", ".join(f"{k}={v}" for k, v in event.details.items())
    return f"round {event.round_id}: {event.action} {details}"


@task_app.command("create")
def create(
    config_file: Annotated[Path, typer.Argument(help="Task config JSON (fields of TaskConfig; 'model' required).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    name: Annotated[str, typer.Option(help="Name of the task in this workspace.")] = "default",
    data_registry: Annotated[
        str | None,
        typer.Option(
            help="DataRegistry whose datasets commitments must reference (default: the workspace's, "
            "used when the config names a purpose)."
        ),
    ] = None,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a task: config and initial model go to the store, their hashes on chain."""
    from fedledger.federation import TaskConfig
    from fedledger.federation.setup import create_task
    from fedledger.store import BlobStore

    try:
        config = TaskConfig(**json.loads(config_file.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"cannot read task config {config_file}: {exc}") from exc
    with open_workspace(workspace) as ws:
        if name in ws.config.tasks:
            raise ConfigError(f"this workspace already has a task named {name!r}")
        registry = data_registry or (ws.config.data_registry if config.purpose else None) or None
        client = create_task(
            ws, ws.account(as_key), BlobStore(ws.root / ws.config.store), config, name, data_registry=registry
        )
        result = {
            "name": name,
            "address": client.address,
            "config_hash": client.params().config_hash,  # the committed config (with its evaluation board)
            "initial_model": client.latest_model,
        }
    if json_out:
        print_json(result)
    else:
        console.print(f"task {name} created at {client.address}")


task_app.command("metrics")(task_metrics)
