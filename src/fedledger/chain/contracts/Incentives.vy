# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title fedledger incentives: reward pool, contributions, stake and slashing
@custom:contract-name Incentives
@notice The rewards of one validated-rounds TrainingTask. Anyone funds a pool (native currency or
        one ERC-20 token); the validators that scored a finalized round post a contribution value
        (0..10000) per accepted update; settling the round credits the pool's reward for the round
        to the accepted updates' committers in proportion to the median of their posted values;
        members then claim what they earned (pull payments). Members deposit the stake their role
        requires; a clearly harmful update or a distrusted validator loses a share of it to the
        pool; stakes come back only after the task ended and a dispute window passed.
@dev Deploy this first, then the task with `stake_gate` = this contract, then `bind_task`.
     Invariant: total_allocated <= total_funded + total_slashed, and total_paid <= total_allocated,
     so the contract never owes more than it holds. Rounding dust of a round's split stays in the pool.
"""

from ethereum.ercs import IERC20
from interfaces import IConsortium

ROLE_ADMIN: constant(uint256) = 1
ROLE_TRAINER: constant(uint256) = 2
ROLE_VALIDATOR: constant(uint256) = 4
PHASE_AGGREGATE: constant(uint8) = 3
PHASE_FINALIZED: constant(uint8) = 4
PHASE_ABORTED: constant(uint8) = 5
MAX_UPDATES: constant(uint256) = 128
MAX_VALIDATORS: constant(uint256) = 64
SCALE: constant(uint256) = 10000


# The task's round record, as its public `rounds` getter returns it.
struct TaskRound:
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


# The task's update record, as its public `updates` getter returns it.
struct TaskUpdate:
    member: address
    update_hash: bytes32
    num_examples: uint256
    block_number: uint256
    dataset_id: uint256
    epsilon_micro: uint256


interface ITask:
    def consortium() -> address: view
    def stake_gate() -> address: view
    def rounds(round_id: uint256) -> TaskRound: view
    def updates(round_id: uint256, index: uint256) -> TaskUpdate: view
    def current_round() -> uint256: view
    def max_rounds() -> uint256: view
    def acceptance_threshold() -> uint256: view
    def commit_index(round_id: uint256, member: address) -> uint256: view
    def has_scored(round_id: uint256, validator: address) -> bool: view
    def assignments_of(round_id: uint256, validator: address) -> DynArray[uint256, MAX_UPDATES]: view
    def scores_of(round_id: uint256, index: uint256) -> DynArray[uint256, MAX_VALIDATORS]: view
    def is_distrusted(validator: address) -> bool: view


consortium: public(IConsortium)
creator: public(address)
task: public(ITask)
token: public(address)
reward_per_round: public(uint256)
trainer_stake: public(uint256)
validator_stake: public(uint256)
trainer_slash_bps: public(uint256)
validator_slash_bps: public(uint256)
contribution_window: public(uint256)
dispute_window: public(uint256)

total_funded: public(uint256)
total_slashed: public(uint256)
total_allocated: public(uint256)
total_paid: public(uint256)
total_staked: public(uint256)
ended_at: public(uint256)

earned: public(HashMap[address, uint256])
stake_of: public(HashMap[address, uint256])
slashed_of: public(HashMap[address, uint256])
settled: public(HashMap[uint256, bool])
contribution_of: public(HashMap[uint256, HashMap[uint256, uint256]])
has_posted: public(HashMap[uint256, HashMap[address, bool]])
posters: public(HashMap[uint256, uint256])
update_slashed: public(HashMap[uint256, HashMap[uint256, bool]])
# validator -> the task's current round when it was last slashed (0: never slashed).
validator_slashed_round: public(HashMap[address, uint256])
posted_values: HashMap[uint256, HashMap[uint256, DynArray[uint256, MAX_VALIDATORS]]]


event TaskBound:
    task: indexed(address)

event Funded:
    funder: indexed(address)
    amount: uint256

event StakeDeposited:
    member: indexed(address)
    amount: uint256
    stake: uint256

event ContributionsPosted:
    round_id: indexed(uint256)
    validator: indexed(address)
    indices: DynArray[uint256, MAX_UPDATES]
    values: DynArray[uint256, MAX_UPDATES]

event RewardCredited:
    round_id: indexed(uint256)
    member: indexed(address)
    index: uint256
    contribution: uint256
    amount: uint256

event RoundSettled:
    round_id: indexed(uint256)
    budget: uint256
    allocated: uint256
    total_contribution: uint256

event Claimed:
    member: indexed(address)
    amount: uint256

event Slashed:
    member: indexed(address)
    amount: uint256
    reason: String[32]

event TaskEnded:
    ended_at: uint256

event StakeWithdrawn:
    member: indexed(address)
    amount: uint256


@deploy
def __init__(
    consortium: address,
    token: address,
    reward_per_round: uint256,
    trainer_stake: uint256,
    validator_stake: uint256,
    trainer_slash_bps: uint256,
    validator_slash_bps: uint256,
    contribution_window: uint256,
    dispute_window: uint256,
):
    """
    @notice Create the incentives of one task; only an admin of `consortium` may.
    @param consortium The Consortium contract whose members take part.
    @param token The ERC-20 token of the pool and the stakes; zero for native currency.
    @param reward_per_round The most a settled round pays out of the pool.
    @param trainer_stake The stake a trainer deposits to commit updates (0: none).
    @param validator_stake The stake a validator deposits to score (0: none).
    @param trainer_slash_bps Basis points of its stake a trainer loses for a harmful update.
    @param validator_slash_bps Basis points of its stake a distrusted validator loses.
    @param contribution_window Seconds after a round's aggregation deadline in which its validators
           post contributions.
    @param dispute_window Seconds after the task's end before stakes can be withdrawn.
    """
    assert staticcall IConsortium(consortium).has_role(msg.sender, ROLE_ADMIN), "incentives: caller is not an admin"
    assert trainer_slash_bps <= SCALE and validator_slash_bps <= SCALE, "incentives: slash share out of range"
    assert contribution_window > 0, "incentives: zero contribution window"
    self.consortium = IConsortium(consortium)
    self.creator = msg.sender
    self.token = token
    self.reward_per_round = reward_per_round
    self.trainer_stake = trainer_stake
    self.validator_stake = validator_stake
    self.trainer_slash_bps = trainer_slash_bps
    self.validator_slash_bps = validator_slash_bps
    self.contribution_window = contribution_window
    self.dispute_window = dispute_window


@external
def bind_task(task: address):
    """
    @notice Name the task these incentives pay for (once, by the creator); the task must name this
            contract as its stake gate and belong to the same consortium.
    @param task The TrainingTask.
    """
    assert msg.sender == self.creator, "incentives: caller is not the creator"
    assert self.task.address == empty(address), "incentives: task already bound"
    assert task != empty(address), "incentives: zero task address"
    assert staticcall ITask(task).stake_gate() == self, "incentives: task does not name this contract"
    assert staticcall ITask(task).consortium() == self.consortium.address, "incentives: task of another consortium"
    self.task = ITask(task)
    log TaskBound(task=task)


@payable
@external
def fund(amount: uint256):
    """
    @notice Add `amount` to the reward pool: native currency sent with the call, or tokens the
            caller approved this contract to transfer. Anyone may fund.
    @param amount The amount (must equal the value sent, for native currency).
    """
    assert amount > 0, "incentives: zero amount"
    self._take(amount)
    self.total_funded += amount
    log Funded(funder=msg.sender, amount=amount)


@payable
@external
def deposit_stake(amount: uint256):
    """
    @notice Add `amount` to the caller's stake (native currency sent with the call, or approved tokens).
    @param amount The amount.
    """
    assert staticcall self.consortium.is_active(msg.sender), "incentives: caller is not a member"
    assert amount > 0, "incentives: zero amount"
    assert self.ended_at == 0, "incentives: task ended"
    self._take(amount)
    self.stake_of[msg.sender] += amount
    self.total_staked += amount
    log StakeDeposited(member=msg.sender, amount=amount, stake=self.stake_of[msg.sender])


@external
def post_contributions(
    round_id: uint256, indices: DynArray[uint256, MAX_UPDATES], values: DynArray[uint256, MAX_UPDATES]
):
    """
    @notice A validator's contribution values (0..10000) for the accepted updates of a finalized
            round it scored, by increasing index; once per validator and round, before the round's
            aggregation deadline plus the contribution window.
    @dev The aggregation deadline is the latest moment a round can finalize, so every round gets the
         same window from its last possible finalization. A member revoked since it scored no longer
         sways anyone's payout. Only validators that submitted scores in the round post: settling early waits for exactly the round's `num_scored` validators. Which
         updates it may post for is the task's `assignments_of` (its committee's, or every other
         update), read once and walked along the increasing indices: `scorers_of` per update would
         cost a pass over the members for each one.
    @param round_id A finalized round.
    @param indices The accepted updates' indices, increasing; each one the caller may score, not its own.
    @param values Their contribution values, in the same order.
    """
    assert staticcall self.consortium.is_active(msg.sender), "incentives: caller is not a member"
    task: ITask = self._bound()
    r: TaskRound = staticcall task.rounds(round_id)
    assert r.phase == PHASE_FINALIZED, "incentives: round not finalized"
    assert block.timestamp <= r.aggregate_deadline + self.contribution_window, "incentives: contribution window closed"
    assert not self.has_posted[round_id][msg.sender], "incentives: already posted"
    assert staticcall task.has_scored(round_id, msg.sender), "incentives: caller did not score the round"
    assert len(indices) == len(values), "incentives: indices and values differ in length"
    own: uint256 = staticcall task.commit_index(round_id, msg.sender)
    assigned: DynArray[uint256, MAX_UPDATES] = staticcall task.assignments_of(round_id, msg.sender)
    p: uint256 = 0
    for k: uint256 in range(len(indices), bound=MAX_UPDATES):
        i: uint256 = indices[k]
        assert k == 0 or i > indices[k - 1], "incentives: indices not increasing"
        assert i < r.num_updates and (r.accepted_mask >> i) & 1 == 1, "incentives: update not accepted"
        assert values[k] <= SCALE, "incentives: contribution out of range"
        assert own != i + 1, "incentives: own update"
        for _s: uint256 in range(MAX_UPDATES):
            if p == len(assigned) or assigned[p] >= i:
                break
            p += 1
        assert p < len(assigned) and assigned[p] == i, "incentives: caller is not a scorer of the update"
        self.posted_values[round_id][i].append(values[k])
    self.has_posted[round_id][msg.sender] = True
    self.posters[round_id] += 1
    log ContributionsPosted(round_id=round_id, validator=msg.sender, indices=indices, values=values)


@external
def settle_round(round_id: uint256):
    """
    @notice Credit a finalized round's reward (once): its contribution per accepted update is the
            median of the values posted for it (0 when none); min(reward_per_round, pool) is split
            among the accepted updates' committers in proportion to it. Anyone may settle, once
            every validator that scored the round posted, or after the contribution window.
    @dev Loops over the round's updates only (a bit test per update, the work per accepted one),
         never over members. Integer shares round down; the dust stays in the pool.
    @param round_id A finalized round.
    """
    task: ITask = self._bound()
    r: TaskRound = staticcall task.rounds(round_id)
    assert r.phase == PHASE_FINALIZED, "incentives: round not finalized"
    assert not self.settled[round_id], "incentives: round already settled"
    assert block.timestamp > r.aggregate_deadline + self.contribution_window or self.posters[round_id] >= r.num_scored, \
        "incentives: contribution window open"
    self.settled[round_id] = True
    total: uint256 = 0
    for i: uint256 in range(r.num_updates, bound=MAX_UPDATES):
        if (r.accepted_mask >> i) & 1 == 1:
            c: uint256 = self._median(self.posted_values[round_id][i])
            self.contribution_of[round_id][i] = c
            total += c
    budget: uint256 = min(self.reward_per_round, self._pool())
    allocated: uint256 = 0
    for i: uint256 in range(r.num_updates, bound=MAX_UPDATES):
        if (r.accepted_mask >> i) & 1 == 1:
            c: uint256 = self.contribution_of[round_id][i]
            amount: uint256 = 0
            if total > 0:
                amount = budget * c // total
            member: address = (staticcall task.updates(round_id, i)).member
            self.earned[member] += amount
            allocated += amount
            log RewardCredited(round_id=round_id, member=member, index=i, contribution=c, amount=amount)
    self.total_allocated += allocated
    log RoundSettled(round_id=round_id, budget=budget, allocated=allocated, total_contribution=total)


@nonreentrant
@external
def claim():
    """
    @notice Pay the caller everything it earned and has not claimed.
    @dev Credit is only ever allocated to active members, so a revoked member keeps what it earned
         while it was one: revocation ends participation, it does not confiscate past pay (left
         unclaimable, those funds would be neither the member's nor the pool's).
    """
    amount: uint256 = self.earned[msg.sender]
    if amount == 0:
        assert staticcall self.consortium.is_active(msg.sender), "incentives: caller is not a member"
    assert amount > 0, "incentives: nothing to claim"
    self.earned[msg.sender] = 0
    self.total_paid += amount
    self._pay(msg.sender, amount)
    log Claimed(member=msg.sender, amount=amount)


@external
def slash_trainer(round_id: uint256, index: uint256):
    """
    @notice Move `trainer_slash_bps` of a trainer's stake to the pool for a clearly harmful update:
            validation closed, the update was not accepted and every score it got is below the task's
            acceptance threshold. Anyone may call; once per update.
    @dev An update nobody scored is an abstention of its validators (offline, out of time), not
         evidence against the trainer, so it is not slashable. One score at or above the threshold
         means a validator found it acceptable: a disputed update, not a clearly harmful one.
    @param round_id The update's round, past validation.
    @param index The update's index.
    """
    task: ITask = self._bound()
    r: TaskRound = staticcall task.rounds(round_id)
    assert r.phase == PHASE_AGGREGATE or r.phase == PHASE_FINALIZED or r.phase == PHASE_ABORTED, \
        "incentives: validation not closed"
    assert index < r.num_updates, "incentives: unknown update"
    assert (r.accepted_mask >> index) & 1 == 0, "incentives: update accepted"
    assert not self.update_slashed[round_id][index], "incentives: update already slashed"
    scores: DynArray[uint256, MAX_VALIDATORS] = staticcall task.scores_of(round_id, index)
    assert len(scores) > 0, "incentives: update not scored"
    threshold: uint256 = staticcall task.acceptance_threshold()
    for s: uint256 in scores:
        assert s < threshold, "incentives: a validator accepted the update"
    self.update_slashed[round_id][index] = True
    self._slash((staticcall task.updates(round_id, index)).member, self.trainer_slash_bps, "harmful update")


@external
def slash_validator(validator: address, round_id: uint256):
    """
    @notice Move `validator_slash_bps` of a validator's stake to the pool while the task distrusts it
            (its scores too often against the committee outcome). Anyone may call; once per distrust
            episode.
    @dev A distrusted validator is refused scores and left out of rounds, so it scores again only
         after an admin cleared its record. An episode is therefore told apart by a round the
         validator scored after the task's current round at its last slash: the caller names it.
         (Counting its scores would not do: after a clear it may reach the same count again.)
    @param validator The validator.
    @param round_id A round the validator scored, after the round current at its last slash.
    """
    task: ITask = self._bound()
    assert staticcall task.is_distrusted(validator), "incentives: validator not distrusted"
    assert round_id > self.validator_slashed_round[validator], "incentives: validator already slashed for this record"
    assert staticcall task.has_scored(round_id, validator), "incentives: validator did not score the round"
    self.validator_slashed_round[validator] = staticcall task.current_round()
    self._slash(validator, self.validator_slash_bps, "distrusted validator")


@external
def mark_ended():
    """
    @notice Record when the task ended: all of its `max_rounds` rounds closed (finalized or
            aborted). Anyone may call, once. A task without a round limit never ends, so its stakes
            stay deposited.
    """
    task: ITask = self._bound()
    assert self.ended_at == 0, "incentives: end already recorded"
    last: uint256 = staticcall task.max_rounds()
    assert last > 0, "incentives: task has no round limit"
    phase: uint8 = (staticcall task.rounds(last)).phase
    assert phase == PHASE_FINALIZED or phase == PHASE_ABORTED, "incentives: task not ended"
    self.ended_at = block.timestamp
    log TaskEnded(ended_at=block.timestamp)


@nonreentrant
@external
def withdraw_stake():
    """
    @notice Return the caller's remaining stake, once the task ended and the dispute window passed.
    """
    assert self.ended_at != 0, "incentives: task not ended"
    assert block.timestamp >= self.ended_at + self.dispute_window, "incentives: dispute window open"
    amount: uint256 = self.stake_of[msg.sender]
    assert amount > 0, "incentives: no stake"
    self.stake_of[msg.sender] = 0
    self.total_staked -= amount
    self._pay(msg.sender, amount)
    log StakeWithdrawn(member=msg.sender, amount=amount)


@view
@external
def is_staked(member: address, role: uint256) -> bool:
    """
    @notice Whether `member` holds the stake `role` requires (the task's stake gate).
    @param member The member.
    @param role The trainer or validator role bit; other roles require no stake.
    @return True when its stake covers the requirement (always, when that is 0).
    """
    if role == ROLE_TRAINER:
        return self.stake_of[member] >= self.trainer_stake
    if role == ROLE_VALIDATOR:
        return self.stake_of[member] >= self.validator_stake
    return True


@view
@external
def pool() -> uint256:
    """
    @notice The pool not yet allocated to a round: funded plus slashed, less allocated.
    @return The amount.
    """
    return self._pool()


@view
@external
def contributions_posted(round_id: uint256, index: uint256) -> DynArray[uint256, MAX_VALIDATORS]:
    """
    @notice The contribution values posted for an update, in posting order.
    @param round_id The round.
    @param index The update's index.
    @return The values.
    """
    return self.posted_values[round_id][index]


@view
@internal
def _bound() -> ITask:
    """
    @notice The bound task; refuses before `bind_task`.
    @return The task.
    """
    assert self.task.address != empty(address), "incentives: no task bound"
    return self.task


@view
@internal
def _pool() -> uint256:
    """
    @notice See `pool`.
    @return The amount.
    """
    return self.total_funded + self.total_slashed - self.total_allocated


@internal
def _slash(member: address, bps: uint256, reason: String[32]):
    """
    @notice Move `bps` basis points of `member`'s stake to the pool and log it.
    @param member The slashed member.
    @param bps The share, in basis points.
    @param reason Why, logged.
    """
    amount: uint256 = self.stake_of[member] * bps // SCALE
    self.stake_of[member] -= amount
    self.slashed_of[member] += amount
    self.total_staked -= amount
    self.total_slashed += amount
    log Slashed(member=member, amount=amount, reason=reason)


@payable
@internal
def _take(amount: uint256):
    """
    @notice Receive `amount` from the caller: the value sent with the call, or a token transfer.
    @param amount The amount.
    """
    if self.token == empty(address):
        assert msg.value == amount, "incentives: value differs from amount"
        return
    assert msg.value == 0, "incentives: native value sent to a token pool"
    assert extcall IERC20(self.token).transferFrom(msg.sender, self, amount, default_return_value=True), \
        "incentives: token transfer failed"


@internal
def _pay(to: address, amount: uint256):
    """
    @notice Send `amount` to `to`, in native currency or the token; the caller updated its books first.
    @param to The recipient.
    @param amount The amount.
    """
    if self.token == empty(address):
        raw_call(to, b"", value=amount)
        return
    assert extcall IERC20(self.token).transfer(to, amount, default_return_value=True), \
        "incentives: token transfer failed"


@pure
@internal
def _median(values: DynArray[uint256, MAX_VALIDATORS]) -> uint256:
    """
    @notice The median of posted values, as the task takes the median of scores: the middle value,
            or the floor of the two middle values' mean; 0 for no values.
    @param values The values.
    @return Their median.
    """
    xs: DynArray[uint256, MAX_VALIDATORS] = values
    n: uint256 = len(xs)
    if n == 0:
        return 0
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
