"""Chaos: member nodes and the chain node are killed and restarted while a consortium of separate processes runs its
task; no round may be lost beyond those the rules abort, nobody commits twice, no node crashes, and the audit passes.

The short variant of ``benchmarks/chaos.py`` (its core is ``benchmarks/chaos_lib.py``): four hospitals, each its
own ``fedledger node`` process on its raw heart-disease file; the seeded monkey SIGKILLs one of them (an
aggregator) twice at random points and restarts it, and stops and restarts the served chain node once, killing
that hospital's node with it and starting it again before the chain node is back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import BENCHMARKS, SHARED_DATA, hospital_datas
from fedledger.chain import TrainingTaskClient
from fedledger.cli import app
from fedledger.exceptions import ChainError
from fedledger.federation import TaskConfig
from fedledger.federation.setup import create_consortium
from fedledger.workspace import Workspace

HEART = SHARED_DATA / "heart-disease"
sys.path.insert(0, str(BENCHMARKS))

from chaos_lib import Settings, run_chaos  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif(not HEART.is_dir(), reason=f"the heart-disease data set is not in {HEART}")
def test_a_consortium_survives_killed_nodes_and_a_chain_restart(tmp_path: Path) -> None:
    settings = Settings(
        workdir=tmp_path / "chaos",
        members=4,
        rounds=5,
        seed=1,
        phase_seconds=6,
        kills_per_victim=2,
        data=HEART,
        timeout=300,
    )
    result = run_chaos(settings, say=lambda _line: None)
    report = "\n".join([result.summary(), *result.monkey_log, *(c["log_tail"] for c in result.crashes)])
    assert sum(1 for k in result.kills if k["done_at"] is not None) == 2, report
    assert result.chain_restart["done_at"] is not None, report
    # A node started while the chain node was down (and waited for it).
    assert any("while the chain node is down" in line for line in result.monkey_log), report
    assert result.finished_in_time, report
    assert result.task_done and not result.rounds_lost, report
    assert all(a["by_rule"] for a in result.aborts), report
    assert not result.double_commitments, report
    assert not result.crashes, report
    assert result.audit["passed"], report
    assert not result.failures, report


def test_a_node_started_while_its_chain_is_unreachable_waits_for_it(tmp_path: Path, monkeypatch) -> None:
    # A member restarted while its chain node restarts too: the node's first reads fail; it retries, as a running
    # node does, instead of exiting.
    import fedledger.federation.setup as setup

    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=1,
        min_commitments=2,
        proposal_quorum=2,
    )
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    sim = create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 3), password="pw")
    root, data_csv = ws.root, tmp_path / "data" / "hospital_1.csv"
    task_address = sim.task.address
    ws.close()
    register, failures = setup.register_kx_key, []

    def unreachable_once(*args, **kwargs):  # type: ignore[no-untyped-def]
        if not failures:
            failures.append(1)
            raise ChainError("cannot reach Ethereum node at http://127.0.0.1:1 (eth_call): connection refused")
        return register(*args, **kwargs)

    monkeypatch.setattr(setup, "register_kx_key", unreachable_once)
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    args = ["node", "-w", str(root), "--as", "hospital-1", "--data", str(data_csv), "--label", "diagnosis", "--once"]
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert failures and "retrying in" in done.output and "open_round" in done.output
    with Workspace.load(root) as reopened:
        assert TrainingTaskClient(reopened.chain, task_address).current_round == 1
