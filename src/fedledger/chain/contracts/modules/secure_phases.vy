# pragma version ~=0.4.3
"""
@title Secure-aggregation phases
@custom:contract-name secure_phases
@notice The steps of a secure-aggregation round (Bonawitz et al., CCS 2017):
        KEYS (trainers post the hash of their key advert) -> SHARES (hash of
        their encrypted share bundle) -> OPEN (hash of their masked input) ->
        UNMASK (each committer posts the hash of its share reveal) -> AGGREGATE.
        Every step needs the previous one, and a step with fewer members than
        the round's threshold aborts the round.
@dev The trainers listed when a round opens are its members; its threshold is
     at least a strict majority of them (secrecy needs it). A round lists the
     trainers that have held the role without a break since before its opening
     block (the consortium's `trainer_since`), so opening stores nothing per
     trainer and a trainer revoked, or given the role again, later drops out of
     the round. Only hashes come here: the messages themselves are blobs in the
     store.
"""

from . import membership
from . import round_core

uses: (membership, round_core)


# A round's threshold, listed trainers and how many did each step.
struct SecureRound:
    threshold: uint256
    num_members: uint256
    opened_block: uint256  # it lists the trainers since before this block, with their registry keys read at it
    num_adverts: uint256
    num_bundles: uint256
    num_reveals: uint256
    graph_seed: bytes32  # public randomness fixed at the opening: it shuffles a large round's neighbour graph


# A member's part in a secure round, with its MemberView: what a secure node polls.
struct SecureView:
    view: round_core.MemberView
    secure: SecureRound
    listed: bool
    advertised: bool
    shared: bool
    revealed: bool


# One listed member's secure-aggregation messages in a round (zero hash: not posted).
struct SecureMessages:
    member: address
    advert_hash: bytes32
    bundle_hash: bytes32
    reveal_hash: bytes32


# A listed member's messages and its masked input's commitment (update_slot: index + 1, 0 for none).
struct SecurePeer:
    messages: SecureMessages
    update_slot: uint256
    update: round_core.Update


# The most trainers a secure round lists: the consortium's own bound. Large rounds mask over a sparse neighbour
# graph, so a member's work and reads grow with its neighbours, not with the listed trainers.
MAX_LISTED: constant(uint256) = membership.MAX_MEMBERS
# The most members one call about a member's neighbourhood names (its neighbours and theirs).
MAX_PEERS: constant(uint256) = 128

secagg_threshold: public(uint256)
# Per round: its counts (the trainers it listed are in the TrainersListed log of the opening block, which costs far
# less gas than storing them) and its members' message hashes.
secure_rounds: public(HashMap[uint256, SecureRound])
advert_hashes: HashMap[uint256, HashMap[address, bytes32]]
bundle_hashes: HashMap[uint256, HashMap[address, bytes32]]
reveal_hashes: HashMap[uint256, HashMap[address, bytes32]]


event KeysAdvertised:
    round_id: indexed(uint256)
    member: indexed(address)
    advert_hash: bytes32

event KeysClosed:
    round_id: indexed(uint256)
    num_adverts: uint256
    shares_deadline: uint256

event SharesPosted:
    round_id: indexed(uint256)
    member: indexed(address)
    bundle_hash: bytes32

event SharesClosed:
    round_id: indexed(uint256)
    num_bundles: uint256
    commit_deadline: uint256

event SharesRevealed:
    round_id: indexed(uint256)
    member: indexed(address)
    reveal_hash: bytes32

# The trainers a round listed, in listing order: members read them from this log of the opening block, in one
# read whatever their number, to compute the round's neighbour graph.
event TrainersListed:
    round_id: indexed(uint256)
    members: DynArray[address, MAX_LISTED]

event UnmaskClosed:
    round_id: indexed(uint256)
    num_reveals: uint256
    accepted_mask: uint256
    aggregate_deadline: uint256


