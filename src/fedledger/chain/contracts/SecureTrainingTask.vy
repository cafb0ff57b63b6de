# pragma version ~=0.4.3
# pragma optimize codesize
"""
@title fedledger training task, secure-aggregation rounds
@custom:contract-name SecureTrainingTask
@notice One federated learning task whose rounds are secure-aggregation rounds
        (Bonawitz et al., CCS 2017): KEYS -> SHARES -> OPEN (masked inputs) ->
        UNMASK -> AGGREGATE -> FINALIZED, or ABORTED when a step has fewer
        members than the round's threshold or a quorum is missed.
@dev Composed of the shared modules: the round core (`round_core`), provenance
     and the secure phases (`secure_phases`). Nobody sees an update in the
     clear, so nothing is scored: no committees and no reputation.
     With a check committee (`masked_outcomes`), members share each update to a
     committee that screens it without seeing it: OPEN -> VALIDATE (committee
     outcomes) -> AGGREGATE. Validated rounds are `TrainingTask`'s; a task runs one kind.
"""

from interfaces import ITrainingTask
from modules import membership
from modules import round_core
from modules import governed
from modules import provenance
from modules import secure_phases
from modules import masked_outcomes

initializes: membership
initializes: round_core[membership := membership]
initializes: governed[membership := membership, round_core := round_core]
initializes: provenance
initializes: secure_phases[membership := membership, round_core := round_core]
initializes: masked_outcomes[membership := membership, round_core := round_core]

implements: ITrainingTask

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
    round_core.has_proposed,
    round_core.proposal_votes,
    round_core.flag_update,
    round_core.propose_aggregate,
    round_core.close_aggregation,
    round_core.updates_of,
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
    secure_phases.secagg_threshold,
    secure_phases.secure_rounds,
    secure_phases.post_key_advert,
    secure_phases.close_keys,
    secure_phases.post_share_bundle,
    secure_phases.close_shares,
    secure_phases.submit_reveal,
    secure_phases.close_unmask,
    secure_phases.secure_view,
    secure_phases.secure_adverts,
    secure_phases.secure_peers,
    governed.paused,
    governed.param_low,
    governed.param_high,
    governed.staged,
    governed.set_paused,
    governed.set_param,
    governed.check_governed_call,
    masked_outcomes.check_committee_size,
    masked_outcomes.accepted_outcome,
    masked_outcomes.post_check_outcome,
    masked_outcomes.post_check_abort,
    masked_outcomes.close_checks,
    masked_outcomes.check_committee,
    masked_outcomes.posted_digest,
)

