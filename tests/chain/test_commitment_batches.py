"""CommitmentBatches: a round's signed commitments as one root, and every way to show a batch is bad.

The Python side (typed data, leaves, tree, proofs) is checked against the contract's own verification: the digest
the contract computes, the proofs it accepts, and the signatures its ecrecover accepts. Each refusal asserts the
contract's exact reason and that nothing moved. Embedded chain, one module-scoped world reverted after each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import given
from hypothesis import strategies as st

from conftest import Ledger, h, refused
from fedledger.chain import Chain, ConsortiumClient, Role
from fedledger.chain.batch_events import BatchFinalized, BatchInvalidated, MissingAnswered, MissingDisputed
from fedledger.chain.batch_leaves import (
    Commitment,
    MerkleTree,
    SignedCommitment,
    commitment_digest,
    recover_signer,
    root_from_proof,
    sign_commitment,
    sign_receipt,
)
from fedledger.chain.batches import BatchStatus, CommitmentBatchesClient
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.exceptions import BadInput, DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized

WINDOW = 600
TASK = Account.from_key(h("fedledger-batches-task")).address
BLOB = h("leaves-blob")
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@dataclass
class World:
    chain: Chain
    who: dict[str, LocalAccount]
    consortium: ConsortiumClient
    batches: CommitmentBatchesClient

    def as_(self, name: str) -> CommitmentBatchesClient:
        return self.batches.as_(self.who[name])

    def signed(
        self, name: str, *, round_id: int = 1, examples: int = 10, signer: str | None = None
    ) -> SignedCommitment:
        """``name``'s commitment for the round, signed by ``signer`` (``name`` itself unless forged)."""
        c = Commitment.of(
            task=TASK, round_id=round_id, member=self.who[name].address, update_hash=h(f"u-{name}"),
            num_examples=examples,
        )  # fmt: skip
        if signer is None or signer == name:
            return sign_commitment(self.who[name], self.batches.domain, c)
        forged = sign_commitment(
            self.who[signer], self.batches.domain, Commitment.of(**{**_fields(c), "member": self.who[signer].address})
        )
        return SignedCommitment(c, forged.signature)

    def post(self, leaves: list[SignedCommitment], relay: str = "relay", round_id: int = 1) -> tuple[int, MerkleTree]:
        tree = MerkleTree([s.leaf(self.batches.domain) for s in leaves])
        return self.as_(relay).post_batch(TASK, round_id, tree.root, tree.count, BLOB), tree

    def state(self) -> tuple[int, int]:
        return (self.chain.block_number, self.batches.batch_count)


def _fields(c: Commitment) -> dict[str, Any]:
    return {
        "task": c.task, "round_id": c.round_id, "member": c.member, "update_hash": c.update_hash,
        "num_examples": c.num_examples, "dataset_id": c.dataset_id,
    }  # fmt: skip


@pytest.fixture(scope="module")
def world_base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    chain = Chain.embedded(tmp_path_factory.mktemp("batches-chain"))
    faucet = Account.from_key(FAUCET_KEY.to_bytes())
    names = ["admin", "relay", "relay2", "t0", "t1", "t2", "t3", "validator", "outsider"]
    who = {n: Account.from_key(h(f"fedledger-batches-{n}")) for n in names}
    for account in who.values():
        chain.transfer(faucet, account.address, 10**21)
    consortium = ConsortiumClient.deploy(chain, who["admin"], org="Founder", roles=Role.ADMIN)
    roles = {"relay": Role.AGGREGATOR, "relay2": Role.AGGREGATOR, "validator": Role.VALIDATOR}
    for n in ("relay", "relay2", "validator", "t0", "t1", "t2", "t3"):
        consortium.propose_admit(who[n].address, org=f"Org-{n}", roles=roles.get(n, Role.TRAINER))
    batches = CommitmentBatchesClient.deploy(chain, who["admin"], consortium.address, window=WINDOW)
    yield World(chain, who, consortium, batches)
    chain.close()


@pytest.fixture
def world(world_base: World) -> Iterator[World]:
    snapshot = world_base.chain.snapshot()
    try:
        yield world_base
    finally:
        world_base.chain.revert(snapshot)


def _malleable(signature: bytes) -> bytes:
    """The high-s twin of a signature: ecrecover still yields the signer, the contract counts it forged."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])


def _off_curve(signature: bytes) -> bytes:
    """A signature whose r is no point's x coordinate: ecrecover gives the zero address."""
    return (5).to_bytes(32, "big") + signature[32:]


# -- typed data and tree against the contract --------------------------------------------------------------


