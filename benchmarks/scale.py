#!/usr/bin/env python3
"""Cost of a round against the number of members: validated and secure rounds at 10, 100 and 1,000 members.

Every size runs the real thing in one process: an embedded chain, a Consortium and a task contract, and one
:class:`~fedledger.federation.node.MemberNode` per member, all stepped by a
:class:`~fedledger.federation.simulation.Simulation` (the same round engine a deployed node runs). The model is
small on purpose (a multinomial logistic regression on 20 synthetic features), so what grows with the members is
the protocol's cost, not training.

* Every member trains and, in validated rounds, validates; the first three members also aggregate (a proposal
  quorum of two), since a consortium of a thousand does not have every member recompute the model.
* Each member holds 40 training and 20 validation rows of a shared synthetic task (Gaussian classes), seeded.
* Validated rounds use the task's defaults: the contract draws committees once a round has more validators than
  :data:`AUTO_COMMITTEE_ABOVE` (see the TrainingTask contract).

What is measured per round (the mean over ``--rounds`` rounds, setup excluded): wall time, CPU time of the process,
transactions and gas (every receipt of every block the rounds span, by contract function), and view calls (every
``Chain.call``). Across sizes the growth exponent of each is the slope of a least-squares fit of log(metric) on
log(members). Targets (issue 32): an exponent at most 1.1 in wall time and gas, every size up to 1,000 members
completes, and a 100-member round costs under 10x a 10-member round.

    python benchmarks/scale.py                                   # both kinds at 10, 100, 1000 members
    python benchmarks/scale.py --members 10,20,40 --kinds validated --json
    python benchmarks/scale.py --markdown benchmarks/results/scale.md
    python benchmarks/scale.py --members 10,100 --kinds validated --commitments batched   # one root a round
"""

# ruff: noqa: E402 - the thread settings below must be in the environment before numpy loads.
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import hashlib
import json
import math
import platform
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedledger.chain.batches import CommitmentBatchesClient
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.task import TrainingTaskClient
from fedledger.federation import LocalData, MemberNode, Simulation, TaskConfig
from fedledger.federation.relay import Relay, RelayServer
from fedledger.federation.secure import identity_key
from fedledger.learning import build_model, encode_model
from fedledger.store import BlobStore
from fedledger.workspace import ChainSpec, Workspace

KINDS = ("validated", "secure")
DEFAULT_SIZES = (10, 100, 1000)
AGGREGATORS = 3
QUORUM = 2
N_FEATURES, N_CLASSES = 20, 4
TRAIN_ROWS, VAL_ROWS = 40, 20
GOAL_EXPONENT = 1.1
GOAL_RATIO_100_TO_10 = 10.0
BATCH_WINDOW = 10  # seconds a batch stays open to challenges (block time, advanced by the benchmark)


# -- data and consortium ------------------------------------------------------------------------------------------


def member_data(k: int, seed: int) -> LocalData:
    """Member ``k``'s rows of one shared task: Gaussian classes around fixed centres, its own draw."""
    centres = np.random.default_rng(seed).normal(0.0, 1.5, size=(N_CLASSES, N_FEATURES))
    rng = np.random.default_rng(seed + 1 + k)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, N_CLASSES, size=n)
        return centres[y] + rng.normal(0.0, 1.0, size=(n, N_FEATURES)), y

    X_tr, y_tr = rows(TRAIN_ROWS)
    X_val, y_val = rows(VAL_ROWS)
    return LocalData(X_tr, y_tr, X_val, y_val)


def task_config(kind: str, rounds: int, seed: int, batches: str = "") -> TaskConfig:
    spec = {"kind": "sklearn-logreg", "n_features": N_FEATURES, "n_classes": N_CLASSES, "seed": seed}
    common: dict[str, Any] = {
        "model": spec,
        "rounds": rounds,
        "local_epochs": 1,
        "seed": seed,
        "min_commitments": 2,
        "proposal_quorum": QUORUM,
    }
    if kind == "secure":
        return TaskConfig(**common, secure_aggregation=True, aggregation="fedavg")
    if batches:
        return TaskConfig(**common, commitments="batched", commitment_batches=batches, batch_window=BATCH_WINDOW)
    return TaskConfig(**common)


