"""``fedledger task create`` for a task with incentives: its Incentives contract deployed, named by the task as its
stake gate, bound, and its pool funded with ``--fund``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.chain import IncentiveParams, IncentivesClient
from fedledger.cli import app
from fedledger.federation.incentives import task_incentives
from fedledger.workspace import Workspace

runner = CliRunner()
MODEL = {"kind": "sklearn-logreg", "n_features": 4, "n_classes": 3}


def test_task_create_deploys_binds_and_funds_the_incentives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(root), "--light-kdf"]).exit_code == 0
    config = tmp_path / "task.toml"
    config.write_text(
        "rounds = 2\nreward_per_round = 1000\ntrainer_stake = 10\ntrainer_slash_bps = 500\ncontribution_window = 60\n"
        '[model]\nkind = "sklearn-logreg"\nn_features = 4\nn_classes = 3\n',
        encoding="utf-8",
    )
    out = runner.invoke(app, ["task", "create", str(config), "-w", str(root), "--fund", "5000", "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    with Workspace.load(root) as ws:
        task = ws.task()
        assert created["incentives"] == task.params().stake_gate  # the chain names it: no second record
        incentives = task_incentives(task)
        assert isinstance(incentives, IncentivesClient)
        assert incentives.task_address == task.address
        assert incentives.pool() == created["reward_pool"] == 5000
        assert incentives.params() == IncentiveParams(
            reward_per_round=1000, trainer_stake=10, trainer_slash_bps=500, contribution_window=60
        )

    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"model": MODEL, "rounds": 2}))
    refused = runner.invoke(app, ["task", "create", str(plain), "-w", str(root), "--name", "b", "--fund", "5"])
    assert refused.exit_code == 2 and "needs a task with incentives" in " ".join(refused.output.split())
    out = runner.invoke(app, ["task", "create", str(plain), "-w", str(root), "--name", "c", "--json"])
    assert json.loads(out.stdout)["incentives"] is None
    with Workspace.load(root) as ws:
        assert task_incentives(ws.task("c")) is None


def test_task_create_refuses_incentives_under_secure_aggregation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(root), "--light-kdf"]).exit_code == 0
    config = tmp_path / "task.json"
    config.write_text(json.dumps({"model": MODEL, "secure_aggregation": True, "reward_per_round": 10}))
    out = runner.invoke(app, ["task", "create", str(config), "-w", str(root)])
    assert out.exit_code == 2
    assert "no validator can measure an update's contribution" in " ".join(out.output.split())
