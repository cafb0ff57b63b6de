"""Batched commitments: gas per batch root and per challenge, and on-chain transactions per round, by leaf count.

On a fresh embedded chain: a consortium whose founder relays (an aggregator) and one admitted trainer; the other
leaves are signed by keys the consortium never admitted (the contract reads membership only when a leaf is
challenged, so they are as good as members for posting, finalizing and proving). For each leaf count, from the
same chain state each time: the relay posts the root; then, each from that state, the most expensive path of
each challenge (a forged leaf whose signature recovers but whose signer is no trainer; a member listed twice; a
missing-leaf dispute and its answer); and the finalize after the window. The per-member path is measured beside it:
gas of one ``TrainingTask.commit_update`` by a trainer, of which a round without batching sends one per member.

Then a validated task's whole commit phase with 10 and 100 admitted trainers, both ways: one ``commit_update``
per trainer and the close, against the relay's root, the delivery of the finalized batch and the close.

Off-chain work is timed too: signing every commitment, building the tree and every proof, and the audit's check
of every leaf (``find_problems``: one signature recovery per leaf).

    python benchmarks/batched_commitments.py                # 10, 100, 1000 leaves; rounds of 10, 100 members
    python benchmarks/batched_commitments.py --sizes 4 8 --round-sizes 4   # a quick look, nothing written
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedledger.chain import Chain, ConsortiumClient, Role, TaskParams, TrainingTaskClient
from fedledger.chain.batch_leaves import (
    BatchDomain,
    Commitment,
    MerkleTree,
    SignedCommitment,
    sign_commitment,
    sign_receipt,
)
from fedledger.chain.batches import DELIVERY_CHUNK, BatchListing, CommitmentBatchesClient, find_problems
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.chain.task import Phase

SIZES = (10, 100, 1000)
ROUND_SIZES = (10, 100)
WINDOW = 600
RESULTS = Path(__file__).resolve().parent / "results" / "batched_commitments.md"
TASK = Account.from_key("0x" + hashlib.sha256(b"batch-bench-task").hexdigest()).address


def _key(tag: str) -> LocalAccount:
    return Account.from_key("0x" + hashlib.sha256(f"batch-bench-{tag}".encode()).hexdigest())


def _signed(domain: BatchDomain, account: LocalAccount, k: int) -> SignedCommitment:
    update = "0x" + hashlib.sha256(f"update-{k}".encode()).hexdigest()
    c = Commitment.of(task=TASK, round_id=1, member=account.address, update_hash=update, num_examples=100 + k)
    return sign_commitment(account, domain, c)


def _measure(
    chain: Chain, batches: CommitmentBatchesClient, relay_key: LocalAccount, trainer: LocalAccount, n: int
) -> dict[str, Any]:
    domain = batches.domain
    started = time.perf_counter()
    leaves = [_signed(domain, trainer, 0)] + [_signed(domain, _key(f"leaf-{k}"), k) for k in range(1, n)]
    signed_s = time.perf_counter() - started
    started = time.perf_counter()
    tree = MerkleTree([s.leaf(domain) for s in leaves])
    proofs = [tree.proof(i) for i in range(n)]
    tree_s = time.perf_counter() - started
    started = time.perf_counter()
    problems = find_problems(BatchListing(domain, TASK, 1, tuple(leaves)), is_trainer=lambda m: True)
    audit_s = time.perf_counter() - started
    if problems:
        raise RuntimeError(f"the benchmark's own leaves are bad: {problems[:3]}")
    relay = batches
    base = chain.snapshot()
    gas: dict[str, int] = {}

    def post(listed: Sequence[SignedCommitment]) -> tuple[int, MerkleTree, int]:
        t = MerkleTree([s.leaf(domain) for s in listed])
        before = chain.block_number
        batch_id = relay.post_batch(TASK, 1, t.root, t.count, "0x" + "ab" * 32)
        txs = chain.block_number - before
        return batch_id, t, txs

    batch_id, _, post_txs = post(leaves)
    gas["post_batch"] = _last_gas(chain)
    after_post = chain.snapshot()
    chain.advance_time(WINDOW + 1)
    gas["finalize"] = relay.finalize(batch_id).gas_used
    chain.revert(after_post)
    # The last leaf's signer was never admitted: its signature recovers, the trainer check fails (the longest path).
    last = n - 1
    gas["challenge_forged"] = relay.challenge_forged(batch_id, leaves[last], last, proofs[last]).gas_used
    chain.revert(after_post)
    receipt = sign_receipt(relay_key, domain, leaves[0].leaf(domain))
    gas["challenge_missing"] = relay.challenge_missing(batch_id, leaves[0], receipt).gas_used
    gas["answer_missing"] = relay.answer_missing(batch_id, leaves[0].leaf(domain), 0, proofs[0]).gas_used
    chain.revert(base)
    doubled = [*leaves[:-1], leaves[0]]  # the trainer listed at 0 and again at the end
    dup_id, dup_tree, _ = post(doubled)
    first, second = (doubled[0], 0, dup_tree.proof(0)), (doubled[last], last, dup_tree.proof(last))
    gas["challenge_duplicate"] = relay.challenge_duplicate(dup_id, first, second).gas_used
    chain.revert(base)
    return {
        "leaves": n,
        "proof_length": len(proofs[0]),
        "gas": gas,
        "round_txs_batched": post_txs + 1,  # the root, then finalize
        "sign_s": round(signed_s, 3),
        "tree_and_proofs_s": round(tree_s, 3),
        "audit_leaves_s": round(audit_s, 3),
    }


def _last_gas(chain: Chain) -> int:
    block = chain.w3.eth.get_block("latest")
    return int(chain.w3.eth.get_transaction_receipt(block["transactions"][-1])["gasUsed"])


def _commit_update_gas(chain: Chain, consortium: ConsortiumClient, admin: LocalAccount) -> int:
    """Gas of one trainer's ``commit_update`` (the second of its round, so no first-commit storage is counted)."""
    params = TaskParams(
        config_hash="0x" + "11" * 32, initial_model="0x" + "22" * 32, min_commitments=2, proposal_quorum=1
    )
    task = TrainingTaskClient.deploy(chain, admin, consortium.address, params)
    first, second = _key("commit-a"), _key("commit-b")
    r = task.open_round()
    task.as_(first).commit_update(r, "0x" + "33" * 32, 100)
    task.as_(second).commit_update(r, "0x" + "44" * 32, 100)
    return _last_gas(chain)


