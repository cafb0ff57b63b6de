"""The demo's rewards: validated rounds pay each hospital by measured contribution, and the free rider and the
attacker visibly earn nothing; secure aggregation says why nothing is measured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedledger.cli.common import console
from fedledger.cli.demo import _print_rewards
from fedledger.demo import run_demo
from fedledger.demo_rewards import DEMO_REWARD_PER_ROUND, NOT_MEASURED, incentives_summary
from fedledger.exceptions import ConfigError
from fedledger.federation import TaskConfig


@pytest.fixture(scope="module")
def paid(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Five hospitals, two rounds: three honest, a free rider (Hospital 4) and a sign-flipping attacker."""
    root = tmp_path_factory.mktemp("paid") / "ws"
    yield run_demo(workspace=root, members=5, rounds=2, seed=3, free_riders=1).to_json()


def test_the_free_rider_and_the_attacker_earn_nothing_and_the_honest_hospitals_earn(paid: dict[str, Any]) -> None:
    incentives = paid["incentives"]
    assert incentives["measured"] is True
    assert incentives["method"] == "gtg-shapley"
    rows = {m["member"]: m for m in incentives["members"]}
    kinds = {m["name"]: m for m in paid["members"]}
    assert [n for n, m in kinds.items() if m["free_rider"]] == ["Hospital 4"]
    assert [n for n, m in kinds.items() if m["malicious"]] == ["Hospital 5"]
    assert rows["Hospital 4"]["earned"] == rows["Hospital 5"]["earned"] == 0
    honest = [rows[f"Hospital {k}"] for k in (1, 2, 3)]
    assert all(m["earned"] > 0 for m in honest), honest
    assert sum(m["earned"] for m in honest) == incentives["paid_out"]
    assert paid["verification"]["ok"]


def test_the_demo_lists_settled_contributions_and_the_pool_balances(paid: dict[str, Any]) -> None:
    incentives = paid["incentives"]
    assert incentives["rounds_settled"] == [1, 2]
    assert incentives["funded"] == 2 * DEMO_REWARD_PER_ROUND
    assert incentives["pool_left"] == incentives["funded"] + incentives["slashed"] - incentives["paid_out"]
    rejected = {(r["round"], r["member"]) for r in paid["rejected"]}
    for m in incentives["members"]:
        assert set(m["contributions"]) == {"1", "2"}
        for r, value in m["contributions"].items():
            # None exactly where the hospital had no accepted update; the attacker is rejected every round.
            assert (value is None) == ((int(r), m["member"]) in rejected), (m, rejected)
        assert m["claimable"] == m["earned"]  # nobody claimed yet
        assert m["stake"] + m["slashed"] >= 10**17 - 1  # each staked before taking part
    assert sum(m["slashed"] for m in incentives["members"]) == incentives["slashed"]


def test_the_rewards_table_shows_every_hospital(paid: dict[str, Any]) -> None:
    with console.capture() as captured:
        _print_rewards(paid["incentives"], paid["members"])
    text = captured.get()
    assert "Rewards (gtg-shapley" in text
    for name in ("Hospital 1", "Hospital 4", "Hospital 5"):
        assert name in text
    assert "free-rider" in text and "sign-flip" in text


def test_secure_aggregation_says_why_nothing_is_measured() -> None:
    secure = TaskConfig(model={"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}, secure_aggregation=True)
    summary = incentives_summary(secure, [])
    assert summary == {"measured": False, "reason": NOT_MEASURED}
    assert "secure aggregation masks every update" in summary["reason"]
    with console.capture() as captured:
        _print_rewards(summary, [])
    assert "not measured: secure aggregation" in captured.get()


def test_the_demo_keeps_two_honest_hospitals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 2 honest hospitals"):
        run_demo(workspace=tmp_path / "ws", members=4, malicious=1, free_riders=2)
