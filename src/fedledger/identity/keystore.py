"""Member keys in encrypted Ethereum keystore v3 files.

The password comes from an environment variable (``FEDLEDGER_PASSWORD``, or a
per-key variable) or an interactive prompt; it is never printed or logged, and
key material never leaves the :class:`eth_account` object.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import sys
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address

from fedledger.exceptions import KeystoreError
from fedledger.identity.private import write_private
from fedledger.store.safejson import loads_shallow

__all__ = ["Keystore", "password_from_env_or_prompt"]

PASSWORD_ENV = "FEDLEDGER_PASSWORD"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def _env_name(name: str) -> str:
    return f"{PASSWORD_ENV}_{re.sub(r'[^A-Za-z0-9]', '_', name).upper()}"


def password_from_env_or_prompt(name: str, *, confirm: bool = False) -> str:
    """The password for key ``name``: ``FEDLEDGER_PASSWORD_<NAME>``, else
    ``FEDLEDGER_PASSWORD``, else a prompt on a terminal."""
    for var in (_env_name(name), PASSWORD_ENV):
        value = os.environ.get(var)
        if value:
            return value
    if not sys.stdin.isatty():
        raise KeystoreError(
            f"no password for key {name!r}: set {PASSWORD_ENV} (or {_env_name(name)}) or run on a terminal"
        )
    password = getpass.getpass(f"Password for key {name!r}: ")
    if confirm and getpass.getpass("Repeat password: ") != password:
        raise KeystoreError("passwords do not match")
    if not password:
        raise KeystoreError("empty password")
    return password


STANDARD_SCRYPT_N = 2**18
MAX_SCRYPT_N = 2**22
"""The largest scrypt work factor a key may ask for: 4 GiB of memory to open it at r = 8 already."""
MAX_SCRYPT_R, MAX_SCRYPT_P = 32, 16
MAX_PBKDF2_ROUNDS = 10_000_000
"""Ten times the most any Ethereum client writes: a key file asking more is corrupt or an attempt to stall us."""
KEY_LENGTHS = range(32, 65)
"""Derived key lengths: 32 bytes is what every v3 keystore uses (16 for AES-128, 16 for the MAC)."""


def _is_int_in(value: object, low: int, high: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and low <= value <= high


def check_kdf(crypto: object, path: Path) -> None:
    """Refuse a key file whose key derivation would not finish, or would take gigabytes, before running it: its
    function is scrypt or PBKDF2-HMAC-SHA256 with work factors and a key length no real keystore exceeds."""
    if not isinstance(crypto, dict) or not isinstance(crypto.get("kdfparams"), dict):
        raise KeystoreError(f"keystore file {path} has no key derivation parameters")
    kdf, params = crypto.get("kdf"), crypto["kdfparams"]
    if not _is_int_in(params.get("dklen"), KEY_LENGTHS.start, KEY_LENGTHS.stop - 1):
        raise KeystoreError(f"keystore file {path}: dklen must be 32 to 64, got {params.get('dklen')!r}")
    if kdf == "scrypt":
        n = params.get("n")
        if not _is_int_in(n, 2, MAX_SCRYPT_N) or n & (n - 1):
            raise KeystoreError(f"keystore file {path}: scrypt n must be a power of two up to 2^22, got {n!r}")
        for name, top in (("r", MAX_SCRYPT_R), ("p", MAX_SCRYPT_P)):
            if not _is_int_in(params.get(name), 1, top):
                raise KeystoreError(f"keystore file {path}: scrypt {name} must be 1 to {top}, got {params.get(name)!r}")
    elif kdf == "pbkdf2":
        if not _is_int_in(params.get("c"), 1, MAX_PBKDF2_ROUNDS):
            raise KeystoreError(
                f"keystore file {path}: pbkdf2 rounds must be 1 to {MAX_PBKDF2_ROUNDS}, got {params.get('c')!r}"
            )
    else:
        raise KeystoreError(f"keystore file {path}: unknown key derivation {kdf!r} (scrypt or pbkdf2)")


class Keystore:
    """A folder of keystore v3 JSON files, one per named key (``<name>.json``).

    ``scrypt_n`` is the scrypt work factor of new keystores: the standard 2**18
    by default; simulations of many members may lower it (still keystore v3).
    """

    def __init__(self, directory: Path, *, scrypt_n: int = STANDARD_SCRYPT_N) -> None:
        self.directory = Path(directory)
        self.scrypt_n = scrypt_n

    def path(self, name: str) -> Path:
        if not _NAME.fullmatch(name):
            raise KeystoreError(f"invalid key name {name!r}: use letters, digits, '_', '.', '-' (max 64)")
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        return sorted(p.stem for p in self.directory.glob("*.json")) if self.directory.is_dir() else []

    def create(self, name: str, password: str, *, private_key: bytes | None = None) -> LocalAccount:
        """Create (or import) a key and store it encrypted; refuses to overwrite."""
        path = self.path(name)
        if path.exists():
            raise KeystoreError(f"key {name!r} already exists in {self.directory}")
        account: LocalAccount = Account.from_key(private_key) if private_key else Account.create()
        encrypted = Account.encrypt(account.key, password, kdf="scrypt", iterations=self.scrypt_n)
        try:
            write_private(path, json.dumps(encrypted), exclusive=True)
        except FileExistsError:
            raise KeystoreError(f"key {name!r} already exists in {self.directory}") from None
        return account

    def address(self, name: str) -> str:
        """The key's address, read from the keystore without decrypting it."""
        data = self._read(name)
        try:
            return to_checksum_address(str(data["address"]))
        except (KeyError, ValueError) as exc:
            raise KeystoreError(f"keystore for {name!r} has no valid address") from exc

    def load(self, name: str, password: str | None = None) -> LocalAccount:
        """Decrypt key ``name`` (password from the environment or a prompt if not given)."""
        data = self._read(name)
        check_kdf(data.get("crypto"), self.path(name))  # before asking for a password it could not use
        secret = password if password is not None else password_from_env_or_prompt(name)
        try:
            key = Account.decrypt(data, secret)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:  # eth_account reads fields unchecked
            raise KeystoreError(f"cannot decrypt key {name!r}: wrong password or corrupt keystore") from exc
        account: LocalAccount = Account.from_key(key)
        return account

    def _read(self, name: str) -> dict[str, object]:
        path = self.path(name)
        try:
            data = loads_shallow(path.read_text(), what=f"keystore file {path}")
        except FileNotFoundError as exc:
            raise KeystoreError(f"no key named {name!r} in {self.directory}") from exc
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"keystore file {path} is not valid JSON") from exc
        if not isinstance(data, dict) or data.get("version") != 3:
            raise KeystoreError(f"keystore file {path} is not an Ethereum keystore v3")
        return data
