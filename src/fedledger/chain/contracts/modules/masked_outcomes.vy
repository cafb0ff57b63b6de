# pragma version ~=0.4.3
"""
@title Masked-check outcomes of secure rounds
@custom:contract-name masked_outcomes
@notice Secure rounds whose masked updates are screened by a committee (MPyC, honest
        majority): OPEN (each trainer commits the hash of its share bundle, encrypted
        to the committee) -> VALIDATE (each committee member posts the outcome: the
        pass/fail set over the committed updates and the hash of the outcome blob with
        the revealed sum and transcript) -> AGGREGATE over the set a strict majority of
        the committee posted, or ABORTED when no outcome reaches that majority.
@dev The committee is drawn at round opening from the aggregators with a registered
     key-agreement key, with the block's public randomness (`prevrandao`): members
     must know whom to encrypt their shares to before they commit. Privacy and the
     outcome's correctness rest on an honest majority of the committee; the contract
     only counts identical outcomes.
"""

from . import membership
from . import round_core

uses: (membership, round_core)


# The largest committee: an MPyC committee's work grows with its square.
MAX_CHECKERS: constant(uint256) = 15

event CheckCommittee:
    round_id: indexed(uint256)
    seed: bytes32

event CheckOutcomePosted:
    round_id: indexed(uint256)
    checker: indexed(address)
    outcome_hash: bytes32
    accepted_mask: uint256
    votes: uint256

event CheckAbortPosted:
    round_id: indexed(uint256)
    checker: indexed(address)
    abort_hash: bytes32

event ChecksAccepted:
    round_id: indexed(uint256)
    outcome_hash: bytes32
    accepted_mask: uint256
    num_accepted: uint256

event CheckerSilent:
    round_id: indexed(uint256)
    checker: indexed(address)


# 0: the task's secure rounds have no masked checks; otherwise the committee size (odd, 3..MAX_CHECKERS).
check_committee_size: public(uint256)
check_members: HashMap[uint256, DynArray[address, MAX_CHECKERS]]
check_seat: HashMap[uint256, HashMap[address, uint256]]  # round -> member -> position + 1
# round -> checker -> digest of what it posted (keccak of the accepted set and outcome hash, or of the abort hash)
posted_digest: public(HashMap[uint256, HashMap[address, bytes32]])
digest_votes: HashMap[uint256, HashMap[bytes32, uint256]]
num_posted: HashMap[uint256, uint256]
# round -> the outcome blob hash the majority posted (zero until one did)
accepted_outcome: public(HashMap[uint256, bytes32])


@deploy
def __init__(committee_size: uint256):
    """
    @notice Record the size of the masked-check committee (0: no masked checks).
    @param committee_size 0, or an odd size from 3 to MAX_CHECKERS (an honest majority needs 2t + 1).
    """
    assert committee_size == 0 or (committee_size >= 3 and committee_size <= MAX_CHECKERS and committee_size % 2 == 1), \
        "task: check committee size out of range"
    self.check_committee_size = committee_size


