"""Chaos run of a consortium deployed as separate processes: members' nodes and the chain node are killed and
restarted while the task runs, and the ledger is then checked for what must survive any crash.

One ``fedledger node --json`` process per member, on the served chain (``fedledger chain serve``) or on anvil, each
on its own share of the raw UCI heart-disease files (the four hospitals; the largest are dealt out to several
sites until there are enough members). A seeded chaos monkey SIGKILLs up to a third of the members (always
including one aggregator) at random points of random rounds (a random time into the round, or right after the
member commits, scores or proposes), restarts each after a random delay, and stops and restarts the chain node
once, killing one of those members with it and starting it again while the chain node is still down. The counts
that matter:

* rounds lost: rounds that neither finalized nor aborted by a contract rule (or were never run);
* double commitments: a member committing twice in one round;
* process crashes: a node exit the monkey did not cause (non-zero other than "rounds aborted", or a traceback);
* ``fedledger audit verify`` from two members' workspaces.

``benchmarks/chaos.py`` runs the full version; ``tests/benchmarks/test_chaos.py`` a short one.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos_plan import (
    ABORTED_EXIT,
    AGGREGATOR_ROLES,
    EXAMPLE,
    HOSPITALS,
    PLAIN_ROLES,
    POLL,
    PROPOSAL_QUORUM,
    Plan,
    Settings,
    plan,
)

from fedledger.chain import Chain, TrainingTaskClient
from fedledger.chain.events import AggregateProposed, RoundAborted, UpdateCommitted, ValidationClosed
from fedledger.chain.task import Phase
from fedledger.exceptions import ChainError
from fedledger.localnet import (
    PASSWORD_ENV,
    CommandFailed,
    LocalConsortium,
    Org,
    ServedChain,
    anvil_path,
    partition_rows,
)

# -- members and their data -------------------------------------------------------------------------------------------


def member_files(data: Path, n: int, out: Path) -> dict[str, Path]:
    """``n`` members on the heart-disease files: each hospital is one member, and the hospitals with the most rows
    per site are dealt out, row by row, to more sites until there are ``n`` (raw rows, as each site keeps them)."""
    if n < 3:
        raise ValueError("a chaos run needs at least 3 members")
    rows = {h: sum(1 for line in (data / f).read_text().splitlines() if line.strip()) for h, f in HOSPITALS.items()}
    hospitals = list(HOSPITALS)[:n]
    sites = dict.fromkeys(hospitals, 1)
    while sum(sites.values()) < n:
        sites[max(hospitals, key=lambda h: rows[h] / sites[h])] += 1
    files: dict[str, Path] = {}
    for hospital in hospitals:
        k = sites[hospital]
        if k == 1:
            files[hospital] = data / HOSPITALS[hospital]
            continue
        deal = itertools.cycle(f"{hospital} {i}" for i in range(1, k + 1))
        files.update(partition_rows(data / HOSPITALS[hospital], out, lambda _row, deal=deal: next(deal)))
    return files


def task_config(out: Path, settings: Settings, members: int) -> Path:
    """The heart-disease example's task with the run's rounds, shorter phase deadlines, and a commitment quorum that
    holds with a third of the members down."""
    text = (EXAMPLE / "task.toml").read_text()
    changes = {
        "rounds": settings.rounds,
        "min_commitments": members - members // 3,
        "proposal_quorum": PROPOSAL_QUORUM,
        "commit_duration": settings.phase_seconds,
        "validate_duration": settings.phase_seconds,
        "aggregate_duration": settings.phase_seconds,
    }
    for key, value in changes.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if count != 1:
            raise ValueError(f"{EXAMPLE / 'task.toml'}: no `{key} = ...` line to change")
    text = text.replace('preparation = "recipe.toml"', f'preparation = "{EXAMPLE / "recipe.toml"}"')
    out.mkdir(parents=True, exist_ok=True)
    (out / "task.toml").write_text(text)
    return out / "task.toml"


# -- the chain node ---------------------------------------------------------------------------------------------------


class AnvilChain:
    """The pinned anvil with interval mining, its state kept in a file (``--state``) so it can stop and start again
    at the same address with the same ledger, as :class:`ServedChain` does for the served chain."""

    def __init__(self, directory: Path, *, block_time: float) -> None:
        binary = anvil_path()
        if binary is None:
            raise ChainError("anvil is not installed: run `npm ci` (the pinned @foundry-rs/anvil-linux-amd64)")
        self.binary, self.directory, self.block_time = binary, directory, max(1.0, block_time)
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, port: int = 0) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        port = port or _free_port()
        args = [self.binary, "--host", "127.0.0.1", "--port", str(port), "--silent"]
        args += ["--block-time", f"{self.block_time:g}", "--mixed-mining", "--state", str(self.directory / "state")]
        self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with Chain.rpc(self.url, timeout=2) as chain:
                    chain.block_number  # noqa: B018 - it answers
                return self.url
            except ChainError:
                if time.monotonic() > deadline or self._proc.poll() is not None:
                    raise ChainError(f"anvil did not start on {self.url}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()  # anvil writes its --state file on the way out
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


ChainNode = ServedChain | AnvilChain


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def chain_node(settings: Settings) -> Iterator[ChainNode]:
    node: ChainNode
    if settings.chain == "served":
        node = ServedChain(
            settings.workdir / "chain", block_time=settings.block_time, log=settings.workdir / "chain.log"
        )
    elif settings.chain == "anvil":
        node = AnvilChain(settings.workdir / "anvil", block_time=settings.block_time)
    else:
        raise ValueError(f"unknown chain {settings.chain!r}: expected served or anvil")
    node.start()
    try:
        yield node
    finally:
        node.stop()


class InProcessSetup(LocalConsortium):
    """A :class:`LocalConsortium` whose setting-up commands (``init``, ``member add``, ``task create``, ``task join``)
    run in this process through the CLI's own entry point: the same commands, without a Python start-up each (the
    nodes, which the chaos is about, still run as their own processes)."""

    def run(self, org: Org, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        from typer.testing import CliRunner

        from fedledger.cli import app

        full = [*args, "-w", str(org.workspace)]
        done = CliRunner().invoke(app, full, env={PASSWORD_ENV: self.env[PASSWORD_ENV]})
        if check and done.exit_code != 0:
            raise CommandFailed(full, done.exit_code, done.stderr or repr(done.exception))
        return subprocess.CompletedProcess(full, done.exit_code, done.stdout, done.stderr)


def setup(net: LocalConsortium, members: list[str], aggregators: list[str], task: Path) -> None:
    """The first member founds the consortium and admits the others (aggregators with the aggregator role); the task
    is created and joined by everyone."""
    net.found(members[0])
    for name in members[1:]:
        net.admit(name, roles=AGGREGATOR_ROLES if name in aggregators else PLAIN_ROLES)
    net.create_task(task)
    for org in net.orgs[1:]:
        net.join(org)


# -- running nodes ----------------------------------------------------------------------------------------------------


@dataclass
class Incarnation:
    """One node process of one member: its log, whether the monkey killed it, and how it ended."""

    member: str
    number: int
    log: Path
    proc: subprocess.Popen[str] = field(repr=False)
    killed: bool = False
    returncode: int | None = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Nodes:
    """Every member's node processes, one log file per process, and the events they printed."""

    def __init__(self, net: LocalConsortium, files: dict[str, Path]) -> None:
        self.net, self.files = net, files
        self.orgs: dict[str, Org] = {org.name: org for org in net.orgs}
        self.runs: list[Incarnation] = []
        self.current: dict[str, Incarnation] = {}

    def start(self, member: str) -> Incarnation:
        number = sum(1 for run in self.runs if run.member == member) + 1
        log = self.net.root / "logs" / f"{_slug(member)}.{number}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        proc = self.net.start_node(self.orgs[member], self.files[member], "--json", log=log)
        run = Incarnation(member, number, log, proc)
        self.runs.append(run)
        self.current[member] = run
        return run

    def kill(self, member: str) -> None:
        run = self.current[member]
        run.killed = True
        run.proc.kill()  # SIGKILL: no cleanup, as a crashed machine
        run.returncode = run.proc.wait()

    def poll(self) -> None:
        for run in self.current.values():
            if run.returncode is None:
                run.returncode = run.proc.poll()

    def alive(self, member: str) -> bool:
        run = self.current.get(member)
        return run is not None and run.returncode is None

    def running(self) -> bool:
        self.poll()
        return any(run.returncode is None for run in self.current.values())

    def events(self) -> list[dict[str, Any]]:
        """Every event line every node printed, with its member (re-read in full: a run prints a few hundred)."""
        events = []
        for run in self.runs:
            for line in run.log_text().splitlines():
                if line.startswith("{"):
                    try:
                        event = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut short by SIGKILL
                    event["member"] = run.member
                    events.append(event)
        return events

    def stop(self) -> None:
        for run in self.current.values():
            if run.returncode is None:
                run.proc.kill()
                run.returncode = run.proc.wait()


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


