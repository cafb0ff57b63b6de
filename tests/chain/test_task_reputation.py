"""Validator and trainer reputation in the TrainingTask contract, and their off-chain mirrors.

A task with ``max_disagreement`` > 0 counts, when validation closes, every score for its
validator and whether it fell on the other side of the threshold from the update's outcome. A
validator past ``reputation_warmup`` scores with more than ``max_disagreement`` basis points of
them against the outcome is left out of later rounds' validators until an admin clears it.

A task with ``max_rejection`` > 0 counts every scored update for its trainer and whether it was
rejected; a trainer past ``reputation_warmup`` scored updates with more than ``max_rejection``
basis points of them rejected is left out of the rounds that open while it is distrusted: its
commitments are refused and the round does not wait for it. With ``min_mean_score`` > 0 it also sums
every scored update's committee median for its trainer, and a trainer past the warm-up whose medians
average below ``min_mean_score`` is left out the same way, rejected or not.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import Phase, TrainingTaskClient
from fedledger.chain.events import ReputationCleared, TrainerDistrusted, ValidatorDistrusted
from fedledger.chain.reputation import (
    TrainerReputation,
    ValidatorReputation,
    disagrees,
    is_distrusted,
    trainer_distrusted,
)
from fedledger.exceptions import ConfigError, InvalidArgument, InvalidState, NotAuthorized
from fedledger.federation import TaskConfig
from helpers.consortium import (
    admit,
)

THRESHOLD = DEFAULT_PARAMS.acceptance_threshold


def reputation_task(ledger: Ledger, *, warmup: int = 3, committee: int = 0) -> TrainingTaskClient:
    params = replace(DEFAULT_PARAMS, max_disagreement=5_000, reputation_warmup=warmup, committee_size=committee)
    return TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)


def commit_all(task: TrainingTaskClient, members: list[LocalAccount], *, skip: frozenset[int] = frozenset()) -> int:
    """Open a round, commit every member's update but those in ``skip``, close commits."""
    r = task.as_(members[0]).open_round()
    for i, member in enumerate(members):
        if i not in skip:
            task.as_(member).commit_update(r, h(f"reputation-update-{r}-{i}"), 100)
    assert task.as_(members[0]).close_commits(r) is Phase.VALIDATE
    return r


def finish(task: TrainingTaskClient, members: list[LocalAccount], r: int) -> None:
    assert task.as_(members[0]).close_validation(r) is Phase.AGGREGATE
    mask = task.round(r).accepted_mask
    for member in members[:2]:
        task.as_(member).propose_aggregate(r, h(f"reputation-model-{r}"), mask)
    assert task.round(r).phase is Phase.FINALIZED


def honest_and_liar_round(task: TrainingTaskClient, members: list[LocalAccount], liar: LocalAccount) -> int:
    """Every member commits; the honest validators score every other update 9000, the liar 0."""
    r = commit_all(task, members)
    for member in members:
        if not task.is_round_validator(r, member.address):
            continue
        seats = set(task.assignments_of(r, member.address))
        value = 0 if member is liar else 9_000
        task.as_(member).submit_scores(r, [value if i in seats else None for i in range(len(members))])
    return r


def test_a_liar_is_distrusted_and_left_out_of_later_rounds(ledger: Ledger) -> None:
    task, members = reputation_task(ledger), ledger.members
    liar = members[3]
    r1 = honest_and_liar_round(task, members, liar)
    finish(task, members, r1)
    # Each update had three scorers; the liar's 0 was outvoted on all three, so all three disagreed.
    assert task.round(r1).accepted == [0, 1, 2, 3]
    standing = task.reputation_of(liar.address)
    assert (standing.scored, standing.disagreed, standing.distrusted) == (3, 3, True)
    for honest in members[:3]:
        standing = task.reputation_of(honest.address)
        assert (standing.scored, standing.disagreed, standing.distrusted) == (3, 0, False)

    block = ledger.chain.block_number
    r2 = commit_all(task, members)
    left_out = [e for e in task.events(from_block=block + 1) if isinstance(e, ValidatorDistrusted)]
    assert [(e.round_id, e.validator, e.scored, e.disagreed) for e in left_out] == [(r2, liar.address, 3, 3)]
    assert task.round(r2).expected_validators == 3
    assert not task.is_round_validator(r2, liar.address)
    assert task.assignments_of(r2, liar.address) == []

    def state() -> tuple[int, list[list[int]], int]:
        return ledger.chain.block_number, [task.scores_of(r2, i) for i in range(4)], task.round(r2).num_scored

    lies = [0, 0, 0, None]
    refused(state, NotAuthorized, "task: validator distrusted", task.as_(liar).submit_scores, r2, lies)
    for honest in members[:3]:
        task.as_(honest).submit_scores(r2, [None if i == members.index(honest) else 9_000 for i in range(4)])
    finish(task, members, r2)  # early close: the three trusted validators were every validator of the round
    # The liar still trains: its update is scored (and accepted) like anyone's.
    assert task.round(r2).accepted == [0, 1, 2, 3]


