"""The config hash is on chain: the same settings must give the same canonical bytes whatever the code's shape.

``tests/fixtures/configs`` holds committed configs (written by ``make_fixtures.py`` with the flat config of commit
f5e15a6): for each case its input (constructor keywords, a task file, or committed bytes) and the canonical bytes
and sha256 it resolved to. The code must resolve each input to exactly those bytes, and load those bytes back to
themselves, so a change to the config's shape cannot move a task's hash.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from conftest import REPO
from fedledger.federation.config import TaskConfig
from fedledger.federation.config_file import load_task_config

FIXTURES = REPO / "tests" / "fixtures" / "configs"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())


def _build(entry: dict[str, Any]) -> TaskConfig:
    if entry["kind"] == "keywords":
        return TaskConfig(**entry["input"])
    if entry["kind"] == "toml":
        return load_task_config(FIXTURES / entry["input"])
    return TaskConfig.from_bytes(entry["input"].encode())


def test_the_fixtures_cover_every_profile_mode_and_tri_state_both_ways() -> None:
    inputs = [entry["input"] for entry in MANIFEST.values() if entry["kind"] == "keywords"]
    assert {i.get("profile", "consortium") for i in inputs} == {"consortium", "few-silos"}
    assert {i.get("dp_mode", "client") for i in inputs if "dp_epsilon" in i} == {"client", "sample"}
    assert any(i.get("secure_aggregation") and "dp_epsilon" in i for i in inputs)
    for switch in ("clip_to_median_norm", "lift_to_median_norm", "score_at_median_norm", "center_scores"):
        assert {i[switch] for i in inputs if switch in i} == {True, False}
    assert {entry["kind"] for entry in MANIFEST.values()} == {"keywords", "toml", "bytes"}


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_each_committed_config_keeps_its_canonical_bytes_and_hash(name: str) -> None:
    entry = MANIFEST[name]
    committed = (FIXTURES / entry["canonical"]).read_bytes()
    assert hashlib.sha256(committed).hexdigest() == entry["sha256"]  # the fixture itself is intact
    config = _build(entry)
    assert config.to_bytes() == committed
    assert config.hash == entry["sha256"]
    reloaded = TaskConfig.from_bytes(committed)
    assert reloaded.to_bytes() == committed
    assert reloaded == config


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_the_typed_views_agree_with_the_flat_fields(name: str) -> None:
    config = TaskConfig.from_bytes((FIXTURES / MANIFEST[name]["canonical"]).read_bytes())
    body = json.loads(config.to_bytes())
    robustness = config.robustness
    views = {
        "rounds": config.training.rounds,
        "clip_norm": config.pipeline.clip_norm,
        "frac_bits": config.pipeline.frac_bits,
        "scoring": robustness.scoring,
        "aggregation": robustness.aggregation,
        "acceptance_threshold": robustness.acceptance_threshold,
        "center_scores": robustness.center_scores,
        "max_disagreement": robustness.reputation.max_disagreement,
        "min_mean_score": robustness.reputation.min_mean_score,
        "dp_mode": config.dp.mode,
        "dp_epsilon": config.dp.epsilon,
        "secure_aggregation": config.secagg.enabled,
        "commit_duration": config.timing.commit_duration,
        "committee_size": config.timing.committee_size,
    }
    assert views == {key: body[key] for key in views}
