"""Task profiles: the defaults a task's unset robustness settings get, per kind of federation.

``consortium`` (many members, a sample training each round) and ``few-silos`` (a handful that all train every
round) are what benchmarks/robustness.py chose for its two federations (docs/robustness.md, runs 14-23).
"""

from __future__ import annotations

import json

import pytest

from fedledger.exceptions import ConfigError
from fedledger.federation.config import PROFILES, TaskConfig

MODEL = {"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}
ZERO_MODEL = "0x" + "00" * 32


def _robustness(config: TaskConfig) -> tuple[object, ...]:
    return (
        config.profile,
        config.scoring,
        config.threshold,
        config.aggregation,
        config.clip_to_median_norm,
        config.max_rejection,
        config.max_disagreement,
        config.cap_examples_to_median,
    )


def test_consortium_is_the_default_profile() -> None:
    assert _robustness(TaskConfig(model=MODEL)) == (
        "consortium",
        "trust",
        5_100,
        "centered-clipping",
        False,
        0,
        5_000,
        True,
    )


def test_few_silos_profile_resolves_the_cross_silo_configuration_and_reaches_the_chain() -> None:
    config = TaskConfig(model=MODEL, profile="few-silos")
    assert _robustness(config) == ("few-silos", "relative", 4_500, "fedavg", True, 4_000, 5_000, True)
    params = config.chain_params(ZERO_MODEL)
    assert (params.acceptance_threshold, params.max_rejection, params.max_disagreement) == (4_500, 4_000, 5_000)


def test_settings_given_explicitly_win_over_the_profile() -> None:
    config = TaskConfig(
        model=MODEL,
        profile="few-silos",
        scoring="trust",
        aggregation="median",
        clip_to_median_norm=False,
        max_rejection=0,
        cap_examples_to_median=False,
    )
    assert _robustness(config) == ("few-silos", "trust", 5_100, "median", False, 0, 5_000, False)
    assert TaskConfig(model=MODEL, profile="few-silos", acceptance_threshold=4_800).threshold == 4_800


def test_secure_aggregation_overrides_either_profile() -> None:
    for profile in PROFILES:
        config = TaskConfig(model=MODEL, profile=profile, secure_aggregation=True)
        resolved = (config.aggregation, config.clip_to_median_norm, config.max_rejection, config.max_disagreement)
        assert resolved == ("fedavg", False, 0, 0)
        # Members weight their masked inputs before anyone sees the counts: there is nothing to cap.
        assert config.cap_examples_to_median is False


def test_secure_aggregation_refuses_an_explicit_example_cap() -> None:
    with pytest.raises(ConfigError, match="cap_examples_to_median must be false"):
        TaskConfig(model=MODEL, secure_aggregation=True, cap_examples_to_median=True)


@pytest.mark.parametrize("value", [1, "yes", 0.5])
def test_example_cap_setting_must_be_a_boolean(value: object) -> None:
    with pytest.raises(ConfigError, match=r"cap_examples_to_median must be true or false, got"):
        TaskConfig(model=MODEL, cap_examples_to_median=value)  # type: ignore[arg-type]


def test_client_dp_scores_by_accuracy_in_either_profile() -> None:
    for profile in PROFILES:
        assert TaskConfig(model=MODEL, profile=profile, dp_epsilon=8.0).scoring == "relative"


@pytest.mark.parametrize("profile", ["silos", "", None, ["few-silos"]])
def test_unknown_profile_is_refused_by_name(profile: object) -> None:
    with pytest.raises(ConfigError, match=r"unknown profile .*; known: consortium, few-silos"):
        TaskConfig(model=MODEL, profile=profile)  # type: ignore[arg-type]


def test_profile_is_committed_and_old_configs_load_as_consortium() -> None:
    silos = TaskConfig(model=MODEL, profile="few-silos")
    assert json.loads(silos.to_bytes())["profile"] == "few-silos"
    assert TaskConfig.from_bytes(silos.to_bytes()) == silos
    # A config committed before profiles, trainer reputation and the example cap existed: its settings were
    # resolved then, and its aggregators took declared counts as they were.
    body = json.loads(TaskConfig(model=MODEL).to_bytes())
    del body["profile"], body["max_rejection"], body["cap_examples_to_median"]
    old = TaskConfig.from_bytes(json.dumps(body).encode())
    assert _robustness(old) == ("consortium", "trust", 5_100, "centered-clipping", False, 0, 5_000, False)
