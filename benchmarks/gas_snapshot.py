"""Gas snapshot: gas used by every ledger operation, committed as gas-snapshot.json.

Runs the benchmark scenario of ``ledger.py`` (small and fixed: 3 members,
2 rounds) on a fresh embedded chain. Keys, hashes and call order are fixed, so
the same contracts always give the same numbers; a contract or compiler change
that moves gas shows up as a diff.

The file has two sections: "before", the figures of the single TrainingTask
contract measured before the task was split into modules (frozen: regenerating
keeps it as committed), and "after", the contracts as they stand now, with the
runtime code size of each, the gas of settling a round's rewards by its number of accepted updates, and the gas of
a secure round with masked checks (``masked_gas.py``).

    python benchmarks/gas_snapshot.py           # regenerate benchmarks/gas-snapshot.json
    python benchmarks/gas_snapshot.py --check   # exit 1, with a diff, when gas moved

``tests/benchmarks/test_gas_snapshot.py`` runs the check, so CI fails until the snapshot is
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

from incentives_gas import settle_gas  # noqa: E402
from ledger import OPERATIONS, WHOLE_ROUND, run_embedded  # noqa: E402
from masked_gas import masked_round_gas  # noqa: E402

SNAPSHOT = Path(__file__).resolve().parent / "gas-snapshot.json"
SCENARIO = {"members": 3, "rounds": 2, "deploys": 2, "approvals": 2}


def current() -> dict[str, Any]:
    """The "after" section as the contracts stand now: runtime code sizes and one list of gas per operation,
    in call order."""
    import vyper

    from fedledger.chain.compiler import CONTRACT_NAMES, compile_contract

    measured = run_embedded(
        SCENARIO["members"], SCENARIO["rounds"], deploys=SCENARIO["deploys"], approvals=SCENARIO["approvals"]
    )
    return {
        "chain": "embedded (py-evm, Prague rules)",
        "compiler": f"vyper {vyper.__version__}",
        "scenario": SCENARIO,
        "contracts": "TrainingTask (validated rounds) and SecureTrainingTask, composed of the contracts/modules",
        "runtime_bytes": {name: compile_contract(name).runtime_size for name in CONTRACT_NAMES},
        # The reward step: Incentives.settle_round by the round's accepted updates (benchmarks/incentives_gas.py).
        "settle_round by accepted updates": settle_gas(),
        # A secure round with masked checks, to its majority outcome and to an abort (benchmarks/masked_gas.py).
        "masked-check round": masked_round_gas(),
        "gas": {op: measured.gas[op] for op in (*OPERATIONS, WHOLE_ROUND)},
    }


def render(after: dict[str, Any], before: dict[str, Any] | None = None) -> str:
    """Stable text: the frozen "before" section (when given), then "after"; one operation per line, so a diff
    names the operation that moved."""
    sections = ([("before", before)] if before is not None else []) + [("after", after)]
    lines = ["{"]
    for s, (label, data) in enumerate(sections):
        lines.append(f"  {json.dumps(label)}: {{")
        for key in (k for k in data if k != "gas"):
            lines.append(f"    {json.dumps(key)}: {json.dumps(data[key], sort_keys=True)},")
        lines.append('    "gas": {')
        items = list(data["gas"].items())
        for i, (op, values) in enumerate(items):
            lines.append(f"      {json.dumps(op)}: {json.dumps(values)}{',' if i + 1 < len(items) else ''}")
        lines.append("    }")
        lines.append("  }" + ("," if s + 1 < len(sections) else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


def frozen_before(path: Path) -> dict[str, Any] | None:
    """The committed snapshot's "before" section: the figures the contracts were measured at before the
    split into modules, kept as they are for comparison (None when there is no snapshot yet)."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    before = data.get("before")
    return before if isinstance(before, dict) else None


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
    actual = render(current(), frozen_before(args.snapshot))
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
