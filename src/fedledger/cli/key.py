"""``fedledger key``: member keys in the workspace's encrypted keystore."""

from __future__ import annotations

from typing import Annotated

import typer
from eth_account.signers.local import LocalAccount

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.identity.keystore import password_from_env_or_prompt

app = typer.Typer(help="Member keys (encrypted keystore v3 files).", no_args_is_help=True)


@app.command("new")
def new(
    name: Annotated[str, typer.Argument(help="Name of the new key.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Create a key; prints its address (the password comes from FEDLEDGER_PASSWORD or a prompt)."""
    with open_workspace(workspace) as ws:
        account = ws.keystore.create(name, password_from_env_or_prompt(name, confirm=True))
    kx = _kx_public_key(account)
    if json_out:
        print_json({"name": name, "address": account.address, "kx_public_key": kx})
    else:
        console.print(f"key {name}: {account.address}")
        console.print(f"  X25519 key-agreement public key (for `fedledger member add --kx-public-key`): {kx}")


@app.command("kx")
def kx_public_key(
    name: Annotated[str, typer.Argument(help="Name of the key.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Print the key's X25519 key-agreement public key, which secure aggregation pairs members with.

    It is derived from the key itself (HKDF), so the keystore stays the member's only secret; an admin
    registers it with ``fedledger member add --kx-public-key``.
    """
    with open_workspace(workspace) as ws:
        kx = _kx_public_key(ws.account(name))
    if json_out:
        print_json({"name": name, "kx_public_key": kx})
    else:
        console.print(kx)


def _kx_public_key(account: LocalAccount) -> str:
    from fedledger.federation.secure import identity_key

    return "0x" + identity_key(account).public_bytes.hex()


@app.command("list")
def list_keys(workspace: WorkspaceOpt = DEFAULT_WS, json_out: JsonOpt = False) -> None:
    """List the workspace's keys and addresses (no password needed)."""
    with open_workspace(workspace) as ws:
        rows = [{"name": n, "address": ws.keystore.address(n)} for n in ws.keystore.names()]
    if json_out:
        print_json(rows)
    else:
        for row in rows:
            console.print(f"{row['name']:<20} {row['address']}")
