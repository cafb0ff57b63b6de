"""The embedded chain's key-value store: writes wait for a commit, a rollback drops them, reads see the latest."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.chain.embedded import SqliteKV


def test_commit_reaches_the_file_and_rollback_drops_what_followed(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite"
    kv = SqliteKV(path)
    kv[b"kept"] = b"1"
    assert kv[b"kept"] == b"1" and b"kept" in kv  # seen before the commit
    kv.commit()
    kv[b"dropped"] = b"2"
    kv[b"kept"] = b"changed"
    del kv[b"kept"]
    assert b"kept" not in kv
    with pytest.raises(KeyError):
        kv[b"kept"]
    kv.rollback()
    assert kv[b"kept"] == b"1"
    assert b"dropped" not in kv
    kv.close()

    reopened = SqliteKV(path)
    assert reopened[b"kept"] == b"1"
    assert b"dropped" not in reopened
    with pytest.raises(KeyError):
        del reopened[b"dropped"]
    del reopened[b"kept"]
    reopened.close()
    assert b"kept" not in SqliteKV(path)


def test_uncommitted_writes_never_reach_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kv.sqlite"
    kv = SqliteKV(path)
    kv[b"a"] = b"1"
    kv.commit()
    kv[b"b"] = b"2"  # a pending block, never committed
    other = SqliteKV(path)  # what a restart would read
    assert other[b"a"] == b"1"
    assert b"b" not in other


def test_the_read_cache_is_bounded_and_stays_correct(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SqliteKV, "CACHE_ENTRIES", 8)
    kv = SqliteKV(tmp_path / "kv.sqlite")
    for i in range(50):
        kv[i.to_bytes(4, "big")] = bytes([i])
    kv.commit()
    assert all(kv[i.to_bytes(4, "big")] == bytes([i]) for i in range(50))
    assert len(kv._cache) <= 8
    del kv[(3).to_bytes(4, "big")]
    kv.commit()
    assert (3).to_bytes(4, "big") not in kv
