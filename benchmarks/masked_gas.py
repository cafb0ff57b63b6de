"""Gas of a secure round with masked validity checks (``SecureTrainingTask`` with a check committee of three).

On a fresh embedded chain: a consortium of four members, each a trainer and an aggregator with a key-agreement key,
and a secure task with masked checks. One round runs to its majority outcome (opening draws the committee; four
bundle commitments; the committee's outcomes, the second of which reaches the majority and starts aggregation;
two proposals), and one round aborts without a majority (two aborts, then ``close_checks`` naming the silent member).

    python benchmarks/masked_gas.py
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

from eth_account import Account

from fedledger.chain import Chain, ConsortiumClient, Phase, Role, TaskParams, TrainingTaskClient
from fedledger.chain.embedded import FAUCET_KEY

MEMBERS = 4
PARAMS = TaskParams(
    config_hash="0x" + hashlib.sha256(b"masked-gas-config").hexdigest(),
    initial_model="0x" + hashlib.sha256(b"masked-gas-model").hexdigest(),
    min_commitments=2,
    proposal_quorum=2,
    committee_size=3,
    secagg_threshold=1,
)


def _h(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def masked_round_gas() -> dict[str, list[int]]:
    """Gas of each masked-round operation, in call order."""
    gas: dict[str, list[int]] = {}

    def record(op: str, used: int) -> None:
        gas.setdefault(op, []).append(used)

    with tempfile.TemporaryDirectory(prefix="fedledger-masked-gas-") as tmp, Chain.embedded(Path(tmp)) as chain:
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        admin, *members = [Account.from_key(_h(f"masked-gas-{i}")) for i in range(MEMBERS + 1)]
        for acct in [admin, *members]:
            chain.transfer(faucet, acct.address, 10**21)
        consortium = ConsortiumClient.deploy(chain, admin, org="Founder", roles=Role.ADMIN)
        for i, member in enumerate(members):
            consortium.propose_admit(member.address, org=f"Member-{i}", roles=Role.TRAINER | Role.AGGREGATOR)
            consortium.as_(member).update_metadata(
                cert_fingerprint=_h(f"c{i}"), kx_public_key=_h(f"k{i}"), store_uri=""
            )
        task = TrainingTaskClient.deploy(chain, admin, consortium.address, PARAMS)
        by_address = {m.address: task.as_(m) for m in members}
        for outcome in ("majority", "abort"):
            opened = chain.transact(members[0], task.contract.functions.open_round())
            record("open_round (draws the check committee)", opened.gas_used)
            r = task.current_round
            for k, member in enumerate(members):
                task.as_(member).commit_update(r, _h(f"bundle-{r}-{k}"), 100)
            if task.as_(members[0]).close_commits(r) is not Phase.VALIDATE:
                raise RuntimeError("the benchmark round did not reach its masked checks")
            committee = [by_address[a] for a in task.check_committee(r)]
            if outcome == "majority":
                for checker in committee[:2]:
                    record("post_check_outcome", checker.post_check_outcome(r, 0b1111, _h(f"outcome-{r}")).gas_used)
                for checker in committee[:2]:
                    checker.propose_aggregate(r, _h(f"model-{r}"), 0b1111)
            else:
                for checker in committee[:2]:
                    record("post_check_abort", checker.post_check_abort(r, _h(f"abort-{r}")).gas_used)
                chain.advance_time(PARAMS.validate_duration + 1)
                record("close_checks (aborts, names the silent member)", committee[0].close_checks(r).gas_used)
    return gas


def main() -> int:
    print(json.dumps(masked_round_gas(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
