"""Hostile blobs: every decoder refuses them with a named error, within bounded size, depth and time.

The deepest cases run in a subprocess too: before the depth scan, a header of 100,000 ``[`` overflowed the
C stack in ``json.loads`` (SIGSEGV, which no ``except`` catches) once ``fedledger.federation`` was imported.
"""

from __future__ import annotations

import hashlib
import json
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from fedledger.chain.task import UpdateInfo
from fedledger.exceptions import BadInput, ConfigError, UpdateRejected
from fedledger.federation.config import TaskConfig
from fedledger.federation.evaluation import MetricsReport
from fedledger.federation.rules import check_update
from fedledger.learning import FixedPoint, decode_model, encode_model, encode_update
from fedledger.store import BlobStore, BlobTooLarge, decode_tensors, encode_tensors, read_metadata
from fedledger.store.safejson import UnsafeJSON, json_depth, loads_bounded
from fedledger.store.tensors import MAX_HEADER_BYTES, MAX_METADATA_ENTRIES, MAX_TENSORS

DEEP = 100_000


def _blob(header: bytes | str | dict, body: bytes = b"") -> bytes:
    """A safetensors blob with this exact header (no padding, no validation)."""
    if isinstance(header, dict):
        header = json.dumps(header)
    if isinstance(header, str):
        header = header.encode()
    return struct.pack("<Q", len(header)) + header + body


def _entry(dtype: str = "F32", shape: list = [2], offsets: list = [0, 8]) -> dict:  # noqa: B006
    return {"dtype": dtype, "shape": shape, "data_offsets": offsets}


REPRO = (
    "import struct,fedledger.federation;from fedledger.store.tensors import decode_tensors;"
    "h=b'['*100000;decode_tensors(struct.pack('<Q',len(h))+h)"
)


