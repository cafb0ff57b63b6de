"""Organization data keys, derived from the workspace account's private key.

One secret to keep (the keystore, already password-protected) yields an independent
key per purpose through HKDF-SHA256 (RFC 5869): knowing one derived key reveals
nothing about the account key or the other purposes' keys. Rotating the account key
rotates every data key, so pseudonyms and vault wrapping change with it.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount

__all__ = ["PURPOSES", "org_data_key"]

# Every purpose a data key is used for; a typo'd purpose must not silently derive a fresh key.
PURPOSES = ("pseudonymize", "tokenize", "vault-kek", "labels")
_SALT = b"fedledger/data-keys/v1"


def org_data_key(account: LocalAccount, purpose: str, *, length: int = 32) -> bytes:
    """The organization's ``length``-byte key for ``purpose`` (one of :data:`PURPOSES`)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown data key purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=b"fedledger/" + purpose.encode())
    return hkdf.derive(bytes(account.key))
