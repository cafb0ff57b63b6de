"""``fedledger rewards`` on the embedded chain, through the real entry point: the pool and each member's contributions,
earnings, claims, stake and slashes against what the contract says after settled rounds; claim pays once and is
refused by name after that and to a non-member; fund and stake; a task without incentives is refused by name.

The task with incentives is deployed with the chain clients on the workspace's chain (task creation from a config
with incentives is the node's part), and its rounds are driven by the members' clients.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, Ledger
from fedledger.chain import IncentivesClient, TrainingTaskClient
from fedledger.workspace import Workspace
from helpers.cli import PASSWORD, fedledger
from helpers.incentives import PARAMS, STAKE, Rewarded, honest, post_all, reward_token, scored_round

NAMES = ("admin", "alice", "bob", "carol")
ROUND_1 = [1_000, 2_000, 3_000, 4_000]  # every validator posts the same values: the medians
FUNDING = 2_500
REPORT_KEYS = {
    "task",
    "address",
    "incentives",
    "block",
    "currency",
    "reward_per_round",
    "pool",
    "rounds",
    "settlements",
}
REPORT_KEYS |= {"members"}
MEMBER_KEYS = {"address", "org", "contributions", "earned", "claimed", "unclaimed", "stake", "slashed"}


@dataclass
class RewardedWorkspace:
    path: Path
    addresses: dict[str, str]  # key name -> address
    task: str  # the task's address
    incentives: str


def _accounts(ws: Workspace) -> list[LocalAccount]:
    return [ws.account(name, PASSWORD) for name in NAMES]


def _rewarded(ws: Workspace, rw: RewardedWorkspace) -> Rewarded:
    """The helpers' view of the workspace's task: its four members are the workspace's keys."""
    accounts = _accounts(ws)
    task = TrainingTaskClient(ws.chain, rw.task)
    params = replace(DEFAULT_PARAMS, stake_gate=rw.incentives, max_rounds=3)
    ledger = Ledger(ws.chain, accounts[0], accounts, accounts[0], ws.consortium(), task, params)
    return Rewarded(ledger, IncentivesClient(ws.chain, rw.incentives, accounts[0]))


@pytest.fixture
def rewarded_ws(tmp_path: Path) -> RewardedWorkspace:
    """A workspace whose founder and three members (keys of the workspace) take part in a task with incentives,
    staked and funded through ``fedledger rewards``; rounds 1 and 2 settled, round 3 finalized and not settled."""
    path = tmp_path / "ws"
    fedledger("init", "-w", path, "--light-kdf", "--org", "Founder", "--json").json()
    addresses = {"admin": fedledger("key", "list", "-w", path, "--json").json()[0]["address"]}
    for name in NAMES[1:]:
        addresses[name] = fedledger("key", "new", name, "-w", path, "--json").json()["address"]
        roles = "trainer,validator,aggregator"
        fedledger(
            "member", "add", addresses[name], "--org", name.title(), "--roles", roles, "-w", path, "--json"
        ).json()
    with Workspace.load(path) as ws:
        admin = ws.account("admin", PASSWORD)
        incentives = IncentivesClient.deploy(ws.chain, admin, ws.config.consortium, PARAMS)
        params = replace(DEFAULT_PARAMS, stake_gate=incentives.address, max_rounds=3)
        task = TrainingTaskClient.deploy(ws.chain, admin, ws.config.consortium, params)
        incentives.bind_task(task.address)
        ws.config.tasks["default"] = task.address
        ws.save()
    rw = RewardedWorkspace(path, addresses, task.address, incentives.address)
    for name in NAMES:
        staked = fedledger("rewards", "stake", STAKE, "--as", name, "-w", path, "--json").json()
        assert (staked["amount"], staked["stake"], staked["member"]) == (STAKE, STAKE, addresses[name])
    funded = fedledger("rewards", "fund", FUNDING, "-w", path, "--json").json()
    assert funded["pool"] == FUNDING
    with Workspace.load(path) as ws:
        rewarded = _rewarded(ws, rw)
        r1 = scored_round(rewarded, honest())
        post_all(rewarded, r1, ROUND_1)
        rewarded.incentives.settle_round(r1)
        r2 = scored_round(rewarded, honest())
        # Round 2: update 0's values 500, 900, 100 (median 500); the others get 1000 from everyone.
        rows = {1: {0: 500, 2: 1_000, 3: 1_000}, 2: {0: 900, 1: 1_000, 3: 1_000}, 3: {0: 100, 1: 1_000, 2: 1_000}}
        rewarded.inc(0).post_contributions(r2, {1: 1_000, 2: 1_000, 3: 1_000})
        for j, values in rows.items():
            rewarded.inc(j).post_contributions(r2, values)
        rewarded.incentives.settle_round(r2)
        scored_round(rewarded, honest())
    return rw


