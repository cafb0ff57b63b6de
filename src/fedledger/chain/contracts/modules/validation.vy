# pragma version ~=0.4.3
"""
@title Validated rounds: scores and acceptance
@custom:contract-name validation
@notice Validators score every update (or the updates of their committees),
        and the contract derives the accepted set from the scores: an update
        is accepted when the median of its validators' scores (self-scores
        excluded) reaches the task's threshold or, with `min_approvals` > 0,
        when at least that many of them scored it at or above the threshold.
        Acceptance is a contract rule, not an aggregator's choice.
@dev A validator's scores count in its reputation record when it submits them
     (one write per validator, not one per score); when validation closes, the
     outcomes add its disagreements and feed the trainers' records (when the task
     keeps them). Under acceptance by
     approvals a validator's record counts only its approvals of rejected
     updates: losing by an update others gain by is what a validator whose
     data differ does, vouching for one nobody else would pass is what a
     liar does.
"""

from . import membership
from . import round_core
from . import committees
from . import reputation
from . import staking

uses: (membership, round_core, committees, reputation, staking)

# 0: acceptance by the committee median; k > 0: by k approvals (scores at or above the threshold).
min_approvals: public(uint256)
update_scores: HashMap[uint256, HashMap[uint256, DynArray[uint256, round_core.MAX_VALIDATORS]]]
# Reputation rounds: round -> update -> k -> who gave update_scores' k-th entry (a map: no length slot to pay).
update_scorers: HashMap[uint256, HashMap[uint256, HashMap[uint256, address]]]


event ScoresSubmitted:
    round_id: indexed(uint256)
    validator: indexed(address)
    indices: DynArray[uint256, round_core.MAX_UPDATES]
    scores: DynArray[uint256, round_core.MAX_UPDATES]

event ValidationClosed:
    round_id: indexed(uint256)
    accepted_mask: uint256
    num_accepted: uint256
    aggregate_deadline: uint256


@deploy
def __init__(min_approvals: uint256):
    """
    @notice Record the task's acceptance rule.
    @param min_approvals Scores at or above the threshold an update needs; 0 for the committee median.
    """
    assert min_approvals <= round_core.MAX_VALIDATORS, "task: min approvals out of range"
    self.min_approvals = min_approvals


@external
def submit_scores(
    round_id: uint256, indices: DynArray[uint256, round_core.MAX_UPDATES], scores: DynArray[uint256, round_core.MAX_UPDATES]
):
    """
    @notice A validator's scores (0..10000) for the updates it checked, by update
            index in increasing order; updates not listed are abstentions. A
            validator never scores its own update and, in committee rounds, scores
            only updates whose committee it sits on.
    @param round_id The current round, in validation.
    @param indices The scored updates' indices, increasing.
    @param scores Their scores, in the same order.
    """
    assert membership._has_role(msg.sender, membership.ROLE_VALIDATOR), "task: caller is not a validator"
    assert round_core._phase(round_id) == round_core.PHASE_VALIDATE, "task: round not in validation"
    assert block.timestamp <= round_core.rounds[round_id].validate_deadline, "task: validation deadline passed"
    assert not round_core.has_scored[round_id][msg.sender], "task: already scored"
    assert len(indices) == len(scores), "task: indices and scores differ in length"
    committee: bool = committees.round_committee[round_id] > 0
    assert committee or round_core.rounds[round_id].num_scored < round_core.MAX_VALIDATORS, "task: too many validators"
    assert not reputation._distrusted(msg.sender), "task: validator distrusted"
    assert staking._staked(msg.sender, membership.ROLE_VALIDATOR), "task: validator not staked"
    own: uint256 = round_core.commit_slot[round_id][msg.sender]
    if committee:
        assert own != 0, "task: validator not drawn for this round"
    keep_scorers: bool = reputation._validators_on()
    num_updates: uint256 = round_core.rounds[round_id].num_updates
    for k: uint256 in range(len(indices), bound=round_core.MAX_UPDATES):
        i: uint256 = indices[k]
        assert i < num_updates, "task: unknown update"
        assert k == 0 or i > indices[k - 1], "task: indices not increasing"
        assert scores[k] <= round_core.SCORE_SCALE, "task: score out of range"
        assert own != i + 1, "task: validator cannot score its own update"
        assert committees._in_committee(round_id, i, msg.sender), "task: validator not in the update's committee"
        if keep_scorers:
            self.update_scorers[round_id][i][len(self.update_scores[round_id][i])] = msg.sender
        self.update_scores[round_id][i].append(scores[k])
    if keep_scorers:
        reputation._count_scores(msg.sender, len(indices))
    round_core.has_scored[round_id][msg.sender] = True
    round_core.rounds[round_id].num_scored += 1
    log ScoresSubmitted(round_id=round_id, validator=msg.sender, indices=indices, scores=scores)


