"""The ``fedledger`` command: root app, ``init``, and error handling."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.encoding import as_address
from fedledger.cli import audit as audit_cmd
from fedledger.cli import batch as batch_cmd
from fedledger.cli import chain as chain_cmd
from fedledger.cli import data as data_cmd
from fedledger.cli import governance as governance_cmd
from fedledger.cli import key as key_cmd
from fedledger.cli import ledger as ledger_cmd
from fedledger.cli import member as member_cmd
from fedledger.cli import models as models_cmd
from fedledger.cli import privacy as privacy_cmd
from fedledger.cli import report as report_cmd
from fedledger.cli import rewards as rewards_cmd
from fedledger.cli import serve as serve_cmd
from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, err_console, print_json
from fedledger.cli.demo import demo as demo_command
from fedledger.cli.evaluate import evaluate_command
from fedledger.cli.gateway import gateway as gateway_command
from fedledger.cli.node import node as node_command
from fedledger.cli.node import task_app
from fedledger.exceptions import ConfigError, FedLedgerError, exit_code_for
from fedledger.identity.keystore import STANDARD_SCRYPT_N, password_from_env_or_prompt
from fedledger.workspace import ChainSpec, Workspace


class _FedLedgerGroup(TyperGroup):
    """Turns fedledger errors into a one-line message and the exception class's exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except FedLedgerError as exc:
            err_console.print(f"[red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            ctx.exit(exit_code_for(exc))


app = typer.Typer(
    cls=_FedLedgerGroup,
    name="fedledger",
    help="Privacy-preserving, verifiable federated learning coordinated by smart contracts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(member_cmd.app, name="member")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(key_cmd.app, name="key")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(chain_cmd.app, name="chain")
app.add_typer(models_cmd.app, name="models")
app.add_typer(data_cmd.app, name="data")
app.add_typer(privacy_cmd.app, name="privacy")
app.add_typer(rewards_cmd.app, name="rewards")
app.add_typer(governance_cmd.app, name="governance")
app.add_typer(batch_cmd.app, name="batch")
app.add_typer(report_cmd.app, name="report")
app.add_typer(serve_cmd.app, name="serve")
app.command("demo")(demo_command)
app.command("evaluate")(evaluate_command)
app.command("node")(node_command)
app.command("gateway")(gateway_command)
app.add_typer(task_app, name="task")


@app.command()
def init(
    workspace: WorkspaceOpt = DEFAULT_WS,
    org: Annotated[str, typer.Option(help="Your organization's name (public, on the ledger).")] = "founder",
    key: Annotated[str, typer.Option(help="Name of the key this workspace acts with.")] = "admin",
    roles: Annotated[str, typer.Option(help="Your roles, comma-separated; a founder must include admin.")] = (
        "admin,trainer,validator,aggregator,auditor"
    ),
    rpc: Annotated[
        str | None, typer.Option(help="JSON-RPC URL of an Ethereum node; default: the embedded chain.")
    ] = None,
    consortium: Annotated[
        str | None, typer.Option(help="Join an existing consortium at this address instead of founding one.")
    ] = None,
    store_uri: Annotated[
        str,
        typer.Option(
            help="The shared blob store (URL, e.g. s3://bucket/prefix, or a folder every member can reach): "
            "used by this workspace and recorded on the ledger, so members joining your tasks find it. "
            "Default: a folder inside the workspace."
        ),
    ] = "",
    light_kdf: Annotated[
        bool, typer.Option(help="Cheaper scrypt for the keystore (simulations only; still keystore v3).")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a workspace: a key, a chain connection, and a consortium (founded or joined)."""
    from fedledger.federation.secure import identity_key
    from fedledger.federation.setup import register_kx_key

    spec = ChainSpec(kind="rpc", url=rpc) if rpc else ChainSpec()
    ws = Workspace.create(workspace, chain=spec, scrypt_n=2**14 if light_kdf else STANDARD_SCRYPT_N)
    try:
        ws.config.key = key
        password = password_from_env_or_prompt(key, confirm=True)
        account = ws.keystore.create(key, password)
        if store_uri:
            ws.config.store = store_uri if "://" in store_uri else str(Path(store_uri).resolve())
            store_uri = ws.config.store
        ws.save()
        funded = ws.fund(account.address)
        if consortium:
            ws.config.consortium = as_address(consortium, what="consortium address")
            members = ws.consortium()
            if members.is_active(account.address):  # admitted before it had a workspace: publish its kx key now
                register_kx_key(members, account)
        else:
            if not funded and ws.chain.balance(account.address) == 0:
                raise ConfigError(
                    f"key {account.address} has no funds on {spec.url} to deploy the consortium: "
                    "fund it, or set FEDLEDGER_FAUCET_KEY to a funded key on a dev network"
                )
            client = ConsortiumClient.deploy(
                ws.chain,
                account,
                org=org,
                roles=Role.parse(roles),
                store_uri=store_uri or ws.store().url,
                # The founder takes part in secure aggregation like any member.
                kx_public_key=identity_key(account).public_bytes,
            )
            ws.config.consortium = client.address
        ws.save()
        result = {
            "workspace": str(ws.root),
            "chain": ws.config.chain.kind,
            "chain_id": ws.chain.chain_id,
            "address": account.address,
            "consortium": ws.config.consortium,
        }
    finally:
        ws.close()
    if json_out:
        print_json(result)
    else:
        console.print(f"[green]Initialized[/] workspace {result['workspace']} on the {result['chain']} chain")
        console.print(f"  your address:  {result['address']}")
        console.print(f"  consortium:    {result['consortium']}")


def main() -> None:
    """Entry point of the ``fedledger`` command."""
    app()