@given(
    round_id=st.integers(0, 2**64),
    examples=st.integers(0, 2**128),
    dataset_id=st.integers(0, 2**32),
    salt=st.binary(min_size=32, max_size=32),
)
def test_the_digest_matches_the_contracts(
    world_base: World, round_id: int, examples: int, dataset_id: int, salt: bytes
) -> None:
    c = Commitment.of(
        task=TASK, round_id=round_id, member=world_base.who["t0"].address, update_hash=salt,
        num_examples=examples, dataset_id=dataset_id,
    )  # fmt: skip
    assert world_base.batches.commitment_digest(c) == commitment_digest(world_base.batches.domain, c)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_every_proof_of_every_tree_size_is_accepted_by_the_contract(world: World, count: int) -> None:
    leaves = [world.signed(f"t{i % 4}", examples=i + 1) for i in range(count)]
    batch_id, tree = world.post(leaves)
    assert world.batches.batch(batch_id).root == "0x" + tree.root.hex()
    for index, signed in enumerate(leaves):
        leaf, proof = signed.leaf(world.batches.domain), tree.proof(index)
        assert root_from_proof(leaf, index, proof) == tree.root
        assert world.batches.includes(batch_id, leaf, index, proof)
        assert not world.batches.includes(batch_id, leaf, index, [*proof, bytes(32)])  # wrong length
        if count > 1:
            assert not world.batches.includes(batch_id, leaf, index ^ 1 if index ^ 1 < count else 0, proof)
    assert not world.batches.includes(batch_id, leaves[0].leaf(world.batches.domain), count, tree.proof(0))


def test_signatures_recover_as_the_contract_recovers(world: World) -> None:
    signed = world.signed("t0")
    assert recover_signer(world.batches.domain, signed) == world.who["t0"].address
    assert (
        recover_signer(world.batches.domain, SignedCommitment(signed.commitment, _malleable(signed.signature))) is None
    )
    assert recover_signer(world.batches.domain, SignedCommitment(signed.commitment, signed.signature[:64])) is None
    assert (
        recover_signer(world.batches.domain, SignedCommitment(signed.commitment, _off_curve(signed.signature))) is None
    )
    with pytest.raises(BadInput, match="cannot sign a commitment"):
        sign_commitment(world.who["t1"], world.batches.domain, signed.commitment)


# -- posting ---------------------------------------------------------------------------------------------------


def test_a_relay_posts_one_root_per_round(world: World) -> None:
    batch_id, tree = world.post([world.signed("t0"), world.signed("t1")])
    info = world.batches.batch(batch_id)
    assert (info.task, info.round_id, info.relay, info.count, info.status) == (
        TASK, 1, world.who["relay"].address, 2, BatchStatus.PENDING,
    )  # fmt: skip
    assert world.batches.current_batch(TASK, 1) == batch_id
    root, post = tree.root, world.as_("relay2").post_batch
    refused(world.state, InvalidState, "batches: round already has a batch", post, TASK, 1, root, 2, BLOB)
    assert world.post([world.signed("t0", round_id=2)], round_id=2)[0] == batch_id + 1  # another round: its own batch


@pytest.mark.parametrize(
    ("caller", "args", "error", "reason"),
    [
        ("t0", (TASK, 1, b"\x01" * 32, 1, BLOB), NotAuthorized, "batches: caller is not an aggregator"),
        ("outsider", (TASK, 1, b"\x01" * 32, 1, BLOB), NotAuthorized, "batches: caller is not an aggregator"),
        ("relay", ("0x" + "00" * 20, 1, b"\x01" * 32, 1, BLOB), InvalidArgument, "batches: zero task address"),
        ("relay", (TASK, 1, bytes(32), 1, BLOB), InvalidArgument, "batches: zero root"),
        ("relay", (TASK, 1, b"\x01" * 32, 1, bytes(32)), InvalidArgument, "batches: zero leaves blob"),
        ("relay", (TASK, 1, b"\x01" * 32, 0, BLOB), InvalidArgument, "batches: leaf count out of range"),
        ("relay", (TASK, 1, b"\x01" * 32, 2**20 + 1, BLOB), InvalidArgument, "batches: leaf count out of range"),
    ],
)
def test_post_batch_refusals(
    world: World, caller: str, args: tuple[Any, ...], error: type[Exception], reason: str
) -> None:
    refused(world.state, error, reason, world.as_(caller).post_batch, *args)


