"""``fedledger rewards``: a task's reward pool, each member's contributions, earnings, stake and slashes; claim
earnings, fund the pool, deposit and withdraw stake.

Amounts are in the pool's smallest unit: wei for native currency, the token's base unit for an ERC-20 pool.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from eth_account.signers.local import LocalAccount
from rich.table import Table

from fedledger.chain.connection import TxResult
from fedledger.chain.incentives import IncentiveRecords, IncentivesClient
from fedledger.cli.common import DEFAULT_WS, AsOpt, JsonOpt, WorkspaceOpt, console, open_workspace, print_json
from fedledger.exceptions import ConfigError
from fedledger.workspace import Workspace

app = typer.Typer(
    help="A task's rewards: the pool, each member's contribution, earnings, stake and slashes; claim, fund, stake.",
    invoke_without_command=True,
)

TaskOpt = Annotated[str, typer.Option("--task", help="Task name in the workspace.")]
AmountArg = Annotated[int, typer.Argument(help="Amount in the pool's smallest unit (wei, or the token's base unit).")]


def task_incentives(ws: Workspace, task_name: str, account: LocalAccount | None = None) -> IncentivesClient:
    """The Incentives contract of a workspace's task; :class:`ConfigError` for a task created without incentives."""
    task = ws.task(task_name)
    gate = task.params().stake_gate
    if int(gate, 16) == 0:
        raise ConfigError(
            f"task {task_name!r} at {task.address} has no incentives: it was created without a reward pool "
            "(its stake gate is the zero address), so there is nothing to show, claim, fund or stake"
        )
    return IncentivesClient(ws.chain, gate, account)


def rewards_report(ws: Workspace, task_name: str) -> dict[str, Any]:
    """The pool, the rounds settled and not, and per member its contributions, earnings, claims, stake and slashes,
    all read at one block."""
    incentives = task_incentives(ws, task_name)
    task = ws.task(task_name)
    block = ws.chain.block_number
    params, totals = incentives.params(), incentives.totals(block=block)
    records = incentives.records(to_block=block)
    finalized = sorted(task.model_history())
    settled = sorted({s.round_id for s in records.settlements})
    return {
        "task": task_name,
        "address": task.address,
        "incentives": incentives.address,
        "block": block,
        "currency": "native" if params.native else params.token,
        "reward_per_round": params.reward_per_round,
        "pool": {
            "funded": totals.funded,
            "slashed": totals.slashed,
            "allocated": totals.allocated,
            "paid": totals.paid,
            "available": totals.pool,
            "staked": totals.staked,
        },
        "rounds": {
            "finalized": finalized,
            "settled": settled,
            "unsettled": [r for r in finalized if r not in set(settled)],
        },
        "settlements": [
            {
                "round": e.round_id,
                "budget": e.budget,
                "allocated": e.allocated,
                "total_contribution": e.total_contribution,
            }
            for e in records.settlements
        ],
        "members": _member_rows(ws, incentives, records, block),
    }


def _member_rows(ws: Workspace, incentives: IncentivesClient, records: IncentiveRecords, block: int) -> list[Any]:
    credits: dict[str, list[dict[str, int]]] = defaultdict(list)
    for c in records.credits:
        credits[c.member].append(
            {"round": c.round_id, "index": c.index, "contribution": c.contribution, "amount": c.amount}
        )
    claimed: dict[str, int] = defaultdict(int)
    for claim in records.claims:
        claimed[claim.member] += claim.amount
    f, call = incentives.contract.functions, ws.chain.call
    rows = []
    for member in ws.consortium().members(block=block):
        a = member.address
        rows.append(
            {
                "address": a,
                "org": member.org,
                "contributions": credits.get(a, []),
                "earned": sum(c["amount"] for c in credits.get(a, [])),
                "claimed": claimed.get(a, 0),
                "unclaimed": int(call(f.earned(a), block=block)),
                "stake": int(call(f.stake_of(a), block=block)),
                "slashed": int(call(f.slashed_of(a), block=block)),
            }
        )
    return rows


@app.callback()
def show(
    ctx: typer.Context,
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: TaskOpt = "default",
    json_out: JsonOpt = False,
) -> None:
    """The task's reward pool, rounds settled and not, and per member: contribution per settled round, earned,
    claimed, unclaimed, stake and slashed."""
    if ctx.invoked_subcommand is not None:
        return
    with open_workspace(workspace) as ws:
        report = rewards_report(ws, task)
    if json_out:
        print_json(report)
        return
    _print_report(report)