def _key(seed: int, name: str) -> bytes:
    return hashlib.sha256(f"scale:{seed}:{name}".encode()).digest()


@dataclass
class Consortium:
    chain: Chain
    task: TrainingTaskClient
    nodes: list[MemberNode]
    setup_seconds: float
    store: BlobStore


def stand_up(ws: Workspace, kind: str, members: int, rounds: int, seed: int, *, batched: bool = False) -> Consortium:
    """Operator, consortium, ``members`` members (trainer and validator; the first three also aggregators), the
    task (``batched``: with its CommitmentBatches contract) and a node per member: not timed."""
    started = time.perf_counter()
    chain = ws.chain
    store = BlobStore(ws.root / ws.config.store)
    operator: LocalAccount = Account.from_key(_key(seed, "operator"))
    ws.fund(operator.address)
    consortium = ConsortiumClient.deploy(chain, operator, org="Operator", roles=Role.ADMIN)
    accounts: list[LocalAccount] = []
    for k in range(members):
        account: LocalAccount = Account.from_key(_key(seed, f"member-{k}"))
        roles = Role.TRAINER | Role.VALIDATOR | (Role.AGGREGATOR if k < AGGREGATORS else 0)
        consortium.propose_admit(
            account.address,
            org=f"Member {k + 1}",
            roles=roles,
            store_uri=store.url,
            kx_public_key=identity_key(account).public_bytes,
        )
        ws.fund(account.address)
        accounts.append(account)
    batches = (
        CommitmentBatchesClient.deploy(chain, operator, consortium.address, window=BATCH_WINDOW) if batched else None
    )
    config = task_config(kind, rounds, seed, batches.address if batches is not None else "")
    store.put(config.to_bytes())
    initial = build_model(config.model).get_params()
    initial_hash = store.put(encode_model(initial, config.model, metadata={"round": "0"}))
    task = TrainingTaskClient.deploy(chain, operator, consortium.address, config.chain_params(initial_hash))
    nodes = [
        MemberNode(
            name=f"Member {k + 1}",
            account=account,
            task=task,
            store=store,
            data=member_data(k, seed),
            state_dir=ws.root / "secagg" / f"member-{k + 1}",
        )
        for k, account in enumerate(accounts)
    ]
    for node in nodes:
        node.config  # noqa: B018 - read the task config now, outside the timed rounds
    return Consortium(chain, task, nodes, time.perf_counter() - started, store)


# -- measuring ----------------------------------------------------------------------------------------------------


@dataclass
class ViewCounter:
    calls: int = 0
    by_function: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@contextmanager
def counting_views() -> Iterator[ViewCounter]:
    """Count every view call (``Chain.call``) made while the block runs, by function name."""
    counter = ViewCounter()
    original = Chain.call

    def call(self: Chain, fn: Any, *args: Any, **kwargs: Any) -> Any:
        counter.calls += 1
        counter.by_function[fn.fn_name] += 1
        return original(self, fn, *args, **kwargs)

    Chain.call = call  # type: ignore[method-assign]
    try:
        yield counter
    finally:
        Chain.call = original  # type: ignore[method-assign]


