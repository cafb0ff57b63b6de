"""The Incentives contract on a stake-gated task: funding (native and ERC-20), contributions, settlement in
proportion, pull payments, stake, slashing and withdrawal; every refusal with its namespaced reason."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import ConsortiumClient, IncentiveParams, IncentivesClient, Phase, Role, TrainingTaskClient
from fedledger.chain.incentive_events import Claimed, RewardCredited, RoundSettled, Slashed
from fedledger.chain.task import ZERO_ADDRESS
from fedledger.exceptions import BadInput, DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized
from helpers.consortium import admit, as_admin
from helpers.incentives import (
    PARAMS,
    STAKE,
    Rewarded,
    abort_round,
    deploy_rewarded,
    deposit,
    fund,
    honest,
    post_all,
    scored_round,
    token_balance,
)

CONTRIBUTIONS = [1_000, 2_000, 3_000, 4_000]


@pytest.fixture
def rw(ledger: Ledger) -> Rewarded:
    """Native-currency incentives on a gated task, every member staked, the pool funded with 5,000."""
    rewarded = deploy_rewarded(ledger)
    fund(rewarded, 5_000)
    return rewarded


def books(rw: Rewarded) -> Callable[[], object]:
    """What a refused call must leave unchanged: the block and the contract's books."""
    return lambda: (rw.ledger.chain.block_number, rw.incentives.totals())


# -- deployment and binding -------------------------------------------------------------------------------------


def test_binding_needs_the_task_to_name_the_contract(ledger: Ledger) -> None:
    chain, admin = ledger.chain, ledger.admin
    inc = IncentivesClient.deploy(chain, admin, ledger.consortium.address, PARAMS)
    state = lambda: chain.block_number  # noqa: E731
    refused(state, InvalidState, "incentives: no task bound", inc.settle_round, 1)
    refused(state, InvalidArgument, "incentives: task does not name this contract", inc.bind_task, ledger.task.address)
    task = TrainingTaskClient.deploy(
        chain, admin, ledger.consortium.address, replace(DEFAULT_PARAMS, stake_gate=inc.address)
    )
    assert task.params().stake_gate == inc.address
    refused(
        state,
        NotAuthorized,
        "incentives: caller is not the creator",
        inc.as_(ledger.members[0]).bind_task,
        task.address,
    )
    inc.bind_task(task.address)
    assert inc.task_address == task.address
    refused(state, InvalidState, "incentives: task already bound", inc.bind_task, task.address)
    assert inc.params() == PARAMS


def test_binding_refuses_no_task_and_another_consortiums_task(ledger: Ledger) -> None:
    chain, admin = ledger.chain, ledger.admin
    inc = IncentivesClient.deploy(chain, admin, ledger.consortium.address, PARAMS)
    state = lambda: chain.block_number  # noqa: E731
    refused(state, InvalidArgument, "incentives: zero task address", inc.bind_task, ZERO_ADDRESS)
    other = ConsortiumClient.deploy(chain, admin, org="Elsewhere", roles=Role.ADMIN)
    task = TrainingTaskClient.deploy(chain, admin, other.address, replace(DEFAULT_PARAMS, stake_gate=inc.address))
    refused(state, InvalidArgument, "incentives: task of another consortium", inc.bind_task, task.address)


def test_only_an_admin_creates_incentives_and_a_secure_task_takes_no_gate(ledger: Ledger) -> None:
    state = lambda: ledger.chain.block_number  # noqa: E731
    refused(
        state, NotAuthorized, "incentives: caller is not an admin",
        IncentivesClient.deploy, ledger.chain, ledger.members[0], ledger.consortium.address, PARAMS,
    )  # fmt: skip
    refused(
        state, BadInput, "trainer_slash_bps must be 0..10000",
        IncentivesClient.deploy, ledger.chain, ledger.admin, ledger.consortium.address,
        replace(PARAMS, trainer_slash_bps=10_001),
    )  # fmt: skip
    args = replace(PARAMS, validator_slash_bps=10_000).constructor_args(ledger.consortium.address)
    over = (*args[:6], 10_001, *args[7:])
    refused(
        state,
        InvalidArgument,
        "incentives: slash share out of range",
        ledger.chain.deploy,
        ledger.admin,
        "Incentives",
        *over,
    )
    no_window = (*args[:7], 0, args[8])
    refused(
        state,
        InvalidArgument,
        "incentives: zero contribution window",
        ledger.chain.deploy,
        ledger.admin,
        "Incentives",
        *no_window,
    )
    secure = replace(DEFAULT_PARAMS, secagg_threshold=2, stake_gate=ledger.outsider.address)
    refused(
        state, InvalidState, "task: stake needs scored rounds",
        TrainingTaskClient.deploy, ledger.chain, ledger.admin, ledger.consortium.address, secure,
    )  # fmt: skip


