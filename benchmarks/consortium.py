#!/usr/bin/env python3
"""Wall time per round of the heart-disease consortium run as separate processes: fedledger against Flower.

Every arm trains the heart-disease example's model (``examples/heart-disease``: four hospitals, each with the
training two thirds of its raw UCI file, the same split as ``examples/heart-disease/run``; logistic regression,
C = 1, 5 lbfgs iterations per local epoch, one local epoch a round) on loopback, one OS process per hospital:

* ``served``: fedledger on ``fedledger chain serve``: four ``fedledger node --json`` processes, the example's task
  config with only ``rounds`` changed, nothing skipped (every update committed on chain, scored by every other
  member, two matching aggregate proposals to finalize, federated evaluation posted after each round);
* ``anvil``: the same on anvil (``npm ci`` installs the pinned binary);
* ``flower``: Flower's deployment runtime (``flwr`` 1.42, the ``bench`` extra): ``flower-superlink`` and four
  ``flower-supernode`` processes, the app in ``benchmarks/flower_heart`` (FedAvg, then federated evaluation on
  every node, Flower's default round) submitted with ``flwr run``. Each SuperNode gets its hospital's rows, prepared
  with the example's recipe (statistics of all training rows) and split as a fedledger node splits them
  (80 % training, 20 % validation).

What is timed, per round:

* round time. fedledger: from the round's ``open_round`` event to the ``propose`` event that finalized it (the
  nodes' ``--json`` event lines). Flower: on the ServerApp's clock, from the moment the strategy has sampled the
  round's nodes to the aggregation of its federated evaluation;
* local training time: the slowest member's own training (members train in parallel); fedledger nodes report it
  as ``train_seconds`` on their commit events, Flower's ClientApp in its reply's metrics;
* overhead = round time - local training time: what the runtime (ledger or Flower) adds to each round;
* interval: from one round's end to the next round's end (adds the time between rounds, e.g. for fedledger the
  wait before a node opens the next round).

The goal (issue 27): fedledger's median overhead per round is at most a tenth of Flower's in the same run.

    python benchmarks/consortium.py                          # all three arms, 10 rounds each
    python benchmarks/consortium.py --arms served,flower --rounds 5 --json
    python benchmarks/consortium.py --flower-python /path/to/venv/bin/python   # Flower from another environment

Flower runs from the environment of ``--flower-python`` (default: this interpreter): its ``flower-superlink``,
``flower-supernode`` and ``flwr`` commands are taken from that interpreter's folder; its processes need only flwr,
numpy and scikit-learn. ``pip install -e .[bench]`` installs it, but not beside the ``test`` extra: pycanon pins
typer 0.23.2 and flwr 1.42 requires typer < 0.21, so a development environment runs Flower from a second venv:

    python3 -m venv /tmp/flwr-venv && /tmp/flwr-venv/bin/pip install -e ".[bench]"
    python benchmarks/consortium.py --flower-python /tmp/flwr-venv/bin/python

Timings depend on the machine's load: compare arms of the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.exceptions import FedLedgerError
from fedledger.localnet import HEART_DISEASE_FILES, Split, anvil_path, local_consortium, split_rows

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "heart-disease"
FLOWER_APP = Path(__file__).resolve().parent / "flower_heart"
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "heart-disease"
HOSPITALS = HEART_DISEASE_FILES
ARMS = ("served", "anvil", "flower")
GOAL_RATIO = 10.0
VAL_FRACTION = 0.2  # `fedledger node --val-fraction`'s default: the Flower arm splits each hospital's rows the same


def _has_disease(row: list[str]) -> bool:
    return row[-1].strip() != "0"  # num: 0 absent, 1-4 present (the recipe's label rule)


def task_config(out: Path, rounds: int) -> Path:
    """The example's task config with ``rounds`` changed, beside a copy of its recipe."""
    out.mkdir(parents=True, exist_ok=True)
    text = (EXAMPLE / "task.toml").read_text()
    text, n = re.subn(r"(?m)^rounds = \d+$", f"rounds = {rounds}", text)
    if n != 1:
        raise SystemExit(f"{EXAMPLE / 'task.toml'}: no `rounds = N` line to change")
    shutil.copy(EXAMPLE / "recipe.toml", out / "recipe.toml")
    (out / "task.toml").write_text(text)
    return out / "task.toml"