@external
def post_check_outcome(round_id: uint256, accepted: uint256[round_core.ACCEPTED_WORDS], outcome_hash: bytes32):
    """
    @notice VALIDATE: a committee member posts the outcome of the masked checks, once; when
            a strict majority of the committee posted the same one, the round aggregates
            its accepted set.
    @param round_id The current round, in masked checks.
    @param accepted The updates that passed (bit i of word w = update 256 * w + i).
    @param outcome_hash sha256 of the outcome blob (verdicts, revealed sum, transcript).
    """
    num_updates: uint256 = self._check_post(round_id, outcome_hash)
    every: uint256[round_core.ACCEPTED_WORDS] = round_core._every_update(num_updates)
    for w: uint256 in range(round_core.ACCEPTED_WORDS):
        assert accepted[w] & every[w] == accepted[w], "task: accepted set names unknown updates"
    count: uint256 = 0
    for i: uint256 in range(num_updates, bound=round_core.MAX_UPDATES):
        count += (accepted[i // 256] >> (i % 256)) & 1
    digest: bytes32 = keccak256(abi_encode(accepted, outcome_hash))
    votes: uint256 = self._record(round_id, digest)
    log CheckOutcomePosted(
        round_id=round_id, checker=msg.sender, outcome_hash=outcome_hash, accepted_mask=accepted[0], votes=votes
    )
    if votes * 2 <= self.check_committee_size:
        return
    # The phase ends here: a committee member that had not posted yet is late, not silent, and is not named.
    self.accepted_outcome[round_id] = outcome_hash
    log ChecksAccepted(round_id=round_id, outcome_hash=outcome_hash, accepted_mask=accepted[0], num_accepted=count)
    if count < round_core.min_commitments:
        round_core._abort(round_id, "too few updates passed the masked checks")
        return
    round_core._start_aggregation(round_id, accepted, count)


@external
def post_check_abort(round_id: uint256, abort_hash: bytes32):
    """
    @notice VALIDATE: a committee member whose checks could not finish (a committee member
            stopped answering) posts the hash of its abort record, once, naming who it waited for.
    @param round_id The current round, in masked checks.
    @param abort_hash sha256 of the abort blob.
    """
    self._check_post(round_id, abort_hash)
    self._record(round_id, keccak256(abi_encode(abort_hash)))
    log CheckAbortPosted(round_id=round_id, checker=msg.sender, abort_hash=abort_hash)


@external
def close_checks(round_id: uint256):
    """
    @notice End the masked checks without a majority outcome (after the deadline, or early once
            every committee member posted): the round aborts and the committee members that
            posted nothing are named.
    @param round_id The current round, in masked checks.
    """
    round_core._check_member(msg.sender)
    self._check_phase(round_id)
    assert block.timestamp > round_core.rounds[round_id].validate_deadline or \
        self.num_posted[round_id] >= self.check_committee_size, "task: check phase still running"
    self._name_silent(round_id)
    round_core._abort(round_id, "masked checks: no majority outcome from the committee")


@view
@external
def check_committee(round_id: uint256) -> DynArray[address, MAX_CHECKERS]:
    """
    @notice The masked-check committee of a round, in party order (MPyC party i = entry i).
    @param round_id The round.
    @return Its members.
    """
    return self.check_members[round_id]


@view
@internal
def _enabled() -> bool:
    """
    @notice Whether the task's secure rounds run masked checks.
    @return True with a check committee.
    """
    return self.check_committee_size != 0


@internal
def _draw_committee(round_id: uint256) -> bool:
    """
    @notice Draw the round's committee from the aggregators with a key-agreement key (a partial
            Fisher-Yates shuffle driven by the block's public randomness).
    @param round_id The round that opens.
    @return False when fewer such aggregators than the committee size exist.
    """
    pool: DynArray[address, membership.MAX_MEMBERS] = []
    for i: uint256 in range(membership._member_count(), bound=membership.MAX_MEMBERS):
        who: address = membership._member_at(i)
        if membership._has_role(who, membership.ROLE_AGGREGATOR) and membership._kx_public_key(who) != empty(bytes32):
            pool.append(who)
    size: uint256 = self.check_committee_size
    if len(pool) < size:
        return False
    seed: bytes32 = keccak256(abi_encode(block.prevrandao, round_id))
    for k: uint256 in range(MAX_CHECKERS):
        if k == size:
            break
        j: uint256 = k + convert(keccak256(abi_encode(seed, k)), uint256) % (len(pool) - k)
        chosen: address = pool[j]
        pool[j] = pool[k]
        pool[k] = chosen
        self.check_members[round_id].append(chosen)
        self.check_seat[round_id][chosen] = k + 1
    log CheckCommittee(round_id=round_id, seed=seed)
    return True


@view
@internal
def _check_phase(round_id: uint256):
    """
    @notice Outcomes are posted and closed only while a round with masked checks is in its check phase.
    @param round_id The round.
    """
    assert self.check_committee_size != 0 and round_core._phase(round_id) == round_core.PHASE_VALIDATE, \
        "task: round not in masked checks"


@view
@internal
def _check_post(round_id: uint256, posted_hash: bytes32) -> uint256:
    """
    @notice The checks of a committee member's post: on the committee, the phase, in time, once.
    @param round_id The round.
    @param posted_hash The posted blob hash.
    @return The round's number of updates.
    """
    assert self.check_seat[round_id][msg.sender] != 0, "task: caller is not on the check committee"
    self._check_phase(round_id)
    assert block.timestamp <= round_core.rounds[round_id].validate_deadline, "task: check deadline passed"
    assert posted_hash != empty(bytes32), "task: zero hash"
    assert self.posted_digest[round_id][msg.sender] == empty(bytes32), "task: outcome already posted"
    return round_core.rounds[round_id].num_updates


@internal
def _record(round_id: uint256, digest: bytes32) -> uint256:
    """
    @notice Record the caller's post and count it for its digest.
    @param round_id The round.
    @param digest What it posted.
    @return How many committee members posted that digest.
    """
    self.posted_digest[round_id][msg.sender] = digest
    self.num_posted[round_id] += 1
    votes: uint256 = self.digest_votes[round_id][digest] + 1
    self.digest_votes[round_id][digest] = votes
    return votes


@internal
def _name_silent(round_id: uint256):
    """
    @notice Name the committee members that posted nothing, as the check phase ends.
    @param round_id The round.
    """
    for who: address in self.check_members[round_id]:
        if self.posted_digest[round_id][who] == empty(bytes32):
            log CheckerSilent(round_id=round_id, checker=who)