# -- funding ----------------------------------------------------------------------------------------------------


def test_native_funding_raises_the_pool_and_the_balance(rw: Rewarded) -> None:
    inc, chain = rw.incentives, rw.ledger.chain
    before = chain.balance(inc.address)
    rw.incentives.as_(rw.ledger.outsider).fund(700)  # anyone may fund
    assert inc.pool() == 5_700
    assert chain.balance(inc.address) == before + 700
    assert inc.holdings() == 5_700 + 4 * STAKE
    fn = inc.contract.functions.fund(10)
    refused(
        books(rw),
        InvalidArgument,
        "incentives: value differs from amount",
        chain.transact,
        rw.ledger.admin,
        fn,
        value=9,
    )
    refused(books(rw), InvalidArgument, "incentives: zero amount", inc.as_(rw.ledger.admin).fund, 0)


def test_erc20_pool_funds_stakes_and_pays_in_tokens(ledger: Ledger) -> None:
    rw = deploy_rewarded(ledger, token=True)
    inc = rw.incentives
    fund(rw, 5_000)
    assert inc.pool() == 5_000
    assert inc.holdings() == 5_000 + 4 * STAKE
    assert inc.stake_of(ledger.members[0].address) == STAKE
    fn = inc.contract.functions.fund(10)
    refused(
        books(rw), InvalidArgument, "incentives: native value sent to a token pool",
        ledger.chain.transact, ledger.admin, fn, value=10,
    )  # fmt: skip
    r = scored_round(rw, honest())
    post_all(rw, r, CONTRIBUTIONS)
    inc.as_(ledger.outsider).settle_round(r)
    member = ledger.members[3].address
    before = token_balance(rw, member)
    rw.inc(3).claim()
    assert token_balance(rw, member) == before + 400
    assert inc.holdings() == 5_000 - 400 + 4 * STAKE


# -- contributions and settlement -------------------------------------------------------------------------------


def test_a_finalized_round_pays_accepted_updates_in_proportion_to_their_contribution(rw: Rewarded) -> None:
    inc, members = rw.incentives, rw.ledger.members
    r = scored_round(rw, honest())
    block = rw.ledger.chain.block_number
    post_all(rw, r, CONTRIBUTIONS)
    assert inc.contributions_posted(r, 0) == [1_000, 1_000, 1_000]
    inc.as_(rw.ledger.outsider).settle_round(r)  # every scorer posted: no need to wait for the window
    assert inc.settled(r)
    assert [inc.contribution_of(r, i) for i in range(4)] == CONTRIBUTIONS
    assert [inc.earned(m.address) for m in members] == [100, 200, 300, 400]
    assert inc.pool() == 4_000
    records = inc.records(from_block=block + 1)
    assert [(c.member, c.index, c.contribution, c.amount) for c in records.credits] == [
        (members[i].address, i, CONTRIBUTIONS[i], 100 * (i + 1)) for i in range(4)
    ]
    assert [(s.budget, s.allocated, s.total_contribution) for s in records.settlements] == [(1_000, 1_000, 10_000)]
    assert all(isinstance(e, (RewardCredited, RoundSettled)) for e in records.credits + records.settlements)


