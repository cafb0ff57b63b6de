"""``fedledger data protect``: policy, the protect pipeline, bad input, atomic output and the CLI."""

from __future__ import annotations

import json
import random
import re
import tempfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum import luhn as stdnum_luhn
from typer.testing import CliRunner

from fedledger.cli.app import app
from fedledger.data.anonymize import Tokenizer, pseudonymize
from fedledger.data.classify.model import ColumnClassifier
from fedledger.data.keys import org_data_key
from fedledger.data.policy import CLASSES as POLICY_CLASSES
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


# -- protection that cannot leak ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def classifier() -> ColumnClassifier:
    return ColumnClassifier.load()


def test_cli_protect_honours_a_label_the_classifier_would_overrule(tmp_path: Path, workspace: Path) -> None:
    """The issue's case: a column labelled identifier with `data label` was classified `other` by protect's own
    classifier run and published in clear."""
    rng = random.Random(3)
    badges = [f"{rng.choice('KLMN')}{rng.randint(10, 99)}/{rng.randint(1000, 9999)}" for _ in range(40)]
    table = tmp_path / "staff.csv"
    pd.DataFrame({"badge": badges, "visits": [str(i % 4) for i in range(40)]}).to_csv(table, index=False)
    labels = tmp_path / "labels.jsonl"
    runner = CliRunner()
    out = tmp_path / "out.csv"
    base = ["data", "protect", str(table), "--out", str(out), "--k", "2", "--json", "-w", str(workspace)]
    labelled = runner.invoke(app, ["data", "label", str(table), "badge", "identifier", "--labels", str(labels)])
    assert labelled.exit_code == 0, labelled.output
    result = runner.invoke(app, [*base, "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    badge = json.loads(result.stdout)["columns"]["badge"]
    assert (badge["class"], badge["class_source"], badge["action"]) == ("identifier", "label", "pseudonymize")
    written = out.read_text() + report_path_for(out).read_text()
    assert not [b for b in badges if b in written]


def test_cli_protect_never_publishes_the_issues_phone_number(tmp_path: Path, workspace: Path) -> None:
    table = tmp_path / "contacts.csv"
    pd.DataFrame({"contact": ["+1 617 555 1234"] * 6, "visits": ["1", "2", "3", "1", "2", "3"]}).to_csv(
        table, index=False
    )
    out = tmp_path / "out.csv"
    args = ["data", "protect", str(table), "--out", str(out), "--k", "2", "--json", "-w", str(workspace)]
    result = CliRunner().invoke(app, [*args, "--classes", "contact=other"])  # even when told it is `other`
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    contact = report["columns"]["contact"]
    assert (contact["class"], contact["class_source"], contact["action"]) == ("identifier", "validated", "pseudonymize")
    assert contact["validated"] == {"kind": "phone", "share": 1.0, "checked": 6}
    assert contact["overrides"] == "command line 'other'"
    assert any("overriding command line 'other'" in f for f in report["flags"])
    assert "617" not in out.read_text() and "617" not in report_path_for(out).read_text()


def test_an_explicit_keep_is_the_only_way_to_publish_an_identifier_and_it_is_flagged() -> None:
    frame = pd.DataFrame({"email": [f"u{i}@example.org" for i in range(6)], "n": ["1", "2"] * 3})
    policy = ProtectionPolicy.from_mapping({"k": 2, "columns": {"email": {"action": "keep"}}})
    result = protect_frame(frame, policy, classes=_classes("email=other,n=other"), keys=KEYS)
    assert result.frame["email"].tolist() == frame["email"].tolist()
    entry = result.report["columns"]["email"]
    assert entry["class"] == "identifier" and "not protected" in entry["warning"]
    assert any("identifier published with action 'keep'" in f for f in result.report["flags"])


def test_unsure_classifier_verdicts_take_the_protective_class_and_are_flagged() -> None:
    frame = pd.DataFrame({"state": ["MA", "NY", "CA", "TX"] * 3, "n": [str(i) for i in range(12)]})
    predictions = {
        "state": {"identifier": 0.02, "quasi_identifier": 0.30, "sensitive": 0.05, "other": 0.63},
        "n": {"identifier": 0.01, "quasi_identifier": 0.01, "sensitive": 0.01, "other": 0.97},
    }
    classes = resolve_classes(frame.columns, ProtectionPolicy(), predictions=predictions)
    result = protect_frame(frame, ProtectionPolicy(k=3), classes=classes, keys=KEYS)
    state, n = result.report["columns"]["state"], result.report["columns"]["n"]
    assert (state["class"], state["unsure"], state["classifier_class"], state["action"]) == (
        "quasi_identifier",
        True,
        "other",
        "generalize",
    )
    assert state["confidence"] == 0.63 and (n["class"], n["unsure"]) == ("other", False)
    assert result.report["flags"] == [
        "column 'state': the classifier is unsure (other at 63%, below 80%): treated as quasi_identifier; "
        "label it to decide"
    ]
    assert result.report["unsure_below"] == 0.8


def test_encodings_are_read_and_reported(tmp_path: Path) -> None:
    rows = [["name", "city", "age"]] + [[f"Zoë {i}", ["Köln", "Genève"][i % 2], str(30 + i)] for i in range(8)]
    utf16 = tmp_path / "export.txt"  # Excel's "Unicode text"
    utf16.write_bytes(b"\xff\xfe" + "".join("\t".join(r) + "\r\n" for r in rows).encode("utf-16-le"))
    cp1252 = tmp_path / "win.csv"
    cp1252.write_bytes("".join(",".join(r) + "\n" for r in rows).encode("cp1252"))
    classes = _classes("name=identifier,city=quasi_identifier,age=quasi_identifier")
    for path, encoding in ((utf16, "utf-16"), (cp1252, "cp1252")):
        out = tmp_path / f"{path.stem}.out.csv"
        result = protect_file(path, out, ProtectionPolicy(k=2), classes=classes, keys=KEYS)
        assert result.report["source"]["encoding"] == encoding
        assert set(result.frame["city"]) <= {"Köln", "Genève", "*"}
        assert "Zoë" not in out.read_text(encoding="utf-8")
    assert "not valid UTF-8" in result.report["source"]["note"]  # cp1252: decoded, and the report says how
    result = CliRunner().invoke(
        app,
        [
            "data",
            "protect",
            str(cp1252),
            "--out",
            str(tmp_path / "o.csv"),
            "--classes",
            "name=other,city=quasi_identifier,age=quasi_identifier",
            "--k",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "read" in result.output and "cp1252" in result.output and "not valid UTF-8" in " ".join(result.output.split())
    )


def test_value_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('name,age,code\na,30,"12\n34"\nb,thirty,5\nc,41,77\n')
    numeric = ProtectionPolicy.from_mapping({"k": 1, "columns": {"age": {"kind": "numeric"}}})
    classes = _classes("name=other,age=quasi_identifier,code=other")
    with pytest.raises(BadInput, match=rf"{re.escape(str(path))} line 4, column 'age': .* not a number"):
        protect_file(path, tmp_path / "o.csv", numeric, classes=classes, keys=KEYS)
    tokenize = ProtectionPolicy.from_mapping({"k": 1, "columns": {"code": {"action": "tokenize"}}})
    classes = _classes("name=other,age=other,code=identifier")
    with pytest.raises(BadInput, match=rf"{re.escape(str(path))} line 2, column 'code': .*cannot be tokenized"):
        protect_file(path, tmp_path / "o.csv", tokenize, classes=classes, keys=KEYS)
    assert not (tmp_path / "o.csv").exists()


def test_policy_errors_name_the_file_and_line(table: Path, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('k = 3\n\n[columns.zip]\nhierarchy = "prefix"\nclas = "quasi_identifier"\n')
    result = CliRunner().invoke(
        app, ["data", "protect", str(table), "--out", str(tmp_path / "o.csv"), "--policy", str(policy)]
    )
    said = " ".join(result.output.split())
    assert (
        result.exit_code == ConfigError.exit_code and "policy.toml line 5: [columns.zip]: unknown key(s) clas" in said
    )
    policy.write_text('k = 3\n[columns.ssn]\naction = "drop"\n')
    result = CliRunner().invoke(
        app, ["data", "protect", str(table), "--out", str(tmp_path / "o.csv"), "--policy", str(policy)]
    )
    assert "policy.toml line 2: policy names column(s) not in" in " ".join(result.output.split())
    assert not (tmp_path / "o.csv").exists()


# -- the property: no identifier value reaches the output or the report ---------------------------------------

_WORDS = ("flu", "cold", "asthma", "fever")


def _value(kind: str, j: int, n: int) -> str:
    if kind == "email":
        return f"user{j:02d}x{n}@example.org"
    if kind == "phone":
        return f"+1 617 555 {1000 + n % 9000:04d}"
    if kind == "iban":
        bban = f"WEST{n:014d}"
        return f"GB{stdnum_iban.calc_check_digits('GB00' + bban)}{bban}"
    if kind == "card":
        body = f"4{n:014d}"
        digits = body + stdnum_luhn.calc_check_digit(body)
        return " ".join(digits[i : i + 4] for i in range(0, 16, 4))
    if kind == "ssn":
        return f"{100 + n % 565:03d}-{10 + n % 89:02d}-{1000 + n % 8999:04d}"
    if kind == "badge":
        return f"K{j:02d}/{n % 100000:05d}"
    if kind == "category":
        return f"c{j:02d}x{_WORDS[n % len(_WORDS)]}"
    return str((j + 1) * 10**7 + n % 10**6)  # "number"


VALIDATED_KINDS = ("email", "phone", "iban", "card", "ssn")
KINDS = (*VALIDATED_KINDS, "badge", "category", "number")


@st.composite
def _tables(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, str], dict[str, str], str]:
    rows = draw(st.integers(6, 16))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=5))
    data: dict[str, list[str | None]] = {}
    labels: dict[str, str] = {}
    kind_of: dict[str, str] = {}
    for j, kind in enumerate(kinds):
        header = draw(st.sampled_from([f"col_{j}", f"{kind}_{j}", f"field {j}"]))
        numbers = draw(st.lists(st.integers(0, 10**9), min_size=rows, max_size=rows))
        missing = draw(st.lists(st.booleans(), min_size=rows, max_size=rows))
        values: list[str | None] = [_value(kind, j, n) for n in numbers]
        # Missing values, but never a whole column: a column with no values has nothing to leak.
        data[header] = [None if gone and i else v for i, (v, gone) in enumerate(zip(values, missing, strict=True))]
        kind_of[header] = kind
        label = "identifier" if kind == "badge" else draw(st.sampled_from([None, *POLICY_CLASSES]))
        if label is not None:
            labels[header] = label
    action = draw(st.sampled_from(["pseudonymize", "tokenize", "drop"]))
    return pd.DataFrame(data), labels, kind_of, action


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=_tables())
def test_no_identifier_value_appears_in_the_output_or_the_report(
    case: tuple[pd.DataFrame, dict[str, str], dict[str, str], str], classifier: ColumnClassifier
) -> None:
    frame, labels, kind_of, action = case
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "in.csv", Path(tmp) / "out.csv"
        frame.to_csv(path, index=False)
        policy = ProtectionPolicy.from_mapping({"k": 2, "identifier_action": action})
        result = protect_file(path, out, policy, labels=labels, classifier=classifier, keys=KEYS)
        published = out.read_text(encoding="utf-8") + report_path_for(out).read_text(encoding="utf-8")
    columns = result.report["columns"]
    identifiers = {
        name
        for name, kind in kind_of.items()
        if kind in VALIDATED_KINDS or labels.get(name) == "identifier" or columns[name]["class"] == "identifier"
    }
    for name in identifiers:
        assert columns[name]["class"] == "identifier", (name, columns[name])
        assert columns[name]["action"] == action
        leaked = [v for v in frame[name].dropna() if v in published]
        assert not leaked, (name, kind_of[name], leaked[:3])
    for name, label in labels.items():  # a label is never overruled, except to make a column an identifier
        assert columns[name]["class"] == label or columns[name]["class_source"] == "validated"
