"""`fedledger demo --secure-aggregation --masked-checks`: the summary's committee decisions are the chain's, the
audit re-checks them, and the flag is refused where it cannot run."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedledger.chain.events import UpdateFlagged
from fedledger.cli import app
from fedledger.workspace import Workspace

runner = CliRunner()


def test_demo_masked_checks_report_the_chains_decisions_and_the_audit_passes(tmp_path: Path) -> None:
    pytest.importorskip("mpyc")
    root = tmp_path / "ws"
    args = ["demo", "-w", str(root), "--secure-aggregation", "--masked-checks", "--rounds", "2", "--members", "4"]
    out = runner.invoke(app, [*args, "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    names = {m["address"]: m["name"] for m in data["members"]}
    unclipped = [m["name"] for m in data["members"] if m["unclipped"]]
    (attacker,) = [m["name"] for m in data["members"] if m["malicious"]]
    assert data["setup"]["masked_checks"]["committee"] == 3 and data["setup"]["per_update_validation"] is True
    with Workspace.load(root) as ws:
        task = ws.task()
        events = task.events()
        for row in data["rounds"]:
            r, masked = row["round"], row["masked"]
            info = task.round(r)
            updates = task.updates(r)
            on_chain = sorted(names[updates[i].member] for i in info.accepted)
            assert masked["passed"] == row["accepted"] == on_chain
            assert masked["committee"] == [names[m] for m in task.check_committee(r)]
            assert masked["outcome_hash"] == task.accepted_outcome(r)
            flagged = {
                names[updates[e.index].member]: e.reason
                for e in events
                if isinstance(e, UpdateFlagged) and e.round_id == r
            }
            assert {rej["member"]: rej["reason"] for rej in masked["rejected"]} == flagged
            # The boosted, unclipped hospital fails the norm bound; the sign-flipper, clipped like every node,
            # passes it (no direction check by default), and the summary says so.
            assert [(rej["member"], rej["check"]) for rej in masked["rejected"]] == [(unclipped[0], "norm bound")]
            assert attacker in masked["passed"]
    fates = data["screening"]["attackers"]
    assert fates[unclipped[0]]["rejected_rounds"] == [1, 2] and fates[attacker]["passed_rounds"] == [1, 2]
    assert data["screening"]["attackers_kept_out_every_round"] is False
    assert data["verification"]["ok"] and data["screening"]["transcripts_rechecked_rounds"] == [1, 2]
    audit = runner.invoke(app, ["audit", "verify", "-w", str(root), "--json"])
    assert audit.exit_code == 0, audit.output
    assert json.loads(audit.stdout)["ok"] is True


@pytest.mark.parametrize(
    ("args", "mpyc_installed", "message"),
    [
        (["--masked-checks"], True, "needs --secure-aggregation"),
        (["--secure-aggregation", "--masked-checks"], False, 'pip install "fedledger[mpc]"'),
        (["--secure-aggregation", "--unclipped", "1"], True, "add --masked-checks"),
        (
            ["--secure-aggregation", "--masked-checks", "--masked-reference", "global"],
            True,
            "--masked-reference must be one of committee, previous, got 'global'",
        ),
    ],
)
def test_demo_refuses_masked_checks_it_cannot_run_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], mpyc_installed: bool, message: str
) -> None:
    if not mpyc_installed:  # as in the base install, which leaves the mpc extra out
        find_spec = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util, "find_spec", lambda name, *a: None if name == "mpyc" else find_spec(name, *a)
        )
    out = runner.invoke(app, ["demo", "-w", str(tmp_path / "ws"), *args])
    assert out.exit_code == 2 and message in " ".join(out.output.split()) and "Traceback" not in out.output
    assert not (tmp_path / "ws").exists()  # refused before anything was created