@deploy
def __init__(secagg_threshold: uint256):
    """
    @notice Record the task's secure-aggregation threshold.
    @param secagg_threshold Fewest members whose messages unmask a round (raised to a strict
           majority of each round's trainers), 1..MAX_LISTED.
    """
    assert secagg_threshold >= 1 and secagg_threshold <= MAX_LISTED, "task: secagg threshold out of range"
    self.secagg_threshold = secagg_threshold


@external
def post_key_advert(round_id: uint256, advert_hash: bytes32):
    """
    @notice KEYS: commit the hash of this trainer's key advert (round public keys,
            authenticated by its registered identity key), once.
    @param round_id The current round, in key exchange.
    @param advert_hash sha256 of the advert blob.
    """
    # Only an active trainer has a nonzero `trainer_since`: one registry read answers both checks.
    since: uint256 = membership._trainer_since(msg.sender)
    assert since != 0, "task: caller is not a trainer"
    assert round_core._phase(round_id) == round_core.PHASE_KEYS, "task: round not in key exchange"
    assert block.timestamp <= round_core.rounds[round_id].commit_deadline, "task: key deadline passed"
    assert advert_hash != empty(bytes32), "task: zero hash"
    assert since < self.secure_rounds[round_id].opened_block, "task: trainer not listed for this round"
    assert self.advert_hashes[round_id][msg.sender] == empty(bytes32), "task: keys already advertised"
    self.advert_hashes[round_id][msg.sender] = advert_hash
    self.secure_rounds[round_id].num_adverts += 1
    log KeysAdvertised(round_id=round_id, member=msg.sender, advert_hash=advert_hash)


@external
def close_keys(round_id: uint256):
    """
    @notice End the key exchange (early once every listed trainer advertised,
            otherwise after the deadline); fewer adverts than the threshold abort.
    @param round_id The current round, in key exchange.
    """
    round_core._check_member(msg.sender)
    assert round_core._phase(round_id) == round_core.PHASE_KEYS, "task: round not in key exchange"
    s: SecureRound = self.secure_rounds[round_id]
    assert block.timestamp > round_core.rounds[round_id].commit_deadline or s.num_adverts >= s.num_members, \
        "task: key phase still running"
    if s.num_adverts < s.threshold:
        round_core._abort(round_id, "too few key adverts for the secagg threshold")
        return
    deadline: uint256 = self._next_step(round_id, round_core.PHASE_SHARES)
    log KeysClosed(round_id=round_id, num_adverts=s.num_adverts, shares_deadline=deadline)


@external
def post_share_bundle(round_id: uint256, bundle_hash: bytes32):
    """
    @notice SHARES: commit the hash of this trainer's bundle of encrypted secret
            shares, once; only trainers that advertised keys.
    @param round_id The current round, in share distribution.
    @param bundle_hash sha256 of the bundle blob.
    """
    assert membership._has_role(msg.sender, membership.ROLE_TRAINER), "task: caller is not a trainer"
    assert round_core._phase(round_id) == round_core.PHASE_SHARES, "task: round not in share distribution"
    assert block.timestamp <= round_core.rounds[round_id].commit_deadline, "task: share deadline passed"
    assert bundle_hash != empty(bytes32), "task: zero hash"
    assert self.advert_hashes[round_id][msg.sender] != empty(bytes32), "task: keys not advertised"
    assert self.bundle_hashes[round_id][msg.sender] == empty(bytes32), "task: shares already posted"
    self.bundle_hashes[round_id][msg.sender] = bundle_hash
    self.secure_rounds[round_id].num_bundles += 1
    log SharesPosted(round_id=round_id, member=msg.sender, bundle_hash=bundle_hash)


