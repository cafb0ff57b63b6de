"""Secret and personal files are owner-only: 0600 files in 0700 folders, whatever the umask.

Keys, vault files (wrapped data keys, ciphertexts, erasure receipts), round secrets of secure
aggregation, registration files (their Merkle salts open the on-chain commitment) and every copy of
raw data the product writes (the demo's hospital CSVs, with their patients' identifiers).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from fedledger.data.vault import Vault
from fedledger.demo import run_demo
from fedledger.federation import NodeEvent
from fedledger.identity import Keystore
from fedledger.identity.private import open_private, private_dir, restrict, write_private

# The workspace folders whose every file is secret or personal.
SENSITIVE = ("keys", "data", "secagg", "vault")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def loose(root: Path) -> list[str]:
    """Everything under ``root`` (itself included) that is not 0600 (files) or 0700 (folders)."""
    found = []
    for path in [root, *root.rglob("*")]:
        want = 0o700 if path.is_dir() else 0o600
        if mode(path) != want:
            found.append(f"{path.relative_to(root.parent)}: {oct(mode(path))}, expected {oct(want)}")
    return found


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277])
def test_private_files_and_folders_do_not_depend_on_the_umask(tmp_path: Path, mask: int) -> None:
    os.chmod(tmp_path, 0o755)
    with umask(mask):
        folder = private_dir(tmp_path / "a" / "b")
        write_private(folder / "secret.bin", b"s")
        with open_private(tmp_path / "c" / "table.csv", "w", encoding="utf-8") as fh:
            fh.write("x\n")
        write_private(folder / "key.json", "{}", exclusive=True)
        with pytest.raises(FileExistsError):
            write_private(folder / "key.json", "{}", exclusive=True)
    assert mode(tmp_path) == 0o755  # an existing parent is left as it was
    for path in (tmp_path / "a", folder, tmp_path / "c"):
        assert mode(path) == 0o700, path
    for path in (folder / "secret.bin", folder / "key.json", tmp_path / "c" / "table.csv"):
        assert mode(path) == 0o600, path
    assert (tmp_path / "c" / "table.csv").read_text() == "x\n"
    assert sorted(p.name for p in folder.iterdir()) == ["key.json", "secret.bin"]  # no temporary left behind


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), open_private(tmp_path / "f.csv", "w") as fh:
        fh.write("half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_existing_loose_folders_and_files_are_tightened(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir(mode=0o755)
    (tmp_path / "d" / "f").write_text("x")
    os.chmod(tmp_path / "d" / "f", 0o644)
    private_dir(tmp_path / "d")
    restrict(tmp_path / "d" / "f")
    assert loose(tmp_path / "d") == []


def test_keystore_files_are_private(tmp_path: Path) -> None:
    with umask(0):
        Keystore(tmp_path / "keys", scrypt_n=2**4).create("admin", "pw")
    assert loose(tmp_path / "keys") == []


def test_vault_files_are_private(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    with umask(0):
        vault = Vault(root, b"k" * 32)
        vault.put("alice", "ssn", 1, "123-45-6789")
        vault.put("bob", "ssn", 2, "987-65-4321")
        vault.erase("bob")
    names = {p.relative_to(root).parts[0] for p in root.rglob("*") if p.is_file()}
    assert names == {"keys", "values", "erased"}
    assert loose(root) == []


def test_a_demo_workspace_keeps_every_secret_and_personal_file_private(tmp_path: Path) -> None:
    """A short secure-aggregation demo under umask 0 (everything would be world-writable by default);
    round secrets only live during their round, so they are checked while it runs."""
    root = tmp_path / "ws"
    secrets_seen: dict[str, tuple[int, int]] = {}  # path -> (mode seen, mode expected)

    def snapshot(event: NodeEvent) -> None:
        for path in (root / "secagg").rglob("*") if (root / "secagg").is_dir() else ():
            secrets_seen[str(path.relative_to(root))] = (mode(path), 0o700 if path.is_dir() else 0o600)

    with umask(0):
        run_demo(workspace=root, members=3, rounds=1, malicious=0, seed=3, secure_aggregation=True, on_event=snapshot)
    assert any(name.endswith(".secagg") for name in secrets_seen), secrets_seen
    assert {name: oct(seen) for name, (seen, want) in secrets_seen.items() if seen != want} == {}
    present = {name for name in SENSITIVE if (root / name).exists()}
    assert present >= {"keys", "data", "secagg"}
    data = {p.name for p in (root / "data").iterdir()}
    assert {"hospital_1.csv", "hospital_1.protected.csv", "test.csv", "registrations-1.json"} <= data
    problems = [problem for name in sorted(present) for problem in loose(root / name)]
    assert problems == []
