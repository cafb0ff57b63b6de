"""The data lifecycle before training: ``fedledger data cleanse``, ``prepare`` and ``insights``, and raw UCI
heart-disease files through cleanse, prepare and training with no manual step.

Every command runs through the real CLI entry point on files with the warts real exports have: duplicates,
missing markers of every kind, thousands separators and decimal commas, booleans as words, UTF-16. The heart-disease
test reads ../shared/data beside the checkout and skips when it is absent.
"""

from __future__ import annotations

import codecs
import json
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import REPO, SHARED_DATA
from fedledger.data.cleanse import CleanseRules, cleanse
from fedledger.data.commitment import document_hash
from fedledger.data.prepare import Recipe
from fedledger.exceptions import BadInput, ConfigError
from helpers.cli import cli_refused, fedledger

HEART = SHARED_DATA / "heart-disease"
HEART_RECIPE = REPO / "examples" / "heart-disease" / "recipe.toml"
needs_heart = pytest.mark.skipif(not HEART.is_dir(), reason="shared heart-disease data not present")

# Comma-separated, UTF-8: whitespace, thousands separators, booleans as words, every kind of missing marker,
# an invalid number, a duplicate row (line 8 repeats line 3 once repaired).
WARTY = """\
patient,age,income,smoker,city,score
P-001, 34 ,"1,234.5",yes,Boston,7
P-002,41,"2,000",No,Boston,NA
P-003,n/a,950.25,TRUE,Chicago,
P-004,57,"12,5",y,Chicago,8
P-005,abc,300,false,Boston,?
P-006,62,"1,000,000",n,Denver,9
P-002,41,"2,000",no,Boston,null
"""

# The same kind of table as Excel's "Unicode text" writes it: UTF-16 with a BOM, tab-separated, decimal commas.
EUROPEAN = (
    "id\tweight\theight\tactive\n"
    "1\t72,5\t1.801,0\tja\n"  # "ja" is not a boolean word: the column stays text
    "2\t80\t1.750,5\tnein\n"
    "3\t65,25\t1.620\tja\n"
    "3\t65,25\t1.620\tja\n"
)


def run(*args: Any) -> Any:
    return fedledger(*args)


def ok(*args: Any) -> Any:
    result = fedledger(*args, "--json")
    assert result.code == 0, result.message
    return result.json()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# ------------------------------------------------------------------------------------------------ cleanse


def test_cleanse_repairs_a_warty_table(tmp_path: Path) -> None:
    raw = tmp_path / "patients.csv"
    raw.write_text(WARTY, encoding="utf-8")
    out = tmp_path / "clean.csv"
    # One word among six ages is more than an inferred numeric column may hold (5 %): the rules say it is numeric.
    rules = tmp_path / "rules.toml"
    rules.write_text('[cleanse.columns.age]\ntype = "numeric"\n')
    report = ok("data", "cleanse", raw, "--out", out, "--recipe", rules)
    assert report["rows_read"] == 7 and report["rows_written"] == 6 and report["encoding"] == "utf-8"
    assert report["duplicates"] == {"policy": "drop", "removed": 1, "examples": [{"line": 8, "same_as_line": 3}]}
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "patient,age,income,smoker,city,score"
    assert lines[1:] == [
        "P-001,34,1234.5,1,Boston,7",
        "P-002,41,2000,0,Boston,",
        "P-003,,950.25,1,Chicago,",
        "P-004,57,12.5,1,Chicago,8",
        "P-005,,300,0,Boston,",
        "P-006,62,1000000,0,Denver,9",
    ]
    columns = report["columns"]
    assert columns["age"]["type"] == "numeric" and columns["age"]["type_from"] == "cleanse rules"
    assert columns["income"]["type"] == "numeric" and columns["income"]["type_from"] == "inferred"
    assert columns["age"]["repaired"] == {"whitespace": 1}
    assert columns["age"]["to_missing"] == {"unified": 1, "invalid": 1}
    assert columns["income"]["repaired"] == {"decimal_comma": 1, "thousands_separator": 4}
    assert columns["smoker"]["type"] == "boolean" and columns["smoker"]["repaired"] == {"boolean": 7}
    assert columns["score"]["to_missing"] == {"unified": 3} and columns["score"]["missing_after"] == 4
    assert columns["patient"]["type"] == "text" and columns["patient"]["changed"] == 0
    # Examples show shapes, never values: no patient id, no number as written.
    text = json.dumps(report)
    assert "P-00" not in text and "1,234.5" not in text and "9,999.9" in text
    assert json.loads((tmp_path / "clean.csv.report.json").read_text()) == {
        k: v for k, v in report.items() if k != "report"
    }


