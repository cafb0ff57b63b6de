"""Compliance reports from the ledger (`fedledger report gdpr|hipaa|model|verify`): the PDFs and HTML state what the
chain holds at the block they name, erasures included, and a modified report fails verification.

One demo consortium for the whole module (3 hospitals, 2 rounds, differential privacy, datasets registered with a
lawful basis), after which Hospital 1 erases a patient through its vault: the erasure is recorded on the ledger.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from pypdf import PdfReader

import fedledger.demo as demo_module
from fedledger.chain.events import UpdateCommitted
from fedledger.chain.registry import DataRegistryClient
from fedledger.data.lawful_basis import LawfulBasis
from fedledger.data.registration import ErasureOutcome, erase_subject
from fedledger.data.vault import Vault
from fedledger.demo import run_demo
from fedledger.exceptions import BadInput, VerificationFailed
from fedledger.federation.evaluation import MetricsReport, evaluate_round, post_metrics_report, task_bulletin
from fedledger.learning.metrics import pool_metrics
from fedledger.reports import LedgerSnapshot, Report, Section, derive_report, render, verify_report
from fedledger.workspace import Workspace
from helpers.cli import cli_refused, fedledger

PASSWORD = "report-test-password-5c1d"


@dataclass
class Demo:
    root: Path
    block: int  # the latest block, just after the erasure
    before_erasure: int
    erasure: ErasureOutcome
    erasure_hash: str
    registry: str
    out: Path
    metrics: dict[str, MetricsReport]  # member -> the metrics it posted for version 2

    def snapshot(self, ws: Workspace, block: int | None = None) -> LedgerSnapshot:
        return LedgerSnapshot.at(
            ws.chain,
            ws.store(),
            consortium=ws.config.consortium,
            registry=self.registry,
            tasks=ws.config.tasks,
            block=self.block if block is None else block,
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    base = tmp_path_factory.mktemp("reports")
    root = base / "ws"
    with pytest.MonkeyPatch.context() as mp:
        # The demo's keys get a password this test knows, so a hospital can act after it.
        mp.setattr(demo_module, "secrets", SimpleNamespace(token_urlsafe=lambda n: PASSWORD))
        run_demo(workspace=root, members=3, rounds=2, malicious=0, seed=3, dp_epsilon=4.0)
    with Workspace.load(root) as ws:
        metrics = _post_metrics(ws)
        account = ws.account("hospital-1", PASSWORD)
        registry = DataRegistryClient(ws.chain, ws.task().params().data_registry, account)
        before = ws.chain.block_number
        vault = Vault.for_account(base / "vault-1", account)
        vault.put("patient-0042", "ssn", 7, "123-45-6789")
        outcome = erase_subject(vault, "patient-0042", registry=registry, dataset_ids=[1])
        subject_hash = "0x" + vault.erasure_hash("patient-0042", registry=registry.address, dataset_id=1).hex()
        block = ws.chain.block_number
    out = base / "out"
    out.mkdir()
    return Demo(root, block, before, outcome, subject_hash, registry.address, out, metrics)


def _post_metrics(ws: Workspace) -> dict[str, MetricsReport]:
    """Hospitals 1 and 2 score the last model on holdout data of their own and post the counts on the task's board."""
    task = ws.task()
    rng = np.random.default_rng(11)
    reports = {}
    for k in (1, 2):
        account = ws.account(f"hospital-{k}", PASSWORD)
        X, y = rng.normal(size=(40, 30)), rng.integers(0, 2, size=40)
        report = evaluate_round(task, ws.store(), account.address, 2, X, y)
        post_metrics_report(task_bulletin(task, ws.store(), account), ws.store(), report)
        reports[account.address] = report
    return reports


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def flat(text: str) -> str:
    """The text with every run of whitespace one space: a PDF wraps long sentences anywhere."""
    return " ".join(text.split())


def value_after(text: str, label: str) -> str:
    """The line after ``label`` in a PDF's text (a key-value table's value)."""
    lines = text.splitlines()
    return lines[lines.index(label) + 1]


def write(demo: Demo, kind: str, *args: Any) -> dict[str, Any]:
    out = demo.out / f"{kind}-{len(list(demo.out.iterdir()))}"
    result: dict[str, Any] = fedledger(
        "report", kind, "-w", demo.root, "--at-block", demo.block, "--out", out, "--json", *args
    ).json()
    return result


@pytest.fixture(scope="module")
def gdpr(demo: Demo) -> dict[str, Any]:
    """`fedledger report gdpr --json` at the demo's block: its HTML and PDF files, digest, chain and block."""
    return write(demo, "gdpr")