@external
def close_shares(round_id: uint256):
    """
    @notice End share distribution (early once every advertiser posted shares,
            otherwise after the deadline) and open commits of masked inputs;
            fewer bundles than the threshold abort.
    @param round_id The current round, in share distribution.
    """
    round_core._check_member(msg.sender)
    assert round_core._phase(round_id) == round_core.PHASE_SHARES, "task: round not in share distribution"
    s: SecureRound = self.secure_rounds[round_id]
    assert block.timestamp > round_core.rounds[round_id].commit_deadline or s.num_bundles >= s.num_adverts, \
        "task: share phase still running"
    if s.num_bundles < s.threshold:
        round_core._abort(round_id, "too few share bundles for the secagg threshold")
        return
    deadline: uint256 = self._next_step(round_id, round_core.PHASE_OPEN)
    # Commits close early once every member that shared has committed.
    round_core.rounds[round_id].expected_trainers = s.num_bundles
    log SharesClosed(round_id=round_id, num_bundles=s.num_bundles, commit_deadline=deadline)


@external
def submit_reveal(round_id: uint256, reveal_hash: bytes32):
    """
    @notice UNMASK: commit the hash of this committer's share reveal for the
            round's unmask request (survivors = committers), once.
    @param round_id The current round, in unmasking.
    @param reveal_hash sha256 of the reveal blob.
    """
    assert membership._has_role(msg.sender, membership.ROLE_TRAINER), "task: caller is not a trainer"
    assert round_core._phase(round_id) == round_core.PHASE_UNMASK, "task: round not in unmasking"
    assert block.timestamp <= round_core.rounds[round_id].validate_deadline, "task: unmask deadline passed"
    assert reveal_hash != empty(bytes32), "task: zero hash"
    assert round_core.commit_slot[round_id][msg.sender] != 0, "task: no masked input committed"
    assert self.reveal_hashes[round_id][msg.sender] == empty(bytes32), "task: shares already revealed"
    self.reveal_hashes[round_id][msg.sender] = reveal_hash
    self.secure_rounds[round_id].num_reveals += 1
    log SharesRevealed(round_id=round_id, member=msg.sender, reveal_hash=reveal_hash)


@external
def close_unmask(round_id: uint256):
    """
    @notice End unmasking (early once every committer revealed, otherwise after the
            deadline): every committed masked input goes to aggregation, which treats
            malformed ones as dropouts. Fewer reveals than the threshold abort.
    @param round_id The current round, in unmasking.
    """
    round_core._check_member(msg.sender)
    assert round_core._phase(round_id) == round_core.PHASE_UNMASK, "task: round not in unmasking"
    num_updates: uint256 = round_core.rounds[round_id].num_updates
    reveals: uint256 = self.secure_rounds[round_id].num_reveals
    assert block.timestamp > round_core.rounds[round_id].validate_deadline or reveals >= num_updates, \
        "task: unmask phase still running"
    if reveals < self.secure_rounds[round_id].threshold:
        round_core._abort(round_id, "too few reveals for the secagg threshold")
        return
    words: uint256[round_core.ACCEPTED_WORDS] = round_core._every_update(num_updates)
    deadline: uint256 = round_core._start_aggregation(round_id, words, num_updates)
    log UnmaskClosed(round_id=round_id, num_reveals=reveals, accepted_mask=words[0], aggregate_deadline=deadline)


@view
@external
def secure_view(member: address) -> SecureView:
    """
    @notice `member_view` plus `member`'s part in the current secure round, in one call.
    @param member The member.
    @return Its view.
    """
    round_id: uint256 = round_core.current_round
    # Listed: a trainer without a break since a block before the opening (0 before any round: nobody).
    since: uint256 = membership._trainer_since(member)
    return SecureView(
        view=round_core._member_view(member),
        secure=self.secure_rounds[round_id],
        listed=since != 0 and since < self.secure_rounds[round_id].opened_block,
        advertised=self.advert_hashes[round_id][member] != empty(bytes32),
        shared=self.bundle_hashes[round_id][member] != empty(bytes32),
        revealed=self.reveal_hashes[round_id][member] != empty(bytes32),
    )