def test_cleanse_reads_utf16_with_decimal_commas(tmp_path: Path) -> None:
    raw = tmp_path / "export.txt"
    raw.write_bytes(codecs.BOM_UTF16_LE + EUROPEAN.encode("utf-16-le"))
    out = tmp_path / "clean.csv"
    report = ok("data", "cleanse", raw, "--out", out, "--report", tmp_path / "r.json")
    assert report["encoding"] == "utf-16" and report["delimiter"] == "\t"
    assert report["columns"]["weight"]["decimal_mark"] == ","
    assert report["columns"]["height"]["repaired"] == {"thousands_separator": 4}
    assert report["columns"]["active"]["type"] == "text"
    assert report["duplicates"]["removed"] == 1
    assert out.read_text(encoding="utf-8").splitlines() == [
        "id\tweight\theight\tactive",
        "1\t72.5\t1801.0\tja",
        "2\t80\t1750.5\tnein",
        "3\t65.25\t1620\tja",
    ]


RULES_RECIPE = """\
header = true
missing = ["?"]
statistics = "local"
columns = [
    { name = "age", kind = "numeric", impute = "mean" },
    { name = "sex", kind = "categorical", categories = ["female", "male"], impute = "most_frequent" },
    { name = "city", kind = "categorical", categories = ["Boston", "Chicago"], unknown = "ignore" },
    "outcome",
]
[label]
column = "outcome"
positive = ["sick"]
[cleanse]
invalid = "%s"
[cleanse.columns.age]
range = [0, 120]
"""

RULES_TABLE = """\
age,sex,city,outcome
34,Female,Boston,sick
250,MALE,Denver,well
41,  male ,Chicago,sick
x,robot,Boston,well
"""


def test_cleanse_rules_in_the_recipe_drive_both_steps(tmp_path: Path) -> None:
    raw = tmp_path / "t.csv"
    raw.write_text(RULES_TABLE)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RULES_RECIPE % "missing")
    out = tmp_path / "clean.csv"
    report = ok("data", "cleanse", raw, "--recipe", recipe, "--out", out)
    assert report["recipe_hash"] == Recipe.load(recipe).hash()
    age, sex, city = (report["columns"][c] for c in ("age", "sex", "city"))
    assert age["type_from"] == "recipe" and age["range"] == [0, 120]
    assert age["to_missing"] == {"out_of_range": 1, "invalid": 1}
    assert sex["repaired"] == {"category_spelling": 2, "whitespace": 1}
    assert sex["to_missing"] == {"invalid": 1}
    assert city["changed"] == 0  # unknown = "ignore": Denver is kept for preparation to encode as all zeros
    assert out.read_text().splitlines()[1:] == [
        "34,female,Boston,sick",
        "?,male,Denver,well",
        "41,male,Chicago,sick",
        "?,?,Boston,well",
    ]
    prepared = ok("data", "prepare", out, "--recipe", recipe, "--out", tmp_path / "train.csv")
    assert prepared["preparation"]["imputed"] == {"age": 2, "sex": 1}
    assert prepared["recipe_hash"] == report["recipe_hash"]

    # invalid = "error": the first bad value stops the run, names file, line and column, and writes nothing.
    recipe.write_text(RULES_RECIPE % "error")
    strict_out = tmp_path / "strict.csv"
    message = cli_refused("data", "cleanse", raw, "--recipe", recipe, "--out", strict_out)
    assert f"{raw} line 3, column age: '250' is outside the range [0, 120]" in message
    assert "(and problems in 1 more column)" in message
    assert not strict_out.exists() and not (tmp_path / "strict.csv.report.json").exists()
    assert leftovers(tmp_path) == []