def test_deploy_refusals(world: World) -> None:
    deploy = CommitmentBatchesClient.deploy
    refused(
        world.state,
        InvalidArgument,
        "batches: zero window",
        deploy,
        world.chain,
        world.who["admin"],
        world.consortium.address,
        window=0,
    )
    zero = "0x" + "00" * 20
    refused(
        world.state,
        InvalidArgument,
        "batches: zero consortium address",
        deploy,
        world.chain,
        world.who["admin"],
        zero,
        window=1,
    )


# -- forged leaves -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (lambda w: w.signed("t1", signer="t2"), "forged signature"),
        (
            lambda w: SignedCommitment(w.signed("t1").commitment, _malleable(w.signed("t1").signature)),
            "forged signature",
        ),
        (lambda w: SignedCommitment(w.signed("t1").commitment, b"\x00" * 65), "forged signature"),
        (
            lambda w: SignedCommitment(w.signed("t1").commitment, _off_curve(w.signed("t1").signature)),
            "forged signature",
        ),
        (lambda w: w.signed("validator"), "signer is not a trainer"),
        (lambda w: w.signed("t1", round_id=7), "leaf for another round"),
    ],
    ids=["other-signer", "malleable", "garbage", "off-curve", "not-a-trainer", "other-round"],
)
def test_a_forged_leaf_invalidates_the_batch(world: World, bad: Any, reason: str) -> None:
    leaves = [world.signed("t0"), bad(world), world.signed("t2")]
    batch_id, tree = world.post(leaves)
    result = world.as_("outsider").challenge_forged(batch_id, leaves[1], 1, tree.proof(1))  # anyone may challenge
    events = [
        e for e in world.batches.events(from_block=result.receipt["blockNumber"]) if isinstance(e, BatchInvalidated)
    ]
    assert [(e.batch_id, e.reason, e.challenger) for e in events] == [(batch_id, reason, world.who["outsider"].address)]
    assert world.batches.batch(batch_id).status == BatchStatus.INVALID
    assert world.batches.current_batch(TASK, 1) == 0 and world.batches.is_barred(TASK, 1, world.who["relay"].address)
    # The caught relay may not post the round again; another aggregator may.
    root = tree.root
    refused(
        world.state,
        NotAuthorized,
        "batches: relay was caught in this round",
        world.as_("relay").post_batch,
        TASK,
        1,
        root,
        3,
        BLOB,
    )
    assert world.post([world.signed("t0"), world.signed("t2")], relay="relay2")[0] == batch_id + 1


def test_forged_challenge_refusals(world: World) -> None:
    leaves = [world.signed("t0"), world.signed("t1"), world.signed("t2")]
    batch_id, tree = world.post(leaves)
    challenge = world.as_("t3").challenge_forged
    refused(world.state, InvalidArgument, "batches: leaf is valid", challenge, batch_id, leaves[1], 1, tree.proof(1))
    refused(
        world.state, InvalidArgument, "batches: leaf not in batch", challenge, batch_id, leaves[1], 2, tree.proof(2)
    )
    refused(
        world.state,
        InvalidArgument,
        "batches: proof length wrong",
        challenge,
        batch_id,
        leaves[1],
        1,
        tree.proof(1)[:1],
    )
    refused(
        world.state, InvalidArgument, "batches: index out of range", challenge, batch_id, leaves[1], 3, tree.proof(1)
    )
    stranger = world.signed("t3", signer="t0")  # forged, but not in this batch
    refused(world.state, InvalidArgument, "batches: leaf not in batch", challenge, batch_id, stranger, 1, tree.proof(1))
    refused(
        world.state, InvalidState, "batches: batch not pending", challenge, batch_id + 1, leaves[1], 1, tree.proof(1)
    )


def test_challenges_close_with_the_window(world: World) -> None:
    leaves = [world.signed("t0"), world.signed("t1", signer="t2")]
    batch_id, tree = world.post(leaves)
    refused(world.state, InvalidState, "batches: challenge window open", world.as_("t0").finalize, batch_id)
    world.chain.advance_time(WINDOW + 1)
    challenge = world.as_("t3").challenge_forged
    refused(
        world.state,
        DeadlinePassed,
        "batches: challenge window closed",
        challenge,
        batch_id,
        leaves[1],
        1,
        tree.proof(1),
    )
    result = world.as_("outsider").finalize(batch_id)
    assert world.batches.batch(batch_id).status == BatchStatus.FINALIZED
    finalized = [
        e for e in world.batches.events(from_block=result.receipt["blockNumber"]) if isinstance(e, BatchFinalized)
    ]
    assert [(e.batch_id, e.count) for e in finalized] == [(batch_id, 2)]
    refused(world.state, InvalidState, "batches: batch not pending", world.as_("t0").finalize, batch_id)
    refused(
        world.state,
        InvalidState,
        "batches: round already has a batch",
        world.as_("relay2").post_batch,
        TASK,
        1,
        tree.root,
        2,
        BLOB,
    )
    refused(world.state, InvalidArgument, "batches: unknown batch", world.batches.batch, batch_id + 1)


