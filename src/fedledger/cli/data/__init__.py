"""``fedledger data``: the local data privacy pipeline (scan, label, protect, vault, erase, register).

Each submodule registers its commands on :data:`app` (defined in :mod:`._app`); they are imported here so
that every command is listed by ``fedledger data --help``.
"""

from __future__ import annotations

from fedledger.cli.data import goal, lifecycle, protect, scan, vault  # noqa: F401  (register the commands)
from fedledger.cli.data._app import app

__all__ = ["app"]
