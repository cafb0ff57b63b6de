"""The typed config: modes as string enums, profiles as frozen dataclasses, sections as checked read-only views."""

from __future__ import annotations

import ast
import dataclasses
import importlib.util
import pickle
from pathlib import Path
from typing import Any

import pytest

from fedledger.exceptions import ConfigError
from fedledger.federation.config import PROFILES, TaskConfig, ledger_rules
from fedledger.federation.modes import AggregationRule, DpMode, ProfileName, Scoring, ServerOptimizer
from fedledger.federation.profiles import CONSORTIUM, FEW_SILOS, Profile
from fedledger.federation.sections import (
    PipelineSettings,
    PrivacySettings,
    ReputationSettings,
    SecureAggregationSettings,
    TimingSettings,
    TrainingSettings,
)
from fedledger.learning import SCORING_RULES
from fedledger.learning.aggregation import SERVER_OPTIMIZERS

MODEL = {"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}


def test_the_enums_name_exactly_what_the_registries_implement() -> None:
    assert sorted(AggregationRule) == ledger_rules()
    assert set(Scoring) == set(SCORING_RULES)
    assert [o for o in ServerOptimizer if o is not ServerOptimizer.NONE] == list(SERVER_OPTIMIZERS)
    assert set(PROFILES) == set(ProfileName)


def test_resolved_modes_are_enum_members_equal_to_their_strings() -> None:
    config = TaskConfig(model=MODEL, profile="few-silos", dp_epsilon=8.0)
    assert config.profile is ProfileName.FEW_SILOS and config.profile == "few-silos"
    assert config.scoring is Scoring.RELATIVE and config.scoring == "relative"
    assert config.aggregation is AggregationRule.MEDIAN and f"{config.aggregation}" == "median"
    assert config.dp_mode is DpMode.SAMPLE and config.server_optimizer is ServerOptimizer.NONE  # few silos: DP-SGD
    assert config.robustness.scoring is Scoring.RELATIVE and config.dp.mode is DpMode.SAMPLE
    assert SCORING_RULES[config.scoring] is SCORING_RULES["relative"]  # usable as the registries' keys


@pytest.mark.parametrize(
    ("field", "value", "allowed"),
    [
        ("profile", "silos", "consortium, few-silos"),
        ("scoring", "cosine", "trust, relative, relative-accuracy, relative-loss, accuracy"),
        ("aggregation", "fltrust", "bulyan, centered-clipping, fedavg"),
        ("server_optimizer", "fedsgd", "none, fedadam, fedyogi, fedadagrad"),
        ("dp_mode", "central", "client, sample"),
        ("dp_mode", ["client"], "client, sample"),
    ],
)
def test_a_bad_mode_is_refused_with_its_field_value_and_the_allowed_values(
    field: str, value: Any, allowed: str
) -> None:
    with pytest.raises(ConfigError) as info:
        TaskConfig(model=MODEL, **{field: value})
    message = str(info.value)
    assert f"(field {field!r})" in message
    assert repr(value) in message
    assert f"known: {allowed}" in message


def test_profiles_are_frozen_typed_and_selected_by_name() -> None:
    assert PROFILES["consortium"] is CONSORTIUM and PROFILES["few-silos"] is FEW_SILOS
    assert isinstance(FEW_SILOS, Profile) and FEW_SILOS.aggregation is AggregationRule.MEDIAN
    with pytest.raises(dataclasses.FrozenInstanceError):
        FEW_SILOS.min_mean_score = 0  # type: ignore[misc]
    with pytest.raises(TypeError):
        PROFILES["mine"] = CONSORTIUM  # type: ignore[index]
    config = TaskConfig(model=MODEL, profile="few-silos")
    for name in ("scoring", "aggregation", "clip_to_median_norm", "center_scores", "min_mean_score"):
        assert getattr(config, name) == getattr(FEW_SILOS, name)


def test_the_views_are_resolved_typed_and_read_only() -> None:
    config = TaskConfig(model=MODEL, secure_aggregation=True, secagg_threshold=3, committee_size=0, rounds=4)
    assert config.training.rounds == 4 and config.training.model == MODEL
    assert config.pipeline == PipelineSettings(10.0, 24, 16 * 2**20, 10_000_000)
    assert config.secagg == SecureAggregationSettings(enabled=True, threshold=3)
    assert config.timing == TimingSettings(2, 3600, 3600, 3600, 2, 0)
    assert config.robustness.reputation == ReputationSettings(0, 10, 0, 0)
    assert not any(config.robustness.per_update_rules.values())  # secure aggregation sees no individual update
    assert config.dp == PrivacySettings(None, 1e-5, DpMode.CLIENT, None, 64, 1.0) and not config.dp.enabled
    assert config.robustness is config.robustness  # built once
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timing.committee_size = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: TrainingSettings({"n": 1}, 1, 1, 0, {}), "model spec needs a 'kind'"),
        (lambda: TrainingSettings(MODEL, 0, 1, 0, {}), "rounds must be an integer of at least 1, got 0"),
        (lambda: TrainingSettings(MODEL, 1, 1, "0", {}), "seed must be an integer"),
        (lambda: PipelineSettings(-1.0, 24, 1, 1), "clip_norm must be positive"),
        (lambda: PipelineSettings(2.0**40, 24, 1, 1), "does not fit int64 fixed point"),
        (lambda: PipelineSettings(1.0, 24, 0, 1), "max_update_bytes must be an integer of at least 1"),
        (lambda: ReputationSettings(10_001, 0, 0, 0), r"max_disagreement must be within 0\.\.10000"),
        (lambda: SecureAggregationSettings(True, 129), r"secagg_threshold must be within 0\.\.128"),
        (lambda: SecureAggregationSettings(1, 0), "secure_aggregation must be true or false"),  # type: ignore[arg-type]
        (lambda: TimingSettings(2, -1, 1, 1, 1, 0), "commit_duration must be a non-negative integer, got -1"),
        (lambda: TimingSettings(2, 1, 1, 1, True, 0), "proposal_quorum must be a non-negative integer, got True"),
        (lambda: PrivacySettings(None, 1e-5, DpMode.CLIENT, 1.0, 64, 1.0), "dp_epsilon \\(the budget\\) is not"),
        (lambda: PrivacySettings(1.0, 1.5, DpMode.CLIENT, None, 64, 1.0), r"dp_delta must be in \(0, 1\)"),
        (lambda: PrivacySettings(1.0, 1e-5, DpMode.SAMPLE, None, 0, 1.0), "dp_batch_size and dp_max_grad_norm"),
    ],
)
def test_each_section_checks_its_own_fields(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


def test_replace_and_pickle_keep_working_on_the_flat_fields() -> None:
    config = TaskConfig(model=MODEL, profile="few-silos")
    moved = dataclasses.replace(config, committee_size=3)
    assert moved.timing.committee_size == 3 and moved.robustness == config.robustness
    copied = pickle.loads(pickle.dumps(config))
    assert copied == config and copied.hash == config.hash and copied.profile is ProfileName.FEW_SILOS


def _imports(module: str) -> set[str]:
    """Every module ``module``'s source imports, at its top or inside a function."""
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())  # type: ignore[union-attr, arg-type]
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return found | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_the_config_modules_import_each_other_one_way() -> None:
    # config -> privacy -> sections -> modes, and profiles -> modes: no cycle, and none hidden in a function.
    layers = ["config", "privacy", "profiles", "sections", "modes"]
    for i, name in enumerate(layers):
        imported = _imports(f"fedledger.federation.{name}")
        assert not {f"fedledger.federation.{above}" for above in layers[: i + 1]} & imported, name
