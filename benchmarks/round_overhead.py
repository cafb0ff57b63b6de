"""Round overhead: fedledger rounds against the same local training plus plain FedAvg.

One run, one process, two arms over the same data, model, seeds and local training:

* **baseline**: every round, each member builds the model from the global params,
  trains locally (same adapter, epochs and per-member/round seed as a fedledger
  node), then the new global model is the example-weighted float FedAvg, in numpy.
  No chain, no store, no encoding, no validation.
* **fedledger**: the real thing, set up as ``fedledger demo`` does: a workspace
  with the embedded chain, a Consortium and a TrainingTask contract, one
  :class:`MemberNode` per member (trainer, validator and aggregator) stepped by a
  :class:`Simulation`. Members train, clip and fixed-point encode their updates,
  put them in the blob store and commit their hashes; validators score every
  other member's update on their own validation data; aggregators recompute the
  model until the proposal quorum agrees on its hash.

Data: scikit-learn's ``load_digits`` (1797 8x8 images, 10 classes), a stratified
20 % held-out test set, the rest shuffled and split evenly across the members,
each keeping 25 % of its share as validation data (used by fedledger's validators
only). Model: ``torch-mlp`` 64-320-240-10 (100,250 parameters).

The fedledger arm is instrumented by wrapping functions with
``time.perf_counter`` (exclusive time: a wrapped function's time excludes the
wrapped functions it calls), so the breakdown says where each second of a round
goes: local training, building models, validation (decoding and scoring other
members' updates), the update pipeline, the blob store, aggregation, chain
transactions (dry run, signing, sending, mining, receipt) and chain reads.
Transactions and gas per round are read back from the chain afterwards: every
block the round spans, every transaction's receipt ``gasUsed``.

    python benchmarks/round_overhead.py [--rounds 5] [--members 10] [--epochs 5] [--json]

The issue's cross-silo workload (about 10 s of local training per round for the ten members together on a
2-core machine) is ``--epochs 250``; the default five epochs show the fixed overhead instead.
"""

# ruff: noqa: E402 - the thread settings below must be in the environment before numpy and torch load.
from __future__ import annotations

import os

# One thread per BLAS/OpenMP pool, set before numpy and torch load: on a busy 2-core machine two pools
# (torch's OpenMP threads and OpenBLAS's) spinning against each other make a 0.02 ms np.dot take 15 ms.
# Both arms run under the same setting; override from the environment to measure something else.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import functools
import json
import platform
import secrets
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import fedledger.federation.node as node_mod
import fedledger.federation.rules as rules_mod
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.devnode import ANVIL_DEV_KEY, anvil_binary, anvil_node
from fedledger.chain.task import Phase, TrainingTaskClient
from fedledger.federation import LocalData, MemberNode, NodeEvent, Simulation, TaskConfig
from fedledger.federation.node import _seed as member_seed
from fedledger.learning import (
    FeatureStats,
    Params,
    Standardizer,
    UpdatePipeline,
    build_model,
    decode_model,
    encode_model,
    evaluate,
    num_params,
    train_val_split,
)
from fedledger.store import BlobStore
from fedledger.workspace import FAUCET_KEY_ENV, ChainSpec, Workspace

MEMBER_ROLES = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR
HIDDEN = [320, 240]  # 64*320+320 + 320*240+240 + 240*10+10 = 100,250 parameters
TARGET_RATIO = 1.10
# The trust rule's reference update is a local fit on the validator's validation data (FLTrust's server update);
# it is validation work the baseline does not do, so its nested fit is moved out of "training: local fit".
REFERENCE_CATEGORY = "validation: reference update (fit on validation data)"


# -- data ------------------------------------------------------------------------------


@dataclass
class Split:
    members: list[LocalData]
    X_test: np.ndarray
    y_test: np.ndarray
    n_features: int
    n_classes: int


def digits_split(n_members: int, seed: int) -> Split:
    from sklearn.datasets import load_digits

    data: Any = load_digits()
    X, y = np.asarray(data.data, dtype=np.float64), np.asarray(data.target, dtype=np.int64)
    X_pool, y_pool, X_test, y_test = train_val_split(X, y, val_fraction=0.2, seed=seed)
    order = np.random.default_rng(seed + 1).permutation(len(y_pool))
    shares = np.array_split(order, n_members)
    # Feature scaling from per-member summary statistics, as fedledger members would share them.
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(X_pool[s]) for s in shares))
    members = []
    for k, s in enumerate(shares):
        X_tr, y_tr, X_val, y_val = train_val_split(
            scaler.transform(X_pool[s]), y_pool[s], val_fraction=0.25, seed=seed + 10 + k
        )
        members.append(LocalData(X_tr, y_tr, X_val, y_val))
    return Split(members, scaler.transform(X_test), y_test, X.shape[1], int(y.max()) + 1)