# -- the monkey -------------------------------------------------------------------------------------------------------


class Monkey:
    """Carries out the plan against the running nodes and chain node, reading the nodes' event lines to know the
    round and each member's actions in it."""

    def __init__(self, the_plan: Plan, nodes: Nodes, chain: ChainNode, say: Any = print) -> None:
        self.plan, self.nodes, self.chain, self.say = the_plan, nodes, chain, say
        self.started = time.monotonic()
        self.restarts: list[tuple[float, str]] = []  # (when, member)
        self.chain_back_at: float | None = None
        self.chain_port = 0
        self.seen: dict[int, float] = {}  # round -> when the monkey first saw it open (a fallback for its event)
        self.log: list[str] = []

    def note(self, text: str) -> None:
        line = f"{time.monotonic() - self.started:7.1f} s  {text}"
        self.log.append(line)
        self.say(line)

    def step(self) -> None:
        now = time.monotonic()
        events = self.nodes.events()
        wall = time.time()
        opened: dict[int, float] = {}
        for e in events:
            if e["action"] == "open_round":
                opened[e["round"]] = min(e["time"], opened.get(e["round"], e["time"]))
        current = max((e["round"] for e in events), default=0)
        for r in range(1, current + 1):
            self.seen.setdefault(r, wall)
            opened.setdefault(r, self.seen[r])  # its opener was killed before it printed the event
        done = {(e["member"], e["round"], e["action"]) for e in events}

        for kill in self.plan.kills:
            if kill.done_at is not None or not self.nodes.alive(kill.member) or current < kill.round_id:
                continue
            late = current > kill.round_id  # its action never came in that round (refused, or it was down)
            if kill.trigger == "in-round":
                due = wall >= opened[kill.round_id] + kill.after
            else:
                due = any((kill.member, r, kill.trigger) in done for r in range(kill.round_id, current + 1))
            if due or late:
                self.nodes.kill(kill.member)
                kill.done_at, kill.in_round = now, current
                self.restarts.append((now + kill.down, kill.member))
                self.note(
                    f"killed {kill.member} in round {current} ({kill.trigger}"
                    f"{f' +{kill.after} s' if kill.trigger == 'in-round' else ''}{', late' if late else ''}),"
                    f" back in {kill.down} s"
                )

        for when, member in list(self.restarts):
            if now >= when:
                self.restarts.remove((when, member))
                run = self.nodes.start(member)
                down = " while the chain node is down" if self.chain_back_at is not None else ""
                self.note(f"restarted {member} (process {run.number}){down}")

        restart = self.plan.chain_restart
        # Held while the member to kill with it is down from an earlier kill and about to come back.
        waiting = any(member == restart.member for _, member in self.restarts)
        if (
            restart.done_at is None
            and current >= restart.round_id
            and wall >= opened[restart.round_id] + restart.after
            and not waiting
        ):
            if self.nodes.alive(restart.member):
                self.nodes.kill(restart.member)
                self.restarts.append((now + restart.down / 2, restart.member))  # back before the chain is
                self.note(f"killed {restart.member} in round {current}, with the chain node")
            self.chain_port = int(self.chain.url.rsplit(":", 1)[1])
            self.chain.stop()
            restart.done_at = now
            self.chain_back_at = now + restart.down
            self.note(f"stopped the chain node in round {current}, back in {restart.down} s")
        if self.chain_back_at is not None and now >= self.chain_back_at:
            self.chain_back_at = None
            self.chain.start(self.chain_port)
            self.note("the chain node is back at the same address")

    def pending(self) -> bool:
        return bool(self.restarts) or self.chain_back_at is not None

    def run(self, timeout: float) -> bool:
        """Until every node has exited and nothing is pending; False at ``timeout`` (every node then killed)."""
        deadline = time.monotonic() + timeout
        while self.nodes.running() or self.pending():
            if time.monotonic() > deadline:
                self.note(f"timed out after {timeout:.0f} s: killing every node")
                self.nodes.stop()
                if self.chain_back_at is not None:
                    self.chain.start(self.chain_port)
                return False
            self.step()
            time.sleep(POLL)
        for kill in self.plan.kills:
            if kill.done_at is None:
                self.note(f"not done (the task ended first): kill {kill.member} in round {kill.round_id}")
        return True


