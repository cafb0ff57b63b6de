# pragma version ~=0.4.3
"""
@title Round core
@custom:contract-name round_core
@notice A task's configuration commitment and its rounds: opening, update
        commitments, aggregate proposals and finalization. Both task kinds
        share it; what happens between commits and aggregation (validation, or
        the secure-aggregation unmasking) is the deployed contract's.
@dev Rounds only move forward: NONE -> OPEN -> (the kind's middle phases) ->
     AGGREGATE -> FINALIZED, or ABORTED when a quorum is missed. A round
     finalizes when `proposal_quorum` aggregators propose the same model hash
     over the accepted set the contract derived. Weights and data never come
     here: only hashes.
"""

from . import membership

uses: membership

PHASE_NONE: constant(uint8) = 0
PHASE_OPEN: constant(uint8) = 1
PHASE_VALIDATE: constant(uint8) = 2
PHASE_AGGREGATE: constant(uint8) = 3
PHASE_FINALIZED: constant(uint8) = 4
PHASE_ABORTED: constant(uint8) = 5
PHASE_KEYS: constant(uint8) = 6
PHASE_SHARES: constant(uint8) = 7
PHASE_UNMASK: constant(uint8) = 8

# Updates per round: a consortium's every member may commit in one round.
MAX_UPDATES: constant(uint256) = 1024
# The accepted set, one bit per update, in words of 256 bits: `Round.accepted_mask` holds the first.
ACCEPTED_WORDS: constant(uint256) = 4
MAX_VALIDATORS: constant(uint256) = 64
SCORE_SCALE: constant(uint256) = 10000


struct Round:
    phase: uint8
    global_model: bytes32
    commit_deadline: uint256
    validate_deadline: uint256
    aggregate_deadline: uint256
    expected_trainers: uint256
    expected_validators: uint256
    num_updates: uint256
    num_scored: uint256
    accepted_mask: uint256
    num_accepted: uint256
    model_hash: bytes32
    committee_seed: bytes32


# Everything a member node needs to decide its next step, in one call.
struct MemberView:
    current_round: uint256
    round: Round
    roles: uint256
    committed: bool
    scored: bool
    proposed: bool
    timestamp: uint256


struct Update:
    member: address
    update_hash: bytes32
    num_examples: uint256
    block_number: uint256
    dataset_id: uint256
    epsilon_micro: uint256


creator: public(address)
config_hash: public(bytes32)
initial_model: public(bytes32)
min_commitments: public(uint256)
commit_duration: public(uint256)
validate_duration: public(uint256)
aggregate_duration: public(uint256)
acceptance_threshold: public(uint256)
proposal_quorum: public(uint256)
max_rounds: public(uint256)

current_round: public(uint256)
latest_model: public(bytes32)
rounds: public(HashMap[uint256, Round])
updates: public(HashMap[uint256, HashMap[uint256, Update]])
# round -> member -> index + 1 (0 = no commitment)
commit_slot: HashMap[uint256, HashMap[address, uint256]]
has_scored: public(HashMap[uint256, HashMap[address, bool]])
has_proposed: public(HashMap[uint256, HashMap[address, bool]])
proposal_votes: public(HashMap[uint256, HashMap[bytes32, uint256]])
# Rounds of more than 256 updates: the accepted set's later words (bits 256 on).
accepted_high: HashMap[uint256, uint256[ACCEPTED_WORDS - 1]]


event RoundOpened:
    round_id: indexed(uint256)
    global_model: bytes32
    commit_deadline: uint256
    opener: address

event UpdateCommitted:
    round_id: indexed(uint256)
    member: indexed(address)
    update_hash: bytes32
    num_examples: uint256
    index: uint256
    dataset_id: uint256
    epsilon_micro: uint256

event CommitsClosed:
    round_id: indexed(uint256)
    num_updates: uint256
    validate_deadline: uint256
    committee_seed: bytes32

event UpdateFlagged:
    round_id: indexed(uint256)
    index: indexed(uint256)
    reporter: indexed(address)
    reason: String[128]

