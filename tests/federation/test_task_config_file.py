"""Task configs as TOML files: fields documented in docs/guide.md, every error names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.exceptions import ConfigError
from fedledger.federation import TaskConfig
from fedledger.federation.config_file import load_task_config

BASE = """
profile = "few-silos"

[model]
kind = "logreg"
n_features = 4
n_classes = 2
"""


def write(tmp_path: Path, text: str, name: str = "task.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_toml_config_loads_with_its_tables(tmp_path: Path) -> None:
    config = load_task_config(write(tmp_path, "rounds = 3\nlocal_epochs = 2\n" + BASE + "\n[aggregation_params]\n"))
    assert config.rounds == 3 and config.local_epochs == 2
    assert config.model["kind"] == "logreg"
    assert config.aggregation == "median"  # resolved from the profile, so the committed config names the rule


def test_json_config_still_loads(tmp_path: Path) -> None:
    path = write(tmp_path, '{"model": {"kind": "logreg", "n_features": 4, "n_classes": 2}, "rounds": 2}', "t.json")
    assert load_task_config(path).rounds == 2


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("roundz = 3", "unknown field 'roundz' (did you mean 'rounds'?)"),
        ('local_epochs = "five"', "field 'local_epochs': expected int, got str 'five'"),
        ("secure_aggregation = 1", "field 'secure_aggregation': expected true/false, got int 1"),
        ("clip_norm = true", "field 'clip_norm': expected float, got bool True"),
        ('aggregation = "avg"', "unknown ledger aggregation rule 'avg' (field 'aggregation'); known: bulyan, "),
        ("frac_bits = 60", "frac_bits must be an integer in [0, 52]"),
    ],
)
def test_errors_name_the_file_and_the_field(tmp_path: Path, extra: str, message: str) -> None:
    path = write(tmp_path, extra + "\n" + BASE)
    with pytest.raises(ConfigError) as info:
        load_task_config(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_model_is_required_and_bad_toml_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="field 'model' is required"):
        load_task_config(write(tmp_path, "rounds = 2\n"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_task_config(write(tmp_path, "rounds = = 2\n"))
    with pytest.raises(ConfigError, match="cannot read task config"):
        load_task_config(tmp_path / "absent.toml")


def test_a_config_without_preparation_keeps_its_canonical_bytes() -> None:
    config = TaskConfig(model={"kind": "logreg", "n_features": 4, "n_classes": 2})
    assert b"preparation" not in config.to_bytes()
    assert TaskConfig.from_bytes(config.to_bytes()) == config