def test_gdpr_report_states_the_registry_the_bases_and_the_erasure(demo: Demo, gdpr: dict[str, Any]) -> None:
    result = gdpr
    html, pdf = map(Path, result["files"])
    text = pdf_text(pdf)
    with Workspace.load(demo.root) as ws:
        assert value_after(text, "Chain id") == str(ws.chain.chain_id) == str(result["chain_id"])
        assert value_after(text, "Block") == str(demo.block)
        assert value_after(text, "Consortium contract") == ws.config.consortium
        assert value_after(text, "DataRegistry contract") == demo.registry
        assert value_after(text, "Task contract 'default'") == ws.config.tasks["default"]
        registry = DataRegistryClient(ws.chain, demo.registry)
        infos = [registry.dataset(i) for i in range(1, registry.dataset_count + 1)]
        orgs = {m.address: m.org for m in ws.consortium().members()}
    assert len(infos) == 3
    for info in infos:
        assert f"Dataset {info.dataset_id}: {orgs[info.owner]}" in text
        assert f"{orgs[info.owner]} ({info.owner})" in text
        assert info.commitment in text and info.policy_hash in text and info.classification_hash in text
    lines = text.splitlines()
    rows = [line for i, line in enumerate(lines) if lines[i - 1] == "Rows committed"]
    assert rows == [str(info.rows) for info in infos]
    assert flat(text).count("Art. 6(1)(a) consent of the data subject; Art. 9(2)(a) explicit consent") == 3
    assert "model-training:breast-cancer-diagnosis" in text and "research:oncology" in text
    assert "identifier: email, patient_name, ssn" in text  # the classification, read back from the store
    assert text.count("until the patient withdraws consent") == 3
    # The demo's few hospitals with many patients each: record-level DP-SGD by default.
    assert "differential privacy (record-level: each data subject's record): budget epsilon 4 at delta 1e-05" in flat(
        text
    )
    # Article 17: the erasure's keyed hash and transaction, not the subject.
    [(dataset_id, tx_hash)] = demo.erasure.recorded
    assert dataset_id == 1
    assert f"subject {demo.erasure_hash}" in text and f"tx {tx_hash}" in text
    assert "1 erasure record(s) by this block" in flat(text)
    assert "patient-0042" not in text and "123-45-6789" not in text
    page = html.read_text()
    assert demo.erasure_hash in page and tx_hash in page and "patient-0042" not in page
    assert (
        json.loads(page.split('id="fedledger-report">')[1].split("</script>")[0])["facts_sha256"]
        == result["facts_sha256"]
    )


def test_a_report_at_an_earlier_block_stays_what_that_block_says(demo: Demo) -> None:
    with Workspace.load(demo.root) as ws:
        earlier = derive_report(demo.snapshot(ws, demo.before_erasure), "gdpr", {})
        now = derive_report(demo.snapshot(ws), "gdpr", {})
    [erasures] = [s for s in earlier.sections if s.title.startswith("Erasure")]
    assert "0 erasure record(s) by this block" in erasures.text[0] and not erasures.tables
    assert earlier.provenance["block"] == demo.before_erasure and earlier.digest != now.digest


def test_hipaa_report_lists_who_contributed_what_when_and_in_which_role(demo: Demo) -> None:
    text = pdf_text(Path(write(demo, "hipaa", "--format", "pdf")["files"][0]))
    with Workspace.load(demo.root) as ws:
        task = ws.task()
        commits = [e for e in task.events() if isinstance(e, UpdateCommitted)]
        members = ws.consortium().members()
        timestamp = ws.chain.timestamp(commits[0].block_number)
    assert len(commits) == 6
    lines = text.splitlines()
    summary = lines[lines.index("Summary by member") :]
    for member in members:
        assert member.address in text
        if member.org.startswith("Hospital"):
            row = summary.index(member.address)  # actions, updates contributed, without the role
            lines = summary
            assert lines[row + 2] == str(sum(1 for c in commits if c.member == member.address)) == "2"
            assert lines[row + 3] == "0"
    assert flat(text).count("contributed a model update") == 6 and flat(text).count("scored updates") == 6
    assert "recorded a subject's erasure" in flat(text) and "registered a dataset" in flat(text)
    from datetime import UTC, datetime

    assert datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC") in text
    assert "(NOT HELD)" not in text


