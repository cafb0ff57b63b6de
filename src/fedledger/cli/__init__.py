"""Command-line interface: ``fedledger``."""

from fedledger.cli.app import app, main

__all__ = ["app", "main"]
