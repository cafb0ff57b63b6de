# pragma version ~=0.4.3
# The contract is near the EIP-170 limit (24576 bytes) with the gas optimizer; codesize keeps it under.
# pragma optimize codesize
"""
@title fedledger training task
@notice One federated learning task: its configuration commitment and its
        rounds. A round moves OPEN (accepting update commitments) -> VALIDATE
        (validators score every update) -> AGGREGATE (aggregators propose the
        next model) -> FINALIZED, or to ABORTED when a quorum is missed. Rounds
        only move forward. Weights and data never come here: only hashes.
@dev Acceptance is a contract rule: an update is accepted when the median of
     its validators' scores (self-scores excluded) reaches the task's
     threshold. Finalization needs `proposal_quorum` aggregators proposing the
     same model hash.
     With `committee_size` > 0, each update is scored only by a committee of
     that many validators, drawn when commits close from a seed no committer
     could know (prevrandao and the previous block hash), so scoring costs grow
     with updates x committee size instead of updates x validators; a minority
     of lying validators in a committee cannot move its median.
    With `max_disagreement` > 0 the contract keeps each validator's reputation:
    when validation closes, every score counts for its validator and counts as
    a disagreement when it falls on the other side of the threshold from the
    update's outcome. A validator with at least `reputation_warmup` scores of
    which more than `max_disagreement` (basis points) disagreed is distrusted:
    later rounds leave it out of their validators (no committee seat, scores
    refused) until an admin clears its record.
    With `max_rejection` > 0 it keeps each trainer's record too: every scored
    update counts for its trainer, and a rejected one counts as a rejection. A
    trainer with at least `reputation_warmup` scored updates of which more than
    `max_rejection` (basis points) were rejected is distrusted: rounds opened
    while it is distrusted leave it out (its commitments are refused and the
    round does not wait for it) until an admin clears its record.
    With `min_mean_score` > 0 the record keeps the sum of the trainer's
    committee medians as well, and a trainer whose medians average below
    `min_mean_score` after the warm-up is distrusted in the same way.
     Provenance: with a `data_registry`, every commitment names the dataset it
     was trained on, which must be the committer's own and allow the task's
     `purpose` (GDPR Art. 5(1)(b)); with a `privacy_budget`, every commitment
     declares the committer's cumulative privacy spend, which never decreases
     and never exceeds the budget.
     With `secagg_threshold` > 0 every round is a secure-aggregation round
     (Bonawitz et al., CCS 2017): KEYS (trainers post the hash of their key
     advert) -> SHARES (hash of their encrypted share bundle) -> OPEN (hash of
     their masked input) -> UNMASK (each committer posts the hash of its share
     reveal) -> AGGREGATE. Every step needs the previous one, and a step with
     fewer members than the round's threshold aborts the round.
"""

# The consortium registry's member record (its public `members` getter).
struct ConsortiumMember:
    org: String[64]
    roles: uint256
    status: uint8
    cert_fingerprint: bytes32
    kx_public_key: bytes32
    store_uri: String[256]
    admitted_at: uint256
    revoked_at: uint256


interface Consortium:
    def members(who: address) -> ConsortiumMember: view
    def has_role(who: address, role: uint256) -> bool: view
    def is_active(who: address) -> bool: view
    def count_with_role(role: uint256) -> uint256: view
    def member_count() -> uint256: view
    def member_at(index: uint256) -> address: view

interface DataRegistry:
    def owner_of(dataset_id: uint256) -> address: view
    def allows(dataset_id: uint256, purpose: bytes32) -> bool: view

ROLE_ADMIN: constant(uint256) = 1
ROLE_TRAINER: constant(uint256) = 2
ROLE_VALIDATOR: constant(uint256) = 4
ROLE_AGGREGATOR: constant(uint256) = 8
ROLE_AUDITOR: constant(uint256) = 16

PHASE_NONE: constant(uint8) = 0
PHASE_OPEN: constant(uint8) = 1
PHASE_VALIDATE: constant(uint8) = 2
PHASE_AGGREGATE: constant(uint8) = 3
PHASE_FINALIZED: constant(uint8) = 4
PHASE_ABORTED: constant(uint8) = 5
PHASE_KEYS: constant(uint8) = 6
PHASE_SHARES: constant(uint8) = 7
PHASE_UNMASK: constant(uint8) = 8

MAX_UPDATES: constant(uint256) = 128
MAX_VALIDATORS: constant(uint256) = 64
MAX_MEMBERS: constant(uint256) = 1024  # the consortium's bound
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


# Secure-aggregation rounds: the round's threshold, listed trainers and how many did each step.
struct SecureRound:
    threshold: uint256
    num_members: uint256
    opened_block: uint256  # members' key-agreement keys are read from the registry at this block
    num_adverts: uint256
    num_bundles: uint256
    num_reveals: uint256


# A member's part in a secure round, with its MemberView: what a secure node polls.
struct SecureView:
    view: MemberView
    secure: SecureRound
    listed: bool
    advertised: bool
    shared: bool
    revealed: bool


# A listed member's key-agreement key in the consortium registry.
struct SecureKey:
    member: address
    kx_public_key: bytes32


# One listed member's secure-aggregation messages in a round (zero hash: not posted).
struct SecureMessages:
    member: address
    advert_hash: bytes32
    bundle_hash: bytes32
    reveal_hash: bytes32