def test_model_card_states_the_model_its_contributors_and_their_privacy_spend(demo: Demo) -> None:
    text = pdf_text(Path(write(demo, "model", "--version", "2", "--format", "pdf")["files"][0]))
    with Workspace.load(demo.root) as ws:
        task = ws.task()
        members = [m for m in ws.consortium().members() if m.org.startswith("Hospital")]
        accepted = [u for r in (1, 2) for u in task.updates(r) if u.index in task.round(r).accepted]
        spent = {m.address: task.privacy_spent(m.address) for m in members}
        model_hash = task.model_at(2)
    assert value_after(text, "Model hash (SHA-256 of its blob)") == model_hash
    assert "model version 2" in text and f"{len(accepted)} accepted update(s) went into this version." in flat(text)
    lines = text.splitlines()
    contributors = lines[: lines.index("Differential privacy guarantee")]
    for member in members:
        mine = [u for u in accepted if u.member == member.address]
        # DP noise can leave a hospital without an accepted update in these two rounds: it is then no contributor.
        if mine:
            row = contributors.index(member.address)
            assert lines[row + 1 : row + 3] == [str(len(mine)), str(sum(u.num_examples for u in mine))]
        assert f"{spent[member.address]}" in text and spent[member.address] > 0
    assert "epsilon 4 at delta 1e-05 per member over the task" in flat(text)
    assert "Verified: rounds 1 to 2 re-derived from chain events and blobs with no discrepancy." in flat(text)
    # The metrics the members posted for this version, and their pool.
    evaluation = lines[lines.index("Evaluation metrics") :]
    for member, report in demo.metrics.items():
        row = evaluation.index(member)
        assert evaluation[row + 1 : row + 3] == [str(report.metrics.n), f"{report.metrics.accuracy:.4f}"]
    pooled = pool_metrics([r.metrics for r in demo.metrics.values()])
    row = evaluation.index("pooled")
    assert evaluation[row + 1 : row + 4] == ["2 member(s)", "80", f"{pooled.accuracy:.4f}"]
    assert "model-training:breast-cancer-diagnosis" in text


def test_verify_accepts_the_reports_as_written_and_names_a_modification(demo: Demo, gdpr: dict[str, Any]) -> None:
    result = gdpr
    html, pdf = map(Path, result["files"])
    for path in (html, pdf):
        assert fedledger("report", "verify", path, "-w", demo.root, "--json").json()["compared_by"] == "bytes"
    assert fedledger("report", "gdpr", "-w", demo.root, "--verify", pdf).code == 0
    # One number edited in the HTML.
    rows = html.read_text().split("Rows committed</td><td>", 1)[1].split("<", 1)[0]
    tampered = demo.out / "tampered.html"
    tampered.write_text(html.read_text().replace(f"Rows committed</td><td>{rows}<", "Rows committed</td><td>9999<", 1))
    message = cli_refused("report", "verify", tampered, "-w", demo.root, code=13)
    assert "9999" in message and rows in message
    # A PDF rendered from edited facts under the original header (its digest and provenance kept).
    with Workspace.load(demo.root) as ws:
        report = derive_report(demo.snapshot(ws), "gdpr", {})
    forged = _forged(report, "Rows committed", "9999")
    with pytest.raises(VerificationFailed, match="9999"):
        verify_report(render(forged, "pdf"), lambda header: report)
    # A header claiming another block, or other facts.
    assert "block" in cli_refused("report", "gdpr", "-w", demo.root, "--at-block", 3, "--verify", pdf, code=13)
    doctored = html.read_bytes().replace(result["facts_sha256"].encode(), b"0" * 64)
    doctored_path = demo.out / "doctored.html"
    doctored_path.write_bytes(doctored)
    assert "digest" in cli_refused("report", "verify", doctored_path, "-w", demo.root, code=13)


def _forged(report: Report, label: str, value: str) -> Report:
    """``report`` with the first ``label`` row's value replaced, keeping its header."""
    sections = []
    done = False
    for section in report.sections:
        tables = []
        for table in section.tables:
            rows = []
            for row in table.rows:
                if not done and row[0] == label:
                    row, done = [label, value], True
                rows.append(row)
            tables.append(replace(table, rows=rows))
        sections.append(Section(section.title, section.text, tables))

    class Forged(Report):
        @property
        def digest(self) -> str:  # the digest the genuine facts have, as a forger would copy it
            return report.digest

    return Forged(report.kind, report.title, report.args, report.provenance, sections)


def test_bad_input_gets_named_errors(demo: Demo, tmp_path: Path) -> None:
    message = cli_refused("report", "model", "-w", demo.root, "--version", 7, "--format", "html", code=2)
    assert "no model version 7" in message and "versions: 0, 1, 2" in message
    assert "in the future" in cli_refused("report", "gdpr", "-w", demo.root, "--at-block", 10**6, code=2)
    assert "no task named 'other'" in cli_refused("report", "model", "-w", demo.root, "--task", "other", code=2)
    assert "unknown format" in cli_refused("report", "hipaa", "-w", demo.root, "--format", "docx", code=2)
    bare = tmp_path / "bare"
    Workspace.create(bare, scrypt_n=2**4).close()
    assert "no consortium" in cli_refused("report", "gdpr", "-w", bare, code=2)
    stranger = tmp_path / "stranger.html"
    stranger.write_text("<html><body>hello</body></html>")
    assert "not a fedledger report" in cli_refused("report", "verify", stranger, "-w", demo.root, code=2)
    with pytest.raises(BadInput, match="lawful basis"):
        LawfulBasis("because")
    with pytest.raises(BadInput, match="special-category"):
        LawfulBasis("consent", "curiosity")


