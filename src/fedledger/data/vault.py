"""An encrypted vault for a dataset's private values, with erasure by crypto-shredding.

Envelope encryption, as cloud KMSs do it: every data subject has its own random 256-bit data
key (DEK); each private value is sealed with AES-256-GCM under its subject's DEK, and the DEK is
stored only wrapped (AES-256-GCM) under the organization's key-encryption key (KEK, derived from
the member's account key by :func:`fedledger.data.keys.org_data_key`). Every ciphertext is bound
through its associated data to (subject, column, record id), so values cannot be swapped between
cells or subjects without failing authentication; every wrapped DEK is bound to its subject.

Erasure (GDPR Art. 17) destroys the subject's wrapped DEK: its file is overwritten with random
bytes, synced and unlinked. Every ciphertext of that subject, here or in any copy made earlier
(backups, replicas, exported files), is then undecryptable, even with the organization's key:
this is crypto-shredding, and it is why the ciphertexts themselves need not be hunted down.
Out of scope, and said plainly: copies of the *key file* made before erasure (file-system
snapshots, backups of the vault folder) and remanence on physical media (SSD wear levelling,
journaling file systems may keep old blocks); keep the key folder out of backups or erase backups
by the same rule.

Layout (under ``<workspace>/vault/``)::

    keys/<ref>.key        the subject's wrapped DEK (destroyed on erasure)
    values/<ref>.json     the subject's ciphertexts, column -> record id -> nonce || ciphertext
    erased/<ref>.json     the erasure receipt (a tombstone: no values are accepted again)

``<ref>`` is an HMAC-SHA256 of the subject id under a key derived from the KEK, so file names and
vault references (``vault:<ref>`` in protected tables) never show a subject id. Erasure records on
the ledger carry another HMAC, bound to the dataset (:meth:`Vault.erasure_hash`), so they cannot be
linked to the vault files or across datasets by anyone without the organization's key.

One process writes a vault at a time (the workspace's chain lock serializes CLI commands).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount

from fedledger.data.keys import org_data_key
from fedledger.exceptions import BadInput, ConfigError, ErasedSubject, IntegrityError, UnknownSubject
from fedledger.identity.private import private_dir, write_private
from fedledger.store.safejson import loads_shallow

__all__ = [
    "REFERENCE_PREFIX",
    "ErasedSubject",
    "ErasureReceipt",
    "UnknownSubject",
    "Vault",
    "vault_root",
]

REFERENCE_PREFIX = "vault:"
_FORMAT = 1
_NONCE = 12  # bytes: the AES-GCM standard nonce, random per encryption
_KEY_BYTES = 32


@dataclass(frozen=True)
class ErasureReceipt:
    """What one erasure destroyed (no subject id: ``subject_ref`` is the vault's keyed pseudonym)."""

    subject_ref: str
    erased_at: str
    values: int  # ciphertexts made undecryptable
    key_bytes_overwritten: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _derive(kek: bytes, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=_KEY_BYTES, salt=None, info=b"fedledger/vault/" + purpose.encode())
    return hkdf.derive(kek)


def _aad(*parts: str) -> bytes:
    # JSON keeps the parts unambiguous (no separator can be forged inside a part).
    return json.dumps(["fedledger/vault", _FORMAT, *parts], ensure_ascii=False).encode("utf-8")


def _json_value(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    raise BadInput(f"the vault stores strings, numbers, booleans and missing values, not {type(value).__name__}")


def _text(value: Any, what: str) -> str:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise BadInput(f"malformed {what}: expected a non-empty string, got {value!r}")
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    write_private(path, data)  # owner-only from the first byte, renamed into place when complete


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Vault:
    """The vault in ``root``, under the organization's key-encryption key ``kek`` (32 bytes).

    Open it for a workspace member with :meth:`for_account`.
    """

    def __init__(self, root: Path, kek: bytes) -> None:
        if not isinstance(kek, bytes) or len(kek) != _KEY_BYTES:
            raise BadInput("the vault's key-encryption key must be 32 bytes")
        self.root = Path(root)
        self._wrap = AESGCM(_derive(kek, "wrap-dek"))
        self._index_key = _derive(kek, "subject-index")
        self._erasure_key = _derive(kek, "erasure-record")
        self._deks: dict[str, AESGCM] = {}
        for folder in (self.root, self._keys, self._values, self._erased):
            private_dir(folder)

    @classmethod
    def for_account(cls, root: Path, account: LocalAccount) -> Vault:
        return cls(root, org_data_key(account, "vault-kek"))

    @property
    def _keys(self) -> Path:
        return self.root / "keys"

    @property
    def _values(self) -> Path:
        return self.root / "values"

    @property
    def _erased(self) -> Path:
        return self.root / "erased"

    # -- identities ---------------------------------------------------------------

    def subject_ref(self, subject: str) -> str:
        """The vault's keyed pseudonym of ``subject`` (hex HMAC-SHA256)."""
        subject = _text(subject, "subject id")
        return hmac.new(self._index_key, subject.encode("utf-8"), hashlib.sha256).hexdigest()

    def reference(self, subject: str) -> str:
        """What a protected table holds in place of the subject's private values."""
        return REFERENCE_PREFIX + self.subject_ref(subject)

    def erasure_hash(self, subject: str, *, registry: str, dataset_id: int) -> bytes:
        """The subject's id as an erasure record on the ledger shows it: an HMAC under the
        organization's key over (registry, dataset, subject), unlinkable across datasets."""
        subject = _text(subject, "subject id")
        message = json.dumps([registry.lower(), int(dataset_id), subject], ensure_ascii=False).encode("utf-8")
        return hmac.new(self._erasure_key, message, hashlib.sha256).digest()

    # -- values ---------------------------------------------------------------------

    def put(self, subject: str, column: str, record_id: str | int, value: Any) -> str:
        """Seal one private value; returns the reference that replaces it in the table."""
        ref = self.subject_ref(subject)
        self._store(ref, [(_text(column, "column"), _text(record_id, "record id"), value)])
        return REFERENCE_PREFIX + ref

    def get(self, subject: str, column: str, record_id: str | int) -> Any:
        """The value sealed for (subject, column, record id)."""
        return self._open(self.subject_ref(subject), _text(column, "column"), _text(record_id, "record id"))

    def has(self, subject: str) -> bool:
        """Whether the vault holds live (not erased) values for ``subject``."""
        return (self._keys / f"{self.subject_ref(subject)}.key").exists()

    def is_erased(self, subject: str) -> bool:
        return (self._erased / f"{self.subject_ref(subject)}.json").exists()

    def receipt(self, subject: str) -> ErasureReceipt:
        """The receipt of ``subject``'s erasure; :class:`UnknownSubject` when it was never erased."""
        path = self._erased / f"{self.subject_ref(subject)}.json"
        try:
            return ErasureReceipt(**loads_shallow(path.read_text(), what=str(path)))
        except FileNotFoundError:
            raise UnknownSubject("this subject was never erased from the vault") from None
        except (ValueError, TypeError) as exc:  # not JSON, not an object, or not a receipt's fields
            raise IntegrityError(f"{path}: not an erasure receipt: {exc}") from exc

    def subject_count(self) -> int:
        """Subjects with live values."""
        return sum(1 for _ in self._keys.glob("*.key"))

    # -- erasure --------------------------------------------------------------------

    def erase(self, subject: str) -> ErasureReceipt:
        """Destroy ``subject``'s data key: every value of theirs, here or in any copy, becomes
        undecryptable. :class:`ErasedSubject` if already erased, :class:`UnknownSubject` if the
        vault never held them; in both cases nothing changes."""
        ref = self.subject_ref(subject)
        key_path = self._keys / f"{ref}.key"
        if (self._erased / f"{ref}.json").exists():
            raise ErasedSubject("this subject was already erased from the vault")
        if not key_path.exists():
            raise UnknownSubject("the vault holds no values for this subject")
        values = sum(len(records) for records in self._load_values(ref).values())
        size = key_path.stat().st_size
        # Overwrite in place before unlinking, so the old key bytes are not simply left in a free block.
        with open(key_path, "r+b") as f:
            f.write(secrets.token_bytes(size))
            f.flush()
            os.fsync(f.fileno())
        key_path.unlink()
        _sync_dir(self._keys)
        self._deks.pop(ref, None)
        receipt = ErasureReceipt(
            subject_ref=ref,
            erased_at=datetime.now(UTC).isoformat(timespec="seconds"),
            values=values,
            key_bytes_overwritten=size,
        )
        _write_atomic(self._erased / f"{ref}.json", json.dumps(receipt.to_json(), sort_keys=True).encode())
        return receipt

    # -- tables ---------------------------------------------------------------------

    def import_table(self, table: pd.DataFrame, subject_column: str, private_columns: Sequence[str]) -> pd.DataFrame:
        """Seal the subject column and ``private_columns`` of ``table``; returns a copy where each
        of those cells holds the subject's vault reference instead. Record ids are the table's index
        (which must be unique). Nothing is written when the table is refused."""
        columns = self._check_table(table, subject_column, private_columns)
        by_subject: dict[str, list[tuple[str, str, Any]]] = {}
        refs: list[str] = []
        for record, row in zip(table.index, table[columns].itertuples(index=False), strict=True):
            subject = row[0]
            if subject is None or (isinstance(subject, float) and subject != subject):
                raise BadInput(f"record {record!r} has no value in subject column {subject_column!r}")
            ref = self.subject_ref(str(subject))
            if (self._erased / f"{ref}.json").exists():
                raise ErasedSubject(f"record {record!r} belongs to an erased subject; drop it before importing")
            refs.append(ref)
            cells = by_subject.setdefault(ref, [])
            cells.extend((column, str(record), _json_value(value)) for column, value in zip(columns, row, strict=True))
        for ref, cells in by_subject.items():
            self._store(ref, cells)
        protected = table.copy()
        references = [REFERENCE_PREFIX + ref for ref in refs]
        for column in columns:
            protected[column] = pd.Series(references, index=table.index, dtype=object)
        return protected

    def reveal_table(
        self,
        protected: pd.DataFrame,
        private_columns: Sequence[str],
        *,
        erased: Literal["raise", "drop"] = "raise",
    ) -> pd.DataFrame:
        """The values behind the references in ``private_columns`` of a protected table. Rows of
        erased subjects raise :class:`ErasedSubject`, or are dropped with ``erased="drop"``."""
        for column in private_columns:
            if column not in protected.columns:
                raise BadInput(f"no column {column!r} in the table")
        revealed = protected.copy()
        keep = []
        for record in protected.index:
            try:
                for column in private_columns:
                    revealed.at[record, column] = self._resolve(protected.at[record, column], column, str(record))
                keep.append(True)
            except ErasedSubject:
                if erased == "raise":
                    raise
                keep.append(False)
        return revealed[keep]

    # -- internals ------------------------------------------------------------------

    @staticmethod
    def _check_table(table: pd.DataFrame, subject_column: str, private_columns: Sequence[str]) -> list[str]:
        if not isinstance(table, pd.DataFrame):
            raise BadInput("import_table expects a pandas DataFrame")
        if subject_column not in table.columns:
            raise BadInput(f"no subject column {subject_column!r} in the table (columns: {list(table.columns)})")
        missing = [c for c in private_columns if c not in table.columns]
        if missing:
            raise BadInput(f"private columns not in the table: {missing}")
        if not table.index.is_unique:
            raise BadInput("the table's index must be unique: it is the record id of every sealed value")
        columns = [subject_column, *(c for c in dict.fromkeys(private_columns) if c != subject_column)]
        for column in columns:
            _text(column, "column name")
        return columns

    def _resolve(self, reference: Any, column: str, record_id: str) -> Any:
        if not isinstance(reference, str) or not reference.startswith(REFERENCE_PREFIX):
            raise BadInput(f"record {record_id!r}, column {column!r}: {reference!r} is not a vault reference")
        ref = reference[len(REFERENCE_PREFIX) :]
        if len(ref) != 64 or any(c not in "0123456789abcdef" for c in ref):
            raise BadInput(f"record {record_id!r}, column {column!r}: malformed vault reference")
        return self._open(ref, column, record_id)

    def _dek(self, ref: str, *, create: bool = False) -> AESGCM:
        if ref in self._deks:
            return self._deks[ref]
        path = self._keys / f"{ref}.key"
        if (self._erased / f"{ref}.json").exists():
            raise ErasedSubject("this subject was erased: its values can no longer be decrypted")
        if path.exists():
            try:
                blob = loads_shallow(path.read_text(), what=str(path))
                nonce, wrapped = bytes.fromhex(blob["nonce"]), bytes.fromhex(blob["wrapped"])
                dek = self._wrap.decrypt(nonce, wrapped, _aad("dek", ref))
            except InvalidTag:
                raise IntegrityError(
                    f"{path}: the data key does not unwrap (wrong organization key, or tampered)"
                ) from None
            except (ValueError, KeyError, TypeError) as exc:
                raise IntegrityError(f"{path}: unreadable wrapped key: {exc}") from exc
        elif create:
            dek = AESGCM.generate_key(bit_length=256)
            nonce = secrets.token_bytes(_NONCE)
            wrapped = self._wrap.encrypt(nonce, dek, _aad("dek", ref))
            blob = {"version": _FORMAT, "alg": "AES-256-GCM", "nonce": nonce.hex(), "wrapped": wrapped.hex()}
            _write_atomic(path, json.dumps(blob).encode())
        else:
            raise UnknownSubject("the vault holds no values for this subject")
        aead = AESGCM(dek)
        self._deks[ref] = aead
        return aead

    def _load_values(self, ref: str) -> dict[str, dict[str, str]]:
        path = self._values / f"{ref}.json"
        try:
            data = loads_shallow(path.read_text(), what=str(path))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise IntegrityError(f"{path}: not a vault values file: {exc}") from exc
        if not isinstance(data, dict):
            raise IntegrityError(f"{path}: not a vault values file")
        return data

    def _store(self, ref: str, cells: Iterable[tuple[str, str, Any]]) -> None:
        aead = self._dek(ref, create=True)
        values = self._load_values(ref)
        for column, record_id, value in cells:
            plaintext = json.dumps(_json_value(value), ensure_ascii=False).encode("utf-8")
            nonce = secrets.token_bytes(_NONCE)
            sealed = nonce + aead.encrypt(nonce, plaintext, _aad("value", ref, column, record_id))
            values.setdefault(column, {})[record_id] = sealed.hex()
        _write_atomic(self._values / f"{ref}.json", json.dumps(values, sort_keys=True).encode())

    def _open(self, ref: str, column: str, record_id: str) -> Any:
        aead = self._dek(ref)
        try:
            sealed = bytes.fromhex(self._load_values(ref)[column][record_id])
        except KeyError:
            raise BadInput(
                f"the vault holds no value for this subject in column {column!r}, record {record_id!r}"
            ) from None
        except ValueError as exc:
            raise IntegrityError(f"vault value for column {column!r}, record {record_id!r} is not hex") from exc
        try:
            plaintext = aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad("value", ref, column, record_id))
        except InvalidTag:
            raise IntegrityError(
                f"vault value for column {column!r}, record {record_id!r} fails authentication (moved or tampered)"
            ) from None
        return json.loads(plaintext)


def vault_root(workspace_root: Path) -> Path:
    """Where a workspace keeps its vault."""
    root = Path(workspace_root) / "vault"
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root} exists and is not a folder")
    return root
