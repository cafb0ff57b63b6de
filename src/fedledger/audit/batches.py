"""Audit of batched commitments: every leaf of every batch posted for a task, rebuilt from the store.

For each ``BatchPosted`` of the task on the given CommitmentBatches contract, the audit fetches the leaves blob by
the hash the relay posted, checks it was made for this contract, chain, task and round, rebuilds the tree and
compares its root and leaf count with the posted ones, then checks every leaf by the contract's own rules
(:func:`~fedledger.chain.batches.find_problems`): the round, the trainer's signature, the trainer role when the
batch was posted, one leaf per trainer. A bad batch the contract invalidated was caught (listed in ``caught``);
one that stands (finalized, or still pending) is a discrepancy naming the leaf and the member. A batch delivered
to the task is then followed leaf by leaf to the update it became, or to the task's named rejection
(:mod:`fedledger.audit.batch_delivery`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fedledger.audit.batch_delivery import audit_delivery
from fedledger.audit.discrepancy import Discrepancy
from fedledger.chain.batch_events import BatchDelivered, BatchInvalidated, BatchPosted
from fedledger.chain.batches import BatchListing, CommitmentBatchesClient, find_problems
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.encoding import as_address
from fedledger.chain.event_record import LedgerEvent
from fedledger.exceptions import BadInput, StoreError
from fedledger.store import BlobStore

__all__ = ["BatchAudit", "audit_batches"]


@dataclass
class BatchAudit:
    contract: str
    batches_checked: int = 0
    leaves_checked: int = 0
    deliveries_checked: int = 0
    discrepancies: list[Discrepancy] = field(default_factory=list)
    caught: list[Discrepancy] = field(default_factory=list)
    """Bad batches the contract invalidated: the challenge game worked, nothing stands on them."""

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def to_json(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "batches_checked": self.batches_checked,
            "leaves_checked": self.leaves_checked,
            "deliveries_checked": self.deliveries_checked,
            "discrepancies": [str(d) for d in self.discrepancies],
            "caught": [str(d) for d in self.caught],
        }


def audit_batches(
    chain: Chain,
    consortium: ConsortiumClient,
    batches_address: str,
    task_address: str,
    store: BlobStore,
    *,
    block: int | None = None,
    task_events: Sequence[LedgerEvent] = (),
    privacy_budget: int = 0,
) -> BatchAudit:
    """Check every batch posted for ``task_address`` up to ``block``, and every delivery of one to the task against
    the task's ``task_events`` (:mod:`fedledger.audit.batch_delivery`); never raises for a discrepancy."""
    client = CommitmentBatchesClient(chain, batches_address)
    task = as_address(task_address, what="task address")
    report = BatchAudit(contract=client.address)
    if client.chain.call(client.contract.functions.consortium()) != consortium.address:
        report.discrepancies.append(Discrepancy(None, None, None, "batch contract serves another consortium"))
        return report
    events = client.events(to_block=block if block is not None else "latest")
    invalidated = {e.batch_id for e in events if isinstance(e, BatchInvalidated)}
    listings: dict[int, BatchListing] = {}
    for posted in (e for e in events if isinstance(e, BatchPosted) and e.task == task):
        report.batches_checked += 1
        found, listing = _check_batch(client, consortium, store, posted)
        if listing is not None:
            report.leaves_checked += len(listing.leaves)
            listings[posted.batch_id] = listing
        (report.caught if posted.batch_id in invalidated else report.discrepancies).extend(found)

    def is_trainer(member: str, at: int) -> bool:
        return consortium.has_role(member, Role.TRAINER, block=at)

    for delivered in (e for e in events if isinstance(e, BatchDelivered) and e.task == task):
        report.deliveries_checked += 1
        if delivered.batch_id not in listings:  # its listing's own discrepancy is reported above
            continue
        report.discrepancies += audit_delivery(
            delivered,
            listings[delivered.batch_id],
            events,
            task_events,
            is_trainer=is_trainer,
            privacy_budget=privacy_budget,
        )
    return report


def _check_batch(
    client: CommitmentBatchesClient, consortium: ConsortiumClient, store: BlobStore, posted: BatchPosted
) -> tuple[list[Discrepancy], BatchListing | None]:
    """What is wrong with one posted batch (empty when every leaf is good), and its listing when it rebuilds."""

    def wrong(message: str, member: str | None = None, h: str | None = None) -> Discrepancy:
        return Discrepancy(posted.round_id, member, h, f"batch {posted.batch_id}: {message}")

    try:
        listing = BatchListing.from_bytes(store.get(posted.leaves_blob.removeprefix("0x")))
    except (StoreError, BadInput) as exc:
        return [wrong(f"leaves blob unavailable or malformed: {exc}", h=posted.leaves_blob)], None
    if (listing.domain, listing.task, listing.round_id) != (client.domain, posted.task, posted.round_id):
        return [wrong("leaves blob made for another contract, chain, task or round", h=posted.leaves_blob)], None
    if not listing.leaves:
        return [wrong("leaves blob lists no leaf", h=posted.leaves_blob)], None
    tree = listing.tree()
    if (tree.count, "0x" + tree.root.hex()) != (posted.count, posted.root):
        return [wrong(f"leaves blob rebuilds root 0x{tree.root.hex()} of {tree.count} leaves", h=posted.root)], None

    def is_trainer(member: str) -> bool:
        return consortium.has_role(member, Role.TRAINER, block=posted.block_number)

    problems = find_problems(listing, is_trainer=is_trainer)
    found = [wrong(f"leaf {', '.join(map(str, p.indices))}: {p.reason}", member=p.member) for p in problems]
    return found, listing
