"""Task profiles: the defaults a task's unset robustness settings get, per kind of federation.

``consortium`` (many members, a sample training each round) and ``few-silos`` (a handful that all train every
round) are what benchmarks/robustness.py chose for its two federations (benchmarks/results/robustness.md).
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
        config.min_mean_score,
        config.reputation_warmup,
        config.score_at_median_norm,
        config.lift_to_median_norm,
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
        0,
        10,
        False,
        True,  # short accepted updates lifted to the median norm: trust scoring cannot see their length
    )


def test_few_silos_profile_resolves_the_cross_silo_configuration_and_reaches_the_chain() -> None:
    config = TaskConfig(model=MODEL, profile="few-silos")
    # Trainer reputation by mean score after five scored updates, not by rejections; validators score a short update
    # at the round's median norm; the coordinate-wise median aggregates (fedledger.federation.profiles says why).
    expected = ("few-silos", "relative", 4_500, "median", True, 0, 5_000, True, 4_700, 5, True, False)
    assert _robustness(config) == expected
    params = config.chain_params(ZERO_MODEL)
    reputation = (params.max_rejection, params.min_mean_score, params.reputation_warmup, params.max_disagreement)
    assert (params.acceptance_threshold, *reputation) == (4_500, 0, 4_700, 5, 5_000)


def test_settings_given_explicitly_win_over_the_profile() -> None:
    config = TaskConfig(
        model=MODEL,
        profile="few-silos",
        scoring="trust",
        aggregation="trimmed-mean",
        clip_to_median_norm=False,
        max_rejection=2_000,
        min_mean_score=0,
        reputation_warmup=20,
        cap_examples_to_median=False,
        score_at_median_norm=False,
        lift_to_median_norm=True,
    )
    explicit = ("few-silos", "trust", 5_100, "trimmed-mean", False, 2_000, 5_000, False, 0, 20, False, True)
    assert _robustness(config) == explicit
    assert TaskConfig(model=MODEL, profile="few-silos", acceptance_threshold=4_800).threshold == 4_800


def test_secure_aggregation_overrides_either_profile() -> None:
    for profile in PROFILES:
        config = TaskConfig(model=MODEL, profile=profile, secure_aggregation=True)
        resolved = (
            config.aggregation,
            config.clip_to_median_norm,
            config.max_rejection,
            config.min_mean_score,
            config.max_disagreement,
        )
        assert resolved == ("fedavg", False, 0, 0, 0)
        # Members weight their masked inputs before anyone sees the counts: there is nothing to cap.
        assert config.cap_examples_to_median is False
        assert config.score_at_median_norm is False  # no per-update scores
        assert config.lift_to_median_norm is False  # no individual norms
        assert config.center_scores is False  # no scores to centre


def test_validators_centre_their_scores_in_the_few_silos_profile_only() -> None:
    # Centred trust scores let free riders and noise through where honest directions barely agree.
    assert TaskConfig(model=MODEL, profile="few-silos").center_scores is True
    assert TaskConfig(model=MODEL).center_scores is False
    assert TaskConfig(model=MODEL, profile="few-silos", center_scores=False).center_scores is False
    with pytest.raises(ConfigError, match="no per-update scores, so center_scores must be false"):
        TaskConfig(model=MODEL, profile="few-silos", secure_aggregation=True, center_scores=True)
    with pytest.raises(ConfigError, match="center_scores must be true or false, got 'yes'"):
        TaskConfig(model=MODEL, center_scores="yes")  # type: ignore[arg-type]


def test_secure_aggregation_refuses_scoring_at_the_median_norm() -> None:
    with pytest.raises(ConfigError, match="no per-update scores, so score_at_median_norm must be false"):
        TaskConfig(model=MODEL, profile="few-silos", secure_aggregation=True, score_at_median_norm=True)


def test_secure_aggregation_refuses_an_explicit_example_cap() -> None:
    with pytest.raises(ConfigError, match="cap_examples_to_median must be false"):
        TaskConfig(model=MODEL, secure_aggregation=True, cap_examples_to_median=True)


@pytest.mark.parametrize("value", [1, "yes", 0.5])
def test_example_cap_setting_must_be_a_boolean(value: object) -> None:
    with pytest.raises(ConfigError, match=r"cap_examples_to_median must be true or false, got"):
        TaskConfig(model=MODEL, cap_examples_to_median=value)  # type: ignore[arg-type]


def test_client_dp_scores_by_accuracy_in_either_profile() -> None:
    for profile in PROFILES:
        assert TaskConfig(model=MODEL, profile=profile, dp_epsilon=8.0, dp_mode="client").scoring == "relative"


@pytest.mark.parametrize("profile", ["silos", "", None, ["few-silos"]])
def test_unknown_profile_is_refused_by_name(profile: object) -> None:
    with pytest.raises(ConfigError, match=r"unknown profile .*; known: consortium, few-silos"):
        TaskConfig(model=MODEL, profile=profile)  # type: ignore[arg-type]


def test_profile_is_committed_and_old_configs_load_as_consortium() -> None:
    silos = TaskConfig(model=MODEL, profile="few-silos")
    assert json.loads(silos.to_bytes())["profile"] == "few-silos"
    assert TaskConfig.from_bytes(silos.to_bytes()) == silos
    # A committed config without the profile, trainer reputation, the example cap and the lift: the code that wrote
    # it resolved its settings without them, and its aggregators took declared counts and short updates as they were.
    body = json.loads(TaskConfig(model=MODEL).to_bytes())
    del body["profile"], body["max_rejection"], body["cap_examples_to_median"], body["min_mean_score"]
    del body["lift_to_median_norm"]
    committed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    old = TaskConfig.from_bytes(committed)
    expected = ("consortium", "trust", 5_100, "centered-clipping", False, 0, 5_000, False, 0, 10, False, False)
    assert _robustness(old) == expected
    # A few-silos config without score_at_median_norm: its validators scored updates at their own norm.
    body = json.loads(silos.to_bytes())
    del body["score_at_median_norm"]
    assert TaskConfig.from_bytes(json.dumps(body).encode()).score_at_median_norm is False
    # Nor, without center_scores, did they centre their scores.
    body = json.loads(silos.to_bytes())
    del body["center_scores"]
    assert TaskConfig.from_bytes(json.dumps(body).encode()).center_scores is False
    # Committed configs carry their resolved rule: a few-silos config that names FedAvg keeps FedAvg and its hash,
    # whatever the profile's rule is.
    body = json.loads(silos.to_bytes())
    body["aggregation"] = "fedavg"
    committed = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    loaded = TaskConfig.from_bytes(committed)
    assert (loaded.aggregation, loaded.to_bytes()) == ("fedavg", committed)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"min_mean_score": 10_001}, r"min_mean_score must be within 0\.\.10000, got 10001"),
        ({"min_mean_score": -1}, r"min_mean_score must be within 0\.\.10000, got -1"),
        ({"min_mean_score": True}, r"min_mean_score must be within 0\.\.10000, got True"),
        ({"reputation_warmup": -5}, r"reputation_warmup must be a non-negative integer, got -5"),
        ({"secure_aggregation": True, "min_mean_score": 4_700}, r"set min_mean_score to 0"),
    ],
)
def test_bad_trainer_reputation_settings_are_refused_by_name(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TaskConfig(model=MODEL, profile="few-silos", **settings)  # type: ignore[arg-type]