def chain_cost(chain: Chain, task: TrainingTaskClient, first_block: int) -> dict[str, Any]:
    """Transactions and gas of every block from ``first_block`` on, by task function (receipts' gasUsed)."""
    w3 = chain.w3
    txs, gas = 0, 0
    by_fn: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])  # count, gas, max gas of one call
    for n in range(first_block, chain.block_number + 1):
        for tx_hash in w3.eth.get_block(n, full_transactions=False)["transactions"]:
            used = int(w3.eth.get_transaction_receipt(tx_hash)["gasUsed"])
            tx = w3.eth.get_transaction(tx_hash)
            try:
                name = task.contract.get_function_by_selector(bytes(tx["input"])[:4]).fn_name
            except ValueError:
                name = "other"
            txs, gas = txs + 1, gas + used
            row = by_fn[name]
            row[0], row[1], row[2] = row[0] + 1, row[1] + used, max(row[2], used)
    return {
        "transactions": txs,
        "gas": gas,
        "by_function": {k: {"calls": v[0], "gas": v[1], "max_gas": v[2]} for k, v in sorted(by_fn.items())},
    }


def run_batched(net: Consortium) -> None:
    """One batched round: the first member relays (an aggregator, its relay served in this process); every node
    hands its commitment over, the relay posts the root, and once the window is over the round runs on the
    delivered batch."""
    relay = Relay(
        CommitmentBatchesClient(net.chain, net.task.params().commitment_batches, net.nodes[0].account),
        ConsortiumClient(net.chain, net.task.consortium_address),
        task=net.task.address,
        round_id=1,
    )
    with RelayServer(relay) as server:
        for node in net.nodes:
            node.relay_url = server.url
        while any([node.step() for node in net.nodes]):  # the round opens, every trainer hands its commitment over
            pass
    relay.publish(net.store)
    net.chain.advance_time(BATCH_WINDOW + 1)
    Simulation(net.task, net.nodes).run()


def run_size(kind: str, members: int, rounds: int, seed: int, *, batched: bool = False) -> dict[str, Any]:
    """One size of one kind: stand up, run ``rounds`` rounds, measure; per-round means."""
    with tempfile.TemporaryDirectory(prefix="fedledger-scale-") as tmp:
        ws = Workspace.create(Path(tmp), chain=ChainSpec(), scrypt_n=2**10)
        try:
            net = stand_up(ws, kind, members, rounds, seed, batched=batched)
            first_block = net.chain.block_number + 1
            with counting_views() as views:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                error = None
                try:
                    run_batched(net) if batched else Simulation(net.task, net.nodes).run()
                except Exception as exc:  # noqa: BLE001 - a size that breaks is a result, reported with its reason
                    error = f"{type(exc).__name__}: {exc}"
                wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            cost = chain_cost(net.chain, net.task, first_block)
            finalized = sum(
                1 for r in range(1, net.task.current_round + 1) if net.task.round(r).phase.name == "FINALIZED"
            )
            accepted = [net.task.round(r).num_accepted for r in range(1, net.task.current_round + 1)]
        finally:
            ws.close()
    per_round = max(rounds, 1)
    result: dict[str, Any] = {
        "kind": kind + (" (batched)" if batched else ""),
        "members": members,
        "rounds": rounds,
        "finalized": finalized,
        "accepted_per_round": accepted,
        "complete": error is None and finalized == rounds,
        "setup_seconds": round(net.setup_seconds, 2),
        "wall_seconds": round(wall / per_round, 3),
        "cpu_seconds": round(cpu / per_round, 3),
        "transactions": cost["transactions"] / per_round,
        "gas": cost["gas"] / per_round,
        "view_calls": views.calls / per_round,
        "gas_by_function": cost["by_function"],
        "views_by_function": dict(sorted(views.by_function.items())),
    }
    if error is not None:
        result["error"] = error
    return result


# -- growth -------------------------------------------------------------------------------------------------------


def growth_exponent(sizes: Sequence[float], values: Sequence[float]) -> float | None:
    """The slope of the least-squares line through (log size, log value): cost ~ size ** slope."""
    points = [(math.log(s), math.log(v)) for s, v in zip(sizes, values, strict=True) if s > 0 and v > 0]
    if len(points) < 2:
        return None
    xs, ys = np.array([p[0] for p in points]), np.array([p[1] for p in points])
    slope = float(np.polyfit(xs, ys, 1)[0])
    return round(slope, 3)


