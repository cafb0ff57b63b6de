"""``fedledger models``: the task's model versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import BadInput

app = typer.Typer(help="Model versions: list and export.", no_args_is_help=True)


@app.command("list")
def list_models(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    json_out: JsonOpt = False,
) -> None:
    """Every finalized model version (round -> hash), starting with the initial model, and whether a consortium
    vote released it (``fedledger governance propose release``)."""
    with open_workspace(workspace) as ws:
        client, consortium = ws.task(task), ws.consortium()
        versions = [(0, client.params().initial_model), *sorted(client.model_history().items())]
        rows = [
            {"round": r, "model_hash": h, "released_at_block": consortium.released_at(client.address, h) or None}
            for r, h in versions
        ]
    if json_out:
        print_json(rows)
        return
    for row in rows:
        released = f"  released at block {row['released_at_block']}" if row["released_at_block"] else ""
        console.print(f"round {row['round']:>4}  {row['model_hash']}{released}")


@app.command("export")
def export(
    out: Annotated[Path, typer.Argument(help="Output file (.safetensors) or folder (native format).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: Annotated[str, typer.Option(help="Task name in the workspace.")] = "default",
    round_id: Annotated[int | None, typer.Option("--round", help="Round to export (default: latest).")] = None,
    fmt: Annotated[str, typer.Option("--format", help="safetensors | native")] = "safetensors",
) -> None:
    """Export a model version as safetensors or in its framework's own format."""
    from fedledger.learning import build_model, decode_model

    if fmt not in ("safetensors", "native"):
        raise BadInput(f"unknown format {fmt!r}: expected safetensors or native")
    with open_workspace(workspace) as ws:
        client = ws.task(task)
        if round_id is None:
            model_hash = client.latest_model
        elif round_id == 0:
            model_hash = client.params().initial_model
        else:
            model_hash = client.model_at(round_id)
        blob = ws.store().get(model_hash.removeprefix("0x"))
    if fmt == "safetensors":
        out.write_bytes(blob)
        written = out
    else:
        model = decode_model(blob)
        adapter = build_model(model.spec)
        adapter.set_params(model.params)
        written = adapter.export(out)
    console.print(f"exported model {model_hash} to {written}")