event AggregateProposed:
    round_id: indexed(uint256)
    aggregator: indexed(address)
    model_hash: bytes32
    accepted_mask: uint256
    votes: uint256

event RoundFinalized:
    round_id: indexed(uint256)
    model_hash: bytes32
    num_accepted: uint256

event RoundAborted:
    round_id: indexed(uint256)
    reason: String[64]


@deploy
def __init__(
    config_hash: bytes32,
    initial_model: bytes32,
    min_commitments: uint256,
    commit_duration: uint256,
    validate_duration: uint256,
    aggregate_duration: uint256,
    acceptance_threshold: uint256,
    proposal_quorum: uint256,
    max_rounds: uint256,
):
    """
    @notice Record the task's round rules; the caller must be an admin of the consortium.
    @param config_hash Hash of the task configuration (model, hyperparameters, rules, privacy).
    @param initial_model Hash of the round-1 global model blob.
    @param min_commitments Fewest commitments with which a round goes on.
    @param commit_duration Seconds each commit phase (and each secure key and share phase) lasts.
    @param validate_duration Seconds validation (or unmasking) lasts.
    @param aggregate_duration Seconds aggregation lasts.
    @param acceptance_threshold Median score (0..10000) an update needs to be accepted.
    @param proposal_quorum Identical aggregate proposals needed to finalize.
    @param max_rounds Rounds the task runs; 0 for no limit.
    """
    assert membership._has_role(msg.sender, membership.ROLE_ADMIN), "task: caller is not an admin"
    assert config_hash != empty(bytes32), "task: zero config hash"
    assert initial_model != empty(bytes32), "task: zero model hash"
    assert min_commitments >= 1 and min_commitments <= MAX_UPDATES, "task: min commitments out of range"
    assert commit_duration > 0 and validate_duration > 0 and aggregate_duration > 0, "task: zero duration"
    assert acceptance_threshold <= SCORE_SCALE, "task: threshold out of range"
    assert proposal_quorum >= 1, "task: zero proposal quorum"
    self.creator = msg.sender
    self.config_hash = config_hash
    self.initial_model = initial_model
    self.latest_model = initial_model
    self.min_commitments = min_commitments
    self.commit_duration = commit_duration
    self.validate_duration = validate_duration
    self.aggregate_duration = aggregate_duration
    self.acceptance_threshold = acceptance_threshold
    self.proposal_quorum = proposal_quorum
    self.max_rounds = max_rounds


@external
def flag_update(round_id: uint256, index: uint256, reason: String[128]):
    """
    @notice Record on the ledger why a validator or aggregator rejects an update
            (bad shape, NaN, hash mismatch...). Has no effect on acceptance.
    @param round_id A round opened so far.
    @param index The update's index in the round.
    @param reason Why, technical and public (never personal data).
    """
    assert membership._has_role(msg.sender, membership.ROLE_VALIDATOR) or \
        membership._has_role(msg.sender, membership.ROLE_AGGREGATOR), \
        "task: caller is not a validator or aggregator"
    assert round_id >= 1 and round_id <= self.current_round, "task: wrong round"
    assert index < self.rounds[round_id].num_updates, "task: unknown update"
    assert len(reason) > 0, "task: empty reason"
    log UpdateFlagged(round_id=round_id, index=index, reporter=msg.sender, reason=reason)


