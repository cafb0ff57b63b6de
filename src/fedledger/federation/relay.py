"""The relay of a batched round: it collects trainers' signed commitments off chain and posts one root.

A trainer signs its commitment (:func:`~fedledger.chain.batch_leaves.sign_commitment`) and sends it to the relay,
any aggregator of the consortium, over HTTP (:func:`submit`, served by :class:`RelayServer`). The relay checks it
as the contract would (the round, the signature, the trainer role, one commitment per trainer) and answers with a
signed receipt, which :func:`submit` checks is the relay's before returning it: the trainer's evidence if its leaf
goes missing. When the round's commitments are in, :meth:`Relay.publish` stores the list of signed commitments as
one blob (sorted by member address) and posts the tree's root and the blob's hash: one transaction for the round.

:func:`challenge` turns a :class:`~fedledger.chain.batches.LeafProblem` found in a published listing into the
contract's challenge, :func:`dispute_missing` sends a trainer's receipt when its leaf is not in the tree, and
:func:`answer_disputes` shows the disputed leaves that are there, and :func:`settle` ends a batch after its
windows. :func:`finalized_commitments` reads a round's commitments once its batch is final.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fedledger.chain.batch_events import MissingAnswered, MissingDisputed
from fedledger.chain.batch_leaves import (
    BatchDomain,
    MerkleTree,
    SignedCommitment,
    receipt_signer,
    recover_signer,
    sign_receipt,
)
from fedledger.chain.batches import BatchInfo, BatchListing, BatchStatus, CommitmentBatchesClient, LeafProblem
from fedledger.chain.connection import TxResult
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.encoding import as_address
from fedledger.exceptions import BadInput, ChainError, IntegrityError
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_shallow

__all__ = [
    "PublishedBatch",
    "Relay",
    "RelayServer",
    "answer_disputes",
    "challenge",
    "dispute_missing",
    "finalized_commitments",
    "open_disputes",
    "published_listing",
    "relay_info",
    "settle",
    "submit",
]

MAX_REQUEST_BYTES = 16 * 1024  # one signed commitment is about 400 bytes of JSON
COMMIT_PATH = "/commitments"


@dataclass(frozen=True)
class PublishedBatch:
    batch_id: int
    blob_id: str
    listing: BatchListing
    tree: MerkleTree


class Relay:
    """Collects one round's signed commitments for the batch contract ``batches`` (whose account is the relay)."""

    def __init__(
        self, batches: CommitmentBatchesClient, consortium: ConsortiumClient, *, task: str, round_id: int
    ) -> None:
        if batches.account is None:
            raise BadInput("the relay needs the batch client of an aggregator's account")
        self.batches = batches
        self._account = batches.account
        self.consortium = consortium
        self.task = as_address(task, what="task address")
        self.round_id = round_id
        self.domain: BatchDomain = batches.domain
        self._inbox: dict[str, SignedCommitment] = {}
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return str(self._account.address)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._inbox)

    def accept(self, signed: SignedCommitment) -> bytes:
        """Take a trainer's signed commitment and return the relay's receipt; :class:`BadInput` when the contract
        would count it bad, or when the trainer already sent another one (resending the same one is answered
        with the same receipt)."""
        c = signed.commitment
        round_id = self.round_id
        if c.task != self.task or c.round_id != round_id:
            raise BadInput(f"this relay collects task {self.task} round {round_id}, not {c.task} {c.round_id}")
        if recover_signer(self.domain, signed) != c.member:
            raise BadInput(f"the signature is not {c.member}'s")
        if not self.consortium.has_role(c.member, Role.TRAINER):
            raise BadInput(f"{c.member} is not a trainer of the consortium")
        with self._lock:
            if self.round_id != round_id:
                raise BadInput(f"this relay moved on to round {self.round_id}")
            held = self._inbox.get(c.member)
            if held is not None and held != signed:
                raise BadInput(f"{c.member} already sent another commitment for this round")
            self._inbox[c.member] = signed
        return sign_receipt(self._account, self.domain, signed.leaf(self.domain))

    def start_round(self, round_id: int) -> None:
        """Collect the next round's commitments from now on (a relay that serves a task's rounds one by one); what
        the last round's inbox held is dropped, so publish it first."""
        with self._lock:
            self.round_id = round_id
            self._inbox = {}

    def listing(self) -> BatchListing:
        """The signed commitments received so far, sorted by member address (one leaf per trainer)."""
        with self._lock:
            leaves = tuple(self._inbox[m] for m in sorted(self._inbox, key=str.lower))
            round_id = self.round_id
        return BatchListing(self.domain, self.task, round_id, leaves)

    def publish(self, store: BlobStore) -> PublishedBatch:
        """Store the listing and post its root: the round's one transaction."""
        listing = self.listing()
        if not listing.leaves:
            raise BadInput("no commitment reached the relay: nothing to post")
        tree = listing.tree()
        blob_id = store.put(listing.to_bytes())
        batch_id = self.batches.post_batch(self.task, listing.round_id, tree.root, tree.count, "0x" + blob_id)
        return PublishedBatch(batch_id, blob_id, listing, tree)