# -- the verdict ------------------------------------------------------------------------------------------------------


@dataclass
class Result:
    settings: dict[str, Any]
    members: list[str]
    aggregators: list[str]
    victims: list[str]
    kills: list[dict[str, Any]]
    chain_restart: dict[str, Any]
    rounds: int
    rounds_finalized: int
    aborts: list[dict[str, Any]]
    rounds_lost: list[int]
    task_done: bool
    double_commitments: list[dict[str, Any]]
    processes: list[dict[str, Any]]
    crashes: list[dict[str, Any]]
    audit: dict[str, Any]
    monkey_log: list[str]
    finished_in_time: bool
    wall_seconds: float = 0.0
    setup_seconds: float = 0.0

    @property
    def rule_aborts(self) -> int:
        return sum(1 for a in self.aborts if a["by_rule"])

    @property
    def failures(self) -> list[str]:
        """The targets missed (empty: every target met)."""
        missed = []
        if self.rounds_lost:
            missed.append(f"{len(self.rounds_lost)} rounds lost: {self.rounds_lost}")
        if self.rule_aborts != len(self.aborts):
            missed.append(f"{len(self.aborts) - self.rule_aborts} aborts the rules do not explain")
        if self.double_commitments:
            missed.append(f"{len(self.double_commitments)} double commitments")
        if self.crashes:
            missed.append(f"{len(self.crashes)} process crashes")
        if not self.audit["passed"]:
            missed.append("audit verify failed")
        if not self.finished_in_time:
            missed.append("the run timed out")
        return missed

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["rule_aborts"] = self.rule_aborts
        out["failures"] = self.failures
        return out

    def summary(self) -> str:
        kills = sum(1 for p in self.processes if p["killed"])
        return "\n".join(
            [
                f"members {len(self.members)} (aggregators: {', '.join(self.aggregators)}; victims: "
                f"{', '.join(self.victims)}), {kills} kills, chain node restarted "
                f"{'once' if self.chain_restart['done_at'] is not None else 'never'}",
                f"rounds finalized: {self.rounds_finalized} of {self.rounds}",
                f"rounds aborted: {len(self.aborts)} ({self.rule_aborts} by a contract rule)"
                + "".join(f"\n  round {a['round']}: {a['reason']} ({a['evidence']})" for a in self.aborts),
                f"rounds lost: {len(self.rounds_lost)}{f' {self.rounds_lost}' if self.rounds_lost else ''}",
                f"double commitments: {len(self.double_commitments)}",
                f"process crashes: {len(self.crashes)} ({len(self.processes)} node processes, "
                f"{sum(1 for p in self.processes if p['killed'])} killed by the monkey)",
                f"audit verify: {'passed' if self.audit['passed'] else 'FAILED'}",
                f"wall time: {self.wall_seconds:.0f} s (setup {self.setup_seconds:.0f} s)",
                "targets: " + ("all met" if not self.failures else "MISSED: " + "; ".join(self.failures)),
            ]
        )