def test_the_contribution_is_the_median_and_rounding_dust_stays_in_the_pool(rw: Rewarded) -> None:
    inc = rw.incentives
    r = scored_round(rw, honest())
    rows = {0: {1: 10, 2: 10, 3: 10}, 1: {0: 10, 2: 10, 3: 9_000}, 2: {0: 10, 1: 10, 3: 10}, 3: {0: 50, 1: 10, 2: 10}}
    for j, values in rows.items():
        rw.inc(j).post_contributions(r, values)
    inc.settle_round(r)
    # Update 3's values are 10, 9000, 10: one validator cannot raise its median.
    assert [inc.contribution_of(r, i) for i in range(4)] == [10, 10, 10, 10]
    assert [inc.earned(m.address) for m in rw.ledger.members] == [250, 250, 250, 250]
    r2 = scored_round(rw, honest())
    for j in range(4):
        rw.inc(j).post_contributions(r2, {i: 1 for i in range(3) if i != j})
    inc.settle_round(r2)
    # 1000 split three ways: 333 each, 1 left in the pool.
    assert [inc.earned(m.address) for m in rw.ledger.members] == [583, 583, 583, 250]
    totals = inc.totals()
    assert (totals.allocated, inc.pool()) == (1_999, 5_000 - 1_999)


def test_a_round_settles_without_posts_once_the_window_passed_and_pays_nothing(rw: Rewarded) -> None:
    inc, chain = rw.incentives, rw.ledger.chain
    r = scored_round(rw, honest())
    rw.inc(0).post_contributions(r, {1: 5_000})
    refused(books(rw), InvalidState, "incentives: contribution window open", inc.settle_round, r)
    chain.advance_time(rw.ledger.params.aggregate_duration + PARAMS.contribution_window + 1)
    refused(
        books(rw), DeadlinePassed, "incentives: contribution window closed", rw.inc(1).post_contributions, r, {0: 1}
    )
    inc.settle_round(r)
    assert [inc.earned(m.address) for m in rw.ledger.members] == [0, 1_000, 0, 0]
    refused(books(rw), InvalidState, "incentives: round already settled", inc.settle_round, r)


def test_posting_outside_the_rules_is_refused(rw: Rewarded) -> None:
    inc = rw.incentives
    scores = honest()
    for j in range(3):
        scores[j][3] = 1_000  # update 3 is rejected
    r = scored_round(rw, scores)
    assert rw.ledger.task.round(r).accepted_mask == 0b0111
    state = books(rw)
    refused(state, InvalidArgument, "incentives: update not accepted", rw.inc(0).post_contributions, r, {1: 1, 3: 1})
    refused(state, InvalidArgument, "incentives: own update", rw.inc(0).post_contributions, r, {0: 1})
    refused(
        state, InvalidArgument, "incentives: contribution out of range", rw.inc(0).post_contributions, r, {1: 10_001}
    )
    fn = inc.contract.functions.post_contributions(r, [1, 2], [1])
    refused(
        state, InvalidArgument, "incentives: indices and values differ in length",
        rw.ledger.chain.transact, rw.ledger.members[0], fn,
    )  # fmt: skip
    fn = inc.contract.functions.post_contributions(r, [2, 1], [1, 1])
    refused(
        state, InvalidArgument, "incentives: indices not increasing", rw.ledger.chain.transact, rw.ledger.members[0], fn
    )
    refused(
        state, NotAuthorized, "incentives: caller is not a member",
        inc.as_(rw.ledger.outsider).post_contributions, r, {1: 1},
    )  # fmt: skip
    rw.inc(0).post_contributions(r, {1: 1, 2: 1})
    refused(state, InvalidState, "incentives: already posted", rw.inc(0).post_contributions, r, {1: 1})
    refused(state, InvalidState, "incentives: round not finalized", rw.inc(0).post_contributions, r + 1, {0: 1})


