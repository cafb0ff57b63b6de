"""Member nodes in a task with batched commitments, in one process: trainers hand their commitments to a relay, an
aggregator delivers the round's finalized batch, and the round runs on it; without a batch the round closes with
the reason named. The CLI across processes is tests/cli/test_cli_batched_round.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import hospital_datas
from fedledger.audit import verify_task
from fedledger.chain.batch_events import BatchDelivered
from fedledger.chain.batches import CommitmentBatchesClient
from fedledger.chain.events import UpdateCommitted
from fedledger.chain.task import Phase
from fedledger.exceptions import ConfigError
from fedledger.federation import NodeEvent, TaskConfig
from fedledger.federation.relay import Relay, RelayServer
from fedledger.federation.setup import create_consortium
from fedledger.federation.simulation import Simulation
from fedledger.workspace import Workspace

WINDOW = 5


def _setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=1,
        local_epochs=2,
        min_commitments=2,
        proposal_quorum=2,
        clip_norm=5.0,
        commitments="batched",
        batch_window=WINDOW,
    )
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    sim = create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 4), password="pw")
    events: list[NodeEvent] = []
    for node in sim.nodes:
        node.on_event = events.append
    return ws, sim, events


def _step_until_idle(nodes) -> None:  # type: ignore[no-untyped-def]
    while any([node.step() for node in nodes]):
        pass


def test_a_batched_round_runs_on_the_delivered_batch(tmp_path: Path) -> None:
    ws, sim, events = _setup(tmp_path)
    with ws:
        batches_address = sim.task.params().commitment_batches
        assert sim.nodes[0].config.commitment_batches == batches_address  # in the committed config and the contract
        batches = CommitmentBatchesClient(ws.chain, batches_address, sim.nodes[0].account)
        relay = Relay(batches, ws.consortium(), task=sim.task.address, round_id=1)
        with RelayServer(relay) as server:
            for node in sim.nodes:
                node.relay_url = server.url
            _step_until_idle(sim.nodes)  # the round opens, every trainer trains and hands its commitment over
            assert relay.count == 4 and sim.task.round(1).num_updates == 0  # nothing committed on the task
        published = relay.publish(sim.store)
        ws.chain.advance_time(WINDOW + 1)
        Simulation(sim.task, sim.nodes).run()

        delivered = [e for e in events if e.action == "deliver_batch"]
        assert [e.details["batch_id"] for e in delivered] == [published.batch_id]  # one aggregator, once
        assert sim.task.round(1).phase is Phase.FINALIZED
        updates = [(e.index, e.member) for e in sim.task.events() if isinstance(e, UpdateCommitted)]
        assert updates == [(i, s.commitment.member) for i, s in enumerate(published.listing.leaves)]
        (record,) = [e for e in batches.events() if isinstance(e, BatchDelivered)]
        assert (record.accepted, record.rejected) == (4, 0)
        assert not [e for e in events if e.action == "batch_missing"]
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok and report.batches is not None  # the task's own batch board, audited by default
        assert (report.batches.leaves_checked, report.batches.deliveries_checked) == (4, 1)


def test_a_round_without_a_batch_closes_at_its_deadline_with_the_reason_named(tmp_path: Path) -> None:
    ws, sim, events = _setup(tmp_path)
    with ws:
        batches = CommitmentBatchesClient(ws.chain, sim.task.params().commitment_batches, sim.nodes[0].account)
        relay = Relay(batches, ws.consortium(), task=sim.task.address, round_id=1)
        with RelayServer(relay) as server:
            for node in sim.nodes:
                node.relay_url = server.url
            Simulation(sim.task, sim.nodes).run()  # the relay never posts: the commit deadline passes
        assert sim.task.round(1).phase is Phase.ABORTED
        missing = {e.details["reason"] for e in events if e.action == "batch_missing"}
        assert missing == {"no batch standing (none posted, or the posted one was invalidated)"}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"commitments": "rollup"}, "commitments must be one of"),
        ({"commitment_batches": "0x" + "12" * 20}, 'commitment_batches needs commitments = "batched"'),
        ({"commitments": "batched", "batch_window": 600}, "batch_window must be 1 second or more and below"),
        ({"commitments": "batched", "secure_aggregation": True, "secagg_threshold": 2}, "need validated rounds"),
    ],
)
def test_a_batched_config_that_cannot_run_is_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TaskConfig(model={"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}, commit_duration=600, **settings)  # type: ignore[arg-type]
