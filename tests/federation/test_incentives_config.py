"""The incentives section of a task config: resolved, checked field by field, and absent from the hash while off."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fedledger.chain import IncentiveParams
from fedledger.chain.task import ZERO_ADDRESS
from fedledger.exceptions import ConfigError
from fedledger.federation import TaskConfig
from fedledger.federation.config_file import load_task_config
from fedledger.incentives import DEFAULT_CONTRIBUTION_METHOD, ContributionSettings

MODEL = {"kind": "sklearn-sgd", "n_features": 4, "n_classes": 2}
FIELDS = ("contribution_method", "reward_per_round", "reward_token", "trainer_stake", "validator_stake",
          "trainer_slash_bps", "validator_slash_bps", "contribution_window", "dispute_window")  # fmt: skip
TOKEN = "0x" + "12" * 20


def config(**fields: Any) -> TaskConfig:
    return TaskConfig(model=MODEL, **fields)


def test_a_task_without_incentives_has_them_off_and_leaves_them_out_of_its_bytes() -> None:
    plain = config()
    assert not plain.incentives.enabled
    assert plain.contribution_method == ""
    body = json.loads(plain.to_bytes())
    assert not set(FIELDS) & set(body)


def test_a_reward_or_a_stake_turns_incentives_on_with_the_default_method() -> None:
    for on in ({"reward_per_round": 5}, {"trainer_stake": 1}, {"validator_stake": 1}):
        settings = config(**on).incentives
        assert settings.enabled
        assert settings.contribution_method == DEFAULT_CONTRIBUTION_METHOD
    chosen = config(reward_per_round=5, contribution_method="cgsv").incentives
    assert chosen.contribution_method == "cgsv"


def test_the_settings_become_the_contract_parameters() -> None:
    settings = config(
        reward_per_round=7, reward_token=TOKEN, trainer_stake=3, validator_stake=4, trainer_slash_bps=500,
        validator_slash_bps=200, contribution_window=60, dispute_window=120,
    ).incentives  # fmt: skip
    assert settings.chain_params() == IncentiveParams(
        reward_per_round=7, token=TOKEN, trainer_stake=3, validator_stake=4, trainer_slash_bps=500,
        validator_slash_bps=200, contribution_window=60, dispute_window=120,
    )  # fmt: skip
    assert config(reward_per_round=1).incentives.chain_params().token == ZERO_ADDRESS  # native currency


def test_incentives_change_the_hash_and_load_back_from_the_committed_bytes() -> None:
    plain, paid = config(), config(reward_per_round=10, trainer_stake=2, contribution_window=600)
    assert plain.hash != paid.hash
    body = json.loads(paid.to_bytes())
    assert body["contribution_method"] == DEFAULT_CONTRIBUTION_METHOD
    assert "dispute_window" not in body  # at its default: left out, and restored by from_bytes
    reloaded = TaskConfig.from_bytes(paid.to_bytes())
    assert reloaded == paid
    assert reloaded.incentives == paid.incentives


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reward_per_round": -1}, "reward_per_round must be a non-negative integer"),
        ({"reward_per_round": 1.5}, "reward_per_round must be a non-negative integer"),
        ({"trainer_stake": True}, "trainer_stake must be a non-negative integer"),
        ({"reward_per_round": 1, "contribution_window": 0}, "contribution_window must be an integer of at least 1"),
        ({"reward_per_round": 1, "trainer_slash_bps": 10_001}, "trainer_slash_bps must be within 0..10000"),
        ({"reward_per_round": 1, "validator_slash_bps": -1}, "validator_slash_bps must be within 0..10000"),
        ({"reward_per_round": 1, "reward_token": "0x1234"}, "reward_token must be empty"),
        ({"reward_per_round": 1, "reward_token": "0x" + "00" * 20}, "reward_token must be empty"),
        ({"reward_per_round": 1, "contribution_method": "shapley"}, "field 'contribution_method'"),
        ({"contribution_method": "loo"}, "contribution_method is set but the task has no incentives"),
        ({"trainer_slash_bps": 100}, "trainer_slash_bps is set but the task has no incentives"),
        ({"reward_per_round": 1, "contribution_params": {"permutations": 5}}, "unknown parameters permutations"),
        ({"reward_per_round": 1, "contribution_params": {"max_permutations": 2.5}}, "max_permutations must be a"),
        ({"reward_per_round": 1, "contribution_params": {"convergence": -0.1}}, "convergence must be a non-negative"),
        ({"contribution_params": {"max_permutations": 5}}, "contribution_params is set but the task has no incentives"),
    ],
)
def test_bad_incentive_settings_are_refused_by_name(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        config(**fields)


def test_the_contribution_methods_parameters_are_committed_with_the_task() -> None:
    default = config(reward_per_round=10)
    assert default.incentives.contribution_settings == ContributionSettings()
    assert "contribution_params" not in json.loads(default.to_bytes())  # unset: out of the hash
    tuned = config(reward_per_round=10, contribution_params={"max_permutations": 50, "round_tolerance": 0.001})
    assert tuned.incentives.contribution_settings == ContributionSettings(max_permutations=50, round_tolerance=0.001)
    assert tuned.hash != default.hash
    assert TaskConfig.from_bytes(tuned.to_bytes()) == tuned


def test_secure_aggregation_refuses_incentives_and_says_why() -> None:
    with pytest.raises(ConfigError) as refused:
        config(secure_aggregation=True, reward_per_round=10)
    message = str(refused.value)
    assert "no validator can measure an update's contribution" in message
    assert "no stake gate" in message
    assert "reward_per_round" in message
    config(secure_aggregation=True)  # and without incentives it is fine


def test_a_task_file_sets_the_incentive_fields(tmp_path: Path) -> None:
    path = tmp_path / "task.toml"
    path.write_text(
        'reward_per_round = 1000000\ntrainer_stake = 50\ncontribution_method = "loo"\ntrainer_slash_bps = 2500\n'
        '[model]\nkind = "sklearn-sgd"\nn_features = 4\nn_classes = 2\n',
        encoding="utf-8",
    )
    settings = load_task_config(path).incentives
    assert (settings.reward_per_round, settings.trainer_stake, settings.contribution_method) == (1_000_000, 50, "loo")
    assert settings.trainer_slash_bps == 2_500
    path.write_text('reward_per_round = "lots"\n[model]\nkind = "sklearn-sgd"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="reward_per_round"):
        load_task_config(path)
