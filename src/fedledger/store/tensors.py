"""Named arrays <-> safetensors bytes, byte-identical for identical tensors.

The safetensors library writes its ``__metadata__`` map in hash-map order, which
changes from one process to the next, so the same tensors would hash differently
on two machines. We therefore write the (simple, documented) safetensors layout
ourselves with sorted keys and read it back through the safetensors library,
which validates offsets, dtypes and sizes.

Layout: 8-byte little-endian header length, JSON header (padded with spaces to a
multiple of 8), then the tensors' little-endian bytes in sorted-name order.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load as _st_load

from fedledger.exceptions import StoreError, UpdateRejected

__all__ = ["SAFETENSORS_DTYPES", "decode_tensors", "encode_tensors", "read_metadata"]

SAFETENSORS_DTYPES: dict[str, str] = {
    "bool": "BOOL",
    "uint8": "U8",
    "int8": "I8",
    "uint16": "U16",
    "int16": "I16",
    "float16": "F16",
    "uint32": "U32",
    "int32": "I32",
    "float32": "F32",
    "uint64": "U64",
    "int64": "I64",
    "float64": "F64",
}
_MAX_HEADER_BYTES = 100_000_000  # the safetensors library's own limit


def encode_tensors(tensors: Mapping[str, npt.ArrayLike], metadata: Mapping[str, str] | None = None) -> bytes:
    """Serialize named arrays (and string metadata) to safetensors bytes, deterministically."""
    header: dict[str, Any] = {}
    if metadata:
        for key, value in metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise StoreError(f"safetensors metadata must map str to str, got {key!r}: {value!r}")
        header["__metadata__"] = dict(metadata)
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        if not isinstance(name, str) or not name or name == "__metadata__":
            raise StoreError(f"invalid tensor name {name!r}")
        arr = np.asarray(tensors[name])
        code = SAFETENSORS_DTYPES.get(arr.dtype.name)
        if code is None:
            raise StoreError(f"tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store")
        # Contiguous little-endian bytes: the same values give the same bytes on every machine.
        raw = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    head = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
    head += b" " * (-len(head) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors blob, without loading tensors."""
    if len(data) < 8:
        raise UpdateRejected(f"not a safetensors blob: {len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > _MAX_HEADER_BYTES or 8 + n > len(data):
        raise UpdateRejected(f"not a safetensors blob: header length {n} exceeds the {len(data)}-byte blob")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UpdateRejected(f"not a safetensors blob: header is not JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise UpdateRejected("not a safetensors blob: header is not a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise UpdateRejected("not a safetensors blob: __metadata__ is not a map of strings")
    return dict(meta)


def decode_tensors(data: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Parse safetensors bytes into (named arrays, metadata).

    Every kind of malformed input raises ``UpdateRejected("not a safetensors blob: ...")``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UpdateRejected(f"not a safetensors blob: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    metadata = read_metadata(data)
    try:
        loaded = _st_load(data)
    except Exception as exc:  # the library raises its own SafetensorError and assorted builtins
        raise UpdateRejected(f"not a safetensors blob: {exc}") from exc
    # Writable, native-endian copies: callers may compute in place.
    tensors = {name: np.array(arr, dtype=arr.dtype.newbyteorder("=")) for name, arr in loaded.items()}
    return tensors, metadata