# -- per-round numbers ------------------------------------------------------------------------------------------------


def round_row(number: int, start: float, end: float, train: float, previous_end: float | None) -> dict[str, Any]:
    seconds = end - start
    return {
        "round": number,
        "seconds": round(seconds, 3),
        "train_seconds": round(train, 4),
        "overhead_seconds": round(seconds - train, 3),
        "interval_seconds": None if previous_end is None else round(end - previous_end, 3),
    }


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians and means over the rounds of one arm."""

    def med(key: str) -> float | None:
        values = [r[key] for r in rows if r[key] is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "rounds": len(rows),
        "median_round_seconds": med("seconds"),
        "mean_round_seconds": round(statistics.fmean(r["seconds"] for r in rows), 3) if rows else None,
        "median_train_seconds": med("train_seconds"),
        "median_overhead_seconds": med("overhead_seconds"),
        "median_interval_seconds": med("interval_seconds"),
        "per_round": list(rows),
    }


# -- fedledger --------------------------------------------------------------------------------------------------------


def node_events(workdir: Path) -> list[dict[str, Any]]:
    """Every ``--json`` event line of every node log in ``workdir``, in time order, with the node's name."""
    events = []
    for log in sorted(workdir.glob("*.node.log")):
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                event = json.loads(line)
                event["node"] = log.name.removesuffix(".node.log")
                events.append(event)
    return sorted(events, key=lambda e: e["time"])


