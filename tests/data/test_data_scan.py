"""fedledger data scan / label: column classification on files the model never saw, evidence, bad input, learning."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from faker import Faker
from typer.testing import CliRunner

from fedledger.cli.app import app
from fedledger.data.classify import CLASSES, ColumnClassifier, LabelStore, profile_table, scan_table
from fedledger.data.classify.features import table_features
from fedledger.data.classify.scan import UNSURE_BELOW, decide, profile_frame, protective_class
from fedledger.data.classify.validators import (
    VALIDATED_SHARE,
    is_card_number,
    is_iban,
    is_national_id,
    luhn_valid,
    validated_identifier,
)
from fedledger.data.tabular import read_table, write_table
from fedledger.exceptions import BadInput, ConfigError

runner = CliRunner()


def _said(output: str) -> str:
    return " ".join(output.split())  # rich wraps long lines


@pytest.fixture(scope="module")
def classifier() -> ColumnClassifier:
    return ColumnClassifier.load()


def _people(rows: int, locale: str = "it_IT", seed: int = 7) -> pd.DataFrame:
    """A table in a locale and header style (Title Case) the shipped corpus holds out."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(seed)
    return pd.DataFrame(
        {
            "Email Address": [fake.email() for _ in range(rows)],
            "Credit Card": [fake.credit_card_number() for _ in range(rows)],
            "Data Di Nascita": [fake.date_of_birth().isoformat() for _ in range(rows)],
            "Diagnosi": [rng.choice("ABCEIJK") + f"{rng.randint(0, 99):02d}.{rng.randint(0, 9)}" for _ in range(rows)],
            "Quantity": [str(rng.randint(1, 9)) for _ in range(rows)],
        }
    )


def test_obvious_columns_of_a_heldout_file(tmp_path: Path, classifier: ColumnClassifier) -> None:
    path = write_table(_people(300), tmp_path / "clienti.csv")
    report = scan_table(path, classifier=classifier)
    by_name = {c.name: c for c in report.columns}
    assert by_name["Email Address"].label == "identifier"
    assert by_name["Credit Card"].label == "identifier"
    assert by_name["Data Di Nascita"].label == "quasi_identifier"
    assert by_name["Diagnosi"].label == "sensitive"
    assert by_name["Quantity"].label == "other"
    for column in report.columns:
        assert 0.25 < column.confidence <= 1.0
        assert abs(sum(column.probabilities.values()) - 1.0) < 1e-3
        assert column.evidence
    assert report.rows == 300 and report.sampled_rows == 300


def test_evidence_names_what_drove_the_decision(tmp_path: Path, classifier: ColumnClassifier) -> None:
    frame = _people(200)
    frame.columns = [f"col_{i}" for i in range(len(frame.columns))]  # meaningless headers: values must speak
    report = scan_table(write_table(frame, tmp_path / "anon.csv"), classifier=classifier)
    email, card = report.columns[0], report.columns[1]
    assert email.label == "identifier" and card.label == "identifier"
    assert any("of values are valid email addresses" in e for e in email.evidence), email.evidence
    assert any("Luhn-valid" in e for e in card.evidence), card.evidence


def test_header_evidence(tmp_path: Path, classifier: ColumnClassifier) -> None:
    frame = pd.DataFrame({"SSN": [f"{random.Random(i).randint(100, 899)}-{i % 90 + 10}-{1000 + i}" for i in range(80)]})
    report = scan_table(write_table(frame, tmp_path / "s.csv"), classifier=classifier)
    assert report.columns[0].label == "identifier"
    assert "header matches 'ssn'" in report.columns[0].evidence


def test_all_null_column_and_header_only_file(tmp_path: Path, classifier: ColumnClassifier) -> None:
    path = tmp_path / "nulls.csv"
    path.write_text("email,notes\n" + "a@example.com,\n" * 30)
    report = scan_table(path, classifier=classifier)
    notes = report.columns[1]
    assert notes.nulls == 30 and notes.null_ratio == 1.0
    assert "all 30 values are empty" in notes.evidence and 0 < notes.confidence <= 1
    header_only = tmp_path / "h.csv"
    header_only.write_text("email,age\n")
    report = scan_table(header_only, classifier=classifier)
    assert report.rows == 0 and report.sampled_rows == 0
    assert all("header only: the file has no rows" in c.evidence for c in report.columns)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"a,b\n1,2\n3,4,5\n", "malformed CSV: line 3")],
)
def test_bad_files_raise_bad_input(tmp_path: Path, content: bytes, message: str, classifier: ColumnClassifier) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(BadInput, match=message):
        scan_table(path, classifier=classifier)