def test_in_committee_rounds_a_validator_posts_only_for_its_committees_updates(ledger: Ledger) -> None:
    rw = deploy_rewarded(ledger, committee_size=2)
    task, members = rw.ledger.task, ledger.members
    r = rw.t(0).open_round()
    for i in range(4):
        rw.t(i).commit_update(r, h(f"committee-{i}"), 100)
    assert rw.t(0).close_commits(r) is Phase.VALIDATE
    assigned = [task.assignments_of(r, m.address) for m in members]
    for j in range(4):
        rw.t(j).submit_scores(r, [9_000 if i in assigned[j] else None for i in range(4)])
    assert rw.t(0).close_validation(r) is Phase.AGGREGATE
    mask = task.round(r).accepted_mask
    rw.t(0).propose_aggregate(r, h("committee-model"), mask)
    assert rw.t(1).propose_aggregate(r, h("committee-model"), mask)
    j = next(j for j in range(4) if len(assigned[j]) < 3)  # two of the three other validators score each update
    outside = next(i for i in range(4) if i != j and i not in assigned[j] and mask >> i & 1)
    refused(
        books(rw), NotAuthorized, "incentives: caller is not a scorer of the update",
        rw.inc(j).post_contributions, r, {outside: 1},
    )  # fmt: skip
    rw.inc(j).post_contributions(r, {i: 5_000 for i in assigned[j] if mask >> i & 1})
    assert rw.incentives.has_posted(r, members[j].address)


def test_an_unfinalized_round_neither_takes_posts_nor_settles(rw: Rewarded) -> None:
    r = scored_round(rw, honest(), finalize=False)
    assert rw.ledger.task.round(r).phase is Phase.AGGREGATE
    refused(books(rw), InvalidState, "incentives: round not finalized", rw.inc(0).post_contributions, r, {1: 1})
    refused(books(rw), InvalidState, "incentives: round not finalized", rw.incentives.settle_round, r)


def test_a_round_pays_at_most_the_pool(ledger: Ledger) -> None:
    rw = deploy_rewarded(ledger)
    fund(rw, 300)
    r = scored_round(rw, honest())
    post_all(rw, r, CONTRIBUTIONS)
    rw.incentives.settle_round(r)
    assert [rw.incentives.earned(m.address) for m in ledger.members] == [30, 60, 90, 120]
    assert rw.incentives.pool() == 0


# -- claims -----------------------------------------------------------------------------------------------------


def test_claim_pays_once_and_only_members(rw: Rewarded) -> None:
    inc, chain, members = rw.incentives, rw.ledger.chain, rw.ledger.members
    r = scored_round(rw, honest())
    post_all(rw, r, CONTRIBUTIONS)
    inc.settle_round(r)
    held, balance = chain.balance(inc.address), chain.balance(members[2].address)
    result = rw.inc(2).claim()
    fee = result.gas_used * int(result.receipt["effectiveGasPrice"])
    assert chain.balance(members[2].address) == balance + 300 - fee
    assert chain.balance(inc.address) == held - 300
    assert inc.earned(members[2].address) == 0
    assert [(c.member, c.amount) for c in inc.records().claims] == [(members[2].address, 300)]
    assert isinstance(inc.records().claims[0], Claimed)
    refused(books(rw), InvalidState, "incentives: nothing to claim", rw.inc(2).claim)
    refused(books(rw), NotAuthorized, "incentives: caller is not a member", inc.as_(rw.ledger.outsider).claim)
    refused(books(rw), BadInput, "no account", IncentivesClient(chain, inc.address).claim)
    assert inc.totals().paid == 300


def test_a_revoked_member_claims_what_it_earned_while_a_member(rw: Rewarded) -> None:
    inc, members = rw.incentives, rw.ledger.members
    r = scored_round(rw, honest())
    post_all(rw, r, CONTRIBUTIONS)
    inc.settle_round(r)
    as_admin(rw.ledger).propose_revoke(members[1].address)  # one admin: the proposal executes at once
    assert not rw.ledger.consortium.is_active(members[1].address)
    rw.inc(1).claim()
    assert [(c.member, c.amount) for c in inc.records().claims] == [(members[1].address, 200)]
    # With its credit paid out, a revoked member is an outsider again.
    refused(books(rw), NotAuthorized, "incentives: caller is not a member", rw.inc(1).claim)


# -- stake ------------------------------------------------------------------------------------------------------


