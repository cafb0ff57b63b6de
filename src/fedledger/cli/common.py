"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fedledger.workspace import DEFAULT_WORKSPACE, Workspace

console = Console()
err_console = Console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace folder.", envvar="FEDLEDGER_WORKSPACE"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print stable, machine-readable JSON.")]
AsOpt = Annotated[
    str | None,
    typer.Option("--as", help="Name of the workspace key that signs (default: the workspace's key)."),
]
DEFAULT_WS = DEFAULT_WORKSPACE


def print_json(data: Any) -> None:
    """JSON on stdout with sorted keys: stable across runs and versions."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


@contextmanager
def open_workspace(path: Path) -> Iterator[Workspace]:
    ws = Workspace.load(path)
    try:
        yield ws
    finally:
        ws.close()
