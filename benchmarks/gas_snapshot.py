"""Gas snapshot: gas used by every ledger operation, committed as gas-snapshot.json.

Runs the benchmark scenario of ``ledger.py`` (small and fixed: 3 members,
2 rounds) on a fresh embedded chain. Keys, hashes and call order are fixed, so
the same contracts always give the same numbers; a contract or compiler change
that moves gas shows up as a diff.

    python benchmarks/gas_snapshot.py           # regenerate benchmarks/gas-snapshot.json
    python benchmarks/gas_snapshot.py --check   # exit 1, with a diff, when gas moved

``tests/test_gas_snapshot.py`` runs the check, so CI fails until the snapshot is
regenerated (and the change reviewed) with the first command.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import OPERATIONS, WHOLE_ROUND, run_embedded  # noqa: E402

SNAPSHOT = Path(__file__).resolve().parent / "gas-snapshot.json"
SCENARIO = {"members": 3, "rounds": 2, "deploys": 2, "approvals": 2}


def current() -> dict[str, Any]:
    """The snapshot as the contracts stand now (one list of gas per operation, in call order)."""
    import vyper

    measured = run_embedded(
        SCENARIO["members"], SCENARIO["rounds"], deploys=SCENARIO["deploys"], approvals=SCENARIO["approvals"]
    )
    return {
        "chain": "embedded (py-evm, Prague rules)",
        "compiler": f"vyper {vyper.__version__}",
        "scenario": SCENARIO,
        "gas": {op: measured.gas[op] for op in (*OPERATIONS, WHOLE_ROUND)},
    }


def render(data: dict[str, Any]) -> str:
    """Stable text: one operation per line, so a diff names the operation that moved."""
    lines = ["{"]
    for key in ("chain", "compiler", "scenario"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(data[key], sort_keys=True)},")
    lines.append('  "gas": {')
    items = list(data["gas"].items())
    for i, (op, values) in enumerate(items):
        lines.append(f"    {json.dumps(op)}: {json.dumps(values)}{',' if i + 1 < len(items) else ''}")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def diff(expected: str, actual: str, path: Path) -> str:
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=f"{path} (committed)",
            tofile=f"{path} (current)",
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate or check the committed gas snapshot.")
    parser.add_argument("--check", action="store_true", help="compare with the snapshot instead of writing it")
    parser.add_argument("--snapshot", type=Path, default=SNAPSHOT, help="snapshot file (default: %(default)s)")
    args = parser.parse_args(argv)
    actual = render(current())
    if not args.check:
        args.snapshot.write_text(actual)
        print(f"wrote {args.snapshot}")
        return 0
    try:
        expected = args.snapshot.read_text()
    except FileNotFoundError:
        print(f"no gas snapshot at {args.snapshot}: run `python benchmarks/gas_snapshot.py`", file=sys.stderr)
        return 1
    if expected == actual:
        print(f"gas snapshot {args.snapshot} is up to date")
        return 0
    print(diff(expected, actual, args.snapshot))
    print(
        "gas used changed: review the diff, then regenerate with `python benchmarks/gas_snapshot.py`",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
