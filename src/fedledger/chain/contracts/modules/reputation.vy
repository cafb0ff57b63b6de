# pragma version ~=0.4.3
"""
@title Validator and trainer reputation
@custom:contract-name reputation
@notice A task's record of how each validator scored and how each trainer's
        updates fared, and the rules that leave a distrusted member out of
        later rounds until an admin clears its record.
@dev Validators (`max_disagreement` > 0): every score counts for its validator
     when given and, when validation closes, as a disagreement when it falls on
     the other side of the threshold from the update's outcome. A validator with at
     least `reputation_warmup` scores of which more than `max_disagreement`
     (basis points) disagreed is distrusted: later rounds leave it out of their
     validators (no committee seat, scores refused).
     Trainers (`max_rejection` or `min_mean_score` > 0): every scored update
     counts for its trainer, with its deciding score (the committee median,
     or the score that decided acceptance by approvals), and a rejected one
     counts as a rejection. A trainer with at least `reputation_warmup` scored
     updates of which more than `max_rejection` (basis points) were rejected,
     or whose deciding scores average below `min_mean_score`, is distrusted: rounds
     opened while it is distrusted leave it out (its commitments are refused
     and the round does not wait for it).
"""

from . import membership

uses: membership

SCORE_SCALE: constant(uint256) = 10000

# Validator reputation (max_disagreement 0: off): scores counted and scores against the outcome.
max_disagreement: public(uint256)
reputation_warmup: public(uint256)
validator_scored: public(HashMap[address, uint256])
validator_disagreed: public(HashMap[address, uint256])
# Trainer reputation (max_rejection and min_mean_score 0: off): scored updates, rejected ones and the sum of
# their deciding scores, per trainer, and per round the trainers it left out when the round opened.
max_rejection: public(uint256)
min_mean_score: public(uint256)
trainer_scored: public(HashMap[address, uint256])
trainer_rejected: public(HashMap[address, uint256])
trainer_score_sum: public(HashMap[address, uint256])
trainer_left_out: public(HashMap[uint256, HashMap[address, bool]])


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


@deploy
def __init__(max_disagreement: uint256, reputation_warmup: uint256, max_rejection: uint256, min_mean_score: uint256):
    """
    @notice Record the task's reputation rules.
    @param max_disagreement Basis points of a validator's scores against the outcome above
           which it is distrusted; 0 for no validator reputation.
    @param reputation_warmup Fewest scores a validator gives (scored updates a trainer commits) before it
           can be distrusted.
    @param max_rejection Basis points of a trainer's scored updates rejected above which it is
           distrusted; 0 for no trainer reputation by rejections.
    @param min_mean_score Mean deciding score (0..10000) below which a trainer is distrusted;
           0 for no trainer reputation by scores.
    """
    assert max_disagreement <= SCORE_SCALE, "task: max disagreement out of range"
    assert max_rejection <= SCORE_SCALE, "task: max rejection out of range"
    assert min_mean_score <= SCORE_SCALE, "task: min mean score out of range"
    self.max_disagreement = max_disagreement
    self.reputation_warmup = reputation_warmup
    self.max_rejection = max_rejection
    self.min_mean_score = min_mean_score


@external
def clear_reputation(validator: address):
    """
    @notice Reset a member's reputation records, as validator and as trainer (an admin's decision,
            e.g. after a dispute); it validates again from the next round whose commits close and trains
            again from the next round that opens.
    @param validator The member whose records are reset.
    """
    assert membership._has_role(msg.sender, membership.ROLE_ADMIN), "task: caller is not an admin"
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
def is_distrusted(validator: address) -> bool:
    """
    @notice Whether the task's reputation rule leaves `validator` out of its rounds' validators.
    @param validator The validator.
    @return True when distrusted now.
    """
    return self._distrusted(validator)


@view
@external
def is_trainer_distrusted(trainer: address) -> bool:
    """
    @notice Whether trainer reputation leaves `trainer` out of the rounds that open from now on.
    @param trainer The trainer.
    @return True when distrusted now (never with trainer reputation off).
    """
    return self._trainers_on() and self._trainer_distrusted(trainer)