def classify_aborts(task: TrainingTaskClient, events: list[Any], min_commitments: int) -> list[dict[str, Any]]:
    """Each aborted round with its reason, and whether the ledger shows the rule that reason names held."""
    commits = Counter(e.round_id for e in events if isinstance(e, UpdateCommitted))
    validated = {e.round_id for e in events if isinstance(e, ValidationClosed)}
    votes: dict[int, Counter[str]] = {}
    for e in events:
        if isinstance(e, AggregateProposed):
            votes.setdefault(e.round_id, Counter())[e.model_hash] += 1
    quorum = task.params().proposal_quorum
    out = []
    for e in events:
        if not isinstance(e, RoundAborted):
            continue
        r = e.round_id
        if e.reason == "commitment quorum not reached":
            held, evidence = commits[r] < min_commitments, f"{commits[r]} commitments, {min_commitments} needed"
        elif e.reason == "no update accepted":
            held, evidence = r not in validated, "validation closed with no update accepted"
        elif e.reason == "aggregate quorum not reached":
            best = max(votes.get(r, Counter()).values(), default=0)
            held, evidence = best < quorum, f"at most {best} identical proposals, {quorum} needed"
        else:
            held, evidence = False, "no plain-round rule aborts for this reason"
        out.append({"round": r, "reason": e.reason, "by_rule": held, "evidence": evidence})
    return out