def test_scorers_of_names_who_may_score_each_update(ledger: Ledger) -> None:
    """What an adaptive liar reads before scoring: without committees every round validator but the
    owner, so a distrusted validator drops out; with committees each update's committee."""
    task, members = reputation_task(ledger), ledger.members
    liar = members[3]
    addresses = [m.address for m in members]
    r1 = honest_and_liar_round(task, members, liar)
    assert task.scorers_of(r1) == [[a for a in addresses if a != owner] for owner in addresses]
    finish(task, members, r1)
    r2 = commit_all(task, members)
    assert task.scorers_of(r2) == [[a for a in addresses[:3] if a != owner] for owner in addresses]
    # Updates the caller already read give the same answer (a node's own copy, no second read).
    assert task.scorers_of(r2, task.updates(r2)) == task.scorers_of(r2)

    seven = members + admit(ledger, 3, "scorers")
    committees = reputation_task(ledger, committee=3)
    r = commit_all(committees, seven)
    scorers = committees.scorers_of(r)
    assert scorers == [committees.committee_of(r, i) for i in range(len(seven))]
    assert all(len(s) == 3 and seven[i].address not in s for i, s in enumerate(scorers))


def test_warmup_protects_a_new_validator_and_an_admin_clears_a_record(ledger: Ledger) -> None:
    task, members = reputation_task(ledger, warmup=6), ledger.members
    liar = members[3]
    finish(task, members, honest_and_liar_round(task, members, liar))
    assert task.reputation_of(liar.address).distrusted is False  # 3 of 3 disagreed, but fewer than 6 scores
    finish(task, members, honest_and_liar_round(task, members, liar))
    assert task.reputation_of(liar.address).distrusted is True  # 6 of 6

    def state() -> tuple[int, int]:
        return ledger.chain.block_number, task.reputation_of(liar.address).scored

    refused(state, NotAuthorized, "task: caller is not an admin", task.as_(members[0]).clear_reputation, liar.address)
    block = ledger.chain.block_number
    task.as_(ledger.admin).clear_reputation(liar.address)
    cleared = [e for e in task.events(from_block=block + 1) if isinstance(e, ReputationCleared)]
    assert [(e.validator, e.admin, e.scored, e.disagreed) for e in cleared] == [
        (liar.address, ledger.admin.address, 6, 6)
    ]
    standing = task.reputation_of(liar.address)
    assert (standing.scored, standing.disagreed, standing.distrusted) == (0, 0, False)
    r = commit_all(task, members)
    assert task.is_round_validator(r, liar.address)
    assert task.round(r).expected_validators == 4


def test_without_reputation_nothing_is_counted_and_nobody_is_left_out(ledger: Ledger) -> None:
    task, members = ledger.task, ledger.members
    assert task.params().max_disagreement == 0
    for _ in range(2):
        finish(task, members, honest_and_liar_round(task, members, members[3]))
    standing = task.reputation_of(members[3].address)
    assert (standing.scored, standing.disagreed, standing.distrusted) == (0, 0, False)
    r = commit_all(task, members)
    assert task.is_round_validator(r, members[3].address)