def _print_report(report: dict[str, Any]) -> None:
    currency = "native currency" if report["currency"] == "native" else f"token {report['currency']}"
    console.print(
        f"rewards of task {report['task']} (incentives {report['incentives']}, {currency}, "
        f"at most {report['reward_per_round']} per round)"
    )
    p = report["pool"]
    console.print(
        f"pool: funded {p['funded']}, slashed {p['slashed']}, allocated {p['allocated']}, paid {p['paid']}, "
        f"available {p['available']}; staked {p['staked']}"
    )
    rounds = report["rounds"]
    console.print(
        f"rounds: {len(rounds['finalized'])} finalized, settled {rounds['settled'] or '-'}, "
        f"not settled yet {rounds['unsettled'] or '-'}"
    )
    for e in report["settlements"]:
        console.print(
            f"  round {e['round']}: budget {e['budget']}, allocated {e['allocated']} "
            f"(total contribution {e['total_contribution']})"
        )
    table = Table(
        "member", "org", "contribution (round: value → amount)", "earned", "claimed", "unclaimed", "stake", "slashed"
    )
    for m in report["members"]:
        contributions = ", ".join(f"{c['round']}: {c['contribution']} → {c['amount']}" for c in m["contributions"])
        table.add_row(
            m["address"],
            m["org"],
            contributions or "-",
            *(str(m[k]) for k in ("earned", "claimed", "unclaimed", "stake", "slashed")),
        )
    console.print(table)


@app.command("claim")
def claim(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: TaskOpt = "default",
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Claim everything this member earned and has not claimed (members only; refused when there is nothing)."""
    result = _pay_out(workspace, task, as_key, "claim", lambda records: records.claims)
    _say(result, json_out, f"claimed {result['amount']} for {result['member']}")


@app.command("fund")
def fund(
    amount: AmountArg,
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: TaskOpt = "default",
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Add AMOUNT to the task's reward pool (anyone may; a token pool is approved first)."""
    result = _pay_in(workspace, task, as_key, amount, "fund", lambda inc, _: {"pool": inc.pool()})
    _say(result, json_out, f"funded the pool with {amount}: it now holds {result['pool']} not yet allocated")


@app.command("stake")
def stake(
    amount: AmountArg,
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: TaskOpt = "default",
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Deposit AMOUNT of stake for this member (the stake its roles need to commit or score)."""
    result = _pay_in(workspace, task, as_key, amount, "deposit_stake", lambda inc, who: {"stake": inc.stake_of(who)})
    _say(result, json_out, f"staked {amount} for {result['member']}: its stake is now {result['stake']}")


@app.command("withdraw")
def withdraw(
    workspace: WorkspaceOpt = DEFAULT_WS,
    task: TaskOpt = "default",
    as_key: AsOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Withdraw this member's remaining stake (only after the task ended and its dispute window passed)."""
    result = _pay_out(workspace, task, as_key, "withdraw_stake", lambda records: records.withdrawals)
    _say(result, json_out, f"withdrew a stake of {result['amount']} for {result['member']}")


def _tx_result(task: str, incentives: IncentivesClient, member: str, tx: TxResult, amount: int) -> dict[str, Any]:
    return {
        "task": task,
        "incentives": incentives.address,
        "member": member,
        "amount": amount,
        "tx_hash": tx.tx_hash,
        "block_number": tx.block_number,
    }


def _say(result: dict[str, Any], json_out: bool, text: str) -> None:
    if json_out:
        print_json(result)
    else:
        console.print(text)


def _pay_in(
    workspace: Path,
    task: str,
    as_key: str | None,
    amount: int,
    method: str,
    after: Callable[[IncentivesClient, str], dict[str, Any]],
) -> dict[str, Any]:
    """Send AMOUNT into the task's Incentives contract by ``method`` (``fund`` or ``deposit_stake``), approving a
    token pool first; the transaction's result with what ``after`` reads back."""
    with open_workspace(workspace) as ws:
        account = ws.account(as_key)
        incentives = task_incentives(ws, task, account)
        if not incentives.params().native:
            incentives.approve_token(amount)
        tx = getattr(incentives, method)(amount)
        return _tx_result(task, incentives, account.address, tx, amount) | after(incentives, account.address)


def _pay_out(
    workspace: Path, task: str, as_key: str | None, method: str, paid: Callable[[IncentiveRecords], Sequence[Any]]
) -> dict[str, Any]:
    """Take this member's money out of the task's Incentives contract by ``method`` (``claim`` or
    ``withdraw_stake``); the amount is what the transaction's own event (``paid`` of its block's records) says."""
    with open_workspace(workspace) as ws:
        account = ws.account(as_key)
        incentives = task_incentives(ws, task, account)
        tx = getattr(incentives, method)()
        records = incentives.records(from_block=tx.block_number, to_block=tx.block_number)
        amount = sum(event.amount for event in paid(records) if event.tx_hash == tx.tx_hash)
        return _tx_result(task, incentives, account.address, tx, amount)
