"""``fedledger task``: create a task from a TOML file, join one by address, follow its rounds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import ConfigError

task_app = typer.Typer(help="Training tasks: create, join, status.", no_args_is_help=True)

NameOpt = Annotated[str, typer.Option(help="Name of the task in this workspace.")]


@task_app.command("create")
def create(
    config_file: Annotated[
        Path, typer.Argument(help="Task config: TOML (fields in docs/guide.md; [model] required) or JSON.")
    ],
    workspace: WorkspaceOpt = DEFAULT_WS,
    name: NameOpt = "default",
    data_registry: Annotated[
        str | None,
        typer.Option(
            help="DataRegistry whose datasets commitments must reference (default: the workspace's, "
            "used when the config names a purpose)."
        ),
    ] = None,
    fund: Annotated[
        int,
        typer.Option(
            "--fund",
            min=0,
            help="Fund the task's reward pool with this amount (smallest unit of the pool's currency or token), "
            "from the creating account; needs incentives in the config (reward_per_round).",
        ),
    ] = 0,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a task: config and initial model go to the store, their hashes on chain. A config with incentives
    also gets its Incentives contract (reward pool, stakes), named by the task as its stake gate."""
    from fedledger.federation.config_file import load_task_config
    from fedledger.federation.setup import create_task

    config = load_task_config(config_file)
    with open_workspace(workspace) as ws:
        if name in ws.config.tasks:
            raise ConfigError(f"this workspace already has a task named {name!r}")
        registry = data_registry or (ws.config.data_registry if config.purpose else None) or None
        client = create_task(ws, ws.account(as_key), ws.store(), config, name, data_registry=registry, reward_pool=fund)
        gate = client.params().stake_gate
        result = {
            "name": name,
            "address": client.address,
            "config_hash": client.params().config_hash,
            "initial_model": client.latest_model,
            "store": ws.store().url,
            "incentives": None if int(gate, 16) == 0 else gate,
            "reward_pool": fund,
        }
    if json_out:
        print_json(result)
    else:
        console.print(f"task {name} created at {result['address']}")
        console.print(f"  others join it with: fedledger task join {result['address']}")
        if result["incentives"]:
            console.print(f"  incentives (reward pool {fund}, stakes) at {result['incentives']}")


@task_app.command("join")
def join(
    address: Annotated[str, typer.Argument(help="The task contract's address (its creator tells you).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    name: NameOpt = "default",
    store: Annotated[
        str | None,
        typer.Option(help="Blob store URL (default: the store its creator published on the ledger)."),
    ] = None,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Join a task: record it in this workspace, use its store, and register this member's key-agreement key
    (secure aggregation) on the ledger."""
    from fedledger.federation.setup import join_task

    with open_workspace(workspace) as ws:
        joined = join_task(ws, address, name=name, store=store, account=ws.account(as_key))
    if json_out:
        print_json(joined)
    else:
        console.print(f"joined task {name} at {joined['address']} as {joined['member']} ({', '.join(joined['roles'])})")
        console.print(f"  store: {joined['store']}")
        console.print(f"  config {joined['config_hash']}, {joined['rounds']} rounds")


@task_app.command("status")
def status(
    workspace: WorkspaceOpt = DEFAULT_WS,
    name: NameOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """The current round: phase, deadlines, who committed, who is late."""
    from fedledger.federation.status import task_status

    with open_workspace(workspace) as ws:
        report = task_status(ws.task(name), ws.consortium(), ws.store())
    if json_out:
        print_json(report)
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    console.print(
        f"task {report['task']}: round {report['current_round']} of {report['rounds']}, "
        f"{report['rounds_finalized']} finalized, {report['rounds_aborted']} aborted"
    )
    current = report.get("round")
    if current is None:
        console.print("  no round opened yet")
        return
    console.print(f"  phase {current['phase']} (chain time {report['chain_time']})")
    for deadline in ("commit_deadline", "validate_deadline", "aggregate_deadline"):
        left = current[deadline] - report["chain_time"]
        when = f"in {left} s" if left >= 0 else f"passed {-left} s ago"
        console.print(f"  {deadline.replace('_', ' ')}: {current[deadline]} ({when})")
    console.print(f"  committed ({len(current['committed'])}): {', '.join(current['committed']) or '-'}")
    label = "late" if current["commit_deadline_passed"] else "not yet committed"
    console.print(f"  {label} ({len(current['missing'])}): {', '.join(current['missing']) or '-'}")
    if current["phase"] in ("validate", "aggregate", "finalized"):
        console.print(f"  scored {current['num_scored']} of {current['expected_validators']} validators")
    if current["accepted"] or current["phase"] in ("aggregate", "finalized"):
        console.print(f"  accepted updates: {current['accepted']}")
    if current["model_hash"] != "0x" + "00" * 32:
        console.print(f"  model {current['model_hash']}")
