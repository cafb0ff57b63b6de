"""``fedledger data goal``: declare what a data file is for before using it (purpose, lawful basis, retention, and
the columns the purpose needs), or show the goal declared for it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from fedledger.cli.common import JsonOpt, console, print_json
from fedledger.cli.data import app
from fedledger.exceptions import BadInput

if TYPE_CHECKING:
    from fedledger.data.goal import Goal

__all__ = ["goal"]


@app.command("goal")
def goal(
    file: Annotated[Path, typer.Argument(help="The data file (CSV or Parquet) the goal is for.", show_default=False)],
    purpose: Annotated[
        str | None,
        typer.Option(help="The purpose of processing, as registered on the ledger, e.g. model-training:heart-disease."),
    ] = None,
    basis: Annotated[
        str | None,
        typer.Option(
            help="Lawful basis (GDPR Art. 6(1)): consent, contract, legal_obligation, vital_interests, public_task "
            "or legitimate_interests."
        ),
    ] = None,
    retention: Annotated[
        str | None, typer.Option(help="How long the data may be kept: 90d, 26w, 6m, 5y, or a last day YYYY-MM-DD.")
    ] = None,
    columns: Annotated[
        str | None, typer.Option(help="The columns the purpose needs, comma-separated; protect drops the others.")
    ] = None,
    description: Annotated[str, typer.Option(help="A sentence on what the data is used for.")] = "",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the goal (default: FILE.goal.json).")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Declare the goal of FILE (all of --purpose, --basis, --retention and --columns), or show it (none of them).

    The goal is written atomically beside the data; `data protect` applies it (dropping the columns the purpose
    does not need) and a registration records its hash."""
    from fedledger.data.goal import Goal, goal_path_for
    from fedledger.data.tabular import table_columns

    target = out or goal_path_for(file)
    options = {"--purpose": purpose, "--basis": basis, "--retention": retention, "--columns": columns}
    given = [name for name, value in options.items() if value is not None]
    if not given:
        shown = Goal.load(target)
        _show(shown, target, json_out)
        return
    if purpose is None or basis is None or retention is None or columns is None:
        missing = [name for name, value in options.items() if value is None]
        raise BadInput(f"declaring a goal needs {', '.join(missing)} as well (or none of them, to show the goal)")
    needed = [c.strip() for c in columns.split(",") if c.strip()]
    if not needed:
        raise BadInput("--columns: name at least one column the purpose needs")
    declared = Goal.declare(
        file,
        purpose=purpose,
        lawful_basis=basis,
        retention=retention,
        columns=needed,
        available=table_columns(file),
        description=description,
    )
    replaced = Goal.load(target).digest if target.exists() else None
    declared.write(target)
    if json_out:
        print_json(declared.to_json() | {"file": str(target), "sha256": declared.digest, "replaced": replaced})
        return
    console.print(f"wrote {escape(str(target))}" + (f" (replacing goal {replaced[:12]})" if replaced else ""))
    _show(Goal.load(target), target, False)


def _show(shown: Goal, path: Path, json_out: bool) -> None:
    if json_out:
        print_json(shown.to_json() | {"file": str(path), "sha256": shown.digest})
        return
    console.print(
        f"purpose {escape(shown.purpose)}, lawful basis {shown.lawful_basis}, retention {shown.retention}",
        highlight=False,
    )
    console.print(f"columns needed: {escape(', '.join(shown.columns))}", highlight=False)
    if shown.description:
        console.print(escape(shown.description), highlight=False)
    console.print(f"sha256 {shown.digest}", highlight=False)