def test_contract_and_offchain_rule_agree_over_random_rounds(ledger: Ledger) -> None:
    """Committees of three among seven validators, random scores (accepted and rejected updates), one
    validator that always inverts its score and one whose noise sometimes crosses the threshold: after
    every round, the contract's counts and verdicts equal :class:`ValidatorReputation`'s, and each
    round's validators are the ones it trusted before the round.

    Committees come from the chain's round seed, which differs from run to run (anvil), so the rounds go
    on until the inverter has been distrusted and a round has run without it, rather than a fixed count.
    """
    members = ledger.members + admit(ledger, 3, "reputation")
    task = reputation_task(ledger, warmup=4, committee=3)
    mirror: ValidatorReputation[str] = ValidatorReputation(max_disagreement=5_000, warmup=4)
    rng = random.Random(7)
    inverter, erratic = members[5].address, members[6].address
    addresses = [m.address for m in members]
    noise = {a: 3_000 for a in addresses} | {erratic: 6_000}  # honest noise never crosses the threshold

    def score(validator: str, truth: int) -> int:
        if validator == inverter:
            return 10_000 - truth
        return max(0, min(10_000, truth + rng.randint(-noise[validator], noise[validator])))

    rounds_without_inverter = 0
    for _ in range(12):
        trusted = mirror.trusted(addresses)
        r = commit_all(task, members)
        assert [a for a in addresses if task.is_round_validator(r, a)] == trusted
        truth = [rng.choice([1_000, 9_000]) for _ in members]  # what an honest validator thinks of each update
        given: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(members))}
        for member in members:
            if member.address not in trusted:
                continue
            scores: list[int | None] = [None] * len(members)
            for i in task.assignments_of(r, member.address):
                scores[i] = score(member.address, truth[i])
                given[i].append((member.address, scores[i]))
            task.as_(member).submit_scores(r, scores)
        closed = task.as_(members[0]).close_validation(r)
        accepted = set(task.round(r).accepted) if closed is Phase.AGGREGATE else set()
        for i, pairs in given.items():
            if pairs:
                mirror.record([v for v, _ in pairs], [s for _, s in pairs], accepted=i in accepted, threshold=THRESHOLD)
        for a in addresses:
            standing = task.reputation_of(a)
            assert (standing.scored, standing.disagreed, standing.distrusted) == (
                mirror.scored.get(a, 0),
                mirror.disagreed.get(a, 0),
                mirror.distrusted(a),
            )
        if closed is Phase.AGGREGATE:
            finish_mask = task.round(r).accepted_mask
            for member in members[:2]:
                task.as_(member).propose_aggregate(r, h(f"reputation-random-{r}"), finish_mask)
        rounds_without_inverter += inverter not in trusted
        if rounds_without_inverter:
            break
    assert rounds_without_inverter == 1, "the inverter was never distrusted"
    assert mirror.disagreed[inverter] * 2 > mirror.scored[inverter]


