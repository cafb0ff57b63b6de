"""The ``fedledger data`` command group, on its own so that the command modules can register on it without
importing the package that imports them."""

from __future__ import annotations

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Local data privacy pipeline: classify columns, protect them, record ownership and consent, erase.",
    no_args_is_help=True,
)