class RelayServer:
    """Serves a :class:`Relay` over HTTP: ``POST /commitments`` with a signed commitment's JSON answers
    ``{"receipt": ..., "leaf": ...}``, or status 400 with ``{"error": ...}``; ``GET /commitments`` the count."""

    def __init__(self, relay: Relay, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.relay = relay
        self._server = ThreadingHTTPServer((host, port), _handler_for(relay))
        self._thread = threading.Thread(target=self._server.serve_forever, name="fedledger-relay", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RelayServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> RelayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _handler_for(relay: Relay) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path != COMMIT_PATH:
                self._answer(404, {"error": f"unknown path {self.path}"})
                return
            self._answer(
                200, {"task": relay.task, "round": relay.round_id, "count": relay.count, "relay": relay.address}
            )

        def do_POST(self) -> None:  # noqa: N802
            if self.path != COMMIT_PATH:
                self._answer(404, {"error": f"unknown path {self.path}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_REQUEST_BYTES:
                self._answer(400, {"error": f"a signed commitment is 1 to {MAX_REQUEST_BYTES} bytes"})
                return
            try:
                signed = SignedCommitment.from_json(loads_shallow(self.rfile.read(length), what="signed commitment"))
                receipt = relay.accept(signed)
            except (BadInput, ValueError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            except ChainError as exc:
                self._answer(503, {"error": f"the relay cannot read the chain: {exc}"})
                return
            leaf = signed.leaf(relay.domain)
            self._answer(200, {"receipt": "0x" + receipt.hex(), "leaf": "0x" + leaf.hex()})

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's signature)
            return  # one line per request on stderr would drown a node's own output

    return Handler


def submit(url: str, signed: SignedCommitment, *, domain: BatchDomain, relay: str, timeout: float = 30.0) -> bytes:
    """Send ``signed`` to the relay at ``url`` and return its receipt, checked to be signed by ``relay`` for this
    very leaf (a receipt that is not is no evidence, so it is refused here with :class:`BadInput`)."""
    request = urllib.request.Request(
        url.rstrip("/") + COMMIT_PATH,
        data=json.dumps(signed.to_json()).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the relay's own URL)
            body = json.loads(response.read(MAX_REQUEST_BYTES))
    except urllib.error.HTTPError as exc:
        raise BadInput(f"the relay refused the commitment: {_error_of(exc)}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ChainError(f"cannot reach the relay at {url}: {exc}") from exc
    try:
        receipt = bytes.fromhex(str(body["receipt"]).removeprefix("0x"))
    except (KeyError, TypeError, ValueError):
        raise BadInput(f"the relay's answer holds no receipt: {body!r}") from None
    if receipt_signer(domain, signed.leaf(domain), receipt) != as_address(relay, what="relay address"):
        raise BadInput(f"the relay's receipt is not signed by {relay} for this commitment")
    return receipt


def relay_info(url: str, *, timeout: float = 30.0) -> dict[str, Any]:
    """What the relay at ``url`` collects: ``task``, ``round``, ``count`` so far, and ``relay``, its address (the
    signer its receipts must have)."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + COMMIT_PATH, timeout=timeout) as response:  # noqa: S310
            body = json.loads(response.read(MAX_REQUEST_BYTES))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ChainError(f"cannot reach the relay at {url}: {exc}") from exc
    if not isinstance(body, dict) or not {"task", "round", "relay"} <= set(body):
        raise BadInput(f"the relay at {url} answered no task, round and address: {body!r}")
    return body


def _error_of(exc: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(exc.read(MAX_REQUEST_BYTES))["error"])
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code}"


def challenge(client: CommitmentBatchesClient, batch_id: int, listing: BatchListing, problem: LeafProblem) -> TxResult:
    """Send the contract the challenge that shows ``problem`` in the batch ``listing`` was published for."""
    tree = listing.tree()
    if problem.reason == "member listed twice":
        first, second = problem.indices
        return client.challenge_duplicate(
            batch_id,
            (listing.leaves[first], first, tree.proof(first)),
            (listing.leaves[second], second, tree.proof(second)),
        )
    (index,) = problem.indices
    return client.challenge_forged(batch_id, listing.leaves[index], index, tree.proof(index))


def dispute_missing(
    client: CommitmentBatchesClient,
    batch_id: int,
    listing: BatchListing | None,
    signed: SignedCommitment,
    receipt: bytes,
) -> TxResult | None:
    """Dispute the batch when ``signed`` is not among its leaves, or when its listing is unavailable (``None``:
    then only the relay's proof can settle it); None (nothing sent) when the leaf is there."""
    if listing is not None and signed in listing.leaves:
        return None
    return client.challenge_missing(batch_id, signed, receipt)


def open_disputes(client: CommitmentBatchesClient, batch_id: int) -> list[str]:
    """The batch's disputed leaves not answered yet (0x-hex), from the contract's events, in dispute order."""
    pending: dict[str, None] = {}
    for event in client.events():
        if isinstance(event, MissingDisputed) and event.batch_id == batch_id:
            pending[event.leaf] = None
        elif isinstance(event, MissingAnswered) and event.batch_id == batch_id:
            pending.pop(event.leaf, None)
    return list(pending)


def answer_disputes(client: CommitmentBatchesClient, batch_id: int, listing: BatchListing) -> list[TxResult]:
    """Answer every open missing-leaf dispute of the batch whose leaf is in ``listing``, with its proof (a relay's
    duty; anyone holding the listing may do it). A disputed leaf the listing lacks stays open: the batch falls."""
    tree = listing.tree()
    index_of = {"0x" + signed.leaf(listing.domain).hex(): i for i, signed in enumerate(listing.leaves)}
    return [
        client.answer_missing(batch_id, bytes.fromhex(leaf[2:]), index_of[leaf], tree.proof(index_of[leaf]))
        for leaf in open_disputes(client, batch_id)
        if leaf in index_of
    ]


def settle(client: CommitmentBatchesClient, batch_id: int) -> TxResult:
    """Settle a batch after its windows: finalize it, or, when a dispute is still open (so past the answer
    deadline, or the contract refuses), invalidate it for that dispute, crediting its disputer."""
    still_open = open_disputes(client, batch_id) if client.batch(batch_id).open_disputes else []
    if still_open:
        return client.claim_missing(batch_id, bytes.fromhex(still_open[0][2:]))
    return client.finalize(batch_id)


def finalized_commitments(
    client: CommitmentBatchesClient, store: BlobStore, task: str, round_id: int
) -> tuple[SignedCommitment, ...] | None:
    """The signed commitments of a round's finalized batch, in tree order (a leaf's index is its update's index);
    None while the round has no finalized batch. The listing must rebuild the posted root: anything else is an
    :class:`IntegrityError` (a :class:`~fedledger.exceptions.BlobNotFound` when the store lacks it)."""
    batch_id = client.current_batch(task, round_id)
    if batch_id == 0:
        return None
    info = client.batch(batch_id)
    if info.status is not BatchStatus.FINALIZED:
        return None
    return published_listing(client, store, info).leaves


def published_listing(client: CommitmentBatchesClient, store: BlobStore, info: BatchInfo) -> BatchListing:
    """The listing batch ``info`` was posted with, fetched from the store by its posted hash and checked to rebuild
    the posted root under this contract's domain; :class:`IntegrityError` otherwise (a
    :class:`~fedledger.exceptions.BlobNotFound` when the store lacks it)."""
    try:
        listing = BatchListing.from_bytes(store.get(info.leaves_blob.removeprefix("0x")))
    except BadInput as exc:
        raise IntegrityError(f"batch {info.batch_id}: malformed leaves blob: {exc}") from None
    tree = listing.tree()
    if listing.domain != client.domain or (tree.count, "0x" + tree.root.hex()) != (info.count, info.root):
        raise IntegrityError(f"batch {info.batch_id}: its leaves blob does not rebuild the posted root")
    return listing