def test_cleanse_rules_are_part_of_the_recipe_and_its_hash() -> None:
    base = tomllib.loads(HEART_RECIPE.read_text())
    plain = Recipe.from_dict(base)
    with_rules = Recipe.from_dict({**base, "cleanse": {"columns": {"age": {"range": [0, 120]}}}})
    assert plain.cleanse is None and "cleanse" not in plain.to_dict()
    assert with_rules.cleanse is not None and with_rules.hash() != plain.hash()
    assert Recipe.from_dict(with_rules.to_dict()) == with_rules  # the canonical form reads back
    assert with_rules.to_dict()["cleanse"] == {
        "columns": {"age": {"range": [0, 120]}},
        "decimal": "auto",
        "duplicates": "drop",
        "invalid": "missing",
        "missing": ["", "?", "NA", "N/A", "NaN", "null", "#N/A"],
    }
    bad = {
        "cleanse.colums": {"colums": {}},
        "cleanse.columns.weight: not a column of the recipe": {"columns": {"weight": {"range": [0, 1]}}},
        "cleanse.columns.cp.range: needs a numeric column": {"columns": {"cp": {"range": [0, 1]}}},
        "cleanse.columns.age.type: not allowed for a feature column": {"columns": {"age": {"type": "text"}}},
        "cleanse.columns.age.range: low 9 is above high 1": {"columns": {"age": {"range": [9, 1]}}},
        "cleanse.invalid: expected one of missing, error": {"invalid": "drop"},
    }
    for message, rules in bad.items():
        with pytest.raises(ConfigError, match=f"^preparation.{message}"):
            Recipe.from_dict({**base, "cleanse": rules})


