"""Global model blobs: float32 params + the model spec, as deterministic safetensors bytes.

The model's hash (what the task contract records) is the sha256 of these bytes.
Metadata: ``format`` = ``fedledger-model/1``, ``model_spec`` = canonical JSON of
the spec given to :func:`~fedledger.learning.build_model`, plus caller extras
(e.g. ``round``).

A task with a server optimizer (:mod:`fedledger.learning.aggregation.server_optimizer`)
stores the optimizer's state in the same blob, as float64 tensors named
``optimizer/<key>`` beside the float32 params, and marks it with the metadata key
``optimizer_state`` (= ``optimizer/``), so the model hash commits to the state.
:func:`decode_model` keeps them apart: ``ModelBlob.params`` holds only the model's
params (what training and export load); the state is ``ModelBlob.optimizer_state``,
also attached to the params as :attr:`ModelParams.optimizer_state`, so the params a
node decodes from a round's global model carry the state to the round's aggregation.
A blob without the metadata key is read as before (every tensor a param).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import UpdateRejected
from fedledger.learning.params import Params, ParamSpec, as_params, shape_spec
from fedledger.store.safejson import loads_bounded
from fedledger.store.tensors import decode_tensors, encode_tensors

__all__ = [
    "MODEL_FORMAT",
    "OPTIMIZER_PREFIX",
    "ModelBlob",
    "ModelParams",
    "canonical_json",
    "decode_model",
    "encode_model",
    "model_hash",
]

MODEL_FORMAT = "fedledger-model/1"
OPTIMIZER_PREFIX = "optimizer/"
"""Name prefix of the server-optimizer state tensors in a model blob (and the value of its ``optimizer_state``
metadata key)."""


class ModelParams(Params):
    """A model's params as decoded from its blob (only the params), carrying the blob's server-optimizer state
    in :attr:`optimizer_state` (empty when the blob has none). A copy made with ``dict(...)`` drops it."""

    optimizer_state: dict[str, npt.NDArray[Any]]

    def __init__(
        self, params: Mapping[str, npt.NDArray[Any]], optimizer_state: Mapping[str, npt.NDArray[Any]] | None = None
    ) -> None:
        super().__init__(params)
        self.optimizer_state = dict(optimizer_state or {})


def canonical_json(obj: Any) -> str:
    """Sorted-key, no-whitespace JSON: one spelling per value, so hashes agree."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


@dataclass(frozen=True)
class ModelBlob:
    params: Params
    spec: dict[str, Any]
    metadata: dict[str, str]
    # The server optimizer's state stored beside the params (float64, named without OPTIMIZER_PREFIX); empty if none.
    optimizer_state: dict[str, npt.NDArray[Any]] = field(default_factory=dict)

    @property
    def param_spec(self) -> ParamSpec:
        return shape_spec(self.params)


def encode_model(
    params: Mapping[str, npt.NDArray[Any]],
    spec: Mapping[str, Any],
    *,
    metadata: Mapping[str, str] | None = None,
    optimizer_state: Mapping[str, npt.NDArray[Any]] | None = None,
) -> bytes:
    """Serialize a global model; identical params, spec and state give identical bytes.

    ``optimizer_state``: the server optimizer's float64 tensors to store beside the params (None or
    empty: none, and the blob is exactly what it was before server optimizers existed).
    """
    meta = dict(metadata or {})
    reserved = {"format", "model_spec", "optimizer_state"} & set(meta)
    if reserved:
        raise ValueError(f"metadata keys {sorted(reserved)} are reserved")
    meta["format"] = MODEL_FORMAT
    meta["model_spec"] = canonical_json(dict(spec))
    p = as_params(params)
    for name, arr in p.items():
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"model tensor {name!r} contains NaN or Inf")
    tensors: dict[str, npt.NDArray[Any]] = dict(p)
    if optimizer_state:
        meta["optimizer_state"] = OPTIMIZER_PREFIX
        clash = sorted(name for name in p if name.startswith(OPTIMIZER_PREFIX))
        if clash:
            raise ValueError(f"model tensors {clash} use the reserved prefix {OPTIMIZER_PREFIX!r}")
        for key, value in sorted(optimizer_state.items()):
            arr = np.asarray(value)
            if arr.dtype != np.float64 or not np.all(np.isfinite(arr)):
                raise ValueError(f"optimizer state tensor {key!r} must be finite float64, got {arr.dtype}")
            tensors[OPTIMIZER_PREFIX + key] = arr
    return encode_tensors(tensors, meta)


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
        spec = loads_bounded(meta["model_spec"], what="model_spec")
    except ValueError as exc:
        raise UpdateRejected(f"model_spec is not JSON: {exc}") from exc
    if not isinstance(spec, dict):
        raise UpdateRejected("model_spec is not a JSON object")
    state: dict[str, npt.NDArray[Any]] = {}
    if "optimizer_state" in meta:
        if meta["optimizer_state"] != OPTIMIZER_PREFIX:
            raise UpdateRejected(
                f"optimizer_state metadata is {meta['optimizer_state']!r}, expected {OPTIMIZER_PREFIX!r}"
            )
        for name in sorted(tensors):
            if name.startswith(OPTIMIZER_PREFIX):
                arr = tensors.pop(name)
                if arr.dtype != np.float64 or not np.all(np.isfinite(arr)):
                    raise UpdateRejected(f"optimizer state tensor {name!r} is not finite float64")
                state[name.removeprefix(OPTIMIZER_PREFIX)] = arr
    for name, arr in sorted(tensors.items()):
        if arr.dtype != np.float32:
            raise UpdateRejected(f"model tensor {name!r} has dtype {arr.dtype}, expected float32")
        if not np.all(np.isfinite(arr)):
            raise UpdateRejected(f"model tensor {name!r} contains NaN or Inf")
    if expected_spec is not None:
        got = shape_spec(tensors)
        if got != {k: tuple(v) for k, v in expected_spec.items()}:
            raise UpdateRejected(f"model tensors {got} do not match the expected {expected_spec}")
    return ModelBlob(params=ModelParams(tensors, state), spec=spec, metadata=meta, optimizer_state=state)
