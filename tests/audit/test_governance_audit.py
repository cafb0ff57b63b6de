"""The audit's governance replay: a task changed and released by vote between real rounds verifies; a history
served with a vote's traces forged, dropped or replayed out of the rules is named."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import hospital_datas
from fedledger.audit import verify_task
from fedledger.audit.governance import audit_governance
from fedledger.chain.events import LedgerEvent, ProposalApproved, ThresholdChanged
from fedledger.chain.governance import governance_state, set_param_call, set_paused_call
from fedledger.chain.governance_events import CallExecuted, ModelReleased, ParamChanged, ParamStaged, TaskPaused
from fedledger.chain.task import RoundInfo
from fedledger.federation import Simulation, TaskConfig
from fedledger.federation.setup import SimulatedConsortium, create_consortium
from fedledger.workspace import Workspace

MUTABLE = {"commit_duration": [60, 3_600]}


class Governed:
    """Three real rounds of four hospitals; once round 1 closed the operator's votes (threshold 1) pause and resume
    the task, stage commit_duration = 120 for the next round to open, and release round 1's model."""

    def __init__(self, tmp_path: Path) -> None:
        config = TaskConfig(
            model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
            rounds=3,
            local_epochs=1,
            min_commitments=2,
            proposal_quorum=2,
            mutable=MUTABLE,
        )
        self.ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
        self.sim: SimulatedConsortium = create_consortium(
            self.ws, config=config, datas=hospital_datas(tmp_path, 4), password="pw"
        )
        self.config = config
        Simulation(self.sim.task, self.sim.nodes, on_round_closed=self._vote).run()

    def _vote(self, info: RoundInfo) -> None:
        if info.round_id != 1:
            return
        consortium, task = self.sim.consortium, self.sim.task
        for paused in (True, False):
            consortium.propose_call(task.address, set_paused_call(task, paused))
        consortium.propose_call(task.address, set_param_call(task, "commit_duration", 120))
        consortium.propose_release(task.address, 1)

    def events(self) -> tuple[list[LedgerEvent], list[LedgerEvent]]:
        return self.sim.consortium.events(), self.sim.task.events()

    def audit(self, consortium_events: list[LedgerEvent], task_events: list[LedgerEvent]) -> list[str]:
        found: list[str] = []
        audit_governance(
            consortium_events,
            self.sim.task.address,
            task_events,
            self.config,
            self.sim.task.params().param_bounds,
            lambda member, role, at: True,
            lambda message, **_: found.append(message),
        )
        return found


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Governed:
    return Governed(tmp_path_factory.mktemp("governed"))


def test_votes_between_real_rounds_verify(governed: Governed) -> None:
    task = governed.sim.task
    assert task.round(3).phase.name == "FINALIZED"
    assert governance_state(task).in_force["commit_duration"] == 120
    report = verify_task(governed.ws.chain, governed.ws.config.consortium, task.address, governed.sim.store)
    assert report.ok, report.discrepancies
    assert report.votes_checked == 4  # pause, resume, the setting and the release
    changed = [e for e in task.events() if isinstance(e, ParamChanged)]
    assert [(e.old_value, e.new_value) for e in changed] == [(governed.config.commit_duration, 120)]
    assert changed[0].round_id in (2, 3)  # the first round opened after the vote (nodes may open 2 at once)


def _without(events: list[LedgerEvent], kind: type) -> list[LedgerEvent]:
    return [e for e in events if not isinstance(e, kind)]


def _forge(events: list[LedgerEvent], kind: type, **fields: object) -> list[LedgerEvent]:
    return [replace(e, **fields) if isinstance(e, kind) else e for e in events]  # type: ignore[arg-type]


def test_a_forged_or_dropped_trace_is_named(governed: Governed) -> None:
    consortium, task = governed.events()
    assert governed.audit(consortium, task) == []
    named = {
        "no vote": governed.audit(_without(consortium, CallExecuted), task),
        "threshold": governed.audit([_threshold_two(consortium), *consortium], task),
        "staged": governed.audit(consortium, _forge(task, ParamChanged, new_value=999)),
        "released": governed.audit(_forge(consortium, ModelReleased, model_hash="0x" + "ab" * 32), task),
        "paused open": governed.audit(consortium, _paused_forever(task)),
        "bounds": governed.audit(consortium, _forge(task, ParamStaged, value=5_000)),
    }
    assert any("came from no executed consortium vote" in m for m in named["no vote"])
    assert any("admin approvals, the threshold was 2" in m for m in named["threshold"])
    assert any("not the value staged" in m for m in named["staged"])
    assert any("which is not the model round 1 finalized" in m for m in named["released"])
    assert any("opened while the task was paused" in m for m in named["paused open"])
    assert any("outside the declared bounds [60, 3600]" in m for m in named["bounds"])


def test_bounds_that_differ_from_the_config_are_named(governed: Governed) -> None:
    consortium, task = governed.events()
    found: list[str] = []
    audit_governance(
        consortium, governed.sim.task.address, task, governed.config, (("commit_duration", 60, 7_200),),
        lambda *_: True, lambda message, **_: found.append(message),
    )  # fmt: skip
    assert any("task contract declares mutable settings" in m for m in found)


def _threshold_two(events: list[LedgerEvent]) -> ThresholdChanged:
    first = next(e for e in events if isinstance(e, ProposalApproved))
    return ThresholdChanged(
        contract=first.contract, block_number=0, tx_hash="0x" + "00" * 32, log_index=0,
        old_threshold=1, new_threshold=2, proposal_id=0,
    )  # fmt: skip


def _paused_forever(events: list[LedgerEvent]) -> list[LedgerEvent]:
    """The resumption dropped: round 2 then opened while paused."""
    return [e for e in events if not (isinstance(e, TaskPaused) and not e.paused)]
