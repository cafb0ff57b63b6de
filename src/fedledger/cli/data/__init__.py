"""``fedledger data``: the local data privacy pipeline (scan, label, protect, vault, erase, register).

Each submodule registers its commands on :data:`app`; they are imported here, after
``app`` exists, so every command is listed by ``fedledger data --help``.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Local data privacy pipeline: classify columns, protect them, record ownership and consent, erase.",
    no_args_is_help=True,
)

from fedledger.cli.data import goal, lifecycle, protect, scan, vault  # noqa: E402,F401  (register the commands)