def test_cleanse_errors_name_file_line_and_column(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n\n4,5\n")
    with pytest.raises(BadInput, match=rf"^{ragged} line 4, column c: missing \(the line has 2 columns"):
        cleanse(ragged)
    ragged.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(BadInput, match=rf"^{ragged} line 1, column d: named in the cleanse rules"):
        cleanse(ragged, rules=CleanseRules.from_dict({"columns": {"d": {"type": "numeric"}}}))
    boolean = tmp_path / "b.csv"
    boolean.write_text("flag\nyes\nno\nmaybe\n")
    rules = CleanseRules.from_dict({"invalid": "error", "columns": {"flag": {"type": "boolean"}}})
    with pytest.raises(BadInput, match=rf"^{boolean} line 4, column flag: 'maybe' is not a boolean"):
        cleanse(boolean, rules=rules)
    # The heart files have no header: the recipe names the columns, and a short line names the one missing.
    short = tmp_path / "short.data"
    short.write_text("63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n67,1,4,160,286,0,2,108,1,1.5,2,3\n")
    message = cli_refused("data", "cleanse", short, "--recipe", HEART_RECIPE, "--out", tmp_path / "o.csv")
    assert f"{short} line 2, column thal: missing (the line has 12 columns, expected 14)" in message
    assert not (tmp_path / "o.csv").exists() and leftovers(tmp_path) == []


def test_a_failed_run_keeps_an_earlier_output(tmp_path: Path) -> None:
    raw = tmp_path / "t.csv"
    raw.write_text("a,b\n1,2\n")
    out = tmp_path / "out.csv"
    ok("data", "cleanse", raw, "--out", out)
    before = out.read_bytes(), (tmp_path / "out.csv.report.json").read_bytes()
    raw.write_text("a,b\n1,2\n3\n")
    assert "line 3, column b: missing" in cli_refused("data", "cleanse", raw, "--out", out)
    assert (out.read_bytes(), (tmp_path / "out.csv.report.json").read_bytes()) == before
    assert "would overwrite the input" in cli_refused("data", "cleanse", raw, "--out", raw)
    raw.write_text("a,b\n1,2\n")
    assert f"{tmp_path / 'no' / 'out.csv'}: cannot write" in cli_refused(
        "data", "cleanse", raw, "--out", tmp_path / "no" / "out.csv"
    )
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------------------------ prepare

SMALL_RECIPE = """\
header = true
statistics = "consortium"
missing = ["", "?"]
drop = ["noise"]
columns = [
    { name = "age", kind = "numeric", impute = "mean", scale = "standard" },
    { name = "noise", kind = "numeric" },
    { name = "cp", kind = "categorical", categories = [1, 2], impute = "most_frequent" },
    "y",
]
[label]
column = "y"
positive = "> 0"
"""


def test_prepare_writes_the_training_table_with_the_committed_hash(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(SMALL_RECIPE)
    table = tmp_path / "t.csv"
    table.write_text("age,noise,cp,y\n30,x,1,0\n50,y,2,1\n,z,?,1\n40,w,2,\n")
    parsed = Recipe.load(recipe)
    assert parsed.feature_names == ("age", "cp=1", "cp=2")  # drop: noise is read past (even its non-numbers)
    assert parsed.skip_columns == ("noise",)

    # Without statistics the consortium recipe refuses, and says how to give them.
    message = cli_refused("data", "prepare", table, "--recipe", recipe, "--out", tmp_path / "x.csv")
    assert "give --stats local" in message and not (tmp_path / "x.csv").exists()

    out = tmp_path / "train.csv"
    report = ok("data", "prepare", table, "--recipe", recipe, "--out", out, "--stats", "local")
    assert report["recipe_hash"] == parsed.hash() and report["prepared_with_hash"] != parsed.hash()
    assert report["stats_from"] == "local" and report["label_column"] == "y"
    assert report["preparation"]["rows_dropped"] == {"missing label": 1}
    assert report["preparation"]["imputed"] == {"age": 1, "cp": 1}
    lines = out.read_text().splitlines()
    assert lines[0] == "age,cp=1,cp=2,y"
    rows = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert rows.shape == (3, 4) and rows[:, 3].tolist() == [0, 1, 1]
    assert rows[:, 0].tolist() == [-1.0, 1.0, 0.0]  # ages 30 and 50 (the dropped row's 40 does not count)

    # The same table as UTF-16 with CRLF line ends prepares to the same bytes.
    wide = tmp_path / "wide.csv"
    wide.write_bytes(codecs.BOM_UTF16_LE + table.read_text().replace("\n", "\r\n").encode("utf-16-le"))
    ok("data", "prepare", wide, "--recipe", recipe, "--out", tmp_path / "wide.train.csv", "--stats", "local")
    assert (tmp_path / "wide.train.csv").read_bytes() == out.read_bytes()

    # Agreed statistics from elsewhere: a per-column table, or the consortium's summed vector.
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"stats": {"age": {"mean": 40.0, "std": 5.0}, "cp": {"most_frequent": 2}}}))
    report = ok("data", "prepare", table, "--recipe", recipe, "--out", out, "--stats", stats)
    assert report["stats_from"] == str(stats)
    assert out.read_text().splitlines()[1] == "-2.0,1.0,0.0,0"
    vector = tmp_path / "vector.json"
    ok("data", "prepare", table, "--recipe", recipe, "--stats-out", vector)
    doc = json.loads(vector.read_text())
    assert doc["recipe"] == parsed.hash() and doc["layout"][0] == ["age", "count"] and doc["sum"][:2] == [2, 80]
    report = ok("data", "prepare", table, "--recipe", recipe, "--out", out, "--stats", vector)
    assert out.read_text().splitlines()[1].startswith("-1.0,")  # mean 40 and std 10 from the two ages
    stats.write_text(json.dumps({"recipe": "0" * 64, "stats": {}}))
    assert "made for recipe 000" in cli_refused(
        "data", "prepare", table, "--recipe", recipe, "--out", out, "--stats", stats
    )

    # A bad value names file, line and column, and nothing is written.
    table.write_text("age,noise,cp,y\n30,x,1,0\n50,y,3,1\n")
    fresh = tmp_path / "fresh.csv"
    message = cli_refused("data", "prepare", table, "--recipe", recipe, "--out", fresh, "--stats", "local")
    assert "t.csv line 3, column cp: '3' is not one of the categories (1, 2)" in message
    assert not fresh.exists() and not (tmp_path / "fresh.csv.report.json").exists() and leftovers(tmp_path) == []


