"""Datasets on the ledger end to end: registration, purpose limitation, erasure on vault and ledger,
lineage, the `fedledger data` commands, and the scan proving nothing personal reached the chain
(calldata, logs and storage, on the embedded chain and on anvil)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import Ledger, h
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import Phase
from fedledger.data.commitment import MerkleTree, table_rows, verify_inclusion
from fedledger.data.ledger_privacy import scan_chain_for_values
from fedledger.data.registration import (
    PurposeNotAllowed,
    Registrations,
    check_purpose,
    erase_subject,
    register_table,
    round_lineage,
)
from fedledger.data.vault import ErasedSubject, UnknownSubject, Vault
from fedledger.exceptions import BadInput, InvalidState
from helpers.cli import cli_refused, fedledger
from helpers.data import patients

TRAINING = "model-training:heart-disease"
RESEARCH = "research:cardiology"
CLASSIFICATION = {"patient": "identifier", "name": "identifier", "email": "identifier", "age": "quasi-identifier"}
POLICY = {"pseudonymize": ["patient", "name", "email"], "dp": {"epsilon": 3.0}}


@pytest.fixture(scope="session")
def registry_address(deployed: Ledger) -> str:
    return DataRegistryClient.deploy(deployed.chain, deployed.admin, deployed.consortium.address).address


@dataclass
class Site:
    """One member organization: its vault, its manifest, its registry client, its data."""

    vault: Vault
    registrations: Registrations
    registry: DataRegistryClient
    table: pd.DataFrame
    protected: pd.DataFrame


@pytest.fixture
def site(ledger: Ledger, registry_address: str, tmp_path: Path) -> Site:
    vault = Vault.for_account(tmp_path / "vault", ledger.members[0])
    table = patients(25)
    protected = vault.import_table(table, "patient", ["name", "email"])
    registry = DataRegistryClient(ledger.chain, registry_address, ledger.members[0])
    return Site(vault, Registrations(tmp_path / "vault" / "registrations.json"), registry, table, protected)


def register(site: Site, purposes: list[str] | None = None) -> int:
    registered = register_table(
        site.registry,
        site.protected,
        purposes=purposes or [TRAINING],
        classification=CLASSIFICATION,
        policy=POLICY,
        registrations=site.registrations,
    )
    return registered.dataset_id


def personal_values(table: pd.DataFrame) -> list[str]:
    return [*table["patient"], *table["name"], *table["email"]]


# -- registration --------------------------------------------------------------------------------


def test_register_table_commits_to_the_protected_rows(site: Site) -> None:
    dataset_id = register(site)
    kept = site.registrations.get(site.registry.address, dataset_id)
    assert kept is not None
    info = site.registry.dataset(dataset_id)
    assert info.commitment == kept.commitment and info.rows == len(site.table) == kept.rows
    assert len(kept.subjects) == len(site.table)
    salt = bytes.fromhex(kept.salt)
    tree = MerkleTree.from_table(site.protected, salt=salt)
    assert "0x" + tree.root.hex() == info.commitment
    # The owner proves one row to an auditor without showing the others.
    rows = table_rows(site.protected)
    assert verify_inclusion(rows[5], tree.proof(5), bytes.fromhex(info.commitment[2:]), salt=salt)
    # A fresh salt per registration: the same table never gives the same root twice.
    assert (
        register_table(
            site.registry, site.protected, purposes=[TRAINING], classification=CLASSIFICATION, policy=POLICY
        ).commitment
        != info.commitment
    )


def test_register_table_refuses_bad_input_before_sending(site: Site) -> None:
    block = site.registry.chain.block_number
    for kwargs in ({"purposes": []}, {"purposes": ["Not Valid"]}):
        with pytest.raises(BadInput):
            register_table(site.registry, site.protected, classification=CLASSIFICATION, policy=POLICY, **kwargs)
    with pytest.raises(BadInput):
        register_table(site.registry, site.protected.iloc[:0], purposes=[TRAINING], classification={}, policy={})
    assert site.registry.chain.block_number == block


# -- purpose limitation ----------------------------------------------------------------------------


def test_check_purpose(site: Site) -> None:
    dataset_id = register(site, [TRAINING, RESEARCH])
    check_purpose(site.registry, dataset_id, TRAINING)
    with pytest.raises(PurposeNotAllowed, match="does not allow the purpose 'marketing'"):
        check_purpose(site.registry, dataset_id, "marketing")
    with pytest.raises(PurposeNotAllowed, match="not registered"):
        check_purpose(site.registry, dataset_id + 1, TRAINING)
    site.registry.set_purposes(dataset_id, [RESEARCH])  # consent for training withdrawn
    with pytest.raises(PurposeNotAllowed, match="does not allow"):
        check_purpose(site.registry, dataset_id, TRAINING)
    site.registry.revoke_dataset(dataset_id)
    with pytest.raises(PurposeNotAllowed, match="revoked"):
        check_purpose(site.registry, dataset_id, RESEARCH)


# -- erasure --------------------------------------------------------------------------------------


def test_erase_subject_in_vault_and_on_ledger(site: Site) -> None:
    dataset_id = register(site)
    other = register(site)
    subject = site.table.at[3, "patient"]
    outcome = erase_subject(site.vault, subject, registry=site.registry, registrations=site.registrations)
    assert [d for d, _ in outcome.recorded] == [dataset_id, other]
    assert outcome.receipt.values == 3  # patient, name, email of one record
    for d in (dataset_id, other):
        assert site.registry.is_erased(
            d, site.vault.erasure_hash(subject, registry=site.registry.address, dataset_id=d)
        )
        assert site.registry.dataset(d).erasures == 1
    with pytest.raises(ErasedSubject):
        site.vault.get(subject, "email", 3)
    assert site.vault.get(site.table.at[4, "patient"], "email", 4) == site.table.at[4, "email"]
    # Twice: a clear error, and neither the vault nor the ledger moves.
    block = site.registry.chain.block_number
    with pytest.raises(ErasedSubject, match="already erased"):
        erase_subject(site.vault, subject, registry=site.registry, registrations=site.registrations)
    with pytest.raises(UnknownSubject):
        erase_subject(site.vault, "MRN-unknown", registry=site.registry, registrations=site.registrations)
    assert site.registry.chain.block_number == block


def test_erasure_interrupted_before_the_ledger_is_completed(site: Site) -> None:
    dataset_id = register(site)
    subject = site.table.at[0, "patient"]
    site.vault.erase(subject)  # as if the node went down right after the local erasure
    outcome = erase_subject(site.vault, subject, registry=site.registry, registrations=site.registrations)
    assert [d for d, _ in outcome.recorded] == [dataset_id]
    assert site.registry.dataset(dataset_id).erasures == 1


def test_erasure_refused_for_another_owners_dataset(site: Site, ledger: Ledger) -> None:
    theirs = DataRegistryClient(ledger.chain, site.registry.address, ledger.members[1]).register_dataset(
        commitment=h("r"),
        schema_hash=h("s"),
        classification_hash=h("c"),
        policy_hash=h("p"),
        purposes=[TRAINING],
        rows=1,
    )
    subject = site.table.at[0, "patient"]
    block = ledger.chain.block_number
    with pytest.raises(BadInput, match="is owned by"):
        erase_subject(site.vault, subject, registry=site.registry, dataset_ids=[theirs])
    assert site.vault.has(subject) and ledger.chain.block_number == block


def test_erasure_without_a_registry_is_local(site: Site) -> None:
    outcome = erase_subject(site.vault, site.table.at[0, "patient"])
    assert outcome.recorded == () and outcome.receipt.values == 3


# -- nothing personal on chain ---------------------------------------------------------------------


def test_no_personal_value_reaches_the_chain(site: Site, ledger: Ledger) -> None:
    """Register a dataset of patients, change its purposes, erase two patients, train a round on it:
    no patient id, name or e-mail is anywhere in calldata, logs or storage."""
    dataset_id = register(site, [TRAINING, RESEARCH])
    site.registry.set_purposes(dataset_id, [TRAINING])
    for i in (2, 7):
        erase_subject(site.vault, site.table.at[i, "patient"], registry=site.registry, registrations=site.registrations)
    task = ledger.task.as_(ledger.members[0])
    round_id = task.open_round()
    task.commit_update(round_id, h("update"), len(site.table))
    findings = scan_chain_for_values(ledger.chain, personal_values(site.table))
    assert findings == []


def test_privacy_scan_finds_a_planted_value(site: Site, ledger: Ledger) -> None:
    """Negative control: a personal value smuggled into a 'hash' field is found in calldata, the
    DatasetRegistered log and contract storage; its hex form too."""
    name, email = site.table.at[0, "name"], site.table.at[1, "email"]
    planted = name.encode().ljust(32, b"\0")[:32]
    hex_planted = email.encode()[:16].hex().encode()  # 32 ASCII hex characters
    block = ledger.chain.block_number
    site.registry.register_dataset(
        commitment=planted, schema_hash=hex_planted, classification_hash=h("c"), policy_hash=h("p"),
        purposes=[TRAINING], rows=1,
    )  # fmt: skip
    findings = scan_chain_for_values(ledger.chain, [name, email[:16], "never-written-value"], from_block=block + 1)
    where = {(f.value, f.encoding, f.where) for f in findings}
    assert {(name, "utf-8", "calldata"), (name, "utf-8", "log"), (name, "utf-8", "storage")} <= where
    assert {(email[:16], "hex", "calldata"), (email[:16], "hex", "log"), (email[:16], "hex", "storage")} <= where
    assert not [f for f in findings if f.value == "never-written-value"]
    assert all(f.address == site.registry.address for f in findings if f.where != "calldata")


def test_privacy_scan_refuses_short_values(ledger: Ledger) -> None:
    with pytest.raises(BadInput, match="shorter"):
        scan_chain_for_values(ledger.chain, ["Al"])


# -- lineage --------------------------------------------------------------------------------------


def finalize_round(ledger: Ledger) -> int:
    task = ledger.task
    round_id = task.as_(ledger.members[0]).open_round()
    for i in range(4):
        task.as_(ledger.members[i]).commit_update(round_id, h(f"lineage-update-{i}"), 100 + i)
    task.as_(ledger.members[0]).close_commits(round_id)
    for i in range(4):
        task.as_(ledger.members[i]).submit_scores(round_id, [None if j == i else 9000 for j in range(4)])
    task.as_(ledger.members[0]).close_validation(round_id)
    mask = task.round(round_id).accepted_mask
    task.as_(ledger.members[0]).propose_aggregate(round_id, h("lineage-model"), mask)
    task.as_(ledger.members[1]).propose_aggregate(round_id, h("lineage-model"), mask)
    assert task.round(round_id).phase is Phase.FINALIZED
    return round_id


def test_lineage_runs_from_model_to_datasets(site: Site, ledger: Ledger) -> None:
    ids: dict[str, int] = {}
    for i, purposes in enumerate([[TRAINING], [TRAINING, RESEARCH], [RESEARCH]]):
        client = DataRegistryClient(ledger.chain, site.registry.address, ledger.members[i])
        ids[ledger.members[i].address] = client.register_dataset(
            commitment=h(f"rows-{i}"), schema_hash=h("s"), classification_hash=h("c"), policy_hash=h("p"),
            purposes=purposes, rows=50 + i,
        )  # fmt: skip
    with pytest.raises(InvalidState, match="not finalized"):
        round_lineage(ledger.task, site.registry, 1, purpose=TRAINING)
    round_id = finalize_round(ledger)
    lineage = round_lineage(ledger.task, site.registry, round_id, purpose=TRAINING)
    assert lineage.model_hash == h("lineage-model") and len(lineage.updates) == 4
    by_member = {u.member: u for u in lineage.updates}
    assert [d.dataset_id for d in by_member[ledger.members[0].address].datasets] == [ids[ledger.members[0].address]]
    assert by_member[ledger.members[0].address].compliant
    assert by_member[ledger.members[1].address].compliant
    assert not by_member[ledger.members[2].address].compliant  # its dataset allows research only
    assert by_member[ledger.members[3].address].datasets == ()  # trained on no registered dataset
    assert not lineage.compliant
    data = lineage.to_json()
    assert data["compliant"] is False and data["updates"][0]["compliant"] is True
    # Consent withdrawn after the round does not rewrite history: lineage reads the commit block.
    DataRegistryClient(ledger.chain, site.registry.address, ledger.members[0]).set_purposes(
        ids[ledger.members[0].address], [RESEARCH]
    )
    again = round_lineage(ledger.task, site.registry, round_id, purpose=TRAINING)
    assert {u.member: u.compliant for u in again.updates} == {u.member: u.compliant for u in lineage.updates}
    explicit = round_lineage(
        ledger.task, site.registry, round_id, purpose=TRAINING,
        dataset_of={m.address: [ids[ledger.members[0].address]] for m in ledger.members[:1]},
    )  # fmt: skip
    assert [len(u.datasets) for u in explicit.updates] == [1, 0, 0, 0]
    with pytest.raises(BadInput, match="belongs to"):
        round_lineage(
            ledger.task, site.registry, round_id, purpose=TRAINING,
            dataset_of={ledger.members[1].address: [ids[ledger.members[0].address]]},
        )  # fmt: skip


# -- the commands ----------------------------------------------------------------------------------


def test_cli_import_register_erase(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    table = patients(12)
    raw = tmp_path / "patients.csv"
    table.to_csv(raw, index=False)
    (tmp_path / "classification.json").write_text(json.dumps(CLASSIFICATION))
    (tmp_path / "policy.json").write_text(json.dumps(POLICY))

    def ok(*args: Any) -> Any:
        return fedledger(*args, "-w", ws, "--json").json()

    ok("init", "--light-kdf", "--org", "Clinic")
    ok("data", "registry", "deploy")
    imported = ok("data", "vault", "import", raw, "--subject-column", "patient", "--columns", "name,email")
    protected = Path(imported["protected"])
    assert imported["rows"] == 12 and protected.exists()
    text = protected.read_text()
    assert not any(value in text for value in personal_values(table))
    registered = ok(
        "data", "register", protected, "--purpose", TRAINING, "--purpose", RESEARCH,
        "--classification", tmp_path / "classification.json", "--policy", tmp_path / "policy.json",
    )  # fmt: skip
    assert registered["dataset_id"] == 1 and registered["rows"] == 12 and "salt" not in registered
    (listed,) = ok("data", "datasets")
    assert listed["commitment"] == registered["commitment"]
    subject = table.at[2, "patient"]
    assert ok("data", "vault", "get", subject, "--column", "email", "--record", 2)["value"] == table.at[2, "email"]
    erased = ok("data", "erase", subject)
    assert [r["dataset_id"] for r in erased["recorded"]] == [1] and erased["receipt"]["values"] == 3
    assert "already erased" in cli_refused("data", "erase", subject, "-w", ws, code=2)
    assert "erased" in cli_refused(
        "data", "vault", "get", subject, "--column", "email", "--record", 2, "-w", ws, code=2
    )
    assert "no values" in cli_refused("data", "erase", "MRN-nobody", "-w", ws, code=2)
    message = cli_refused(
        "data", "vault", "import", tmp_path / "missing.csv", "--subject-column", "x", "-w", ws, code=2
    )
    assert "no such file" in message
    message = cli_refused(
        "data",
        "register",
        protected,
        "--purpose",
        "Bad Purpose",
        "--classification",
        tmp_path / "classification.json",
        "--policy",
        tmp_path / "policy.json",
        "-w",
        ws,
        code=2,
    )
    assert "malformed purpose name" in message
