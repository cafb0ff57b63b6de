"""Anvil as the embedded chain: throughput with persistence on, and what survives a restart or a crash.

Issue 32 asks whether a native EVM could be the embedded default. This measures the option of serving anvil
(when installed) from the workspace's chain folder, with its own persistence (``--state FILE``: load on start, dump
on exit; ``--state-interval``: dump every so many seconds; ``--preserve-historical-states``: keep the states of past
blocks in the dump, for reads at a block). One run, the same deterministic scenario as ``benchmarks/ledger.py``:

1. **throughput**: the embedded chain (py-evm), plain anvil (no persistence, as ``ledger.py``), and persistent
   anvil, twice: through ``Chain.rpc`` (a gas estimate, then the transaction: two executions) and with the
   embedded chain's fixed gas limit and no estimate (one execution; a revert would then be mined, not refused);
2. **restart**: persistent anvil stopped with SIGTERM (it dumps), the dump's size and the stop's time, then started
   again from it: seconds until it answers, and whether the head, every log, the first receipts, balances at past
   blocks and a contract read at past blocks (``eth_call`` with a block number, what the audit does) are the same;
3. **crash**: more transactions, then SIGKILL, then a restart: how many of the blocks mined since the last dump
   are lost;
4. **replay**: the other way to persist, a log of the signed transactions replayed at their blocks' times into a
   fresh node on reopening: how long that takes, and whether the replayed chain answers as the original; then the
   embedded chain's anvil engine, which persists that way: the scenario (all its deployments and approvals), and
   the seconds its reopening takes.

    python benchmarks/anvil_embedded.py [--members 5] [--rounds 20] [--state-interval 1] [--json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from hexbytes import HexBytes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import (  # noqa: E402 - the benchmark folder is not a package
    REPO,
    WHOLE_ROUND,
    Measurements,
    account,
    cpu_seconds,
    run_embedded,
    run_scenario,
)

from fedledger.chain import Chain  # noqa: E402
from fedledger.chain.connection import ENGINE_ENV  # noqa: E402
from fedledger.chain.devnode import ANVIL_DEV_KEY, anvil_binary  # noqa: E402
from fedledger.chain.embedded import FAUCET_KEY  # noqa: E402

CURRENT_ROUND = "0x319c068c"  # current_round() selector
CRASH_TRANSFERS = 30  # blocks mined over three dump intervals before the SIGKILL
SAMPLED_BLOCKS = 12  # past blocks at which balances and the task's round are read before and after a restart


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_anvil(
    binary: str, state: Path | None, interval: float, historical: bool = True, extra: Sequence[str] = ()
) -> tuple[subprocess.Popen[bytes], str, float]:
    """Start anvil (persistent when ``state`` is a file path, with the states of past blocks when ``historical``);
    its process, URL and seconds until it answered."""
    port = _free_port()
    args = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", "prague"]
    if state is not None:
        args += ["--state", str(state), "--state-interval", f"{interval:g}"]
        args += ["--preserve-historical-states"] if historical else []
    args += list(extra)
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}'
    deadline = time.monotonic() + 60
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=1).read()
            return proc, url, time.perf_counter() - started
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError(f"anvil did not start on {url}") from None
            time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    """Stop anvil with ``sig`` and reap it; seconds it took (a SIGTERM'd node dumps its state first)."""
    started = time.perf_counter()
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return time.perf_counter() - started


@contextmanager
def anvil_chain(binary: str, state: Path | None, interval: float, historical: bool, fixed_gas: bool) -> Iterator[Chain]:
    proc, url, _ = start_anvil(binary, state, interval, historical)
    try:
        chain = Chain.rpc(url)
        if fixed_gas:
            chain.fixed_gas, chain.dry_run = 30_000_000, False  # the embedded chain's client settings
        yield chain
    finally:
        stop(proc)


def run_anvil(
    binary: str, state: Path | None, interval: float, historical: bool, fixed_gas: bool, **kw: Any
) -> Measurements:
    start = cpu_seconds()
    with anvil_chain(binary, state, interval, historical, fixed_gas) as chain:
        m = run_scenario(chain, Account.from_key(ANVIL_DEV_KEY), **kw)
    m.cpu_seconds = cpu_seconds() - start
    return m


def task_address(chain: Chain, index: int) -> str:
    """The ``index``-th contract created on the chain (the scenario deploys consortia first, then tasks)."""
    created = []
    for number in range(1, chain.block_number + 1):
        for tx in chain.w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if not tx["to"]:
                created.append(chain.w3.eth.get_transaction_receipt(tx["hash"])["contractAddress"])
    return str(created[index])


def observe(chain: Chain, task: str, blocks: list[int], receipts: list[str]) -> dict[str, Any]:
    """What the audit reads: the head, every log, some receipts, balances and a contract read at past blocks."""
    w3 = chain.w3
    admin = account("admin").address
    logs = w3.eth.get_logs({"fromBlock": 0, "toBlock": "latest"})
    return {
        "head": chain.block_number,
        "head_hash": HexBytes(w3.eth.get_block("latest")["hash"]).to_0x_hex(),
        "logs": len(logs),
        "logs_digest": hashlib.sha256(
            b"".join(
                bytes(log["transactionHash"]) + bytes(log["data"]) + int(log["logIndex"]).to_bytes(4) for log in logs
            )
        ).hexdigest(),
        "receipts": [int(w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in receipts],
        "balances_at": [_or_error(lambda b=b: str(w3.eth.get_balance(admin, block_identifier=b))) for b in blocks],
        "round_at": [
            _or_error(
                lambda b=b: HexBytes(w3.eth.call({"to": task, "data": CURRENT_ROUND}, block_identifier=b)).to_0x_hex()
            )
            for b in blocks
        ],
    }


def _or_error(read: Callable[[], str]) -> str:
    try:
        return read()
    except Exception as exc:  # noqa: BLE001 - the measurement is whether the node can answer
        return f"error: {type(exc).__name__}: {str(exc)[:120]}"


def idle_cpu_share(pid: int, seconds: float = 5.0) -> float:
    """CPU seconds per second the node spends while nobody transacts (its periodic dumps), from /proc."""

    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    start = cpu()
    time.sleep(seconds)
    return round((cpu() - start) / seconds, 3)


def restart_and_crash(binary: str, interval: float, historical: bool, members: int, rounds: int) -> dict[str, Any]:
    """A persistent node: the scenario, a graceful restart (what survives, how long it takes), then a crash."""
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fedledger-anvil-state-") as tmp:
        state = Path(tmp) / "state.json"
        proc, url, out["first_start_s"] = start_anvil(binary, state, interval, historical)
        chain = Chain.rpc(url)
        run_scenario(chain, Account.from_key(ANVIL_DEV_KEY), members=members, rounds=rounds, deploys=1, approvals=1)
        task = task_address(chain, 2)
        head = chain.block_number
        blocks = sorted({1 + (head - 1) * i // (SAMPLED_BLOCKS - 1) for i in range(SAMPLED_BLOCKS)})
        receipts = [
            HexBytes(tx["hash"]).to_0x_hex()
            for n in range(1, min(head, 10) + 1)
            for tx in chain.w3.eth.get_block(n, full_transactions=True)["transactions"]
        ]
        before = observe(chain, task, blocks, receipts)
        out["transactions"] = sum(len(chain.w3.eth.get_block(n)["transactions"]) for n in range(1, head + 1))
        out["idle_node_cpu_per_s"] = idle_cpu_share(proc.pid)
        out["stop_s"] = stop(proc)
        out["state_file_bytes"] = state.stat().st_size
        proc, url, out["restart_s"] = start_anvil(binary, state, interval, historical)
        chain = Chain.rpc(url)
        after = observe(chain, task, blocks, receipts)
        out["same_after_restart"] = {key: before[key] == after[key] for key in before}
        out["before"], out["after"] = before, after

        # A crash: transfers (each its own block) spread over three dump intervals, then SIGKILL.
        faucet = Account.from_key(ANVIL_DEV_KEY)
        start_head = chain.block_number
        for i in range(CRASH_TRANSFERS):
            chain.transfer(faucet, account(f"crash-{i}").address, 1)
            time.sleep(3 * interval / CRASH_TRANSFERS)
        mined = chain.block_number - start_head
        stop(proc, signal.SIGKILL)
        proc, url, _ = start_anvil(binary, state, interval, historical)
        out["crash"] = {"blocks_mined": mined, "blocks_lost": start_head + mined - Chain.rpc(url).block_number}
        stop(proc)
    return out


def replay_open(binary: str, members: int, rounds: int) -> dict[str, Any]:
    """Persistence by a log of signed transactions instead of dumps: the seconds a reopening costs when every
    logged transaction is replayed, at its block's time, into a fresh node, and whether the replayed chain answers
    what the audit reads (every past state is then in the node again) as the original did."""
    extra = ["--timestamp", str(int(time.time()) - 86_400)]  # the same genesis for the original and the replay
    proc, url, _ = start_anvil(binary, None, 0, extra=extra)
    try:
        chain = Chain.rpc(url)
        chain.fixed_gas, chain.dry_run = 30_000_000, False
        run_scenario(chain, Account.from_key(ANVIL_DEV_KEY), members=members, rounds=rounds, deploys=1, approvals=1)
        log = []  # per block: its time and its signed transactions
        for number in range(1, chain.block_number + 1):
            block = chain.w3.eth.get_block(number)
            raws = [
                chain.w3.provider.make_request("eth_getRawTransactionByHash", [HexBytes(h).to_0x_hex()])["result"]  # type: ignore[arg-type]
                for h in block["transactions"]
            ]
            log.append((int(block["timestamp"]), raws))
        task = task_address(chain, 2)
        head = chain.block_number
        blocks = sorted({1 + (head - 1) * i // (SAMPLED_BLOCKS - 1) for i in range(SAMPLED_BLOCKS)})
        original = observe(chain, task, blocks, [])
    finally:
        stop(proc)
    proc, url, start_s = start_anvil(binary, None, 0, extra=[*extra, "--no-mining"])  # blocks mined on request
    try:
        session = requests.Session()
        session.trust_env = False  # loopback: no proxy lookup per request

        def rpc(method: str, params: list[Any]) -> Any:
            answer = session.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
            if "error" in answer:
                raise RuntimeError(f"{method}: {answer['error']}")
            return answer["result"]

        started = time.perf_counter()
        for timestamp, raws in log:
            for raw in raws:
                rpc("eth_sendRawTransaction", [raw])
            rpc("evm_setNextBlockTimestamp", [timestamp])
            rpc("evm_mine", [])  # synchronous: the block holds exactly the logged transactions
        replay_s = time.perf_counter() - started
        replayed = observe(Chain.rpc(url), task, blocks, [])
    finally:
        stop(proc)
    return {
        "transactions": sum(len(raws) for _, raws in log),
        "start_s": round(start_s, 3),
        "replay_s": round(replay_s, 3),
        "same_after_replay": {key: original[key] == replayed[key] for key in original},
    }


def engine_reopen(members: int, rounds: int) -> dict[str, Any]:
    """The embedded chain on its anvil engine (``FEDLEDGER_EMBEDDED_ENGINE=anvil``): the scenario, then the seconds
    a reopening takes (it replays the chain's log) and whether the head is the same."""
    previous = os.environ.get(ENGINE_ENV)
    os.environ[ENGINE_ENV] = "anvil"
    try:
        with tempfile.TemporaryDirectory(prefix="fedledger-anvil-engine-") as tmp:
            with Chain.embedded(Path(tmp)) as chain:
                run_scenario(chain, Account.from_key(FAUCET_KEY.to_bytes()), members=members, rounds=rounds)
                head, head_hash = chain.block_number, chain.w3.eth.get_block("latest")["hash"]
            started = time.perf_counter()
            with Chain.embedded(Path(tmp)) as chain:
                seconds = time.perf_counter() - started
                same = chain.block_number == head and chain.w3.eth.get_block("latest")["hash"] == head_hash
    finally:
        os.environ.pop(ENGINE_ENV, None) if previous is None else os.environ.__setitem__(ENGINE_ENV, previous)
    return {"blocks": head, "reopen_s": round(seconds, 3), "same_head": same}


def throughput_row(m: Measurements, reference: Measurements | None) -> dict[str, Any]:
    seconds = sum(m.seconds[WHOLE_ROUND])
    transactions = sum(m.seconds[f"{WHOLE_ROUND} tx"])
    return {
        "round_tx_per_s": round(transactions / seconds, 2),
        "cpu_seconds": round(m.cpu_seconds, 2),
        "gas_same_as_embedded": None if reference is None else m.gas == reference.gas,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--state-interval", type=float, default=1.0, help="seconds between anvil's state dumps")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    binary = anvil_binary(REPO)
    if binary is None:
        print("no anvil binary (run `npm ci`, or set FEDLEDGER_ANVIL)", file=sys.stderr)
        return 1
    kw = {"members": args.members, "rounds": args.rounds, "deploys": 1, "approvals": 1}
    log = sys.stderr
    results: dict[str, Any] = {"members": args.members, "rounds": args.rounds, "state_interval_s": args.state_interval}
    print("embedded (py-evm) ...", file=log)
    embedded = run_embedded(engine="py-evm", **kw)
    throughput = {"embedded (py-evm)": throughput_row(embedded, None)}
    print("anvil, no persistence ...", file=log)
    throughput["anvil, no persistence"] = throughput_row(run_anvil(binary, None, 0, False, False, **kw), embedded)
    results["persistence"] = {}
    for historical, what in ((True, "past states kept"), (False, "head state only")):
        for fixed_gas, how in ((False, "gas estimate"), (True, "fixed gas (one execution)")):
            name = f"anvil, persistent ({what}), {how}"
            print(f"{name} ...", file=log)
            with tempfile.TemporaryDirectory(prefix="fedledger-anvil-bench-") as tmp:
                row = run_anvil(binary, Path(tmp) / "state.json", args.state_interval, historical, fixed_gas, **kw)
            throughput[name] = throughput_row(row, embedded)
        print(f"restart and crash ({what}) ...", file=log)
        results["persistence"][what] = restart_and_crash(
            binary, args.state_interval, historical, args.members, args.rounds
        )
    results["throughput"] = throughput
    print("reopening by replaying a transaction log ...", file=log)
    results["replay"] = replay_open(binary, args.members, args.rounds)
    print("reopening the anvil engine ...", file=log)
    results["engine_reopen"] = engine_reopen(args.members, args.rounds)
    results["machine"] = {"cpus": os.cpu_count(), "anvil": binary}
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| backend | whole-round tx/s | CPU s (client + node) | gas as embedded |\n|---|---:|---:|---|")
    for name, r in throughput.items():
        same = {None: "—", True: "same", False: "DIFFERS"}[r["gas_same_as_embedded"]]
        print(f"| {name} | {r['round_tx_per_s']:.1f} | {r['cpu_seconds']:.1f} | {same} |")
    for what, p in results["persistence"].items():
        print(
            f"\nPersistent anvil, {what}: {p['transactions']} transactions; dump {p['state_file_bytes']:,} bytes; "
            f"stop (dump) {p['stop_s']:.2f} s; restart {p['restart_s']:.2f} s "
            f"(first start {p['first_start_s']:.2f} s); "
            f"idle node CPU {p['idle_node_cpu_per_s']:.2f} s per s (the periodic dumps)."
        )
        same = p["same_after_restart"]
        print("Same after a graceful restart: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))
        for key in (k for k, v in same.items() if not v):
            pairs = zip(p["before"][key], p["after"][key], strict=True)
            first = next((b, a) for b, a in pairs if b != a)
            print(f"  {key}, first difference: before {first[0]!r}, after {first[1]!r}")
        c = p["crash"]
        print(
            f"Crash (SIGKILL after {c['blocks_mined']} blocks mined over three dump intervals): "
            f"{c['blocks_lost']} lost."
        )
    r = results["replay"]
    print(
        f"\nReopening by replaying a log of {r['transactions']} signed transactions into a fresh anvil: "
        f"start {r['start_s']:.2f} s + replay {r['replay_s']:.2f} s. Same as the original: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in r["same_after_replay"].items())
    )
    e = results["engine_reopen"]
    print(
        f"The embedded chain's anvil engine reopened {e['blocks']} blocks in {e['reopen_s']:.2f} s "
        f"(same head: {'yes' if e['same_head'] else 'NO'})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
