"""A task's round whose commitments come from a finalized batch: one root, one delivery, the task's own rules.

The batch contract hands each leaf of a finalized batch to the task (``deliver``); the task holds it to every rule a
direct ``commit_update`` meets, and a leaf that breaks one is a named ``LeafRejected`` while the others become the
round's updates in tree order. Embedded chain (and anvil when the backend fixture runs it), reverted after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.audit.batches import audit_batches
from fedledger.chain import TrainingTaskClient
from fedledger.chain.batch_events import BatchDelivered, BatchFinalized, LeafRejected
from fedledger.chain.batch_leaves import Commitment, SignedCommitment, sign_commitment
from fedledger.chain.batches import BatchListing, BatchStatus, CommitmentBatchesClient
from fedledger.chain.events import RoundAborted, UpdateCommitted
from fedledger.chain.task import Phase
from fedledger.exceptions import InvalidArgument, InvalidState, NotAuthorized
from fedledger.store import BlobStore

WINDOW = 60
BLOB = h("batched-round-listing")


@pytest.fixture
def batched(ledger: Ledger) -> Iterator[tuple[Ledger, CommitmentBatchesClient, TrainingTaskClient]]:
    """A batch contract and a task that takes its commitments from it (privacy budget 5 epsilon), round 1 open."""
    batches = CommitmentBatchesClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, window=WINDOW)
    params = replace(DEFAULT_PARAMS, commitment_batches=batches.address, privacy_budget=5_000_000)
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    assert task.params().commitment_batches == batches.address
    task.as_(ledger.members[0]).open_round()
    yield ledger, batches, task


def signed(
    batches: CommitmentBatchesClient, task: str, who: LocalAccount, *, examples: int = 10, epsilon: int = 1_000_000
) -> SignedCommitment:
    c = Commitment.of(
        task=task, round_id=1, member=who.address, update_hash=h(f"update-{who.address}"), num_examples=examples,
        epsilon_micro=epsilon,
    )  # fmt: skip
    return sign_commitment(who, batches.domain, c)


def post(
    ledger: Ledger,
    batches: CommitmentBatchesClient,
    task: str,
    leaves: list[SignedCommitment],
    store: BlobStore | None = None,
) -> BatchListing:
    listing = BatchListing(batches.domain, task, 1, tuple(leaves))
    tree = listing.tree()
    blob = BLOB if store is None else store.put(listing.to_bytes())
    batches.as_(ledger.members[0]).post_batch(task, 1, tree.root, tree.count, blob)
    return listing


def test_a_finalized_batch_becomes_the_rounds_updates_in_tree_order(batched) -> None:  # type: ignore[no-untyped-def]
    ledger, batches, task = batched
    listing = post(ledger, batches, task.address, [signed(batches, task.address, m) for m in ledger.members])
    state = lambda: (ledger.chain.block_number, task.round(1).num_updates)  # noqa: E731
    deliver = batches.as_(ledger.outsider).deliver
    refused(state, InvalidState, "batches: challenge window open", deliver, 1, listing)
    ledger.chain.advance_time(WINDOW + 1)
    shuffled = replace(listing, leaves=listing.leaves[::-1])
    refused(state, InvalidArgument, "batches: leaves do not rebuild the root", deliver, 1, shuffled)
    refused(state, InvalidState, "batches: leaves delivered out of order", deliver, 1, listing, first=2, chunk=2)

    # Anyone may deliver, in aligned chunks (a large round fits the block gas limit); a pending batch past its
    # window is finalized by the first one.
    first = deliver(1, listing, chunk=2)
    assert [type(e) for e in batches.events() if e.tx_hash == first.tx_hash] == [BatchFinalized, BatchDelivered]
    assert (task.round(1).num_updates, batches.next_leaf(1), batches.delivered(1)) == (2, 2, False)
    deliver(1, listing, first=2, chunk=2)
    chunks = [(e.first, e.accepted, e.rejected) for e in batches.events() if isinstance(e, BatchDelivered)]
    assert chunks == [(0, 2, 0), (2, 2, 0)]
    assert batches.batch(1).status is BatchStatus.FINALIZED and batches.delivered(1)
    updates = task.updates(1)
    assert [(u.index, u.member, u.update_hash) for u in updates] == [
        (i, s.commitment.member, s.commitment.update_hash) for i, s in enumerate(listing.leaves)
    ]
    assert task.privacy_spent(ledger.members[0].address) == 1_000_000
    refused(state, InvalidState, "batches: leaves delivered out of order", deliver, 1, listing)
    # Every trainer is in: the round closes early and runs on as any other.
    assert task.as_(ledger.members[1]).close_commits(1) is Phase.VALIDATE


def test_a_leaf_that_breaks_a_task_rule_is_rejected_by_name_and_the_round_goes_on(batched, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ledger, batches, task = batched
    store = BlobStore(tmp_path / "store")
    m = ledger.members
    task.as_(m[3]).commit_update(1, h("direct"), 5, epsilon_micro=1)  # committed directly, then listed too
    leaves = [
        signed(batches, task.address, m[0]),
        signed(batches, task.address, ledger.outsider),  # not a trainer of the consortium
        signed(batches, task.address, m[1], examples=0),
        signed(batches, task.address, m[2], epsilon=6_000_000),  # over the task's privacy budget
        signed(batches, task.address, m[3]),
    ]
    listing = post(ledger, batches, task.address, leaves, store)
    ledger.chain.advance_time(WINDOW + 1)
    batches.as_(ledger.outsider).deliver(1, listing)
    rejected = [(e.index, e.member, e.reason) for e in batches.events() if isinstance(e, LeafRejected)]
    assert rejected == [
        (1, ledger.outsider.address, "task: caller is not a trainer"),
        (2, m[1].address, "task: zero examples"),
        (3, m[2].address, "task: privacy budget exceeded"),
        (4, m[3].address, "task: already committed"),
    ]
    delivered = next(e for e in batches.events() if isinstance(e, BatchDelivered))
    assert (delivered.accepted, delivered.rejected) == (1, 4)
    commits = [(e.index, e.member) for e in task.events() if isinstance(e, UpdateCommitted)]
    assert commits == [(0, m[3].address), (1, m[0].address)]
    assert task.privacy_spent(m[2].address) == 0  # a rejected leaf leaves no trace in the task

    # The audit follows every leaf to its update or its rejection, and re-derives the rejections it can judge.
    audit = lambda events: audit_batches(  # noqa: E731
        ledger.chain, ledger.consortium, batches.address, task.address, store, task_events=events,
        privacy_budget=5_000_000,
    )  # fmt: skip
    report = audit(task.events())
    # The outsider's leaf should have been challenged: a batch that stands with it is the audit's finding, while
    # its delivery (the task refused that leaf) is exactly what the listing and the rules give.
    assert report.deliveries_checked == 1
    assert [str(d).split(": ", 1)[1] for d in report.discrepancies] == ["batch 1: leaf 1: signer is not a trainer"]
    # Shown a ledger on which the direct commitment never happened, leaf 4's rejection no longer holds.
    without_direct = [e for e in task.events() if not (isinstance(e, UpdateCommitted) and e.member == m[3].address)]
    found = audit(without_direct).discrepancies[-1]
    assert "leaf 4 rejected for 'task: already committed', a rule it meets" in str(found)
    ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration)
    assert task.as_(m[0]).close_commits(1) is Phase.VALIDATE  # two updates meet min_commitments


def test_only_the_batch_contract_commits_for_another_member_and_only_while_delivering(batched) -> None:  # type: ignore[no-untyped-def]
    ledger, batches, task = batched
    assert ledger.chain.call(batches.contract.functions.delivering()) == "0x0000000000000000000000000000000000000000"
    state = lambda: (ledger.chain.block_number, task.round(1).num_updates)  # noqa: E731
    refused(
        state, NotAuthorized, "task: caller is not a trainer", task.as_(ledger.outsider).commit_update, 1, h("u"), 3
    )


def test_a_round_with_no_finalized_batch_closes_without_commitments(batched) -> None:  # type: ignore[no-untyped-def]
    ledger, batches, task = batched
    listing = post(ledger, batches, task.address, [signed(batches, task.address, m) for m in ledger.members[:2]])
    ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    # The batch came too late to settle: its window outlived the commit phase. Closing aborts the round.
    assert task.as_(ledger.members[0]).close_commits(1) is Phase.ABORTED
    aborted = [e.reason for e in task.events() if isinstance(e, RoundAborted)]
    assert aborted == ["commitment quorum not reached"]
    # Delivered afterwards, every leaf is refused by the task's round rule, not the batch.
    batches.as_(ledger.outsider).deliver(1, listing)
    reasons = {e.reason for e in batches.events() if isinstance(e, LeafRejected)}
    assert reasons == {"task: round not open"}
