"""``fedledger governance`` through the real entry point: two admins under a 2-of-2 rule change a running task's
mutable setting, pause and resume it, and release a finalized model; a value outside the declared bounds and a
release with nothing finalized are refused by name; ``models list`` shows which versions were released."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import h
from fedledger.chain import Phase
from fedledger.exceptions import InvalidState
from fedledger.workspace import Workspace
from helpers.cli import PASSWORD, cli_refused, fedledger

TASK_TOML = """
rounds = 3
min_commitments = 2
proposal_quorum = 1
commit_duration = 30
acceptance_threshold = 0
[mutable]
commit_duration = [10, 600]
[model]
kind = "sklearn-logreg"
n_features = 4
n_classes = 2
"""


@pytest.fixture
def governed_ws(tmp_path: Path) -> Path:
    """A consortium of two admins needing both approvals, and a task declaring commit_duration mutable."""
    path = tmp_path / "ws"
    fedledger("init", "-w", path, "--light-kdf", "--org", "Founder", "--json").json()
    bob = fedledger("key", "new", "bob", "-w", path, "--json").json()["address"]
    roles = "admin,trainer,validator,aggregator"
    assert fedledger("member", "add", bob, "--org", "Bob", "--roles", roles, "-w", path, "--json").json()["executed"]
    assert fedledger("member", "threshold", "2", "-w", path, "--json").json()["executed"]
    config = tmp_path / "task.toml"
    config.write_text(TASK_TOML, encoding="utf-8")
    fedledger("task", "create", config, "-w", path, "--json").json()
    return path


def test_two_admins_change_a_mutable_setting_from_the_next_round(governed_ws: Path) -> None:
    ws = governed_ws
    proposed = fedledger("governance", "propose", "set", "commit_duration", "120", "-w", ws, "--json").json()
    assert (proposed["executed"], proposed["approvals"], proposed["threshold"]) == (False, 1, 2)
    pending = fedledger("governance", "list", "-w", ws, "--json").json()
    assert [(p["proposal_id"], p["kind"], p["action"], p["status"]) for p in pending] == [
        (proposed["proposal_id"], "call", "set commit_duration = 120", "pending")
    ]
    assert fedledger("governance", "status", "-w", ws, "--json").json()["staged"] == {}
    voted = fedledger("governance", "vote", proposed["proposal_id"], "--as", "bob", "-w", ws, "--json").json()
    assert voted["executed"] is True
    status = fedledger("governance", "status", "-w", ws, "--json").json()
    assert status["mutable"] == {"commit_duration": {"low": 10, "high": 600}}
    assert (status["in_force"]["commit_duration"], status["staged"]) == (30, {"commit_duration": 120})
    assert fedledger("governance", "list", "-w", ws, "--json").json() == []
    every = fedledger("governance", "list", "--all", "-w", ws, "--json").json()
    assert [p["status"] for p in every][-1] == "executed"

    message = cli_refused("governance", "propose", "set", "commit_duration", "5", "-w", ws)
    assert "commit_duration = 5 is outside the bounds [10, 600] task 'default' declared" in message
    message = cli_refused("governance", "propose", "set", "validate_duration", "60", "-w", ws)
    assert "did not declare validate_duration mutable (its mutable settings: commit_duration)" in message
    message = cli_refused("governance", "propose", "set", "acceptance_threshold", "60", "-w", ws)
    assert "not a setting a vote can change" in message


def test_pause_resume_and_release_by_vote(governed_ws: Path) -> None:
    ws = governed_ws
    assert "no finalized round" in cli_refused("governance", "propose", "release", "-w", ws)
    pause = fedledger("governance", "propose", "pause", "-w", ws, "--json").json()
    fedledger("governance", "vote", pause["proposal_id"], "--as", "bob", "-w", ws, "--json").json()
    assert fedledger("governance", "status", "-w", ws, "--json").json()["paused"] is True
    with Workspace.load(ws) as w:
        founder = w.account("admin", PASSWORD)
        with pytest.raises(InvalidState, match="task: paused"):
            w.task().as_(founder).open_round()
    resume = fedledger("governance", "propose", "resume", "-w", ws, "--json").json()
    fedledger("governance", "vote", resume["proposal_id"], "--as", "bob", "-w", ws, "--json").json()
    round_id = _finalize_one_round(ws)

    release = fedledger("governance", "propose", "release", "-w", ws, "--json").json()
    listed = {m["round"]: m for m in fedledger("models", "list", "-w", ws, "--json").json()}
    assert listed[round_id]["released_at_block"] is None
    fedledger("governance", "vote", release["proposal_id"], "--as", "bob", "-w", ws, "--json").json()
    listed = {m["round"]: m for m in fedledger("models", "list", "-w", ws, "--json").json()}
    assert listed[round_id]["released_at_block"] > 0 and listed[0]["released_at_block"] is None
    status = fedledger("governance", "status", "-w", ws, "--json").json()
    assert [r["round"] for r in status["released"]] == [round_id]
    assert "model already released" in cli_refused("governance", "propose", "release", "-w", ws)


def _finalize_one_round(ws: Path) -> int:
    """Both admins train, score and aggregate one round by hand (quorum 1, no score excludes an update)."""
    with Workspace.load(ws) as w:
        members = [w.task().as_(w.account(name, PASSWORD)) for name in ("admin", "bob")]
        r = members[0].open_round()
        for i, task in enumerate(members):
            task.commit_update(r, h(f"governed-{i}"), 10)
        assert members[0].close_commits(r) is Phase.VALIDATE
        for i, task in enumerate(members):
            task.submit_scores(r, [None if j == i else 9_000 for j in range(2)])
        assert members[0].close_validation(r) is Phase.AGGREGATE
        assert members[0].propose_aggregate(r, h("governed-model"), members[0].round(r).accepted_mask)
        return r