def test_cp1252_file_is_scanned_with_a_note(tmp_path: Path, classifier: ColumnClassifier) -> None:
    path = tmp_path / "win.csv"
    names = ["José García", "François Müller", "Zoë Dupré", "Jürgen Bähr"] * 10
    path.write_bytes(("nombre,edad\n" + "".join(f"{n},{30 + i}\n" for i, n in enumerate(names))).encode("cp1252"))
    report = scan_table(path, classifier=classifier)
    assert report.source.encoding == "cp1252" and "not valid UTF-8" in report.source.note
    assert report.to_json()["note"] == report.source.note
    assert report.columns[0].label == "identifier"


def test_parquet_is_scanned(tmp_path: Path, classifier: ColumnClassifier) -> None:
    path = write_table(_people(120), tmp_path / "p.parquet")
    report = scan_table(path, classifier=classifier)
    assert report.source.format == "parquet"
    assert {c.name: c.label for c in report.columns}["Email Address"] == "identifier"


def test_streaming_counts_every_row_and_samples_uniformly(tmp_path: Path) -> None:
    rows = 25_000
    path = tmp_path / "big.csv"
    path.write_text("i,maybe\n" + "".join(f"{i},{'' if i % 4 == 0 else 'x'}\n" for i in range(rows)))
    table = profile_table(path, batch_rows=1_000, sample_rows=500)
    assert table.rows == rows and table.sampled_rows == 500
    assert table.columns[1].nulls == rows // 4
    sample = sorted(int(v) for v in table.columns[0].sample)
    assert len(set(sample)) == 500
    # A uniform sample over the whole file, not the first batch: both halves are represented.
    assert sum(v >= rows // 2 for v in sample) > 150 and sum(v < rows // 2 for v in sample) > 150


def test_label_then_retrain_fixes_a_similar_column(tmp_path: Path) -> None:
    rng = random.Random(3)

    def badges(n: int) -> list[str]:  # an in-house staff badge code: identifying, but unknown to the corpus
        return [f"{rng.choice('KLMN')}{rng.randint(10, 99)}/{rng.randint(1000, 9999)}" for _ in range(n)]

    first = write_table(pd.DataFrame({"badge": badges(150), "qty": ["1"] * 150}), tmp_path / "a.csv")
    second = write_table(pd.DataFrame({"badge": badges(120), "qty": ["2"] * 120}), tmp_path / "b.csv")
    store = LabelStore(tmp_path / "labels.jsonl")
    before = scan_table(second, classifier=ColumnClassifier.load()).columns[0]
    assert before.label != "identifier"  # the premise: the shipped model gets it wrong
    result = runner.invoke(app, ["data", "label", str(first), "badge", "identifier", "--labels", str(store.path)])
    assert result.exit_code == 0, result.output
    pairs, stale = store.training_pairs()
    assert len(pairs) == 1 and stale == 0 and pairs[0][1] == "identifier"
    # The label keeps the column's features in its table's context, as a scan computes them.
    profiles = profile_table(first).columns
    np.testing.assert_allclose(pairs[0][0], table_features(profiles)[0])
    result = runner.invoke(app, ["data", "scan", str(second), "--labels", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    after = json.loads(result.stdout)
    assert after["model"]["org_labels"] == 1
    assert after["columns"][0]["class"] == "identifier"


def test_cli_scan_json_shape(tmp_path: Path) -> None:
    path = write_table(_people(60), tmp_path / "t.csv")
    result = runner.invoke(app, ["data", "scan", str(path), "--json", "--workspace", str(tmp_path / "none")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["complete"] is True and out["rows"] == 60 and out["sampled_rows"] == 60 and out["format"] == "csv"
    assert [c["name"] for c in out["columns"]] == list(_people(1).columns)
    for column in out["columns"]:
        assert set(column) >= {
            "name",
            "class",
            "class_source",
            "unsure",
            "classifier_class",
            "confidence",
            "probabilities",
            "evidence",
            "nulls",
            "null_ratio",
        }
        assert column["class"] in CLASSES and set(column["probabilities"]) == set(CLASSES)
        assert column["classifier_class"] in CLASSES and column["class_source"] in ("classifier", "validated")
        assert column["evidence"] and 0 < column["confidence"] <= 1
    assert out["unsure_below"] == UNSURE_BELOW and isinstance(out["flags"], list)


def test_cli_bad_input_exit_codes(tmp_path: Path) -> None:
    empty = tmp_path / "e.csv"
    empty.write_text("")
    result = runner.invoke(app, ["data", "scan", str(empty)])
    assert result.exit_code == 2 and "file is empty" in _said(result.output)
    result = runner.invoke(app, ["data", "label", str(empty), "x", "secret", "--labels", str(tmp_path / "l")])
    assert result.exit_code == 2 and "unknown class" in _said(result.output)
    ok = write_table(pd.DataFrame({"a": ["1"]}), tmp_path / "ok.csv")
    result = runner.invoke(app, ["data", "label", str(ok), "a", "other", "--workspace", str(tmp_path / "nows")])
    assert result.exit_code == 2 and "no fedledger workspace" in _said(result.output)
    result = runner.invoke(app, ["data", "label", str(ok), "zz", "other", "--labels", str(tmp_path / "l")])
    assert result.exit_code == 2 and "no column" in _said(result.output)


def test_validators() -> None:
    assert luhn_valid("79927398713") and not luhn_valid("79927398710")
    assert is_card_number("4111 1111 1111 1111") and not is_card_number("4111 1111 1111 1112")
    assert is_iban("GB82 WEST 1234 5698 7654 32") and not is_iban("GB82 WEST 1234 5698 7654 33")
    assert is_national_id("123-45-6789") and is_national_id("111.444.777-35") and not is_national_id("111.444.777-36")
    # stdnum's scheme checks: SSN areas 666 and 9xx are never issued; check letters and digits must match.
    assert not is_national_id("666-12-3456") and not is_national_id("900-12-3456")
    assert is_national_id("12345678Z") and not is_national_id("12345678A")  # Spanish DNI
    assert is_national_id("36574261809") and not is_national_id("36574261808")  # German IdNr
    assert is_national_id("295109912611193") and not is_national_id("295109912611192")  # French NIR
    assert is_national_id("RCCMNL83S18D969H") and not is_national_id("RCCMNL83S18D969A")  # codice fiscale
    assert is_national_id("131052-308T") and not is_national_id("131052-308U")  # Finnish HETU
    assert not is_national_id("123.456.789")  # nine digits written as a number are not a BSN


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (["+1 617 555 1234"], "phone"),  # the phone number, alone in its column
        (["+1 617 555 1234", "(617) 555-0199", "+44 20 7946 0958", ""], "phone"),
        (["jane@example.org", "x@y.de", "not an email"], "email"),
        (["DE89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32"], "iban"),
        (["4111 1111 1111 1111", "5500-0000-0000-0004"], "card"),
        (["078-05-1121", "219-09-9999", "536-90-4399"], "national_id"),
    ],
)
def test_validated_identifier_columns(values: list[str], kind: str) -> None:
    found = validated_identifier(values)
    assert found is not None and found.kind == kind and found.share >= VALIDATED_SHARE
    assert "checked values are" in found.describe()


@pytest.mark.parametrize(
    "values",
    [
        [str(n) for n in range(1_000_000, 1_000_500)],  # counts and ids: digits with no phone formatting
        [f"{n * 1.37:.2f}" for n in range(500)],  # amounts
        ["2023-01-15", "2024-12-31", "1999-07-04"],  # dates look like dashed digits
        ["1.234.567", "2.345.678"],  # thousands separators
        [str(10**10 + 7919 * n) for n in range(400)],  # 11-digit numbers: check digits pass about 1 in 10
        ["4111 1111 1111 1112", "12345", "hello"],
    ],
)
def test_ordinary_columns_are_not_identifiers(values: list[str]) -> None:
    assert validated_identifier(values) is None


# -- deciding a column's class: labels, validated identifiers, unsure verdicts ---------------------------------


def test_protective_class_takes_the_most_protective_likely_class() -> None:
    assert protective_class({"identifier": 0.02, "quasi_identifier": 0.03, "sensitive": 0.05, "other": 0.9}) == (
        "other",
        False,
    )
    # The phone number: `other` at 58 %, identifier second -> identifier, flagged.
    assert protective_class({"identifier": 0.3, "quasi_identifier": 0.07, "sensitive": 0.05, "other": 0.58}) == (
        "identifier",
        True,
    )
    assert protective_class({"identifier": 0.01, "quasi_identifier": 0.3, "sensitive": 0.06, "other": 0.63}) == (
        "quasi_identifier",
        True,
    )
    # Unsure but already the most protective candidate: same class, still flagged.
    assert protective_class({"identifier": 0.01, "quasi_identifier": 0.7, "sensitive": 0.2, "other": 0.09}) == (
        "quasi_identifier",
        True,
    )


def test_decide_precedence() -> None:
    phones = validated_identifier(["+1 617 555 1234"])
    unsure = {"identifier": 0.3, "quasi_identifier": 0.07, "sensitive": 0.05, "other": 0.58}
    assert decide(declared=("sensitive", "label"), probabilities=unsure).column_class == "sensitive"
    by_classifier = decide(probabilities=unsure)
    assert (by_classifier.column_class, by_classifier.unsure, by_classifier.classifier_class) == (
        "identifier",
        True,
        "other",
    )
    assert "unsure" in (by_classifier.flag("phone") or "")
    overridden = decide(declared=("other", "label"), validated=phones)
    assert (overridden.column_class, overridden.source) == ("identifier", "validated")
    assert overridden.overrides == "label 'other'" and "overriding label 'other'" in (overridden.flag("p") or "")
    with pytest.raises(ConfigError, match="unknown class 'secret' from label"):
        decide(declared=("secret", "label"))


def test_phone_numbers_are_identifiers_whatever_the_model_says(tmp_path: Path, classifier: ColumnClassifier) -> None:
    rng = random.Random(1)
    frame = pd.DataFrame(
        {"phone": [f"+1 617 555 {rng.randint(1000, 9999)}" for _ in range(200)], "visits": ["1"] * 200}
    )
    report = scan_table(write_table(frame, tmp_path / "p.csv"), classifier=classifier)
    phone = report.columns[0]
    assert phone.decision is not None and phone.decision.column_class == "identifier"
    assert phone.decision.validated is not None and phone.decision.validated.kind == "phone"
    document = report.to_json()
    assert document["columns"][0]["class"] == "identifier"
    assert document["columns"][0]["validated"]["kind"] == "phone"


def test_profile_frame_samples_what_profile_table_samples(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("i,maybe\n" + "".join(f"{i},{'' if i % 4 == 0 else 'x'}\n" for i in range(5_000)))
    from_file = profile_table(path, batch_rows=700, sample_rows=300).columns
    from_frame = profile_frame(read_table(path, as_text=True), batch_rows=700, sample_rows=300)
    assert [(p.name, p.rows, p.nulls, p.sample) for p in from_file] == [
        (p.name, p.rows, p.nulls, p.sample) for p in from_frame
    ]


def test_cli_scan_honours_labels_writes_scan_json_and_reports_utf16(tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = [["badge", "phone", "qty"]] + [
        [f"{rng.choice('KLMN')}{rng.randint(10, 99)}/{rng.randint(1000, 9999)}", f"+44 20 7946 0{i:03d}", str(i % 3)]
        for i in range(120)
    ]
    path = tmp_path / "export.txt"  # Excel's "Unicode text": UTF-16 with a BOM, tab-separated
    path.write_bytes(b"\xff\xfe" + "".join("\t".join(r) + "\r\n" for r in rows).encode("utf-16-le"))
    labels = tmp_path / "labels.jsonl"
    result = runner.invoke(app, ["data", "label", str(path), "badge", "identifier", "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "scan.json"
    result = runner.invoke(app, ["data", "scan", str(path), "--labels", str(labels), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "utf-16" in result.output
    document = json.loads(out.read_text())
    assert document["encoding"] == "utf-16" and document["delimiter"] == "\t"
    columns = {c["name"]: c for c in document["columns"]}
    assert (columns["badge"]["class"], columns["badge"]["class_source"]) == ("identifier", "label")
    assert (columns["phone"]["class"], columns["phone"]["validated"]["kind"]) == ("identifier", "phone")
    assert not list(tmp_path.glob(".*.tmp"))


def test_labels_file_with_an_unknown_class_is_an_error_naming_line_and_column(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    store = LabelStore(labels)
    table = write_table(pd.DataFrame({"a": ["1", "2"]}), tmp_path / "t.csv")
    result = runner.invoke(app, ["data", "label", str(table), "a", "other", "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    record = json.loads(labels.read_text().splitlines()[0])
    labels.write_text(labels.read_text() + json.dumps({**record, "label": "secret"}) + "\n")
    with pytest.raises(ConfigError, match=r"labels\.jsonl line 2, column 'a': unknown class 'secret'"):
        store.labels_for(table)
    result = runner.invoke(app, ["data", "scan", str(table), "--labels", str(labels)])
    assert result.exit_code == ConfigError.exit_code and "unknown class 'secret'" in _said(result.output)
    labels.write_text(json.dumps({**record, "colour": "blue"}) + "\n")
    with pytest.raises(ConfigError, match="line 1: not a label record"):
        store.entries()