# -- duplicates ----------------------------------------------------------------------------------------------------


def test_a_member_listed_twice_invalidates_the_batch(world: World) -> None:
    twice = world.signed("t1")
    leaves = [world.signed("t0"), twice, world.signed("t2"), twice]
    batch_id, tree = world.post(leaves)
    challenge = world.as_("t3").challenge_duplicate
    one, other = (twice, 1, tree.proof(1)), (twice, 3, tree.proof(3))
    refused(world.state, InvalidArgument, "batches: same position", challenge, batch_id, one, one)
    refused(
        world.state, InvalidArgument, "batches: members differ", challenge, batch_id, one, (leaves[2], 2, tree.proof(2))
    )
    refused(
        world.state, InvalidArgument, "batches: leaf not in batch", challenge, batch_id, one, (twice, 2, tree.proof(2))
    )
    challenge(batch_id, one, other)
    assert world.batches.batch(batch_id).status == BatchStatus.INVALID


# -- missing leaves ----------------------------------------------------------------------------------------------


def _missing_setup(world: World) -> tuple[int, MerkleTree, SignedCommitment, bytes]:
    """t3 handed its commitment to the relay and got a receipt; the relay posted a batch without it."""
    left_out = world.signed("t3")
    receipt = sign_receipt(world.who["relay"], world.batches.domain, left_out.leaf(world.batches.domain))
    batch_id, tree = world.post([world.signed("t0"), world.signed("t1")])
    return batch_id, tree, left_out, receipt


def test_an_unanswered_missing_leaf_invalidates_the_batch(world: World) -> None:
    batch_id, _, left_out, receipt = _missing_setup(world)
    result = world.as_("t3").challenge_missing(batch_id, left_out, receipt)
    disputed = [
        e for e in world.batches.events(from_block=result.receipt["blockNumber"]) if isinstance(e, MissingDisputed)
    ]
    assert [(e.member, e.challenger) for e in disputed] == [(world.who["t3"].address,) * 2]
    refused(
        world.state,
        InvalidState,
        "batches: already disputed",
        world.as_("t3").challenge_missing,
        batch_id,
        left_out,
        receipt,
    )
    leaf = left_out.leaf(world.batches.domain)
    claim = world.as_("outsider").claim_missing
    world.chain.advance_time(WINDOW + 1)
    refused(world.state, InvalidState, "batches: disputes awaiting answers", world.as_("t0").finalize, batch_id)
    refused(world.state, InvalidState, "batches: answer window open", claim, batch_id, leaf)
    world.chain.advance_time(WINDOW)
    refused(world.state, InvalidState, "batches: disputes awaiting answers", world.as_("t0").finalize, batch_id)
    refused(
        world.state,
        InvalidState,
        "batches: no such dispute",
        claim,
        batch_id,
        world.signed("t0").leaf(world.batches.domain),
    )
    refused(
        world.state,
        DeadlinePassed,
        "batches: answer window closed",
        world.as_("relay").answer_missing,
        batch_id,
        leaf,
        0,
        [],
    )
    result = claim(batch_id, leaf)  # anyone may claim; the disputer is credited
    invalidated = [
        e for e in world.batches.events(from_block=result.receipt["blockNumber"]) if isinstance(e, BatchInvalidated)
    ]
    assert [(e.reason, e.challenger) for e in invalidated] == [("acknowledged leaf missing", world.who["t3"].address)]
    assert world.batches.batch(batch_id).status == BatchStatus.INVALID
    refused(world.state, InvalidState, "batches: batch not pending", claim, batch_id, leaf)