def fedledger_rounds(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per finalized round: open_round to the finalizing proposal; training: the slowest commit's train_seconds."""
    opened: dict[int, float] = {}
    finalized: dict[int, float] = {}
    train: dict[int, float] = {}
    for e in events:
        r = e["round"]
        if e["action"] == "open_round":
            opened.setdefault(r, e["time"])
        elif e["action"] == "propose" and e.get("finalized"):
            finalized.setdefault(r, e["time"])
        elif e["action"] == "commit" and "train_seconds" in e:
            train[r] = max(train.get(r, 0.0), float(e["train_seconds"]))
    rows = []
    for r in sorted(finalized):
        if r not in opened:
            raise RuntimeError(f"round {r} finalized but no node logged opening it")
        rows.append(round_row(r, opened[r], finalized[r], train.get(r, 0.0), finalized.get(r - 1)))
    return rows


def run_fedledger(
    chain: str, splits: dict[str, Split], task: Path, workdir: Path, *, rounds: int, timeout: float
) -> dict[str, Any]:
    """One fedledger arm: the consortium set up (not timed), then four node processes until the task is done."""
    started = time.monotonic()
    with local_consortium(list(HOSPITALS), task, workdir, chain=chain) as net:
        setup = time.monotonic() - started
        for org in net.orgs:
            net.start_node(org, splits[org.name].train, "--json")
        codes = net.wait_nodes(timeout)
    result = summarize(fedledger_rounds(node_events(workdir)))
    result.update(setup_seconds=round(setup, 1), node_exit_codes=codes, workdir=str(workdir))
    if any(codes.values()):
        result["error"] = f"nodes exited {codes} (logs: {workdir}/*.node.log)"
    elif result["rounds"] != rounds:
        result["error"] = f"{result['rounds']} of {rounds} rounds finalized (logs: {workdir}/*.node.log)"
    return result


# -- Flower -----------------------------------------------------------------------------------------------------------


def prepare_for_flower(task: Path, splits: dict[str, Split], out: Path) -> tuple[dict[str, Path], int]:
    """Each hospital's training rows prepared with the task's recipe (statistics of all training rows, as the
    consortium agrees them) and split into training and validation rows as a fedledger node does: one .npz each."""
    from fedledger.data.prepare import Recipe, prepare
    from fedledger.federation.config_file import load_task_config
    from fedledger.learning import train_val_split

    config = load_task_config(task)
    recipe = Recipe.from_dict(config.preparation)
    if recipe.missing_stats():
        summed = sum(np.asarray(recipe.local_stats(s.train), dtype=np.float64) for s in splits.values())
        recipe = recipe.with_stats(summed)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    n_features = 0
    for name, split in splits.items():
        prepared = prepare(recipe, split.train)
        X_tr, y_tr, X_val, y_val = train_val_split(prepared.X, prepared.y, val_fraction=VAL_FRACTION, seed=config.seed)
        files[name] = out / f"{name.lower().replace(' ', '-')}.npz"
        np.savez(files[name], X_train=X_tr, y_train=y_tr, X_val=X_val, y_val=y_val)
        n_features = prepared.X.shape[1]
    return files, n_features


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


@contextmanager
def _process(args: Sequence[str], log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running Flower process in its own process group (it starts a SuperExec and app processes); the
    whole group is stopped on exit."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            yield proc
        finally:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue


def flower_rounds(timings: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    previous_end = None
    for r in timings["rounds"]:
        row = round_row(r["round"], r["start"], r["end"], max(r["train_seconds"], default=0.0), previous_end)
        row["train_phase_seconds"] = round(r["trained"] - r["start"], 3)  # the round's training half alone
        rows.append(row)
        previous_end = r["end"]
    return rows


def run_flower(
    task: Path, splits: dict[str, Split], workdir: Path, *, rounds: int, python: Path, timeout: float
) -> dict[str, Any]:
    """The Flower arm: a SuperLink and one SuperNode per hospital on loopback (insecure), the app run with
    ``flwr run``; the ServerApp writes its per-round timings to a JSON file read here."""
    from fedledger.federation.config_file import load_task_config

    bin_dir = python.parent
    for command in ("flower-superlink", "flower-supernode", "flwr"):
        if not (bin_dir / command).exists():
            return {
                "error": f"no {command} beside {python}: install Flower (`pip install -e .[bench]`) there, or name "
                "an interpreter that has it with --flower-python"
            }
    config = load_task_config(task)
    files, n_features = prepare_for_flower(task, splits, workdir / "data")
    home = workdir / "flwr-home"
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    (home / "config.toml").write_text(
        f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\naddress = "127.0.0.1:{port}"\ninsecure = true\n'
    )
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",  # the SuperLink starts flower-superexec
        "FLWR_HOME": str(home),
        "FLWR_TELEMETRY_ENABLED": "0",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }
    timings_file = workdir / "timings.json"
    run_config = {
        "num-server-rounds": rounds,
        "local-epochs": config.local_epochs,
        "iters-per-epoch": int(config.model["iters_per_epoch"]),
        "C": float(config.model["C"]),
        "n-features": n_features,
        "num-supernodes": len(files),
        "timings-file": json.dumps(str(timings_file)),
    }
    started = time.monotonic()
    with ExitStack() as stack:
        link = stack.enter_context(
            _process(
                [str(bin_dir / "flower-superlink"), "--insecure", "--host", "127.0.0.1", "--port", str(port)]
                + ["--disable-runtime-dependency-installation"],
                workdir / "superlink.log",
                env,
            )
        )
        _wait_port(port, link, timeout=60)
        for i, (name, data) in enumerate(files.items()):
            node_config = f"data={json.dumps(str(data))} partition-id={i} name={json.dumps(name)}"
            stack.enter_context(
                _process(
                    [str(bin_dir / "flower-supernode"), "--insecure", "--superlink", f"127.0.0.1:{port}"]
                    + ["--port", str(_free_port()), "--node-config", node_config],
                    workdir / f"supernode-{i}.log",
                    env,
                )
            )
        setup = time.monotonic() - started
        with open(workdir / "flwr-run.log", "wb") as out:
            done = subprocess.run(
                [str(bin_dir / "flwr"), "run", str(FLOWER_APP), "bench", "--stream"]
                + ["--run-config", " ".join(f"{k}={v}" for k, v in run_config.items())],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=timeout,
            )
    if done.returncode != 0 or not timings_file.exists():
        return {"error": f"`flwr run` exited {done.returncode}, no timings (logs: {workdir})", "workdir": str(workdir)}
    timings = json.loads(timings_file.read_text())
    rows = flower_rounds(timings)
    result = summarize(rows)
    result.update(setup_seconds=round(setup, 1), workdir=str(workdir))
    result["median_train_phase_seconds"] = round(statistics.median(r["train_phase_seconds"] for r in rows), 3)
    if result["rounds"] != rounds:
        result["error"] = f"{result['rounds']} of {rounds} rounds timed (logs: {workdir})"
    return result


# -- report -----------------------------------------------------------------------------------------------------------


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Flower's median overhead over each fedledger arm's, and whether the goal (at least 10x) holds."""
    flower = results.get("flower", {}).get("median_overhead_seconds")
    out: dict[str, Any] = {}
    for arm in ("served", "anvil"):
        ours = results.get(arm, {}).get("median_overhead_seconds")
        if flower is None or ours is None:
            continue
        ratio = flower / ours if ours > 0 else float("inf")
        out[arm] = {"flower_over_fedledger_overhead": round(ratio, 1), "goal_met": ratio >= GOAL_RATIO}
    return out


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def table(results: dict[str, dict[str, Any]], ratios: dict[str, Any]) -> str:
    columns = [
        ("rounds", "rounds"),
        ("median_round_seconds", "median round s"),
        ("mean_round_seconds", "mean round s"),
        ("median_train_seconds", "median train s"),
        ("median_overhead_seconds", "median overhead s"),
        ("median_interval_seconds", "median interval s"),
    ]
    lines = [
        "| arm | " + " | ".join(title for _, title in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for arm, result in results.items():
        if "median_round_seconds" not in result:
            lines.append(f"| {arm} | {result.get('error', 'no result')} |")
            continue
        lines.append(f"| {arm} | " + " | ".join(_cell(result.get(key)) for key, _ in columns) + " |")
    for arm, result in results.items():
        if result.get("error") and "median_round_seconds" in result:
            lines.append(f"\n{arm}: {result['error']}")
    phase = results.get("flower", {}).get("median_train_phase_seconds")
    if phase is not None:
        lines.append(
            f"\nflower: the training half of a round alone (no federated evaluation) took a median {phase:.3f} s"
        )
    for arm, ratio in ratios.items():
        verdict = "met" if ratio["goal_met"] else "NOT met"
        lines.append(
            f"\nFlower's median overhead is {ratio['flower_over_fedledger_overhead']}x fedledger's on {arm} "
            f"(goal: at least {GOAL_RATIO:g}x): {verdict}"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds per arm (default 10)")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)} (default all)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with the four processed.*.data")
    parser.add_argument("--workdir", type=Path, default=None, help="where every arm's files go (default: a temp dir)")
    parser.add_argument(
        "--flower-python", type=Path, default=Path(sys.executable), help="interpreter whose environment has flwr"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds each arm may run (default 120 + 30/round)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms:
        parser.error(f"--arms: unknown {', '.join(unknown) or 'empty'}; choose from {', '.join(ARMS)}")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    missing = [f for f in HOSPITALS.values() if not (args.data / f).is_file()]
    if missing:
        parser.error(f"{args.data} lacks {', '.join(missing)} (the UCI heart-disease processed files)")
    timeout = args.timeout or 120 + 30 * args.rounds
    # One BLAS/OpenMP thread in every process of every arm (they inherit this environment): four members' pools
    # spinning against each other on a small machine would time the machine, not the runtimes.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fedledger-consortium-bench-"))
    task = task_config(workdir / "task", args.rounds)
    splits = {
        name: split_rows(args.data / file, workdir / "split", test_fraction=1 / 3, seed=42, label=_has_disease)
        for name, file in HOSPITALS.items()
    }
    results: dict[str, dict[str, Any]] = {}
    for arm in arms:
        print(f"{arm}: {args.rounds} rounds ...", file=sys.stderr, flush=True)
        try:
            if arm == "flower":
                results[arm] = run_flower(
                    task, splits, workdir / arm, rounds=args.rounds, python=args.flower_python, timeout=timeout
                )
            elif arm == "anvil" and anvil_path() is None:
                results[arm] = {"error": "anvil is not installed (`npm ci`)"}
            else:
                results[arm] = run_fedledger(arm, splits, task, workdir / arm, rounds=args.rounds, timeout=timeout)
        except (FedLedgerError, subprocess.SubprocessError, RuntimeError, OSError) as exc:
            results[arm] = {"error": f"{type(exc).__name__}: {exc}", "workdir": str(workdir / arm)}
    ratios = compare(results)
    if args.json:
        print(json.dumps({"rounds": args.rounds, "arms": results, "comparison": ratios}, indent=2))
    else:
        print(table(results, ratios))
        print(f"\nfiles and logs: {workdir}")
    return 1 if any("error" in r for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