@external
def propose_aggregate(round_id: uint256, model_hash: bytes32, accepted_mask: uint256):
    """
    @notice An aggregator's proposed next global model for the round; the round
            finalizes when `proposal_quorum` aggregators propose the same hash.
    @param round_id The current round, in aggregation.
    @param model_hash sha256 of the proposed model blob.
    @param accepted_mask The accepted set it aggregated (bit i = update i); must
           equal the set the contract derived (its first 256 bits in a larger round,
           whose proposals name the same model only when they aggregated the same set).
    """
    assert membership._has_role(msg.sender, membership.ROLE_AGGREGATOR), "task: caller is not an aggregator"
    assert self._phase(round_id) == PHASE_AGGREGATE, "task: round not in aggregation"
    assert block.timestamp <= self.rounds[round_id].aggregate_deadline, "task: aggregation deadline passed"
    assert model_hash != empty(bytes32), "task: zero hash"
    assert accepted_mask == self.rounds[round_id].accepted_mask, "task: accepted set does not match validation"
    assert not self.has_proposed[round_id][msg.sender], "task: already proposed"
    self.has_proposed[round_id][msg.sender] = True
    votes: uint256 = self.proposal_votes[round_id][model_hash] + 1
    self.proposal_votes[round_id][model_hash] = votes
    log AggregateProposed(
        round_id=round_id, aggregator=msg.sender, model_hash=model_hash, accepted_mask=accepted_mask, votes=votes
    )
    if votes >= self.proposal_quorum:
        self.rounds[round_id].phase = PHASE_FINALIZED
        self.rounds[round_id].model_hash = model_hash
        self.latest_model = model_hash
        log RoundFinalized(round_id=round_id, model_hash=model_hash, num_accepted=self.rounds[round_id].num_accepted)


@external
def close_aggregation(round_id: uint256):
    """
    @notice Abort a round whose aggregation deadline passed without a quorum of
            identical proposals; the next round starts from the same model.
    @param round_id The current round, in aggregation.
    """
    self._check_member(msg.sender)
    assert self._phase(round_id) == PHASE_AGGREGATE, "task: round not in aggregation"
    assert block.timestamp > self.rounds[round_id].aggregate_deadline, "task: aggregation phase still running"
    self._abort(round_id, "aggregate quorum not reached")


@view
@external
def updates_of(round_id: uint256) -> DynArray[Update, MAX_UPDATES]:
    """
    @notice Every update committed in a round, in commit order (one call instead of one per update).
    @param round_id The round.
    @return Its updates.
    """
    result: DynArray[Update, MAX_UPDATES] = []
    for i: uint256 in range(self.rounds[round_id].num_updates, bound=MAX_UPDATES):
        result.append(self.updates[round_id][i])
    return result


@view
@external
def updates_at(round_id: uint256, indices: DynArray[uint256, MAX_VALIDATORS]) -> DynArray[Update, MAX_VALIDATORS]:
    """
    @notice Some updates of a round, by index: a validator's committee seats in one call.
    @param round_id The round.
    @param indices The updates' indices.
    @return Those updates, in the order asked.
    """
    result: DynArray[Update, MAX_VALIDATORS] = []
    for i: uint256 in indices:
        result.append(self.updates[round_id][i])
    return result


@view
@external
def accepted_of(round_id: uint256) -> uint256[ACCEPTED_WORDS]:
    """
    @notice A round's whole accepted set, in words of 256 bits (bit i of word w = update 256 * w + i).
    @param round_id The round.
    @return The words, lowest first.
    """
    high: uint256[ACCEPTED_WORDS - 1] = self.accepted_high[round_id]
    return [self.rounds[round_id].accepted_mask, high[0], high[1], high[2]]


@view
@external
def commit_index(round_id: uint256, member: address) -> uint256:
    """
    @notice Index + 1 of `member`'s update in the round, 0 when it has not committed.
    @param round_id The round.
    @param member The committer.
    @return Its slot (index + 1), or 0.
    """
    return self.commit_slot[round_id][member]


@view
@external
def phase_of(round_id: uint256) -> uint8:
    """
    @notice The phase of a round (0 when it does not exist).
    @param round_id The round.
    @return Its phase.
    """
    return self.rounds[round_id].phase


@view
@external
def update_count(round_id: uint256) -> uint256:
    """
    @notice How many updates were committed in a round.
    @param round_id The round.
    @return The count.
    """
    return self.rounds[round_id].num_updates


@view
@external
def model_at(round_id: uint256) -> bytes32:
    """
    @notice The finalized model of a round.
    @param round_id A finalized round.
    @return The hash of its model blob.
    """
    assert self.rounds[round_id].phase == PHASE_FINALIZED, "task: round not finalized"
    return self.rounds[round_id].model_hash


@view
@external
def member_view(member: address) -> MemberView:
    """
    @notice The current round and `member`'s part in it, in one call: what a node polls.
    @param member The member.
    @return Its view of the current round.
    """
    return self._member_view(member)