def test_the_registration_publishes_its_documents_under_the_hashes_on_chain(demo: Demo) -> None:
    with Workspace.load(demo.root) as ws:
        registry = DataRegistryClient(ws.chain, demo.registry)
        info = registry.dataset(2)
        policy = demo.snapshot(ws).document(info.policy_hash)
    assert LawfulBasis.from_policy(policy) == demo_module.DEMO_LAWFUL_BASIS
    assert policy["gdpr"]["purposes"] == ["model-training:breast-cancer-diagnosis", "research:oncology"]
    assert policy["dropped"] == ["patient_name", "email", "ssn"]


def test_the_pdf_carries_its_header_as_its_subject(demo: Demo) -> None:
    with Workspace.load(demo.root) as ws:
        report = derive_report(demo.snapshot(ws), "hipaa", {})
    data = render(report, "pdf")
    assert render(report, "pdf") == data  # deterministic: what verification compares
    header = json.loads(str(PdfReader(io.BytesIO(data)).metadata.subject))
    assert header["facts_sha256"] == report.digest and header["provenance"]["block"] == demo.block


def test_a_registration_with_a_raw_policy_records_its_basis_beside_the_policys_hash(demo: Demo) -> None:
    import hashlib

    import pandas as pd

    from fedledger.data.commitment import document_hash
    from fedledger.data.registration import register_table

    raw_policy = b"k-anonymity 5 on age and zip; identifiers dropped"
    basis = LawfulBasis("public-task", "scientific-research", "ten years after the study ends")
    with Workspace.load(demo.root) as ws:
        registry = DataRegistryClient(ws.chain, demo.registry, ws.account("hospital-2", PASSWORD))
        registered = register_table(
            registry,
            pd.DataFrame({"age": [41, 57], "diagnosis": [0, 1]}),
            purposes=["research:oncology"],
            classification={"age": "quasi-identifier", "diagnosis": "sensitive"},
            policy=raw_policy,
            lawful_basis=basis,
            store=ws.store(),
        )
        policy = ws.store().get(registered.policy_hash.removeprefix("0x"))
        classification = ws.store().get(registered.classification_hash.removeprefix("0x"))
    body = json.loads(policy)
    assert body["policy"] == {"sha256": hashlib.sha256(raw_policy).hexdigest()}
    assert LawfulBasis.from_policy(body) == basis and body["gdpr"]["purposes"] == ["research:oncology"]
    assert "0x" + document_hash(json.loads(classification)).hex() == registered.classification_hash


def test_data_register_records_the_lawful_basis_given_on_the_command_line(demo: Demo, tmp_path: Path) -> None:
    table = tmp_path / "ages.csv"
    table.write_text("age,diagnosis\n41,0\n57,1\n")
    classification = tmp_path / "classes.json"
    classification.write_text(json.dumps({"age": "quasi-identifier", "diagnosis": "sensitive"}))
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"age": "generalize"}))
    fedledger("data", "registry", "use", demo.registry, "-w", demo.root)
    common = ["data", "register", table, "--purpose", "research:oncology", "--classification", classification]
    common += ["--policy", policy, "-w", demo.root, "--as", "hospital-3", "--json"]
    refused = cli_refused(*common, "--retention", "one year", password=PASSWORD, code=2)
    assert "--lawful-basis" in refused
    assert "unknown lawful basis" in cli_refused(*common, "--lawful-basis", "whim", password=PASSWORD, code=2)
    registered = fedledger(
        *common, "--lawful-basis", "public-task", "--special-category-condition", "public-health", password=PASSWORD
    ).json()
    with Workspace.load(demo.root) as ws:
        body = json.loads(ws.store().get(registered["policy_hash"].removeprefix("0x")))
    assert body["age"] == "generalize"
    assert LawfulBasis.from_policy(body) == LawfulBasis("public-task", "public-health")


def test_a_file_from_other_library_versions_is_compared_by_its_text(demo: Demo) -> None:
    with Workspace.load(demo.root) as ws:
        report = derive_report(demo.snapshot(ws), "model", {"task": "default", "version": 1})
    html = render(report, "html")
    assert verify_report(html, lambda header: report).by == "bytes"
    version = report.header()["renderer"]["jinja2"]
    older = html.replace(f'"jinja2": "{version}"'.encode(), b'"jinja2": "0.1"')
    assert older != html and verify_report(older, lambda header: report).by == "text"
    # With the very versions it names, a file whose bytes differ was altered, even where its text is the same.
    commented = html.replace(b"<body>", b"<body><!-- edited -->")
    with pytest.raises(VerificationFailed, match="altered"):
        verify_report(commented, lambda header: report)
