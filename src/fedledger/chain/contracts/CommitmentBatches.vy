# pragma version ~=0.4.3
"""
@title fedledger commitment batches
@notice Training commitments of a large round, posted as one Merkle root. Each
        trainer signs its commitment (EIP-712, domain bound to this contract and
        the chain id) and hands it to a relay, an aggregator of the consortium;
        the relay posts the root of all the round's signed commitments and the
        hash of the blob that lists them. During the challenge window anyone
        may show the batch is bad, and the contract checks the evidence itself:
        a listed leaf whose signature is not its trainer's (or is for another
        round), a trainer listed twice, or a commitment the relay acknowledged
        (a signed receipt) that the relay cannot show in the tree before the
        answer deadline (then `claim_missing` invalidates it). A bad batch is
        invalidated for good, its relay barred from the round, and another
        aggregator may post the round's batch; a good one is finalized after
        the window, once no dispute is open.
@dev Leaves sit in index order in a tree padded with zero leaves to a power of
     two; a leaf is keccak256(0x00 ++ digest ++ keccak256(signature)) and a
     node keccak256(0x01 ++ left ++ right), so a node never passes for a leaf
     and a signature cannot be swapped under a listed commitment. The digest is
     the EIP-712 hash of the Commitment struct. Windows are in seconds of
     block time, as every other deadline of the task contracts: block time
     advances even when no transaction is sent. Signatures with a high `s`
     (EIP-2) or a `v` other than 27/28 count as forged, so one commitment has
     one leaf. Trainer status is read from the consortium when a challenge is
     made: a trainer revoked during the window makes its leaf challengeable.
"""

from interfaces import IConsortium

ROLE_TRAINER: constant(uint256) = 2
ROLE_AGGREGATOR: constant(uint256) = 8

STATUS_NONE: constant(uint8) = 0
STATUS_PENDING: constant(uint8) = 1
STATUS_FINALIZED: constant(uint8) = 2
STATUS_INVALID: constant(uint8) = 3

MAX_DEPTH: constant(uint256) = 20
# Leaves one delivery hands to a task: about 150,000 gas each, so that a chunk fits a 30 M gas block (and the
# memory its arrays reserve stays cheap). A larger round is delivered in several chunks.
MAX_DELIVERY: constant(uint256) = 128
# A task's revert reason, ABI-encoded as Error(string): selector, offset, length and up to 96 bytes of text.
MAX_REASON_DATA: constant(uint256) = 164
MAX_LEAVES: constant(uint256) = 1048576  # 2 ** MAX_DEPTH
# secp256k1 order / 2: a larger `s` is the malleable twin of a valid signature (EIP-2).
HALF_ORDER: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
COMMITMENT_TYPEHASH: constant(bytes32) = keccak256(
    "Commitment(address task,uint256 round,address member,bytes32 updateHash,uint256 numExamples,uint256 datasetId,"
    "uint256 epsilonMicro)"
)
RECEIPT_TYPEHASH: constant(bytes32) = keccak256("Receipt(bytes32 leaf)")
DOMAIN_NAME_HASH: constant(bytes32) = keccak256("fedledger-batches")
DOMAIN_VERSION_HASH: constant(bytes32) = keccak256("1")


struct Commitment:
    task: address
    round_id: uint256
    member: address
    update_hash: bytes32
    num_examples: uint256
    dataset_id: uint256
    epsilon_micro: uint256


struct Batch:
    task: address
    round_id: uint256
    relay: address
    root: bytes32
    count: uint256
    leaves_blob: bytes32
    challenge_deadline: uint256
    status: uint8
    open_disputes: uint256


consortium: public(immutable(IConsortium))
window: public(immutable(uint256))
domain_separator: public(immutable(bytes32))
batch_count: public(uint256)
batches: HashMap[uint256, Batch]
# task -> round -> the batch that stands for it (pending or finalized); 0: none
current: HashMap[address, HashMap[uint256, uint256]]
# task -> round -> relay -> caught with a bad batch in that round
barred: HashMap[address, HashMap[uint256, HashMap[address, bool]]]
# batch -> leaf -> who disputed it as missing (zero: never disputed; a leaf is disputed once)
disputer: HashMap[uint256, HashMap[bytes32, address]]
# batch -> leaf -> its dispute was answered with a proof
answered: HashMap[uint256, HashMap[bytes32, bool]]
# batch -> every leaf was handed to its task
delivered: public(HashMap[uint256, bool])
# batch -> the position of the next leaf to hand to its task (leaves go in tree order, each once)
next_leaf: public(HashMap[uint256, uint256])
# The trainer whose leaf is being handed to a task now (zero outside `deliver`): the task asks who commits.
delivering: public(address)