def test_an_answered_dispute_lets_the_batch_finalize(world: World) -> None:
    included = world.signed("t1")
    receipt = sign_receipt(world.who["relay"], world.batches.domain, included.leaf(world.batches.domain))
    batch_id, tree = world.post([world.signed("t0"), included])
    world.as_("t1").challenge_missing(batch_id, included, receipt)  # a false alarm: the leaf is there
    leaf = included.leaf(world.batches.domain)
    answer = world.as_("outsider").answer_missing
    refused(world.state, InvalidArgument, "batches: leaf not in batch", answer, batch_id, leaf, 0, tree.proof(0))
    refused(
        world.state,
        InvalidState,
        "batches: no such dispute",
        answer,
        batch_id,
        world.signed("t0").leaf(world.batches.domain),
        0,
        tree.proof(0),
    )
    result = answer(batch_id, leaf, 1, tree.proof(1))
    answered = [
        e for e in world.batches.events(from_block=result.receipt["blockNumber"]) if isinstance(e, MissingAnswered)
    ]
    assert [(e.batch_id, e.index) for e in answered] == [(batch_id, 1)]
    assert world.batches.batch(batch_id).open_disputes == 0
    refused(world.state, InvalidState, "batches: dispute answered", answer, batch_id, leaf, 1, tree.proof(1))
    refused(
        world.state,
        InvalidState,
        "batches: already disputed",
        world.as_("t1").challenge_missing,
        batch_id,
        included,
        receipt,
    )
    world.chain.advance_time(2 * WINDOW + 1)
    refused(world.state, InvalidState, "batches: dispute answered", world.as_("t1").claim_missing, batch_id, leaf)
    world.as_("t0").finalize(batch_id)
    assert world.batches.batch(batch_id).status == BatchStatus.FINALIZED


def test_missing_challenge_refusals(world: World) -> None:
    batch_id, _, left_out, receipt = _missing_setup(world)
    challenge = world.as_("t3").challenge_missing
    domain = world.batches.domain
    leaf = left_out.leaf(domain)
    by_other = sign_receipt(world.who["relay2"], domain, leaf)
    refused(
        world.state,
        InvalidArgument,
        "batches: receipt not signed by the relay",
        challenge,
        batch_id,
        left_out,
        by_other,
    )
    forged = world.signed("t3", signer="t0")
    refused(world.state, InvalidArgument, "batches: bad member signature", challenge, batch_id, forged, receipt)
    not_trainer = world.signed("validator")
    receipt_nt = sign_receipt(world.who["relay"], domain, not_trainer.leaf(domain))
    refused(
        world.state, InvalidArgument, "batches: signer is not a trainer", challenge, batch_id, not_trainer, receipt_nt
    )
    other_round = world.signed("t3", round_id=2)
    receipt_or = sign_receipt(world.who["relay"], domain, other_round.leaf(domain))
    refused(
        world.state,
        InvalidArgument,
        "batches: commitment for another round",
        challenge,
        batch_id,
        other_round,
        receipt_or,
    )
    world.chain.advance_time(WINDOW + 1)
    refused(world.state, DeadlinePassed, "batches: challenge window closed", challenge, batch_id, left_out, receipt)


# -- the same game on a real node -------------------------------------------------------------------------------


def test_a_batch_is_posted_challenged_and_settled_on_each_backend(ledger: Ledger) -> None:
    """On the embedded chain and on anvil: the contract's ecrecover and the revert reasons over JSON-RPC."""
    chain, relay, trainers = ledger.chain, ledger.members[0], ledger.members[1:]
    batches = CommitmentBatchesClient.deploy(chain, ledger.admin, ledger.consortium.address, window=WINDOW)

    def signed(account: LocalAccount, signer: LocalAccount) -> SignedCommitment:
        c = Commitment.of(task=TASK, round_id=1, member=account.address, update_hash=h("u"), num_examples=3)
        return SignedCommitment(c, sign_commitment(signer, batches.domain, replace(c, member=signer.address)).signature)

    good = [signed(t, t) for t in trainers]
    tree = MerkleTree([s.leaf(batches.domain) for s in good])
    batch_id = batches.as_(relay).post_batch(TASK, 1, tree.root, tree.count, BLOB)
    state = lambda: (chain.block_number, batches.batch(batch_id).status)  # noqa: E731
    challenge = batches.as_(ledger.outsider).challenge_forged
    refused(state, InvalidArgument, "batches: leaf is valid", challenge, batch_id, good[1], 1, tree.proof(1))
    chain.advance_time(WINDOW + 1)
    batches.as_(ledger.outsider).finalize(batch_id)
    assert batches.batch(batch_id).status == BatchStatus.FINALIZED
    bad = [*good[:2], signed(trainers[2], trainers[0])]
    bad_tree = MerkleTree([s.leaf(batches.domain) for s in bad])
    bad_id = batches.as_(relay).post_batch(TASK, 2, bad_tree.root, 3, BLOB)
    batches.as_(ledger.outsider).challenge_forged(bad_id, bad[2], 2, bad_tree.proof(2))
    assert batches.batch(bad_id).status == BatchStatus.INVALID