def test_unstaked_members_neither_commit_nor_score_nor_sit_among_validators(rw: Rewarded) -> None:
    (extra,) = admit(rw.ledger, 1, "unstaked")
    task, inc = rw.ledger.task, rw.incentives
    assert not inc.is_staked(extra.address, Role.TRAINER) and not inc.is_staked(extra.address, Role.VALIDATOR)
    assert inc.is_staked(extra.address, Role.AGGREGATOR)  # no stake needed for other roles
    r = rw.t(0).open_round()
    state = lambda: rw.ledger.chain.block_number  # noqa: E731
    refused(state, NotAuthorized, "task: trainer not staked", task.as_(extra).commit_update, r, h("extra"), 10)
    for i in range(4):
        rw.t(i).commit_update(r, h(f"gated-{i}"), 100)
    rw.ledger.chain.advance_time(rw.ledger.params.commit_duration + 1)
    assert rw.t(0).close_commits(r) is Phase.VALIDATE
    assert task.round(r).expected_validators == 4  # the unstaked validator is not seated
    assert not task.is_round_validator(r, extra.address)
    assert all(extra.address not in scorers for scorers in task.scorers_of(r))
    refused(state, NotAuthorized, "task: validator not staked", task.as_(extra).submit_scores, r, [9_000] * 4)
    inc.as_(extra).deposit_stake(STAKE)
    assert inc.is_staked(extra.address, Role.TRAINER) and inc.is_staked(extra.address, Role.VALIDATOR)
    refused(state, NotAuthorized, "incentives: caller is not a member", inc.as_(rw.ledger.outsider).deposit_stake, 1)