@view
@internal
def _check_member(who: address):
    """
    @notice Refuse a caller that is not an active member of the consortium.
    @param who The caller.
    """
    assert membership._is_active(who), "task: caller is not a member"


@view
@internal
def _phase(round_id: uint256) -> uint8:
    """
    @notice The phase of the current round; refuses any other round.
    @dev Callers assert the phase they need with their own reason string.
    @param round_id The round a call names.
    @return Its phase.
    """
    assert round_id == self.current_round and round_id != 0, "task: wrong round"
    return self.rounds[round_id].phase


@view
@internal
def _next_round() -> uint256:
    """
    @notice Check that the caller may open a round now: an aggregator or an admin, the
            previous round closed and rounds left.
    @return The id the new round gets.
    """
    assert membership._has_role(msg.sender, membership.ROLE_AGGREGATOR) or \
        membership._has_role(msg.sender, membership.ROLE_ADMIN), "task: caller is not an aggregator or admin"
    previous: uint8 = self.rounds[self.current_round].phase
    assert previous == PHASE_NONE or previous == PHASE_FINALIZED or previous == PHASE_ABORTED, \
        "task: previous round not closed"
    assert self.max_rounds == 0 or self.current_round < self.max_rounds, "task: all rounds done"
    return self.current_round + 1


@internal
def _open(round_id: uint256, phase: uint8, trainers: uint256):
    """
    @notice Start round `round_id` (from `_next_round`) on the latest finalized model.
    @param round_id The new round.
    @param phase Its first phase: OPEN, or KEYS for a secure round.
    @param trainers How many trainers the round waits for before it may close early.
    """
    self.current_round = round_id
    deadline: uint256 = block.timestamp + self.commit_duration
    self.rounds[round_id] = Round(
        phase=phase,
        global_model=self.latest_model,
        commit_deadline=deadline,
        validate_deadline=0,
        aggregate_deadline=0,
        expected_trainers=trainers,
        expected_validators=membership._count_with_role(membership.ROLE_VALIDATOR),
        num_updates=0,
        num_scored=0,
        accepted_mask=0,
        num_accepted=0,
        model_hash=empty(bytes32),
        committee_seed=empty(bytes32),
    )
    log RoundOpened(round_id=round_id, global_model=self.latest_model, commit_deadline=deadline, opener=msg.sender)


@view
@internal
def _check_commit(round_id: uint256, member: address, update_hash: bytes32, num_examples: uint256):
    """
    @notice The checks every commitment passes once the member's role and the phase are checked:
            in time, a non-zero hash and example count, the member's first.
    @param round_id The round.
    @param member The committer (the caller, or a trainer whose batched leaf is delivered).
    @param update_hash sha256 of the update blob.
    @param num_examples Local examples the update was trained on.
    """
    assert block.timestamp <= self.rounds[round_id].commit_deadline, "task: commit deadline passed"
    assert update_hash != empty(bytes32), "task: zero hash"
    assert num_examples > 0, "task: zero examples"
    assert self.commit_slot[round_id][member] == 0, "task: already committed"


@view
@internal
def _next_index(round_id: uint256) -> uint256:
    """
    @notice The index the round's next update gets; refuses a full round.
    @param round_id The round.
    @return The index.
    """
    index: uint256 = self.rounds[round_id].num_updates
    assert index < MAX_UPDATES, "task: round full"
    return index


@internal
def _record_update(
    round_id: uint256,
    index: uint256,
    member: address,
    update_hash: bytes32,
    num_examples: uint256,
    dataset_id: uint256,
    epsilon_micro: uint256,
):
    """
    @notice Store `member`'s commitment at `index` (from `_next_index`) and log it.
    @param round_id The round.
    @param index The update's index.
    @param member The committer.
    @param update_hash sha256 of the update blob.
    @param num_examples Local examples (FedAvg weight).
    @param dataset_id The dataset it was trained on (0: none declared).
    @param epsilon_micro The member's cumulative privacy spend declared with it.
    """
    self.updates[round_id][index] = Update(
        member=member,
        update_hash=update_hash,
        num_examples=num_examples,
        block_number=block.number,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )
    self.commit_slot[round_id][member] = index + 1
    self.rounds[round_id].num_updates = index + 1
    log UpdateCommitted(
        round_id=round_id,
        member=member,
        update_hash=update_hash,
        num_examples=num_examples,
        index=index,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )


@internal
def _ready_to_close_commits(round_id: uint256) -> uint256:
    """
    @notice The checks of closing a commit phase: a member, the round open, and the deadline
            passed or every expected trainer committed. Too few commitments abort the round.
    @param round_id The round.
    @return The round's number of updates; 0 when it aborted.
    """
    self._check_member(msg.sender)
    assert self._phase(round_id) == PHASE_OPEN, "task: round not open"
    num_updates: uint256 = self.rounds[round_id].num_updates
    assert block.timestamp > self.rounds[round_id].commit_deadline or \
        num_updates >= self.rounds[round_id].expected_trainers, "task: commit phase still running"
    if num_updates < self.min_commitments:
        self._abort(round_id, "commitment quorum not reached")
        return 0
    return num_updates


@internal
def _close_commits(round_id: uint256, num_updates: uint256, phase: uint8, seed: bytes32):
    """
    @notice Move a round from commits to its next phase, whose deadline is a validation
            duration away, and log it.
    @param round_id The round.
    @param num_updates Its number of updates.
    @param phase VALIDATE, or UNMASK for a secure round.
    @param seed The committee seed (zero without committees).
    """
    deadline: uint256 = block.timestamp + self.validate_duration
    self.rounds[round_id].phase = phase
    self.rounds[round_id].validate_deadline = deadline
    self.rounds[round_id].committee_seed = seed
    log CommitsClosed(round_id=round_id, num_updates=num_updates, validate_deadline=deadline, committee_seed=seed)


@internal
def _start_aggregation(round_id: uint256, words: uint256[ACCEPTED_WORDS], accepted: uint256) -> uint256:
    """
    @notice Move a round to aggregation over the accepted set.
    @param round_id The round.
    @param words The accepted set (bit i of word w = update 256 * w + i).
    @param accepted How many updates it holds.
    @return The aggregation deadline.
    """
    deadline: uint256 = block.timestamp + self.aggregate_duration
    self.rounds[round_id].phase = PHASE_AGGREGATE
    self.rounds[round_id].accepted_mask = words[0]
    if self.rounds[round_id].num_updates > 256:
        self.accepted_high[round_id] = [words[1], words[2], words[3]]
    self.rounds[round_id].num_accepted = accepted
    self.rounds[round_id].aggregate_deadline = deadline
    return deadline


@pure
@internal
def _every_update(num_updates: uint256) -> uint256[ACCEPTED_WORDS]:
    """
    @notice The accepted set holding every update of a round.
    @param num_updates The round's number of updates.
    @return Its words (bit i of word w = update 256 * w + i).
    """
    words: uint256[ACCEPTED_WORDS] = empty(uint256[ACCEPTED_WORDS])
    for w: uint256 in range(ACCEPTED_WORDS):
        if num_updates >= 256 * (w + 1):
            words[w] = max_value(uint256)
        elif num_updates > 256 * w:
            words[w] = (1 << (num_updates - 256 * w)) - 1
    return words


@internal
def _abort(round_id: uint256, reason: String[64]):
    """
    @notice End a round without a model; the next one starts from the same model.
    @param round_id The round.
    @param reason Why, logged.
    """
    self.rounds[round_id].phase = PHASE_ABORTED
    log RoundAborted(round_id=round_id, reason=reason)


@view
@internal
def _member_view(member: address) -> MemberView:
    """
    @notice The current round and `member`'s roles and duties in it.
    @param member The member.
    @return Its view, stamped with the block time.
    """
    round_id: uint256 = self.current_round
    return MemberView(
        current_round=round_id,
        round=self.rounds[round_id],
        roles=membership._roles_of(member),
        committed=self.commit_slot[round_id][member] != 0,
        scored=self.has_scored[round_id][member],
        proposed=self.has_proposed[round_id][member],
        timestamp=block.timestamp,
    )