def test_rewards_shows_the_pool_and_each_members_contributions_against_the_chain(
    rewarded_ws: RewardedWorkspace,
) -> None:
    report = fedledger("rewards", "-w", rewarded_ws.path, "--json").json()
    assert set(report) == REPORT_KEYS
    assert (report["incentives"], report["address"], report["currency"]) == (
        rewarded_ws.incentives,
        rewarded_ws.task,
        "native",
    )
    assert report["reward_per_round"] == PARAMS.reward_per_round
    # Round 1 pays 1000 by 1:2:3:4; round 2's medians 500, 1000, 1000, 1000 split 1000 by floor (3 wei of dust).
    round_2 = [1_000 * c // 3_500 for c in (500, 1_000, 1_000, 1_000)]
    assert round_2 == [142, 285, 285, 285]
    allocated = 1_000 + sum(round_2)
    assert report["pool"] == {
        "funded": FUNDING,
        "slashed": 0,
        "allocated": allocated,
        "paid": 0,
        "available": FUNDING - allocated,
        "staked": 4 * STAKE,
    }
    assert report["rounds"] == {"finalized": [1, 2, 3], "settled": [1, 2], "unsettled": [3]}
    assert report["settlements"] == [
        {"round": 1, "budget": 1_000, "allocated": 1_000, "total_contribution": 10_000},
        {"round": 2, "budget": 1_000, "allocated": sum(round_2), "total_contribution": 3_500},
    ]
    rows = {m["address"]: m for m in report["members"]}
    assert set(rows) == set(rewarded_ws.addresses.values())
    with Workspace.load(rewarded_ws.path) as ws:
        chain_view = IncentivesClient(ws.chain, rewarded_ws.incentives)
        for i, name in enumerate(NAMES):
            row = rows[rewarded_ws.addresses[name]]
            assert set(row) == MEMBER_KEYS
            assert row["org"] == ("Founder" if name == "admin" else name.title())
            assert row["contributions"] == [
                {"round": 1, "index": i, "contribution": ROUND_1[i], "amount": 100 * (i + 1)},
                {"round": 2, "index": i, "contribution": (500, 1_000, 1_000, 1_000)[i], "amount": round_2[i]},
            ]
            earned = 100 * (i + 1) + round_2[i]
            assert (row["earned"], row["claimed"], row["unclaimed"]) == (earned, 0, earned)
            assert row["unclaimed"] == chain_view.earned(row["address"])
            assert (row["stake"], row["slashed"]) == (STAKE, 0) == (chain_view.stake_of(row["address"]), 0)
        assert report["pool"]["available"] == chain_view.pool()
    credited = fedledger("ledger", "events", "--name", "RewardCredited", "-w", rewarded_ws.path, "--json").json()
    assert [(e["round_id"], e["index"], e["amount"]) for e in credited] == [
        (r, i, amount) for r, amounts in ((1, [100, 200, 300, 400]), (2, round_2)) for i, amount in enumerate(amounts)
    ]
    human = fedledger("rewards", "-w", rewarded_ws.path)
    assert human.code == 0, human.stderr
    assert f"available {FUNDING - allocated}" in human.stdout
    assert "not settled yet [3]" in human.stdout
    assert f"round 2: budget 1000, allocated {sum(round_2)} (total contribution 3500)" in human.stdout
    assert "Alice" in human.stdout and "2: 500 → 142" in human.stdout


def test_claim_pays_once_then_is_refused_by_name(rewarded_ws: RewardedWorkspace) -> None:
    path, bob = rewarded_ws.path, rewarded_ws.addresses["bob"]
    with Workspace.load(path) as ws:
        before = ws.chain.balance(bob)
    claimed = fedledger("rewards", "claim", "--as", "bob", "-w", path, "--json").json()
    owed = 300 + 285  # bob committed update 2 in both rounds
    assert (claimed["member"], claimed["amount"]) == (bob, owed)
    with Workspace.load(path) as ws:
        receipt = ws.chain.w3.eth.get_transaction_receipt(claimed["tx_hash"])
        gas = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        assert ws.chain.balance(bob) == before + owed - gas
        assert IncentivesClient(ws.chain, rewarded_ws.incentives).earned(bob) == 0
    row = next(m for m in fedledger("rewards", "-w", path, "--json").json()["members"] if m["address"] == bob)
    assert (row["earned"], row["claimed"], row["unclaimed"]) == (owed, owed, 0)
    again = fedledger("rewards", "claim", "--as", "bob", "-w", path)
    assert again.code == 7, again.message  # InvalidState
    assert "incentives: nothing to claim" in again.message
    human = fedledger("rewards", "claim", "--as", "carol", "-w", path)
    assert human.code == 0 and human.stdout.strip() == f"claimed {400 + 285} for {rewarded_ws.addresses['carol']}"


def test_a_non_member_cannot_claim_and_stake_is_withdrawn_after_the_task_ended(rewarded_ws: RewardedWorkspace) -> None:
    path = rewarded_ws.path
    eve = fedledger("key", "new", "eve", "-w", path, "--json").json()["address"]
    with Workspace.load(path) as ws:
        ws.fund(eve)  # gas, so that the contract itself refuses
    refused = fedledger("rewards", "claim", "--as", "eve", "-w", path)
    assert refused.code == 6, refused.message  # NotAuthorized
    assert "incentives: caller is not a member" in refused.message
    early = fedledger("rewards", "withdraw", "--as", "alice", "-w", path)
    assert early.code == 7 and "incentives: task not ended" in early.message
    with Workspace.load(path) as ws:  # all three rounds closed: the task ended, and its dispute window passes
        IncentivesClient(ws.chain, rewarded_ws.incentives, ws.account("admin", PASSWORD)).mark_ended()
        ws.chain.advance_time(PARAMS.dispute_window)
    withdrawn = fedledger("rewards", "withdraw", "--as", "alice", "-w", path, "--json").json()
    assert (withdrawn["member"], withdrawn["amount"]) == (rewarded_ws.addresses["alice"], STAKE)
    again = fedledger("rewards", "withdraw", "--as", "alice", "-w", path)
    assert again.code == 7 and "incentives: no stake" in again.message
    row = next(
        m for m in fedledger("rewards", "-w", path, "--json").json()["members"] if m["address"] == withdrawn["member"]
    )
    assert row["stake"] == 0


def test_a_task_without_incentives_is_refused_by_name(rewarded_ws: RewardedWorkspace) -> None:
    path = rewarded_ws.path
    with Workspace.load(path) as ws:
        plain = TrainingTaskClient.deploy(ws.chain, ws.account("admin", PASSWORD), ws.config.consortium, DEFAULT_PARAMS)
        ws.config.tasks["plain"] = plain.address
        ws.save()
    for args in ([], ["--json"], ["claim"], ["fund", "10"], ["stake", "10"]):
        sub, rest = (args[:1], args[1:]) if args and not args[0].startswith("-") else ([], args)
        result = fedledger("rewards", *sub, "--task", "plain", "-w", path, *rest)
        assert result.code == 2, (args, result.message)  # ConfigError
        assert f"task 'plain' at {plain.address} has no incentives" in result.message
        assert "Traceback" not in result.stdout + result.stderr


def test_audit_verify_reports_the_payouts_and_what_it_trusts(rewarded_ws: RewardedWorkspace) -> None:
    """The test task's config is no blob in the store (its rounds are driven by the clients, not by nodes): that is
    the audit's one discrepancy, and the payouts are still re-derived and reported."""
    path = rewarded_ws.path
    assert fedledger("rewards", "claim", "--as", "alice", "-w", path).code == 0  # a claim for the audit to check
    human = fedledger("audit", "verify", "-w", path)
    assert human.code == 13 and "task config unavailable" in human.message
    said = " ".join(human.stdout.split())
    assert "payouts verified: 2 settled rounds, 8 credits, 1 claims, 0 slashes re-derived from the ledger" in said
    assert "rounds not settled yet: [3]" in said
    assert "trusted: the validators' posted contribution values" in said
    machine = fedledger("audit", "verify", "-w", path, "--json")
    assert machine.code == 13
    payouts = json.loads(machine.stdout)["payouts"]
    assert (payouts["ok"], payouts["incentives"], payouts["credits_checked"]) == (True, rewarded_ws.incentives, 8)


def test_a_token_pool_is_funded_and_staked_in_its_token(tmp_path: Path) -> None:
    """On an ERC-20 pool, fund and stake approve the contract first and move tokens, not native currency."""
    path = tmp_path / "ws"
    admin_address = fedledger("init", "-w", path, "--light-kdf", "--org", "Founder", "--json").json()["address"]
    abi, bytecode = reward_token()
    with Workspace.load(path) as ws:
        admin = ws.account("admin", PASSWORD)
        token_address, _ = ws.chain.deploy_code(admin, abi, bytecode, label="deploy RewardToken")
        token = ws.chain.w3.eth.contract(address=token_address, abi=abi)
        ws.chain.transact(admin, token.functions.mint(admin.address, 10_000))
        incentives = IncentivesClient.deploy(
            ws.chain, admin, ws.config.consortium, replace(PARAMS, token=token_address)
        )
        task = TrainingTaskClient.deploy(
            ws.chain, admin, ws.config.consortium, replace(DEFAULT_PARAMS, stake_gate=incentives.address)
        )
        incentives.bind_task(task.address)
        ws.config.tasks["default"] = task.address
        ws.save()
    assert fedledger("rewards", "fund", 2_000, "-w", path, "--json").json()["pool"] == 2_000
    assert fedledger("rewards", "stake", STAKE, "-w", path, "--json").json()["stake"] == STAKE
    report = fedledger("rewards", "-w", path, "--json").json()
    assert report["currency"] == token_address
    assert (report["pool"]["funded"], report["pool"]["staked"]) == (2_000, STAKE)
    with Workspace.load(path) as ws:
        balance = ws.chain.w3.eth.contract(address=token_address, abi=abi).functions.balanceOf
        assert ws.chain.call(balance(admin_address)) == 10_000 - 2_000 - STAKE
        assert ws.chain.call(balance(incentives.address)) == 2_000 + STAKE
    human = fedledger("rewards", "-w", path)
    assert f"token {token_address}" in human.stdout


def test_amounts_are_checked_before_anything_is_sent(rewarded_ws: RewardedWorkspace) -> None:
    zero = fedledger("rewards", "fund", "0", "-w", rewarded_ws.path)
    assert zero.code == 9 and "incentives: zero amount" in zero.message  # InvalidArgument, the contract's reason
    negative = fedledger("rewards", "stake", "-w", rewarded_ws.path, "--", "-5")
    assert negative.code == 2 and "malformed amount" in negative.message  # BadInput: nothing sent
