"""``fedledger chain``: serve the embedded chain to other processes over JSON-RPC."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, err_console
from fedledger.exceptions import BadInput, ConfigError
from fedledger.workspace import Workspace, _lock_timeout

app = typer.Typer(help="The ledger itself: serve the embedded chain.", no_args_is_help=True)


def chain_directory(workspace: Path, directory: Path | None) -> Path:
    """The embedded chain to serve: ``directory`` as given, else the workspace's own."""
    if directory is not None:
        return directory
    ws = Workspace.load(workspace)
    spec = ws.config.chain
    if spec.kind != "embedded":
        raise ConfigError(
            f"workspace {workspace} uses the JSON-RPC node at {spec.url}: it has no embedded chain to serve "
            "(serve a bare chain folder with --dir)"
        )
    return ws.root / "chain"


@app.command("serve")
def serve(
    workspace: WorkspaceOpt = DEFAULT_WS,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Serve the chain in this folder (created if missing) instead of the workspace's."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one.")] = 8545,
    block_time: Annotated[
        float, typer.Option(help="Mine an empty block after this many idle seconds, so deadlines pass.")
    ] = 1.0,
    json_out: JsonOpt = False,
) -> None:
    """Serve the embedded chain over JSON-RPC until SIGINT or SIGTERM, for members in other processes.

    Members connect with `fedledger init --rpc URL`; the embedded chain's development faucet pays their gas
    (it is recognised by its chain id). Transactions are mined at once; an empty block follows every
    --block-time idle seconds.
    """
    from fedledger.chain.server import serve_chain

    if not block_time > 0:
        raise BadInput(f"--block-time must be a positive number of seconds, not {block_time}")
    if not 0 <= port <= 65535:
        raise BadInput(f"--port must be in [0, 65535], not {port}")
    folder = chain_directory(workspace, directory)
    server = serve_chain(folder, host=host, port=port, block_time=block_time, lock_timeout=_lock_timeout())
    try:
        if json_out:
            sys.stdout.write(json.dumps({"chain_id": server.chain_id, "url": server.url}, sort_keys=True) + "\n")
        else:
            console.print(
                f"Serving the embedded chain {folder} at {server.url} (chain id {server.chain_id}, "
                f"block time {block_time:g} s); Ctrl-C stops",
                soft_wrap=True,
                highlight=False,
            )
        sys.stdout.flush()
        server.run_forever()
    finally:
        server.close()
    if not json_out:
        err_console.print("chain server stopped; the chain is saved", highlight=False)