# Recorded so the task's parameters read back as they were given; secure rounds keep no reputation.
reputation_warmup: public(uint256)
# Always zero: secure rounds take no stake (read back like the other kind's gate).
stake_gate: public(constant(address)) = empty(address)


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
    reputation_warmup_: uint256,
    max_rejection: uint256,
    min_mean_score: uint256,
    min_approvals: uint256,
    stake_gate_: address,
    param_bounds: DynArray[governed.ParamBounds, governed.MAX_PARAMS],
):
    """
    @notice Create a task; only an admin of `consortium` may. Both task kinds take the same
            parameters; this kind refuses committees and reputation, which need scored rounds.
    @param consortium The Consortium contract whose members take part.
    @param config_hash Hash of the task configuration (model, hyperparameters, rules, privacy).
    @param initial_model Hash of the round-1 global model blob.
    @param min_commitments Fewest commitments with which a round goes on.
    @param commit_duration Seconds each key, share and commit phase lasts.
    @param validate_duration Seconds each unmasking phase lasts.
    @param aggregate_duration Seconds each aggregation phase lasts.
    @param acceptance_threshold Recorded with the configuration; secure rounds accept every masked input.
    @param proposal_quorum Identical aggregate proposals needed to finalize.
    @param max_rounds Rounds the task runs; 0 for no limit.
    @param committee_size 0, or the size of the committee that screens masked updates (masked checks).
    @param data_registry DataRegistry checking each commitment's dataset; zero for no dataset checks.
    @param purpose keccak256 of the task's canonical purpose name (as DataRegistry stores purposes).
    @param privacy_budget Cumulative epsilon a member may declare, in micro-epsilon; 0 for a task without DP.
    @param secagg_threshold Fewest members whose messages unmask a round (raised to a strict
           majority of each round's trainers), at least 1.
    @param max_disagreement Must be 0: reputation needs scored rounds.
    @param reputation_warmup_ Recorded only.
    @param max_rejection Must be 0: reputation needs scored rounds.
    @param min_mean_score Must be 0: reputation needs scored rounds.
    @param min_approvals Must be 0: approvals are scores of plain updates.
    @param stake_gate_ Must be zero: rewards and slashing rest on validators' scores, which secure
           rounds never have.
    @param param_bounds The parameters the consortium may change by vote later, each with its bounds.
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
    assert committee_size <= round_core.MAX_VALIDATORS, "task: committee size out of range"
    provenance.__init__(data_registry, purpose, privacy_budget)
    secure_phases.__init__(secagg_threshold)
    masked_outcomes.__init__(committee_size)
    assert min_approvals == 0, "task: approvals score plain updates only"
    assert max_disagreement <= round_core.SCORE_SCALE, "task: max disagreement out of range"
    assert max_rejection <= round_core.SCORE_SCALE, "task: max rejection out of range"
    assert min_mean_score <= round_core.SCORE_SCALE, "task: min mean score out of range"
    assert max_disagreement + max_rejection + min_mean_score == 0, "task: reputation needs scored rounds"
    assert stake_gate_ == empty(address), "task: stake needs scored rounds"
    governed.__init__(param_bounds)
    self.reputation_warmup = reputation_warmup_


@external
def open_round() -> uint256:
    """
    @notice Open the next round on the latest finalized model, starting with the key
            exchange among the trainers listed now.
    @return The new round id (rounds count from 1).
    """
    round_id: uint256 = round_core._next_round()
    governed._open_check(round_id)
    if not masked_outcomes._enabled():
        round_core._open(round_id, round_core.PHASE_KEYS, secure_phases._list_trainers(round_id))
        return round_id
    # Masked checks: members share their updates to a committee drawn now, and commit at once.
    round_core._open(round_id, round_core.PHASE_OPEN, secure_phases._list_trainers(round_id))
    if not masked_outcomes._draw_committee(round_id):
        round_core._abort(round_id, "too few aggregators with keys for the check committee")
    return round_id


@external
def commit_update(
    round_id: uint256, update_hash: bytes32, num_examples: uint256, dataset_id: uint256, epsilon_micro: uint256
) -> uint256:
    """
    @notice Commit the hash of this member's masked input for the round (once); only
            members whose share bundle is out. Under masked checks: the hash of its
            share bundle for the check committee.
    @param round_id The current round, open.
    @param update_hash sha256 of the masked input blob in the store.
    @param num_examples Local examples the input was trained on (FedAvg weight).
    @param dataset_id The DataRegistry dataset it was trained on (checked when the task has a registry).
    @param epsilon_micro The member's cumulative privacy spend after this update, in micro-epsilon
           (checked when the task has a privacy budget).
    @return The input's index in the round.
    """
    assert membership._has_role(msg.sender, membership.ROLE_TRAINER), "task: caller is not a trainer"
    assert round_core._phase(round_id) == round_core.PHASE_OPEN, "task: round not open"
    round_core._check_commit(round_id, msg.sender, update_hash, num_examples)
    if not masked_outcomes._enabled():
        secure_phases._check_commit(round_id)
    index: uint256 = round_core._next_index(round_id)
    provenance._check(msg.sender, dataset_id, epsilon_micro)
    round_core._record_update(round_id, index, msg.sender, update_hash, num_examples, dataset_id, epsilon_micro)
    return index


@external
def close_commits(round_id: uint256):
    """
    @notice End the commit phase (early once every member that shared committed, otherwise
            after the deadline) and start unmasking; too few inputs abort the round.
    @param round_id The current round, open.
    """
    num_updates: uint256 = round_core._ready_to_close_commits(round_id)
    if num_updates == 0:
        return
    if masked_outcomes._enabled():
        round_core._close_commits(round_id, num_updates, round_core.PHASE_VALIDATE, empty(bytes32))
    else:
        secure_phases._close_commits(round_id, num_updates)