struct Update:
    member: address
    update_hash: bytes32
    num_examples: uint256
    block_number: uint256
    dataset_id: uint256
    epsilon_micro: uint256


consortium: public(Consortium)
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
committee_size: public(uint256)
# Provenance: dataset registry (zero: no dataset checks), keccak256 of the purpose name,
# privacy budget in micro-epsilon (0: no DP) and each member's latest declared spend.
data_registry: public(DataRegistry)
purpose: public(bytes32)
privacy_budget: public(uint256)
privacy_spent: public(HashMap[address, uint256])
secagg_threshold: public(uint256)
# Validator reputation (max_disagreement 0: off): scores counted and scores against the outcome.
max_disagreement: public(uint256)
reputation_warmup: public(uint256)
validator_scored: public(HashMap[address, uint256])
validator_disagreed: public(HashMap[address, uint256])
# Trainer reputation (max_rejection and min_mean_score 0: off): scored updates, rejected ones and the sum of their
# committee medians, per trainer, and per round the trainers it left out when the round opened. (No view says whether
# a trainer is distrusted now: the contract is near the EIP-170 size limit; clients apply the rule to these counts.)
max_rejection: public(uint256)
min_mean_score: public(uint256)
trainer_scored: public(HashMap[address, uint256])
trainer_rejected: public(HashMap[address, uint256])
trainer_score_sum: public(HashMap[address, uint256])
trainer_left_out: public(HashMap[uint256, HashMap[address, bool]])

current_round: public(uint256)
latest_model: public(bytes32)
rounds: public(HashMap[uint256, Round])
updates: public(HashMap[uint256, HashMap[uint256, Update]])
# round -> member -> index + 1 (0 = no commitment)
commit_slot: HashMap[uint256, HashMap[address, uint256]]
has_scored: public(HashMap[uint256, HashMap[address, bool]])
update_scores: HashMap[uint256, HashMap[uint256, DynArray[uint256, MAX_VALIDATORS]]]
# Reputation rounds: round -> update -> k -> who gave update_scores' k-th entry (a map: no length slot to pay).
update_scorers: HashMap[uint256, HashMap[uint256, HashMap[uint256, address]]]
has_proposed: public(HashMap[uint256, HashMap[address, bool]])
# Committee and reputation rounds: the (trusted) validators when commits closed, and their position + 1.
round_validators: HashMap[uint256, DynArray[address, MAX_VALIDATORS]]
validator_slot: HashMap[uint256, HashMap[address, uint256]]
proposal_votes: public(HashMap[uint256, HashMap[bytes32, uint256]])
# Secure rounds: the trainers listed when the round opened (position + 1) and their message hashes.
secure_rounds: public(HashMap[uint256, SecureRound])
secure_members: HashMap[uint256, DynArray[address, MAX_UPDATES]]
secure_slot: HashMap[uint256, HashMap[address, uint256]]
advert_hashes: HashMap[uint256, HashMap[address, bytes32]]
bundle_hashes: HashMap[uint256, HashMap[address, bytes32]]
reveal_hashes: HashMap[uint256, HashMap[address, bytes32]]


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

event ScoresSubmitted:
    round_id: indexed(uint256)
    validator: indexed(address)
    indices: DynArray[uint256, MAX_UPDATES]
    scores: DynArray[uint256, MAX_UPDATES]

event UpdateFlagged:
    round_id: indexed(uint256)
    index: indexed(uint256)
    reporter: indexed(address)
    reason: String[128]

event ValidationClosed:
    round_id: indexed(uint256)
    accepted_mask: uint256
    num_accepted: uint256
    aggregate_deadline: uint256

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

# A validator left out of a round's validators by its reputation (logged when the round's commits close).
event ValidatorDistrusted:
    round_id: indexed(uint256)
    validator: indexed(address)
    scored: uint256
    disagreed: uint256

# A trainer left out of a round by its reputation (logged when the round opens).
event TrainerDistrusted:
    round_id: indexed(uint256)
    trainer: indexed(address)
    scored: uint256
    rejected: uint256

event ReputationCleared:
    validator: indexed(address)
    admin: indexed(address)
    scored: uint256
    disagreed: uint256

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

event UnmaskClosed:
    round_id: indexed(uint256)
    num_reveals: uint256
    accepted_mask: uint256
    aggregate_deadline: uint256


