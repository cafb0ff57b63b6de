"""Audit of a batch's delivery to its task: each leaf of the finalized listing, to the update it became.

``CommitmentBatches.deliver`` hands a finalized batch's leaves to the task one by one; the task records the ones its
commitment rules accept (``UpdateCommitted``, in the delivery's transaction, indices in tree order) and refuses the
others (``LeafRejected`` with the task's reason). The audit re-derives that split from the listing:

* the accepted leaves, in tree order, are exactly the updates the delivery recorded (member, update hash, examples,
  dataset and declared spend), and the counts of ``BatchDelivered`` add up;
* no accepted leaf breaks a rule the audit can judge from the ledger alone (another task or round, a member without
  the trainer role at that block, a zero hash or example count, a second commitment of the member in the round, a
  declared spend over the budget or below the member's last one);
* a leaf rejected for one of those rules does break it. Rejections for rules that read other contracts at that
  moment (stake, dataset registry, trainer reputation, the round's phase and deadline) are the task's own record.

The update indices then carry the round through the rest of the audit (scores, accepted set, aggregate), as for
direct commitments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from fedledger.audit.discrepancy import Discrepancy
from fedledger.chain.batch_events import BatchDelivered, LeafRejected
from fedledger.chain.batch_leaves import Commitment
from fedledger.chain.batches import BatchListing
from fedledger.chain.encoding import hex32
from fedledger.chain.event_record import LedgerEvent
from fedledger.chain.events import UpdateCommitted

__all__ = ["audit_delivery"]

ZERO = hex32(bytes(32))


def audit_delivery(
    delivered: BatchDelivered,
    listing: BatchListing,
    batch_events: Sequence[LedgerEvent],
    task_events: Sequence[LedgerEvent],
    *,
    is_trainer: Callable[[str, int], bool],
    privacy_budget: int,
) -> list[Discrepancy]:
    """What is wrong with one delivery (empty when it is exactly what the listing and the task's rules give)."""

    def wrong(message: str, member: str | None = None) -> Discrepancy:
        return Discrepancy(delivered.round_id, member, None, f"batch {delivered.batch_id}: {message}")

    chunk = listing.leaves[delivered.first : delivered.first + delivered.accepted + delivered.rejected]
    rejected = {
        e.index: e.reason for e in batch_events if isinstance(e, LeafRejected) and e.batch_id == delivered.batch_id
    }
    at = (delivered.block_number, delivered.log_index)
    # The chunk's updates: logged in its transaction, after any chunk delivered earlier in the same transaction.
    since = max(
        (e.log_index for e in batch_events if isinstance(e, BatchDelivered) and e.tx_hash == delivered.tx_hash
         and e.log_index < delivered.log_index),
        default=-1,
    )  # fmt: skip
    commits = [e for e in task_events if isinstance(e, UpdateCommitted)]
    recorded = [e for e in commits if e.tx_hash == delivered.tx_hash and since < e.log_index < delivered.log_index]
    before = [e for e in commits if (e.block_number, e.log_index) < at and e not in recorded]
    found: list[Discrepancy] = []
    in_chunk = [i for i in rejected if delivered.first <= i < delivered.first + len(chunk)]
    if len(chunk) != delivered.accepted + delivered.rejected or len(in_chunk) != delivered.rejected:
        found.append(wrong(f"delivery from leaf {delivered.first}: its counts do not match the listing and the log"))
    committed = {e.member for e in before if e.round_id == delivered.round_id}
    spent: dict[str, int] = {}
    for e in before:
        spent[e.member] = e.epsilon_micro
    accepted = iter(recorded)
    for index, signed in enumerate(chunk, start=delivered.first):
        c = signed.commitment
        broken = _broken_rules(c, delivered, committed, spent, is_trainer, privacy_budget)
        reason = rejected.get(index)
        if reason is None:
            update = next(accepted, None)
            if update is None or not _same(update, c):
                found.append(wrong(f"leaf {index} was not recorded as the task's next update", c.member))
            if broken:
                found.append(wrong(f"leaf {index} accepted though {broken[0]}", c.member))
            committed.add(c.member)
            spent[c.member] = c.epsilon_micro
        elif reason in RULES and reason not in broken:
            found.append(wrong(f"leaf {index} rejected for {reason!r}, a rule it meets", c.member))
    if next(accepted, None) is not None:
        found.append(wrong("the delivery recorded updates no accepted leaf lists"))
    return found


RULES = (
    "leaf for another round",
    "task: caller is not a trainer",
    "task: zero hash",
    "task: zero examples",
    "task: already committed",
    "task: privacy budget exceeded",
    "task: privacy spend decreased",
)
"""The rejections the audit re-derives from the ledger (the task's exact revert reasons)."""


def _broken_rules(
    c: Commitment,
    delivered: BatchDelivered,
    committed: set[str],
    spent: dict[str, int],
    is_trainer: Callable[[str, int], bool],
    budget: int,
) -> list[str]:
    """The rules of :data:`RULES` that leaf ``c`` breaks at its delivery, in the task's order of checks."""
    checks = (
        (c.task != delivered.task or c.round_id != delivered.round_id, RULES[0]),
        (not is_trainer(c.member, delivered.block_number), RULES[1]),
        (c.update_hash == ZERO, RULES[2]),
        (c.num_examples == 0, RULES[3]),
        (c.member in committed, RULES[4]),
        (budget != 0 and c.epsilon_micro > budget, RULES[5]),
        (budget != 0 and c.epsilon_micro < spent.get(c.member, 0), RULES[6]),
    )
    return [rule for broken, rule in checks if broken]


def _same(update: UpdateCommitted, c: Commitment) -> bool:
    return (update.member, update.update_hash, update.num_examples, update.dataset_id, update.epsilon_micro) == (
        c.member,
        c.update_hash,
        c.num_examples,
        c.dataset_id,
        c.epsilon_micro,
    )