# -- instrumentation ---------------------------------------------------------------------


class Profiler:
    """Exclusive wall time per category: a category's time excludes nested instrumented calls."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.inclusive: dict[str, float] = defaultdict(float)  # a category's time including nested calls
        self.calls: dict[str, int] = defaultdict(int)
        self.detail: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])  # label -> [calls, seconds]
        self._stack: list[list[float]] = []  # per active frame: [child seconds]
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, category: str, detail: Callable[..., str] | None = None) -> None:
        """Time ``owner.name`` (a class or module attribute, or a dict entry) under ``category``."""
        is_dict = isinstance(owner, dict)
        if (name not in owner) if is_dict else not hasattr(owner, name):
            return  # not in this version of fedledger
        original = owner[name] if is_dict else getattr(owner, name)
        profiler = self

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [0.0]
            profiler._stack.append(frame)
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                profiler._stack.pop()
                profiler.seconds[category] += elapsed - frame[0]
                profiler.inclusive[category] += elapsed
                profiler.calls[category] += 1
                if detail is not None:
                    row = profiler.detail[detail(*args, **kwargs)]
                    row[0] += 1
                    row[1] += elapsed - frame[0]
                if profiler._stack:
                    profiler._stack[-1][0] += elapsed

        if is_dict:
            owner[name] = timed
            self._undo.append(lambda: owner.__setitem__(name, original))
        else:
            setattr(owner, name, timed)
            self._undo.append(lambda: setattr(owner, name, original))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class GcMeter:
    """Time the garbage collector spends while active (it runs inside whatever allocates)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._start = 0.0

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections[info["generation"]] += 1

    @contextmanager
    def active(self) -> Iterator[None]:
        import gc

        gc.callbacks.append(self._callback)
        try:
            yield
        finally:
            gc.callbacks.remove(self._callback)


def instrument(profiler: Profiler) -> None:
    """Wrap the functions whose time the breakdown reports (fedledger arm only)."""
    model_cls = type(build_model({"kind": "torch-mlp", "n_features": 1, "n_classes": 2, "hidden": [1]}))
    rules = getattr(node_mod, "SCORING_RULES", {})
    wraps = [
        # local training (the baseline does exactly this)
        (model_cls, "fit", "training: local fit"),
        (node_mod, "build_model", "models: build adapter"),
        # the update pipeline and the blob store
        (UpdatePipeline, "run", "store/encoding: update pipeline (clip, fixed point, safetensors)"),
        (BlobStore, "put", "store/encoding: blob store put"),
        (BlobStore, "get", "store/encoding: blob store get"),
        (node_mod, "decode_model", "store/encoding: decode global model"),
        # validation
        (node_mod, "check_update", "validation: decode + check updates"),
        (node_mod, "score_update", "validation: score (apply + predict)"),
        (node_mod, "reference_update", REFERENCE_CATEGORY),
        *[(rules, name, "validation: score (apply + predict)") for name in rules],
        # aggregation
        (rules_mod, "check_update", "aggregation: decode + check updates"),
        (rules_mod, "fedavg", "aggregation: fixed-point fedavg + apply + encode"),
        (rules_mod, "apply_update", "aggregation: fixed-point fedavg + apply + encode"),
        (rules_mod, "encode_model", "aggregation: fixed-point fedavg + apply + encode"),
        # the ledger
        (Chain, "transact", "chain: transactions (sign, send, execute, mine, receipt)"),
        (Chain, "call", "chain: reads (view calls)"),
        (Chain, "timestamp", "chain: reads (view calls)"),
    ]
    for owner, name, category in wraps:
        profiler.wrap(owner, name, category, _DETAILS.get(name))


def _read_label(_chain: Any, fn: Any, *args: Any, **kwargs: Any) -> str:
    return f"read {getattr(fn, 'fn_name', '?')}"