@deploy
def __init__(
    consortium: address,
    config_hash: bytes32,
    initial_model: bytes32,
    min_commitments: uint256,
    commit_duration: uint256,
    validate_duration: uint256,
    aggregate_duration: uint256,
    acceptance_threshold: uint256,
    proposal_quorum: uint256,
    max_rounds: uint256,
    committee_size: uint256,
    data_registry: address,
    purpose: bytes32,
    privacy_budget: uint256,
    secagg_threshold: uint256,
    max_disagreement: uint256,
    reputation_warmup: uint256,
    max_rejection: uint256,
    min_mean_score: uint256,
):
    """
    @notice Create a task; only an admin of `consortium` may.
    @param config_hash Hash of the task configuration (model, hyperparameters, rules, privacy).
    @param initial_model Hash of the round-1 global model blob.
    @param min_commitments Fewest commitments with which a round goes on.
    @param acceptance_threshold Median score (0..10000) an update needs to be accepted.
    @param proposal_quorum Identical aggregate proposals needed to finalize.
    @param max_rounds Rounds the task runs; 0 for no limit.
    @param committee_size Validators scoring each update; 0 for every validator.
    @param data_registry DataRegistry checking each commitment's dataset; zero for no dataset checks.
    @param purpose keccak256 of the task's canonical purpose name (as DataRegistry stores purposes).
    @param privacy_budget Cumulative epsilon a member may declare, in micro-epsilon; 0 for a task without DP.
    @param secagg_threshold Fewest members whose messages unmask a secure round
           (raised to a strict majority of each round's trainers); 0 for plain rounds.
    @param max_disagreement Basis points of a validator's scores against the outcome above
           which it is distrusted; 0 for no reputation.
    @param reputation_warmup Fewest scores a validator gives (scored updates a trainer commits) before it
           can be distrusted.
    @param max_rejection Basis points of a trainer's scored updates rejected above which it is
           distrusted; 0 for no trainer reputation by rejections.
    @param min_mean_score Mean committee median (0..10000) below which a trainer is distrusted;
           0 for no trainer reputation by scores.
    """
    self.consortium = Consortium(consortium)
    assert staticcall self.consortium.has_role(msg.sender, ROLE_ADMIN), "task: caller is not an admin"
    assert config_hash != empty(bytes32), "task: zero config hash"
    assert initial_model != empty(bytes32), "task: zero model hash"
    assert min_commitments >= 1 and min_commitments <= MAX_UPDATES, "task: min commitments out of range"
    assert commit_duration > 0 and validate_duration > 0 and aggregate_duration > 0, "task: zero duration"
    assert acceptance_threshold <= SCORE_SCALE, "task: threshold out of range"
    assert proposal_quorum >= 1, "task: zero proposal quorum"
    assert committee_size <= MAX_VALIDATORS, "task: committee size out of range"
    assert data_registry == empty(address) or purpose != empty(bytes32), "task: zero purpose"
    assert secagg_threshold <= MAX_UPDATES, "task: secagg threshold out of range"
    assert secagg_threshold == 0 or committee_size == 0, "task: committees score plain updates only"
    assert max_disagreement <= SCORE_SCALE, "task: max disagreement out of range"
    assert max_rejection <= SCORE_SCALE, "task: max rejection out of range"
    assert min_mean_score <= SCORE_SCALE, "task: min mean score out of range"
    assert secagg_threshold == 0 or max_disagreement + max_rejection + min_mean_score == 0, \
        "task: reputation needs scored rounds"
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
    self.committee_size = committee_size
    self.data_registry = DataRegistry(data_registry)
    self.purpose = purpose
    self.privacy_budget = privacy_budget
    self.secagg_threshold = secagg_threshold
    self.max_disagreement = max_disagreement
    self.reputation_warmup = reputation_warmup
    self.max_rejection = max_rejection
    self.min_mean_score = min_mean_score


@external
def open_round() -> uint256:
    """
    @notice Open the next round on the latest finalized model.
    @return The new round id (rounds count from 1).
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_AGGREGATOR) or \
        staticcall self.consortium.has_role(msg.sender, ROLE_ADMIN), "task: caller is not an aggregator or admin"
    previous: uint8 = self.rounds[self.current_round].phase
    assert previous == PHASE_NONE or previous == PHASE_FINALIZED or previous == PHASE_ABORTED, \
        "task: previous round not closed"
    assert self.max_rounds == 0 or self.current_round < self.max_rounds, "task: all rounds done"
    round_id: uint256 = self.current_round + 1
    self.current_round = round_id
    deadline: uint256 = block.timestamp + self.commit_duration
    trainers: uint256 = self._count_trainers(round_id)
    self.rounds[round_id] = Round(
        phase=PHASE_OPEN,
        global_model=self.latest_model,
        commit_deadline=deadline,
        validate_deadline=0,
        aggregate_deadline=0,
        expected_trainers=trainers,
        expected_validators=staticcall self.consortium.count_with_role(ROLE_VALIDATOR),
        num_updates=0,
        num_scored=0,
        accepted_mask=0,
        num_accepted=0,
        model_hash=empty(bytes32),
        committee_seed=empty(bytes32),
    )
    if self.secagg_threshold > 0:
        self._open_secure(round_id)
    log RoundOpened(round_id=round_id, global_model=self.latest_model, commit_deadline=deadline, opener=msg.sender)
    return round_id


@external
def commit_update(
    round_id: uint256, update_hash: bytes32, num_examples: uint256, dataset_id: uint256, epsilon_micro: uint256
) -> uint256:
    """
    @notice Commit the hash of this member's update for the round (once).
    @param update_hash sha256 of the update blob in the store.
    @param num_examples Local examples the update was trained on (FedAvg weight).
    @param dataset_id The DataRegistry dataset the update was trained on (checked when the task has a registry).
    @param epsilon_micro The member's cumulative privacy spend after this update, in micro-epsilon
           (checked when the task has a privacy budget).
    @return The update's index in the round.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_TRAINER), "task: caller is not a trainer"
    self._check_round(round_id, PHASE_OPEN, "task: round not open")
    assert not self.trainer_left_out[round_id][msg.sender], "task: trainer distrusted"
    assert block.timestamp <= self.rounds[round_id].commit_deadline, "task: commit deadline passed"
    assert update_hash != empty(bytes32), "task: zero hash"
    assert num_examples > 0, "task: zero examples"
    assert self.commit_slot[round_id][msg.sender] == 0, "task: already committed"
    self._check_secure_commit(round_id, msg.sender)
    index: uint256 = self.rounds[round_id].num_updates
    assert index < MAX_UPDATES, "task: round full"
    self._check_provenance(dataset_id, epsilon_micro)
    self.updates[round_id][index] = Update(
        member=msg.sender,
        update_hash=update_hash,
        num_examples=num_examples,
        block_number=block.number,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )
    self.commit_slot[round_id][msg.sender] = index + 1
    self.rounds[round_id].num_updates = index + 1
    log UpdateCommitted(
        round_id=round_id,
        member=msg.sender,
        update_hash=update_hash,
        num_examples=num_examples,
        index=index,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )
    return index