def test_select_and_drop_choose_the_features() -> None:
    base = tomllib.loads(HEART_RECIPE.read_text())
    selected = Recipe.from_dict({**base, "select": ["age", "cp", "thal"]})
    assert selected.feature_names == ("age", "cp=1", "cp=2", "cp=3", "cp=4", "thal=3", "thal=6", "thal=7")
    others = [f.name for f in Recipe.from_dict(base).features if f.name not in ("age", "cp", "thal")]
    dropped = Recipe.from_dict({**base, "drop": others})
    assert dropped == selected and dropped.hash() == selected.hash()
    for bad, message in (
        ({"select": ["age"], "drop": ["cp"]}, "select: give select or drop, not both"),
        ({"drop": ["num"]}, "drop: 'num' is not a feature column"),
        ({"select": []}, "select: must not be empty"),
        ({"drop": [f.name for f in Recipe.from_dict(base).features]}, "drop: leaves no feature column"),
    ):
        with pytest.raises(ConfigError, match=f"^preparation.{message}"):
            Recipe.from_dict({**base, **bad})


# ------------------------------------------------------------------------------------------------ insights

FIRST = ["Alice", "Bruno", "Chen", "Dagny", "Emeka", "Farah", "Goran", "Hana"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka"]


def people(n: int) -> tuple[str, list[str]]:
    """A table with identifiers (name, e-mail), quasi-identifiers (age, zip, sex) and a sensitive diagnosis."""
    rng = np.random.default_rng(3)
    rows, secrets = ["name,email,age,zip,sex,diagnosis"], []
    for i in range(n):
        name = f"{FIRST[i % len(FIRST)]} {LAST[(i // len(FIRST)) % len(LAST)]}{i}"
        email = f"{name.split()[0].lower()}.{i}@example.org"
        age = int(rng.integers(18, 90))
        zipcode = ["02139", "02140", "02141", "10001"][int(rng.integers(0, 4))]
        sex = ["F", "M"][int(rng.integers(0, 2))]
        diagnosis = ["flu", "asthma", "diabetes", "hypertension"][int(rng.integers(0, 4))]
        age_text = "" if i % 17 == 0 else str(age)
        rows.append(f"{name},{email},{age_text},{zipcode},{sex},{diagnosis}")
        secrets += [name, email]
    return "\n".join(rows) + "\n", secrets


def test_insights_report_is_self_contained_and_never_shows_an_identifier(tmp_path: Path) -> None:
    text, secrets = people(240)
    table = tmp_path / "people.csv"
    table.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))  # as Excel's "Unicode text" export
    # The protected table as data protect would write it: identifiers gone, ages in decades, zips cut.
    protected = tmp_path / "people.protected.csv"
    lines = ["age,zip,sex,diagnosis"]
    for line in text.splitlines()[1:]:
        _, _, age, zipcode, sex, diagnosis = line.split(",")
        decade = f"{int(age) // 10 * 10}-{int(age) // 10 * 10 + 9}" if age else ""
        lines.append(f"{decade},{zipcode[:3]}**,{sex},{diagnosis}")
    protected.write_text("\n".join(lines) + "\n")
    labels = tmp_path / "labels.jsonl"
    out = tmp_path / "insights.html"
    summary = ok(
        "data", "insights", table, "--out", out, "--protected", protected, "--labels", labels,
        "-w", tmp_path / "no-workspace",
    )  # fmt: skip
    page = out.read_text(encoding="utf-8")
    for section in ('id="columns"', 'id="distributions"', 'id="anonymity"', 'id="risk"'):
        assert section in page
    assert "<svg" in page and "<style>" in page
    assert "<script" not in page and "src=" not in page and "href=" not in page and "url(" not in page
    assert not [s for s in secrets if s in page], "an identifier value reached the page"
    assert not [s for s in secrets if s in json.dumps(summary)]
    classes = {c["name"]: c["class"] for c in summary["columns"]}
    assert classes["name"] == classes["email"] == "identifier"
    assert {"age", "zip", "sex"} <= set(summary["quasi_identifiers"]) and "diagnosis" in summary["sensitive"]
    age = next(c for c in summary["columns"] if c["name"] == "age")
    assert age["missing"] == 15 and age["distribution"]["chart"] == "histogram"
    before, after = summary["anonymity"], summary["protected"]
    assert before["unique_share"] > 0.5 and before["k"] == 1
    assert after["unique_share"] < before["unique_share"] and after["k"] >= 1
    assert set(before) >= {"l_distinct", "l_entropy", "t_closeness"}
    assert "diagnosis" in before["t_closeness"]
    assert json.loads((tmp_path / "insights.html.report.json").read_text())["rows"] == 240
    assert summary["encoding"] == "utf-16"
    # Every column, its class badge and the measures are on the page.
    for name in ("name", "email", "age", "zip", "sex", "diagnosis", "k-anonymity", "l-diversity", "t-closeness"):
        assert name in page


