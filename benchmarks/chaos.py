#!/usr/bin/env python3
"""Chaos run: a consortium of separate ``fedledger node`` processes on the raw heart-disease files runs its task while
a seeded monkey SIGKILLs up to a third of the members (one aggregator among them) at random points, restarts them
after a random delay, and restarts the chain node once. Prints the counts the targets are about and exits non-zero
if one is missed:

* 0 rounds lost (a round that neither finalized nor aborted by a contract rule whose condition the ledger shows);
* 0 double commitments (a member committing twice in one round);
* 0 process crashes (a node exit the monkey did not cause: a code other than 0 and "rounds aborted", or a
  traceback in its log);
* ``fedledger audit verify`` passing at the end, from two members' workspaces.

    python benchmarks/chaos.py                                # 6 members, 30 rounds, served chain, seed 0
    python benchmarks/chaos.py --chain anvil --seed 3
    python benchmarks/chaos.py --rounds 30 --results benchmarks/results/chaos.md --json /tmp/chaos.json

The core is ``benchmarks/chaos_lib.py``; ``tests/benchmarks/test_chaos.py`` runs a short variant.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaos_lib import Result, run_chaos
from chaos_plan import DEFAULT_DATA, ROOT, Settings


def markdown(result: Result, command: str) -> str:
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    settings = result.settings
    lines = [
        "# benchmarks/chaos.py",
        "",
        f"The latest run, {time.strftime('%Y-%m-%d')}, commit {commit}, {platform.python_version()}, "
        f"{settings['chain']} chain, {len(result.members)} members, {settings['rounds']} rounds, "
        f"phase deadlines {settings['phase_seconds']} s:",
        "",
        "```",
        command,
        "```",
        "",
        "| count | value | target |",
        "|---|---:|---:|",
        f"| rounds finalized | {result.rounds_finalized} of {result.rounds} | |",
        f"| rounds aborted by a rule | {result.rule_aborts} | |",
        f"| rounds lost | {len(result.rounds_lost)} | 0 |",
        f"| double commitments | {len(result.double_commitments)} | 0 |",
        f"| process crashes | {len(result.crashes)} | 0 |",
        f"| audit verify | {'passed' if result.audit['passed'] else 'FAILED'} | passed |",
        "",
        f"Node processes: {len(result.processes)}, {sum(1 for p in result.processes if p['killed'])} of them "
        f"SIGKILLed by the monkey. Wall time {result.wall_seconds:.0f} s, of which setting up the consortium "
        f"{result.setup_seconds:.0f} s.",
        "",
        f"Aggregators: {', '.join(result.aggregators)}. Victims: {', '.join(result.victims)}.",
        "",
    ]
    if result.aborts:
        lines += ["Aborted rounds:", ""]
        lines += [f"* round {a['round']}: {a['reason']} ({a['evidence']})" for a in result.aborts]
        lines.append("")
    lines += ["What the monkey did (seconds from the nodes' start):", "", "```", *result.monkey_log, "```", ""]
    lines.append("Targets: " + ("all met." if not result.failures else "MISSED: " + "; ".join(result.failures)))
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chain", choices=("served", "anvil"), default="served")
    parser.add_argument("--phase-seconds", type=int, default=10, help="commit, validate and aggregate deadlines")
    parser.add_argument("--kills-per-victim", type=int, default=2)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the processed.*.data files")
    parser.add_argument("--workdir", type=Path, help="where workspaces and logs go (default: a new temporary folder)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds before every node is killed")
    parser.add_argument("--json", type=Path, help="also write the full result as JSON here")
    parser.add_argument("--results", type=Path, help="write a markdown report of the run here")
    args = parser.parse_args()
    if not args.data.is_dir():
        print(f"no heart-disease data in {args.data}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fedledger-chaos-"))
    settings = Settings(
        workdir=workdir,
        members=args.members,
        rounds=args.rounds,
        seed=args.seed,
        chain=args.chain,
        phase_seconds=args.phase_seconds,
        kills_per_victim=args.kills_per_victim,
        data=args.data,
        timeout=args.timeout,
    )
    result = run_chaos(settings)
    print()
    print(result.summary())
    print(f"files and logs: {workdir}")
    for crash in result.crashes:
        print(f"\ncrash: {crash['member']} process {crash['process']} exited {crash['returncode']}: {crash['log']}")
        print(crash["log_tail"])
    if args.json:
        args.json.write_text(json.dumps(result.to_json(), indent=2, default=str))
    if args.results:
        command = "python benchmarks/chaos.py " + shlex.join(sys.argv[1:])
        args.results.write_text(markdown(result, command.strip()))
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
