"""The ``fedledger`` command run in process through its real entry point, and the check that it refused."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from typer.testing import CliRunner

from fedledger.cli import main
from fedledger.cli.common import console, err_console

PASSWORD = "cli-test-password-0b7e"


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.stderr
        return json.loads(self.stdout)

    @property
    def message(self) -> str:
        """stderr on one line (the console may wrap long messages)."""
        return " ".join(self.stderr.split())


OUTPUTS: list[str] = []

# rich reads COLUMNS once, when the CLI's consoles are created, and a test process may import the CLI before any
# run sets it: pin the width the runs ask for, so tables never wrap by import order.
console.width = err_console.width = 200


def fedledger(*args: Any, password: str = PASSWORD, env: dict[str, str] | None = None) -> Run:
    """Run ``fedledger ARGS`` through the real entry point; returns exit code and output."""
    runner = CliRunner()
    environment = {
        "FEDLEDGER_PASSWORD": password,
        "FEDLEDGER_WORKSPACE": None,
        "COLUMNS": "200",
        **(env or {}),
    }
    argv = ["fedledger", *map(str, args)]
    with runner.isolation(env=environment) as (out, err, _):
        old_argv, sys.argv = sys.argv, argv
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = old_argv
            sys.stdout.flush()
            sys.stderr.flush()
        result = Run(code, out.getvalue().decode(), err.getvalue().decode())
    OUTPUTS.append(result.stdout + result.stderr)
    # The workspace password never shows, whatever the command did.
    assert PASSWORD not in result.stdout + result.stderr, argv
    return result


def cli_refused(*args: Any, code: int | None = None, **kwargs: Any) -> str:
    """Run ``fedledger ARGS``: it must fail (with exit ``code`` when one is given); returns its message."""
    result = fedledger(*args, **kwargs)
    assert result.code != 0, result.stdout
    if code is not None:
        assert result.code == code, result.message
    return result.message
