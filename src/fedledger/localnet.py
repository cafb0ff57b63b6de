"""A local multi-process consortium driven through the ``fedledger`` command, as organizations run it.

Each organization is its own workspace and its own OS processes: ``fedledger init``, ``task join``,
``node``, ``evaluate``, ``audit verify``; they share one chain endpoint (``fedledger chain serve``, or
anvil with interval mining) and one store URL. The worked examples (``examples/*/run``), the
end-to-end tests and ``benchmarks/consortium.py`` use it; nothing here runs a member in process.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from fedledger.exceptions import ChainError, ConfigError, FedLedgerError
from fedledger.identity.private import write_private

__all__ = [
    "HEART_DISEASE_FILES",
    "CommandFailed",
    "LocalConsortium",
    "Org",
    "Split",
    "evaluate_members",
    "evaluate_shared",
    "fedledger_command",
    "local_consortium",
    "partition_rows",
    "pooled_baseline",
    "ServedChain",
    "served_chain",
    "split_rows",
    "summary_line",
]

PASSWORD_ENV = "FEDLEDGER_PASSWORD"
MEMBER_ROLES = "trainer,validator,aggregator"


HEART_DISEASE_FILES = {
    "Cleveland": "processed.cleveland.data",
    "Hungary": "processed.hungarian.data",
    "Switzerland": "processed.switzerland.data",
    "VA Long Beach": "processed.va.data",
}
"""The four hospitals of the UCI heart-disease set and their raw files, as the worked example, the tests and the
benchmarks deal them out."""


class CommandFailed(FedLedgerError):
    """A ``fedledger`` command of the local consortium exited non-zero (has .returncode and .stderr)."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"`fedledger {' '.join(args)}` exited {returncode}: {stderr.strip()[-2000:]}")


def fedledger_command() -> list[str]:
    """How to run the ``fedledger`` command of this Python: its console script, else ``python -m``."""
    script = Path(sys.executable).with_name("fedledger")
    return [str(script)] if script.exists() else [sys.executable, "-m", "fedledger.cli"]


class ServedChain:
    """``fedledger chain serve`` for one chain folder in its own process, on loopback; :meth:`restart` stops it and
    serves the same folder again at the same address (a chain node that restarts, as members see it)."""

    def __init__(self, directory: Path, *, block_time: float = 1.0, log: Path | None = None) -> None:
        self.directory, self.block_time, self.log = Path(directory), block_time, log
        self.url = ""
        self._proc: subprocess.Popen[str] | None = None

    def start(self, port: int = 0) -> str:
        """Serve the chain (on ``port``, or a free one); its URL once it answers."""
        out: IO[str] | int = open(self.log, "a") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the child's
        try:
            self._proc = subprocess.Popen(
                [*fedledger_command(), "chain", "serve", "--dir", str(self.directory), "--port", str(port)]
                + ["--block-time", str(self.block_time), "--json"],
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
            )
        finally:
            if not isinstance(out, int):
                out.close()  # the child holds its own descriptor
        line = self._proc.stdout.readline() if self._proc.stdout is not None else ""
        if not line:
            raise ChainError(f"`fedledger chain serve` exited {self._proc.wait()} before serving {self.directory}")
        self.url = str(json.loads(line)["url"])
        return self.url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self, down_seconds: float = 0.0) -> str:
        """Stop, stay down ``down_seconds``, and serve the same chain at the same URL again."""
        port = int(self.url.rsplit(":", 1)[1])
        self.stop()
        time.sleep(down_seconds)
        return self.start(port)


@contextmanager
def served_chain(directory: Path, *, block_time: float = 1.0, log: Path | None = None) -> Iterator[str]:
    """``fedledger chain serve`` on a free loopback port in its own process; yields its URL, stops it on exit."""
    with _served(directory, block_time=block_time, log=log) as served:
        yield served.url


@contextmanager
def _served(directory: Path, *, block_time: float, log: Path | None) -> Iterator[ServedChain]:
    served = ServedChain(directory, block_time=block_time, log=log)
    try:
        served.start()
        yield served
    finally:
        served.stop()


@dataclass
class Org:
    """One organization: its workspace folder, its address once it has a key, its node process if running."""

    name: str
    workspace: Path
    address: str = ""
    node: subprocess.Popen[str] | None = field(default=None, repr=False)


