"""Can pyrevm (Rust revm) run the embedded chain? Replays a py-evm chain's transactions on it and compares gas.

The ledger benchmark's scenario (``benchmarks/ledger.py``, small sizes) runs on a fresh embedded chain (py-evm,
Prague rules). Every mined transaction is then read back (sender, recipient, calldata, value, block number and
time, the receipt's ``gasUsed``) and sent, in the same order and with the same block environment, to one
``pyrevm.EVM``: ``deploy`` for a contract creation, ``message_call`` for the rest, each time with the sender's nonce
set to the one it signed (``message_call`` does not advance nonces, so contract addresses would otherwise drift).
The report gives, per operation, how many transactions used the same gas on both and the first difference, plus
two minimal probes of why: the same read of one storage slot sent twice, and whether a call advances the nonce
and charges the gas fee.

    python benchmarks/pyrevm_probe.py [--members 3] [--rounds 2] [--spec CANCUN] [--json]

Needs ``pip install pyrevm``; pyrevm is not a dependency of the project.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import function_abi_to_4byte_selector
from hexbytes import HexBytes

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ledger import run_scenario  # noqa: E402 - the benchmark folder is not a package

from fedledger.chain import Chain  # noqa: E402
from fedledger.chain.embedded import FAUCET_KEY  # noqa: E402

# A runtime that reads storage slot 0 and stops: PUSH1 0, SLOAD, POP, STOP.
SLOAD_SLOT_ZERO = bytes.fromhex("6000545000")
# EIP-2929: 21,000 intrinsic + PUSH1 (3) + a cold SLOAD (2,100) + POP (2); a warm SLOAD costs 100.
SLOAD_TX_GAS_COLD = 21_000 + 3 + 2_100 + 2


def mined_transactions(chain: Chain) -> list[dict[str, Any]]:
    """Every mined transaction of ``chain`` with its block environment and receipt gas, in chain order."""
    w3 = chain.w3
    out = []
    for number in range(1, chain.block_number + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            data = tx.get("input", tx.get("data"))
            out.append(
                {
                    "block": number,
                    "timestamp": int(block["timestamp"]),
                    "from": tx["from"],
                    "to": tx["to"],
                    "nonce": int(tx["nonce"]),
                    "value": int(tx["value"]),
                    "data": bytes(HexBytes(data)),
                    "gas_used": int(receipt["gasUsed"]),
                    "contract": receipt["contractAddress"],
                }
            )
    return out


def operation_names(chain: Chain, transactions: list[dict[str, Any]]) -> list[str]:
    """A label per transaction: the function its selector names, or the deployed contract."""
    from fedledger.chain import compile_contract

    selectors: dict[bytes, str] = {}
    for name in ("Consortium", "TrainingTask"):
        for entry in compile_contract(name).abi:
            if entry.get("type") == "function":
                selectors[function_abi_to_4byte_selector(entry)] = entry["name"]
    labels = []
    for tx in transactions:
        if not tx["to"]:
            labels.append("deploy")
        elif not tx["data"]:
            labels.append("transfer")
        else:
            labels.append(selectors.get(tx["data"][:4], "other"))
    return labels


def replay_on_pyrevm(transactions: list[dict[str, Any]], chain_id: int, spec: str) -> list[dict[str, Any]]:
    """Each transaction sent to one pyrevm EVM in order; its gas, output address and error, if any."""
    import pyrevm

    evm = pyrevm.EVM(env=pyrevm.Env(cfg=pyrevm.CfgEnv(chain_id=chain_id)), spec_id=spec)
    faucet = Account.from_key(FAUCET_KEY.to_bytes()).address
    evm.set_balance(faucet, 10**27)
    results = []
    for tx in transactions:
        evm.set_block_env(pyrevm.BlockEnv(number=tx["block"], timestamp=tx["timestamp"], gas_limit=60_000_000))
        balance = evm.get_balance(tx["from"])
        evm.insert_account_info(tx["from"], pyrevm.AccountInfo(nonce=tx["nonce"]))
        evm.set_balance(tx["from"], balance)
        start = time.perf_counter()
        error = address = None
        try:
            if not tx["to"]:
                address = evm.deploy(tx["from"], tx["data"], value=tx["value"], gas=30_000_000)
            else:
                evm.message_call(tx["from"], tx["to"], tx["data"], value=tx["value"], gas=30_000_000)
        except Exception as exc:  # noqa: BLE001 - a probe: any failure is a finding
            error = f"{type(exc).__name__}: {exc}"[:200]
        seconds = time.perf_counter() - start
        result = evm.result
        results.append(
            {
                "gas_used": None if error or result is None else int(result.gas_used),
                "address": address,
                "error": error,
                "seconds": seconds,
            }
        )
    return results


def minimal_probes(spec: str) -> dict[str, Any]:
    """The same storage read sent twice, and what a call does to the sender's nonce and balance."""
    import pyrevm

    evm = pyrevm.EVM(spec_id=spec)
    reader, sender = "0x" + "11" * 20, "0x" + "22" * 20
    evm.insert_account_info(reader, pyrevm.AccountInfo(code=SLOAD_SLOT_ZERO))
    evm.set_balance(sender, 10**20)
    gas = []
    for _ in range(2):
        evm.message_call(sender, reader, b"", gas=100_000, gas_price=10**9)
        gas.append(int(evm.result.gas_used))
    return {
        "sload_twice_gas": gas,
        "sload_expected_gas_each": SLOAD_TX_GAS_COLD,
        "nonce_after_two_calls": int(evm.basic(sender).nonce),
        "balance_spent_by_two_calls_at_1_gwei": 10**20 - int(evm.get_balance(sender)),
    }


