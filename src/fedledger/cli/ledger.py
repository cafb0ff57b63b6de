"""``fedledger ledger``: what the chain says."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from fedledger.chain.consortium import MemberStatus, Role
from fedledger.chain.incentives import IncentivesClient
from fedledger.chain.task import Phase
from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.workspace import Workspace

app = typer.Typer(help="Ledger state and events.", no_args_is_help=True)


def ledger_status(ws: Workspace) -> dict[str, Any]:
    chain = ws.chain
    status: dict[str, Any] = {
        "chain": {
            "kind": ws.config.chain.kind,
            "location": chain.location,
            "chain_id": chain.chain_id,
            "block_number": chain.block_number,
            "timestamp": chain.timestamp(),
        },
        "consortium": None,
        "tasks": {},
    }
    if ws.config.consortium:
        client = ws.consortium()
        members = client.members()
        active = [m for m in members if m.status is MemberStatus.ACTIVE]
        status["consortium"] = {
            "address": client.address,
            "members": len(members),
            "active_members": len(active),
            "revoked_members": len(members) - len(active),
            "admins": sum(1 for m in active if Role.ADMIN in m.roles),
            "threshold": client.threshold,
            "pending_proposals": len(client.pending_proposals()),
        }
    for name in sorted(ws.config.tasks):
        task = ws.task(name)
        current = task.current_round
        status["tasks"][name] = {
            "address": task.address,
            "current_round": current,
            "phase": task.round(current).phase.name.lower() if current else Phase.NONE.name.lower(),
            "latest_model": task.latest_model,
            "finalized_rounds": len(task.model_history()),
        }
    return status


@app.command("status")
def status(workspace: WorkspaceOpt = DEFAULT_WS, json_out: JsonOpt = False) -> None:
    """Chain, consortium and task state."""
    with open_workspace(workspace) as ws:
        data = ledger_status(ws)
    if json_out:
        print_json(data)
        return
    c = data["chain"]
    console.print(f"chain      {c['kind']} {c['location']} (id {c['chain_id']}), block {c['block_number']}")
    if data["consortium"]:
        k = data["consortium"]
        console.print(
            f"consortium {k['address']}: {k['active_members']} active members "
            f"({k['revoked_members']} revoked), {k['admins']} admins, threshold {k['threshold']}, "
            f"{k['pending_proposals']} pending proposals"
        )
    for name, t in data["tasks"].items():
        console.print(
            f"task {name} {t['address']}: round {t['current_round']} ({t['phase']}), "
            f"{t['finalized_rounds']} finalized, model {t['latest_model']}"
        )


def ledger_events(ws: Workspace, from_block: int = 0) -> list[dict[str, Any]]:
    events = []
    if ws.config.consortium:
        events += ws.consortium().events(from_block=from_block)
    for name in sorted(ws.config.tasks):
        task = ws.task(name)
        events += task.events(from_block=from_block)
        gate = task.params().stake_gate
        if int(gate, 16):  # the task's incentives: its pool, contributions, credits, claims and slashes
            events += IncentivesClient(ws.chain, gate).events(from_block=from_block)
    events.sort(key=lambda e: (e.block_number, e.log_index))
    return [e.to_json() for e in events]


@app.command("events")
def events(
    workspace: WorkspaceOpt = DEFAULT_WS,
    from_block: Annotated[int, typer.Option(help="First block to read.")] = 0,
    name: Annotated[str | None, typer.Option("--name", help="Only events with this name.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Every contract event, in chain order."""
    with open_workspace(workspace) as ws:
        rows = ledger_events(ws, from_block)
    if name:
        rows = [r for r in rows if r["event"] == name]
    if json_out:
        print_json(rows)
        return
    table = Table("block", "event", "details")
    skip = {"event", "contract", "block_number", "tx_hash", "log_index"}
    for row in rows:
        details = ", ".join(f"{k}={v}" for k, v in row.items() if k not in skip)
        table.add_row(str(row["block_number"]), row["event"], details)
    console.print(table)
