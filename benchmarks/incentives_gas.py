"""Gas of settling a round's rewards (``Incentives.settle_round``) against its number of accepted updates.

On a fresh embedded chain: a consortium of nine members, an Incentives contract and the task it gates. From the
same chain state each time, a round with n accepted updates (one contribution value posted for each) is finalized
and settled; the settlement's gas is recorded. Issue 31 asks for the reward step's gas to grow linearly in the
accepted updates: the per-update increments printed here are constant.

    python benchmarks/incentives_gas.py
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedledger.chain import (
    Chain,
    ConsortiumClient,
    IncentiveParams,
    IncentivesClient,
    Phase,
    Role,
    TaskParams,
    TrainingTaskClient,
)
from fedledger.chain.embedded import FAUCET_KEY

ACCEPTED = (2, 4, 8)
MEMBERS = 9  # eight trainers and one validator scoring them all
PARAMS = TaskParams(
    config_hash="0x" + hashlib.sha256(b"incentives-gas-config").hexdigest(),
    initial_model="0x" + hashlib.sha256(b"incentives-gas-model").hexdigest(),
    min_commitments=2,
    proposal_quorum=1,
)


def _h(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def _settle(
    chain: Chain, task: TrainingTaskClient, inc: IncentivesClient, members: Sequence[LocalAccount], n: int
) -> int:
    trainers, scorer = members[:-1], members[-1]
    r = task.as_(members[0]).open_round()
    for k, trainer in enumerate(trainers[:n]):
        task.as_(trainer).commit_update(r, _h(f"update-{n}-{k}"), 100)
    chain.advance_time(PARAMS.commit_duration + 1)
    if task.as_(members[0]).close_commits(r) is not Phase.VALIDATE:
        raise RuntimeError("the benchmark round did not reach validation")
    task.as_(scorer).submit_scores(r, [9_000] * n)
    chain.advance_time(PARAMS.validate_duration + 1)
    task.as_(members[0]).close_validation(r)
    task.as_(members[0]).propose_aggregate(r, _h(f"model-{n}"), (1 << n) - 1)
    inc.as_(scorer).post_contributions(r, {i: 1_000 + i for i in range(n)})
    return inc.as_(scorer).settle_round(r).gas_used


def settle_gas(accepted: Sequence[int] = ACCEPTED) -> dict[int, int]:
    """Gas of ``settle_round`` for a round with each number of accepted updates."""
    with tempfile.TemporaryDirectory(prefix="fedledger-incentives-gas-") as tmp, Chain.embedded(Path(tmp)) as chain:
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        admin, *members = [Account.from_key(_h(f"incentives-gas-{i}")) for i in range(MEMBERS + 1)]
        for acct in [admin, *members]:
            chain.transfer(faucet, acct.address, 10**21)
        consortium = ConsortiumClient.deploy(chain, admin, org="Founder", roles=Role.ADMIN)
        for i, member in enumerate(members):
            roles = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR
            consortium.propose_admit(member.address, org=f"Member-{i}", roles=roles)
        inc = IncentivesClient.deploy(chain, admin, consortium.address, IncentiveParams(reward_per_round=1_000))
        task = TrainingTaskClient.deploy(chain, admin, consortium.address, replace(PARAMS, stake_gate=inc.address))
        inc.bind_task(task.address)
        inc.fund(10_000)
        gas = {}
        for n in accepted:
            snapshot = chain.snapshot()
            gas[n] = _settle(chain, task, inc, members, n)
            chain.revert(snapshot)
        return gas


def main() -> int:
    gas = settle_gas()
    counts = sorted(gas)
    steps = {f"{a}->{b}": (gas[b] - gas[a]) // (b - a) for a, b in zip(counts, counts[1:], strict=False)}
    print(json.dumps({"settle_round gas by accepted updates": gas, "gas per accepted update": steps}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