@external
def close_validation(round_id: uint256):
    """
    @notice End validation (early once every validator scored, otherwise after the
            deadline) and derive the accepted set from the scores; a round with no
            update accepted aborts.
    @param round_id The current round, in validation.
    """
    round_core._check_member(msg.sender)
    assert round_core._phase(round_id) == round_core.PHASE_VALIDATE, "task: round not in validation"
    r: round_core.Round = round_core.rounds[round_id]
    assert block.timestamp > r.validate_deadline or r.num_scored >= r.expected_validators, \
        "task: validation phase still running"
    words: uint256[round_core.ACCEPTED_WORDS] = empty(uint256[round_core.ACCEPTED_WORDS])
    accepted: uint256 = 0
    for i: uint256 in range(r.num_updates, bound=round_core.MAX_UPDATES):
        if self._judge(round_id, i):
            words[i // 256] |= 1 << (i % 256)
            accepted += 1
    if accepted == 0:
        round_core._abort(round_id, "no update accepted")
        return
    deadline: uint256 = round_core._start_aggregation(round_id, words, accepted)
    log ValidationClosed(round_id=round_id, accepted_mask=words[0], num_accepted=accepted, aggregate_deadline=deadline)


@view
@external
def scores_of(round_id: uint256, index: uint256) -> DynArray[uint256, round_core.MAX_VALIDATORS]:
    """
    @notice The scores recorded for one update (abstentions excluded).
    @param round_id The round.
    @param index The update's index.
    @return Its scores, in submission order.
    """
    return self.update_scores[round_id][index]


@internal
def _judge(round_id: uint256, index: uint256) -> bool:
    """
    @notice Decide one update's outcome from its scores and count it in the reputation records.
    @dev No update here is a distrusted trainer's: records change only here and when cleared, and
         the round refused commitments from the trainers distrusted when it opened.
    @param round_id The round.
    @param index The update's index.
    @return True when accepted (an update nobody scored is not).
    """
    scores: DynArray[uint256, round_core.MAX_VALIDATORS] = self.update_scores[round_id][index]
    if len(scores) == 0:
        return False
    threshold: uint256 = round_core.acceptance_threshold
    deciding: uint256 = self._deciding_score(scores)
    ok: bool = deciding >= threshold
    if reputation._validators_on():
        # Each score counted for its validator when given; one against the outcome (only an approval, by
        # approvals) counts as a disagreement now.
        by_approvals: bool = self.min_approvals > 0
        for k: uint256 in range(len(scores), bound=round_core.MAX_VALIDATORS):
            approved: bool = scores[k] >= threshold
            if approved != ok and (approved or not by_approvals):
                reputation._count_disagreement(self.update_scorers[round_id][index][k])
    if reputation._trainers_on():
        reputation._count_update(round_core.updates[round_id][index].member, deciding, ok)
    return ok


@view
@internal
def _deciding_score(values: DynArray[uint256, round_core.MAX_VALIDATORS]) -> uint256:
    """
    @notice The score compared with the threshold: the `min_approvals`-th highest (every score when
            fewer were given), or without approvals the median, the floor of the two middle values' mean
            for an even count.
    @dev Insertion sort: at most MAX_VALIDATORS values.
    @param values The scores (at least one).
    @return The deciding score.
    """
    xs: DynArray[uint256, round_core.MAX_VALIDATORS] = values
    n: uint256 = len(xs)
    for i: uint256 in range(1, n, bound=round_core.MAX_VALIDATORS):
        key: uint256 = xs[i]
        j: uint256 = i
        for _k: uint256 in range(round_core.MAX_VALIDATORS):
            if j == 0 or xs[j - 1] <= key:
                break
            xs[j] = xs[j - 1]
            j -= 1
        xs[j] = key
    if self.min_approvals > 0:
        return xs[n - min(self.min_approvals, n)]
    if n % 2 == 1:
        return xs[n // 2]
    return (xs[n // 2 - 1] + xs[n // 2]) // 2
