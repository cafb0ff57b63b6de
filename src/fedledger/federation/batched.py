"""Batched commitments in a task's rounds: the config's rules, a trainer's hand-over, the round's delivery.

A task configured with ``commitments = "batched"`` names a CommitmentBatches contract, recorded in the task
contract at deployment (``commitment_batches``) and in its committed config. In its rounds:

1. each trainer signs its commitment and sends it to the relay (:meth:`BatchedCommits.send`) instead of calling
   ``commit_update``; the relay posts the round's root (:mod:`fedledger.federation.relay`);
2. once the batch's challenge window is over, an aggregator hands the batch's leaves to the task
   (:meth:`BatchedCommits.deliver`: one transaction, which finalizes the batch first when it is still pending). The
   task applies its own commitment rules to each leaf; a leaf that breaks one is logged by name (``LeafRejected``)
   and the others become the round's updates in tree order;
3. the round then runs as any validated round: validators and aggregators read the delivered updates from the task.

Without a delivered batch the commit phase ends at its deadline as usual; :meth:`BatchedCommits.missing` names why
the round has no batched commitments (none posted, still pending, invalidated, or delivered too late).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from eth_account.signers.local import LocalAccount
from eth_utils import is_address

from fedledger.chain.batch_leaves import Commitment, sign_commitment
from fedledger.chain.batches import DELIVERY_CHUNK, BatchInfo, BatchStatus, CommitmentBatchesClient
from fedledger.chain.connection import TxResult
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.task import ZERO_ADDRESS, TrainingTaskClient
from fedledger.exceptions import BadInput, ConfigError
from fedledger.store import BlobStore

if TYPE_CHECKING:
    from fedledger.federation.config import TaskConfig

__all__ = ["COMMITMENT_MODES", "BatchedCommits", "batch_contract", "check_batched"]

log = logging.getLogger("fedledger.node")

COMMITMENT_MODES = ("direct", "batched")
RELAY_CATCH_UP = 30.0
"""Seconds a trainer waits for its relay to move on to the round it commits in, before committing directly."""


def check_batched(config: TaskConfig) -> None:
    """Refuse a config whose batched-commitment settings cannot run (:class:`ConfigError`)."""
    if config.commitments not in COMMITMENT_MODES:
        raise ConfigError(f"task config: commitments must be one of {COMMITMENT_MODES}, got {config.commitments!r}")
    address = config.commitment_batches
    if not isinstance(address, str) or (address and not (address.startswith("0x") and is_address(address))):
        raise ConfigError(f"task config: commitment_batches must be empty or a 0x address, got {address!r}")
    if config.commitments == "direct":
        if address:
            raise ConfigError('task config: commitment_batches needs commitments = "batched"')
        return
    if config.secure_aggregation:
        raise ConfigError("task config: batched commitments need validated rounds (secure tasks commit masked inputs)")
    window = config.batch_window
    if isinstance(window, bool) or not isinstance(window, int) or not 0 < window < config.timing.commit_duration:
        raise ConfigError(
            f"task config: batch_window must be 1 second or more and below commit_duration "
            f"({config.timing.commit_duration}): a batch is delivered after its window and before the commit "
            f"deadline; got {window!r}"
        )


def batch_contract(config: TaskConfig) -> str:
    """The CommitmentBatches address a task of ``config`` is deployed with (the zero address for direct commits)."""
    if config.commitments != "batched":
        return ZERO_ADDRESS
    if not config.commitment_batches:
        raise ConfigError("a batched task needs its CommitmentBatches contract: create it with `fedledger task create`")
    return config.commitment_batches


class BatchedCommits:
    """One member's part in a batched task: sending its commitment to the relay, and delivering the round's batch."""

    def __init__(
        self, task: TrainingTaskClient, store: BlobStore, account: LocalAccount, *, relay_url: str | None
    ) -> None:
        address = task.params().commitment_batches
        if address == ZERO_ADDRESS:
            raise ConfigError(f"task {task.address} takes no batched commitments (its contract names no batch board)")
        self.task, self.store, self.account, self.relay_url = task, store, account, relay_url
        self.batches = CommitmentBatchesClient(task.chain, address, account)
        self.sent: set[int] = set()
        """Rounds whose commitment this member handed to the relay (it owes no ``commit_update`` in them)."""
        self.delivered: set[int] = set()
        self._relay: str | None = None

    def relay_address(self) -> str:
        """The relay's account, read from the relay once and checked to be an aggregator of the consortium."""
        if self._relay is None:
            from fedledger.federation.relay import relay_info

            if self.relay_url is None:
                raise BadInput("no relay URL: this node commits directly")
            address = str(relay_info(self.relay_url)["relay"])
            consortium = ConsortiumClient(self.task.chain, self.task.consortium_address)
            if not consortium.has_role(address, Role.AGGREGATOR):
                raise BadInput(f"the relay at {self.relay_url} signs as {address}, not an aggregator")
            self._relay = address
        return self._relay

    def send(
        self, round_id: int, update_hash: str, num_examples: int, dataset_id: int, epsilon_micro: int
    ) -> dict[str, Any]:
        """Sign this member's commitment and hand it to the relay; the details of the ``commit`` event (its leaf and
        the relay's receipt, the member's evidence should the leaf go missing). :class:`BadInput` when the relay
        refuses it."""
        from fedledger.federation.relay import submit

        commitment = Commitment.of(
            task=self.task.address,
            round_id=round_id,
            member=self.account.address,
            update_hash=update_hash,
            num_examples=num_examples,
            dataset_id=dataset_id,
            epsilon_micro=epsilon_micro,
        )
        signed = sign_commitment(self.account, self.batches.domain, commitment)
        relay = self.relay_address()
        self._wait_for_relay_round(round_id)
        receipt = submit(str(self.relay_url), signed, domain=self.batches.domain, relay=relay)
        self.sent.add(round_id)
        leaf = "0x" + signed.leaf(self.batches.domain).hex()
        return {"relay": relay, "leaf": leaf, "receipt": "0x" + receipt.hex()}

    def _wait_for_relay_round(self, round_id: int) -> None:
        """Wait (at most ``RELAY_CATCH_UP`` seconds) for a relay serving several rounds to move on to ``round_id``:
        it posts the last round's batch first, and a commitment sent before it moved on would be refused."""
        from fedledger.federation.relay import relay_info

        give_up = time.monotonic() + RELAY_CATCH_UP
        while int(relay_info(str(self.relay_url))["round"]) < round_id and time.monotonic() < give_up:
            time.sleep(0.1)

    def _batch(self, round_id: int) -> BatchInfo | None:
        batch_id = self.batches.current_batch(self.task.address, round_id)
        return None if batch_id == 0 else self.batches.batch(batch_id)

    def delivery_due(self, round_id: int, now: int) -> bool:
        """Whether the round's batch can be handed to the task now: posted, not delivered, and final or past its
        window with no dispute open (block time ``now``)."""
        if round_id in self.delivered:
            return False
        info = self._batch(round_id)
        if info is None:
            return False
        if self.batches.delivered(info.batch_id):
            self.delivered.add(round_id)
            return False
        pending_done = info.status is BatchStatus.PENDING and now > info.challenge_deadline and not info.open_disputes
        return info.status is BatchStatus.FINALIZED or pending_done

    def deliver(self, round_id: int) -> tuple[list[TxResult], int] | None:
        """Hand the round's batch to the task (finalizing it first when pending), in chunks of at most
        ``DELIVERY_CHUNK`` leaves from the first one not delivered yet; the transactions and the batch id, or None
        when the round has no batch. The listing must rebuild the posted root
        (:class:`~fedledger.exceptions.IntegrityError` otherwise)."""
        from fedledger.federation.relay import published_listing

        info = self._batch(round_id)
        if info is None:
            return None
        listing = published_listing(self.batches, self.store, info)
        sent: list[TxResult] = []
        first = self.batches.next_leaf(info.batch_id)
        while first < len(listing.leaves):
            # Aligned on a power of two, whoever delivered the chunks before.
            chunk = min(DELIVERY_CHUNK, first & -first) if first else DELIVERY_CHUNK
            sent.append(self.batches.deliver(info.batch_id, listing, first=first, chunk=chunk))
            first += min(chunk, len(listing.leaves) - first)
        self.delivered.add(round_id)
        return sent, info.batch_id

    def missing(self, round_id: int) -> str | None:
        """Why the round has no batched commitments yet, in words; None once its batch was delivered."""
        info = self._batch(round_id)
        if info is None:
            return "no batch standing (none posted, or the posted one was invalidated)"
        if self.batches.delivered(info.batch_id):
            return None
        if info.status is BatchStatus.PENDING:
            return f"batch {info.batch_id} still pending (challenge window or disputes)"
        return f"batch {info.batch_id} finalized but not delivered"
