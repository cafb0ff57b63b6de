# pragma version ~=0.4.3
"""
@title Validation committees
@custom:contract-name committees
@notice Which validators score which update. With `committee_size` > 0, each
        update is scored only by a committee of that many validators, drawn
        when commits close from a seed no committer could know (prevrandao and
        the previous block hash), so scoring costs grow with updates x
        committee size instead of updates x validators; a minority of lying
        validators in a committee cannot move its median. Without committees
        every validator but an update's owner scores it.
@dev The round's validators are fixed when commits close (committee rounds and
     reputation rounds); distrusted validators stay out and are logged.
"""

from . import membership
from . import round_core
from . import reputation
from . import staking

uses: (membership, round_core, reputation, staking)

committee_size: public(uint256)
# Committee and reputation rounds: the (trusted) validators when commits closed, and their position + 1.
round_validators: HashMap[uint256, DynArray[address, round_core.MAX_VALIDATORS]]
validator_slot: HashMap[uint256, HashMap[address, uint256]]


@deploy
def __init__(committee_size: uint256):
    """
    @notice Record the task's committee size.
    @param committee_size Validators scoring each update; 0 for every validator.
    """
    assert committee_size <= round_core.MAX_VALIDATORS, "task: committee size out of range"
    self.committee_size = committee_size


@view
@external
def is_round_validator(round_id: uint256, validator: address) -> bool:
    """
    @notice Whether `validator` may score in the round: in committee rounds, whether it is among the
            validators drawn from when commits closed; otherwise whether it holds the role and is not distrusted.
    @param round_id The round.
    @param validator The validator.
    @return True when it may score.
    """
    return self._is_round_validator(round_id, validator)


@view
@external
def committee_of(round_id: uint256, index: uint256) -> DynArray[address, round_core.MAX_VALIDATORS]:
    """
    @notice The validators drawn to score update `index` (committee rounds, once commits closed).
    @param round_id The round.
    @param index The update's index.
    @return Its committee, in the round's validator order (empty without committees).
    """
    return self._committee_of(round_id, index)


@view
@external
def scorers_of(round_id: uint256, index: uint256) -> DynArray[address, round_core.MAX_VALIDATORS]:
    """
    @notice The validators that may score update `index` once commits closed: its committee, or
            without committees every round validator but the update's owner, in admission order.
    @dev Public to all, which is what an adaptive liar exploits; the median is what holds.
    @param round_id The round.
    @param index The update's index.
    @return The scorers.
    """
    if self.committee_size > 0:
        return self._committee_of(round_id, index)
    result: DynArray[address, round_core.MAX_VALIDATORS] = []
    owner: address = round_core.updates[round_id][index].member
    for i: uint256 in range(membership._member_count(), bound=membership.MAX_MEMBERS):
        who: address = membership._member_at(i)
        if who != owner and self._is_round_validator(round_id, who):
            if len(result) == round_core.MAX_VALIDATORS:
                break
            result.append(who)
    return result


@view
@external
def assignments_of(round_id: uint256, validator: address) -> DynArray[uint256, round_core.MAX_UPDATES]:
    """
    @notice The updates `validator` may score in a round: those whose committee it
            sits on, or every other member's update when there are no committees.
    @param round_id The round.
    @param validator The validator.
    @return The updates' indices, increasing.
    """
    result: DynArray[uint256, round_core.MAX_UPDATES] = []
    own: uint256 = round_core.commit_slot[round_id][validator]
    if self.committee_size > 0 and self.validator_slot[round_id][validator] == 0:
        return result
    if reputation._distrusted(validator):
        return result
    for i: uint256 in range(round_core.rounds[round_id].num_updates, bound=round_core.MAX_UPDATES):
        if own != i + 1 and self._in_committee(round_id, i, validator):
            result.append(i)
    return result


@view
@internal
def _is_round_validator(round_id: uint256, validator: address) -> bool:
    """
    @notice See `is_round_validator`.
    @param round_id The round.
    @param validator The validator.
    @return True when it may score.
    """
    if self.committee_size > 0:
        return self.validator_slot[round_id][validator] != 0
    return membership._has_role(validator, membership.ROLE_VALIDATOR) and not reputation._distrusted(validator) \
        and staking._staked(validator, membership.ROLE_VALIDATOR)


@view
@internal
def _committee_of(round_id: uint256, index: uint256) -> DynArray[address, round_core.MAX_VALIDATORS]:
    """
    @notice See `committee_of`.
    @param round_id The round.
    @param index The update's index.
    @return Its committee.
    """
    result: DynArray[address, round_core.MAX_VALIDATORS] = []
    if self.committee_size == 0 or index >= round_core.rounds[round_id].num_updates:
        return result
    owner: address = round_core.updates[round_id][index].member
    for v: address in self.round_validators[round_id]:
        if v != owner and self._in_committee(round_id, index, v):
            result.append(v)
    return result


@internal
def _snapshot_validators(round_id: uint256, seed: bytes32) -> uint256:
    """
    @notice Fix the round's validators when its commits close; distrusted validators stay out
            (and are logged), and so do validators without the stake a gated task requires.
    @dev Committee rounds store them as a list whose windows are the committees, shuffled with
         the seed (inside-out Fisher-Yates) so each window is a uniformly random set: members
         admitted one after another do not sit on committees together. Rounds without committees
         only count them (the number of scores to wait for).
    @param round_id The round.
    @param seed The committee seed (zero: no shuffle).
    @return How many validators the round has.
    """
    count: uint256 = 0
    for i: uint256 in range(membership._member_count(), bound=membership.MAX_MEMBERS):
        who: address = membership._member_at(i)
        if not membership._has_role(who, membership.ROLE_VALIDATOR):
            continue
        if not reputation._trusted_validator(round_id, who):
            continue
        if not staking._staked(who, membership.ROLE_VALIDATOR):
            continue
        if count == round_core.MAX_VALIDATORS:
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
    """
    @notice Whether `validator` sits on update `index`'s committee: the `committee_size`
            validators that follow a seeded start position in the round's (shuffled) validator
            list, skipping the update's owner. Always true without committees.
    @param round_id The round.
    @param index The update's index.
    @param validator The validator.
    @return True when it sits on the committee.
    """
    if self.committee_size == 0:
        return True
    n: uint256 = len(self.round_validators[round_id])
    slot: uint256 = self.validator_slot[round_id][validator]
    if slot == 0:
        return False
    seed: bytes32 = round_core.rounds[round_id].committee_seed
    start: uint256 = convert(keccak256(concat(seed, convert(index, bytes32))), uint256) % n
    width: uint256 = self.committee_size
    owner_slot: uint256 = self.validator_slot[round_id][round_core.updates[round_id][index].member]
    if owner_slot != 0 and (owner_slot - 1 + n - start) % n < width:
        width += 1  # the owner's seat passes to the next validator
    return (slot - 1 + n - start) % n < width