def test_acceptance_by_approvals_on_chain_agrees_with_the_offchain_rule(ledger: Ledger) -> None:
    """A task that accepts an update on two approvals of its committee of three: over random rounds in which
    validators disagree (each sees a different side of an update), the contract's accepted sets equal
    :func:`accepted_mask`'s, its validator records count only approvals of rejected updates, and its trainer
    records sum each update's deciding score, as the mirrors do."""
    from fedledger.federation.rules import verdict

    members = ledger.members + admit(ledger, 3, "approvals")
    params = replace(
        DEFAULT_PARAMS, max_disagreement=9_000, reputation_warmup=4, committee_size=3, min_approvals=2, min_mean_score=1
    )
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    assert task.params().min_approvals == 2
    validators: ValidatorReputation[str] = ValidatorReputation(max_disagreement=9_000, warmup=4)
    trainers: TrainerReputation[str] = TrainerReputation(max_rejection=0, warmup=4, min_mean_score=1)
    rng = random.Random(11)
    kinds = {"approved": 0, "rejected": 0, "vouched for a rejected update": 0, "low on an accepted update": 0}
    for _ in range(4):
        r = commit_all(task, members)
        given: dict[int, list[tuple[str, int]]] = {i: [] for i in range(len(members))}
        for member in members:
            if not task.is_round_validator(r, member.address):
                continue
            scores: list[int | None] = [None] * len(members)
            for i in task.assignments_of(r, member.address):
                scores[i] = rng.choice([500, 4_000, 6_000, 9_500])
                given[i].append((member.address, scores[i]))
            task.as_(member).submit_scores(r, scores)
        assert task.as_(members[0]).close_validation(r) is Phase.AGGREGATE
        accepted = set(task.round(r).accepted)
        for i, pairs in given.items():
            values = [score for _, score in pairs]
            outcome = verdict(values, THRESHOLD, 2)
            assert (i in accepted) == outcome.accepted
            assert outcome.score is not None
            kinds["approved" if outcome.accepted else "rejected"] += 1
            for score in values:
                vouched, low = score >= THRESHOLD and not outcome.accepted, score < THRESHOLD and outcome.accepted
                kinds["vouched for a rejected update"] += vouched
                kinds["low on an accepted update"] += low
            validators.record(
                [v for v, _ in pairs], values, accepted=i in accepted, threshold=THRESHOLD, approvals_only=True
            )
            trainers.record(task.updates(r)[i].member, accepted=i in accepted, score=outcome.score)
        for member in members:
            a = member.address
            record = task.reputation_of(a)
            assert (record.scored, record.disagreed) == (validators.scored.get(a, 0), validators.disagreed.get(a, 0))
            standing = task.trainer_standing(a)
            assert (standing.scored, standing.rejected, standing.score_sum) == (
                trainers.scored.get(a, 0),
                trainers.rejected.get(a, 0),
                trainers.score_sum.get(a, 0),
            )
        for member in members[:2]:
            task.as_(member).propose_aggregate(r, h(f"approvals-{r}"), task.round(r).accepted_mask)
    assert all(kinds.values()), kinds  # every case the rule distinguishes happened


def test_approvals_count_only_vouching_for_a_rejected_update_against_a_validator() -> None:
    assert disagrees(THRESHOLD, accepted=False, threshold=THRESHOLD, approvals_only=True)
    assert not disagrees(THRESHOLD - 1, accepted=True, threshold=THRESHOLD, approvals_only=True)
    assert not disagrees(0, accepted=False, threshold=THRESHOLD, approvals_only=True)


# -- trainer reputation -------------------------------------------------------------------------------------


def trainer_task(
    ledger: Ledger, *, warmup: int = 3, max_disagreement: int = 0, max_rejection: int = 5_000, min_mean_score: int = 0
) -> TrainingTaskClient:
    params = replace(
        DEFAULT_PARAMS,
        max_rejection=max_rejection,
        min_mean_score=min_mean_score,
        reputation_warmup=warmup,
        max_disagreement=max_disagreement,
    )
    return TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)


def scored_round(
    task: TrainingTaskClient, members: list[LocalAccount], rejected: set[int], *, skip: frozenset[int] = frozenset()
) -> tuple[int, Phase]:
    """Every member but those in ``skip`` commits; every member scores every other committed update: 1000 for
    the updates of the members in ``rejected``, else 9000."""
    r = commit_all(task, members, skip=skip)
    return r, score_and_close(task, members, r, rejected, skip=skip)


def score_and_close(
    task: TrainingTaskClient,
    members: list[LocalAccount],
    r: int,
    rejected: set[int],
    *,
    skip: frozenset[int],
    given: dict[int, int] | None = None,
) -> Phase:
    """Every member scores every other committed update of round ``r`` (the members not in ``skip``, in order):
    ``given[i]`` for member i's if given, else 1000 for those of the members in ``rejected`` and 9000 for the
    rest; then validation closes."""
    owners = [i for i in range(len(members)) if i not in skip]  # update index -> member
    value = {i: (given or {}).get(i, 1_000 if i in rejected else 9_000) for i in owners}
    for k, member in enumerate(members):
        scores = [None if i == k else value[i] for i in owners]
        task.as_(member).submit_scores(r, scores)
    return task.as_(members[0]).close_validation(r)


def propose(task: TrainingTaskClient, members: list[LocalAccount], r: int) -> None:
    mask = task.round(r).accepted_mask
    for member in members[:2]:
        task.as_(member).propose_aggregate(r, h(f"trainer-model-{r}"), mask)
    assert task.round(r).phase is Phase.FINALIZED