@external
def close_commits(round_id: uint256):
    """
    @notice End the commit phase: early once every trainer committed, otherwise
            after the deadline. Too few commitments abort the round.
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_OPEN, "task: round not open")
    r: Round = self.rounds[round_id]
    assert block.timestamp > r.commit_deadline or r.num_updates >= r.expected_trainers, \
        "task: commit phase still running"
    if r.num_updates < self.min_commitments:
        self._abort(round_id, "commitment quorum not reached")
        return
    if self.secagg_threshold > 0:
        self._close_secure_commits(round_id, r.num_updates)
        return
    deadline: uint256 = block.timestamp + self.validate_duration
    seed: bytes32 = empty(bytes32)
    if self.committee_size > 0:
        # Unknown to every committer: drawn after the last commitment was mined.
        seed = keccak256(concat(block.prevrandao, blockhash(block.number - 1), convert(round_id, bytes32)))
    if self.committee_size > 0 or self.max_disagreement > 0:
        self.rounds[round_id].expected_validators = self._snapshot_validators(round_id, seed)
    self.rounds[round_id].phase = PHASE_VALIDATE
    self.rounds[round_id].validate_deadline = deadline
    self.rounds[round_id].committee_seed = seed
    log CommitsClosed(round_id=round_id, num_updates=r.num_updates, validate_deadline=deadline, committee_seed=seed)


@external
def submit_scores(
    round_id: uint256, indices: DynArray[uint256, MAX_UPDATES], scores: DynArray[uint256, MAX_UPDATES]
):
    """
    @notice A validator's scores (0..10000) for the updates it checked, by update
            index in increasing order; updates not listed are abstentions. A
            validator never scores its own update and, in committee rounds, scores
            only updates whose committee it sits on.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_VALIDATOR), "task: caller is not a validator"
    self._check_round(round_id, PHASE_VALIDATE, "task: round not in validation")
    assert block.timestamp <= self.rounds[round_id].validate_deadline, "task: validation deadline passed"
    assert not self.has_scored[round_id][msg.sender], "task: already scored"
    assert len(indices) == len(scores), "task: indices and scores differ in length"
    assert self.rounds[round_id].num_scored < MAX_VALIDATORS, "task: too many validators"
    assert not self._distrusted(msg.sender), "task: validator distrusted"
    if self.committee_size > 0:
        assert self.validator_slot[round_id][msg.sender] != 0, "task: validator not drawn for this round"
    keep_scorers: bool = self.max_disagreement > 0
    num_updates: uint256 = self.rounds[round_id].num_updates
    own: uint256 = self.commit_slot[round_id][msg.sender]
    for k: uint256 in range(len(indices), bound=MAX_UPDATES):
        i: uint256 = indices[k]
        assert i < num_updates, "task: unknown update"
        assert k == 0 or i > indices[k - 1], "task: indices not increasing"
        assert scores[k] <= SCORE_SCALE, "task: score out of range"
        assert own != i + 1, "task: validator cannot score its own update"
        assert self._in_committee(round_id, i, msg.sender), "task: validator not in the update's committee"
        if keep_scorers:
            self.update_scorers[round_id][i][len(self.update_scores[round_id][i])] = msg.sender
        self.update_scores[round_id][i].append(scores[k])
    self.has_scored[round_id][msg.sender] = True
    self.rounds[round_id].num_scored += 1
    log ScoresSubmitted(round_id=round_id, validator=msg.sender, indices=indices, scores=scores)


