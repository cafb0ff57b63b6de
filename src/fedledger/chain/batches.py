"""Typed client for the CommitmentBatches contract, and the leaves blob a relay publishes with each root.

A large round's trainers sign their commitments off chain (:mod:`fedledger.chain.batch_leaves`); a relay collects
them (:mod:`fedledger.federation.relay`), stores the list as one blob (:class:`BatchListing`) and posts its Merkle
root with :meth:`CommitmentBatchesClient.post_batch`: one transaction for the whole round. Anyone holding the blob
can rebuild the tree, check every leaf, and challenge a bad one with the proofs this client builds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.chain.batch_events import BatchPosted
from fedledger.chain.batch_leaves import (
    BatchDomain,
    Commitment,
    MerkleTree,
    SignedCommitment,
    depth_for,
    recover_signer,
)
from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_address, as_bytes32, hex32
from fedledger.chain.events import decode_logs
from fedledger.exceptions import BadInput
from fedledger.store.safejson import loads_shallow

__all__ = [
    "DELIVERY_CHUNK",
    "LISTING_FORMAT",
    "BatchInfo",
    "BatchListing",
    "BatchStatus",
    "CommitmentBatchesClient",
    "LeafProblem",
    "find_problems",
]

LISTING_FORMAT = "fedledger-batch/1"
DELIVERY_CHUNK = 128
"""The most leaves one delivery hands to a task (the contract's ``MAX_DELIVERY``): about 150,000 gas each, so that
a chunk stays under a 30 M gas block."""


class BatchStatus(IntEnum):
    NONE = 0
    PENDING = 1
    FINALIZED = 2
    INVALID = 3


@dataclass(frozen=True)
class BatchInfo:
    """A posted batch as the contract holds it (hashes as 0x-hex)."""

    batch_id: int
    task: str
    round_id: int
    relay: str
    root: str
    count: int
    leaves_blob: str
    challenge_deadline: int
    answer_deadline: int  # the challenge deadline plus one more window, for answers to missing-leaf disputes
    status: BatchStatus
    open_disputes: int


@dataclass(frozen=True)
class BatchListing:
    """The blob a relay publishes: every signed commitment of a batch, in tree order."""

    domain: BatchDomain
    task: str
    round_id: int
    leaves: tuple[SignedCommitment, ...]

    def tree(self) -> MerkleTree:
        return MerkleTree([signed.leaf(self.domain) for signed in self.leaves])

    def to_bytes(self) -> bytes:
        data = {
            "format": LISTING_FORMAT,
            "chain_id": self.domain.chain_id,
            "contract": self.domain.contract,
            "task": self.task,
            "round": self.round_id,
            "leaves": [signed.to_json() for signed in self.leaves],
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, blob: bytes) -> BatchListing:
        """Parse a leaves blob; :class:`BadInput` for anything but a well-formed listing."""
        try:
            data = loads_shallow(blob, what="batch listing")
        except ValueError as exc:
            raise BadInput(f"batch listing is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != LISTING_FORMAT:
            raise BadInput(f"not a batch listing (format {LISTING_FORMAT!r} expected)")
        leaves = data.get("leaves")
        if not isinstance(leaves, list) or not isinstance(data.get("chain_id"), int):
            raise BadInput("batch listing: malformed 'leaves' or 'chain_id'")
        round_id = data.get("round")
        if not isinstance(round_id, int) or isinstance(round_id, bool) or round_id < 0:
            raise BadInput("batch listing: malformed 'round'")
        domain = BatchDomain(data["chain_id"], as_address(str(data.get("contract")), what="batch contract"))
        task = as_address(str(data.get("task")), what="task address")
        return cls(domain, task, round_id, tuple(SignedCommitment.from_json(item) for item in leaves))


@dataclass(frozen=True)
class LeafProblem:
    """A listed leaf the contract would invalidate its batch for; ``reason`` is the contract's own wording."""

    reason: str  # "leaf for another round", "forged signature", "signer is not a trainer" or "member listed twice"
    indices: tuple[int, ...]  # the leaf, or the two leaves of a member listed twice
    member: str


def find_problems(listing: BatchListing, *, is_trainer: Callable[[str], bool]) -> list[LeafProblem]:
    """Every leaf of ``listing`` a challenge would show bad, by the contract's rules, in tree order.

    ``is_trainer`` answers whether an address holds the trainer role (at whichever block the caller judges at).
    """
    problems: list[LeafProblem] = []
    first_index: dict[str, int] = {}
    for index, signed in enumerate(listing.leaves):
        c = signed.commitment
        if c.task != listing.task or c.round_id != listing.round_id:
            problems.append(LeafProblem("leaf for another round", (index,), c.member))
        elif recover_signer(listing.domain, signed) != c.member:
            problems.append(LeafProblem("forged signature", (index,), c.member))
        elif not is_trainer(c.member):
            problems.append(LeafProblem("signer is not a trainer", (index,), c.member))
        if c.member in first_index:
            problems.append(LeafProblem("member listed twice", (first_index[c.member], index), c.member))
        else:
            first_index[c.member] = index
    return problems


class CommitmentBatchesClient(ContractClient):
    """The CommitmentBatches contract at ``address``, acting as ``account`` for writes."""

    NAME = "CommitmentBatches"

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str, *, window: int) -> CommitmentBatchesClient:
        """Create the batch board of ``consortium`` whose batches stay open to challenges for ``window`` seconds."""
        address, _ = chain.deploy(
            account, cls.NAME, as_address(consortium, what="consortium address"), _uint(window, "window")
        )
        return cls(chain, address, account)

    @property
    def domain(self) -> BatchDomain:
        """The EIP-712 domain trainers sign commitments for this contract under."""
        return BatchDomain(self.chain.chain_id, self.address)

    # -- writes ----------------------------------------------------------------------

    def post_batch(self, task: str, round_id: int, root: bytes, count: int, leaves_blob: str | bytes) -> int:
        """Post a round's root as its relay (an aggregator); returns the batch id."""
        result = self._send(
            self.contract.functions.post_batch(
                as_address(task, what="task address"),
                _uint(round_id, "round id"),
                as_bytes32(root, what="batch root"),
                _uint(count, "leaf count"),
                as_bytes32(leaves_blob, what="leaves blob hash"),
            )
        )
        for event in decode_logs(self.NAME, list(result.receipt["logs"]), self.chain.w3.codec):
            if isinstance(event, BatchPosted):
                return event.batch_id
        raise AssertionError("post_batch emitted no BatchPosted event")  # pragma: no cover

    def challenge_forged(self, batch_id: int, signed: SignedCommitment, index: int, proof: Sequence[bytes]) -> TxResult:
        """Show that the leaf at ``index`` has no valid trainer signature for the batch's round."""
        return self._send(
            self.contract.functions.challenge_forged(
                _uint(batch_id, "batch id"),
                signed.commitment.as_tuple(),
                signed.signature,
                _uint(index, "leaf index"),
                list(proof),
            )
        )

    def challenge_duplicate(
        self,
        batch_id: int,
        first: tuple[SignedCommitment, int, Sequence[bytes]],
        second: tuple[SignedCommitment, int, Sequence[bytes]],
    ) -> TxResult:
        """Show that one trainer is listed twice; each leaf given as (signed commitment, index, proof)."""
        args: list[Any] = [_uint(batch_id, "batch id")]
        for signed, index, proof in (first, second):
            args += [signed.commitment.as_tuple(), signed.signature_hash, _uint(index, "leaf index"), list(proof)]
        return self._send(self.contract.functions.challenge_duplicate(*args))

    def challenge_missing(self, batch_id: int, signed: SignedCommitment, receipt: bytes) -> TxResult:
        """Dispute the batch: the relay acknowledged ``signed`` (``receipt``) but must now show it in the tree."""
        return self._send(
            self.contract.functions.challenge_missing(
                _uint(batch_id, "batch id"), signed.commitment.as_tuple(), signed.signature, receipt
            )
        )

    def answer_missing(self, batch_id: int, leaf: bytes, index: int, proof: Sequence[bytes]) -> TxResult:
        """Close a missing-leaf dispute by showing ``leaf`` at ``index``."""
        return self._send(
            self.contract.functions.answer_missing(
                _uint(batch_id, "batch id"), as_bytes32(leaf, what="leaf"), _uint(index, "leaf index"), list(proof)
            )
        )

    def claim_missing(self, batch_id: int, leaf: bytes) -> TxResult:
        """Invalidate the batch for the disputed ``leaf`` no proof showed by the answer deadline."""
        return self._send(
            self.contract.functions.claim_missing(_uint(batch_id, "batch id"), as_bytes32(leaf, what="leaf"))
        )

    def finalize(self, batch_id: int) -> TxResult:
        """Finalize the batch after its challenge window, when no dispute is open."""
        return self._send(self.contract.functions.finalize(_uint(batch_id, "batch id")))

    def deliver(self, batch_id: int, listing: BatchListing, *, first: int = 0, chunk: int | None = None) -> TxResult:
        """Hand the batch's leaves from position ``first`` to its task (finalizing a pending batch first): at most
        ``chunk`` leaves (a power of two, at most ``DELIVERY_CHUNK``; default: as many as fit), so that a large
        round fits the block gas limit. The leaves the task accepts become the round's next updates in tree order;
        the others are logged (``LeafRejected``)."""
        rest = len(listing.leaves) - first
        size = chunk if chunk is not None else min(DELIVERY_CHUNK, 1 << depth_for(max(rest, 1)))
        if size <= 0 or size & (size - 1) or not 0 <= first < len(listing.leaves) or first % size:
            raise BadInput(f"a chunk is an aligned power of two of leaves: {size} from leaf {first} is not")
        leaves = listing.leaves[first : first + size]
        levels = depth_for(len(leaves))
        proof = listing.tree().subtree_proof(first, levels)
        return self._send(
            self.contract.functions.deliver(
                _uint(batch_id, "batch id"),
                first,
                [signed.commitment.as_tuple() for signed in leaves],
                [signed.signature_hash for signed in leaves],
                proof,
            )
        )

    # -- reads -----------------------------------------------------------------------

    @property
    def window(self) -> int:
        return int(self.chain.call(self.contract.functions.window()))

    @property
    def batch_count(self) -> int:
        return int(self.chain.call(self.contract.functions.batch_count()))

    def batch(self, batch_id: int) -> BatchInfo:
        """A posted batch's record; :class:`InvalidArgument` (the contract's revert) for an unknown id."""
        raw = self.chain.call(self.contract.functions.batch(_uint(batch_id, "batch id")))
        return BatchInfo(
            batch_id=batch_id,
            task=raw[0],
            round_id=raw[1],
            relay=raw[2],
            root=hex32(raw[3]),
            count=raw[4],
            leaves_blob=hex32(raw[5]),
            challenge_deadline=raw[6],
            answer_deadline=raw[6] + self.window,
            status=BatchStatus(raw[7]),
            open_disputes=raw[8],
        )

    def delivered(self, batch_id: int) -> bool:
        """Whether every leaf of the batch was handed to its task."""
        return bool(self.chain.call(self.contract.functions.delivered(_uint(batch_id, "batch id"))))

    def next_leaf(self, batch_id: int) -> int:
        """The position of the batch's next leaf to hand to its task."""
        return int(self.chain.call(self.contract.functions.next_leaf(_uint(batch_id, "batch id"))))

    def current_batch(self, task: str, round_id: int) -> int:
        """The batch standing for the round (pending or finalized); 0 when none."""
        fn = self.contract.functions.current_batch(as_address(task, what="task address"), _uint(round_id, "round id"))
        return int(self.chain.call(fn))

    def is_barred(self, task: str, round_id: int, relay: str) -> bool:
        fn = self.contract.functions.is_barred(
            as_address(task, what="task address"), _uint(round_id, "round id"), as_address(relay, what="relay")
        )
        return bool(self.chain.call(fn))

    def includes(self, batch_id: int, leaf: bytes, index: int, proof: Sequence[bytes]) -> bool:
        """Whether the contract accepts ``proof`` of ``leaf`` at ``index`` of the batch's tree."""
        fn = self.contract.functions.includes(
            _uint(batch_id, "batch id"), as_bytes32(leaf, what="leaf"), _uint(index, "leaf index"), list(proof)
        )
        return bool(self.chain.call(fn))

    def commitment_digest(self, commitment: Commitment) -> bytes:
        """The EIP-712 digest the contract computes for ``commitment``."""
        return bytes(self.chain.call(self.contract.functions.commitment_digest(commitment.as_tuple())))


def _uint(value: int, what: str) -> int:
    """A uint256 argument; :class:`BadInput` otherwise (nothing is sent)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
    return value