def test_a_trainer_mostly_rejected_has_its_updates_left_out_until_cleared(ledger: Ledger) -> None:
    task, members = trainer_task(ledger, max_disagreement=5_000), ledger.members
    poisoner = 3
    mirror: TrainerReputation[int] = TrainerReputation(5_000, 3)
    # Rounds 1-3: the poisoner's update is rejected twice of three; everyone else's is accepted.
    for rejected in ({poisoner}, set(), {poisoner}):
        r, phase = scored_round(task, members, rejected)
        assert phase is Phase.AGGREGATE
        for i in range(len(members)):
            mirror.record(i, accepted=i not in rejected, score=1_000 if i in rejected else 9_000)
        propose(task, members, r)
    standing = task.trainer_standing(members[poisoner].address)
    assert (standing.scored, standing.rejected, standing.distrusted) == (3, 2, True)
    assert mirror.distrusted(poisoner) and not any(mirror.distrusted(i) for i in range(3))
    for honest in members[:3]:
        standing = task.trainer_standing(honest.address)
        assert (standing.scored, standing.rejected, standing.distrusted) == (3, 0, False)
    validators_before = [task.reputation_of(m.address) for m in members]

    # Round 4 opens with the poisoner left out (logged): its commitment is refused, state unchanged, and the
    # round waits for the three others only, so commits close before the deadline.
    block = ledger.chain.block_number
    r = task.as_(members[0]).open_round()
    left_out = [e for e in task.events(from_block=block + 1) if isinstance(e, TrainerDistrusted)]
    assert [(e.round_id, e.trainer, e.scored, e.rejected) for e in left_out] == [(r, members[poisoner].address, 3, 2)]
    assert task.left_out_as_trainer(r, members[poisoner].address)
    assert not any(task.left_out_as_trainer(r, m.address) for m in members[:3])
    assert task.round(r).expected_trainers == 3
    refused(
        lambda: task.round(r),
        NotAuthorized,
        "task: trainer distrusted",
        task.as_(members[poisoner]).commit_update,
        r,
        h("poisoned"),
        100,
    )
    for i in range(3):
        task.as_(members[i]).commit_update(r, h(f"trainer-update-{r}-{i}"), 100)
    assert task.round(r).commit_deadline > ledger.chain.timestamp()
    assert task.as_(members[0]).close_commits(r) is Phase.VALIDATE
    # The poisoner still validates: its scores, and the others', count for the validators' records as usual.
    assert score_and_close(task, members, r, set(), skip=frozenset({poisoner})) is Phase.AGGREGATE
    assert task.round(r).accepted == [0, 1, 2]
    gained = [task.reputation_of(m.address).scored - v.scored for m, v in zip(members, validators_before, strict=True)]
    assert gained == [2, 2, 2, 3]
    standing = task.trainer_standing(members[poisoner].address)
    assert (standing.scored, standing.rejected, standing.distrusted) == (3, 2, True)
    propose(task, members, r)

    # An admin clears the record while round 5 is open: the round that opened with the poisoner left out keeps
    # it out (its count of trainers stays right); from round 6 its updates count again.
    r = task.as_(members[0]).open_round()
    task.as_(ledger.admin).clear_reputation(members[poisoner].address)
    assert task.trainer_standing(members[poisoner].address).distrusted is False
    assert task.left_out_as_trainer(r, members[poisoner].address)
    with pytest.raises(NotAuthorized, match="trainer distrusted"):
        task.as_(members[poisoner]).commit_update(r, h("cleared too late"), 100)
    for i in range(3):
        task.as_(members[i]).commit_update(r, h(f"trainer-update-{r}-{i}"), 100)
    assert task.as_(members[0]).close_commits(r) is Phase.VALIDATE
    assert score_and_close(task, members, r, set(), skip=frozenset({poisoner})) is Phase.AGGREGATE
    propose(task, members, r)
    r, phase = scored_round(task, members, set())
    assert not task.left_out_as_trainer(r, members[poisoner].address)
    assert task.round(r).accepted == [0, 1, 2, 3]


