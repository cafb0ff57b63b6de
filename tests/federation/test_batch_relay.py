"""The relay of a batched round over HTTP, trainers in their own OS processes, and the audit of every leaf.

Trainers sign and submit from separate processes (each only with its key, the relay's URL and the contract's
domain); the relay refuses what the contract would count bad, posts one root, and the published listing rebuilds
it. A relay that slips a forged leaf into its listing is named by the audit (leaf and member), and the challenge
built from that finding invalidates the batch on chain.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account import Account

from conftest import DEFAULT_PARAMS, h
from fedledger.audit import verify_task
from fedledger.audit.batches import audit_batches
from fedledger.chain import Chain, ConsortiumClient, Role, TrainingTaskClient
from fedledger.chain.batch_events import BatchInvalidated
from fedledger.chain.batch_leaves import Commitment, SignedCommitment, sign_commitment, sign_receipt
from fedledger.chain.batches import BatchListing, BatchStatus, CommitmentBatchesClient, find_problems
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.exceptions import BadInput, IntegrityError
from fedledger.federation import TaskConfig
from fedledger.federation.relay import (
    Relay,
    RelayServer,
    answer_disputes,
    challenge,
    dispute_missing,
    finalized_commitments,
    settle,
    submit,
)
from fedledger.store import BlobStore

TASK = Account.from_key(h("relay-test-task")).address
TRAINERS = 4  # admitted trainers
PROCESSES = 3  # trainers that submit from their own process
# A trainer process: sign one commitment with its own key and hand it to the relay; print the receipt.
MEMBER_SCRIPT = """
import json, sys
from eth_account import Account
from fedledger.chain.batch_leaves import BatchDomain, Commitment, sign_commitment
from fedledger.federation.relay import submit
key, url, relay, chain_id, contract, task, examples = sys.argv[1:]
account = Account.from_key(key)
domain = BatchDomain(int(chain_id), contract)
c = Commitment.of(task=task, round_id=1, member=account.address, update_hash="0x" + "ab" * 32,
                  num_examples=int(examples))
