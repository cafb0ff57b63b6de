"""Ledger benchmark: gas and transactions per second of every round operation.

One run measures the embedded chain and a real anvil node (started here on
127.0.0.1; skipped, with the reason printed, when no anvil binary is found) with
the same deterministic scenario:

* deploy Consortium, deploy TrainingTask;
* propose_admit at threshold 1 (executes at once);
* approve at threshold 2 (the second admin's approval executes an admission);
* for each round: open_round, commit_update (one per member), close_commits,
  submit_scores (one per validator, scoring all N updates), close_validation,
  propose_aggregate (not yet at quorum) and the finalizing propose_aggregate;
* the whole round (2N + 5 transactions with a proposal quorum of 2).

Every transaction goes through the client's own path (:meth:`Chain.transact`:
gas estimate on anvil, local signing, send, mined receipt; the embedded chain
runs it once and refuses a revert from that run), so tx/s is what a member sees,
one transaction at a time. Gas is the receipt's ``gasUsed``; keys,
hashes and the order of calls are fixed, so the same inputs give the same gas.

    python benchmarks/ledger.py [--members 5] [--rounds 20] [--json] [--no-anvil]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedledger.chain import Chain, Role, TaskParams, TxResult, compile_contract
from fedledger.chain.connection import ENGINE_ENV
from fedledger.chain.consortium import ConsortiumClient
from fedledger.chain.devnode import ANVIL_DEV_KEY, anvil_binary, anvil_node
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.chain.encoding import ZERO_HASH, as_bytes32
from fedledger.federation.config import DEFAULT_MAX_DISAGREEMENT, DEFAULT_REPUTATION_WARMUP

REPO = Path(__file__).resolve().parent.parent
MEMBER_ROLES = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR
SCORE = 9_000
PROPOSAL_QUORUM = 2
FUNDING_WEI = 10**21

# Operations in report order (the snapshot uses the same names).
OPERATIONS = (
    "deploy Consortium",
    "deploy TrainingTask",
    "propose_admit (threshold 1)",
    "approve (threshold 2)",
    "open_round",
    "commit_update",
    "close_commits",
    "submit_scores",
    "close_validation",
    "propose_aggregate",
    "propose_aggregate (finalizing)",
)
WHOLE_ROUND = "whole round"


def h(text: str) -> str:
    """A deterministic 32-byte hash."""
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def account(label: str) -> LocalAccount:
    """A deterministic key per label, the same on every backend and run."""
    acct: LocalAccount = Account.from_key(h(f"fedledger-benchmark-{label}"))
    return acct


@dataclass
class Measurements:
    """Gas and seconds of every measured transaction, by operation."""

    gas: dict[str, list[int]] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    # CPU seconds of the whole scenario (timed or not), the client's and the node's together: unlike tx/s, it
    # barely moves with the load of a shared machine, so it compares the backends where wall time cannot.
    cpu_seconds: float = 0.0

    def add(self, op: str, gas: int, seconds: float) -> None:
        self.gas.setdefault(op, []).append(gas)
        self.seconds.setdefault(op, []).append(seconds)

    def tx_per_s(self, op: str) -> float:
        return len(self.seconds[op]) / sum(self.seconds[op])


class Recorder:
    """Runs transactions on one chain, timing each and keeping its gas."""

    def __init__(self, chain: Chain) -> None:
        self.chain = chain
        self.m = Measurements()
        self._round: list[tuple[int, float]] | None = None

    def _timed(self, op: str | None, send: Callable[[], TxResult]) -> TxResult:
        start = time.perf_counter()
        result = send()
        elapsed = time.perf_counter() - start
        if op is not None:
            self.m.add(op, result.gas_used, elapsed)
        if self._round is not None:
            self._round.append((result.gas_used, elapsed))
        return result

    def tx(self, op: str | None, acct: LocalAccount, fn: Any) -> TxResult:
        return self._timed(op, lambda: self.chain.transact(acct, fn))

    def deploy(self, op: str | None, acct: LocalAccount, name: str, *args: Any) -> str:
        box: dict[str, str] = {}

        def send() -> TxResult:
            box["address"], result = self.chain.deploy(acct, name, *args)
            return result

        self._timed(op, send)
        return box["address"]

    @contextmanager
    def whole_round(self, label: str) -> Iterator[None]:
        self._round = []
        try:
            yield
            self.m.add(label, sum(g for g, _ in self._round), sum(s for _, s in self._round))
            self.m.seconds.setdefault(f"{label} tx", []).append(float(len(self._round)))
        finally:
            self._round = None


def consortium_args(org: str) -> tuple[Any, ...]:
    return (org, int(Role.ADMIN), as_bytes32(ZERO_HASH), as_bytes32(ZERO_HASH), "")


def task_args(consortium: str, members: int, max_disagreement: int) -> tuple[Any, ...]:
    params = TaskParams(
        config_hash=h("config"),
        initial_model=h("model-0"),
        min_commitments=min(2, members),
        commit_duration=3600,
        validate_duration=3600,
        aggregate_duration=3600,
        acceptance_threshold=5_000,
        proposal_quorum=PROPOSAL_QUORUM,
        max_rounds=0,
        max_disagreement=max_disagreement,
        reputation_warmup=DEFAULT_REPUTATION_WARMUP,
    )
    return params.constructor_args(consortium)


def admit_fn(consortium: Any, who: str, org: str, roles: Role) -> Any:
    return consortium.functions.propose_admit(who, org, int(roles), as_bytes32(ZERO_HASH), as_bytes32(ZERO_HASH), "")


def run_scenario(
    chain: Chain,
    faucet: LocalAccount,
    *,
    members: int,
    rounds: int,
    deploys: int = 3,
    approvals: int = 3,
    max_disagreement: int = DEFAULT_MAX_DISAGREEMENT,
) -> Measurements:
    """The benchmark scenario on one chain (fresh: nonces and addresses are then fixed); the task keeps
    validator reputation as a task config does by default unless ``max_disagreement`` is 0."""
    if members < PROPOSAL_QUORUM:
        raise ValueError(f"--members must be at least {PROPOSAL_QUORUM} (the proposal quorum)")
    for name in ("Consortium", "TrainingTask"):
        compile_contract(name)  # compile (or load the cache) before any timing
    rec = Recorder(chain)
    admin, admin2 = account("admin"), account("admin-2")
    trainers = [account(f"member-{i}") for i in range(members)]
    newcomers = [account(f"newcomer-{i}") for i in range(approvals)]
    for acct in (admin, admin2, *trainers):
        chain.transfer(faucet, acct.address, FUNDING_WEI)

    # Consortia: the first runs the rounds, the last gets two admins and threshold 2.
    addresses = [
        rec.deploy("deploy Consortium", admin, "Consortium", *consortium_args(f"Founder-{i}"))
        for i in range(max(deploys, 2))
    ]
    main = chain.contract("Consortium", addresses[0])
    for i, member in enumerate(trainers):
        rec.tx(
            "propose_admit (threshold 1)",
            admin,
            admit_fn(main, member.address, f"Member-{i:03d}", MEMBER_ROLES),
        )

    gov = chain.contract("Consortium", addresses[-1])
    rec.tx(None, admin, admit_fn(gov, admin2.address, "Second-admin", Role.ADMIN))
    rec.tx(None, admin, gov.functions.propose_threshold(2))
    for i, newcomer in enumerate(newcomers):
        rec.tx(None, admin, admit_fn(gov, newcomer.address, f"Newcomer-{i:03d}", MEMBER_ROLES))
        proposal_id = ConsortiumClient(chain, gov.address).proposal_count - 1
        rec.tx("approve (threshold 2)", admin2, gov.functions.approve(proposal_id))

    tasks = [
        rec.deploy("deploy TrainingTask", admin, "TrainingTask", *task_args(main.address, members, max_disagreement))
        for _ in range(deploys)
    ]
    task = chain.contract("TrainingTask", tasks[0])

    for _ in range(rounds):
        with rec.whole_round(WHOLE_ROUND):
            rec.tx("open_round", trainers[0], task.functions.open_round())
            r = int(task.functions.current_round().call())
            for i, member in enumerate(trainers):
                rec.tx(
                    "commit_update",
                    member,
                    task.functions.commit_update(r, as_bytes32(h(f"u{r}-{i}")), 100 + i, 0, 0),  # no dataset, no DP
                )
            rec.tx("close_commits", trainers[0], task.functions.close_commits(r))
            for i, member in enumerate(trainers):
                others = [j for j in range(members) if j != i]
                rec.tx("submit_scores", member, task.functions.submit_scores(r, others, [SCORE] * len(others)))
            rec.tx("close_validation", trainers[0], task.functions.close_validation(r))
            mask = int(task.functions.rounds(r).call()[9])
            model = as_bytes32(h(f"model-{r}"))
            for member in trainers[: PROPOSAL_QUORUM - 1]:
                rec.tx("propose_aggregate", member, task.functions.propose_aggregate(r, model, mask))
            final = trainers[PROPOSAL_QUORUM - 1]
            rec.tx("propose_aggregate (finalizing)", final, task.functions.propose_aggregate(r, model, mask))
        if int(task.functions.rounds(r).call()[0]) != 4:
            raise RuntimeError(f"round {r} did not finalize")
    return rec.m


# -- backends ----------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this process and of its children that have exited (a stopped anvil node)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def run_embedded(members: int, rounds: int, engine: str | None = None, **kw: Any) -> Measurements:
    """The scenario on a fresh embedded chain; ``engine`` (``py-evm``, ``anvil``) overrides the environment's."""
    start = cpu_seconds()
    previous = os.environ.get(ENGINE_ENV)
    if engine is not None:
        os.environ[ENGINE_ENV] = engine
    try:
        with tempfile.TemporaryDirectory(prefix="fedledger-bench-") as tmp, Chain.embedded(Path(tmp)) as chain:
            m = run_scenario(chain, Account.from_key(FAUCET_KEY.to_bytes()), members=members, rounds=rounds, **kw)
    finally:
        if engine is not None:
            os.environ.pop(ENGINE_ENV, None) if previous is None else os.environ.__setitem__(ENGINE_ENV, previous)
    m.cpu_seconds = cpu_seconds() - start
    return m