def compare(labels: list[str], py_evm: list[dict[str, Any]], revm: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_op: dict[str, dict[str, Any]] = defaultdict(lambda: {"transactions": 0, "same_gas": 0, "first_difference": None})
    for label, expected, got in zip(labels, py_evm, revm, strict=True):
        row = by_op[label]
        row["transactions"] += 1
        if got["error"] is None and got["gas_used"] == expected["gas_used"]:
            row["same_gas"] += 1
        elif row["first_difference"] is None:
            row["first_difference"] = {"py_evm": expected["gas_used"], "pyrevm": got["gas_used"], "error": got["error"]}
    return [{"operation": op, **row} for op, row in by_op.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--spec", default="CANCUN", help="pyrevm spec id (py-evm runs Prague)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    import pyrevm

    with tempfile.TemporaryDirectory(prefix="fedledger-pyrevm-probe-") as tmp, Chain.embedded(Path(tmp)) as chain:
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        run_scenario(chain, faucet, members=args.members, rounds=args.rounds, deploys=1, approvals=1)
        transactions = mined_transactions(chain)
        labels = operation_names(chain, transactions)
        chain_id = chain.chain_id
    revm = replay_on_pyrevm(transactions, chain_id, args.spec)
    rows = compare(labels, transactions, revm)
    same = sum(r["same_gas"] for r in rows)
    report = {
        "pyrevm": getattr(pyrevm, "__version__", "0.3.7 (no __version__)"),
        "spec": args.spec,
        "transactions": len(transactions),
        "same_gas": same,
        "operations": rows,
        "pyrevm_ms_per_tx_median": round(sorted(r["seconds"] for r in revm)[len(revm) // 2] * 1000, 3),
        "minimal": minimal_probes(args.spec),
    }
    if args.json:
        print(json.dumps(report, indent=2, default=str))
        return 0
    print(f"pyrevm ({args.spec}) against py-evm (Prague): {same} of {len(transactions)} transactions used the same gas")
    print("| operation | transactions | same gas | first difference: py-evm / pyrevm |")
    print("|---|---:|---:|---|")
    for r in rows:
        diff = r["first_difference"]
        cell = "—" if diff is None else diff["error"] or f"{diff['py_evm']:,} / {diff['pyrevm']:,}"
        print(f"| {r['operation']} | {r['transactions']} | {r['same_gas']} | {cell} |")
    m = report["minimal"]
    print(
        f"\nThe same one-slot read sent twice: {m['sload_twice_gas']} gas (each should be {SLOAD_TX_GAS_COLD:,}); "
        f"after two calls the sender's nonce is {m['nonce_after_two_calls']} and it paid "
        f"{m['balance_spent_by_two_calls_at_1_gwei']} wei at 1 gwei."
    )
    print(f"pyrevm median time per transaction: {report['pyrevm_ms_per_tx_median']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