@view
@external
def secure_adverts(round_id: uint256, members: DynArray[address, MAX_PEERS]) -> DynArray[bytes32, MAX_PEERS]:
    """
    @notice `members`' key advert hashes in a secure round: what a member of a large round reads about
            its neighbours' neighbours, one word each.
    @param round_id The round.
    @param members The members asked about.
    @return One hash per member asked about, in the same order (zero where none).
    """
    result: DynArray[bytes32, MAX_PEERS] = []
    for who: address in members:
        result.append(self.advert_hashes[round_id][who])
    return result


@view
@external
def secure_peers(round_id: uint256, members: DynArray[address, MAX_PEERS]) -> DynArray[SecurePeer, MAX_PEERS]:
    """
    @notice `members`' message hashes and masked-input commitments in a secure round: what
            one member of a large round reads about its neighbourhood, in one call.
    @param round_id The round.
    @param members The members asked about.
    @return One entry per member asked about, in the same order (zero where it posted nothing).
    """
    result: DynArray[SecurePeer, MAX_PEERS] = []
    for who: address in members:
        slot: uint256 = round_core.commit_slot[round_id][who]
        update: round_core.Update = empty(round_core.Update)
        if slot != 0:
            update = round_core.updates[round_id][slot - 1]
        result.append(SecurePeer(messages=self._messages(round_id, who), update_slot=slot, update=update))
    return result


@view
@internal
def _messages(round_id: uint256, who: address) -> SecureMessages:
    """
    @notice `who`'s message hashes in a round.
    @param round_id The round.
    @param who The member.
    @return Its hashes (zero where not posted).
    """
    return SecureMessages(
        member=who,
        advert_hash=self.advert_hashes[round_id][who],
        bundle_hash=self.bundle_hashes[round_id][who],
        reveal_hash=self.reveal_hashes[round_id][who],
    )


@internal
def _list_trainers(round_id: uint256) -> uint256:
    """
    @notice List the round's members, the trainers since before this block, and set its
            threshold: at least a strict majority of them.
    @param round_id The round that opens.
    @return How many were listed.
    """
    listed: DynArray[address, MAX_LISTED] = membership._trainers_before(block.number)
    count: uint256 = len(listed)
    log TrainersListed(round_id=round_id, members=listed)
    self.secure_rounds[round_id] = SecureRound(
        threshold=max(self.secagg_threshold, count // 2 + 1),
        num_members=count,
        opened_block=block.number,
        num_adverts=0,
        num_bundles=0,
        num_reveals=0,
        graph_seed=blockhash(block.number - 1),
    )
    return count


@view
@internal
def _check_commit(round_id: uint256):
    """
    @notice Only members whose shares are out may commit a masked input.
    @param round_id The round.
    """
    assert self.bundle_hashes[round_id][msg.sender] != empty(bytes32), "task: shares not posted"


@internal
def _close_commits(round_id: uint256, num_updates: uint256):
    """
    @notice Move a round from masked-input commits to unmasking; fewer inputs than the
            threshold abort it.
    @param round_id The round.
    @param num_updates How many masked inputs were committed.
    """
    if num_updates < self.secure_rounds[round_id].threshold:
        round_core._abort(round_id, "too few masked inputs for the secagg threshold")
        return
    round_core._close_commits(round_id, num_updates, round_core.PHASE_UNMASK, empty(bytes32))


@internal
def _next_step(round_id: uint256, phase: uint8) -> uint256:
    """
    @notice Move a round to the next pre-commit step, which lasts a commit duration.
    @param round_id The round.
    @param phase SHARES or OPEN.
    @return The step's deadline.
    """
    deadline: uint256 = block.timestamp + round_core.commit_duration
    round_core.rounds[round_id].phase = phase
    round_core.rounds[round_id].commit_deadline = deadline
    return deadline
