"""Honest but different is not malicious: validators judge an update against the round's other updates.

Four NSL-KDD gateways, each having seen one family of attacks (the IoT example's split), train through unmodified
MemberNodes on the embedded chain under the few-silos profile's defaults. Judged on absolute costs, the gateways
whose traffic is nearly all normal reject and then distrust the others; centred on each validator's round median,
every honest update is accepted and nobody is distrusted. ``benchmarks/honest_members.py`` measures the same on
every profile, model kind and data setting.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest

from conftest import BENCHMARKS
from fedledger.chain.events import ScoresSubmitted
from fedledger.chain.task import contract_median
from fedledger.federation import Simulation, TaskConfig
from fedledger.federation.setup import create_consortium
from fedledger.workspace import ChainSpec, Workspace

sys.path.insert(0, str(BENCHMARKS))
import honest_members  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (honest_members.DATA / "nsl-kdd").is_dir(), reason=f"NSL-KDD is not in {honest_members.DATA}"
    ),
]


@pytest.fixture(scope="module")
def gateways() -> honest_members.Members:
    return honest_members.nsl_gateway_members(0, rows_per_gateway=600)


def test_each_validator_submits_scores_centred_on_its_median_of_the_others_updates(
    gateways: honest_members.Members,
) -> None:
    config = TaskConfig(
        model=honest_members.model_spec("sklearn-logreg", gateways.n_features, 0),
        profile="few-silos",
        rounds=1,
        local_epochs=1,
        min_commitments=4,
        acceptance_threshold=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.create(Path(tmp), chain=ChainSpec(), scrypt_n=2**10)
        try:
            sim = create_consortium(ws, config=config, datas=gateways.datas, password="pw")
            Simulation(sim.task, sim.nodes).run()
            submitted = [e for e in sim.task.events() if isinstance(e, ScoresSubmitted)]
            owners = {u.index: u.member for u in sim.task.updates(1)}
        finally:
            ws.close()
    assert len(submitted) == 4
    for event in submitted:
        # Three scores each (its own update is not its to score), whose median is the round's typical update.
        assert len(event.scores) == 3 and event.validator not in {owners[i] for i in event.indices}
        assert contract_median(list(event.scores)) == 5000


def test_gateways_with_different_traffic_are_neither_rejected_nor_distrusted(
    gateways: honest_members.Members,
) -> None:
    centred = honest_members.run_cell(gateways, "sklearn-logreg", "few-silos", rounds=7, seed=0, overrides={})
    assert (centred.distrusted, centred.rejected_updates, centred.rounds_aborted) == ([], 0, 0)
    assert centred.scored_updates == 7 * 4
    # The same gateways judged on what each update costs a validator, without the round as a yardstick.
    measured = honest_members.run_cell(
        gateways, "sklearn-logreg", "few-silos", rounds=7, seed=0, overrides={"center_scores": False}
    )
    assert measured.distrusted and measured.rejected_updates > 0, measured
