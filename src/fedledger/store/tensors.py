"""Named arrays <-> safetensors bytes, byte-identical for identical tensors.

The safetensors library writes its ``__metadata__`` map in hash-map order, which
changes from one process to the next, so the same tensors would hash differently
on two machines. We therefore write the (simple, documented) safetensors layout
ourselves with sorted keys. Blobs come from other members, so we read them back
ourselves too, against a strict schema and within fixed limits, before any
general-purpose parsing: a hostile header must be a named rejection, never a crash.

Layout: 8-byte little-endian header length, JSON header (padded with spaces to a
multiple of 8), then the tensors' little-endian bytes in sorted-name order.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import StoreError, UpdateRejected
from fedledger.store.safejson import UnsafeJSON, loads_bounded

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
# Decoding limits, far above anything encode_tensors writes for a model, far below what could exhaust a node.
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_TENSORS = 16_384
MAX_DIMS = 16
MAX_DIM = 2**40
MAX_NAME_CHARS = 1024
MAX_METADATA_ENTRIES = 1024
_HEADER_DEPTH = 3  # the header object, a tensor's entry, its shape or data_offsets list

_DECODE_DTYPES: dict[str, np.dtype[Any]] = {
    code: np.dtype(name).newbyteorder("<") for name, code in SAFETENSORS_DTYPES.items()
}


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


def _refuse_float(text: str) -> Any:
    raise UnsafeJSON(f"the number {text[:20]} is not an integer")


def _short_int(text: str) -> int:
    if len(text) > 20:  # beyond 64 bits: no offset or dimension is that large
        raise UnsafeJSON(f"the integer {text[:20]}... has {len(text)} digits")
    return int(text)


def _index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UpdateRejected(f"not a safetensors blob: {what} is {value!r}, not a non-negative integer")
    return value


@dataclass(frozen=True)
class _Entry:
    name: str
    dtype: np.dtype[Any]
    shape: tuple[int, ...]
    begin: int
    end: int


def _parse_header(data: bytes) -> tuple[list[_Entry], dict[str, str], int]:
    """The blob's tensor entries (ordered by offset), metadata and the offset its tensor bytes start at.

    The header is checked against the layout :func:`encode_tensors` writes before anything is decoded: its
    length, then its nesting depth (at most 3: the header, a tensor's entry, its shape), then as JSON without
    floats, constants or repeated keys, then each field, and last that the tensors' byte ranges tile the
    rest of the blob exactly, with no gap and no overlap.
    """
    if len(data) < 8:
        raise UpdateRejected(f"not a safetensors blob: {len(data)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", data[:8])
    if n > MAX_HEADER_BYTES:
        raise UpdateRejected(f"not a safetensors blob: header length {n} is over the limit of {MAX_HEADER_BYTES}")
    if 8 + n > len(data):
        raise UpdateRejected(f"not a safetensors blob: header length {n} exceeds the {len(data)}-byte blob")
    try:
        header = loads_bounded(
            data[8 : 8 + n],
            what="header",
            max_bytes=MAX_HEADER_BYTES,
            max_depth=_HEADER_DEPTH,
            parse_float=_refuse_float,
            parse_int=_short_int,
        )
    except UnsafeJSON as exc:
        raise UpdateRejected(f"not a safetensors blob: {exc}") from exc
    if not isinstance(header, dict):
        raise UpdateRejected("not a safetensors blob: header is not a JSON object")
    metadata = _check_metadata(header.pop("__metadata__", {}))
    if len(header) > MAX_TENSORS:
        raise UpdateRejected(f"not a safetensors blob: {len(header)} tensors, over the limit of {MAX_TENSORS}")
    entries = [_check_entry(name, entry) for name, entry in header.items()]
    entries.sort(key=lambda e: (e.begin, e.end))
    body = len(data) - 8 - n
    cursor = 0
    for e in entries:
        if e.begin != cursor:
            problem = (
                "overlaps the tensor before it" if e.begin < cursor else f"leaves bytes {cursor}..{e.begin} unused"
            )
            raise UpdateRejected(f"not a safetensors blob: tensor {e.name!r} at bytes {e.begin}..{e.end} {problem}")
        cursor = e.end
    if cursor != body:
        raise UpdateRejected(f"not a safetensors blob: the tensors cover {cursor} bytes, the blob holds {body}")
    return entries, metadata, 8 + n


def _check_metadata(meta: Any) -> dict[str, str]:
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise UpdateRejected("not a safetensors blob: __metadata__ is not a map of strings")
    if len(meta) > MAX_METADATA_ENTRIES:
        raise UpdateRejected(
            f"not a safetensors blob: __metadata__ has {len(meta)} entries, over the limit of {MAX_METADATA_ENTRIES}"
        )
    return dict(meta)


def _check_entry(name: str, entry: Any) -> _Entry:
    if not name or len(name) > MAX_NAME_CHARS:
        raise UpdateRejected(f"not a safetensors blob: tensor name of {len(name)} characters (1 to {MAX_NAME_CHARS})")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
        raise UpdateRejected(
            f"not a safetensors blob: tensor {name!r} has {keys}, expected exactly dtype, shape and data_offsets"
        )
    dtype = _DECODE_DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
    if dtype is None:
        raise UpdateRejected(
            f"not a safetensors blob: tensor {name!r} has dtype {entry['dtype']!r}, "
            f"not one of {', '.join(sorted(_DECODE_DTYPES))}"
        )
    shape = entry["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_DIMS:
        raise UpdateRejected(f"not a safetensors blob: tensor {name!r} shape is not a list of at most {MAX_DIMS} sizes")
    dims = tuple(_index(d, f"a dimension of tensor {name!r}") for d in shape)
    if any(d > MAX_DIM for d in dims):
        raise UpdateRejected(f"not a safetensors blob: tensor {name!r} has a dimension over {MAX_DIM}")
    offsets = entry["data_offsets"]
    if not isinstance(offsets, list) or len(offsets) != 2:
        raise UpdateRejected(f"not a safetensors blob: tensor {name!r} data_offsets is not [begin, end]")
    begin, end = (_index(o, f"an offset of tensor {name!r}") for o in offsets)
    size = math.prod(dims) * dtype.itemsize
    if end - begin != size:
        raise UpdateRejected(
            f"not a safetensors blob: tensor {name!r} of shape {list(dims)} needs {size} bytes, "
            f"its data_offsets [{begin}, {end}] hold {end - begin}"
        )
    return _Entry(name, dtype, dims, begin, end)


def read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors blob (its whole header checked), without loading tensors."""
    _, metadata, _ = _parse_header(bytes(data))
    return metadata


def decode_tensors(data: bytes) -> tuple[dict[str, npt.NDArray[Any]], dict[str, str]]:
    """Parse safetensors bytes into (named arrays, metadata).

    Every kind of malformed input raises ``UpdateRejected("not a safetensors blob: ...")``; the work is
    linear in the blob's size, and nothing is parsed before the header's length and depth are checked.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise UpdateRejected(f"not a safetensors blob: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    entries, metadata, start = _parse_header(data)
    tensors: dict[str, npt.NDArray[Any]] = {}
    for e in entries:
        count = e.end - e.begin
        raw = np.frombuffer(data, dtype=e.dtype, count=count // e.dtype.itemsize, offset=start + e.begin)
        if e.dtype.kind == "b" and count and int(raw.view(np.uint8).max()) > 1:
            raise UpdateRejected(f"not a safetensors blob: bool tensor {e.name!r} holds bytes other than 0 and 1")
        # Writable, native-endian copies: callers may compute in place.
        tensors[e.name] = raw.astype(e.dtype.newbyteorder("="), copy=True).reshape(e.shape)
    return tensors, metadata
