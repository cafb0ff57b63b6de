"""Gas used by every ledger operation matches the committed benchmarks/gas-snapshot.json.

A contract (or compiler) change that moves gas fails here until the snapshot is
regenerated with ``python benchmarks/gas_snapshot.py`` and the diff reviewed.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from conftest import BENCHMARKS


@pytest.fixture(scope="module")
def gas_snapshot() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gas_snapshot", BENCHMARKS / "gas_snapshot.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def after(gas_snapshot: ModuleType) -> dict[str, Any]:
    """The "after" section as the contracts stand now (one embedded run per test session)."""
    return dict(gas_snapshot.current())


@pytest.fixture(scope="module")
def current(gas_snapshot: ModuleType, after: dict[str, Any]) -> str:
    """The whole snapshot as regenerating it would write: the committed "before", the current "after"."""
    return str(gas_snapshot.render(after, gas_snapshot.frozen_before(gas_snapshot.SNAPSHOT)))


def test_gas_matches_committed_snapshot(gas_snapshot: ModuleType, current: str) -> None:
    committed = gas_snapshot.SNAPSHOT.read_text()
    message = gas_snapshot.diff(committed, current, gas_snapshot.SNAPSHOT)
    assert committed == current, (
        "gas used changed; review, then regenerate with `python benchmarks/gas_snapshot.py`:\n" + message
    )


def test_snapshot_covers_every_operation(gas_snapshot: ModuleType) -> None:
    data = json.loads(gas_snapshot.SNAPSHOT.read_text())
    assert list(data) == ["before", "after"]
    for section in data.values():
        assert list(section["gas"]) == [*gas_snapshot.OPERATIONS, gas_snapshot.WHOLE_ROUND]
        scenario = section["scenario"]
        assert len(section["gas"]["commit_update"]) == scenario["members"] * scenario["rounds"]
        assert all(isinstance(g, int) and g > 21_000 for values in section["gas"].values() for g in values)
    # The same scenario before and after, so the two columns compare; every deployed contract is sized.
    assert data["before"]["scenario"] == data["after"]["scenario"]
    assert all(0 < size <= 24_576 - 2_048 for size in data["after"]["runtime_bytes"].values())  # EIP-170, 2 KiB spare


def test_check_mode_exits_non_zero_with_a_diff(
    gas_snapshot: ModuleType,
    current: str,
    after: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(gas_snapshot, "current", lambda: after)
    good = tmp_path / "good.json"
    good.write_text(current)
    assert gas_snapshot.main(["--check", "--snapshot", str(good)]) == 0

    data = json.loads(current)
    data["after"]["gas"]["close_commits"] = [g + 1 for g in data["after"]["gas"]["close_commits"]]
    stale = tmp_path / "stale.json"
    stale.write_text(gas_snapshot.render(data["after"], data["before"]))
    capsys.readouterr()
    assert gas_snapshot.main(["--check", "--snapshot", str(stale)]) == 1
    out = capsys.readouterr()
    assert '-      "close_commits"' in out.out and '+      "close_commits"' in out.out
    assert "regenerate" in out.err

    assert gas_snapshot.main(["--check", "--snapshot", str(tmp_path / "missing.json")]) == 1
    # Regeneration writes exactly what the check compares against, keeping the committed "before" as it was.
    assert gas_snapshot.main(["--snapshot", str(stale)]) == 0
    assert stale.read_text() == current
    assert json.loads(stale.read_text())["before"] == data["before"]


def test_gas_is_deterministic(gas_snapshot: ModuleType, current: str) -> None:
    """Same inputs, same gas: a second fresh chain gives the same numbers."""
    assert gas_snapshot.render(gas_snapshot.current(), gas_snapshot.frozen_before(gas_snapshot.SNAPSHOT)) == current
