"""``fedledger serve``: the REST API and dashboard over this workspace's ledger; ``serve login`` signs in to one
with a member key and prints a session token for the dashboard or any HTTP client."""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from fedledger.cli.common import (
    DEFAULT_WS,
    AsOpt,
    JsonOpt,
    WorkspaceOpt,
    console,
    err_console,
    open_workspace,
    print_json,
)
from fedledger.exceptions import BadInput, ConfigError

__all__ = ["DEFAULT_PORT", "app"]

DEFAULT_PORT = 8321
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
_LOOPBACK = ("127.0.0.1", "::1", "localhost")

app = typer.Typer(
    help="Serve the REST API and dashboard over this workspace's ledger (read only); sign in to one.",
    invoke_without_command=True,
)


@app.callback()
def serve(
    ctx: typer.Context,
    workspace: WorkspaceOpt = DEFAULT_WS,
    host: Annotated[str, typer.Option(help="Address to listen on (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = DEFAULT_PORT,
    auditor_token_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the auditor's token (32+ characters; `fedledger serve auditor-token FILE` makes one). "
            "Default: FEDLEDGER_AUDITOR_TOKEN, else no auditor access."
        ),
    ] = None,
) -> None:
    """Serve the API (/api/v1, schema at /api/v1/openapi.json) and the dashboard (/) until interrupted.

    Nothing is public: readers sign in with a member key (`fedledger serve login`) or use the auditor token. On an
    embedded chain the server holds the chain while it runs; to follow a task other processes are running, serve
    the chain (`fedledger chain serve`) and point the workspaces at it."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from fedledger.api import create_app
    from fedledger.api.auth import AUDITOR_TOKEN_ENV

    token = auditor_token_file.read_text() if auditor_token_file else os.environ.get(AUDITOR_TOKEN_ENV)
    if host not in _LOOPBACK:
        err_console.print(
            f"[yellow]listening on {host}[/]: the API speaks plain HTTP; put a TLS proxy in front of it "
            "before anyone signs in over a network"
        )
    with open_workspace(workspace) as ws:
        api = create_app(ws, auditor_token=token or None)
        console.print(f"fedledger dashboard on http://{_url_host(host)}:{port}/ (sign in: fedledger serve login)")
        uvicorn.run(api, host=host, port=port, log_level="warning")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@app.command("auditor-token")
def auditor_token(
    out: Annotated[Path, typer.Argument(help="File to write the new token to (readable by its owner only).")],
) -> None:
    """Write a new random auditor token to OUT, for `fedledger serve --auditor-token-file OUT`."""
    if out.exists():
        raise BadInput(f"{out} exists: pick a new file (an auditor token is never overwritten)")
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(32) + "\n")
    console.print(f"wrote an auditor token to {out}")


@app.command("login")
def login(
    url: Annotated[str, typer.Option(help="The server's URL.")] = DEFAULT_URL,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign in to a fedledger server with this member's key (EIP-4361) and print the session token."""
    from eth_account.messages import encode_defunct

    from fedledger.api import siwe_message

    base = url.rstrip("/")
    with open_workspace(workspace) as ws:
        account = ws.account(as_key)
    fields = _http(f"{base}/api/v1/auth/nonce")
    expected = urllib.parse.urlsplit(base).netloc
    if fields["domain"] != expected:
        raise BadInput(f"the server at {base} asks to sign in to {fields['domain']!r}: refusing to sign")
    message = siwe_message(
        domain=fields["domain"],
        address=account.address,
        uri=fields["uri"],
        chain_id=int(fields["chain_id"]),
        nonce=fields["nonce"],
        issued_at=datetime.fromisoformat(fields["issued_at"]),
        expiration_time=datetime.fromisoformat(fields["expiration_time"]),
    )
    signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    session = _http(f"{base}/api/v1/auth/login", {"message": message, "signature": signature})
    if json_out:
        print_json(session)
    else:
        print(session["token"])


def _http(url: str, body: dict[str, Any] | None = None) -> Any:
    """GET (or POST ``body`` as JSON to) ``url``; the JSON answer. A refusal is :class:`BadInput` with the
    server's reason; an unreachable server is :class:`ConfigError`."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("detail", exc.reason)
        except (ValueError, AttributeError):
            detail = exc.reason
        raise BadInput(f"sign-in refused ({exc.code}): {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ConfigError(f"cannot reach a fedledger server at {url}: {exc}") from exc