event BatchPosted:
    batch_id: indexed(uint256)
    task: indexed(address)
    round_id: indexed(uint256)
    relay: address
    root: bytes32
    count: uint256
    leaves_blob: bytes32
    challenge_deadline: uint256

event MissingDisputed:
    batch_id: indexed(uint256)
    leaf: indexed(bytes32)
    member: address
    challenger: address

event MissingAnswered:
    batch_id: indexed(uint256)
    leaf: indexed(bytes32)
    index: uint256

event BatchInvalidated:
    batch_id: indexed(uint256)
    reason: String[64]
    challenger: address

event LeafRejected:
    batch_id: indexed(uint256)
    member: indexed(address)
    index: uint256
    reason: String[96]

event BatchDelivered:
    batch_id: indexed(uint256)
    task: indexed(address)
    round_id: indexed(uint256)
    first: uint256
    accepted: uint256
    rejected: uint256

event BatchFinalized:
    batch_id: indexed(uint256)
    task: indexed(address)
    round_id: indexed(uint256)
    root: bytes32
    count: uint256


@deploy
def __init__(consortium_address: address, window_seconds: uint256):
    """
    @notice Create the batch board of a consortium.
    @param consortium_address The Consortium contract whose trainers sign and whose aggregators relay.
    @param window_seconds Seconds of block time a batch stays open to challenges (and then to answers).
    """
    assert consortium_address != empty(address), "batches: zero consortium address"
    assert window_seconds > 0, "batches: zero window"
    consortium = IConsortium(consortium_address)
    window = window_seconds
    domain_separator = keccak256(
        abi_encode(DOMAIN_TYPEHASH, DOMAIN_NAME_HASH, DOMAIN_VERSION_HASH, chain.id, self)
    )


@external
def post_batch(task: address, round_id: uint256, root: bytes32, count: uint256, leaves_blob: bytes32) -> uint256:
    """
    @notice Post the Merkle root of a round's signed commitments, as its relay.
    @param task The task the commitments are for.
    @param round_id The round they are for.
    @param root Root of the index-ordered tree of `count` leaves.
    @param count Number of leaves (signed commitments).
    @param leaves_blob sha256 of the store blob that lists the signed commitments.
    @return The new batch id (from 1).
    """
    assert staticcall consortium.has_role(msg.sender, ROLE_AGGREGATOR), "batches: caller is not an aggregator"
    assert task != empty(address), "batches: zero task address"
    assert root != empty(bytes32), "batches: zero root"
    assert leaves_blob != empty(bytes32), "batches: zero leaves blob"
    assert count > 0 and count <= MAX_LEAVES, "batches: leaf count out of range"
    assert self.current[task][round_id] == 0, "batches: round already has a batch"
    assert not self.barred[task][round_id][msg.sender], "batches: relay was caught in this round"
    batch_id: uint256 = self.batch_count + 1
    self.batch_count = batch_id
    deadline: uint256 = block.timestamp + window
    self.batches[batch_id] = Batch(
        task=task,
        round_id=round_id,
        relay=msg.sender,
        root=root,
        count=count,
        leaves_blob=leaves_blob,
        challenge_deadline=deadline,
        status=STATUS_PENDING,
        open_disputes=0,
    )
    self.current[task][round_id] = batch_id
    log BatchPosted(
        batch_id=batch_id,
        task=task,
        round_id=round_id,
        relay=msg.sender,
        root=root,
        count=count,
        leaves_blob=leaves_blob,
        challenge_deadline=deadline,
    )
    return batch_id