@view
@internal
def _validators_on() -> bool:
    """
    @notice Whether the task keeps validator reputation.
    @return True with `max_disagreement` > 0.
    """
    return self.max_disagreement > 0


@view
@internal
def _trainers_on() -> bool:
    """
    @notice Whether the task keeps trainer reputation.
    @return True with `max_rejection` or `min_mean_score` > 0.
    """
    return self.max_rejection + self.min_mean_score > 0


@view
@internal
def _distrusted(validator: address) -> bool:
    """
    @notice The validator rule: reputation on, at least the warm-up of scores, and more than
            `max_disagreement` basis points of them against the outcome.
    @param validator The validator.
    @return True when distrusted.
    """
    scored: uint256 = self.validator_scored[validator]
    return self.max_disagreement > 0 and scored >= self.reputation_warmup and \
        self.validator_disagreed[validator] * SCORE_SCALE > self.max_disagreement * scored


@view
@internal
def _trainer_distrusted(trainer: address) -> bool:
    """
    @notice The trainer rule, against either bound (a bound of 0 is off); callers check that
            trainer reputation is on.
    @param trainer The trainer.
    @return True when distrusted.
    """
    scored: uint256 = self.trainer_scored[trainer]
    return scored >= self.reputation_warmup and (
        (self.max_rejection > 0 and self.trainer_rejected[trainer] * SCORE_SCALE > self.max_rejection * scored)
        or self.trainer_score_sum[trainer] < self.min_mean_score * scored
    )


@internal
def _trusted_validator(round_id: uint256, validator: address) -> bool:
    """
    @notice Whether `validator` may join the round's validators; a distrusted one is logged.
    @param round_id The round whose commits close.
    @param validator A member with the validator role.
    @return False when distrusted.
    """
    if not self._distrusted(validator):
        return True
    log ValidatorDistrusted(
        round_id=round_id,
        validator=validator,
        scored=self.validator_scored[validator],
        disagreed=self.validator_disagreed[validator],
    )
    return False


@internal
def _count_trainers(round_id: uint256) -> uint256:
    """
    @notice The trainers a round waits for: every member with the role, less those trainer
            reputation distrusts now, which are marked (their commitments refused this round) and logged.
    @param round_id The round that opens.
    @return The count.
    """
    count: uint256 = membership._count_with_role(membership.ROLE_TRAINER)
    if not self._trainers_on():
        return count
    for i: uint256 in range(membership._member_count(), bound=membership.MAX_MEMBERS):
        who: address = membership._member_at(i)
        if membership._has_role(who, membership.ROLE_TRAINER) and self._trainer_distrusted(who):
            self.trainer_left_out[round_id][who] = True
            log TrainerDistrusted(
                round_id=round_id, trainer=who, scored=self.trainer_scored[who], rejected=self.trainer_rejected[who]
            )
            count -= 1
    return count


@internal
def _count_scores(validator: address, scores: uint256):
    """
    @notice Count the scores `validator` gives in a round, when it gives them.
    @param validator Who gave them.
    @param scores How many.
    """
    self.validator_scored[validator] += scores


@internal
def _count_disagreement(validator: address):
    """
    @notice Count one score of `validator` that fell on the other side of the threshold from its update's
            outcome, once the outcome is known.
    @param validator Who gave it.
    """
    self.validator_disagreed[validator] += 1


@internal
def _count_update(trainer: address, score: uint256, accepted: bool):
    """
    @notice Count one scored update of `trainer`: its deciding score and its outcome.
    @param trainer The update's committer.
    @param score Its deciding score (the median of its scores, or by approvals the deciding one).
    @param accepted Whether it was accepted.
    """
    self.trainer_scored[trainer] += 1
    self.trainer_score_sum[trainer] += score
    if not accepted:
        self.trainer_rejected[trainer] += 1