def _tx_label(_chain: Any, _account: Any, fn: Any, *args: Any, **kwargs: Any) -> str:
    return f"tx {getattr(fn, 'fn_name', '?')}"


# Chain calls are also counted per contract function.
_DETAILS: dict[str, Callable[..., str]] = {
    "transact": _tx_label,
    "call": _read_label,
    "timestamp": lambda *a, **k: "read timestamp (get_block)",
}


# -- the two arms ------------------------------------------------------------------------


def float_fedavg(locals_: list[Params], weights: list[int]) -> Params:
    total = float(sum(weights))
    return {
        k: (sum(w * p[k].astype(np.float64) for p, w in zip(locals_, weights, strict=True)) / total).astype(np.float32)
        for k in locals_[0]
    }


@dataclass
class BaselineRun:
    round_times: list[float]
    cpu_s: float
    train_s: float
    models: list[Params]
    gc: GcMeter


def run_baseline(
    spec: dict[str, Any], config: TaskConfig, addresses: list[str], datas: list[LocalData], initial: Params
) -> BaselineRun:
    """Same local training per member and round, then float FedAvg; no ledger, store or encoding."""
    global_params = initial
    times: list[float] = []
    models: list[Params] = []
    train_s = 0.0
    gc_meter = GcMeter()
    cpu_start = time.process_time()
    with gc_meter.active():
        for r in range(1, config.rounds + 1):
            start = time.perf_counter()
            locals_, weights = [], []
            for address, data in zip(addresses, datas, strict=True):
                model = build_model(spec)
                model.set_params(global_params)
                t0 = time.perf_counter()
                seed = member_seed(config.seed, address, r)
                model.fit(data.X_train, data.y_train, epochs=config.local_epochs, seed=seed)
                train_s += time.perf_counter() - t0
                locals_.append(model.get_params())
                weights.append(len(data.y_train))
            global_params = float_fedavg(locals_, weights)
            times.append(time.perf_counter() - start)
            models.append(global_params)
    return BaselineRun(times, time.process_time() - cpu_start, train_s, models, gc_meter)


