"""Fuzz every reader of untrusted bytes: blobs, a round's check and aggregation, CSV tables, config files and
every file a CLI command reads. Targets and the seeded mutator: ``benchmarks/fuzz_lib.py``.

    python benchmarks/fuzz.py --cases 100000            # split evenly over every target
    python benchmarks/fuzz.py --cases 2000 --target check_update --seed 7

Cases run in child processes (one per batch), so a segfault or a case past ``--timeout`` is one counted crash,
not the end of the run. Prints one row per target: cases, accepted, named rejections, crashes, the largest
growth of the child's peak RSS in one case, the child's largest RSS and the longest case. The first crashing
inputs of each target are written to ``--crashes`` with their error; replay one with ``--replay FILE``.
Exits 1 on any crash.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzz_lib  # noqa: E402


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000, help="total cases, split evenly over the targets")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", action="append", help="run only this target (repeatable)")
    parser.add_argument("--group", action="append", help="run only this group: blob, round, csv, config, cli-file")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take before it is a hang")
    parser.add_argument("--batch", type=int, default=2000, help="cases per child process")
    parser.add_argument("--no-trace", action="store_true", help="skip the per-case peak memory (Linux /proc)")
    parser.add_argument("--crashes", type=Path, default=Path("fuzz-crashes"), help="where crashing inputs go")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument("--replay", type=Path, help="run this input file against --target in this process")
    args = parser.parse_args(argv)

    import fedledger.federation  # noqa: F401 - the recursion limit a node runs with

    targets = fuzz_lib.targets()
    if args.list:
        for t in targets.values():
            print(f"{t.name:20} {t.group:9} expects {', '.join(e.__name__ for e in t.expected) or 'no error'}")
        return 0
    chosen = [t for t in targets.values() if (not args.target or t.name in args.target)]
    chosen = [t for t in chosen if not args.group or t.group in args.group]
    unknown = set(args.target or ()) - set(targets)
    if unknown or not chosen:
        parser.error(f"no such target: {', '.join(sorted(unknown)) or 'none selected'}; see --list")
    if args.replay:
        with tempfile.TemporaryDirectory() as work:
            for t in chosen:
                print(t.name, *fuzz_lib.run_one(t, args.replay.read_bytes(), Path(work)))
        return 0

    per_target = [args.cases // len(chosen) + (i < args.cases % len(chosen)) for i in range(len(chosen))]
    print(f"fuzz: {args.cases} cases over {len(chosen)} targets, seed {args.seed}, timeout {args.timeout:.0f} s/case")
    header = f"{'target':20} {'group':9} {'cases':>7} {'accepted':>8} {'named':>7} {'crashes':>7} "
    header += f"{'case MiB':>8} {'RSS MiB':>8} {'max ms':>8} {'wall s':>7}"
    print(header)
    reports = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedledger-fuzz-") as work:
        for t, n in zip(chosen, per_target, strict=True):
            if n == 0:
                continue
            report = fuzz_lib.fuzz_target(
                t,
                args.seed,
                n,
                work=Path(work) / t.name,
                crash_dir=args.crashes,
                timeout=args.timeout,
                batch=args.batch,
                trace=not args.no_trace,
            )
            reports.append(report)
            print(
                f"{t.name:20} {t.group:9} {report.cases:>7} {report.accepted:>8} {report.named:>7} "
                f"{len(report.crashes):>7} {_mib(report.max_peak_bytes):>8} {_mib(report.max_rss_bytes):>8} "
                f"{report.max_seconds * 1000:>8.1f} {report.wall_seconds:>7.1f}",
                flush=True,
            )
    total = sum(r.cases for r in reports)
    crashes = [(r.name, c) for r in reports for c in r.crashes]
    peak = max(reports, key=lambda r: r.max_peak_bytes)
    slow = max(reports, key=lambda r: r.max_seconds)
    print(
        f"total: {total} cases, {len(crashes)} crashes, largest case peak {_mib(peak.max_peak_bytes)} MiB "
        f"({peak.name}), longest case {slow.max_seconds * 1000:.0f} ms ({slow.name} case {slow.slowest_case}), "
        f"{time.perf_counter() - began:.0f} s"
    )
    for name, c in crashes[:20]:
        print(f"CRASH {name} case {c.case}: {c.error}")
    if crashes:
        print(f"crashing inputs: {args.crashes}/ (replay: --target NAME --replay FILE)")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