@external
def challenge_forged(
    batch_id: uint256,
    leaf: Commitment,
    signature: Bytes[65],
    index: uint256,
    proof: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice Invalidate a batch that lists a leaf no trainer signed for its round.
    @param batch_id The batch.
    @param leaf The listed commitment.
    @param signature The signature listed with it.
    @param index Its position in the tree.
    @param proof Sibling hashes from the leaf up to the root.
    """
    self._check_challengeable(batch_id)
    digest: bytes32 = self._digest(leaf)
    self._check_included(batch_id, self._leaf_hash(digest, keccak256(signature)), index, proof)
    batch: Batch = self.batches[batch_id]
    reason: String[64] = ""
    if leaf.task != batch.task or leaf.round_id != batch.round_id:
        reason = "leaf for another round"
    elif self._signer(digest, signature) != leaf.member:
        reason = "forged signature"
    elif not staticcall consortium.has_role(leaf.member, ROLE_TRAINER):
        reason = "signer is not a trainer"
    assert reason != "", "batches: leaf is valid"
    self._invalidate(batch_id, reason, msg.sender)


@external
def challenge_duplicate(
    batch_id: uint256,
    first: Commitment,
    first_signature_hash: bytes32,
    first_index: uint256,
    first_proof: DynArray[bytes32, MAX_DEPTH],
    second: Commitment,
    second_signature_hash: bytes32,
    second_index: uint256,
    second_proof: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice Invalidate a batch that lists one trainer twice (its update would count twice).
    @param batch_id The batch.
    @param first One listed commitment.
    @param first_signature_hash keccak256 of the signature listed with it.
    @param first_index Its position.
    @param first_proof Its sibling hashes.
    @param second Another listed commitment of the same member.
    @param second_signature_hash keccak256 of the signature listed with it.
    @param second_index Its position.
    @param second_proof Its sibling hashes.
    """
    self._check_challengeable(batch_id)
    assert first_index != second_index, "batches: same position"
    assert first.member == second.member, "batches: members differ"
    self._check_included(batch_id, self._leaf_hash(self._digest(first), first_signature_hash), first_index, first_proof)
    self._check_included(
        batch_id, self._leaf_hash(self._digest(second), second_signature_hash), second_index, second_proof
    )
    self._invalidate(batch_id, "member listed twice", msg.sender)


@external
def challenge_missing(batch_id: uint256, leaf: Commitment, signature: Bytes[65], receipt: Bytes[65]):
    """
    @notice Dispute a batch that leaves out a commitment its relay acknowledged. The relay (or
            anyone) must show the leaf in the tree before the answer deadline, or the batch falls.
    @param batch_id The batch.
    @param leaf The trainer's commitment.
    @param signature The trainer's signature of it.
    @param receipt The relay's EIP-712 signature of Receipt(leaf hash).
    """
    self._check_challengeable(batch_id)
    batch: Batch = self.batches[batch_id]
    assert leaf.task == batch.task and leaf.round_id == batch.round_id, "batches: commitment for another round"
    digest: bytes32 = self._digest(leaf)
    assert self._signer(digest, signature) == leaf.member, "batches: bad member signature"
    assert staticcall consortium.has_role(leaf.member, ROLE_TRAINER), "batches: signer is not a trainer"
    leaf_hash: bytes32 = self._leaf_hash(digest, keccak256(signature))
    receipt_digest: bytes32 = keccak256(
        concat(x"1901", domain_separator, keccak256(abi_encode(RECEIPT_TYPEHASH, leaf_hash)))
    )
    assert self._signer(receipt_digest, receipt) == batch.relay, "batches: receipt not signed by the relay"
    assert self.disputer[batch_id][leaf_hash] == empty(address), "batches: already disputed"
    self.disputer[batch_id][leaf_hash] = msg.sender
    self.batches[batch_id].open_disputes = batch.open_disputes + 1
    log MissingDisputed(batch_id=batch_id, leaf=leaf_hash, member=leaf.member, challenger=msg.sender)


@external
def answer_missing(batch_id: uint256, leaf_hash: bytes32, index: uint256, proof: DynArray[bytes32, MAX_DEPTH]):
    """
    @notice Close a missing-leaf dispute by showing the leaf in the tree; anyone may answer.
    @param batch_id The batch.
    @param leaf_hash The disputed leaf.
    @param index Its position.
    @param proof Its sibling hashes.
    """
    self._check_open_dispute(batch_id, leaf_hash)
    assert block.timestamp <= self.batches[batch_id].challenge_deadline + window, "batches: answer window closed"
    self._check_included(batch_id, leaf_hash, index, proof)
    self.answered[batch_id][leaf_hash] = True
    self.batches[batch_id].open_disputes -= 1
    log MissingAnswered(batch_id=batch_id, leaf=leaf_hash, index=index)


@external
def claim_missing(batch_id: uint256, leaf_hash: bytes32):
    """
    @notice Invalidate a batch whose missing-leaf dispute went unanswered past the answer
            deadline; the leaf's disputer is credited. Anyone may call it.
    @param batch_id The batch.
    @param leaf_hash The disputed leaf that no proof showed.
    """
    self._check_open_dispute(batch_id, leaf_hash)
    assert block.timestamp > self.batches[batch_id].challenge_deadline + window, "batches: answer window open"
    self._invalidate(batch_id, "acknowledged leaf missing", self.disputer[batch_id][leaf_hash])


@external
def finalize(batch_id: uint256):
    """
    @notice Finalize a batch once its challenge window is over and no dispute is open. Anyone
            may call it, once.
    @param batch_id The batch.
    """
    assert self.batches[batch_id].status == STATUS_PENDING, "batches: batch not pending"
    self._finalize(batch_id)


@external
def deliver(
    batch_id: uint256,
    first: uint256,
    leaves: DynArray[Commitment, MAX_DELIVERY],
    signature_hashes: DynArray[bytes32, MAX_DELIVERY],
    proof: DynArray[bytes32, MAX_DEPTH],
):
    """
    @notice Hand a batch's leaves to its task, in tree order and each once: they become the round's
            commitments. A pending batch is finalized first (so its window must be over). Leaves go
            in chunks, so that a round of any size fits the block gas limit: a chunk is the leaves
            of one aligned subtree (its size a power of two, `first` a multiple of it; the last one
            may stop at the batch's count), shown in the posted root by the sibling hashes above it.
            Each leaf is committed under the task's own rules (`commit_update`, for the trainer who
            signed it); a leaf the task refuses is logged with the task's reason and the others
            stand. Anyone may call it.
    @param batch_id The batch.
    @param first The position of the chunk's first leaf: the next leaf not delivered yet.
    @param leaves The chunk's signed commitments, in tree order (the listing's).
    @param signature_hashes keccak256 of each leaf's signature, in the same order.
    @param proof Sibling hashes from the chunk's subtree up to the root.
    """
    if self.batches[batch_id].status == STATUS_PENDING:
        self._finalize(batch_id)
    batch: Batch = self.batches[batch_id]
    assert batch.status == STATUS_FINALIZED, "batches: batch not finalized"
    assert first == self.next_leaf[batch_id] and first < batch.count, "batches: leaves delivered out of order"
    n: uint256 = len(leaves)
    levels: uint256 = self._depth(n)
    size: uint256 = 1 << levels
    assert n > 0 and len(signature_hashes) == n and first % size == 0, "batches: chunk not aligned"
    assert n == size or first + n == batch.count, "batches: chunk not aligned"
    assert len(proof) + levels == self._depth(batch.count), "batches: proof length wrong"
    subtree: bytes32 = self._root_of(leaves, signature_hashes)
    assert self._root_from(subtree, first >> levels, proof) == batch.root, "batches: leaves do not rebuild the root"
    self.next_leaf[batch_id] = first + n
    self.delivered[batch_id] = first + n == batch.count
    accepted: uint256 = 0
    for i: uint256 in range(n, bound=MAX_DELIVERY):
        leaf: Commitment = leaves[i]
        reason: String[96] = "leaf for another round"
        if leaf.task == batch.task and leaf.round_id == batch.round_id:
            reason = self._commit_leaf(batch.task, leaf)
        if reason == "":
            accepted += 1
        else:
            log LeafRejected(batch_id=batch_id, member=leaf.member, index=first + i, reason=reason)
    self.delivering = empty(address)
    log BatchDelivered(
        batch_id=batch_id,
        task=batch.task,
        round_id=batch.round_id,
        first=first,
        accepted=accepted,
        rejected=n - accepted,
    )


@view
@external
def batch(batch_id: uint256) -> Batch:
    """
    @notice A posted batch's record.
    @param batch_id The batch id (from 1).
    @return Its record.
    """
    assert batch_id >= 1 and batch_id <= self.batch_count, "batches: unknown batch"
    return self.batches[batch_id]


@view
@external
def current_batch(task: address, round_id: uint256) -> uint256:
    """
    @notice The batch that stands for a round (pending or finalized); 0 when none.
    @param task The task.
    @param round_id The round.
    @return The batch id, or 0.
    """
    return self.current[task][round_id]


@view
@external
def is_barred(task: address, round_id: uint256, relay: address) -> bool:
    """
    @notice Whether `relay` had a batch of this round invalidated (it may not post another).
    @param task The task.
    @param round_id The round.
    @param relay The aggregator.
    @return True when barred.
    """
    return self.barred[task][round_id][relay]


@view
@external
def includes(batch_id: uint256, leaf: bytes32, index: uint256, proof: DynArray[bytes32, MAX_DEPTH]) -> bool:
    """
    @notice Whether `leaf` sits at `index` of a batch's tree (what the challenges check).
    @param batch_id The batch.
    @param leaf The leaf hash.
    @param index Its position.
    @param proof Sibling hashes from the leaf up.
    @return True when the proof leads to the batch's root.
    """
    count: uint256 = self.batches[batch_id].count
    if index >= count or len(proof) != self._depth(count):
        return False
    return self._root_from(leaf, index, proof) == self.batches[batch_id].root


@view
@external
def commitment_digest(leaf: Commitment) -> bytes32:
    """
    @notice The EIP-712 digest a trainer signs for `leaf`.
    @param leaf The commitment.
    @return Its digest.
    """
    return self._digest(leaf)


@view
@internal
def _digest(leaf: Commitment) -> bytes32:
    """
    @notice The EIP-712 digest of a commitment under this contract's domain.
    @param leaf The commitment.
    @return keccak256(0x1901 ++ domain separator ++ struct hash).
    """
    struct_hash: bytes32 = keccak256(
        abi_encode(
            COMMITMENT_TYPEHASH,
            leaf.task,
            leaf.round_id,
            leaf.member,
            leaf.update_hash,
            leaf.num_examples,
            leaf.dataset_id,
            leaf.epsilon_micro,
        )
    )
    return keccak256(concat(x"1901", domain_separator, struct_hash))


@pure
@internal
def _leaf_hash(digest: bytes32, signature_hash: bytes32) -> bytes32:
    """
    @notice A tree leaf: a signed commitment, tagged so no inner node passes for one.
    @param digest The commitment's EIP-712 digest.
    @param signature_hash keccak256 of its signature.
    @return keccak256(0x00 ++ digest ++ signature_hash).
    """
    return keccak256(concat(x"00", digest, signature_hash))


@pure
@internal
def _signer(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @notice Who signed `digest`; the zero address for a malformed or malleable signature.
    @param digest The signed hash.
    @param signature r ++ s ++ v (65 bytes).
    @return The recovered address, or the zero address.
    """
    if len(signature) != 65:
        return empty(address)
    r: uint256 = convert(extract32(signature, 0), uint256)
    s: uint256 = convert(extract32(signature, 32), uint256)
    v: uint256 = convert(slice(signature, 64, 1), uint256)
    if (v != 27 and v != 28) or s == 0 or s > HALF_ORDER:
        return empty(address)
    return ecrecover(digest, v, r, s)


@view
@internal
def _check_challengeable(batch_id: uint256):
    """
    @notice Refuse a challenge of a batch that is not pending or whose challenge window closed.
    @param batch_id The batch.
    """
    assert self.batches[batch_id].status == STATUS_PENDING, "batches: batch not pending"
    assert block.timestamp <= self.batches[batch_id].challenge_deadline, "batches: challenge window closed"


@view
@internal
def _check_open_dispute(batch_id: uint256, leaf_hash: bytes32):
    """
    @notice Refuse unless the batch is pending and `leaf_hash` is disputed and not answered.
    @param batch_id The batch.
    @param leaf_hash The leaf.
    """
    assert self.batches[batch_id].status == STATUS_PENDING, "batches: batch not pending"
    assert self.disputer[batch_id][leaf_hash] != empty(address), "batches: no such dispute"
    assert not self.answered[batch_id][leaf_hash], "batches: dispute answered"


@view
@internal
def _check_included(batch_id: uint256, leaf: bytes32, index: uint256, proof: DynArray[bytes32, MAX_DEPTH]):
    """
    @notice Refuse unless `leaf` sits at `index` of the batch's tree.
    @param batch_id The batch.
    @param leaf The leaf hash.
    @param index Its claimed position (below the batch's count).
    @param proof Sibling hashes, one per level, from the leaf up.
    """
    count: uint256 = self.batches[batch_id].count
    assert index < count, "batches: index out of range"
    assert len(proof) == self._depth(count), "batches: proof length wrong"
    assert self._root_from(leaf, index, proof) == self.batches[batch_id].root, "batches: leaf not in batch"


@pure
@internal
def _depth(count: uint256) -> uint256:
    """
    @notice Levels of a tree of `count` leaves padded to a power of two: the proof length.
    @param count The leaf count (1 to MAX_LEAVES).
    @return The smallest d with 2**d >= count.
    """
    depth: uint256 = 0
    for level: uint256 in range(MAX_DEPTH):
        if 1 << depth >= count:
            break
        depth += 1
    return depth


@pure
@internal
def _root_from(leaf: bytes32, index: uint256, proof: DynArray[bytes32, MAX_DEPTH]) -> bytes32:
    """
    @notice The root a proof leads to from `leaf` at `index`.
    @param leaf The leaf hash.
    @param index Its position: its bits say on which side each sibling sits.
    @param proof Sibling hashes from the leaf up.
    @return The root.
    """
    node: bytes32 = leaf
    position: uint256 = index
    for sibling: bytes32 in proof:
        if position % 2 == 0:
            node = keccak256(concat(x"01", node, sibling))
        else:
            node = keccak256(concat(x"01", sibling, node))
        position = position >> 1
    return node


@internal
def _finalize(batch_id: uint256):
    """
    @notice Finalize a pending batch whose challenge window is over and whose disputes are all answered.
    @param batch_id The batch (pending).
    """
    batch: Batch = self.batches[batch_id]
    assert block.timestamp > batch.challenge_deadline, "batches: challenge window open"
    assert batch.open_disputes == 0, "batches: disputes awaiting answers"
    self.batches[batch_id].status = STATUS_FINALIZED
    log BatchFinalized(batch_id=batch_id, task=batch.task, round_id=batch.round_id, root=batch.root, count=batch.count)


@view
@internal
def _root_of(
    leaves: DynArray[Commitment, MAX_DELIVERY], signature_hashes: DynArray[bytes32, MAX_DELIVERY]
) -> bytes32:
    """
    @notice The root of the index-ordered tree (or subtree) of these signed commitments, padded with zero
            leaves to a power of two (as the relay built it).
    @param leaves The commitments, in tree order (at least one).
    @param signature_hashes keccak256 of their signatures.
    @return The root.
    """
    width: uint256 = 1 << self._depth(len(leaves))
    level: DynArray[bytes32, MAX_DELIVERY] = []
    for i: uint256 in range(width, bound=MAX_DELIVERY):
        if i < len(leaves):
            level.append(self._leaf_hash(self._digest(leaves[i]), signature_hashes[i]))
        else:
            level.append(empty(bytes32))
    for depth: uint256 in range(MAX_DEPTH):
        if width == 1:
            break
        width = width >> 1
        for i: uint256 in range(width, bound=MAX_DELIVERY // 2):
            level[i] = keccak256(concat(x"01", level[2 * i], level[2 * i + 1]))
    return level[0]


@internal
def _commit_leaf(task: address, leaf: Commitment) -> String[96]:
    """
    @notice Commit one leaf to its task for the trainer who signed it, without reverting the delivery.
    @param task The batch's task.
    @param leaf The commitment.
    @return "" when the task recorded it, otherwise the task's revert reason ("task refused the leaf"
            when the task gave none).
    """
    self.delivering = leaf.member
    ok: bool = False
    response: Bytes[MAX_REASON_DATA] = b""
    ok, response = raw_call(
        task,
        abi_encode(
            leaf.round_id,
            leaf.update_hash,
            leaf.num_examples,
            leaf.dataset_id,
            leaf.epsilon_micro,
            method_id=method_id("commit_update(uint256,bytes32,uint256,uint256,uint256)"),
        ),
        max_outsize=MAX_REASON_DATA,
        revert_on_failure=False,
    )
    if ok:
        return ""
    # Only a whole Error(string) of at most 96 bytes is decoded: anything else would revert the delivery.
    if len(response) < 68 or slice(response, 0, 4) != method_id("Error(string)"):
        return "task refused the leaf"
    length: uint256 = convert(extract32(response, 36), uint256)
    if extract32(response, 4) != convert(32, bytes32) or length > 96 or len(response) < 68 + length:
        return "task refused the leaf"
    return abi_decode(slice(response, 4, len(response) - 4), String[96])


@internal
def _invalidate(batch_id: uint256, reason: String[64], challenger: address):
    """
    @notice Mark a batch invalid, free its round for another relay and bar this one from it.
    @param batch_id The batch.
    @param reason What was wrong with it.
    @param challenger Who showed it.
    """
    batch: Batch = self.batches[batch_id]
    self.batches[batch_id].status = STATUS_INVALID
    self.current[batch.task][batch.round_id] = 0
    self.barred[batch.task][batch.round_id][batch.relay] = True
    log BatchInvalidated(batch_id=batch_id, reason=reason, challenger=challenger)
