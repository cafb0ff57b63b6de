"""Incentive helpers shared by the reward tests: an Incentives contract bound to a stake-gated task on the test
ledger, members' stakes, the ERC-20 the token pools pay in, and rounds driven to finalization with chosen scores."""

from __future__ import annotations

import sysconfig
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from web3.contract import Contract

from conftest import DEFAULT_PARAMS, Ledger, h
from fedledger.chain import IncentiveParams, IncentivesClient, Phase, TrainingTaskClient, TxResult

CONTRACTS = Path(__file__).resolve().parent.parent / "chain" / "contracts"
STAKE = 100
PARAMS = IncentiveParams(
    reward_per_round=1_000,
    trainer_stake=STAKE,
    validator_stake=STAKE,
    trainer_slash_bps=5_000,
    validator_slash_bps=2_000,
    contribution_window=600,
    dispute_window=3_600,
)
# Validator reputation on (more than half of its scores against the outcome, after 3), three rounds in all.
TASK_RULES: dict[str, Any] = {"max_rounds": 3, "max_disagreement": 5_000, "reputation_warmup": 3}


@dataclass
class Rewarded:
    """A ledger whose task is stake-gated by ``incentives`` (the ledger's own task replaced by the gated one)."""

    ledger: Ledger
    incentives: IncentivesClient
    token: Contract | None = None

    def inc(self, i: int) -> IncentivesClient:
        """members[i]'s client of the incentives."""
        return self.incentives.as_(self.ledger.members[i])

    def t(self, i: int) -> TrainingTaskClient:
        return self.ledger.member_task(i)


@cache
def reward_token() -> tuple[list[dict[str, Any]], str]:
    """ABI and bytecode of snekmate's ERC-20 as a deployable test token."""
    import vyper
    from vyper.compiler.input_bundle import FilesystemInputBundle

    path = CONTRACTS / "RewardToken.vy"
    out = vyper.compile_code(
        path.read_text(encoding="utf-8"),
        contract_path=path.name,
        resolved_path=path,
        input_bundle=FilesystemInputBundle([CONTRACTS, Path(sysconfig.get_paths()["purelib"])]),
        output_formats=["abi", "bytecode"],
    )
    return out["abi"], out["bytecode"]


def deploy_token(ledger: Ledger, mint: int = 10**6) -> Contract:
    """The reward token, owned by the admin, with ``mint`` tokens for the admin and every member."""
    abi, bytecode = reward_token()
    address, _ = ledger.chain.deploy_code(ledger.admin, abi, bytecode, label="deploy RewardToken")
    token = ledger.chain.w3.eth.contract(address=address, abi=abi)
    for account in [ledger.admin, *ledger.members, ledger.outsider]:
        ledger.chain.transact(ledger.admin, token.functions.mint(account.address, mint))
    return token


def token_balance(rewarded: Rewarded, address: str) -> int:
    assert rewarded.token is not None
    return int(rewarded.ledger.chain.call(rewarded.token.functions.balanceOf(address)))


def deploy_rewarded(
    ledger: Ledger, params: IncentiveParams = PARAMS, *, token: bool = False, stake: bool = True, **task_rules: Any
) -> Rewarded:
    """Incentives first, then a task gated by them, then the binding; every member stakes when ``stake``."""
    erc20 = deploy_token(ledger) if token else None
    if erc20 is not None:
        params = replace(params, token=erc20.address)
    incentives = IncentivesClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    rules = {**TASK_RULES, **task_rules}
    task_params = replace(DEFAULT_PARAMS, stake_gate=incentives.address, **rules)
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, task_params)
    incentives.bind_task(task.address)
    rewarded = Rewarded(replace(ledger, task=task, params=task_params), incentives, erc20)
    if stake:
        for i in range(len(ledger.members)):
            deposit(rewarded, i, max(params.trainer_stake, params.validator_stake))
    return rewarded


def deposit(rewarded: Rewarded, i: int, amount: int) -> TxResult:
    """members[i] stakes ``amount`` (approving the token first on a token pool)."""
    client = rewarded.inc(i)
    if rewarded.token is not None:
        client.approve_token(amount)
    return client.deposit_stake(amount)


def fund(rewarded: Rewarded, amount: int) -> TxResult:
    """The admin funds the pool."""
    client = rewarded.incentives.as_(rewarded.ledger.admin)
    if rewarded.token is not None:
        client.approve_token(amount)
    return client.fund(amount)


def scored_round(rewarded: Rewarded, scores: Sequence[Sequence[int | None]], *, finalize: bool = True) -> int:
    """A round where the four members commit and members[j] scores ``scores[j]``; finalized when any update is
    accepted and ``finalize``. Returns its id."""
    r = rewarded.t(0).open_round()
    for i in range(4):
        rewarded.t(i).commit_update(r, h(f"update-{rewarded.incentives.address}-{r}-{i}"), 100 + i)
    assert rewarded.t(0).close_commits(r) is Phase.VALIDATE
    for j, row in enumerate(scores):
        if any(s is not None for s in row):
            rewarded.t(j).submit_scores(r, row)
    if rewarded.ledger.chain.timestamp() <= rewarded.ledger.task.round(r).validate_deadline and any(
        all(s is None for s in row) for row in scores
    ):
        rewarded.ledger.chain.advance_time(rewarded.ledger.params.validate_duration + 1)
    phase = rewarded.t(0).close_validation(r)
    if phase is Phase.AGGREGATE and finalize:
        mask = rewarded.ledger.task.round(r).accepted_mask
        rewarded.t(0).propose_aggregate(r, h(f"model-{r}"), mask)
        assert rewarded.t(1).propose_aggregate(r, h(f"model-{r}"), mask)
    return r


def honest(score: int = 9_000) -> list[list[int | None]]:
    """Each of the four members scores every other update ``score``."""
    return [[None if i == j else score for i in range(4)] for j in range(4)]


def post_all(rewarded: Rewarded, r: int, contributions: Sequence[int]) -> None:
    """Every member posts ``contributions[i]`` for each accepted update i but its own."""
    mask = rewarded.ledger.task.round(r).accepted_mask
    for j in range(4):
        values = {i: c for i, c in enumerate(contributions) if i != j and mask >> i & 1}
        rewarded.inc(j).post_contributions(r, values)


def abort_round(rewarded: Rewarded) -> int:
    """Open a round nobody commits to and let it abort (fewer commitments than the quorum)."""
    r = rewarded.t(0).open_round()
    rewarded.ledger.chain.advance_time(rewarded.ledger.params.commit_duration + 1)
    assert rewarded.t(0).close_commits(r) is Phase.ABORTED
    return r
