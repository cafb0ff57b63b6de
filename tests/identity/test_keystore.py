"""Member keys in encrypted keystore v3 files: round trip, passwords, names, permissions, secrecy."""

from __future__ import annotations

import io
import json
import logging
import os
import stat
import sys
import traceback
from pathlib import Path

import pytest
from eth_account import Account

from fedledger.exceptions import KeystoreError
from fedledger.identity.keystore import PASSWORD_ENV, Keystore, password_from_env_or_prompt

LIGHT_N = 2**14
PASSWORD = "correct horse battery staple 7d1f"
WRONG = "not the password 93ab"
KEY = bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318")


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", scrypt_n=LIGHT_N)


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """No password variables from the outer environment, and no terminal to prompt on."""
    for var in list(os.environ):
        if var.startswith(PASSWORD_ENV):
            monkeypatch.delenv(var)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


def _texts(exc: BaseException) -> str:
    """Everything an exception could show: message, repr, causes, formatted traceback."""
    parts = ["".join(traceback.format_exception(exc))]
    while exc is not None:
        parts += [str(exc), repr(exc), repr(exc.args)]
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return "\n".join(parts)


def test_v3_round_trip(store: Keystore) -> None:
    account = store.create("alice", PASSWORD, private_key=KEY)
    data = json.loads(store.path("alice").read_text())
    assert data["version"] == 3
    assert data["crypto"]["kdf"] == "scrypt"
    assert data["crypto"]["kdfparams"]["n"] == LIGHT_N
    assert data["address"].lower().removeprefix("0x") == account.address.lower()[2:]
    assert store.address("alice") == account.address
    assert store.load("alice", PASSWORD).key == KEY
    # The standard format: any keystore v3 reader decrypts it.
    assert Account.decrypt(data, PASSWORD) == KEY
    assert store.names() == ["alice"]


def test_new_keys_are_random_and_distinct(store: Keystore) -> None:
    a = store.create("a", PASSWORD)
    b = store.create("b", PASSWORD)
    assert a.address != b.address
    assert store.load("b", PASSWORD).address == b.address
    assert store.names() == ["a", "b"]


def test_wrong_password_raises_keystore_error(store: Keystore) -> None:
    store.create("alice", PASSWORD, private_key=KEY)
    with pytest.raises(KeystoreError, match="cannot decrypt key 'alice'") as info:
        store.load("alice", WRONG)
    text = _texts(info.value)
    assert WRONG not in text and PASSWORD not in text


def test_password_from_env(store: Keystore, monkeypatch: pytest.MonkeyPatch) -> None:
    store.create("alice", PASSWORD, private_key=KEY)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    assert store.load("alice").key == KEY
    # A per-key variable wins over the shared one.
    monkeypatch.setenv(PASSWORD_ENV, WRONG)
    monkeypatch.setenv(f"{PASSWORD_ENV}_ALICE", PASSWORD)
    assert password_from_env_or_prompt("alice") == PASSWORD
    assert store.load("alice").key == KEY
    monkeypatch.setenv(f"{PASSWORD_ENV}_ALICE", WRONG)
    with pytest.raises(KeystoreError):
        store.load("alice")


def test_per_key_variable_name_is_normalized(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{PASSWORD_ENV}_ORG_1_KEY", PASSWORD)
    assert password_from_env_or_prompt("org-1.key") == PASSWORD


def test_no_password_and_no_terminal(store: Keystore) -> None:
    store.create("alice", PASSWORD, private_key=KEY)
    with pytest.raises(KeystoreError, match=f"no password for key 'alice': set {PASSWORD_ENV}"):
        store.load("alice")


def test_refuses_overwrite(store: Keystore) -> None:
    first = store.create("alice", PASSWORD, private_key=KEY)
    before = store.path("alice").read_bytes()
    with pytest.raises(KeystoreError, match="key 'alice' already exists"):
        store.create("alice", WRONG)
    assert store.path("alice").read_bytes() == before
    assert store.load("alice", PASSWORD).address == first.address


@pytest.mark.parametrize(
    "name",
    ["", "../escape", "a/b", "/abs", ".hidden", "-dash", "with space", "x" * 65, "näme", "a\nb", "alice\n"],
)
def test_invalid_names(store: Keystore, name: str) -> None:
    with pytest.raises(KeystoreError, match="invalid key name"):
        store.create(name, PASSWORD)
    with pytest.raises(KeystoreError, match="invalid key name"):
        store.load(name, PASSWORD)
    assert not store.directory.exists() or list(store.directory.iterdir()) == []


@pytest.mark.parametrize("name", ["a", "admin", "admin-2", "org_1.key", "X" * 64])
def test_valid_names(store: Keystore, name: str) -> None:
    store.create(name, PASSWORD)
    assert store.names() == [name]


def test_file_permissions_are_owner_only(store: Keystore) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        store.create("alice", PASSWORD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path("alice").stat().st_mode) == 0o600


def test_missing_and_corrupt_keystores(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="no key named 'ghost'"):
        store.load("ghost", PASSWORD)
    store.directory.mkdir(parents=True)
    store.path("broken").write_text("{not json")
    with pytest.raises(KeystoreError, match="not valid JSON"):
        store.load("broken", PASSWORD)
    store.path("v1").write_text(json.dumps({"version": 1}))
    with pytest.raises(KeystoreError, match="not an Ethereum keystore v3"):
        store.load("v1", PASSWORD)


def test_password_never_in_files_output_or_logs(
    store: Keystore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    account = store.create("alice", PASSWORD)
    assert store.load("alice").address == account.address
    raw = store.path("alice").read_text()
    assert PASSWORD not in raw
    assert account.key.hex() not in raw  # encrypted, not plain
    monkeypatch.setenv(PASSWORD_ENV, WRONG)
    with pytest.raises(KeystoreError) as info:
        store.load("alice")
    out = capsys.readouterr()
    seen = "\n".join([out.out, out.err, caplog.text, _texts(info.value)])
    assert PASSWORD not in seen and WRONG not in seen