@external
def flag_update(round_id: uint256, index: uint256, reason: String[128]):
    """
    @notice Record on the ledger why a validator or aggregator rejects an update
            (bad shape, NaN, hash mismatch...). Has no effect on acceptance.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_VALIDATOR) or \
        staticcall self.consortium.has_role(msg.sender, ROLE_AGGREGATOR), \
        "task: caller is not a validator or aggregator"
    assert round_id >= 1 and round_id <= self.current_round, "task: wrong round"
    assert index < self.rounds[round_id].num_updates, "task: unknown update"
    assert len(reason) > 0, "task: empty reason"
    log UpdateFlagged(round_id=round_id, index=index, reporter=msg.sender, reason=reason)


@external
def close_validation(round_id: uint256):
    """
    @notice End validation (early once every validator scored, otherwise after the
            deadline) and derive the accepted set from the scores.
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_VALIDATE, "task: round not in validation")
    r: Round = self.rounds[round_id]
    assert block.timestamp > r.validate_deadline or r.num_scored >= r.expected_validators, \
        "task: validation phase still running"
    mask: uint256 = 0
    accepted: uint256 = 0
    for i: uint256 in range(r.num_updates, bound=MAX_UPDATES):
        scores: DynArray[uint256, MAX_VALIDATORS] = self.update_scores[round_id][i]
        if len(scores) == 0:
            continue
        # (No update here is a distrusted trainer's: records change only here and when cleared, and the round
        # refused commitments from the trainers distrusted when it opened.)
        owner: address = empty(address)
        if self.max_rejection + self.min_mean_score > 0:
            owner = self.updates[round_id][i].member
        median: uint256 = self._median(scores)
        ok: bool = median >= self.acceptance_threshold
        if ok:
            mask |= 1 << i
            accepted += 1
        if self.max_disagreement > 0:
            self._count_reputation(round_id, i, scores, ok)
        if owner != empty(address):
            self.trainer_scored[owner] += 1
            self.trainer_score_sum[owner] += median
            if not ok:
                self.trainer_rejected[owner] += 1
    if accepted == 0:
        self._abort(round_id, "no update accepted")
        return
    deadline: uint256 = block.timestamp + self.aggregate_duration
    self.rounds[round_id].phase = PHASE_AGGREGATE
    self.rounds[round_id].accepted_mask = mask
    self.rounds[round_id].num_accepted = accepted
    self.rounds[round_id].aggregate_deadline = deadline
    log ValidationClosed(round_id=round_id, accepted_mask=mask, num_accepted=accepted, aggregate_deadline=deadline)


@external
def propose_aggregate(round_id: uint256, model_hash: bytes32, accepted_mask: uint256):
    """
    @notice An aggregator's proposed next global model for the round; the round
            finalizes when `proposal_quorum` aggregators propose the same hash.
    @param accepted_mask The accepted set it aggregated (bit i = update i); must
           equal the set the contract derived.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_AGGREGATOR), "task: caller is not an aggregator"
    self._check_round(round_id, PHASE_AGGREGATE, "task: round not in aggregation")
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
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_AGGREGATE, "task: round not in aggregation")
    assert block.timestamp > self.rounds[round_id].aggregate_deadline, "task: aggregation phase still running"
    self._abort(round_id, "aggregate quorum not reached")


# -- secure-aggregation rounds (secagg_threshold > 0) ----------------------------------


@external
def post_key_advert(round_id: uint256, advert_hash: bytes32):
    """
    @notice Secure rounds, KEYS: commit the hash of this trainer's key advert (round
            public keys, authenticated by its registered identity key), once.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_TRAINER), "task: caller is not a trainer"
    self._check_round(round_id, PHASE_KEYS, "task: round not in key exchange")
    assert block.timestamp <= self.rounds[round_id].commit_deadline, "task: key deadline passed"
    assert advert_hash != empty(bytes32), "task: zero hash"
    assert self.secure_slot[round_id][msg.sender] != 0, "task: trainer not listed for this round"
    assert self.advert_hashes[round_id][msg.sender] == empty(bytes32), "task: keys already advertised"
    self.advert_hashes[round_id][msg.sender] = advert_hash
    self.secure_rounds[round_id].num_adverts += 1
    log KeysAdvertised(round_id=round_id, member=msg.sender, advert_hash=advert_hash)


@external
def close_keys(round_id: uint256):
    """
    @notice End the key exchange (early once every listed trainer advertised,
            otherwise after the deadline); fewer adverts than the threshold abort.
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_KEYS, "task: round not in key exchange")
    s: SecureRound = self.secure_rounds[round_id]
    assert block.timestamp > self.rounds[round_id].commit_deadline or s.num_adverts >= s.num_members, \
        "task: key phase still running"
    if s.num_adverts < s.threshold:
        self._abort(round_id, "too few key adverts for the secagg threshold")
        return
    deadline: uint256 = block.timestamp + self.commit_duration
    self.rounds[round_id].phase = PHASE_SHARES
    self.rounds[round_id].commit_deadline = deadline
    log KeysClosed(round_id=round_id, num_adverts=s.num_adverts, shares_deadline=deadline)


@external
def post_share_bundle(round_id: uint256, bundle_hash: bytes32):
    """
    @notice Secure rounds, SHARES: commit the hash of this trainer's bundle of
            encrypted secret shares, once; only trainers that advertised keys.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_TRAINER), "task: caller is not a trainer"
    self._check_round(round_id, PHASE_SHARES, "task: round not in share distribution")
    assert block.timestamp <= self.rounds[round_id].commit_deadline, "task: share deadline passed"
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
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_SHARES, "task: round not in share distribution")
    s: SecureRound = self.secure_rounds[round_id]
    assert block.timestamp > self.rounds[round_id].commit_deadline or s.num_bundles >= s.num_adverts, \
        "task: share phase still running"
    if s.num_bundles < s.threshold:
        self._abort(round_id, "too few share bundles for the secagg threshold")
        return
    deadline: uint256 = block.timestamp + self.commit_duration
    self.rounds[round_id].phase = PHASE_OPEN
    self.rounds[round_id].commit_deadline = deadline
    # Commits close early once every member that shared has committed.
    self.rounds[round_id].expected_trainers = s.num_bundles
    log SharesClosed(round_id=round_id, num_bundles=s.num_bundles, commit_deadline=deadline)


