"""Commitments to a dataset without revealing it: a Merkle root of its rows, a schema hash, document hashes.

The root is the Merkle Tree Hash of RFC 9162 (Certificate Transparency v2, section 2.1): leaves are
``SHA-256(0x00 || salt || row)``, interior nodes ``SHA-256(0x01 || left || right)``, the tree split at
the largest power of two below its size. The one-byte prefixes keep a leaf from posing as a node
(second-preimage attacks on unprefixed trees); an inclusion proof is the RFC's audit path, so a
member can later show one row belongs to the registered dataset without showing the others.

The optional ``salt`` (kept by the owner, never on chain) stops anyone holding only the root or a
proof's sibling hashes from confirming a guessed row: low-entropy rows are otherwise easy to guess.
Commit to the *protected* table (private values replaced by vault references, see
:mod:`fedledger.data.vault`), so that erasing a subject never changes what was committed.

Rows are encoded canonically: a JSON object with sorted keys (so column order does not matter),
UTF-8, no whitespace; missing values (None, NaN, pandas NA) are ``null``, numpy scalars become
Python numbers. The commitment therefore binds typed values as loaded: load the table the same
way (same dtypes) to recompute it.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fedledger.exceptions import BadInput

__all__ = [
    "MerkleProof",
    "MerkleTree",
    "canonical_document",
    "document_hash",
    "encode_row",
    "leaf_hash",
    "schema_hash",
    "table_rows",
    "verify_inclusion",
]

_LEAF = b"\x00"
_NODE = b"\x01"


def _canonical(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, float) and math.isinf(value):
        raise BadInput(f"cannot commit to an infinite value ({value})")
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise BadInput(f"cannot commit to a value of type {type(value).__name__}: {value!r}")


def encode_row(row: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one row (column name -> value)."""
    return json.dumps(
        {str(k): _canonical(v) for k, v in row.items()},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    ).encode("utf-8")


def table_rows(table: pd.DataFrame) -> list[bytes]:
    """Canonical bytes of every row of ``table``, in order."""
    columns = [str(c) for c in table.columns]
    if len(set(columns)) != len(columns):
        raise BadInput(f"duplicate column names in {columns}")
    return [encode_row(dict(zip(columns, values, strict=True))) for values in table.itertuples(index=False)]


def leaf_hash(row: bytes, salt: bytes = b"") -> bytes:
    return hashlib.sha256(_LEAF + salt + row).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _root(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_root(leaves[:k]), _root(leaves[k:]))


def _path(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1 inclusion path, leaf to root."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _root(leaves[:k])]


@dataclass(frozen=True)
class MerkleProof:
    """That the row at ``index`` is in a tree of ``size`` rows (sibling hashes, leaf to root)."""

    index: int
    size: int
    path: tuple[bytes, ...]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "size": self.size, "path": ["0x" + p.hex() for p in self.path]}


class MerkleTree:
    """The RFC 9162 Merkle tree over a table's rows."""

    def __init__(self, rows: Sequence[bytes], *, salt: bytes = b"") -> None:
        if not rows:
            raise BadInput("cannot commit to an empty table")
        self.salt = salt
        self.leaves = [leaf_hash(row, salt) for row in rows]
        self.root = _root(self.leaves)

    @classmethod
    def from_table(cls, table: pd.DataFrame, *, salt: bytes = b"") -> MerkleTree:
        return cls(table_rows(table), salt=salt)

    @property
    def size(self) -> int:
        return len(self.leaves)

    def proof(self, index: int) -> MerkleProof:
        if not 0 <= index < self.size:
            raise BadInput(f"row {index} is not in a table of {self.size} rows")
        return MerkleProof(index, self.size, tuple(_path(index, self.leaves)))


def verify_inclusion(row: bytes, proof: MerkleProof, root: bytes, *, salt: bytes = b"") -> bool:
    """Whether ``row`` is row ``proof.index`` of the tree with ``root`` (RFC 9162 2.1.3.2)."""
    if not 0 <= proof.index < proof.size:
        return False
    fn, sn = proof.index, proof.size - 1
    r = leaf_hash(row, salt)
    for p in proof.path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = _node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def schema_hash(table: pd.DataFrame) -> bytes:
    """SHA-256 of the table's column names and dtypes (in column order)."""
    schema = [[str(c), str(t)] for c, t in zip(table.columns, table.dtypes, strict=True)]
    return hashlib.sha256(json.dumps(schema, separators=(",", ":")).encode()).digest()


def canonical_document(document: Any) -> bytes:
    """A JSON document in canonical form (sorted keys, no whitespace, UTF-8): the bytes :func:`document_hash`
    hashes, and so the bytes a content-addressed store keeps it under that very hash."""
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"cannot hash document: {exc}") from exc
    return text.encode("utf-8")


def document_hash(document: Any) -> bytes:
    """SHA-256 of a JSON document in canonical form (sorted keys, no whitespace), or of raw bytes.

    Used for the column classification and the privacy policy registered with a dataset.
    """
    if isinstance(document, bytes):
        return hashlib.sha256(document).digest()
    return hashlib.sha256(canonical_document(document)).digest()
