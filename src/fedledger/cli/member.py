"""``fedledger member``: admission, roles and revocation by M-of-N admin approval."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import InvalidArgument

app = typer.Typer(help="Consortium members: add, revoke, change roles, approve, list.", no_args_is_help=True)

_ZERO32 = "0x" + "00" * 32


def report_proposal(client: ConsortiumClient, proposal_id: int, action: str, json_out: bool) -> None:
    proposal = client.proposal(proposal_id)
    data = {
        "proposal_id": proposal_id,
        "action": action,
        "executed": proposal.executed,
        "approvals": proposal.approvals,
        "threshold": client.threshold,
    }
    if json_out:
        print_json(data)
    elif proposal.executed:
        console.print(f"[green]{action}[/]: done (proposal {proposal_id})")
    else:
        console.print(
            f"{action}: proposal {proposal_id} has {proposal.approvals}/{data['threshold']} approvals; "
            f"other admins run `fedledger governance vote {proposal_id}` (or `member approve`)"
        )


@app.command("add")
def add(
    address: Annotated[str, typer.Argument(help="The new member's address (0x...).")],
    org: Annotated[str, typer.Option(help="The member's organization name (public).")],
    roles: Annotated[str, typer.Option(help="Comma-separated: admin,trainer,validator,aggregator,auditor.")] = (
        "trainer,validator"
    ),
    cert_fingerprint: Annotated[str, typer.Option(help="SHA-256 fingerprint of its certificate (hex).")] = _ZERO32,
    kx_public_key: Annotated[str, typer.Option(help="Its X25519 key-agreement public key (hex).")] = _ZERO32,
    store_uri: Annotated[str, typer.Option(help="Where it publishes blobs.")] = "",
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose admitting a member (executes at once when the approval threshold is 1)."""
    with open_workspace(workspace) as ws:
        client = ws.consortium(ws.account(as_key))
        pid = client.propose_admit(
            address,
            org=org,
            roles=Role.parse(roles),
            cert_fingerprint=cert_fingerprint,
            kx_public_key=kx_public_key,
            store_uri=store_uri,
        )
        if client.proposal(pid).executed:
            ws.fund(address)  # dev chains: pay the newcomer's gas
        report_proposal(client, pid, f"admit {address}", json_out)


@app.command("revoke")
def revoke(
    address: Annotated[str, typer.Argument(help="The member to revoke, for good.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose revoking a member (a revoked address can never act again)."""
    with open_workspace(workspace) as ws:
        client = ws.consortium(ws.account(as_key))
        report_proposal(client, client.propose_revoke(address), f"revoke {address}", json_out)


@app.command("roles")
def set_roles(
    address: Annotated[str, typer.Argument(help="The member whose roles change.")],
    roles: Annotated[str, typer.Argument(help="The new roles, comma-separated.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose replacing a member's roles."""
    with open_workspace(workspace) as ws:
        client = ws.consortium(ws.account(as_key))
        report_proposal(client, client.propose_roles(address, Role.parse(roles)), f"set roles of {address}", json_out)


@app.command("threshold")
def set_threshold(
    threshold: Annotated[int, typer.Argument(help="Admin approvals needed to execute a proposal.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Propose a new M in M-of-N admin approval."""
    with open_workspace(workspace) as ws:
        client = ws.consortium(ws.account(as_key))
        admins = client.admin_count
        if threshold > admins:
            raise InvalidArgument(
                f"threshold above admin count: M-of-N approval needs at least {threshold} admins, the consortium "
                f"has {admins}; admit more members with the admin role first (member add ... --roles admin,...)",
                function="propose_threshold",
            )
        report_proposal(client, client.propose_threshold(threshold), f"set threshold to {threshold}", json_out)


@app.command("approve")
def approve(
    proposal_id: Annotated[int, typer.Argument(help="The proposal to approve.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Approve a pending proposal as an admin."""
    with open_workspace(workspace) as ws:
        client = ws.consortium(ws.account(as_key))
        client.approve(proposal_id)
        proposal = client.proposal(proposal_id)
        if proposal.executed and proposal.kind.name == "ADMIT":
            ws.fund(proposal.target)
        report_proposal(client, proposal_id, f"approve proposal {proposal_id}", json_out)


@app.command("proposals")
def proposals(workspace: WorkspaceOpt = DEFAULT_WS, json_out: JsonOpt = False) -> None:
    """List pending proposals."""
    with open_workspace(workspace) as ws:
        client = ws.consortium()
        pending = client.pending_proposals()
        threshold = client.threshold
    rows = [
        {
            "proposal_id": p.proposal_id,
            "kind": p.kind.name.lower(),
            "target": p.target,
            "roles": p.roles.names(),
            "threshold": p.threshold,
            "approvals": p.approvals,
            "needed": threshold,
            "proposer": p.proposer,
        }
        for p in pending
    ]
    if json_out:
        print_json(rows)
        return
    if not rows:
        console.print("no pending proposals")
    for row in rows:
        console.print(f"#{row['proposal_id']} {row['kind']} {row['target']} ({row['approvals']}/{row['needed']})")


@app.command("list")
def list_members(workspace: WorkspaceOpt = DEFAULT_WS, json_out: JsonOpt = False) -> None:
    """List every member ever admitted, with roles and status."""
    with open_workspace(workspace) as ws:
        members = ws.consortium().members()
    if json_out:
        print_json([m.to_json() for m in members])
        return
    table = Table("address", "organization", "roles", "status", "admitted at block")
    for m in members:
        table.add_row(m.address, m.org, ",".join(m.roles.names()), m.status.name.lower(), str(m.admitted_at))
    console.print(table)