METRICS = ("wall_seconds", "cpu_seconds", "transactions", "gas", "view_calls")


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per kind: the growth exponent of each metric over the sizes that completed, and the targets."""
    out: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in rows}):
        done = [r for r in rows if r["kind"] == kind and r["complete"]]
        sizes = [r["members"] for r in done]
        exponents = {m: growth_exponent(sizes, [r[m] for r in done]) for m in METRICS}
        by_size = {r["members"]: r for r in done}
        ratio = cpu_ratio = None
        if 10 in by_size and 100 in by_size:
            ratio = round(by_size[100]["wall_seconds"] / by_size[10]["wall_seconds"], 2)
            cpu_ratio = round(by_size[100]["cpu_seconds"] / by_size[10]["cpu_seconds"], 2)
        attempted = [r["members"] for r in rows if r["kind"] == kind]
        largest = max(attempted) if attempted else 0
        out[kind] = {
            "sizes_completed": sizes,
            "exponents": exponents,
            "wall_ratio_100_to_10": ratio,
            "cpu_ratio_100_to_10": cpu_ratio,  # this process's own time: what a loaded machine does not inflate
            "targets": {
                "wall_exponent_at_most_1_1": _at_most(exponents["wall_seconds"], GOAL_EXPONENT),
                "gas_exponent_at_most_1_1": _at_most(exponents["gas"], GOAL_EXPONENT),
                f"{largest}_members_complete": largest in sizes,
                "100_member_round_under_10x_10": None if ratio is None else ratio < GOAL_RATIO_100_TO_10,
            },
        }
    return out


def _at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| kind | members | complete | wall s | CPU s | transactions | gas (M) | view calls |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['kind']} | {r['members']} | {'yes' if r['complete'] else 'no: ' + r.get('error', '')[:80]} | "
            f"{r['wall_seconds']:.2f} | {r['cpu_seconds']:.2f} | {r['transactions']:.0f} | "
            f"{r['gas'] / 1e6:.1f} | {r['view_calls']:.0f} |"
        )
    lines.append("")
    lines.append("| kind | exponent: wall | CPU | transactions | gas | view calls | 100 / 10 wall | 100 / 10 CPU |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for kind, s in result["summary"].items():
        e = s["exponents"]
        lines.append(
            f"| {kind} | {e['wall_seconds']} | {e['cpu_seconds']} | {e['transactions']} | {e['gas']} | "
            f"{e['view_calls']} | {s['wall_ratio_100_to_10']} | {s['cpu_ratio_100_to_10']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--members", default=",".join(map(str, DEFAULT_SIZES)), help="sizes, comma-separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="validated, secure or both, comma-separated")
    parser.add_argument("--rounds", type=int, default=1, help="rounds per size (the mean is reported)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--commitments", default="direct", choices=("direct", "batched"), help="validated rounds' commitments"
    )
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.members.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if any(k not in KINDS for k in kinds) or not sizes or min(sizes) < AGGREGATORS or args.rounds < 1:
        parser.error(f"--kinds from {KINDS}, --members at least {AGGREGATORS} each, --rounds at least 1")
    batched = args.commitments == "batched"
    if batched and (kinds != ["validated"] or args.rounds != 1):
        parser.error("--commitments batched runs validated rounds (--kinds validated), one round per size")
    rows = []
    for kind in kinds:
        for n in sizes:
            row = run_size(kind, n, args.rounds, args.seed, batched=batched)
            rows.append(row)
            print(
                f"{kind} {n} members: wall {row['wall_seconds']} s, CPU {row['cpu_seconds']} s, "
                f"{row['transactions']:.0f} tx, {row['gas'] / 1e6:.1f} M gas, {row['view_calls']:.0f} views"
                + ("" if row["complete"] else f" - INCOMPLETE: {row.get('error', '')}"),
                file=sys.stderr,
                flush=True,
            )
    result = {
        "command": "python benchmarks/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "rows": rows,
        "summary": summarize(rows),
    }
    print(json.dumps(result, indent=2) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