def test_a_clearly_harmful_update_costs_its_trainer_a_share_of_stake(rw: Rewarded) -> None:
    inc, members = rw.incentives, rw.ledger.members
    scores = honest()
    for j in (0, 1, 2):
        scores[j][3] = 1_000  # update 3: every score below the threshold
    scores[0][2], scores[1][2], scores[3][2] = 9_000, 1_000, 1_000  # update 2: rejected, one validator accepted it
    r = scored_round(rw, scores)
    assert rw.ledger.task.round(r).accepted_mask == 0b0011
    state = books(rw)
    refused(state, InvalidState, "incentives: update accepted", inc.slash_trainer, r, 0)
    refused(state, InvalidState, "incentives: a validator accepted the update", inc.slash_trainer, r, 2)
    refused(state, InvalidArgument, "incentives: unknown update", inc.slash_trainer, r, 4)
    pool = inc.pool()
    inc.as_(rw.ledger.outsider).slash_trainer(r, 3)  # anyone may
    assert inc.stake_of(members[3].address) == STAKE // 2
    assert inc.slashed_of(members[3].address) == STAKE // 2
    assert inc.pool() == pool + STAKE // 2
    (slash,) = inc.records().slashes
    assert isinstance(slash, Slashed)
    assert (slash.member, slash.amount, slash.reason) == (members[3].address, STAKE // 2, "harmful update")
    refused(state, InvalidState, "incentives: update already slashed", inc.slash_trainer, r, 3)
    # Half its stake is below the requirement: its next commitment is refused until it tops up.
    r2 = rw.t(0).open_round()
    refused(state, NotAuthorized, "task: trainer not staked", rw.t(3).commit_update, r2, h("after-slash"), 10)


def test_an_update_nobody_scored_is_an_abstention_not_slashable(rw: Rewarded) -> None:
    scores = honest()
    for row in scores:
        row[3] = None
    r = scored_round(rw, scores)
    refused(books(rw), InvalidState, "incentives: update not scored", rw.incentives.slash_trainer, r, 3)


def test_slashing_waits_for_validation_to_close(rw: Rewarded) -> None:
    r = rw.t(0).open_round()
    for i in range(4):
        rw.t(i).commit_update(r, h(f"v-{i}"), 100)
    rw.t(0).close_commits(r)
    refused(books(rw), InvalidState, "incentives: validation not closed", rw.incentives.slash_trainer, r, 0)


def test_a_distrusted_validator_is_slashed_once_per_episode(rw: Rewarded) -> None:
    inc, task, members = rw.incentives, rw.ledger.task, rw.ledger.members
    liar = members[3].address
    scores = honest()
    scores[3] = [1_000, 1_000, 1_000, None]  # against the outcome on all three of its scores
    r = scored_round(rw, scores)
    assert task.reputation_of(liar).distrusted
    state = books(rw)
    refused(state, InvalidState, "incentives: validator not distrusted", inc.slash_validator, members[0].address, r)
    refused(state, InvalidArgument, "incentives: validator did not score the round", inc.slash_validator, liar, r + 1)
    pool = inc.pool()
    inc.slash_validator(liar, r)
    assert inc.stake_of(liar) == STAKE - STAKE // 5
    assert inc.pool() == pool + STAKE // 5
    refused(state, InvalidState, "incentives: validator already slashed for this record", inc.slash_validator, liar, r)
    # Cleared by an admin, it lies again: a new episode, slashed again.
    rw.ledger.task.as_(rw.ledger.admin).clear_reputation(liar)
    inc.as_(members[3]).deposit_stake(STAKE)  # back above the requirement
    r2 = scored_round(rw, scores)
    assert task.reputation_of(liar).distrusted
    refused(state, InvalidState, "incentives: validator already slashed for this record", inc.slash_validator, liar, r)
    inc.slash_validator(liar, r2)
    assert inc.slashed_of(liar) == STAKE // 5 + (2 * STAKE - STAKE // 5) // 5
    assert [s.reason for s in inc.records().slashes] == ["distrusted validator"] * 2


# -- the end of the task and withdrawal -------------------------------------------------------------------------


def test_stake_comes_back_only_after_the_end_and_the_dispute_window(rw: Rewarded) -> None:
    inc, chain, member = rw.incentives, rw.ledger.chain, rw.ledger.members[1]
    state = books(rw)
    refused(state, InvalidState, "incentives: task not ended", rw.inc(1).withdraw_stake)
    refused(state, InvalidState, "incentives: task not ended", inc.mark_ended)
    scored_round(rw, honest())
    abort_round(rw)
    refused(state, InvalidState, "incentives: task not ended", inc.mark_ended)
    abort_round(rw)  # the third and last round
    inc.as_(rw.ledger.outsider).mark_ended()
    assert inc.ended_at == chain.timestamp()
    refused(state, InvalidState, "incentives: end already recorded", inc.mark_ended)
    refused(state, InvalidState, "incentives: dispute window open", rw.inc(1).withdraw_stake)
    refused(state, InvalidState, "incentives: task ended", rw.inc(1).deposit_stake, 1)
    chain.advance_time(PARAMS.dispute_window)
    held, balance = chain.balance(inc.address), chain.balance(member.address)
    result = rw.inc(1).withdraw_stake()
    fee = result.gas_used * int(result.receipt["effectiveGasPrice"])
    assert chain.balance(member.address) == balance + STAKE - fee
    assert chain.balance(inc.address) == held - STAKE
    assert inc.stake_of(member.address) == 0
    assert [(w.member, w.amount) for w in inc.records().withdrawals] == [(member.address, STAKE)]
    refused(state, InvalidState, "incentives: no stake", rw.inc(1).withdraw_stake)


def test_a_task_without_a_round_limit_never_ends(ledger: Ledger) -> None:
    rw = deploy_rewarded(ledger, stake=False, max_rounds=0)
    refused(books(rw), InvalidState, "incentives: task has no round limit", rw.incentives.mark_ended)


def test_deposits_require_stake_parameters_to_be_met_exactly(ledger: Ledger) -> None:
    params = replace(PARAMS, trainer_stake=50, validator_stake=150)
    rw = deploy_rewarded(ledger, params, stake=False)
    deposit(rw, 0, 100)
    inc, who = rw.incentives, ledger.members[0].address
    assert inc.is_staked(who, Role.TRAINER) and not inc.is_staked(who, Role.VALIDATOR)
    free = deploy_rewarded(ledger, IncentiveParams(reward_per_round=1), stake=False)
    assert free.incentives.is_staked(who, Role.TRAINER) and free.incentives.is_staked(who, Role.VALIDATOR)
