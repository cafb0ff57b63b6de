"""The contribution benchmark's pieces on the heart-disease hospitals: the retrained ground truth is a Shapley value
(it sums to the grand coalition's gain), a sybil split keeps every row, and a round measured by every validator gives
each method's shares. The benchmark itself is ``benchmarks/contribution.py``."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from conftest import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import contribution  # noqa: E402
from honest_members import DATA  # noqa: E402

pytestmark = pytest.mark.skipif(not (DATA / "heart-disease").is_dir(), reason=f"heart disease is not in {DATA}")


@pytest.fixture(scope="module")
def heart() -> contribution.Federation:
    return contribution.load("heart", rounds=1, seed=0)


def test_retrained_shapley_shares_out_the_grand_coalitions_gain(heart: contribution.Federation) -> None:
    phi, _ = contribution.retrained_shapley(heart, rounds=1)
    everyone = contribution.final_accuracy(heart, tuple(range(4)), 1)
    nobody = contribution.final_accuracy(heart, (), 1)
    assert sum(phi) == pytest.approx(everyone - nobody, abs=1e-12)
    assert len(set(phi)) == 4  # four hospitals, four different values


def test_a_sybil_split_keeps_every_row_once(heart: contribution.Federation) -> None:
    split = contribution.split_member(heart.members, "Cleveland", seed=0)
    assert split.names[:2] == ["Cleveland (a)", "Cleveland (b)"] and split.names[2:] == heart.names[1:]
    whole = heart.members.datas[0]
    halves = split.datas[:2]
    assert sum(len(h.y_train) for h in halves) == len(whole.y_train)
    rows = np.concatenate([h.X_train for h in halves])
    assert sorted(map(tuple, rows)) == sorted(map(tuple, whole.X_train))


def test_every_method_measures_every_round(heart: contribution.Federation) -> None:
    run = contribution.run_federation(heart)
    for method in contribution.METHODS:
        for key, totals in run.totals[method.value].items():
            assert len(totals) == 4 and all(t >= 0 for t in totals), (method, key)
        assert sum(run.totals[method.value]["raw/median"]) > 0  # the first round gains on every validator
    assert run.round_seconds > 0 and 0.5 < run.final_accuracy <= 1
