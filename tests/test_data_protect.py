"""``fedledger data protect``: policy, the protect pipeline, bad input, atomic output and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from fedledger.cli.app import app
from fedledger.data.anonymize import Tokenizer, pseudonymize
from fedledger.data.keys import org_data_key
from fedledger.data.policy import ProtectionPolicy, parse_classes
from fedledger.data.protect import (
    ColumnClassification,
    ProtectionKeys,
    protect_file,
    protect_frame,
    report_path_for,
    resolve_classes,
)
from fedledger.exceptions import BadInput, ConfigError
from fedledger.workspace import Workspace

KEYS = ProtectionKeys(pseudonymize=b"p" * 32, tokenize=b"t" * 32)
CLASSES = "name=identifier,card=identifier,age=quasi_identifier,zip=quasi_identifier,diagnosis=sensitive,visits=other"
POLICY_TOML = """
k = 3
l = 2
[columns.card]
action = "tokenize"
[columns.zip]
hierarchy = "prefix"
"""


def _rows(n: int = 24) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": [f"person {i}" for i in range(n)],
            "card": [f"4111-0000-0000-{i:04d}" for i in range(n)],
            "age": [str(20 + (i * 7) % 50) for i in range(n)],
            "zip": [["02134", "02139", "02141", "10001"][i % 4] for i in range(n)],
            "diagnosis": [["flu", "cold", "asthma"][i % 3] for i in range(n)],
            "visits": [str(i % 5) for i in range(n)],
        }
    )


def _classes(text: str = CLASSES) -> dict[str, ColumnClassification]:
    return {name: ColumnClassification(c, 1.0, "test") for name, c in parse_classes(text).items()}


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "patients.csv"
    _rows().to_csv(path, index=False)
    return path


def test_protect_frame_applies_actions_and_measures_the_output() -> None:
    frame = _rows()
    policy = ProtectionPolicy.from_mapping({"k": 3, "l": 2, "columns": {"card": {"action": "tokenize"}}})
    result = protect_frame(frame, policy, classes=_classes(), keys=KEYS)
    out, report = result.frame, result.report
    assert len(out) == len(frame) and list(out.columns) == list(frame.columns)
    assert out["name"].tolist() == pseudonymize(frame["name"].tolist(), KEYS.pseudonymize or b"")
    assert Tokenizer(KEYS.tokenize or b"").detokenize(out["card"], alphabet="digits") == frame["card"].tolist()
    assert out["diagnosis"].tolist() == frame["diagnosis"].tolist()
    assert out[["age", "zip"]].value_counts().min() >= 3
    assert report["k"] == {"target": 3, "achieved": out[["age", "zip"]].value_counts().min(), "met": True}
    assert report["l"]["met"] is True and report["l"]["achieved"]["diagnosis"] >= 2
    assert report["t"]["target"] is None and report["t"]["met"] is None and "diagnosis" in report["t"]["achieved"]
    assert report["columns"]["card"]["alphabet"] == "digits"
    assert report["columns"]["age"]["kind"] == "numeric" and report["columns"]["zip"]["hierarchy"] == "prefix"
    assert report["complete"] is True and report["ncp_percent"] > 0


def test_drop_and_keep_on_a_quasi_identifier_is_reported() -> None:
    policy = ProtectionPolicy.from_mapping(
        {"identifier_action": "drop", "columns": {"zip": {"action": "keep"}}, "k": 2}
    )
    result = protect_frame(_rows(), policy, classes=_classes(), keys=KEYS)
    assert "name" not in result.frame and "card" not in result.frame
    assert result.report["columns"]["name"]["suppressed_rows"] == 24
    assert "not part of k-anonymity" in result.report["columns"]["zip"]["warning"]
    assert result.report["quasi_identifiers"] == ["age"]


def test_unreachable_targets_are_errors_never_reported_as_met() -> None:
    with pytest.raises(ConfigError, match=r"k=50 \(achieved 24; the table has 24 rows\)"):
        protect_frame(_rows(), ProtectionPolicy(k=50), classes=_classes(), keys=KEYS)
    with pytest.raises(ConfigError, match="l=4"):
        protect_frame(_rows(), ProtectionPolicy(k=2, l=4), classes=_classes(), keys=KEYS)


def test_policy_errors_name_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="'ssn'"):
        ProtectionPolicy.from_mapping({"columns": {"ssn": {"action": "drop"}}}).check_columns(["name"])
    with pytest.raises(ConfigError, match="unknown key"):
        ProtectionPolicy.from_mapping({"kk": 5})
    with pytest.raises(ConfigError, match="action must be one of"):
        ProtectionPolicy.from_mapping({"columns": {"a": {"action": "encrypt"}}})
    with pytest.raises(ConfigError, match="k must be"):
        ProtectionPolicy.from_mapping({"k": 0})
    with pytest.raises(ConfigError, match="t must be"):
        ProtectionPolicy.from_mapping({"t": 2})
    bad = tmp_path / "bad.toml"
    bad.write_text("k = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ProtectionPolicy.from_toml(bad)
    with pytest.raises(ConfigError, match="COLUMN=CLASS"):
        parse_classes("age=secret")
    with pytest.raises(ConfigError, match="no class for column"):
        resolve_classes(["age", "zip"], ProtectionPolicy(), _classes("age=other"))
    with pytest.raises(ConfigError, match="needs the organization's tokenize key"):
        protect_frame(
            _rows(),
            ProtectionPolicy.from_mapping({"columns": {"card": {"action": "tokenize"}}}),
            classes=_classes(),
            keys=ProtectionKeys(pseudonymize=b"p" * 32),
        )


def test_policy_hierarchy_table_is_used(table: Path, tmp_path: Path) -> None:
    policy = ProtectionPolicy.from_mapping(
        {
            "k": 6,
            "columns": {
                "diagnosis": {"class": "quasi_identifier", "hierarchy": {"respiratory": ["flu", "cold", "asthma"]}}
            },
        }
    )
    result = protect_file(table, tmp_path / "out.csv", policy, classes=_classes(), keys=KEYS)
    assert set(result.frame["diagnosis"]) <= {"flu", "cold", "asthma", "respiratory", "*"}
    assert result.report["columns"]["diagnosis"]["class_source"] == "policy"


def test_bad_files_are_clear_errors_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    cases = {
        "empty.csv": b"",
        "header_only.csv": b"name,age\n",
        "ragged.csv": b"name,age\nalice,30\nbob,31,extra,fields\n",
    }
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(BadInput):
            protect_file(path, out, ProtectionPolicy(k=1), classes=_classes("name=identifier,age=other"), keys=KEYS)
        assert not out.exists() and not report_path_for(out).exists()
    with pytest.raises(BadInput, match="overwrite the input"):
        protect_file(tmp_path / "empty.csv", tmp_path / "empty.csv", ProtectionPolicy())


def test_mixed_encodings_and_an_all_null_column_are_handled(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    rows = ["city,age,notes"] + [f"{'Zürich' if i % 2 else 'Genève'},{30 + i}," for i in range(8)]
    path.write_bytes("\n".join(rows).encode("cp1252") + b"\n")
    classes = _classes("city=quasi_identifier,age=quasi_identifier,notes=quasi_identifier")
    result = protect_file(path, tmp_path / "out.csv", ProtectionPolicy(k=2), classes=classes, keys=KEYS)
    assert set(result.frame["city"]) <= {"Zürich", "Genève", "*"}
    assert result.frame["notes"].isna().all() and result.report["columns"]["notes"]["missing_values"] == 8
    assert result.report["k"]["met"] is True


def test_failed_write_leaves_no_partial_output(table: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.csv"

    def crash(self: pd.DataFrame, path: object, **kwargs: object) -> None:
        Path(str(path)).write_text("name,age\npartial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        protect_file(table, out, ProtectionPolicy(k=3), classes=_classes(), keys=KEYS)
    assert list(tmp_path.iterdir()) == [table]  # no output, no report, no temporary file


def test_parquet_output_and_report_next_to_it(table: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    protect_file(table, out, ProtectionPolicy(k=4), classes=_classes(), keys=KEYS)
    assert len(pd.read_parquet(out)) == 24
    report = json.loads(report_path_for(out).read_text())
    assert report["complete"] is True and report["output"] == str(out) and report["k"]["achieved"] >= 4


# -- CLI --------------------------------------------------------------------------------------------------


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "ws"
    ws = Workspace.create(root, scrypt_n=2**10)
    ws.keystore.create(ws.config.key, "pw")
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    return root


def test_cli_protect_with_workspace_keys(table: Path, tmp_path: Path, workspace: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY_TOML)
    out = tmp_path / "out.csv"
    args = ["data", "protect", str(table), "--out", str(out), "--policy", str(policy), "--classes", CLASSES]
    result = CliRunner().invoke(app, [*args, "-w", str(workspace), "--k", "4", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["k"]["target"] == 4 and report["k"]["met"] is True
    assert report["columns"]["age"]["class_source"] == "command line"
    account = Workspace.load(workspace).account(password="pw")
    written = pd.read_csv(out, dtype=str)
    assert written["name"].tolist() == pseudonymize(_rows()["name"].tolist(), org_data_key(account, "pseudonymize"))
    assert Tokenizer(org_data_key(account, "tokenize")).detokenize(written["card"], alphabet="digits") == (
        _rows()["card"].tolist()
    )
    assert json.loads(report_path_for(out).read_text())["k"] == report["k"]


def test_cli_errors_exit_with_the_error_class_code(table: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('[columns.ssn]\naction = "drop"\n')
    out = tmp_path / "out.csv"
    runner = CliRunner()
    result = runner.invoke(app, ["data", "protect", str(table), "--out", str(out), "--policy", str(policy)])
    assert result.exit_code == ConfigError.exit_code and "'ssn'" in result.output
    without_identifiers = CLASSES.replace("=identifier", "=other")
    no_keys_needed = runner.invoke(
        app, ["data", "protect", str(table), "--out", str(out), "--k", "3", "--classes", without_identifiers]
    )
    assert no_keys_needed.exit_code == 0, no_keys_needed.output  # no workspace opened when no key is used
    assert "k = " in no_keys_needed.output and out.exists()


def test_cli_classifies_the_columns_nobody_classified(table: Path, tmp_path: Path, workspace: Path) -> None:
    out = tmp_path / "out.csv"
    args = ["data", "protect", str(table), "--out", str(out), "--classes", "age=quasi_identifier", "--k", "3"]
    result = CliRunner().invoke(app, [*args, "-w", str(workspace), "--json"])
    assert result.exit_code == 0, result.output
    columns = json.loads(result.stdout)["columns"]
    assert columns["age"]["class_source"] == "command line"
    for name in ("name", "card", "zip", "diagnosis", "visits"):
        assert columns[name]["class_source"] == "classifier"
        assert 0 < columns[name]["confidence"] <= 1
        assert columns[name]["class"] in ("identifier", "quasi_identifier", "sensitive", "other")
    assert len(pd.read_csv(out, dtype=str)) == len(_rows())