def test_a_trainer_accepted_but_scoring_low_on_average_is_left_out_by_its_mean(ledger: Ledger) -> None:
    # Fang et al.'s Krum attack among a few silos: its updates pass the threshold but cost validators a little
    # every round. With trainer reputation by mean score only, the record of medians strikes it (run 28).
    task, members = trainer_task(ledger, max_rejection=0, min_mean_score=6_000), ledger.members
    crafted = 3
    mirror: TrainerReputation[int] = TrainerReputation(0, 3, 6_000)
    for medians in ({crafted: 5_000}, {crafted: 7_000}, {crafted: 5_000}):  # accepted each time; mean 5667 < 6000
        r = commit_all(task, members)
        assert score_and_close(task, members, r, set(), skip=frozenset(), given=medians) is Phase.AGGREGATE
        assert task.round(r).accepted == [0, 1, 2, 3]
        for i in range(len(members)):
            mirror.record(i, accepted=True, score=medians.get(i, 9_000))
        propose(task, members, r)
    standing = task.trainer_standing(members[crafted].address)
    assert (standing.scored, standing.rejected, standing.score_sum, standing.distrusted) == (3, 0, 17_000, True)
    assert standing.mean_score == pytest.approx(17_000 / 3)
    assert mirror.distrusted(crafted) and not any(mirror.distrusted(i) for i in range(3))
    assert not any(task.trainer_standing(m.address).distrusted for m in members[:3])

    block = ledger.chain.block_number
    r = task.as_(members[0]).open_round()
    left_out = [e for e in task.events(from_block=block + 1) if isinstance(e, TrainerDistrusted)]
    assert [(e.trainer, e.scored, e.rejected) for e in left_out] == [(members[crafted].address, 3, 0)]
    assert task.round(r).expected_trainers == 3
    with pytest.raises(NotAuthorized, match="trainer distrusted"):
        task.as_(members[crafted]).commit_update(r, h("crafted"), 100)
    # Clearing the record resets the sum of medians with the counts.
    task.as_(ledger.admin).clear_reputation(members[crafted].address)
    standing = task.trainer_standing(members[crafted].address)
    assert (standing.scored, standing.score_sum, standing.distrusted, standing.mean_score) == (0, 0, False, None)


def test_with_every_trainer_distrusted_rounds_abort_until_an_admin_clears_some(ledger: Ledger) -> None:
    task, members = trainer_task(ledger, warmup=1), ledger.members
    r, phase = scored_round(task, members, {0, 1, 2, 3})  # every update rejected: the round aborts
    assert phase is Phase.ABORTED
    assert all(task.trainer_standing(m.address).distrusted for m in members)
    # Every trainer is distrusted now: the next round waits for nobody and aborts at once, short of
    # commitments; nothing can be accepted until an admin clears someone.
    r = task.as_(members[0]).open_round()
    assert task.round(r).expected_trainers == 0
    assert all(task.left_out_as_trainer(r, m.address) for m in members)
    assert task.as_(members[0]).close_commits(r) is Phase.ABORTED
    task.as_(ledger.admin).clear_reputation(members[0].address)
    task.as_(ledger.admin).clear_reputation(members[1].address)
    r, phase = scored_round(task, members, {1}, skip=frozenset({2, 3}))
    assert phase is Phase.AGGREGATE and task.round(r).accepted == [0]


def test_without_trainer_reputation_no_trainer_record_is_kept(ledger: Ledger) -> None:
    task, members = reputation_task(ledger), ledger.members
    for _ in range(3):
        r, phase = scored_round(task, members, {3})
        propose(task, members, r)
    standing = task.trainer_standing(members[3].address)
    assert (standing.scored, standing.rejected, standing.distrusted) == (0, 0, False)


@pytest.mark.parametrize(
    ("change", "error", "reason"),
    [
        ({"max_disagreement": 10_001}, InvalidArgument, "task: max disagreement out of range"),
        ({"max_disagreement": 5_000, "secagg_threshold": 2}, InvalidState, "task: reputation needs scored rounds"),
        ({"max_rejection": 10_001}, InvalidArgument, "task: max rejection out of range"),
        ({"max_rejection": 5_000, "secagg_threshold": 2}, InvalidState, "task: reputation needs scored rounds"),
        ({"min_mean_score": 10_001}, InvalidArgument, "task: min mean score out of range"),
        ({"min_mean_score": 4_700, "secagg_threshold": 2}, InvalidState, "task: reputation needs scored rounds"),
    ],
)
def test_bad_reputation_parameters_are_refused(
    ledger: Ledger, change: dict[str, int], error: type[Exception], reason: str
) -> None:
    with pytest.raises(error) as info:
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, **change)
        )
    assert getattr(info.value, "reason", None) == reason