@external
def submit_reveal(round_id: uint256, reveal_hash: bytes32):
    """
    @notice Secure rounds, UNMASK: commit the hash of this committer's share reveal
            for the round's unmask request (survivors = committers), once.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_TRAINER), "task: caller is not a trainer"
    self._check_round(round_id, PHASE_UNMASK, "task: round not in unmasking")
    assert block.timestamp <= self.rounds[round_id].validate_deadline, "task: unmask deadline passed"
    assert reveal_hash != empty(bytes32), "task: zero hash"
    assert self.commit_slot[round_id][msg.sender] != 0, "task: no masked input committed"
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
    """
    self._check_member(msg.sender)
    self._check_round(round_id, PHASE_UNMASK, "task: round not in unmasking")
    r: Round = self.rounds[round_id]
    reveals: uint256 = self.secure_rounds[round_id].num_reveals
    assert block.timestamp > r.validate_deadline or reveals >= r.num_updates, "task: unmask phase still running"
    if reveals < self.secure_rounds[round_id].threshold:
        self._abort(round_id, "too few reveals for the secagg threshold")
        return
    mask: uint256 = (1 << r.num_updates) - 1
    deadline: uint256 = block.timestamp + self.aggregate_duration
    self.rounds[round_id].phase = PHASE_AGGREGATE
    self.rounds[round_id].accepted_mask = mask
    self.rounds[round_id].num_accepted = r.num_updates
    self.rounds[round_id].aggregate_deadline = deadline
    log UnmaskClosed(round_id=round_id, num_reveals=reveals, accepted_mask=mask, aggregate_deadline=deadline)


@view
@external
def updates_of(round_id: uint256) -> DynArray[Update, MAX_UPDATES]:
    """
    @notice Every update committed in a round, in commit order (one call instead of one per update).
    """
    result: DynArray[Update, MAX_UPDATES] = []
    for i: uint256 in range(self.rounds[round_id].num_updates, bound=MAX_UPDATES):
        result.append(self.updates[round_id][i])
    return result


@view
@external
def commit_index(round_id: uint256, member: address) -> uint256:
    """
    @notice Index + 1 of `member`'s update in the round, 0 when it has not committed.
    """
    return self.commit_slot[round_id][member]


@view
@external
def scores_of(round_id: uint256, index: uint256) -> DynArray[uint256, MAX_VALIDATORS]:
    """
    @notice The scores recorded for one update (abstentions excluded).
    """
    return self.update_scores[round_id][index]


@view
@external
def is_round_validator(round_id: uint256, validator: address) -> bool:
    """
    @notice Whether `validator` may score in the round: in committee rounds, whether it is among the
            validators drawn from when commits closed; otherwise whether it holds the role and is not distrusted.
    """
    if self.committee_size > 0:
        return self.validator_slot[round_id][validator] != 0
    return staticcall self.consortium.has_role(validator, ROLE_VALIDATOR) and not self._distrusted(validator)


@view
@external
def is_distrusted(validator: address) -> bool:
    """
    @notice Whether the task's reputation rule leaves `validator` out of its rounds' validators.
    """
    return self._distrusted(validator)


@external
def clear_reputation(validator: address):
    """
    @notice Reset a member's reputation records, as validator and as trainer (an admin's decision,
            e.g. after a dispute); it validates again from the next round whose commits close and trains
            again from the next round that opens.
    """
    assert staticcall self.consortium.has_role(msg.sender, ROLE_ADMIN), "task: caller is not an admin"
    log ReputationCleared(
        validator=validator,
        admin=msg.sender,
        scored=self.validator_scored[validator],
        disagreed=self.validator_disagreed[validator],
    )
    self.validator_scored[validator] = 0
    self.validator_disagreed[validator] = 0
    self.trainer_scored[validator] = 0
    self.trainer_rejected[validator] = 0
    self.trainer_score_sum[validator] = 0


@view
@external
def committee_of(round_id: uint256, index: uint256) -> DynArray[address, MAX_VALIDATORS]:
    """
    @notice The validators drawn to score update `index` (committee rounds, once commits closed).
    """
    result: DynArray[address, MAX_VALIDATORS] = []
    validators: DynArray[address, MAX_VALIDATORS] = self.round_validators[round_id]
    if self.committee_size == 0 or index >= self.rounds[round_id].num_updates:
        return result
    for v: address in validators:
        if v != self.updates[round_id][index].member and self._in_committee(round_id, index, v):
            result.append(v)
    return result


@view
@external
def assignments_of(round_id: uint256, validator: address) -> DynArray[uint256, MAX_UPDATES]:
    """
    @notice The updates `validator` may score in a round: those whose committee it
            sits on, or every other member's update when there are no committees.
    """
    result: DynArray[uint256, MAX_UPDATES] = []
    own: uint256 = self.commit_slot[round_id][validator]
    if self.committee_size > 0 and self.validator_slot[round_id][validator] == 0:
        return result
    if self._distrusted(validator):
        return result
    for i: uint256 in range(self.rounds[round_id].num_updates, bound=MAX_UPDATES):
        if own != i + 1 and self._in_committee(round_id, i, validator):
            result.append(i)
    return result


@view
@external
def member_view(member: address) -> MemberView:
    """
    @notice The current round and `member`'s part in it, in one call: what a node polls.
    """
    return self._member_view(member)


@view
@external
def secure_view(member: address) -> SecureView:
    """
    @notice `member_view` plus `member`'s part in the current secure round, in one call.
    """
    round_id: uint256 = self.current_round
    return SecureView(
        view=self._member_view(member),
        secure=self.secure_rounds[round_id],
        listed=self.secure_slot[round_id][member] != 0,
        advertised=self.advert_hashes[round_id][member] != empty(bytes32),
        shared=self.bundle_hashes[round_id][member] != empty(bytes32),
        revealed=self.reveal_hashes[round_id][member] != empty(bytes32),
    )


