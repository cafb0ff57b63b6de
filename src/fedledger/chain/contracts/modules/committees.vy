# pragma version ~=0.4.3
"""
@title Validation committees
@custom:contract-name committees
@notice Which validators score which update. A committee round gives each
        update a committee of validators instead of every validator, so
        scoring costs grow with updates x committee size instead of updates x
        validators; a minority of lying validators in a committee cannot move
        its median. A task with `committee_size` > 0 runs every round with
        committees of that size; a task with 0 runs committees of
        `AUTO_COMMITTEE_SIZE` once a round opens with more than
        `AUTO_COMMITTEE_ABOVE` validators, so no consortium outgrows its
        validation. Smaller rounds of such a task have every validator but an
        update's owner score it.
@dev Committees are drawn among the round's committers by their commit index,
     never by a scan of the member list: when commits close, a seed no committer
     could know (prevrandao and the previous block hash) picks a step `d`, a unit
     modulo the number of updates `n`, and update `i`'s committee is the owners of
     updates `i + d`, `i + 2d`, ... `i + c*d` (mod `n`). Every committer thus
     holds exactly `c` seats (those of updates `q - d` ... `q - c*d`), and either
     side of the relation costs O(c) to read. A committer that is not a trusted
     (and, in a gated task, staked) validator when it commits leaves its seats
     empty (a distrusted one is logged then). Rounds without committees fix their
     validators when commits close, as before: every trusted validator.
"""

from . import membership
from . import round_core
from . import reputation
from . import staking

uses: (membership, round_core, reputation, staking)

# A task with committee_size 0 draws committees of AUTO_COMMITTEE_SIZE in rounds that open with more validators.
AUTO_COMMITTEE_ABOVE: constant(uint256) = 10
AUTO_COMMITTEE_SIZE: constant(uint256) = 7

committee_size: public(uint256)
# Per round: the committee size in force (0: every validator scores every other update), fixed when it opens.
round_committee: public(HashMap[uint256, uint256])
# Per committee round: the seeded step between an update's index and its committee members' (fixed at close).
committee_step: public(HashMap[uint256, uint256])
# Per committee round: its committers that take their seats (trusted, staked validators), counted as they commit.
seated: HashMap[uint256, uint256]


@deploy
def __init__(committee_size: uint256):
    """
    @notice Record the task's committee size.
    @param committee_size Validators scoring each update; 0 for every validator in rounds of at most
           `AUTO_COMMITTEE_ABOVE` validators, `AUTO_COMMITTEE_SIZE` in larger ones.
    """
    assert committee_size <= round_core.MAX_VALIDATORS, "task: committee size out of range"
    self.committee_size = committee_size


@view
@external
def is_round_validator(round_id: uint256, validator: address) -> bool:
    """
    @notice Whether `validator` may score in the round: in committee rounds, whether it committed and is a
            trusted (and staked) validator; otherwise whether it holds the role and is neither distrusted
            nor unstaked.
    @param round_id The round.
    @param validator The validator.
    @return True when it may score.
    """
    return self._is_round_validator(round_id, validator)


@view
@external
def committee_of(round_id: uint256, index: uint256) -> DynArray[address, round_core.MAX_VALIDATORS]:
    """
    @notice The validators drawn to score update `index` (committee rounds, once commits closed): who
            may score it. Public to all, which is what an adaptive liar exploits; the median is what holds.
    @param round_id The round.
    @param index The update's index.
    @return Its committee in seat order, seats of committers that may not score left out (empty without
            committees).
    """
    return self._committee_of(round_id, index)


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
    n: uint256 = round_core.rounds[round_id].num_updates
    step: uint256 = self.committee_step[round_id]
    if step == 0:
        if not reputation._distrusted(validator):
            for i: uint256 in range(n, bound=round_core.MAX_UPDATES):
                if own != i + 1:
                    result.append(i)
        return result
    if own == 0 or not self._eligible(validator):
        return result
    # Seats: updates q - k*d for k = 1..c, collected then sorted (at most MAX_VALIDATORS of them).
    q: uint256 = own - 1
    for k: uint256 in range(1, self._width(round_id, n), bound=round_core.MAX_VALIDATORS + 1):
        i: uint256 = (q + n - (k * step) % n) % n
        j: uint256 = len(result)
        result.append(i)
        for _s: uint256 in range(round_core.MAX_VALIDATORS):
            if j == 0 or result[j - 1] <= i:
                break
            result[j] = result[j - 1]
            j -= 1
        result[j] = i
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
    if self.round_committee[round_id] > 0:
        return round_core.commit_slot[round_id][validator] != 0 and self._eligible(validator)
    return self._eligible(validator)


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
    n: uint256 = round_core.rounds[round_id].num_updates
    step: uint256 = self.committee_step[round_id]
    if step == 0 or index >= n:
        return result
    for k: uint256 in range(1, self._width(round_id, n), bound=round_core.MAX_VALIDATORS + 1):
        who: address = round_core.updates[round_id][(index + k * step) % n].member
        if self._eligible(who):
            result.append(who)
    return result


