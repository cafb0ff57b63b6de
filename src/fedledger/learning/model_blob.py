"""Global model blobs: float32 params + the model spec, as deterministic safetensors bytes.

The model's hash (what the task contract records) is the sha256 of these bytes.
Metadata: ``format`` = ``fedledger-model/1``, ``model_spec`` = canonical JSON of
the spec given to :func:`~fedledger.learning.build_model`, plus caller extras
(e.g. ``round``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedledger.exceptions import UpdateRejected
from fedledger.learning.params import Params, ParamSpec, as_params, shape_spec
from fedledger.store.tensors import decode_tensors, encode_tensors

__all__ = ["MODEL_FORMAT", "ModelBlob", "canonical_json", "decode_model", "encode_model", "model_hash"]

MODEL_FORMAT = "fedledger-model/1"


def canonical_json(obj: Any) -> str:
    """Sorted-key, no-whitespace JSON: one spelling per value, so hashes agree."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass(frozen=True)
class ModelBlob:
    params: Params
    spec: dict[str, Any]
    metadata: dict[str, str]

    @property
    def param_spec(self) -> ParamSpec:
        return shape_spec(self.params)


def encode_model(
    params: Mapping[str, np.ndarray], spec: Mapping[str, Any], *, metadata: Mapping[str, str] | None = None
) -> bytes:
    """Serialize a global model; identical params and spec give identical bytes."""
    meta = dict(metadata or {})
    reserved = {"format", "model_spec"} & set(meta)
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are reserved")
    meta["format"] = MODEL_FORMAT
    meta["model_spec"] = canonical_json(dict(spec))
    p = as_params(params)
    for name, arr in p.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"model tensor {name!r} contains NaN or Inf")
    return encode_tensors(p, meta)


def model_hash(blob: bytes) -> str:
    """The model's id: sha256 hex of its blob (same as the store's blob id)."""
    return hashlib.sha256(blob).hexdigest()


def decode_model(blob: bytes, *, expected_spec: ParamSpec | None = None) -> ModelBlob:
    """Parse a model blob; ``UpdateRejected`` if it is malformed, non-finite or off-spec."""
    tensors, meta = decode_tensors(blob)
    if meta.get("format") != MODEL_FORMAT:
        raise UpdateRejected(f"not a model blob: format {meta.get('format')!r}, expected {MODEL_FORMAT!r}")
    if "model_spec" not in meta:
        raise UpdateRejected("metadata missing: model_spec")
    try:
        spec = json.loads(meta["model_spec"])
    except json.JSONDecodeError as exc:
        raise UpdateRejected(f"model_spec is not JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise UpdateRejected("model_spec is not a JSON object")
    for name, arr in sorted(tensors.items()):
        if arr.dtype != np.float32:
            raise UpdateRejected(f"model tensor {name!r} has dtype {arr.dtype}, expected float32")
        if not np.all(np.isfinite(arr)):
            raise UpdateRejected(f"model tensor {name!r} contains NaN or Inf")
    if expected_spec is not None:
        got = shape_spec(tensors)
        if got != {k: tuple(v) for k, v in expected_spec.items()}:
            raise UpdateRejected(f"model tensors {got} do not match the expected {expected_spec}")
    return ModelBlob(params=tensors, spec=spec, metadata=meta)
