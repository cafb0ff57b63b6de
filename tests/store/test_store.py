from __future__ import annotations

import hashlib
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.exceptions import BlobNotFound, IntegrityError, StoreError, UpdateRejected
from fedledger.store import BlobStore, decode_tensors, encode_tensors


@pytest.fixture(params=["local", "file", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return BlobStore(tmp_path / "store")
    if request.param == "file":
        return BlobStore(f"file://{tmp_path}/store")
    return BlobStore(f"memory://fedledger-test-{uuid.uuid4().hex}")


def test_put_returns_sha256_and_get_roundtrips(store: BlobStore) -> None:
    data = b"hello federated world"
    blob_id = store.put(data)
    assert blob_id == hashlib.sha256(data).hexdigest()
    assert store.has(blob_id)
    assert blob_id in store
    assert store.get(blob_id) == data
    assert list(store.ids()) == [blob_id]


def test_put_is_idempotent(store: BlobStore) -> None:
    assert store.put(b"x") == store.put(b"x")
    assert len(list(store.ids())) == 1


def test_empty_blob(store: BlobStore) -> None:
    blob_id = store.put(b"")
    assert store.get(blob_id) == b""


def test_missing_blob_names_the_id(store: BlobStore) -> None:
    missing = "ab" * 32
    assert not store.has(missing)
    with pytest.raises(BlobNotFound, match=missing):
        store.get(missing)


def test_delete(store: BlobStore) -> None:
    blob_id = store.put(b"to erase")
    assert store.delete(blob_id) is True
    assert not store.has(blob_id)
    assert store.delete(blob_id) is False
    with pytest.raises(BlobNotFound):
        store.get(blob_id)


@pytest.mark.parametrize("bad", ["", "abc", "AB" * 32, "g" * 64, "a" * 63, "a" * 65, "../" + "a" * 61])
def test_malformed_ids_are_rejected(store: BlobStore, bad: str) -> None:
    for op in (store.get, store.has, store.delete):
        with pytest.raises(StoreError, match="malformed blob id"):
            op(bad)


def test_local_layout_is_sharded_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob_id = store.put(b"payload")
    path = store.path_of(blob_id)
    assert path == tmp_path / blob_id[:2] / blob_id
    assert path.read_bytes() == b"payload"
    assert sorted(p.name for p in (tmp_path / blob_id[:2]).iterdir()) == [blob_id]


def test_tampered_blob_raises_integrity_error_with_actual_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob_id = store.put(b"original bytes")
    store.path_of(blob_id).write_bytes(b"tampered bytes")
    actual = hashlib.sha256(b"tampered bytes").hexdigest()
    with pytest.raises(IntegrityError) as info:
        store.get(blob_id)
    assert blob_id in str(info.value) and actual in str(info.value)


def test_put_repairs_a_truncated_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    blob_id = store.put(b"0123456789")
    store.path_of(blob_id).write_bytes(b"01234")
    store.put(b"0123456789")
    assert store.get(blob_id) == b"0123456789"


def test_memory_store_detects_tampering() -> None:
    store = BlobStore(f"memory://tamper-{uuid.uuid4().hex}")
    blob_id = store.put(b"abc")
    store._fs.pipe_file(store._key(blob_id), b"abd")
    with pytest.raises(IntegrityError, match=blob_id):
        store.get(blob_id)


def test_size_limit_on_put_and_get(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_blob_bytes=16)
    with pytest.raises(StoreError, match=r"17 bytes.*limit of 16"):
        store.put(b"x" * 17)
    blob_id = BlobStore(tmp_path).put(b"y" * 32)  # written by a store with the default limit
    with pytest.raises(StoreError, match=r"32 bytes.*limit of 16"):
        store.get(blob_id)


def test_path_of_is_local_only() -> None:
    store = BlobStore(f"memory://p-{uuid.uuid4().hex}")
    with pytest.raises(StoreError, match="not local"):
        store.path_of("a" * 64)


def test_file_url_and_path_share_the_same_blobs(tmp_path: Path) -> None:
    blob_id = BlobStore(tmp_path).put(b"shared")
    assert BlobStore(f"file://{tmp_path}").get(blob_id) == b"shared"


def test_unknown_protocol_is_a_store_error() -> None:
    with pytest.raises(StoreError):
        BlobStore("nosuchproto://bucket/x")


# -- tensors -------------------------------------------------------------------


def test_tensors_roundtrip_with_metadata() -> None:
    tensors = {
        "w": np.arange(6, dtype=np.float32).reshape(2, 3),
        "b": np.array([2**64 - 1, 2**63, 0], dtype=np.uint64),
        "scalar": np.float64(2.5),
    }
    out, meta = decode_tensors(encode_tensors(tensors, {"k": "v"}))
    assert meta == {"k": "v"}
    assert sorted(out) == ["b", "scalar", "w"]
    for name, arr in tensors.items():
        assert out[name].dtype == np.asarray(arr).dtype
        np.testing.assert_array_equal(out[name], arr)
    out["w"][0, 0] = 7  # decoded arrays are writable


def test_encoding_is_independent_of_order_layout_and_endianness() -> None:
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    one = encode_tensors({"a": a, "b": np.ones(2, np.float32)}, {"x": "1", "y": "2"})
    two = encode_tensors({"b": np.ones(2, ">f4"), "a": np.asfortranarray(a)}, {"y": "2", "x": "1"})
    assert one == two


def test_encoding_is_identical_across_processes() -> None:
    code = (
        "import hashlib, numpy as np; from fedledger.store import encode_tensors;"
        "b = encode_tensors({'w': np.arange(5, dtype=np.float32), 'v': np.ones(3, np.uint64)},"
        " {'a': '1', 'b': '2', 'c': '3', 'd': '4', 'e': '5'}); print(hashlib.sha256(b).hexdigest())"
    )
    digests = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(3)
    }
    assert len(digests) == 1


def test_output_is_readable_by_the_safetensors_library() -> None:
    from safetensors.numpy import load

    out = load(encode_tensors({"x": np.arange(3, dtype=np.int64)}))
    np.testing.assert_array_equal(out["x"], [0, 1, 2])


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\x00" * 7,
        b"not safetensors at all",
        b"\xff" * 8 + b"{}",
        b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
        b"\x04\x00\x00\x00\x00\x00\x00\x00\xff\xfe{}",
    ],
)
def test_garbage_is_rejected(blob: bytes) -> None:
    with pytest.raises(UpdateRejected, match="not a safetensors blob"):
        decode_tensors(blob)


