"""``fedledger batch``: batched commitments of large rounds (one Merkle root per round, challengeable).

A trainer signs its commitment and sends it to the relay (``submit``, which keeps the relay's receipt as
evidence); the relay, an aggregator, collects them and posts the root (``relay``); anyone checks a posted batch's
every leaf and challenges a bad one (``check --challenge``); a trainer left out disputes with its evidence
(``dispute``), and the relay answers with a proof (``answer``); anyone settles the batch after its windows
(``finalize``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from eth_utils import is_address

from fedledger.chain.batch_leaves import BatchDomain, Commitment, SignedCommitment, sign_commitment
from fedledger.chain.batches import BatchListing, CommitmentBatchesClient, find_problems
from fedledger.chain.consortium import Role
from fedledger.chain.encoding import as_address
from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import BadInput, StoreError
from fedledger.store import BlobStore
from fedledger.workspace import Workspace

if TYPE_CHECKING:
    from fedledger.federation.relay import Relay

app = typer.Typer(help="Batched commitments: sign, relay, post one root, challenge, finalize.", no_args_is_help=True)

ContractOpt = Annotated[str, typer.Option("--contract", help="Address of the CommitmentBatches contract.")]
TaskOpt = Annotated[str, typer.Option("--task", help="Task name in the workspace, or a task address.")]
RoundOpt = Annotated[int, typer.Option("--round", help="The round the commitments are for.")]
BatchArg = Annotated[int, typer.Argument(help="The batch id.")]


def _task_address(ws: Workspace, task: str) -> str:
    return as_address(task, what="task address") if is_address(task) else ws.task(task).address


def _say(data: dict[str, Any], json_out: bool, text: str) -> None:
    if json_out:
        print_json(data)
    else:
        console.print(text)


@app.command("deploy")
def deploy(
    window: Annotated[int, typer.Option(help="Seconds a batch stays open to challenges (and then to answers).")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deploy the consortium's CommitmentBatches contract."""
    with open_workspace(workspace) as ws:
        client = CommitmentBatchesClient.deploy(ws.chain, ws.account(as_key), ws.config.consortium, window=window)
        _say({"contract": client.address, "window": window}, json_out, f"batch contract at {client.address}")


