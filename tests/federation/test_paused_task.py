"""Member nodes and a paused task: they open no round while it is paused, raise nothing, and go on when a vote
resumes it."""

from __future__ import annotations

from pathlib import Path

from conftest import hospital_datas
from fedledger.chain.governance import set_paused_call
from fedledger.federation import Simulation, TaskConfig
from fedledger.federation.setup import create_consortium
from fedledger.workspace import Workspace


def test_nodes_wait_while_paused_and_finish_once_resumed(tmp_path: Path) -> None:
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=1,
        local_epochs=1,
        min_commitments=2,
        proposal_quorum=1,
    )
    with Workspace.create(tmp_path / "ws", scrypt_n=2**14) as ws:
        sim = create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 2), password="pw")
        sim.consortium.propose_call(sim.task.address, set_paused_call(sim.task, True))
        for _ in range(3):
            assert not any(node.step() for node in sim.nodes)  # open_round is refused: nothing to do, no error
        assert sim.task.current_round == 0
        sim.consortium.propose_call(sim.task.address, set_paused_call(sim.task, False))
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase.name == "FINALIZED"