def test_truncated_and_bad_offsets_are_rejected() -> None:
    blob = encode_tensors({"x": np.arange(10, dtype=np.float32)})
    with pytest.raises(UpdateRejected, match="not a safetensors blob"):
        decode_tensors(blob[:-1])
    with pytest.raises(UpdateRejected, match="not a safetensors blob"):
        decode_tensors(blob + b"\x00\x00\x00\x00")
    header_len = int.from_bytes(blob[:8], "little")
    corrupt = blob[:8] + blob[8 : 8 + header_len].replace(b'"F32"', b'"Q99"') + blob[8 + header_len :]
    with pytest.raises(UpdateRejected, match="not a safetensors blob"):
        decode_tensors(corrupt)


def test_unsupported_dtype_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="complex128"):
        encode_tensors({"z": np.zeros(2, dtype=np.complex128)})


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.text(alphabet="abcdefghij._0123456789", min_size=1, max_size=8),
        st.lists(st.floats(allow_nan=False, width=32), max_size=10),
        max_size=5,
    )
)
def test_tensor_roundtrip_property(data: dict[str, list[float]]) -> None:
    tensors = {k: np.asarray(v, dtype=np.float32) for k, v in data.items()}
    blob = encode_tensors(tensors)
    out, _ = decode_tensors(blob)
    assert sorted(out) == sorted(tensors)
    for k in tensors:
        np.testing.assert_array_equal(out[k], tensors[k])
    assert encode_tensors(out) == blob


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2000))
def test_blobstore_roundtrip_property(data: bytes) -> None:
    store = BlobStore(f"memory://prop-{uuid.uuid4().hex}")
    assert store.get(store.put(data)) == data