@dataclass
class LedgerRun:
    round_times: list[float]
    total_s: float
    cpu_s: float
    profile: Profiler
    gc: GcMeter
    actions: dict[str, float]
    action_calls: dict[str, int]
    rounds: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def timed_actions(actions: dict[str, float], calls: dict[str, int]) -> Iterator[None]:
    """Inclusive time of each node action (train+commit, score, aggregate, the rest of step)."""
    originals = {name: getattr(MemberNode, name) for name in ("train_and_commit", "score", "aggregate", "step")}

    def timing(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                actions[name] += time.perf_counter() - start
                calls[name] += 1

        return run

    for name, fn in originals.items():
        setattr(MemberNode, name, timing(name, fn))
    try:
        yield
    finally:
        for name, fn in originals.items():
            setattr(MemberNode, name, fn)


def run_ledger(task: TrainingTaskClient, nodes: list[MemberNode], rounds: int, profile: str | None = None) -> LedgerRun:
    finalized_at: dict[int, float] = {}

    def on_event(event: NodeEvent) -> None:
        if event.action == "propose" and event.details.get("finalized"):
            finalized_at[event.round_id] = time.perf_counter()

    for node in nodes:
        node.on_event = on_event
    profiler = Profiler()
    actions: dict[str, float] = defaultdict(float)
    action_calls: dict[str, int] = defaultdict(int)
    gc_meter = GcMeter()
    instrument(profiler)
    try:
        with timed_actions(actions, action_calls), gc_meter.active():
            simulation = Simulation(task, nodes)
            profiler_c = None
            if profile:
                import cProfile

                profiler_c = cProfile.Profile()
                profiler_c.enable()
            cpu_start = time.process_time()
            start = time.perf_counter()
            simulation.run()
            total = time.perf_counter() - start
            cpu = time.process_time() - cpu_start
            if profiler_c is not None:
                profiler_c.disable()
                profiler_c.dump_stats(profile)
    finally:
        profiler.restore()
    ends = [finalized_at[r] for r in range(1, rounds + 1)]
    # Round r runs from the end of round r-1 (it starts with open_round) to its finalizing proposal;
    # the simulation's final "done?" check after the last round is added to the last round.
    round_times = [b - a for a, b in zip([start, *ends[:-1]], ends, strict=True)]
    round_times[-1] += start + total - ends[-1]
    return LedgerRun(round_times, total, cpu, profiler, gc_meter, dict(actions), dict(action_calls))


def round_gas(chain: Chain, task: TrainingTaskClient, first_block: int, rounds: int) -> list[dict[str, Any]]:
    """Transactions and gas of every round, from the blocks themselves (receipts' gasUsed)."""
    w3 = chain.w3
    rows = []
    start = first_block
    for r in range(1, rounds + 1):
        end = None
        txs, gas = 0, 0
        by_fn: dict[str, int] = defaultdict(int)
        n = start
        while end is None and n <= chain.block_number:
            block = w3.eth.get_block(n, full_transactions=False)
            for tx_hash in block["transactions"]:
                receipt = w3.eth.get_transaction_receipt(tx_hash)
                txs += 1
                gas += int(receipt["gasUsed"])
                tx = w3.eth.get_transaction(tx_hash)
                try:
                    fn = task.contract.get_function_by_selector(bytes(tx["input"])[:4]).fn_name
                except ValueError:
                    fn = "other"
                by_fn[fn] += 1
                if fn == "propose_aggregate" and task.round(r, block=n).phase is Phase.FINALIZED:
                    end = n
            n += 1
        rows.append({"round": r, "transactions": txs, "gas": gas, "by_function": dict(sorted(by_fn.items()))})
        start = n
    return rows


# -- setup and report -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    split = digits_split(args.members, args.seed)
    spec = {
        "kind": "torch-mlp",
        "n_features": split.n_features,
        "n_classes": split.n_classes,
        "hidden": HIDDEN,
        "lr": 0.05,
        "momentum": 0.9,
        "batch_size": 32,
        "seed": args.seed,
    }
    initial_model = build_model(spec)
    initial = initial_model.get_params()
    config = TaskConfig(
        model=spec,
        rounds=args.rounds,
        local_epochs=args.epochs,
        seed=args.seed,
        clip_norm=100.0,  # above any honest update's norm here: clipping never changes an update
        acceptance_threshold=1_000,  # 10 %: chance level on 10 classes; every honest update passes
        aggregation="fedavg",  # the baseline's rule: both arms must compute the same model
        # The baseline is plain FedAvg, so neither arm lifts short updates nor caps declared examples.
        lift_to_median_norm=False,
        cap_examples_to_median=False,
        min_commitments=args.members,
        proposal_quorum=args.quorum,
    )

    with tempfile.TemporaryDirectory(prefix="fedledger-overhead-") as tmp, chain_spec(args.chain) as spec_:
        ws = Workspace.create(Path(tmp), chain=spec_, scrypt_n=2**10)
        try:
            setup_start = time.perf_counter()
            chain = ws.chain
            store = BlobStore(ws.root / ws.config.store)
            password = secrets.token_urlsafe(16)
            # Fixed throwaway keys: member seeds derive from addresses, so every run trains the same way.
            operator = ws.keystore.create("operator", password, private_key=_key(args.seed, "operator"))
            ws.fund(operator.address)
            consortium = ConsortiumClient.deploy(chain, operator, org="Operator", roles=Role.ADMIN)
            accounts = []
            for k in range(args.members):
                account = ws.keystore.create(
                    f"member-{k + 1}", password, private_key=_key(args.seed, f"member-{k + 1}")
                )
                consortium.propose_admit(
                    account.address, org=f"Member {k + 1}", roles=MEMBER_ROLES, store_uri=store.url
                )
                ws.fund(account.address)
                accounts.append(account)
            store.put(config.to_bytes())
            initial_hash = store.put(encode_model(initial, spec, metadata={"round": "0"}))
            task = TrainingTaskClient.deploy(
                chain,
                operator,
                consortium.address,
                config.chain_params(initial_hash),
            )
            nodes = [
                MemberNode(name=f"Member {k + 1}", account=acct, task=task, store=store, data=split.members[k])
                for k, acct in enumerate(accounts)
            ]
            for node in nodes:
                node.config  # noqa: B018 - fetch the task config now, outside the timed rounds
            setup_s = time.perf_counter() - setup_start
            # Warm up torch (first-call allocations) so neither arm pays it.
            warm = build_model(spec)
            warm.fit(split.members[0].X_train, split.members[0].y_train, epochs=1, seed=0)

            addresses = [a.address for a in accounts]
            # The baseline runs before and after the fedledger arm (same seeds, same models: the mean of
            # the two passes evens out load that other processes put on the machine meanwhile).
            before = run_baseline(spec, config, addresses, split.members, initial)
            first_block = chain.block_number + 1
            ledger = run_ledger(task, nodes, args.rounds, args.profile)
            after = run_baseline(spec, config, addresses, split.members, initial)
            base_models = after.models
            gas_rows = round_gas(chain, task, first_block, args.rounds)

            evaluator = build_model(spec)
            ledger_acc, base_acc, accepted = [], [], []
            for r in range(1, args.rounds + 1):
                info = task.round(r)
                accepted.append(info.num_accepted)
                params = decode_model(store.get(info.model_hash.removeprefix("0x"))).params
                ledger_acc.append(float(evaluate(evaluator, params, split.X_test, split.y_test)))
                base_acc.append(float(evaluate(evaluator, base_models[r - 1], split.X_test, split.y_test)))
            max_diff = max(float(np.max(np.abs(params[k].astype(np.float64) - base_models[-1][k]))) for k in params)
        finally:
            ws.close()

    return report(
        args,
        spec,
        initial_model,
        split,
        setup_s,
        [before, after],
        ledger,
        gas_rows,
        ledger_acc,
        base_acc,
        accepted,
        max_diff,
    )


@contextmanager
def chain_spec(kind: str) -> Iterator[ChainSpec]:
    """The chain the fedledger arm runs on: the embedded py-evm chain, or a fresh anvil node (native EVM)."""
    if kind == "embedded":
        yield ChainSpec()
        return
    binary = anvil_binary(Path(__file__).resolve().parent)
    if binary is None:
        raise SystemExit("--chain anvil: no anvil binary (run `npm ci`, or set FEDLEDGER_ANVIL)")
    previous = os.environ.get(FAUCET_KEY_ENV)
    os.environ[FAUCET_KEY_ENV] = ANVIL_DEV_KEY  # anvil's funded dev account pays the members' gas
    try:
        with anvil_node(binary) as url:
            yield ChainSpec(kind="rpc", url=url)
    finally:
        if previous is None:
            os.environ.pop(FAUCET_KEY_ENV, None)
        else:
            os.environ[FAUCET_KEY_ENV] = previous


def report(
    args: argparse.Namespace,
    spec: dict[str, Any],
    model: Any,
    split: Split,
    setup_s: float,
    baselines: list[BaselineRun],
    ledger: LedgerRun,
    gas_rows: list[dict[str, Any]],
    ledger_acc: list[float],
    base_acc: list[float],
    accepted: list[int],
    max_diff: float,
) -> dict[str, Any]:
    R = args.rounds
    n_passes = len(baselines)
    base_times = [sum(b.round_times[r] for b in baselines) / n_passes for r in range(R)]
    base_train = sum(b.train_s for b in baselines) / n_passes
    base_cpu = sum(b.cpu_s for b in baselines) / n_passes
    base_mean = sum(base_times) / R
    ledger_mean = ledger.total_s / R
    prof = ledger.profile
    categories = dict(sorted(prof.seconds.items()))
    nested_reference = prof.inclusive.get(REFERENCE_CATEGORY, 0.0) - prof.seconds.get(REFERENCE_CATEGORY, 0.0)
    if nested_reference > 0:
        # Nested time is almost all the fit; the few models built inside stay under their own category.
        moved = min(nested_reference, categories.get("training: local fit", 0.0))
        categories["training: local fit"] -= moved
        categories[REFERENCE_CATEGORY] += moved
    other = ledger.total_s - sum(categories.values())
    categories["other: simulation loop, node bookkeeping"] = other
    validation_s = sum(v for k, v in categories.items() if k.startswith("validation"))
    # What fedledger's validators do that the baseline does not, including the models they build to score.
    score_builds = ledger.action_calls.get("score", 0) * (args.members - 1)
    builds_total = prof.calls.get("models: build adapter", 0)
    build_s = categories.get("models: build adapter", 0.0)
    validation_build_s = build_s * score_builds / builds_total if builds_total else 0.0
    validation_total = validation_s + validation_build_s
    ledger_no_validation = ledger_mean - validation_total / R
    return {
        "benchmark": "round_overhead",
        "command": "python benchmarks/round_overhead.py " + " ".join(sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": _cpus(),
            "torch_threads": args.torch_threads,
            "load_average_at_end": _loadavg(),
        },
        "setup": {
            "members": args.members,
            "rounds": R,
            "local_epochs": args.epochs,
            "proposal_quorum": args.quorum,
            "chain": args.chain,
            "dataset": "sklearn load_digits (64 features, 10 classes)",
            "train_examples_per_member": [int(len(d.y_train)) for d in split.members],
            "val_examples_per_member": [int(len(d.y_val)) for d in split.members],
            "test_examples": int(len(split.y_test)),
            "model": spec,
            "parameters": int(num_params(model.get_params())),
            "setup_seconds": round(setup_s, 3),
        },
        "baseline": {
            "round_seconds": [round(t, 4) for t in base_times],
            "round_seconds_by_pass": [[round(t, 4) for t in b.round_times] for b in baselines],
            "mean_round_seconds": round(base_mean, 4),
            "cpu_seconds_per_round": round(base_cpu / R, 4),
            "gc_seconds_per_round": round(sum(b.gc.seconds for b in baselines) / n_passes / R, 4),
            "gc_collections_per_round_by_generation": [
                sum(b.gc.collections[g] for b in baselines) / n_passes / R for g in range(3)
            ],
            "training_seconds_per_round": round(base_train / R, 4),
            "accuracy": [round(a, 4) for a in base_acc],
        },
        "fedledger": {
            "round_seconds": [round(t, 4) for t in ledger.round_times],
            "mean_round_seconds": round(ledger_mean, 4),
            "cpu_seconds_per_round": round(ledger.cpu_s / R, 4),
            "gc_seconds_per_round": round(ledger.gc.seconds / R, 4),
            "gc_collections_per_round_by_generation": [c / R for c in ledger.gc.collections],
            "accuracy": [round(a, 4) for a in ledger_acc],
            "accepted_updates": accepted,
            "breakdown_seconds_per_round": {k: round(v / R, 4) for k, v in categories.items()},
            "calls_per_round": {k: prof.calls[k] / R for k in sorted(prof.calls)},
            "chain_calls_per_round": {
                k: {"calls": v[0] / R, "seconds": round(v[1] / R, 4)}
                for k, v in sorted(prof.detail.items(), key=lambda kv: -kv[1][1])
            },
            "node_actions_seconds_per_round": {k: round(v / R, 4) for k, v in sorted(ledger.actions.items())},
            "validation_seconds_per_round": round(validation_total / R, 4),
            "transactions": gas_rows,
        },
        "ratio": round(ledger_mean / base_mean, 3),
        "cpu_ratio": round(ledger.cpu_s / base_cpu, 3),
        "overhead_seconds_per_round": round(ledger_mean - base_mean, 4),
        "ratio_without_validation": round(ledger_no_validation / base_mean, 3),
        "target_ratio": TARGET_RATIO,
        "final_accuracy": {"baseline": round(base_acc[-1], 4), "fedledger": round(ledger_acc[-1], 4)},
        "final_model_max_abs_param_diff": max_diff,
    }


def _key(seed: int, name: str) -> bytes:
    import hashlib

    return hashlib.sha256(f"fedledger round_overhead benchmark:{seed}:{name}".encode()).digest()


def _loadavg() -> list[float] | None:
    import os

    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def markdown(res: dict[str, Any]) -> str:
    s, b, f = res["setup"], res["baseline"], res["fedledger"]
    R = s["rounds"]
    lines = [
        f"{s['members']} members, {R} rounds, {s['local_epochs']} local epochs, "
        f"torch-mlp {s['model']['hidden']} ({s['parameters']:,} parameters) on {s['dataset']}, "
        f"proposal quorum {s['proposal_quorum']}, {s['chain']} chain; {res['machine']['cpus']} CPUs, "
        f"torch threads {res['machine']['torch_threads']}, Python {res['machine']['python']}.",
        "",
        "| round | baseline (s) | fedledger (s) | ratio | transactions | gas "
        "| accuracy baseline | accuracy fedledger |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in range(R):
        tx = f["transactions"][r]
        lines.append(
            f"| {r + 1} | {b['round_seconds'][r]:.3f} | {f['round_seconds'][r]:.3f} "
            f"| {f['round_seconds'][r] / b['round_seconds'][r]:.2f} | {tx['transactions']} | {tx['gas']:,} "
            f"| {b['accuracy'][r]:.4f} | {f['accuracy'][r]:.4f} |"
        )
    mean_tx = sum(t["transactions"] for t in f["transactions"]) / R
    mean_gas = sum(t["gas"] for t in f["transactions"]) / R
    lines.append(
        f"| **mean** | **{b['mean_round_seconds']:.3f}** | **{f['mean_round_seconds']:.3f}** "
        f"| **{res['ratio']:.2f}** | {mean_tx:.1f} | {mean_gas:,.0f} "
        f"| | |"
    )
    lines += [
        "",
        f"Ratio fedledger / baseline (wall time per round): **{res['ratio']:.2f}** "
        f"(target <= {res['target_ratio']:.2f}); without the validators' scoring (work the baseline does "
        f"not do): **{res['ratio_without_validation']:.2f}**; CPU time ratio {res['cpu_ratio']:.2f}. "
        f"Absolute overhead: {res['overhead_seconds_per_round']:.3f} s per round. Baseline passes "
        f"(before / after the fedledger arm): "
        + " / ".join(f"{sum(p) / R:.3f} s" for p in b["round_seconds_by_pass"])
        + f" per round; load average at the end {res['machine']['load_average_at_end']}.",
        "",
        "Where a fedledger round goes (exclusive wall time, seconds per round):",
        "",
        "| category | s / round | % of round | calls / round |",
        "|---|---:|---:|---:|",
    ]
    mean = f["mean_round_seconds"]
    calls = f["calls_per_round"]
    for k, v in sorted(f["breakdown_seconds_per_round"].items(), key=lambda kv: -kv[1]):
        n = calls.get(k)
        lines.append(f"| {k} | {v:.3f} | {100 * v / mean:.1f} % | {'' if n is None else f'{n:g}'} |")
    lines += [
        f"| *baseline: local fit* | {b['training_seconds_per_round']:.3f} | | {s['members']} |",
        f"| *validation total (decode, check, build model, score)* | {f['validation_seconds_per_round']:.3f} "
        f"| {100 * f['validation_seconds_per_round'] / mean:.1f} % | |",
        f"| *garbage collector (spread over the rows above)* | {f['gc_seconds_per_round']:.3f} "
        f"| {100 * f['gc_seconds_per_round'] / mean:.1f} % | "
        f"{'/'.join(f'{c:g}' for c in f['gc_collections_per_round_by_generation'])} |",
        f"| *baseline: garbage collector* | {b['gc_seconds_per_round']:.3f} | | "
        f"{'/'.join(f'{c:g}' for c in b['gc_collections_per_round_by_generation'])} |",
        "",
        "Node actions (inclusive, seconds per round): "
        + ", ".join(f"{k} {v:.3f}" for k, v in f["node_actions_seconds_per_round"].items())
        + ".",
        "",
        "Chain calls per round by contract function (calls, seconds): "
        + ", ".join(f"{k} {v['calls']:g} / {v['seconds']:.3f} s" for k, v in f["chain_calls_per_round"].items())
        + ".",
        "",
        "Transactions per round by function: "
        + ", ".join(f"{k} {v}" for k, v in f["transactions"][0]["by_function"].items())
        + f". Accepted updates per round: {f['accepted_updates']}. "
        f"Final models' largest parameter difference (fixed point vs float FedAvg): "
        f"{res['final_model_max_abs_param_diff']:.2e}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=5, help="local epochs per round (both arms)")
    parser.add_argument("--quorum", type=int, default=3, help="aggregators that must agree on the model")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="torch intra-op threads (both arms); 1 avoids oversubscription on a busy 2-core machine",
    )
    parser.add_argument(
        "--chain",
        choices=("embedded", "anvil"),
        default="embedded",
        help="the embedded py-evm chain (default), or a local anvil node (native EVM over JSON-RPC)",
    )
    parser.add_argument("--profile", metavar="FILE", help="also write a cProfile of the fedledger arm to FILE")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    if args.members < 3 or args.rounds < 1 or not 1 <= args.quorum <= args.members:
        parser.error("need --members >= 3, --rounds >= 1 and 1 <= --quorum <= --members")
    import torch

    torch.set_num_threads(args.torch_threads)
    res = run(args)
    print(json.dumps(res, indent=2) if args.json else markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