signed = sign_commitment(account, domain, c)
receipt = submit(url, signed, domain=domain, relay=relay)
print(json.dumps({"signed": signed.to_json(), "receipt": receipt.hex()}))
"""


class Net:
    def __init__(self, root: Path) -> None:
        self.chain = Chain.embedded(root / "chain")
        self.store = BlobStore(root / "store")
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        names = ["admin", "validator", *(f"t{i}" for i in range(TRAINERS))]
        self.who = {n: Account.from_key(h(f"relay-test-{n}")) for n in names}
        for account in self.who.values():
            self.chain.transfer(faucet, account.address, 10**21)
        self.consortium = ConsortiumClient.deploy(
            self.chain, self.who["admin"], org="F", roles=Role.ADMIN | Role.AGGREGATOR
        )
        self.consortium.propose_admit(self.who["validator"].address, org="V", roles=Role.VALIDATOR)
        for i in range(TRAINERS):
            self.consortium.propose_admit(self.who[f"t{i}"].address, org=f"T{i}", roles=Role.TRAINER)
        self.batches = CommitmentBatchesClient.deploy(self.chain, self.who["admin"], self.consortium.address, window=60)

    def relay(self) -> Relay:
        return Relay(self.batches, self.consortium, task=TASK, round_id=1)

    def signed(self, name: str, *, round_id: int = 1, examples: int = 5, task: str = TASK) -> SignedCommitment:
        c = Commitment.of(
            task=task, round_id=round_id, member=self.who[name].address, update_hash=h(name), num_examples=examples
        )
        return sign_commitment(self.who[name], self.batches.domain, c)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    n = Net(tmp_path)
    try:
        yield n
    finally:
        n.chain.close()


def test_trainer_processes_submit_and_the_relay_posts_one_root(net: Net) -> None:
    relay = net.relay()
    domain = net.batches.domain
    with RelayServer(relay) as server:
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    MEMBER_SCRIPT,
                    net.who[f"t{i}"].key.hex(),
                    server.url,
                    relay.address,
                    str(domain.chain_id),
                    domain.contract,
                    TASK,
                    str(10 + i),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for i in range(PROCESSES)
        ]
        answers = []
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            answers.append(json.loads(out))
        # What the contract would count bad is refused at the door, with the reason.
        for bad, reason in (
            (net.signed("validator"), "is not a trainer"),
            (net.signed("t0", round_id=2), "this relay collects"),
            (SignedCommitment(net.signed("t1").commitment, net.signed("t2").signature), "signature is not"),
            (net.signed("t0", examples=99), "already sent another commitment"),
        ):
            with pytest.raises(BadInput, match=reason):
                submit(server.url, bad, domain=domain, relay=relay.address)
        # A resent commitment gets its receipt again; a receipt from anyone but the relay is refused.
        again = SignedCommitment.from_json(answers[0]["signed"])
        assert submit(server.url, again, domain=domain, relay=relay.address).hex() == answers[0]["receipt"]
        with pytest.raises(BadInput, match="not signed by"):
            submit(server.url, again, domain=domain, relay=net.who["t3"].address)
    assert relay.count == PROCESSES
    blocks = net.chain.block_number
    published = relay.publish(net.store)
    assert net.chain.block_number == blocks + 1  # the whole round: one transaction
    info = net.batches.batch(published.batch_id)
    listing = BatchListing.from_bytes(net.store.get(info.leaves_blob.removeprefix("0x")))
    assert listing == published.listing and "0x" + listing.tree().root.hex() == info.root
    assert [s.commitment.member for s in listing.leaves] == sorted(
        (net.who[f"t{i}"].address for i in range(PROCESSES)), key=str.lower
    )
    assert {s.commitment.num_examples for s in listing.leaves} == {10, 11, 12}
    report = audit_batches(net.chain, net.consortium, net.batches.address, TASK, net.store)
    assert (report.ok, report.batches_checked, report.leaves_checked) == (True, 1, PROCESSES)
    # A trainer whose leaf is there sends no dispute.
    evidence = SignedCommitment.from_json(answers[1]["signed"]), bytes.fromhex(answers[1]["receipt"])
    assert dispute_missing(net.batches.as_(net.who["t1"]), published.batch_id, listing, *evidence) is None
    # A false alarm (t1's leaf is there) is answered from the listing, and the batch can be final.
    net.batches.as_(net.who["t1"]).challenge_missing(published.batch_id, *evidence)
    assert net.batches.batch(published.batch_id).open_disputes == 1
    assert len(answer_disputes(net.batches.as_(net.who["admin"]), published.batch_id, listing)) == 1
    assert net.batches.batch(published.batch_id).open_disputes == 0
    assert answer_disputes(net.batches.as_(net.who["admin"]), published.batch_id, listing) == []
    # The round's commitments, as a round engine reads them: only once the batch is final.
    assert finalized_commitments(net.batches, net.store, TASK, 1) is None
    net.chain.advance_time(net.batches.window + 1)
    settle(net.batches.as_(net.who["t2"]), published.batch_id)
    assert finalized_commitments(net.batches, net.store, TASK, 1) == listing.leaves
    assert finalized_commitments(net.batches, net.store, TASK, 2) is None


def test_the_audit_names_a_forged_leaf_and_its_challenge_invalidates_the_batch(net: Net) -> None:
    domain = net.batches.domain
    honest = [net.signed(f"t{i}") for i in range(3)]
    forged = SignedCommitment(net.signed("t3").commitment, net.signed("t0").signature)  # t3 never signed this
    listing = BatchListing(domain, TASK, 1, (*honest[:2], forged, honest[2]))
    tree = listing.tree()
    blob = net.store.put(listing.to_bytes())
    batch_id = net.batches.post_batch(TASK, 1, tree.root, tree.count, "0x" + blob)

    report = audit_batches(net.chain, net.consortium, net.batches.address, TASK, net.store)
    assert [str(d) for d in report.discrepancies] == [
        f"round 1, member {net.who['t3'].address}: batch {batch_id}: leaf 2: forged signature"
    ]
    problems = find_problems(listing, is_trainer=lambda m: net.consortium.has_role(m, Role.TRAINER))
    challenge(net.batches.as_(net.who["t1"]), batch_id, listing, problems[0])
    assert net.batches.batch(batch_id).status == BatchStatus.INVALID
    after = audit_batches(net.chain, net.consortium, net.batches.address, TASK, net.store)
    assert after.ok and [d.member for d in after.caught] == [net.who["t3"].address]


def test_the_audit_names_a_listing_that_does_not_rebuild_the_root(net: Net) -> None:
    listing = BatchListing(net.batches.domain, TASK, 1, tuple(net.signed(f"t{i}") for i in range(3)))
    blob = net.store.put(listing.to_bytes())
    other = BatchListing(net.batches.domain, TASK, 1, listing.leaves[:2]).tree()
    batch_id = net.batches.post_batch(TASK, 1, other.root, other.count, "0x" + blob)
    report = audit_batches(net.chain, net.consortium, net.batches.address, TASK, net.store)
    assert len(report.discrepancies) == 1 and "does not" not in str(report.discrepancies[0])
    assert f"batch {batch_id}: leaves blob rebuilds root" in str(report.discrepancies[0])
    net.chain.advance_time(net.batches.window + 1)
    net.batches.finalize(batch_id)
    with pytest.raises(IntegrityError, match="does not rebuild the posted root"):
        finalized_commitments(net.batches, net.store, TASK, 1)
    net.store.delete(blob)
    missing = audit_batches(net.chain, net.consortium, net.batches.address, TASK, net.store)
    assert "leaves blob unavailable" in str(missing.discrepancies[0])


def test_audit_verify_checks_every_leaf_of_the_tasks_batches(net: Net) -> None:
    config = TaskConfig(model={"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2})
    params = replace(DEFAULT_PARAMS, config_hash="0x" + net.store.put(config.to_bytes()))
    task = TrainingTaskClient.deploy(net.chain, net.who["admin"], net.consortium.address, params).address
    forged = SignedCommitment(net.signed("t1", task=task).commitment, net.signed("t2", task=task).signature)
    listing = BatchListing(net.batches.domain, task, 1, (net.signed("t0", task=task), forged))
    tree = listing.tree()
    batch_id = net.batches.post_batch(task, 1, tree.root, 2, "0x" + net.store.put(listing.to_bytes()))

    plain = verify_task(net.chain, net.consortium.address, task, net.store)
    assert plain.ok and plain.batches is None
    report = verify_task(net.chain, net.consortium.address, task, net.store, batches=net.batches.address)
    assert [str(d) for d in report.discrepancies] == [
        f"round 1, member {net.who['t1'].address}: batch {batch_id}: leaf 1: forged signature"
    ]
    assert report.to_json()["batches"]["leaves_checked"] == 2


def test_a_dispute_the_relay_cannot_answer_is_settled_against_it(net: Net) -> None:
    domain = net.batches.domain
    left_out = net.signed("t3")
    receipt = sign_receipt(net.who["admin"], domain, left_out.leaf(domain))  # the relay acknowledged it...
    listing = BatchListing(domain, TASK, 1, tuple(net.signed(f"t{i}") for i in range(3)))  # ...and left it out
    tree = listing.tree()
    batch_id = net.batches.post_batch(TASK, 1, tree.root, tree.count, "0x" + net.store.put(listing.to_bytes()))
    assert dispute_missing(net.batches.as_(net.who["t3"]), batch_id, listing, left_out, receipt) is not None
    assert answer_disputes(net.batches, batch_id, listing) == []  # no proof exists
    net.chain.advance_time(2 * net.batches.window + 1)
    result = settle(net.batches.as_(net.who["t0"]), batch_id)
    invalidated = [e for e in net.batches.events(from_block=result.block_number) if isinstance(e, BatchInvalidated)]
    assert [(e.reason, e.challenger) for e in invalidated] == [("acknowledged leaf missing", net.who["t3"].address)]
    assert net.batches.is_barred(TASK, 1, net.who["admin"].address)
