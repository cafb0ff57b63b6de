"""Batched validated rounds as they are deployed: every party its own OS process through the ``fedledger`` command.

Three organizations share a served chain and a store. The task's config says ``commitments = "batched"``, so
``task create`` deploys its CommitmentBatches contract with it. The founder runs the relay (``fedledger batch relay
--rounds 2``, one process for both rounds); each organization runs ``fedledger node --relay URL``: its trainer
hands its signed commitment to the relay instead of calling ``commit_update``, the relay posts one root, an
aggregator delivers the finalized batch to the task, and each round is validated, aggregated and finalized on the
delivered updates. ``audit verify`` then follows every leaf to its update. The commitments of a round cost two
transactions (the root, the delivery) whatever the number of trainers, up to 128.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from fedledger.chain import Chain, TrainingTaskClient
from fedledger.chain.batch_events import BatchDelivered, BatchPosted
from fedledger.chain.batches import CommitmentBatchesClient
from fedledger.chain.events import UpdateCommitted
from fedledger.chain.task import Phase
from fedledger.learning import breast_cancer_hospitals
from fedledger.localnet import fedledger_command, local_consortium

ORGS = ["Clinic A", "Clinic B", "Clinic C"]
ROUNDS = 2
TASK = f"""
rounds = {ROUNDS}
local_epochs = 1
seed = 7
min_commitments = 2
proposal_quorum = 2
clip_norm = 5.0
commit_duration = 90
validate_duration = 60
aggregate_duration = 60
commitments = "batched"
batch_window = 3

[model]
kind = "sklearn-sgd"
n_features = 30
n_classes = 2
eta0 = 0.05
seed = 1
"""

pytestmark = pytest.mark.slow


def test_batched_rounds_across_processes_finalize_on_the_relays_one_root_a_round(tmp_path: Path) -> None:
    split = breast_cancer_hospitals(tmp_path / "data", n_hospitals=len(ORGS), alpha=1.0, seed=5)
    config = tmp_path / "task.toml"
    config.write_text(TASK)
    with local_consortium(ORGS, config, tmp_path / "net") as net:
        founder = net.orgs[0]
        relay = subprocess.Popen(
            [
                *fedledger_command(), "batch", "relay", "-w", str(founder.workspace), "--task", net.task,
                "--round", "1", "--rounds", str(ROUNDS), "--expect", str(len(ORGS)), "--wait", "120", "--json",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=net.env,
        )  # fmt: skip
        try:
            assert relay.stdout is not None
            first = relay.stdout.readline()
            assert first.startswith("listening "), first + (relay.stderr.read() if relay.stderr else "")
            url = first.split()[1]
            for org, data in zip(net.orgs, split.hospitals, strict=True):
                net.start_node(org, data, "--label", split.label_column, "--relay", url)
            codes = net.wait_nodes(timeout=240)
            out, err = relay.communicate(timeout=30)
        finally:
            if relay.poll() is None:
                relay.kill()
        logs = {o.name: (net.root / f"{o.name.lower().replace(' ', '-')}.node.log").read_text() for o in net.orgs}
        assert codes == {name: 0 for name in ORGS}, logs
        assert relay.returncode == 0, err
        assert [(b["round"], b["count"]) for b in map(json.loads, out.splitlines())] == [(1, 3), (2, 3)]

        with Chain.rpc(net.chain_url) as ledger:
            task = TrainingTaskClient(ledger, net.task)
            assert all(task.round(r).phase is Phase.FINALIZED for r in range(1, ROUNDS + 1))
            batches = CommitmentBatchesClient(ledger, task.params().commitment_batches)
            batch_events = batches.events()
            posted = [e for e in batch_events if isinstance(e, BatchPosted)]
            delivered = [e for e in batch_events if isinstance(e, BatchDelivered)]
            assert [(e.round_id, e.count, e.relay) for e in posted] == [(r, 3, founder.address) for r in (1, 2)]
            assert [(e.round_id, e.accepted, e.rejected) for e in delivered] == [(1, 3, 0), (2, 3, 0)]
            commits = [e for e in task.events() if isinstance(e, UpdateCommitted)]
            # Every update was recorded by a delivery: no trainer sent commit_update.
            assert {e.tx_hash for e in commits} == {e.tx_hash for e in delivered}
            assert [(e.round_id, e.index) for e in commits] == [(r, i) for r in (1, 2) for i in range(len(ORGS))]
        assert all("deliver_batch" in log or "commit" in log for log in logs.values())

        done = net.run(net.orgs[1], "audit", "verify", check=False)
        assert done.returncode == 0, done.stderr
        assert f"verified: {ROUNDS} finalized rounds" in done.stdout
        assert f"batches verified: 2 batches, {2 * len(ORGS)} leaves, 2 deliveries checked" in done.stdout
