# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title fedledger training task, validated rounds
@custom:contract-name TrainingTask
@notice One federated learning task whose rounds are validated: its
        configuration commitment and its rounds. A round moves OPEN (accepting
        update commitments) -> VALIDATE (validators score every update) ->
        AGGREGATE (aggregators propose the next model) -> FINALIZED, or to
        ABORTED when a quorum is missed.
@dev Composed of the shared modules: the round core (`round_core`), committees,
     validator and trainer reputation, provenance and scoring (`validation`).
     Secure-aggregation rounds are `SecureTrainingTask`'s; a task runs one kind.
"""

from interfaces import ITrainingTask
from modules import membership
from modules import round_core
from modules import governed
from modules import provenance
from modules import reputation
from modules import committees
from modules import validation
from modules import staking

initializes: membership
initializes: round_core[membership := membership]
initializes: governed[membership := membership, round_core := round_core]
initializes: provenance
initializes: reputation[membership := membership]
initializes: staking
initializes: committees[membership := membership, round_core := round_core, reputation := reputation, staking := staking]
initializes: validation[membership := membership, round_core := round_core, committees := committees, reputation := reputation, staking := staking]

implements: ITrainingTask


# The batch contract names the trainer whose leaf it is delivering while it calls `commit_update`.
interface IBatchDelivery:
    def delivering() -> address: view

exports: (
    membership.consortium,
    round_core.creator,
    round_core.config_hash,
    round_core.initial_model,
    round_core.min_commitments,
    round_core.commit_duration,
    round_core.validate_duration,
    round_core.aggregate_duration,
    round_core.acceptance_threshold,
    round_core.proposal_quorum,
    round_core.max_rounds,
    round_core.current_round,
    round_core.latest_model,
    round_core.rounds,
    round_core.updates,
    round_core.has_scored,
    round_core.has_proposed,
    round_core.proposal_votes,
    round_core.flag_update,
    round_core.propose_aggregate,
    round_core.close_aggregation,
    round_core.updates_of,
    round_core.updates_at,
    round_core.accepted_of,
    round_core.commit_index,
    round_core.phase_of,
    round_core.update_count,
    round_core.model_at,
    round_core.member_view,
    provenance.data_registry,
    provenance.purpose,
    provenance.privacy_budget,
    provenance.privacy_spent,
    reputation.max_disagreement,
    reputation.reputation_warmup,
    reputation.validator_scored,
    reputation.validator_disagreed,
    reputation.max_rejection,
    reputation.min_mean_score,
    reputation.trainer_scored,
    reputation.trainer_rejected,
    reputation.trainer_score_sum,
    reputation.trainer_left_out,
    reputation.clear_reputation,
    reputation.is_distrusted,
    reputation.is_trainer_distrusted,
    committees.committee_size,
    committees.round_committee,
    committees.committee_step,
    committees.is_round_validator,
    committees.committee_of,
    committees.assignments_of,
    validation.submit_scores,
    validation.close_validation,
    validation.scores_of,
    validation.min_approvals,
    staking.stake_gate,
    governed.paused,
    governed.param_low,
    governed.param_high,
    governed.staged,
    governed.set_paused,
    governed.set_param,
    governed.check_governed_call,
)

# Validated rounds are plain: the secure-aggregation threshold of this kind is always 0.
secagg_threshold: public(constant(uint256)) = 0

# The CommitmentBatches contract whose finalized batches deliver this task's batched commitments (zero: none).
commitment_batches: public(immutable(address))


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
    secagg_threshold_: uint256,
    max_disagreement: uint256,
    reputation_warmup: uint256,
    max_rejection: uint256,
    min_mean_score: uint256,
    min_approvals: uint256,
    stake_gate: address,
    param_bounds: DynArray[governed.ParamBounds, governed.MAX_PARAMS],
    commitment_batches_: address,
):
    """
    @notice Create a task; only an admin of `consortium` may. Both task kinds take the same
            parameters; this kind refuses a secure-aggregation threshold.
    @param consortium The Consortium contract whose members take part.
    @param config_hash Hash of the task configuration (model, hyperparameters, rules, privacy).
    @param initial_model Hash of the round-1 global model blob.
    @param min_commitments Fewest commitments with which a round goes on.
    @param commit_duration Seconds each commit phase lasts.
    @param validate_duration Seconds each validation phase lasts.
    @param aggregate_duration Seconds each aggregation phase lasts.
    @param acceptance_threshold Deciding score (0..10000) an update needs to be accepted.
    @param proposal_quorum Identical aggregate proposals needed to finalize.
    @param max_rounds Rounds the task runs; 0 for no limit.
    @param committee_size Validators scoring each update; 0 for every validator in small rounds and
           committees of the default size in large ones (see `committees`).
    @param data_registry DataRegistry checking each commitment's dataset; zero for no dataset checks.
    @param purpose keccak256 of the task's canonical purpose name (as DataRegistry stores purposes).
    @param privacy_budget Cumulative epsilon a member may declare, in micro-epsilon; 0 for a task without DP.
    @param secagg_threshold_ Must be 0: secure rounds are `SecureTrainingTask`'s.
    @param max_disagreement Basis points of a validator's scores against the outcome above
           which it is distrusted; 0 for no validator reputation.
    @param reputation_warmup Fewest scores a validator gives (scored updates a trainer commits) before it
           can be distrusted.
    @param max_rejection Basis points of a trainer's scored updates rejected above which it is
           distrusted; 0 for no trainer reputation by rejections.
    @param min_mean_score Mean deciding score (0..10000) below which a trainer is distrusted;
           0 for no trainer reputation by scores.
    @param min_approvals Scores at or above the threshold an update needs; 0 for acceptance by the
           committee median.
    @param stake_gate The contract that says whether a member deposited its role's stake (the task's
           Incentives); zero for no stake. A gated task refuses unstaked trainers' commitments and
           unstaked validators' scores, and seats no unstaked validator.
    @param param_bounds The parameters the consortium may change by vote later, each with its bounds.
    @param commitment_batches_ The CommitmentBatches contract allowed to deliver finalized batches of signed
           commitments (through `commit_update`, for each leaf's trainer); zero for a task whose trainers only
           commit themselves.
    """
    membership.__init__(consortium)
    round_core.__init__(
        config_hash,
        initial_model,
        min_commitments,
        commit_duration,
        validate_duration,
        aggregate_duration,
        acceptance_threshold,
        proposal_quorum,
        max_rounds,
    )
    committees.__init__(committee_size)
    provenance.__init__(data_registry, purpose, privacy_budget)
    assert secagg_threshold_ == 0, "task: secagg threshold out of range"
    reputation.__init__(max_disagreement, reputation_warmup, max_rejection, min_mean_score)
    validation.__init__(min_approvals)
    staking.__init__(stake_gate)
    governed.__init__(param_bounds)
    commitment_batches = commitment_batches_


@external
def open_round() -> uint256:
    """
    @notice Open the next round on the latest finalized model; trainers that trainer
            reputation distrusts now are left out of it.
    @return The new round id (rounds count from 1).
    """
    round_id: uint256 = round_core._next_round()
    governed._open_check(round_id)
    round_core._open(round_id, round_core.PHASE_OPEN, reputation._count_trainers(round_id))
    committees._fix_size(round_id)
    return round_id


@external
def commit_update(
    round_id: uint256, update_hash: bytes32, num_examples: uint256, dataset_id: uint256, epsilon_micro: uint256
) -> uint256:
    """
    @notice Commit the hash of this member's update for the round (once). The task's CommitmentBatches
            contract calls it too, once per leaf of a finalized batch it delivers, for the trainer who
            signed the leaf: the leaf is held to every rule below, and one that breaks a rule reverts
            alone (the batch contract logs why).
    @param round_id The current round, open.
    @param update_hash sha256 of the update blob in the store.
    @param num_examples Local examples the update was trained on (FedAvg weight).
    @param dataset_id The DataRegistry dataset the update was trained on (checked when the task has a registry).
    @param epsilon_micro The member's cumulative privacy spend after this update, in micro-epsilon
           (checked when the task has a privacy budget).
    @return The update's index in the round.
    """
    member: address = msg.sender
    if member == commitment_batches:
        member = staticcall IBatchDelivery(member).delivering()
    assert membership._has_role(member, membership.ROLE_TRAINER), "task: caller is not a trainer"
    assert round_core._phase(round_id) == round_core.PHASE_OPEN, "task: round not open"
    assert not reputation.trainer_left_out[round_id][member], "task: trainer distrusted"
    assert staking._staked(member, membership.ROLE_TRAINER), "task: trainer not staked"
    round_core._check_commit(round_id, member, update_hash, num_examples)
    index: uint256 = round_core._next_index(round_id)
    provenance._check(member, dataset_id, epsilon_micro)
    round_core._record_update(round_id, index, member, update_hash, num_examples, dataset_id, epsilon_micro)
    committees._count_committer(round_id, member)
    return index


@external
def close_commits(round_id: uint256):
    """
    @notice End the commit phase: early once every trainer committed, otherwise
            after the deadline. Too few commitments abort the round. Committee rounds
            draw their committees now; other reputation rounds (and rounds of a
            stake-gated task) fix their validators now.
    @param round_id The current round, open.
    """
    num_updates: uint256 = round_core._ready_to_close_commits(round_id)
    if num_updates == 0:
        return
    seed: bytes32 = empty(bytes32)
    if committees.round_committee[round_id] > 0:
        # Unknown to every committer: drawn after the last commitment was mined.
        seed = keccak256(concat(block.prevrandao, blockhash(block.number - 1), convert(round_id, bytes32)))
        committees._draw(round_id, seed, num_updates)
    elif reputation._validators_on() or staking.stake_gate != empty(address):
        round_core.rounds[round_id].expected_validators = committees._count_validators(round_id)
    round_core._close_commits(round_id, num_updates, round_core.PHASE_VALIDATE, seed)
