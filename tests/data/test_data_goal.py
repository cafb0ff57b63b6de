"""``fedledger data goal``: the declared purpose, its file, minimization at protect time, and registration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from fedledger.cli.app import app
from fedledger.data.goal import LAWFUL_BASES, Goal, goal_path_for
from fedledger.data.policy import ProtectionPolicy, parse_classes
from fedledger.data.protect import ColumnClassification, ProtectionKeys, protect_file, report_path_for
from fedledger.data.registration import register_table
from fedledger.exceptions import BadInput, ConfigError

runner = CliRunner()
PURPOSE = "model-training:heart-disease"


def _said(output: str) -> str:
    return " ".join(output.split())


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "patients.csv"
    pd.DataFrame(
        {
            "name": [f"person {i}" for i in range(12)],
            "age": [str(30 + i * 3) for i in range(12)],
            "chol": [str(180 + i) for i in range(12)],
            "religion": [["none", "catholic", "muslim"][i % 3] for i in range(12)],
            "num": [str(i % 2) for i in range(12)],
        }
    ).to_csv(path, index=False)
    return path


def _goal(table: Path, columns: tuple[str, ...] = ("age", "chol", "num")) -> Goal:
    return Goal.declare(
        table,
        purpose=PURPOSE,
        lawful_basis="public_task",
        retention="5y",
        columns=columns,
        available=["name", "age", "chol", "religion", "num"],
    )


def test_goal_round_trips_through_its_file(table: Path) -> None:
    goal = _goal(table)
    path = goal.write(goal_path_for(table))
    assert path == table.with_name("patients.csv.goal.json")
    assert list(table.parent.glob(".*.tmp")) == []
    loaded = Goal.load(path)
    assert loaded == goal and loaded.source == str(path)
    assert loaded.digest == goal.digest and len(goal.digest) == 64
    document = json.loads(path.read_text())
    assert document["format"] == "fedledger-goal/1" and document["data"] == "patients.csv"
    assert document["lawful_basis"] == "public_task" and document["columns"] == ["age", "chol", "num"]
    assert LAWFUL_BASES == (
        "consent",
        "contract",
        "legal_obligation",
        "vital_interests",
        "public_task",
        "legitimate_interests",
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lawful_basis": "because"}, r"line 5: lawful basis 'because': expected one of consent, contract"),
        ({"retention": "forever"}, r"line 6: retention 'forever': expected a period"),
        ({"purpose": "Heart Disease"}, r"line 4: malformed purpose name 'Heart Disease'"),
        ({"columns": []}, r"line 7: columns: a purpose needs at least one column"),
        ({"colour": "blue"}, r"line \d+: unknown key\(s\) colour"),
        ({"columns": ["age", "age"]}, r"'age' listed twice"),
    ],
)
def test_bad_goal_files_name_the_file_and_line(
    table: Path, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(_goal(table).to_json() | change, indent=2))
    with pytest.raises(ConfigError, match=rf"g\.json {message}" if "line" in message else message):
        Goal.load(path)


def test_goal_file_that_is_not_json_or_missing(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text('{\n  "purpose": "x",\n  oops\n}\n')
    with pytest.raises(ConfigError, match=r"g\.json line 3: not valid JSON"):
        Goal.load(path)
    with pytest.raises(ConfigError, match="not found"):
        Goal.load(tmp_path / "none.json")


def test_declaring_columns_the_table_lacks_names_file_line_and_column(table: Path) -> None:
    with pytest.raises(BadInput, match=r"patients\.csv line 1, column 'cholesterol': the purpose"):
        _goal(table, ("age", "cholesterol"))


# -- CLI -----------------------------------------------------------------------------------------------


def test_cli_goal_declares_shows_and_refuses_half_a_goal(table: Path) -> None:
    args = ["data", "goal", str(table)]
    declare = [*args, "--purpose", PURPOSE, "--basis", "consent", "--retention", "90d", "--columns", "age, chol,num"]
    result = runner.invoke(app, [*declare, "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert written["columns"] == ["age", "chol", "num"] and written["replaced"] is None
    assert Goal.load(goal_path_for(table)).digest == written["sha256"]
    shown = runner.invoke(app, args)
    assert shown.exit_code == 0 and "purpose model-training:heart-disease" in _said(shown.output)
    again = runner.invoke(app, [*declare, "--json"])
    assert json.loads(again.stdout)["replaced"] == written["sha256"]
    half = runner.invoke(app, [*args, "--purpose", PURPOSE])
    assert half.exit_code == BadInput.exit_code and "needs --basis, --retention, --columns" in _said(half.output)
    bad = runner.invoke(app, [*declare[:5], "--basis", "vibes", *declare[7:]])
    assert bad.exit_code == ConfigError.exit_code and "lawful basis 'vibes'" in _said(bad.output)


# -- minimization at protect time ------------------------------------------------------------------------

CLASSES = "name=identifier,age=quasi_identifier,chol=sensitive,religion=sensitive,num=other"


def _classes() -> dict[str, ColumnClassification]:
    return {n: ColumnClassification(c, 1.0, "test") for n, c in parse_classes(CLASSES).items()}


def test_protect_drops_what_the_purpose_does_not_need(table: Path, tmp_path: Path) -> None:
    goal = _goal(table)
    out = tmp_path / "out.csv"
    result = protect_file(table, out, ProtectionPolicy(k=3), classes=_classes(), goal=goal)
    assert list(pd.read_csv(out, dtype=str).columns) == ["age", "chol", "num"]
    report = json.loads(report_path_for(out).read_text())
    assert report["minimization"] == {"dropped": ["name", "religion"], "kept": ["age", "chol", "num"]}
    assert report["goal"]["purpose"] == PURPOSE and report["goal"]["sha256"] == goal.digest
    assert report["columns"]["religion"] == {"action": "drop", "reason": "minimization", "suppressed_rows": 12}
    assert (report["columns_in"], report["columns_out"]) == (5, 3)
    assert result.report["columns"]["age"]["action"] == "generalize"


def test_cli_protect_applies_the_goal_beside_the_data(table: Path, tmp_path: Path) -> None:
    _goal(table).write(goal_path_for(table))
    out = tmp_path / "out.csv"
    args = ["data", "protect", str(table), "--out", str(out), "--k", "3", "--classes", CLASSES, "--json"]
    result = runner.invoke(app, args)  # the identifier is dropped by the goal: no key, no workspace needed
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["minimization"]["dropped"] == ["name", "religion"]
    assert "person 1" not in out.read_text()
    other = tmp_path / "other.goal.json"
    _goal(table, ("age", "num")).write(other)
    result = runner.invoke(app, [*args, "--goal", str(other)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["minimization"]["kept"] == ["age", "num"]
    stale = tmp_path / "stale.goal.json"
    stale.write_text(json.dumps(_goal(table).to_json() | {"columns": ["age", "bmi"]}))
    result = runner.invoke(app, [*args, "--goal", str(stale)])
    assert result.exit_code == BadInput.exit_code
    assert "patients.csv line 1, column 'bmi'" in _said(result.output)


# -- registration ----------------------------------------------------------------------------------------


class _Registry:
    """Just enough of DataRegistryClient to see what register_table sends."""

    address = "0x" + "ab" * 20

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def register_dataset(self, **fields: Any) -> int:
        self.sent.append(fields)
        return len(self.sent)


def test_registration_records_the_goal_and_refuses_what_it_does_not_cover(table: Path, tmp_path: Path) -> None:
    goal = _goal(table)
    out = tmp_path / "out.csv"
    protect_file(table, out, ProtectionPolicy(k=3), classes=_classes(), goal=goal, keys=ProtectionKeys())
    protected = pd.read_csv(out, dtype=str)
    registry = _Registry()
    registered = register_table(
        registry,  # type: ignore[arg-type]
        protected,
        purposes=[PURPOSE],
        classification={},
        policy={},
        goal=goal,
    )
    assert registered.goal_hash == goal.digest and registered.to_json()["goal_hash"] == goal.digest
    with pytest.raises(BadInput, match="is not among the purposes registered"):
        register_table(
            registry,  # type: ignore[arg-type]
            protected,
            purposes=["research:cardiology"],
            classification={},
            policy={},
            goal=goal,
        )
    raw = pd.read_csv(table, dtype=str)
    with pytest.raises(BadInput, match=r"column\(s\) 'name', 'religion' are not needed"):
        register_table(registry, raw, purposes=[PURPOSE], classification={}, policy={}, goal=goal)  # type: ignore[arg-type]
    assert len(registry.sent) == 1  # refused before sending