class LocalConsortium:
    """Organizations as separate workspaces on one chain URL and one store, every step a CLI process."""

    def __init__(self, root: Path, *, chain_url: str, store: str, password: str = "local-consortium") -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.chain_url = chain_url
        self.store = store
        self.env = {**os.environ, PASSWORD_ENV: password}
        self.orgs: list[Org] = []
        self.served: ServedChain | None = None
        """The served chain this consortium runs on (None on anvil or a chain started elsewhere)."""
        self.consortium = ""
        self.task = ""

    # -- commands ----------------------------------------------------------------------

    def run(self, org: Org, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``fedledger ARGS -w <org's workspace>``, waited for; :class:`CommandFailed` when ``check`` and it fails."""
        full = [*args, "-w", str(org.workspace)]
        done = subprocess.run([*fedledger_command(), *full], env=self.env, capture_output=True, text=True)
        if check and done.returncode != 0:
            raise CommandFailed(full, done.returncode, done.stderr)
        return done

    def json(self, org: Org, *args: str) -> Any:
        return json.loads(self.run(org, *args, "--json").stdout)

    # -- setting up ----------------------------------------------------------------------

    def found(self, name: str) -> Org:
        """The founding organization: a key, the consortium contract, the shared store recorded on the ledger."""
        org = Org(name, self.root / _slug(name))
        out = self.json(org, "init", "--org", name, "--rpc", self.chain_url, "--store-uri", self.store, "--light-kdf")
        org.address, self.consortium = out["address"], out["consortium"]
        self.orgs.append(org)
        return org

    def admit(self, name: str, *, roles: str = MEMBER_ROLES, by: Org | None = None) -> Org:
        """A new organization makes its own workspace and key; an admin (the founder by default) admits it."""
        org = Org(name, self.root / _slug(name))
        out = self.json(
            org, "init", "--org", name, "--rpc", self.chain_url, "--consortium", self.consortium, "--light-kdf"
        )
        org.address = out["address"]
        self.run(by or self.orgs[0], "member", "add", org.address, "--org", name, "--roles", roles)
        self.orgs.append(org)
        return org

    def create_task(self, config: Path, *, by: Org | None = None) -> str:
        out = self.json(by or self.orgs[0], "task", "create", str(config))
        self.task = str(out["address"])
        return self.task

    def join(self, org: Org) -> Any:
        return self.json(org, "task", "join", self.task)

    # -- running -------------------------------------------------------------------------

    def start_node(
        self, org: Org, data: Path, *extra: str, log: Path | None = None, command: str = "node"
    ) -> subprocess.Popen[str]:
        """``fedledger node`` for ``org`` in its own process (output appended to ``log``); ``command="gateway"``
        runs an edge gateway with its devices instead (``extra`` then names them: ``--devices N``)."""
        out: IO[str] | int = open(log or self.root / f"{_slug(org.name)}.node.log", "a")  # noqa: SIM115
        org.node = subprocess.Popen(
            [*fedledger_command(), command, "--data", str(data), "-w", str(org.workspace), *extra],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        return org.node

    def wait_nodes(self, timeout: float) -> dict[str, int]:
        """Wait until every running node exits; their exit codes by organization (killed at ``timeout``)."""
        deadline = time.monotonic() + timeout
        codes: dict[str, int] = {}
        for org in self.orgs:
            if org.node is None:
                continue
            try:
                codes[org.name] = org.node.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                org.node.kill()
                codes[org.name] = org.node.wait()
        return codes

    def stop(self) -> None:
        for org in self.orgs:
            if org.node is not None and org.node.poll() is None:
                org.node.kill()
                org.node.wait()

    def __enter__(self) -> LocalConsortium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "org"


def anvil_path() -> str | None:
    """The pinned anvil binary (``npm ci``), if installed."""
    from fedledger.chain.devnode import anvil_binary

    return anvil_binary(Path(__file__).resolve().parents[2])


def clean(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)


@contextmanager
def local_consortium(
    members: Sequence[str],
    task_config: Path,
    workdir: Path,
    *,
    chain: str = "served",
    store: str | None = None,
    block_time: float = 0.5,
) -> Iterator[LocalConsortium]:
    """A chain (``served``: ``fedledger chain serve``; ``anvil``: the pinned anvil with interval mining), the first
    of ``members`` founding the consortium and admitting the others, the task created from ``task_config`` and
    joined by every member: ready for :meth:`LocalConsortium.start_node`. Everything stops on exit."""
    from fedledger.chain.devnode import anvil_node

    workdir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        served: ServedChain | None = None
        if chain == "served":
            served = stack.enter_context(_served(workdir / "chain", block_time=block_time, log=workdir / "chain.log"))
            url = served.url
        elif chain == "anvil":
            binary = anvil_path()
            if binary is None:
                raise ChainError("anvil is not installed: run `npm ci` (the pinned @foundry-rs/anvil-linux-amd64)")
            url = stack.enter_context(anvil_node(binary, block_time=max(1.0, block_time)))
        else:
            raise ConfigError(f"unknown chain {chain!r}: expected served or anvil")
        net = stack.enter_context(LocalConsortium(workdir, chain_url=url, store=store or str(workdir / "store")))
        net.served = served
        net.found(members[0])
        for name in members[1:]:
            net.admit(name)
        net.create_task(task_config)
        for org in net.orgs[1:]:
            net.join(org)
        yield net


# -- worked examples: holdouts, evaluation, the pooled baseline -------------------------------------------------------


@dataclass(frozen=True)
class Split:
    train: Path
    test: Path


def split_rows(
    path: Path, out: Path, *, test_fraction: float, seed: int, label: Callable[[list[str]], object]
) -> Split:
    """Split a raw CSV's rows into a training file and a test file, stratified by ``label(row)``, keeping the rows
    as they are (missing markers and all): the test rows stay with their organization as its holdout."""
    from fedledger.data.prepare import decode_bytes

    text, _ = decode_bytes(Path(path).read_bytes())
    lines = [line for line in text.splitlines() if line.strip()]
    rows = list(csv.reader(lines))
    rng = np.random.default_rng(seed)
    test: set[int] = set()
    for value in sorted({str(label(r)) for r in rows}):
        members = rng.permutation([i for i, r in enumerate(rows) if str(label(r)) == value])
        test.update(int(i) for i in members[: round(len(members) * test_fraction)])
    out.mkdir(parents=True, exist_ok=True)
    split = Split(out / f"{Path(path).stem}.train.csv", out / f"{Path(path).stem}.test.csv")
    # Copies of raw rows: owner-only, as the organizations' own files would be.
    write_private(split.train, "".join(line + "\n" for i, line in enumerate(lines) if i not in test))
    write_private(split.test, "".join(line + "\n" for i, line in enumerate(lines) if i in test))
    return split


def partition_rows(
    path: Path,
    out: Path,
    key: Callable[[list[str]], str],
    *,
    max_rows: int | None = None,
    seed: int = 0,
) -> dict[str, Path]:
    """Deal a raw CSV's rows out to organizations: row by row in file order, ``key(row)`` names the organization
    that gets it (a non-IID split is a ``key`` that looks at the label). Rows stay as they are. With ``max_rows``,
    an organization holding more keeps a uniformly random ``max_rows`` of them (seeded), in file order. Returns
    each organization's file, ``out/<stem>.<organization>.csv``, in the order organizations first appear."""
    from fedledger.data.prepare import decode_bytes

    text, _ = decode_bytes(Path(path).read_bytes())
    lines = [line for line in text.splitlines() if line.strip()]
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(csv.reader(lines)):
        groups.setdefault(key(row), []).append(i)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    for name, rows in groups.items():
        if max_rows is not None and len(rows) > max_rows:
            rows = sorted(int(i) for i in rng.choice(rows, size=max_rows, replace=False))
        files[name] = out / f"{Path(path).stem}.{_slug(name)}.csv"
        write_private(files[name], "".join(lines[i] + "\n" for i in rows))  # raw rows: owner-only
    return files


def evaluate_members(net: LocalConsortium, tests: Mapping[str, Path]) -> dict[str, Any]:
    """Each organization scores the final model on its own test file (``fedledger evaluate``); the pooled accuracy
    weighs each by its rows. Then the task's outcome (``task status``) and ``audit verify`` from two workspaces."""
    per_member: dict[str, Any] = {}
    correct = total = 0.0
    for org in net.orgs:
        report = net.json(org, "evaluate", "--data", str(tests[org.name]))
        metrics = report["metrics"]
        per_member[org.name] = metrics
        correct += metrics["accuracy"] * metrics["n"]
        total += metrics["n"]
    return {
        "final_accuracy": round(correct / total, 4) if total else None,
        "per_member": per_member,
        **_outcome(net),
    }


def evaluate_shared(net: LocalConsortium, test: Path, *, by: Org | None = None) -> dict[str, Any]:
    """One organization (the founder by default) scores the final model on a test file every member could hold,
    such as a benchmark's published test set (``fedledger evaluate``): every member's copy of the model is the same
    bytes, so one score stands for all. Then the task's outcome (``task status``) and ``audit verify`` from two
    workspaces."""
    org = by or net.orgs[0]
    metrics = net.json(org, "evaluate", "--data", str(test))["metrics"]
    return {
        "final_accuracy": round(float(metrics["accuracy"]), 4),
        "final_metrics": metrics,
        "evaluated_by": org.name,
        **_outcome(net),
    }


def _outcome(net: LocalConsortium) -> dict[str, Any]:
    status = net.json(net.orgs[0], "task", "status")
    # The two audits are independent readers of the same chain and store: side by side, as two auditors would be.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = {org.name: pool.submit(net.run, org, "audit", "verify", "--json", check=False) for org in net.orgs[:2]}
        audits = {name: run.result() for name, run in runs.items()}
    reports = {name: _audit_report(done) for name, done in audits.items()}
    return {
        "rounds_finalized": status["rounds_finalized"],
        "rounds_aborted": status["rounds_aborted"],
        "audit_verified": all(done.returncode == 0 for done in audits.values()),
        "audit": {name: _audit_line(report) for name, report in reports.items()},
        "audit_gateway_updates": max((r.get("gateway_updates_checked", 0) for r in reports.values()), default=0),
    }


def _audit_report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """``audit verify --json``'s report, or its error when it printed none."""
    try:
        report = json.loads(done.stdout)
    except ValueError:
        return {"ok": False, "first_discrepancy": (done.stdout + done.stderr).strip()[-2000:]}
    return report if isinstance(report, dict) else {"ok": False, "first_discrepancy": done.stdout.strip()}


def _audit_line(report: Mapping[str, Any]) -> str:
    if not report.get("ok"):
        return f"FAILED: {report.get('first_discrepancy')}"
    gateways = report.get("gateway_updates_checked", 0)
    return (
        f"verified: {report['rounds_checked']} finalized rounds, {report['updates_checked']} updates, "
        f"{report['models_checked']} models match the ledger"
        + (f"; {gateways} gateway updates re-derived from their devices' messages" if gateways else "")
    )


def pooled_baseline(task_config: Path, trains: Sequence[Path], tests: Sequence[Path]) -> dict[str, Any]:
    """The centralized baseline: the task's model, recipe and number of epochs, trained on every training file
    pooled (what a consortium avoids doing) and scored on every test file pooled."""
    from fedledger.data.prepare import Recipe, prepare
    from fedledger.federation.config_file import load_task_config
    from fedledger.learning import build_model

    config = load_task_config(task_config)
    recipe = Recipe.from_dict(config.preparation)
    if recipe.missing_stats():
        summed = sum(np.asarray(recipe.local_stats(t), dtype=np.float64) for t in trains)
        recipe = recipe.with_stats(summed)
    train = [prepare(recipe, t) for t in trains]
    test = [prepare(recipe, t) for t in tests]
    model = build_model(config.model)
    model.fit(
        np.concatenate([p.X for p in train]),
        np.concatenate([p.y for p in train]),
        epochs=config.rounds * config.local_epochs,
        seed=config.seed,
    )
    accuracy = model.evaluate(np.concatenate([p.X for p in test]), np.concatenate([p.y for p in test]))
    return {"centralized_accuracy": round(float(accuracy), 4)}


def summary_line(summary: Mapping[str, Any]) -> str:
    return (
        f"final accuracy {summary['final_accuracy']} (centralized {summary.get('centralized_accuracy')}), "
        f"{summary['rounds_finalized']} rounds finalized, {summary['rounds_aborted']} aborted, "
        f"audit {'verified' if summary['audit_verified'] else 'FAILED'}, {summary.get('wall_seconds')} s"
    )