def _gas_of(chain: Chain, since: int) -> tuple[int, int]:
    """Transactions and gas mined after block ``since``."""
    txs = gas = 0
    for number in range(since + 1, chain.block_number + 1):
        block = chain.w3.eth.get_block(number)
        txs += len(block["transactions"])
        gas += int(block["gasUsed"])
    return txs, gas


def _round_commit_phase(chain: Chain, admin: LocalAccount, n: int) -> dict[str, Any]:
    """A validated task's commit phase with ``n`` trainers, both ways, from one consortium: ``n`` ``commit_update``
    and the close; or the relay's root, the delivery of the finalized batch (chunks of ``DELIVERY_CHUNK``) and the
    close. Validation and aggregation are the same in both."""
    faucet = Account.from_key(FAUCET_KEY.to_bytes())
    trainers = [_key(f"round-{n}-{k}") for k in range(n)]
    consortium = ConsortiumClient.deploy(chain, admin, org="Relay", roles=Role.ADMIN | Role.AGGREGATOR)
    for account in trainers:
        chain.transfer(faucet, account.address, 10**20)
        consortium.propose_admit(account.address, org=account.address[:10], roles=Role.TRAINER)
    batches = CommitmentBatchesClient.deploy(chain, admin, consortium.address, window=WINDOW)
    params = TaskParams(
        config_hash="0x" + "11" * 32, initial_model="0x" + "22" * 32, min_commitments=1, commit_duration=2 * WINDOW
    )
    result: dict[str, Any] = {"members": n}
    for mode in ("direct", "batched"):
        task = TrainingTaskClient.deploy(
            chain, admin, consortium.address, replace(params, commitment_batches=batches.address)
        )
        r = task.open_round()
        since = chain.block_number
        started = time.perf_counter()
        if mode == "direct":
            for k, account in enumerate(trainers):
                task.as_(account).commit_update(r, "0x" + hashlib.sha256(f"u{k}".encode()).hexdigest(), 100 + k)
        else:
            domain = batches.domain
            leaves = []
            for k, account in enumerate(trainers):
                update = "0x" + hashlib.sha256(f"u{k}".encode()).hexdigest()
                c = Commitment.of(task=task.address, round_id=r, member=account.address, update_hash=update,
                                  num_examples=100 + k)  # fmt: skip
                leaves.append(sign_commitment(account, domain, c))
            listing = BatchListing(domain, task.address, r, tuple(sorted(leaves, key=lambda x: x.commitment.member)))
            tree = listing.tree()
            batch_id = batches.post_batch(task.address, r, tree.root, tree.count, "0x" + "ab" * 32)
            chain.advance_time(WINDOW + 1)
            for first in range(0, n, DELIVERY_CHUNK):
                batches.deliver(batch_id, listing, first=first, chunk=DELIVERY_CHUNK)
        if task.close_commits(r) is not Phase.VALIDATE or task.round(r).num_updates != n:
            raise RuntimeError(f"{mode} round of {n}: the commit phase did not close with every update")
        txs, gas = _gas_of(chain, since)
        result[mode] = {"txs": txs, "gas": gas, "wall_s": round(time.perf_counter() - started, 2)}
    return result


