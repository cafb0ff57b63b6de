"""``fedledger governance``: votes on running tasks and model releases, through the consortium's M-of-N rule.

A proposal carries a call the task vets at once (a setting outside the bounds the task declared mutable is refused
when proposed, with the task's reason); it executes when enough admins approved it. A setting changed by vote takes
effect when the next round opens.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from fedledger.chain.consortium import ConsortiumClient, Proposal, ProposalKind
from fedledger.chain.governance import (
    describe_call,
    describe_release,
    governance_state,
    set_param_call,
    set_paused_call,
)
from fedledger.chain.task import TrainingTaskClient
from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.cli.member import approve, report_proposal
from fedledger.exceptions import InvalidArgument, InvalidState

app = typer.Typer(
    help="Votes on running tasks (pause, resume, settings) and model releases: propose, vote, list, status.",
    no_args_is_help=True,
)
propose_app = typer.Typer(help="Propose a vote; it executes once enough admins approved it.", no_args_is_help=True)
app.add_typer(propose_app, name="propose")

TaskOpt = Annotated[str, typer.Option(help="Task name in the workspace.")]


@propose_app.command("pause")
def propose_pause(
    task: TaskOpt = "default", workspace: WorkspaceOpt = DEFAULT_WS, as_key: AsOpt = None, json_out: JsonOpt = False
) -> None:
    """Propose pausing the task: no new round opens (a round already open runs to its end)."""
    _propose_task_call(workspace, task, as_key, json_out, "pause", lambda t: set_paused_call(t, True))


@propose_app.command("resume")
def propose_resume(
    task: TaskOpt = "default", workspace: WorkspaceOpt = DEFAULT_WS, as_key: AsOpt = None, json_out: JsonOpt = False
) -> None:
    """Propose resuming a paused task."""
    _propose_task_call(workspace, task, as_key, json_out, "resume", lambda t: set_paused_call(t, False))


@propose_app.command("set")
def propose_set(
    name: Annotated[str, typer.Argument(help="A setting the task declared mutable, e.g. commit_duration.")],
    value: Annotated[int, typer.Argument(help="Its new value, within the declared bounds.")],
    task: TaskOpt = "default",
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose a new value of a mutable setting, in force from the round after the vote."""

    def build(client: TrainingTaskClient) -> bytes:
        payload = set_param_call(client, name, value)  # refuses a name no vote can change
        bounds = governance_state(client).bounds
        if name not in bounds:
            mutable = ", ".join(bounds) or "none"
            raise InvalidArgument(f"task {task!r} did not declare {name} mutable (its mutable settings: {mutable})")
        low, high = bounds[name]
        if not low <= value <= high:
            raise InvalidArgument(f"{name} = {value} is outside the bounds [{low}, {high}] task {task!r} declared")
        return payload

    _propose_task_call(workspace, task, as_key, json_out, f"set {name} = {value}", build)


@propose_app.command("release")
def propose_release(
    round_id: Annotated[int | None, typer.Option("--round", help="The finalized round (default: the latest).")] = None,
    task: TaskOpt = "default",
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose releasing a finalized model version for use outside the consortium."""
    with open_workspace(workspace) as ws:
        client = ws.task(task)
        if round_id is None:
            history = client.model_history()
            if not history:
                raise InvalidState(f"task {task!r} has no finalized round yet: there is no model to release")
            round_id = max(history)
        consortium = ws.consortium(ws.account(as_key))
        pid = consortium.propose_release(client.address, round_id)
        report_proposal(consortium, pid, f"release the model of round {round_id}", json_out)


# The same approval as `fedledger member approve`: one M-of-N rule for members, tasks and releases.
app.command(
    "vote", help="Approve a pending proposal as an admin; the approval that reaches the threshold executes it."
)(approve)


@app.command("cancel")
def cancel(
    proposal_id: Annotated[int, typer.Argument(help="The pending proposal to withdraw.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
) -> None:
    """Withdraw a pending proposal (any admin may)."""
    with open_workspace(workspace) as ws:
        ws.consortium(ws.account(as_key)).cancel(proposal_id)
    console.print(f"proposal {proposal_id} cancelled")


@app.command("list")
def list_proposals(
    all_: Annotated[bool, typer.Option("--all", help="Executed and cancelled proposals too.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Proposals with what each does, its approvals and its status (pending ones unless --all)."""
    with open_workspace(workspace) as ws:
        client = ws.consortium()
        threshold = client.threshold
        proposals = [client.proposal(i) for i in range(client.proposal_count)]
        rows = [_row(client, p, threshold) for p in proposals if all_ or not (p.executed or p.cancelled)]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no pending proposals" if not all_ else "no proposals")
        return
    table = Table("id", "proposal", "target", "approvals", "status")
    for row in rows:
        table.add_row(str(row["proposal_id"]), row["action"], row["target"], f"{row['approvals']}/{row['needed']}",
                      row["status"])  # fmt: skip
    console.print(table)


@app.command("status")
def status(task: TaskOpt = "default", workspace: WorkspaceOpt = DEFAULT_WS, json_out: JsonOpt = False) -> None:
    """The task's governed settings: paused or not, what may change within which bounds, values in force and
    staged for the next round, and the model versions released by vote."""
    with open_workspace(workspace) as ws:
        client = ws.task(task)
        consortium = ws.consortium()
        state = governance_state(client)
        versions = {0: client.params().initial_model, **client.model_history()}
        released = {r: consortium.released_at(client.address, h) for r, h in sorted(versions.items())}
    data = {**state.to_json(), "released": [{"round": r, "block": b} for r, b in released.items() if b]}
    if json_out:
        print_json(data)
        return
    console.print(f"task {task}: {'[yellow]paused[/]' if state.paused else 'running'}")
    for name, value in state.in_force.items():
        bounds = state.bounds.get(name)
        mutable = f"mutable in [{bounds[0]}, {bounds[1]}]" if bounds else "fixed"
        staged = f", {state.staged[name]} from the next round" if name in state.staged else ""
        console.print(f"  {name} = {value} ({mutable}{staged})")
    for entry in data["released"]:
        console.print(f"  model of round {entry['round']} released at block {entry['block']}")


def _propose_task_call(workspace: Any, task: str, as_key: str | None, json_out: bool, action: str, build: Any) -> None:
    with open_workspace(workspace) as ws:
        client = ws.task(task)
        consortium = ws.consortium(ws.account(as_key))
        pid = consortium.propose_call(client.address, build(client))
        report_proposal(consortium, pid, f"{action} (task {task})", json_out)


def _row(client: ConsortiumClient, p: Proposal, threshold: int) -> dict[str, Any]:
    return {
        "proposal_id": p.proposal_id,
        "kind": p.kind.name.lower(),
        "action": _action(client, p),
        "target": p.target,
        "approvals": p.approvals,
        "needed": threshold,
        "proposer": p.proposer,
        "status": "executed" if p.executed else "cancelled" if p.cancelled else "pending",
    }


def _action(client: ConsortiumClient, p: Proposal) -> str:
    if p.kind is ProposalKind.CALL:
        return describe_call(client.chain, p.target, client.proposal_payload(p.proposal_id))
    if p.kind is ProposalKind.RELEASE:
        round_id, model_hash = describe_release(client.proposal_payload(p.proposal_id))
        return f"release the model of round {round_id} ({model_hash[:10]}…)"
    if p.kind is ProposalKind.SET_ROLES:
        return f"set roles {','.join(p.roles.names())}"
    if p.kind is ProposalKind.SET_THRESHOLD:
        return f"set threshold {p.threshold}"
    return f"{p.kind.name.lower()} {p.org}".strip()
