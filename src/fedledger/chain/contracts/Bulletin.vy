# pragma version ~=0.4.3
"""
@title fedledger bulletin
@notice An auditable noticeboard of the consortium: an active member posts the
        hash of a blob (kept in the content-addressed store) under a task, a
        round and a topic, once per (task, round, topic, poster). The first
        topic is "metrics" (each member's evaluation of a round's global model
        on its own holdout data); others, such as consortium statistics for
        data preparation, use the same board.
@dev Only hashes come here, never data, metrics or weights. A topic is the
     keccak256 of its canonical name (for example keccak256("metrics")). The
     board does not check that `task` is a TrainingTask nor that the round
     exists: readers check a post against the task they read it for, and a
     post can never be changed or withdrawn, so what a member posted stays
     on record. A zero blob hash means "not posted" and is refused.
"""

from interfaces import IConsortium


consortium: public(IConsortium)
# task -> round -> topic -> poster -> blob hash (zero: not posted)
posts: HashMap[address, HashMap[uint256, HashMap[bytes32, HashMap[address, bytes32]]]]


event Posted:
    poster: address
    task: indexed(address)
    round_id: indexed(uint256)
    topic: indexed(bytes32)
    blob_hash: bytes32


@deploy
def __init__(consortium: address):
    """
    @notice Create the bulletin of `consortium`.
    @param consortium The Consortium contract whose active members may post.
    """
    assert consortium != empty(address), "bulletin: zero consortium address"
    self.consortium = IConsortium(consortium)


@external
def post(task: address, round_id: uint256, topic: bytes32, blob_hash: bytes32):
    """
    @notice Post the hash of a blob under (task, round, topic); once per poster.
    @param task The task the post is about (a TrainingTask address).
    @param round_id The round of the task the post is about.
    @param topic keccak256 of the topic's canonical name (e.g. "metrics").
    @param blob_hash sha256 of the blob in the store.
    """
    assert staticcall self.consortium.is_active(msg.sender), "bulletin: not a member"
    assert task != empty(address), "bulletin: zero task address"
    assert topic != empty(bytes32), "bulletin: zero topic"
    assert blob_hash != empty(bytes32), "bulletin: zero blob hash"
    assert self.posts[task][round_id][topic][msg.sender] == empty(bytes32), "bulletin: already posted"
    self.posts[task][round_id][topic][msg.sender] = blob_hash
    log Posted(poster=msg.sender, task=task, round_id=round_id, topic=topic, blob_hash=blob_hash)


@view
@external
def posted(task: address, round_id: uint256, topic: bytes32, poster: address) -> bytes32:
    """
    @notice The blob hash `poster` posted under (task, round, topic); zero when none.
    @param task The task address.
    @param round_id The round.
    @param topic keccak256 of the topic's name.
    @param poster The member.
    @return The posted blob hash, or zero.
    """
    return self.posts[task][round_id][topic][poster]