@view
@internal
def _eligible(validator: address) -> bool:
    """
    @notice Whether `validator` may score now: the role, a record its reputation trusts and, in a gated
            task, its stake.
    @param validator The member.
    @return True when eligible.
    """
    return membership._has_role(validator, membership.ROLE_VALIDATOR) and not reputation._distrusted(validator) \
        and staking._staked(validator, membership.ROLE_VALIDATOR)


@view
@internal
def _width(round_id: uint256, n: uint256) -> uint256:
    """
    @notice One past the last seat of a committee round: its committee size, at most every other update.
    @param round_id The round.
    @param n Its number of updates.
    @return The committee size + 1.
    """
    return min(self.round_committee[round_id], n - 1) + 1


@internal
def _fix_size(round_id: uint256):
    """
    @notice Fix the committee size of a round that opens, from the validators it expects.
    @param round_id The round.
    """
    size: uint256 = self.committee_size
    if size == 0 and round_core.rounds[round_id].expected_validators > AUTO_COMMITTEE_ABOVE:
        size = AUTO_COMMITTEE_SIZE
    self.round_committee[round_id] = size


@internal
def _count_committer(round_id: uint256, committer: address):
    """
    @notice In a committee round, count a new committer that takes its seats: a trusted (and staked)
            validator. A distrusted one is logged.
    @param round_id The round.
    @param committer The member that commits.
    """
    if self.round_committee[round_id] == 0 or not membership._has_role(committer, membership.ROLE_VALIDATOR):
        return
    if reputation._trusted_validator(round_id, committer) and staking._staked(committer, membership.ROLE_VALIDATOR):
        self.seated[round_id] += 1


@internal
def _draw(round_id: uint256, seed: bytes32, n: uint256):
    """
    @notice Draw a committee round's step when its commits close: a unit modulo `n`, away from 1 and
            n - 1 when there is room, so that committees are not runs of neighbours in commit order.
    @param round_id The round.
    @param seed The round's committee seed.
    @param n Its number of updates (at least 1).
    @dev The round then waits for the committers counted as they committed.
    """
    step: uint256 = 1
    if n > 4:
        step = 2 + convert(keccak256(concat(seed, b"step")), uint256) % (n - 3)
        for _i: uint256 in range(64):
            if self._gcd(step, n) == 1:
                break
            step = 2 + (step - 1) % (n - 3)
        if self._gcd(step, n) != 1:
            step = 1
    self.committee_step[round_id] = step
    round_core.rounds[round_id].expected_validators = self.seated[round_id]


@pure
@internal
def _gcd(a: uint256, b: uint256) -> uint256:
    """
    @notice The greatest common divisor (Euclid; both below 2**64, so 96 steps always suffice).
    @param a One number.
    @param b The other.
    @return Their gcd.
    """
    x: uint256 = a
    y: uint256 = b
    for _i: uint256 in range(96):
        if y == 0:
            break
        t: uint256 = x % y
        x = y
        y = t
    return x


@internal
def _count_validators(round_id: uint256) -> uint256:
    """
    @notice The validators of a round without committees when its commits close: every validator its
            reputation trusts (the distrusted are logged), staked in a gated task.
    @param round_id The round.
    @return How many validators the round has.
    """
    count: uint256 = 0
    for i: uint256 in range(membership._member_count(), bound=membership.MAX_MEMBERS):
        who: address = membership._member_at(i)
        if not membership._has_role(who, membership.ROLE_VALIDATOR):
            continue
        if reputation._trusted_validator(round_id, who) and staking._staked(who, membership.ROLE_VALIDATOR):
            count += 1
    return count


@view
@internal
def _in_committee(round_id: uint256, index: uint256, validator: address) -> bool:
    """
    @notice Whether `validator` sits on update `index`'s committee: its commit index is `index + k*d`
            (mod n) for some k in 1..c. Always true without committees.
    @param round_id The round.
    @param index The update's index.
    @param validator The validator.
    @return True when it sits on the committee.
    """
    step: uint256 = self.committee_step[round_id]
    if step == 0:
        return True
    slot: uint256 = round_core.commit_slot[round_id][validator]
    if slot == 0:
        return False
    n: uint256 = round_core.rounds[round_id].num_updates
    seat: uint256 = index
    for _k: uint256 in range(1, self._width(round_id, n), bound=round_core.MAX_VALIDATORS + 1):
        seat = (seat + step) % n
        if seat == slot - 1:
            return True
    return False