@view
@external
def secure_keys(round_id: uint256) -> DynArray[SecureKey, MAX_UPDATES]:
    """
    @notice The trainers listed for a secure round with their registered key-agreement
            keys; read at the round's `opened_block` it gives the keys the round uses.
    """
    result: DynArray[SecureKey, MAX_UPDATES] = []
    for who: address in self.secure_members[round_id]:
        result.append(SecureKey(member=who, kx_public_key=(staticcall self.consortium.members(who)).kx_public_key))
    return result


@view
@external
def secure_messages(round_id: uint256) -> DynArray[SecureMessages, MAX_UPDATES]:
    """
    @notice The trainers listed for a secure round, in listing order, with the hashes
            of the messages each posted (zero where it did not).
    """
    result: DynArray[SecureMessages, MAX_UPDATES] = []
    for who: address in self.secure_members[round_id]:
        result.append(
            SecureMessages(
                member=who,
                advert_hash=self.advert_hashes[round_id][who],
                bundle_hash=self.bundle_hashes[round_id][who],
                reveal_hash=self.reveal_hashes[round_id][who],
            )
        )
    return result


@view
@external
def model_at(round_id: uint256) -> bytes32:
    """
    @notice The finalized model of a round.
    """
    assert self.rounds[round_id].phase == PHASE_FINALIZED, "task: round not finalized"
    return self.rounds[round_id].model_hash


@view
@internal
def _check_member(who: address):
    assert staticcall self.consortium.is_active(who), "task: caller is not a member"


@view
@internal
def _check_round(round_id: uint256, phase: uint8, message: String[64]):
    assert round_id == self.current_round and round_id != 0, "task: wrong round"
    assert self.rounds[round_id].phase == phase, message


@internal
def _check_provenance(dataset_id: uint256, epsilon_micro: uint256):
    # Purpose limitation: the committer's own dataset, active and allowing the task's purpose
    # (`allows` is false for unknown and revoked datasets). Privacy: declared spends are
    # cumulative, so they never decrease, and never exceed the budget.
    if self.data_registry.address != empty(address):
        assert staticcall self.data_registry.owner_of(dataset_id) == msg.sender, "task: dataset not owned by sender"
        assert staticcall self.data_registry.allows(dataset_id, self.purpose), "task: purpose not allowed for dataset"
    if self.privacy_budget != 0:
        assert epsilon_micro <= self.privacy_budget, "task: privacy budget exceeded"
        assert epsilon_micro >= self.privacy_spent[msg.sender], "task: privacy spend decreased"
        self.privacy_spent[msg.sender] = epsilon_micro


@view
@internal
def _distrusted(validator: address) -> bool:
    scored: uint256 = self.validator_scored[validator]
    return self.max_disagreement > 0 and scored >= self.reputation_warmup and \
        self.validator_disagreed[validator] * SCORE_SCALE > self.max_disagreement * scored


@view
@internal
def _trainer_distrusted(trainer: address) -> bool:
    # The trainer's record against either bound (callers check that one is on first; a bound of 0 is off).
    scored: uint256 = self.trainer_scored[trainer]
    return scored >= self.reputation_warmup and (
        (self.max_rejection > 0 and self.trainer_rejected[trainer] * SCORE_SCALE > self.max_rejection * scored)
        or self.trainer_score_sum[trainer] < self.min_mean_score * scored
    )


@internal
def _count_reputation(round_id: uint256, index: uint256, scores: DynArray[uint256, MAX_VALIDATORS], accepted: bool):
    # Each score counts for its validator; against the outcome, it counts as a disagreement too.
    for k: uint256 in range(len(scores), bound=MAX_VALIDATORS):
        v: address = self.update_scorers[round_id][index][k]
        self.validator_scored[v] += 1
        if (scores[k] >= self.acceptance_threshold) != accepted:
            self.validator_disagreed[v] += 1


@internal
def _count_trainers(round_id: uint256) -> uint256:
    # The trainers a round waits for: every member with the role, less those trainer reputation distrusts now,
    # which are marked (their commitments refused this round) and logged.
    count: uint256 = staticcall self.consortium.count_with_role(ROLE_TRAINER)
    if self.max_rejection + self.min_mean_score == 0:
        return count
    for i: uint256 in range(staticcall self.consortium.member_count(), bound=MAX_MEMBERS):
        who: address = staticcall self.consortium.member_at(i)
        if staticcall self.consortium.has_role(who, ROLE_TRAINER) and self._trainer_distrusted(who):
            self.trainer_left_out[round_id][who] = True
            log TrainerDistrusted(
                round_id=round_id, trainer=who, scored=self.trainer_scored[who], rejected=self.trainer_rejected[who]
            )
            count -= 1
    return count


