"""A member's incentive duties against the contract, round by round: slashing a harmful update and a distrusted
validator, settling once the window passed, and a post that comes too late reported without stopping the node.

The rounds are driven by hand with chosen scores (``helpers.incentives``); the duties run for a stand-in member
whose update blobs are not in the store, which is all the slashing and settling rules read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_account.signers.local import LocalAccount

from conftest import Ledger
from fedledger.chain.task import MemberView, TrainingTaskClient
from fedledger.federation import NodeEvent, TaskConfig
from fedledger.federation.incentive_duties import IncentiveDuties
from fedledger.learning import Params, build_model
from fedledger.store import BlobStore
from helpers.incentives import PARAMS, STAKE, Rewarded, deploy_rewarded, fund, honest, scored_round

MODEL = {"kind": "sklearn-sgd", "n_features": 2, "n_classes": 2, "seed": 1}


@dataclass
class StandIn:
    """The part of a member node the duties use (:class:`IncentiveMember`)."""

    name: str
    account: LocalAccount
    task: TrainingTaskClient
    store: BlobStore
    trains: bool
    config: TaskConfig = field(default_factory=lambda: TaskConfig(model=MODEL, reward_per_round=1))
    events: list[NodeEvent] = field(default_factory=list)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def view(self) -> MemberView:
        return self.task.member_view(self.address)

    def global_model(self, model_hash: str) -> tuple[Params, dict[str, Any]]:
        return build_model(self.config.model).get_params(), dict(self.config.model)

    def validation_split(self) -> tuple[Any, Any]:
        return np.array([[0.0, 1.0], [1.0, 0.0]]), np.array([0, 1])

    def emit(self, action: str, round_id: int, **details: Any) -> None:
        self.events.append(NodeEvent(self.name, action, round_id, details))


def duties_of(rw: Rewarded, i: int, tmp_path: Path, *, trains: bool) -> tuple[IncentiveDuties, StandIn]:
    member = StandIn(f"member-{i}", rw.ledger.members[i], rw.t(i), BlobStore(tmp_path / "store"), trains)
    return IncentiveDuties(member, rw.incentives), member


def run_out(duties: IncentiveDuties, limit: int = 20) -> int:
    """Step until a step does nothing; how many acted."""
    for acted in range(limit):
        if not duties.step():
            return acted
    raise AssertionError("the duties never ran out")


@pytest.fixture
def rw(ledger: Ledger) -> Rewarded:
    rewarded = deploy_rewarded(ledger)
    fund(rewarded, 5_000)
    return rewarded


def test_a_member_slashes_a_harmful_update_and_a_distrusted_validator_then_settles(
    rw: Rewarded, tmp_path: Path
) -> None:
    scores = honest()
    for j in (1, 2, 3):
        scores[j][0] = 1_000  # every validator finds update 0 harmful
    scores[3] = [1_000, 1_000, 1_000, None]  # and members[3] scores against the outcome on two of its three
    r = scored_round(rw, scores)
    inc, liar, harmful = rw.incentives, rw.ledger.members[3].address, rw.ledger.members[0].address
    assert rw.ledger.task.reputation_of(liar).distrusted
    duties, member = duties_of(rw, 1, tmp_path, trains=False)  # it holds no data: it posts nothing
    assert run_out(duties) == 2
    assert [e.action for e in member.events] == ["slash-trainer", "slash-validator"]
    assert inc.slashed_of(harmful) == STAKE * PARAMS.trainer_slash_bps // 10_000
    assert inc.slashed_of(liar) == STAKE * PARAMS.validator_slash_bps // 10_000
    assert not inc.settled(r)  # nobody posted and the window is open: the round waits
    rw.ledger.chain.advance_time(PARAMS.contribution_window + rw.ledger.params.aggregate_duration + 1)
    assert run_out(duties) == 1
    assert member.events[-1].action == "settle" and inc.settled(r)
    # Another member finds nothing left to do: the slashes and the settlement are read back from the chain.
    other, other_member = duties_of(rw, 2, tmp_path, trains=False)
    assert run_out(other) == 0 and other_member.events == []


def test_a_validator_that_posts_too_late_reports_it_and_goes_on(rw: Rewarded, tmp_path: Path) -> None:
    r = scored_round(rw, honest())
    rw.ledger.chain.advance_time(PARAMS.contribution_window + rw.ledger.params.aggregate_duration + 1)
    duties, member = duties_of(rw, 1, tmp_path, trains=True)
    assert run_out(duties) == 2  # the refused post, then the settlement the closed window allows
    assert [e.action for e in member.events] == ["contribution-missed", "settle"]
    assert member.events[0].details["reason"] == "incentives: contribution window closed"
    assert not rw.incentives.has_posted(r, member.address)
    assert rw.incentives.settled(r)


def test_a_validator_posts_for_the_updates_it_scored_and_the_last_post_lets_the_round_settle(
    rw: Rewarded, tmp_path: Path
) -> None:
    r = scored_round(rw, honest())
    posted = []
    for i in range(4):
        duties, member = duties_of(rw, i, tmp_path, trains=True)
        if i == 0:  # the round's blobs are not in the (shared) store yet: it defers, and posts no unmeasured 0
            assert not duties.step()
            assert member.events == []
            for u in rw.ledger.task.updates(r):  # a file under each committed hash: measure() below does not read it
                path = member.store.path_of(u.update_hash.removeprefix("0x"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")
        duties.measure = lambda info: dict.fromkeys(range(4), 2_500)  # type: ignore[method-assign]
        assert duties.step()
        posted.append(member.events[-1])
    assert [e.action for e in posted] == ["contribution"] * 4
    assert all(e.details["values"] == {str(k): 2_500 for k in range(4) if k != i} for i, e in enumerate(posted))
    assert rw.incentives.contributions_posted(r, 0) == [2_500] * 3
    assert all(rw.incentives.has_posted(r, m.address) for m in rw.ledger.members)
    duties, member = duties_of(rw, 0, tmp_path, trains=True)
    assert run_out(duties) == 1  # every scorer posted: the round settles before its window closes
    assert member.events[-1].action == "settle"


def test_a_member_tops_its_stake_up_to_what_its_roles_require(rw: Rewarded, tmp_path: Path) -> None:
    duties, member = duties_of(rw, 0, tmp_path, trains=True)
    inc = rw.incentives
    assert not duties.top_up_stake(member.view)  # deploy_rewarded staked everyone
    scores = honest()
    for j in (1, 2, 3):
        scores[j][0] = 1_000  # its update is harmful: it loses part of its stake
    r = scored_round(rw, scores)
    inc.slash_trainer(r, 0)
    assert inc.stake_of(member.address) < STAKE
    assert duties.top_up_stake(member.view)  # a new round (by its view): it checks, and deposits what it lacks
    assert inc.stake_of(member.address) == STAKE
    assert member.events[-1].action == "stake"
    assert not duties.top_up_stake(member.view)  # once per round


def test_a_post_the_contract_refuses_for_any_reason_is_reported_and_the_node_goes_on(
    rw: Rewarded, tmp_path: Path
) -> None:
    r = scored_round(rw, honest())
    duties, member = duties_of(rw, 1, tmp_path, trains=True)
    for u in rw.ledger.task.updates(r):  # a file under each committed hash: measure() below does not read it
        path = member.store.path_of(u.update_hash.removeprefix("0x"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    duties.measure = lambda info: dict.fromkeys(range(4), 20_000)  # type: ignore[method-assign]
    assert duties.step()
    assert member.events[-1].action == "contribution-missed"
    assert member.events[-1].details["reason"] == "incentives: contribution out of range"
    assert not rw.incentives.has_posted(r, member.address)
    assert not duties.step()  # not retried: the round waits for its window, as it would for a validator offline