def test_every_json_decoder_refuses_deep_nesting_in_a_subprocess() -> None:
    """The reported repro, then every blob decoder at 100,000 levels, in one process: all named errors, exit 0."""
    script = textwrap.dedent(
        f"""
        import struct, sys
        import fedledger.federation  # raises the recursion limit, as in the report
        assert sys.getrecursionlimit() >= 10_000
        from fedledger.exceptions import FedLedgerError
        from fedledger.federation.config import TaskConfig
        from fedledger.federation.evaluation import MetricsReport
        from fedledger.learning import decode_model, validate_update
        from fedledger.privacy.he import EncryptedUpdate
        from fedledger.privacy.secagg import KeyAdvert, MaskedInput, RoundConfig, ShareBundle, ShareReveal
        from fedledger.store import decode_tensors, encode_tensors, read_metadata

        deep = b"[" * {DEEP}
        deep_obj = b'{{"a":' * {DEEP}
        st = struct.pack("<Q", len(deep)) + deep
        st_obj = struct.pack("<Q", len(deep_obj)) + deep_obj
        spec_bomb = encode_tensors({{}}, {{"format": "fedledger-model/1", "model_spec": "[" * {DEEP}}})
        cases = {{
            "the reported repro": lambda: exec({REPRO!r}),
            "decode_tensors": lambda: decode_tensors(st),
            "decode_tensors (objects)": lambda: decode_tensors(st_obj),
            "read_metadata": lambda: read_metadata(st),
            "validate_update": lambda: validate_update(st, {{}}, max_bytes=1 << 30),
            "decode_model": lambda: decode_model(st),
            "decode_model (model_spec)": lambda: decode_model(spec_bomb),
            "MaskedInput": lambda: MaskedInput.from_bytes(st),
            "TaskConfig": lambda: TaskConfig.from_bytes(deep),
            "MetricsReport": lambda: MetricsReport.from_bytes(deep),
            "KeyAdvert": lambda: KeyAdvert.from_bytes(deep),
            "ShareBundle": lambda: ShareBundle.from_bytes(deep_obj),
            "ShareReveal": lambda: ShareReveal.from_bytes(deep),
            "RoundConfig": lambda: RoundConfig.from_bytes(deep),
            "EncryptedUpdate": lambda: EncryptedUpdate.from_bytes(struct.pack("<I", len(deep)) + deep),
        }}
        for name, case in cases.items():
            try:
                case()
            except FedLedgerError as exc:
                print(name, "->", type(exc).__name__, exc)
            else:
                print(name, "-> ACCEPTED")
        print("DONE")
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert lines[-1] == "DONE"
    assert len(lines) == 16
    assert lines[0].startswith("the reported repro -> UpdateRejected not a safetensors blob: header is nested 100000")
    for line in lines[:-1]:
        assert "ACCEPTED" not in line, line
        assert "deep" in line, line  # the depth check named the problem


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[[{{{{", "b": [1, [2]]}') == 3
    assert json_depth(r'["\"[[[[", {"x": "\\"}]') == 2
    assert json_depth("") == 0
    assert json_depth("[" * 50) == 50


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[" * 33 + "]" * 33, "nested 33 levels deep"),
        ('{"a": 1, "a": 2}', "repeats the key 'a'"),
        ("[NaN]", "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        (b"\xff\xfe[]", "not UTF-8"),
        ("[1,", "not valid JSON"),
        ("9" * 5000, "not valid JSON"),  # over Python's int digit limit: a ValueError, named
    ],
)
def test_bounded_json_refusals(text: str | bytes, reason: str) -> None:
    with pytest.raises(UnsafeJSON, match=reason):
        loads_bounded(text)


def test_bounded_json_size_limit() -> None:
    with pytest.raises(UnsafeJSON, match="11 bytes, over the limit of 10"):
        loads_bounded(b'"123456789"', max_bytes=10)
    assert loads_bounded(b'"12345678"', max_bytes=10) == "12345678"


GOOD = encode_tensors({"a": np.arange(2, dtype=np.float32), "b": np.arange(3, dtype=np.int64)}, {"k": "v"})


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"", "shorter than the 8-byte header length"),
        (struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}", f"over the limit of {MAX_HEADER_BYTES}"),
        (struct.pack("<Q", 100) + b"{}", "exceeds the 10-byte blob"),
        (_blob("[" * 4 + "]" * 4), "nested 4 levels deep"),
        (_blob('{"a": {"dtype": "F32", "shape": [[[1]]], "data_offsets": [0, 4]}}'), "nested 5 levels deep"),
        (_blob(b"\xff\xfe{}"), "not UTF-8"),
        (_blob("[]"), "not a JSON object"),
        (_blob("{"), "not valid JSON"),
        (_blob('{"a": 1, "a": 2}'), "repeats the key"),
        (_blob({"a": _entry(dtype="Q99")}, b"\0" * 8), "dtype 'Q99'"),
        (_blob({"a": _entry(dtype="BF16", offsets=[0, 4])}, b"\0" * 4), "dtype 'BF16'"),
        (_blob({"a": _entry(dtype=3)}, b"\0" * 8), "dtype 3"),
        (_blob({"a": _entry(shape="2")}, b"\0" * 8), "shape is not a list"),
        (_blob({"a": _entry(shape=[1] * 17)}, b"\0" * 8), "shape is not a list of at most 16"),
        (_blob({"a": _entry(shape=[-2])}, b"\0" * 8), "not a non-negative integer"),
        (_blob({"a": _entry(shape=[True, 2])}, b"\0" * 8), "not a non-negative integer"),
        (_blob('{"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}', b"\0" * 8), "not an integer"),
        (_blob('{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 8]}}', b"\0" * 8), "NaN is not JSON"),
        (_blob({"a": _entry(shape=[0, 2**41])}), "dimension over"),
        (_blob({"a": _entry(shape=[10**30])}, b"\0" * 8), "digits"),
        (_blob({"a": _entry(offsets=[0])}, b"\0" * 8), "data_offsets is not"),
        (_blob({"a": _entry(offsets=[8, 0])}, b"\0" * 8), "hold -8"),
        (_blob({"a": _entry(offsets=[0, 12])}, b"\0" * 12), "needs 8 bytes"),
        (_blob({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8), "expected exactly dtype, shape and data_offsets"),
        (_blob({"a": {**_entry(), "extra": 1}}, b"\0" * 8), "expected exactly dtype, shape and data_offsets"),
        (_blob({"a": [1]}, b"\0" * 8), "expected exactly dtype"),
        (_blob({"a": _entry(), "b": _entry(offsets=[4, 12])}, b"\0" * 12), "overlaps the tensor before it"),
        (_blob({"a": _entry(), "b": _entry(offsets=[0, 8])}, b"\0" * 8), "overlaps the tensor before it"),
        (_blob({"a": _entry(), "b": _entry(offsets=[12, 20])}, b"\0" * 20), "leaves bytes 8..12 unused"),
        (_blob({"a": _entry(offsets=[4, 12])}, b"\0" * 12), "leaves bytes 0..4 unused"),
        (_blob({"a": _entry()}, b"\0" * 12), "cover 8 bytes, the blob holds 12"),
        (_blob({"a": _entry()}, b"\0" * 4), "cover 8 bytes, the blob holds 4"),
        (_blob({"__metadata__": {"k": 1}}), "__metadata__ is not a map of strings"),
        (_blob({"__metadata__": {"k": {"x": "y"}}}), "__metadata__ is not a map of strings"),
        (_blob({"__metadata__": ["k"]}), "__metadata__ is not a map of strings"),
        (_blob({"__metadata__": {str(i): "" for i in range(MAX_METADATA_ENTRIES + 1)}}), "entries, over the limit"),
        (_blob({f"t{i}": _entry(shape=[0], offsets=[0, 0]) for i in range(MAX_TENSORS + 1)}), "tensors, over the"),
        (_blob({"": _entry()}, b"\0" * 8), "tensor name of 0 characters"),
        (_blob({"a" * 1025: _entry()}, b"\0" * 8), "tensor name of 1025 characters"),
        (
            _blob({"a": _entry(dtype="BOOL", offsets=[0, 2])}, b"\x01\x07"),
            "bool tensor 'a' holds bytes other than 0 and 1",
        ),
        (GOOD[:-1], "the blob holds"),
        (GOOD + b"\0", "the blob holds"),
    ],
)
def test_malformed_headers_are_named_rejections(blob: bytes, reason: str) -> None:
    with pytest.raises(UpdateRejected, match="not a safetensors blob") as info:
        decode_tensors(blob)
    assert reason in info.value.reason
    if "bool tensor" not in reason:  # the one check of tensor values rather than of the header
        with pytest.raises(UpdateRejected):
            read_metadata(blob)


def test_a_well_formed_blob_still_decodes_exactly() -> None:
    tensors, meta = decode_tensors(GOOD)
    assert meta == {"k": "v"}
    np.testing.assert_array_equal(tensors["a"], [0, 1])
    assert tensors["b"].dtype == np.int64 and tensors["a"].flags.writeable
    zero = encode_tensors({"e": np.zeros((0, 5), np.float32), "f": np.zeros(0, np.uint64), "g": np.ones(1, bool)})
    out, _ = decode_tensors(zero)
    assert out["e"].shape == (0, 5) and out["g"].tolist() == [True]
    assert encode_tensors(out) == zero


def test_decoding_time_is_bounded_on_the_largest_headers() -> None:
    """The largest header allowed, as one metadata string or as the most tensors, decodes in well under a second
    per megabyte (linear work: no quadratic offset check, no per-byte Python loop)."""
    filler = "[" * (MAX_HEADER_BYTES - 64)  # brackets in a string: the depth scan must skip them quickly
    blobs = [
        _blob({"__metadata__": {"k": filler}}),
        _blob(
            {f"t{i}": _entry(shape=[1], offsets=[4 * i, 4 * i + 4]) for i in range(MAX_TENSORS)},
            b"\0" * 4 * MAX_TENSORS,
        ),
    ]
    for blob in blobs:
        start = time.perf_counter()
        decode_tensors(blob)
        assert time.perf_counter() - start < 20  # generous: the machine is shared; ~1 s in practice


def test_model_spec_is_bounded_json() -> None:
    blob = encode_tensors({}, {"format": "fedledger-model/1", "model_spec": "[" * 40 + "]" * 40})
    with pytest.raises(UpdateRejected, match="model_spec is not JSON: model_spec is nested 40 levels deep"):
        decode_model(blob)
    ok = encode_model({"w": np.zeros(2, np.float32)}, {"kind": "x"})
    assert decode_model(ok).spec == {"kind": "x"}


def test_config_and_report_decoders_name_their_errors() -> None:
    with pytest.raises(ConfigError, match="task config is nested"):
        TaskConfig.from_bytes(b"[" * 40)
    with pytest.raises(ConfigError, match="repeats the key"):
        TaskConfig.from_bytes(b'{"format": 1, "format": 2}')
    with pytest.raises(BadInput, match="metrics report is nested"):
        MetricsReport.from_bytes(b"[" * 40)


# -- the store refuses oversized blobs from their size, before reading them ----------------


def test_get_refuses_an_oversized_blob_before_reading_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = BlobStore(tmp_path)
    blob_id = store.put(b"x" * 1000)
    assert store.get(blob_id, max_bytes=1000) == b"x" * 1000

    def no_read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the blob was opened for reading")

    monkeypatch.setattr(Path, "open", no_read)
    with pytest.raises(BlobTooLarge, match="1000 bytes, over the reader's limit of 999") as info:
        store.get(blob_id, max_bytes=999)
    assert (info.value.size, info.value.limit) == (1000, 999)


def test_get_refuses_an_oversized_remote_blob_before_reading_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import uuid

    store = BlobStore(f"memory://hostile-{uuid.uuid4().hex}", max_blob_bytes=500)
    blob_id = BlobStore(store.url).put(b"y" * 501)
    monkeypatch.setattr(type(store._fs), "cat_file", lambda *a, **k: pytest.fail("the blob was read"))
    with pytest.raises(BlobTooLarge, match="501 bytes, over the store limit of 500"):
        store.get(blob_id)


# -- check_update: every failure is an UpdateRejected with its reason ---------------------

SPEC = {"w": (3,), "b": (1,)}


def _config(**overrides: object) -> TaskConfig:
    settings = {"clip_norm": 5.0, "max_update_bytes": 4096, **overrides}
    return TaskConfig(model={"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}, **settings)  # type: ignore[arg-type]


def _update(store: BlobStore, blob: bytes, num_examples: int = 10) -> UpdateInfo:
    path = store.path_of(hashlib.sha256(blob).hexdigest())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)  # as a hostile member would: past put's own limit
    return UpdateInfo(1, 0, "0x" + "11" * 20, "0x" + path.name, num_examples, 1)


def _honest(frac_bits: int = 24) -> bytes:
    codec = FixedPoint(frac_bits)
    tensors = {"w": codec.encode(np.array([0.1, 0.2, 0.3])), "b": codec.encode(np.array([0.5]))}
    return encode_update(tensors, {"num_examples": "10", "frac_bits": str(frac_bits), "transforms": "fixedpoint"})


@pytest.mark.parametrize(
    ("blob", "limit", "reason"),
    [
        (_blob(b"[" * DEEP), 2 * DEEP, "not a safetensors blob: header is nested 100000 levels deep"),
        (_blob(b"{" * 40), 4096, "not a safetensors blob: header is nested 40 levels deep"),
        (b"\0" * 5000, 4096, "oversized: 5000 bytes, limit 4096"),
        (_blob({"w": _entry(dtype="U64", shape=[3], offsets=[0, 24])}, b"\0" * 16), 4096, "not a safetensors blob"),
        (encode_tensors({"w": np.zeros(3, np.uint64)}, {"format": "x"}), 4096, "unknown update format"),
    ],
)
def test_check_update_names_every_hostile_blob(tmp_path: Path, blob: bytes, limit: int, reason: str) -> None:
    store = BlobStore(tmp_path)
    config = _config(max_update_bytes=limit)
    assert check_update(store, config, SPEC, _update(store, _honest())).num_examples == 10
    with pytest.raises(UpdateRejected) as info:
        check_update(store, config, SPEC, _update(store, blob))
    assert reason in info.value.reason