def run(sizes: Sequence[int] = SIZES, round_sizes: Sequence[int] = ROUND_SIZES) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fedledger-batch-bench-") as tmp, Chain.embedded(Path(tmp)) as chain:
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        admin, trainer = _key("admin"), _key("trainer")
        for account in (admin, trainer, _key("commit-a"), _key("commit-b")):
            chain.transfer(faucet, account.address, 10**21)
        consortium = ConsortiumClient.deploy(chain, admin, org="Relay", roles=Role.ADMIN | Role.AGGREGATOR)
        for account in (trainer, _key("commit-a"), _key("commit-b")):
            consortium.propose_admit(account.address, org=account.address[:10], roles=Role.TRAINER)
        batches = CommitmentBatchesClient.deploy(chain, admin, consortium.address, window=WINDOW)
        snapshot = chain.snapshot()
        commit_gas = _commit_update_gas(chain, consortium, admin)
        chain.revert(snapshot)
        rows = [_measure(chain, batches, admin, trainer, n) for n in sizes]
        chain.revert(snapshot)
        rounds = [_round_commit_phase(chain, admin, n) for n in round_sizes]
    for row in rows:
        row["round_txs_per_member"] = row["leaves"]
        row["commit_gas_per_member_total"] = commit_gas * row["leaves"]
    return {"commit_update_gas": commit_gas, "window_s": WINDOW, "rows": rows, "rounds": rounds}


def render(result: dict[str, Any]) -> str:
    lines = [
        "# Batched commitments: gas and transactions per round",
        "",
        "Generated by `python benchmarks/batched_commitments.py` on the embedded chain. The seconds are one run's",
        "wall time on the machine that ran it. Gas moves by a few dozen units between runs, because a new",
        "embedded chain draws its id, the signatures depend on it, and so does the count of zero bytes in the",
        "calldata. The per-member column is the measured gas of",
        f"one `TrainingTask.commit_update` ({result['commit_update_gas']:,}) times the members: what a round sends",
        "on chain without batching. Batched, a round sends the root and one finalize; each challenge adds one",
        "transaction (a missing-leaf dispute two, with its answer or its claim).",
        "",
        "| leaves | proof length | round txs, batched | round txs, per member | gas post_batch | gas finalize "
        "| commit gas, per member (all) | gas challenge_forged | gas challenge_duplicate | gas challenge_missing "
        "| gas answer_missing | sign all (s) | tree + all proofs (s) | audit all leaves (s) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        g = r["gas"]
        lines.append(
            f"| {r['leaves']:,} | {r['proof_length']} | {r['round_txs_batched']} | {r['round_txs_per_member']:,} "
            f"| {g['post_batch']:,} | {g['finalize']:,} | {r['commit_gas_per_member_total']:,} "
            f"| {g['challenge_forged']:,} | {g['challenge_duplicate']:,} | {g['challenge_missing']:,} "
            f"| {g['answer_missing']:,} | {r['sign_s']} | {r['tree_and_proofs_s']} | {r['audit_leaves_s']} |"
        )
    lines += [
        "",
        "## A validated round's commit phase, batched against `commit_update`",
        "",
        "The same consortium of trainers, two tasks. Direct: every trainer sends `commit_update`, then",
        "`close_commits`. Batched: the relay posts the root, one delivery per chunk of",
        f"{DELIVERY_CHUNK} leaves hands the finalized batch to the task (each leaf checked by the task's rules",
        "and stored as an update, as `commit_update` stores it), then `close_commits`. Validation and",
        "aggregation are the same in both. Gas is every transaction of the phase; seconds are wall time.",
        "",
        "| members | txs, direct | gas, direct | txs, batched | gas, batched | gas batched / direct "
        "| s, direct | s, batched |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rounds"]:
        d, b = row["direct"], row["batched"]
        lines.append(
            f"| {row['members']:,} | {d['txs']:,} | {d['gas']:,} | {b['txs']:,} | {b['gas']:,} "
            f"| {b['gas'] / d['gas']:.2f} | {d['wall_s']} | {b['wall_s']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--round-sizes", type=int, nargs="*", default=list(ROUND_SIZES))
    args = parser.parse_args(argv)
    result = run(args.sizes, args.round_sizes)
    print(json.dumps(result, indent=2))
    if tuple(args.sizes) == SIZES and tuple(args.round_sizes) == ROUND_SIZES:
        RESULTS.write_text(render(result))
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