def run_anvil(binary: str, members: int, rounds: int, **kw: Any) -> Measurements:
    start = cpu_seconds()
    with anvil_node(binary) as url:  # stopped and reaped on exit: its CPU time is then counted
        chain = Chain.rpc(url)
        m = run_scenario(chain, Account.from_key(ANVIL_DEV_KEY), members=members, rounds=rounds, **kw)
    m.cpu_seconds = cpu_seconds() - start
    return m


def cpu_note(embedded: Measurements, anvil: Measurements | None, engine: Measurements | None = None) -> str:
    line = f"CPU seconds for the whole scenario, client and node together: embedded {embedded.cpu_seconds:.1f}"
    if engine is not None:
        line += f", embedded on the anvil engine {engine.cpu_seconds:.1f}"
    if anvil is not None:
        line += f", anvil {anvil.cpu_seconds:.1f} (embedded / anvil = {embedded.cpu_seconds / anvil.cpu_seconds:.2f})"
    return line + "."


# -- report --------------------------------------------------------------------------


def gas_cell(values: list[int]) -> str:
    low, high = min(values), max(values)
    return f"{low:,}" if low == high else f"{low:,} – {high:,}"


def report_rows(
    embedded: Measurements, anvil: Measurements | None, members: int, engine: Measurements | None = None
) -> list[dict[str, Any]]:
    """A row per operation; ``engine``: the embedded chain on the anvil engine (its own column when measured)."""
    rows = []
    for op in (*OPERATIONS, WHOLE_ROUND):
        gas = embedded.gas[op]
        row: dict[str, Any] = {
            "operation": op,
            "transactions": len(gas),
            "gas": gas,
            "embedded_tx_per_s": round(embedded.tx_per_s(op), 2),
            "anvil_tx_per_s": None,
            "anvil_gas": None,
        }
        if engine is not None:
            row["engine_anvil_gas"] = engine.gas[op]
            row["engine_anvil_tx_per_s"] = round(engine.tx_per_s(op), 2)
        if op == WHOLE_ROUND:
            per_round = embedded.seconds[f"{op} tx"]
            row["operation"] = f"whole round ({members} members, {int(per_round[0])} tx)"
            row["transactions"] = int(sum(per_round))
            row["embedded_tx_per_s"] = round(row["transactions"] / sum(embedded.seconds[op]), 2)
            row["embedded_rounds_per_s"] = round(embedded.tx_per_s(op), 3)
            if engine is not None:
                row["engine_anvil_tx_per_s"] = round(row["transactions"] / sum(engine.seconds[op]), 2)
        if anvil is not None:
            row["anvil_gas"] = anvil.gas[op]
            if op == WHOLE_ROUND:
                row["anvil_tx_per_s"] = round(row["transactions"] / sum(anvil.seconds[op]), 2)
                row["anvil_rounds_per_s"] = round(anvil.tx_per_s(op), 3)
            else:
                row["anvil_tx_per_s"] = round(anvil.tx_per_s(op), 2)
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]], anvil_note: str) -> str:
    differs = any(
        r[key] is not None and r[key] != r["gas"] for r in rows for key in ("anvil_gas", "engine_anvil_gas") if key in r
    )
    engine = "engine_anvil_tx_per_s" in rows[0]
    head = ["operation", "gas", "embedded tx/s"] + (["embedded (anvil engine) tx/s"] if engine else [])
    head += ["anvil tx/s"] + (["gas on anvil"] if differs else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for r in rows:
        anvil = f"{r['anvil_tx_per_s']:.1f}" if r["anvil_tx_per_s"] is not None else "—"
        cells = [r["operation"], gas_cell(r["gas"]), f"{r['embedded_tx_per_s']:.1f}"]
        cells += [f"{r['engine_anvil_tx_per_s']:.1f}"] if engine else []
        cells.append(anvil)
        if differs:
            cells.append(gas_cell(r["anvil_gas"]) if r["anvil_gas"] else "—")
        lines.append("| " + " | ".join(cells) + " |")
    if anvil_note:
        lines.append("")
        lines.append(anvil_note)
    elif not differs:
        lines.append("")
        lines.append(
            "Gas is identical on every backend. Ranges: a first call writes zero storage slots that "
            "later calls only update, and calldata costs depend on the bytes (hashes, addresses)."
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5, help="members (trainer, validator, aggregator each)")
    parser.add_argument("--rounds", type=int, default=20, help="rounds to run per backend")
    parser.add_argument("--deploys", type=int, default=5, help="deployments of each contract to time")
    parser.add_argument("--approvals", type=int, default=10, help="threshold-2 approvals to time")
    parser.add_argument("--no-anvil", action="store_true", help="measure the embedded chain only")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the markdown table")
    parser.add_argument(
        "--max-disagreement",
        type=int,
        default=DEFAULT_MAX_DISAGREEMENT,
        help=f"the task's validator reputation bound, basis points (default {DEFAULT_MAX_DISAGREEMENT}; 0: off)",
    )
    args = parser.parse_args(argv)
    if args.members < PROPOSAL_QUORUM or args.rounds < 1 or args.deploys < 1 or args.approvals < 1:
        parser.error(f"need --members >= {PROPOSAL_QUORUM} and --rounds, --deploys, --approvals >= 1")
    kw = {"deploys": args.deploys, "approvals": args.approvals, "max_disagreement": args.max_disagreement}

    log = sys.stderr
    started = time.perf_counter()
    print(f"embedded chain: {args.members} members, {args.rounds} rounds ...", file=log)
    embedded = run_embedded(args.members, args.rounds, engine="py-evm", **kw)
    anvil: Measurements | None = None
    engine: Measurements | None = None
    anvil_note = ""
    binary = anvil_binary(REPO)
    if args.no_anvil:
        anvil_note = "anvil: skipped (--no-anvil)."
    elif binary is None:
        anvil_note = "anvil: skipped, no anvil binary (run `npm ci`, or set FEDLEDGER_ANVIL)."
    else:
        print("embedded chain on the anvil engine ...", file=log)
        engine = run_embedded(args.members, args.rounds, engine="anvil", **kw)
        print(f"anvil ({binary}) ...", file=log)
        try:
            anvil = run_anvil(binary, args.members, args.rounds, **kw)
        except RuntimeError as exc:
            anvil_note = f"anvil: skipped, {exc}."
    if anvil_note:
        print(anvil_note, file=log)
    rows = report_rows(embedded, anvil, args.members, engine)
    elapsed = time.perf_counter() - started
    if args.json:
        data = {
            "members": args.members,
            "rounds": args.rounds,
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "anvil": None if anvil is None else binary,
            "anvil_note": anvil_note,
            "seconds": round(elapsed, 1),
            "cpu_seconds": {
                "embedded": round(embedded.cpu_seconds, 2),
                "anvil": None if anvil is None else round(anvil.cpu_seconds, 2),
                "embedded_anvil_engine": None if engine is None else round(engine.cpu_seconds, 2),
            },
            "operations": rows,
        }
        print(json.dumps(data, indent=2))
    else:
        print(markdown(rows, anvil_note))
        print("\n" + cpu_note(embedded, anvil, engine))
        print(f"\n{os.cpu_count()} CPUs, Python {platform.python_version()}; run took {elapsed:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