def processes(nodes: Nodes) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every node process and how it ended; the crashes among them: exits the monkey did not cause, with a code other
    than 0 and "rounds aborted", or with a traceback in their log."""
    rows, crashes = [], []
    for run in nodes.runs:
        text = run.log_text()
        traceback = "Traceback (most recent call last)" in text
        row = {
            "member": run.member,
            "process": run.number,
            "killed": run.killed,
            "returncode": run.returncode,
            "traceback": traceback,
            "log": str(run.log),
        }
        rows.append(row)
        if traceback or (not run.killed and run.returncode not in (0, ABORTED_EXIT)):
            crashes.append({**row, "log_tail": text[-3000:]})
    return rows, crashes


def verdict(
    net: LocalConsortium, nodes: Nodes, the_plan: Plan, monkey: Monkey, settings: Settings, *, in_time: bool
) -> Result:
    with Chain.rpc(net.chain_url) as ledger:
        task = TrainingTaskClient(ledger, net.task)
        events = list(task.events())
        current = task.current_round
        phases = {r: task.round(r).phase for r in range(1, current + 1)}
        min_commitments = task.params().min_commitments
        aborts = classify_aborts(task, events, min_commitments)
    finalized = [r for r, p in phases.items() if p is Phase.FINALIZED]
    aborted = {a["round"] for a in aborts if a["by_rule"]}
    lost = [r for r in range(1, settings.rounds + 1) if r not in finalized and r not in aborted]
    commits = Counter((e.round_id, e.member) for e in events if isinstance(e, UpdateCommitted))
    doubles = [{"round": r, "member": m, "commitments": c} for (r, m), c in sorted(commits.items()) if c > 1]
    rows, crashes = processes(nodes)
    audits = {}
    for org in {net.orgs[0].name: net.orgs[0], the_plan.victims[0]: nodes.orgs[the_plan.victims[0]]}.values():
        done = LocalConsortium.run(net, org, "audit", "verify", check=False)  # its own process, as members run it
        audits[org.name] = {"returncode": done.returncode, "output": (done.stdout + done.stderr).strip()[-2000:]}
    return Result(
        settings={k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        members=list(nodes.orgs),
        aggregators=the_plan.aggregators,
        victims=the_plan.victims,
        kills=[asdict(k) for k in the_plan.kills],
        chain_restart=asdict(the_plan.chain_restart),
        rounds=settings.rounds,
        rounds_finalized=len(finalized),
        aborts=aborts,
        rounds_lost=lost,
        task_done=current >= settings.rounds and phases.get(current) in (Phase.FINALIZED, Phase.ABORTED),
        double_commitments=doubles,
        processes=rows,
        crashes=crashes,
        audit={"passed": all(a["returncode"] == 0 for a in audits.values()), "by_member": audits},
        monkey_log=monkey.log,
        finished_in_time=in_time,
    )


def run_chaos(settings: Settings, say: Any = print) -> Result:
    """Set up the consortium, run every node under the monkey until the task ends, and count."""
    started = time.monotonic()
    settings.workdir.mkdir(parents=True, exist_ok=True)
    files = member_files(settings.data, settings.members, settings.workdir / "data")
    members = list(files)
    the_plan = plan(members, settings)
    task = task_config(settings.workdir, settings, len(members))
    with ExitStack() as stack:
        chain = stack.enter_context(chain_node(settings))
        kind = InProcessSetup if settings.setup_in_process else LocalConsortium
        net = stack.enter_context(
            kind(settings.workdir / "net", chain_url=chain.url, store=str(settings.workdir / "store"))
        )
        setup(net, members, the_plan.aggregators, task)
        setup_seconds = time.monotonic() - started
        say(f"set up {len(members)} members in {setup_seconds:.0f} s: {net.root}")
        nodes = Nodes(net, files)
        stack.callback(nodes.stop)
        for member in members:
            nodes.start(member)
        monkey = Monkey(the_plan, nodes, chain, say)
        in_time = monkey.run(settings.timeout)
        result = verdict(net, nodes, the_plan, monkey, settings, in_time=in_time)
    result.setup_seconds = round(setup_seconds, 1)
    result.wall_seconds = round(time.monotonic() - started, 1)
    return result