@internal
def _snapshot_validators(round_id: uint256, seed: bytes32) -> uint256:
    # The round's validators, fixed when commits close; distrusted validators stay out (and are logged). Committee
    # rounds store them as a list whose windows are the committees, shuffled with the seed (inside-out
    # Fisher-Yates) so each window is a uniformly random set: members admitted one after another do not sit on
    # committees together. Rounds without committees only count them (the number of scores to wait for).
    count: uint256 = 0
    for i: uint256 in range(staticcall self.consortium.member_count(), bound=MAX_MEMBERS):
        who: address = staticcall self.consortium.member_at(i)
        if staticcall self.consortium.has_role(who, ROLE_VALIDATOR):
            if self._distrusted(who):
                log ValidatorDistrusted(
                    round_id=round_id,
                    validator=who,
                    scored=self.validator_scored[who],
                    disagreed=self.validator_disagreed[who],
                )
                continue
            if count == MAX_VALIDATORS:
                break
            if self.committee_size == 0:
                count += 1
                continue
            j: uint256 = count
            if seed != empty(bytes32):
                j = convert(keccak256(concat(seed, b"shuffle", convert(count, bytes32))), uint256) % (count + 1)
            if j == count:
                self.round_validators[round_id].append(who)
            else:
                moved: address = self.round_validators[round_id][j]
                self.round_validators[round_id].append(moved)
                self.validator_slot[round_id][moved] = count + 1
                self.round_validators[round_id][j] = who
            self.validator_slot[round_id][who] = j + 1
            count += 1
    return count


@view
@internal
def _in_committee(round_id: uint256, index: uint256, validator: address) -> bool:
    # Update `index`'s committee: the `committee_size` validators that follow a seeded
    # start position in the round's (shuffled) validator list, skipping the update's owner.
    if self.committee_size == 0:
        return True
    n: uint256 = len(self.round_validators[round_id])
    slot: uint256 = self.validator_slot[round_id][validator]
    if slot == 0:
        return False
    start: uint256 = convert(keccak256(concat(self.rounds[round_id].committee_seed, convert(index, bytes32))), uint256) % n
    width: uint256 = self.committee_size
    owner_slot: uint256 = self.validator_slot[round_id][self.updates[round_id][index].member]
    if owner_slot != 0 and (owner_slot - 1 + n - start) % n < width:
        width += 1  # the owner's seat passes to the next validator
    return (slot - 1 + n - start) % n < width


@view
@internal
def _member_view(member: address) -> MemberView:
    round_id: uint256 = self.current_round
    roles: uint256 = 0
    for role: uint256 in [ROLE_ADMIN, ROLE_TRAINER, ROLE_VALIDATOR, ROLE_AGGREGATOR, ROLE_AUDITOR]:
        if staticcall self.consortium.has_role(member, role):
            roles |= role
    return MemberView(
        current_round=round_id,
        round=self.rounds[round_id],
        roles=roles,
        committed=self.commit_slot[round_id][member] != 0,
        scored=self.has_scored[round_id][member],
        proposed=self.has_proposed[round_id][member],
        timestamp=block.timestamp,
    )


@internal
def _open_secure(round_id: uint256):
    # A secure round starts with the key exchange among the trainers listed now;
    # its threshold is at least a strict majority of them (secrecy needs it).
    count: uint256 = 0
    for i: uint256 in range(staticcall self.consortium.member_count(), bound=MAX_MEMBERS):
        who: address = staticcall self.consortium.member_at(i)
        if staticcall self.consortium.has_role(who, ROLE_TRAINER):
            if count == MAX_UPDATES:
                break
            self.secure_members[round_id].append(who)
            count += 1
            self.secure_slot[round_id][who] = count
    self.secure_rounds[round_id] = SecureRound(
        threshold=max(self.secagg_threshold, count // 2 + 1),
        num_members=count,
        opened_block=block.number,
        num_adverts=0,
        num_bundles=0,
        num_reveals=0,
    )
    self.rounds[round_id].phase = PHASE_KEYS
    self.rounds[round_id].expected_trainers = count


@view
@internal
def _check_secure_commit(round_id: uint256, who: address):
    # In a secure round only members whose shares are out may commit a masked input.
    if self.secagg_threshold > 0:
        assert self.bundle_hashes[round_id][who] != empty(bytes32), "task: shares not posted"


@internal
def _close_secure_commits(round_id: uint256, num_updates: uint256):
    if num_updates < self.secure_rounds[round_id].threshold:
        self._abort(round_id, "too few masked inputs for the secagg threshold")
        return
    deadline: uint256 = block.timestamp + self.validate_duration
    self.rounds[round_id].phase = PHASE_UNMASK
    self.rounds[round_id].validate_deadline = deadline
    log CommitsClosed(round_id=round_id, num_updates=num_updates, validate_deadline=deadline, committee_seed=empty(bytes32))


@internal
def _abort(round_id: uint256, reason: String[64]):
    self.rounds[round_id].phase = PHASE_ABORTED
    log RoundAborted(round_id=round_id, reason=reason)


@pure
@internal
def _median(values: DynArray[uint256, MAX_VALIDATORS]) -> uint256:
    # Insertion sort: at most MAX_VALIDATORS values.
    xs: DynArray[uint256, MAX_VALIDATORS] = values
    n: uint256 = len(xs)
    for i: uint256 in range(1, n, bound=MAX_VALIDATORS):
        key: uint256 = xs[i]
        j: uint256 = i
        for _k: uint256 in range(MAX_VALIDATORS):
            if j == 0 or xs[j - 1] <= key:
                break
            xs[j] = xs[j - 1]
            j -= 1
        xs[j] = key
    if n % 2 == 1:
        return xs[n // 2]
    return (xs[n // 2 - 1] + xs[n // 2]) // 2