# -- the off-chain rule --------------------------------------------------------------------------------------


def test_a_score_at_the_threshold_votes_to_accept() -> None:
    assert not disagrees(THRESHOLD, accepted=True, threshold=THRESHOLD)
    assert disagrees(THRESHOLD, accepted=False, threshold=THRESHOLD)
    assert disagrees(THRESHOLD - 1, accepted=True, threshold=THRESHOLD)
    assert not disagrees(0, accepted=False, threshold=THRESHOLD)


def test_distrust_needs_the_warmup_and_strictly_more_than_the_bound() -> None:
    assert not is_distrusted(9, 9, bound=5_000, warmup=10)  # warm-up not reached
    assert not is_distrusted(10, 5, bound=5_000, warmup=10)  # exactly half: not more than the bound
    assert is_distrusted(10, 6, bound=5_000, warmup=10)
    assert not is_distrusted(10, 10, bound=0, warmup=0)  # reputation off
    assert not is_distrusted(10, 10, bound=10_000, warmup=0)  # the bound can never be exceeded


@pytest.mark.parametrize(
    ("max_disagreement", "warmup"), [(-1, 10), (10_001, 10), (5_000, -1), (True, 10), (5_000, 2.5)]
)
def test_bad_mirror_parameters_are_refused(max_disagreement: object, warmup: object) -> None:
    with pytest.raises(ConfigError):
        ValidatorReputation(max_disagreement, warmup)  # type: ignore[arg-type]


def test_mirror_refuses_mismatched_scores() -> None:
    with pytest.raises(ValueError, match="2 validators but 1 scores"):
        ValidatorReputation(5_000, 1).record(["a", "b"], [1], accepted=True, threshold=THRESHOLD)


# -- the task config ---------------------------------------------------------------------------------------

