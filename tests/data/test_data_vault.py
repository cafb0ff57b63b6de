"""The vault (envelope encryption, erasure by crypto-shredding) and the Merkle row commitment.

Tables are real rows of the UCI Heart Disease (Cleveland) data when ../shared/data is beside the checkout
(the data set has no identifiers, so seeded Faker names and e-mails stand in for the patients),
otherwise a small inline table of the same shape (``helpers.data.patients``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.data.commitment import (
    MerkleProof,
    MerkleTree,
    document_hash,
    encode_row,
    schema_hash,
    table_rows,
    verify_inclusion,
)
from fedledger.data.keys import org_data_key
from fedledger.data.vault import REFERENCE_PREFIX, ErasedSubject, UnknownSubject, Vault
from fedledger.exceptions import BadInput, IntegrityError
from helpers.data import HEART_COLUMNS, patients

KEK = bytes(range(32))


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path / "vault", KEK)


# -- put / get ------------------------------------------------------------------------------


def test_put_get_round_trip_keeps_types(vault: Vault) -> None:
    for column, value in [("name", "Zoë Ünal"), ("age", 63), ("score", 2.5), ("flag", True), ("missing", None)]:
        reference = vault.put("subject-1", column, 7, value)
        assert reference == REFERENCE_PREFIX + vault.subject_ref("subject-1")
        assert vault.get("subject-1", column, "7") == value
    assert vault.has("subject-1") and not vault.has("subject-2")
    assert vault.subject_count() == 1


def test_nothing_in_clear_on_disk(vault: Vault) -> None:
    vault.put("alice@example.org", "email", "r1", "alice@example.org")
    vault.put("alice@example.org", "diagnosis", "r1", "angina pectoris")
    for path in vault.root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"alice" not in data and b"angina" not in data, path
            assert "alice" not in path.name


def test_unknown_subject_and_missing_cell(vault: Vault) -> None:
    with pytest.raises(UnknownSubject):
        vault.get("nobody", "name", "1")
    vault.put("s", "name", "1", "x")
    with pytest.raises(BadInput, match="no value"):
        vault.get("s", "name", "2")
    for bad in ("", None, 3.5):
        with pytest.raises(BadInput):
            vault.put(bad, "name", "1", "x")  # type: ignore[arg-type]
    with pytest.raises(BadInput):
        vault.put("s", "name", "1", object())


def test_ciphertexts_are_bound_to_their_cell(vault: Vault) -> None:
    vault.put("a", "name", "1", "Alice")
    vault.put("a", "name", "2", "Alicia")
    vault.put("b", "name", "1", "Bob")
    values = vault.root / "values"
    a_file = values / f"{vault.subject_ref('a')}.json"
    a = json.loads(a_file.read_text())
    # Swap two records of the same subject: same key, but the associated data no longer matches.
    a["name"]["1"], a["name"]["2"] = a["name"]["2"], a["name"]["1"]
    a_file.write_text(json.dumps(a))
    with pytest.raises(IntegrityError, match="fails authentication"):
        vault.get("a", "name", "1")
    # Move a value to another column.
    a["email"] = {"1": a["name"]["1"]}
    a_file.write_text(json.dumps(a))
    with pytest.raises(IntegrityError):
        vault.get("a", "email", "1")
    # Swap the subjects' key files: each wrapped key is bound to its subject.
    keys = vault.root / "keys"
    ka, kb = keys / f"{vault.subject_ref('a')}.key", keys / f"{vault.subject_ref('b')}.key"
    ka_bytes, kb_bytes = ka.read_bytes(), kb.read_bytes()
    ka.write_bytes(kb_bytes)
    kb.write_bytes(ka_bytes)
    with pytest.raises(IntegrityError, match="does not unwrap"):
        Vault(vault.root, KEK).get("b", "name", "1")


def test_another_organization_key_cannot_read(vault: Vault) -> None:
    vault.put("a", "name", "1", "Alice")
    other = Vault(vault.root, bytes(32))
    # Another key does not even find the subject: file names are keyed pseudonyms.
    with pytest.raises(UnknownSubject):
        other.get("a", "name", "1")
    # Nor unwrap the subject's data key when pointed at it.
    key = vault.root / "keys" / f"{vault.subject_ref('a')}.key"
    (vault.root / "keys" / f"{other.subject_ref('a')}.key").write_bytes(key.read_bytes())
    with pytest.raises(IntegrityError, match="does not unwrap"):
        other.get("a", "name", "1")
    with pytest.raises(BadInput):
        Vault(vault.root, b"short")


def test_for_account_uses_the_org_vault_key(tmp_path: Path) -> None:
    account = Account.from_key("0x" + "11" * 32)
    a = Vault.for_account(tmp_path / "v", account)
    a.put("s", "c", "1", "v")
    assert Vault(tmp_path / "v", org_data_key(account, "vault-kek")).get("s", "c", "1") == "v"


# -- erasure --------------------------------------------------------------------------------


def test_erase_crypto_shreds_every_copy(vault: Vault, tmp_path: Path) -> None:
    vault.put("alice", "name", "1", "Alice")
    vault.put("alice", "name", "2", "Alice")
    vault.put("bob", "name", "3", "Bob")
    backup = tmp_path / "values-backup"
    shutil.copytree(vault.root / "values", backup)  # e.g. a replica of the ciphertexts
    receipt = vault.erase("alice")
    assert receipt.subject_ref == vault.subject_ref("alice")
    assert receipt.values == 2 and receipt.key_bytes_overwritten > 0
    assert vault.is_erased("alice") and not vault.has("alice")
    assert vault.receipt("alice") == receipt
    with pytest.raises(ErasedSubject):
        vault.get("alice", "name", "1")
    with pytest.raises(ErasedSubject):
        Vault(vault.root, KEK).get("alice", "name", "1")  # no cached key survives either
    assert vault.get("bob", "name", "3") == "Bob"  # others untouched
    # The copied ciphertexts are useless: no key left anywhere opens them, even with the org KEK.
    sealed = bytes.fromhex(json.loads((backup / f"{receipt.subject_ref}.json").read_text())["name"]["1"])
    remaining = [json.loads(p.read_text()) for p in (vault.root / "keys").glob("*.key")]
    assert len(remaining) == 1  # bob's
    from fedledger.data.vault import _aad, _derive

    wrap = AESGCM(_derive(KEK, "wrap-dek"))
    for blob in remaining:
        with pytest.raises(InvalidTag):
            wrap.decrypt(bytes.fromhex(blob["nonce"]), bytes.fromhex(blob["wrapped"]), _aad("dek", receipt.subject_ref))
        dek = wrap.decrypt(
            bytes.fromhex(blob["nonce"]), bytes.fromhex(blob["wrapped"]), _aad("dek", vault.subject_ref("bob"))
        )
        with pytest.raises(InvalidTag):
            AESGCM(dek).decrypt(sealed[:12], sealed[12:], _aad("value", receipt.subject_ref, "name", "1"))


def test_erase_twice_or_unknown_changes_nothing(vault: Vault) -> None:
    vault.put("alice", "name", "1", "Alice")
    vault.erase("alice")

    def snapshot() -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in vault.root.rglob("*") if p.is_file()}

    before = snapshot()
    with pytest.raises(ErasedSubject, match="already erased"):
        vault.erase("alice")
    with pytest.raises(UnknownSubject):
        vault.erase("nobody")
    with pytest.raises(UnknownSubject):
        vault.receipt("nobody")
    with pytest.raises(ErasedSubject):
        vault.put("alice", "name", "9", "Alice again")  # an erased subject is not collected again
    assert snapshot() == before


def test_erasure_hash_is_keyed_and_bound_to_the_dataset(vault: Vault) -> None:
    registry = "0x" + "ab" * 20
    one = vault.erasure_hash("alice", registry=registry, dataset_id=1)
    assert len(one) == 32
    assert one == vault.erasure_hash("alice", registry=registry.upper().replace("0X", "0x"), dataset_id=1)
    assert one != vault.erasure_hash("alice", registry=registry, dataset_id=2)
    assert one != vault.erasure_hash("bob", registry=registry, dataset_id=1)
    assert one != Vault(vault.root, bytes(32)).erasure_hash("alice", registry=registry, dataset_id=1)
    assert one.hex() != vault.subject_ref("alice")


# -- tables ---------------------------------------------------------------------------------


def test_import_table_replaces_private_values(vault: Vault) -> None:
    table = patients()
    protected = vault.import_table(table, "patient", ["name", "email"])
    assert list(protected.columns) == list(table.columns)
    for column in ("patient", "name", "email"):
        assert all(str(v).startswith(REFERENCE_PREFIX) for v in protected[column])
    # Each row's cells refer to its own subject.
    assert (protected["patient"] == protected["name"]).all()
    pd.testing.assert_frame_equal(protected[HEART_COLUMNS], table[HEART_COLUMNS])
    text = protected.to_csv()
    for value in [*table["name"], *table["email"], *table["patient"]]:
        assert value not in text
    revealed = vault.reveal_table(protected, ["patient", "name", "email"])
    pd.testing.assert_frame_equal(revealed.astype(str), table.astype(str))
    assert vault.get(table.at[3, "patient"], "email", 3) == table.at[3, "email"]


def test_reveal_after_erasure(vault: Vault) -> None:
    table = patients(10)
    protected = vault.import_table(table, "patient", ["name"])
    vault.erase(table.at[4, "patient"])
    with pytest.raises(ErasedSubject):
        vault.reveal_table(protected, ["name"])
    kept = vault.reveal_table(protected, ["name"], erased="drop")
    assert list(kept.index) == [i for i in range(10) if i != 4]
    assert list(kept["name"]) == [n for i, n in enumerate(table["name"]) if i != 4]
    with pytest.raises(ErasedSubject):
        vault.import_table(table, "patient", ["name"])  # the erased patient is still in it


def test_import_table_refusals_write_nothing(vault: Vault) -> None:
    table = patients(5)
    cases = [
        (table, "nope", ["name"]),
        (table, "patient", ["nope"]),
        (pd.concat([table, table]), "patient", ["name"]),  # duplicate record ids
        (table.assign(patient=[None, "a", "b", "c", "d"]), "patient", ["name"]),
    ]
    for frame, subject, columns in cases:
        with pytest.raises(BadInput):
            vault.import_table(frame, subject, columns)
    assert vault.subject_count() == 0
    assert not any((vault.root / "values").iterdir())
    with pytest.raises(BadInput):
        vault.reveal_table(table, ["name"])  # not references


# -- commitment -----------------------------------------------------------------------------


def test_merkle_proofs_verify_and_detect_a_changed_row() -> None:
    table = vault_free_table = patients(37).drop(columns=["name", "email"])
    rows = table_rows(vault_free_table)
    salt = b"owner-secret-salt"
    tree = MerkleTree(rows, salt=salt)
    for index in range(tree.size):
        proof = tree.proof(index)
        assert verify_inclusion(rows[index], proof, tree.root, salt=salt)
    proof = tree.proof(11)
    changed = table.copy()
    changed.at[11, "chol"] = changed.at[11, "chol"] + 1
    assert not verify_inclusion(table_rows(changed)[11], proof, tree.root, salt=salt)
    assert MerkleTree.from_table(changed, salt=salt).root != tree.root
    assert not verify_inclusion(rows[12], proof, tree.root, salt=salt)  # wrong position
    assert not verify_inclusion(rows[11], proof, tree.root)  # without the salt
    forged = MerkleProof(proof.index, proof.size, proof.path[:-1])
    assert not verify_inclusion(rows[11], forged, tree.root, salt=salt)
    assert not verify_inclusion(rows[11], MerkleProof(40, 37, proof.path), tree.root, salt=salt)


def test_merkle_root_matches_rfc9162_for_small_trees() -> None:
    import hashlib

    def leaf(x: bytes) -> bytes:
        return hashlib.sha256(b"\x00" + x).digest()

    def node(a: bytes, b: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + a + b).digest()

    rows = [b"a", b"b", b"c"]
    assert MerkleTree(rows[:1]).root == leaf(b"a")
    assert MerkleTree(rows).root == node(node(leaf(b"a"), leaf(b"b")), leaf(b"c"))
    with pytest.raises(BadInput):
        MerkleTree([])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_row_has_a_proof(rows: list[bytes], data: st.DataObject) -> None:
    tree = MerkleTree(rows)
    index = data.draw(st.integers(0, len(rows) - 1))
    assert verify_inclusion(rows[index], tree.proof(index), tree.root)
    other = data.draw(st.binary(max_size=9))
    if other != rows[index]:
        assert not verify_inclusion(other, tree.proof(index), tree.root)


def test_row_encoding_is_canonical() -> None:
    import numpy as np

    assert encode_row({"b": 1, "a": "x"}) == encode_row({"a": "x", "b": np.int64(1)}) == b'{"a":"x","b":1}'
    assert encode_row({"a": float("nan")}) == encode_row({"a": None}) == encode_row({"a": pd.NA})
    with pytest.raises(BadInput):
        encode_row({"a": float("inf")})
    with pytest.raises(BadInput):
        encode_row({"a": object()})
    table = patients(3)
    assert schema_hash(table) == schema_hash(table.copy())
    assert schema_hash(table) != schema_hash(table.astype({"age": str}))
    assert document_hash({"a": 1, "b": [1, 2]}) == document_hash({"b": [1, 2], "a": 1})
    assert document_hash(b"policy") != document_hash("policy")