@app.command("relay")
def relay(
    task: TaskOpt,
    round_id: RoundOpt,
    expect: Annotated[int, typer.Option(help="Post as soon as this many trainers' commitments are in.")],
    wait: Annotated[float, typer.Option(help="Post after this many seconds even if fewer came.")] = 60.0,
    rounds: Annotated[
        int, typer.Option(help="Serve this many rounds, one after the other, from --round (each once it opens).")
    ] = 1,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 0,
    contract: Annotated[
        str | None,
        typer.Option("--contract", help="Address of the CommitmentBatches contract (default: the task's own)."),
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Collect a round's signed commitments over HTTP (an aggregator only), then post their root; with --rounds,
    the next rounds' too, at the same URL.

    Prints ``listening URL`` on its first line, then each posted batch (one JSON line each with --json)."""
    from fedledger.chain.task import ZERO_ADDRESS, TrainingTaskClient
    from fedledger.federation.relay import Relay, RelayServer

    with open_workspace(workspace) as ws:
        task_address = _task_address(ws, task)
        task_client = TrainingTaskClient(ws.chain, task_address)
        if contract is None:
            contract = task_client.params().commitment_batches
            if contract == ZERO_ADDRESS:
                raise BadInput(f"task {task_address} takes no batched commitments: name the batch contract")
        batches = CommitmentBatchesClient(ws.chain, contract, ws.account(as_key))
        collector = Relay(batches, ws.consortium(), task=task_address, round_id=round_id)
        with RelayServer(collector, host=host, port=port) as server:
            print(f"listening {server.url}", flush=True)
            for r in range(round_id, round_id + rounds):
                if r != round_id:
                    while task_client.current_round < r:  # the next round opens once this one closed
                        time.sleep(0.05)
                    collector.start_round(r)
                _post_round(collector, ws.store(), expect=expect, wait=wait, json_out=json_out)


def _post_round(collector: Relay, store: BlobStore, *, expect: int, wait: float, json_out: bool) -> None:
    """Wait for ``expect`` commitments (at most ``wait`` seconds), post their root and say so: one JSON line per
    batch with ``json_out``, as a relay serving several rounds streams them. A round nobody sent to has no batch."""
    deadline = time.monotonic() + wait
    while collector.count < expect and time.monotonic() < deadline:
        time.sleep(0.05)
    if collector.count == 0:
        console.print(f"round {collector.round_id}: no commitment came, nothing to post")
        return
    published = collector.publish(store)
    data = {
        "round": collector.round_id,
        "batch_id": published.batch_id,
        "leaves_blob": "0x" + published.blob_id,
        "root": "0x" + published.tree.root.hex(),
        "count": published.tree.count,
    }
    if json_out:
        print(json.dumps(data, sort_keys=True), flush=True)
    else:
        console.print(f"posted batch {published.batch_id} of round {data['round']}: {published.tree.count} commitments")


@app.command("submit")
def submit(
    contract: ContractOpt,
    task: TaskOpt,
    round_id: RoundOpt,
    relay_url: Annotated[str, typer.Option("--relay", help="The relay's URL.")],
    relay_address: Annotated[str, typer.Option(help="The relay's address (its receipt must be signed by it).")],
    update_hash: Annotated[str, typer.Option(help="Hash of the update blob.")],
    examples: Annotated[int, typer.Option(help="Number of training examples.")],
    evidence: Annotated[Path, typer.Option(help="Where to keep the signed commitment and the relay's receipt.")],
    dataset_id: Annotated[int, typer.Option(help="DataRegistry dataset the update was trained on (0: none).")] = 0,
    epsilon_micro: Annotated[
        int, typer.Option(help="Cumulative privacy spend after this update, in micro-epsilon (tasks with a budget).")
    ] = 0,
    chain_id: Annotated[
        int | None, typer.Option(help="The chain's id (default: read from the chain, which opens it).")
    ] = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Sign this trainer's commitment (EIP-712) and hand it to the relay; keep its receipt as evidence."""
    from fedledger.federation.relay import submit as send

    with open_workspace(workspace) as ws:
        account = ws.account(as_key)
        task_address = _task_address(ws, task)
        domain = BatchDomain(ws.chain.chain_id if chain_id is None else chain_id, as_address(contract))
    commitment = Commitment.of(
        task=task_address,
        round_id=round_id,
        member=account.address,
        update_hash=update_hash,
        num_examples=examples,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )
    signed = sign_commitment(account, domain, commitment)
    receipt = send(relay_url, signed, domain=domain, relay=relay_address)
    record = {"signed": signed.to_json(), "receipt": "0x" + receipt.hex(), "relay": relay_address}
    evidence.write_text(json.dumps(record, indent=2, sort_keys=True))
    _say(record, json_out, f"{account.address}: commitment acknowledged by {relay_address}; evidence in {evidence}")


@app.command("check")
def check(
    batch_id: BatchArg,
    contract: ContractOpt,
    challenge: Annotated[bool, typer.Option(help="Send the contract a challenge for the first bad leaf.")] = False,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Rebuild a batch from its leaves blob and check every leaf by the contract's rules."""
    from fedledger.federation.relay import challenge as send_challenge

    with open_workspace(workspace) as ws:
        client = CommitmentBatchesClient(ws.chain, contract, ws.account(as_key) if challenge else None)
        info = client.batch(batch_id)
        listing = BatchListing.from_bytes(ws.store().get(info.leaves_blob.removeprefix("0x")))
        tree = listing.tree()
        if (tree.count, "0x" + tree.root.hex()) != (info.count, info.root) or listing.domain != client.domain:
            raise BadInput(f"batch {batch_id}: its leaves blob does not rebuild the posted root")
        consortium = ws.consortium()
        problems = find_problems(listing, is_trainer=lambda m: consortium.has_role(m, Role.TRAINER))
        found = [{"reason": p.reason, "indices": list(p.indices), "member": p.member} for p in problems]
        sent = None
        if challenge and problems:
            sent = send_challenge(client, batch_id, listing, problems[0]).tx_hash
    data = {"batch_id": batch_id, "status": info.status.name.lower(), "leaves": tree.count, "problems": found}
    data["challenge_tx"] = sent
    lines = [f"batch {batch_id} ({data['status']}): {tree.count} leaves, {len(found)} problems"]
    lines += [f"  leaf {', '.join(map(str, p['indices']))} ({p['member']}): {p['reason']}" for p in found]
    _say(data, json_out, "\n".join(lines))


@app.command("dispute")
def dispute(
    batch_id: BatchArg,
    contract: ContractOpt,
    evidence: Annotated[Path, typer.Option(help="The evidence `batch submit` kept.")],
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Dispute a batch that leaves out a commitment its relay acknowledged (sends nothing when the leaf is there)."""
    from fedledger.federation.relay import dispute_missing

    try:
        record = json.loads(evidence.read_text())
        signed = SignedCommitment.from_json(record["signed"])
        receipt = bytes.fromhex(str(record["receipt"]).removeprefix("0x"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"unreadable evidence {evidence}: {exc}") from None
    with open_workspace(workspace) as ws:
        client = CommitmentBatchesClient(ws.chain, contract, ws.account(as_key))
        info = client.batch(batch_id)
        try:
            listing: BatchListing | None = BatchListing.from_bytes(ws.store().get(info.leaves_blob.removeprefix("0x")))
        except (StoreError, BadInput):
            listing = None  # an unavailable listing is disputed too: only the relay's proof settles it
        tx = dispute_missing(client, batch_id, listing, signed, receipt)
    data = {"batch_id": batch_id, "disputed": tx is not None, "tx_hash": tx.tx_hash if tx is not None else None}
    _say(data, json_out, f"batch {batch_id}: " + ("disputed" if tx is not None else "the leaf is in the batch"))


@app.command("answer")
def answer(
    batch_id: BatchArg,
    contract: ContractOpt,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Answer the batch's open missing-leaf disputes with proofs from its leaves blob (the relay's duty)."""
    from fedledger.federation.relay import answer_disputes

    with open_workspace(workspace) as ws:
        client = CommitmentBatchesClient(ws.chain, contract, ws.account(as_key))
        info = client.batch(batch_id)
        listing = BatchListing.from_bytes(ws.store().get(info.leaves_blob.removeprefix("0x")))
        sent = answer_disputes(client, batch_id, listing)
        left = client.batch(batch_id).open_disputes
    data = {"batch_id": batch_id, "answered": len(sent), "open_disputes": left}
    _say(data, json_out, f"batch {batch_id}: answered {len(sent)} disputes, {left} still open")


@app.command("finalize")
def finalize(
    batch_id: BatchArg,
    contract: ContractOpt,
    workspace: WorkspaceOpt = DEFAULT_WS,
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Settle a batch after its windows: finalized, or invalidated for a dispute left unanswered."""
    from fedledger.federation.relay import settle

    with open_workspace(workspace) as ws:
        client = CommitmentBatchesClient(ws.chain, contract, ws.account(as_key))
        settle(client, batch_id)
        status = client.batch(batch_id).status.name.lower()
    _say({"batch_id": batch_id, "status": status}, json_out, f"batch {batch_id}: {status}")