MODEL = {"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}


def test_task_config_keeps_reputation_by_default_in_scored_rounds_only() -> None:
    plain = TaskConfig(model=MODEL)
    assert (plain.max_disagreement, plain.reputation_warmup) == (5_000, 10)
    params = plain.chain_params(h("model-0"))
    assert (params.max_disagreement, params.reputation_warmup) == (5_000, 10)
    secure = TaskConfig(model=MODEL, secure_aggregation=True)
    assert secure.max_disagreement == 0 and secure.chain_params(h("model-0")).max_disagreement == 0
    assert TaskConfig(model=MODEL, max_disagreement=0).chain_params(h("model-0")).max_disagreement == 0
    # The resolved value is what the config commits to: a round trip keeps it.
    assert TaskConfig.from_bytes(plain.to_bytes()) == plain


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_disagreement": 10_001}, "max_disagreement must be within 0..10000"),
        ({"max_disagreement": -1}, "max_disagreement must be within 0..10000"),
        ({"reputation_warmup": -1}, "reputation_warmup must be a non-negative integer"),
        ({"reputation_warmup": 2.5}, "reputation_warmup must be a non-negative integer"),
        ({"secure_aggregation": True, "max_disagreement": 5_000}, "secure aggregation has no per-update scores"),
        ({"max_rejection": 10_001}, "max_rejection must be within 0..10000"),
        ({"max_rejection": True}, "max_rejection must be within 0..10000"),
        ({"secure_aggregation": True, "max_rejection": 5_000}, "keep trainer reputation on; set max_rejection to 0"),
        ({"min_mean_score": 10_001}, "min_mean_score must be within 0..10000"),
        ({"secure_aggregation": True, "min_mean_score": 4_700}, "keep trainer reputation on; set min_mean_score to 0"),
    ],
)
def test_task_config_refuses_bad_reputation_settings(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TaskConfig(model=MODEL, **change)  # type: ignore[arg-type]


def test_trainer_mirror_counts_and_refuses_bad_parameters() -> None:
    mirror: TrainerReputation[str] = TrainerReputation(5_000, 2)
    mirror.record("a", accepted=False, score=1_000)
    assert not mirror.distrusted("a")  # one scored update: under the warm-up
    mirror.record("a", accepted=True, score=9_000)
    assert not mirror.distrusted("a")  # half rejected: not more than the bound
    mirror.record("a", accepted=False, score=1_000)
    assert mirror.distrusted("a") and (mirror.scored["a"], mirror.rejected["a"], mirror.score_sum["a"]) == (
        3,
        2,
        11_000,
    )
    assert not TrainerReputation(0, 0).enabled and TrainerReputation(0, 0, 4_700).enabled
    for bound, warmup, mean in ((-1, 1, 0), (10_001, 1, 0), (5_000, -1, 0), (True, 1, 0), (0, 1, 10_001), (0, 1, -1)):
        with pytest.raises(ConfigError):
            TrainerReputation(bound, warmup, mean)  # type: ignore[arg-type]


def test_trainer_distrust_by_mean_needs_the_warmup_and_a_mean_strictly_below_the_bound() -> None:
    def by_mean(scored: int, score_sum: int, *, warmup: int = 5) -> bool:
        return trainer_distrusted(scored, 0, score_sum, max_rejection=0, min_mean_score=4_700, warmup=warmup)

    assert not by_mean(4, 4 * 4_000)  # warm-up not reached
    assert not by_mean(5, 5 * 4_700)  # exactly at the bound
    assert by_mean(5, 5 * 4_700 - 1)
    assert not trainer_distrusted(5, 5, 0, max_rejection=0, min_mean_score=0, warmup=0)  # both bounds off
    # Either bound strikes: rejections with a high mean, or a low mean with nothing rejected.
    assert trainer_distrusted(5, 3, 5 * 6_000, max_rejection=5_000, min_mean_score=4_700, warmup=5)
    assert trainer_distrusted(5, 0, 5 * 4_000, max_rejection=5_000, min_mean_score=4_700, warmup=5)


def test_task_config_trainer_reputation_is_off_by_default_and_reaches_the_chain() -> None:
    off = TaskConfig(model=MODEL).chain_params(h("model-0"))
    assert (off.max_rejection, off.min_mean_score) == (0, 0)
    on = TaskConfig(model=MODEL, max_rejection=5_000, min_mean_score=4_800)
    params = on.chain_params(h("model-0"))
    assert (params.max_rejection, params.min_mean_score) == (5_000, 4_800)
    assert TaskConfig.from_bytes(on.to_bytes()) == on


def test_task_config_acceptance_by_approvals_is_off_by_default_and_reaches_the_chain() -> None:
    for profile in ("consortium", "few-silos"):
        assert TaskConfig(model=MODEL, profile=profile).chain_params(h("model-0")).min_approvals == 0
    default = TaskConfig(model=MODEL)
    assert b"min_approvals" not in default.to_bytes()  # configs that never used it keep their hash
    on = TaskConfig(model=MODEL, min_approvals=1)
    assert on.chain_params(h("model-0")).min_approvals == 1
    assert TaskConfig.from_bytes(on.to_bytes()) == on and on.hash != default.hash


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_approvals": -1}, "min_approvals"),
        ({"min_approvals": 65}, "min_approvals"),
        ({"min_approvals": 1, "secure_aggregation": True, "secagg_threshold": 2}, "min_approvals must be 0"),
    ],
)
def test_task_config_refuses_bad_approval_settings(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TaskConfig(model=MODEL, **change)  # type: ignore[arg-type]


def test_the_task_contract_refuses_an_approval_count_it_cannot_reach(ledger: Ledger) -> None:
    from fedledger.chain.task import TaskKind

    for params, reason in (
        (replace(DEFAULT_PARAMS, min_approvals=65), "task: min approvals out of range"),
        (replace(DEFAULT_PARAMS, min_approvals=1, secagg_threshold=2), "task: approvals score plain updates only"),
    ):
        kind = TaskKind.for_params(params)
        with pytest.raises((InvalidArgument, InvalidState), match=reason):
            ledger.chain.deploy(ledger.admin, kind.contract_name, *params.constructor_args(ledger.consortium.address))