# ------------------------------------------------------------------------------------------------ raw to trained


@needs_heart
def test_raw_heart_disease_files_to_a_trained_model(tmp_path: Path) -> None:
    """The four hospitals' raw UCI files: cleanse, agree statistics by a sum, prepare, train, score held-out rows."""
    from fedledger.federation.config_file import load_task_config
    from fedledger.learning import build_model
    from fedledger.learning.data import load_csv_dataset

    hospitals = ["cleveland", "hungarian", "switzerland", "va"]
    committed = Recipe.from_dict(load_task_config(REPO / "examples" / "heart-disease" / "task.toml").preparation)
    vectors = []
    for name in hospitals:
        clean = tmp_path / f"{name}.csv"
        cleansed = ok("data", "cleanse", HEART / f"processed.{name}.data", "--recipe", HEART_RECIPE, "--out", clean)
        assert cleansed["recipe_hash"] == committed.hash()
        ok("data", "prepare", clean, "--recipe", HEART_RECIPE, "--stats-out", tmp_path / f"{name}.stats.json")
        vectors.append(json.loads((tmp_path / f"{name}.stats.json").read_text()))
    # The consortium's sum (in a real consortium, the masked secure sum of fedledger.federation.consortium_stats).
    agreed = tmp_path / "agreed.json"
    agreed.write_text(json.dumps({**vectors[0], "sum": np.sum([v["sum"] for v in vectors], axis=0).tolist()}))
    X_parts, y_parts = [], []
    for name in hospitals:
        prepared = tmp_path / f"{name}.prepared.csv"
        report = ok("data", "prepare", tmp_path / f"{name}.csv", "--recipe", HEART_RECIPE, "--stats", agreed,
                    "--out", prepared)  # fmt: skip
        assert report["recipe_hash"] == committed.hash()
        data = load_csv_dataset(prepared, "num")
        assert data.feature_names == list(committed.feature_names)
        X_parts.append(data.X)
        y_parts.append(data.y)
    X, y = np.vstack(X_parts), np.concatenate(y_parts)
    assert X.shape == (918, 25) and np.isfinite(X).all()  # 920 rows less the two duplicates
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    test, train = order[: len(y) // 4], order[len(y) // 4 :]
    model = build_model({"kind": "sklearn-logreg", "n_features": X.shape[1], "n_classes": 2})
    model.fit(X[train], y[train], epochs=20, seed=0)
    accuracy = float((model.predict(X[test]) == y[test]).mean())
    majority = max(y[test].mean(), 1 - y[test].mean())
    assert accuracy >= 0.75 and accuracy > majority + 0.15, (accuracy, majority)


# ------------------------------------------------------------------------------------------------ registration


def test_register_records_the_recipe_hash(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    table = tmp_path / "protected.csv"
    table.write_text("age,cp,num\n40-49,1,0\n50-59,4,1\n")
    policy = {"k": 5}
    (tmp_path / "policy.json").write_text(json.dumps(policy))
    (tmp_path / "classification.json").write_text(json.dumps({"age": "quasi_identifier"}))

    def ws_ok(*args: Any) -> Any:
        return ok(*args, "-w", ws)

    ws_ok("init", "--light-kdf", "--org", "Clinic")
    ws_ok("data", "registry", "deploy")
    registered = ws_ok(
        "data", "register", table, "--purpose", "model-training:heart-disease",
        "--classification", tmp_path / "classification.json", "--policy", tmp_path / "policy.json",
        "--recipe", HEART_RECIPE,
    )  # fmt: skip
    recipe_hash = Recipe.load(HEART_RECIPE).hash()
    assert registered["recipe_hash"] == recipe_hash
    committed = document_hash({"policy": policy, "preparation_recipe": recipe_hash})
    assert registered["policy_hash"] == "0x" + committed.hex()
    # The owner's manifest keeps the recipe's hash beside the registration.
    manifest = json.loads(next(ws.rglob("registrations.json")).read_text())
    assert [entry["recipe_hash"] for entry in manifest.values()] == [recipe_hash]


def test_register_checks_and_records_the_goal(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    table = tmp_path / "protected.csv"
    table.write_text("age,cp,num\n40-49,1,0\n50-59,4,1\n")
    (tmp_path / "policy.json").write_text(json.dumps({"k": 5}))
    (tmp_path / "classification.json").write_text(json.dumps({"age": "quasi_identifier"}))
    ok("init", "--light-kdf", "--org", "Clinic", "-w", ws)
    ok("data", "registry", "deploy", "-w", ws)
    register = (
        "data", "register", table, "--purpose", "model-training:heart-disease",
        "--classification", tmp_path / "classification.json", "--policy", tmp_path / "policy.json", "-w", ws,
    )  # fmt: skip

    def goal(columns: str, out: Path) -> Path:
        ok("data", "goal", table, "--purpose", "model-training:heart-disease", "--basis", "consent",
           "--retention", "1y", "--columns", columns, "--out", out)  # fmt: skip
        return out

    # The purpose needs no cp: the table must be protected with its goal (cp dropped) before it is registered.
    assert "'cp'" in cli_refused(*register, "--goal", goal("age,num", tmp_path / "narrow.goal.json"))
    registered = ok(*register, "--goal", goal("age,cp,num", tmp_path / "full.goal.json"))
    assert registered["goal_hash"]
    manifest = json.loads(next(ws.rglob("registrations.json")).read_text())
    assert [entry["goal_hash"] for entry in manifest.values()] == [registered["goal_hash"]]


def test_a_node_trains_on_the_raw_file_through_the_recipes_cleanse_rules(tmp_path: Path) -> None:
    """What `fedledger node` reads (load_member_table): the raw file cleansed by the recipe's [cleanse] rules, then
    prepared: the same features `data cleanse` then `data prepare` give, with no file written in between."""
    from fedledger.federation.local_data import load_member_table

    raw = tmp_path / "t.csv"
    raw.write_text(RULES_TABLE)
    recipe_file = tmp_path / "recipe.toml"
    recipe_file.write_text(RULES_RECIPE % "missing")
    recipe = Recipe.load(recipe_file)
    dataset = load_member_table(None, raw, recipe=recipe)  # type: ignore[arg-type]  # a recipe needs no config
    ok("data", "cleanse", raw, "--recipe", recipe_file, "--out", tmp_path / "clean.csv")
    by_steps = ok("data", "prepare", tmp_path / "clean.csv", "--recipe", recipe_file, "--out", tmp_path / "p.csv")
    stepped = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    assert by_steps["recipe_hash"] == recipe.hash() and len(stepped) == len(dataset.y) == 4
    np.testing.assert_allclose(dataset.X, stepped[:, :-1], rtol=1e-6)
    # Without the rules the raw file does not prepare: "MALE" and "robot" are not categories of sex.
    bare = Recipe.from_dict({k: v for k, v in recipe.to_dict().items() if k != "cleanse"})
    with pytest.raises(BadInput, match=r"t.csv line 2, column sex"):
        load_member_table(None, raw, recipe=bare)  # type: ignore[arg-type]
