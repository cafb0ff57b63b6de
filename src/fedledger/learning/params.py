"""The framework-agnostic parameter format: named float32 arrays.

Every adapter speaks ``Params``; names are iterated in sorted order everywhere so
flattening and serialization never depend on dict insertion order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "ParamSpec",
    "Params",
    "as_params",
    "check_params",
    "flatten",
    "num_params",
    "params_delta",
    "shape_spec",
    "spec_from_json",
    "spec_to_json",
    "unflatten",
]

Params = dict[str, npt.NDArray[Any]]
"""Model parameters: name -> float32 array."""

ParamSpec = dict[str, tuple[int, ...]]
"""Parameter names and shapes: what an update or model must look like."""


def as_params(tensors: Mapping[str, npt.ArrayLike]) -> Params:
    """Copy named arrays into ``Params`` (float32, C-contiguous, sorted names)."""
    return {name: np.array(tensors[name], dtype=np.float32, order="C") for name in sorted(tensors)}


def shape_spec(params: Mapping[str, npt.NDArray[Any]]) -> ParamSpec:
    """Names and shapes of ``params``."""
    return {name: tuple(int(d) for d in np.shape(params[name])) for name in sorted(params)}


def num_params(params: Mapping[str, npt.NDArray[Any]] | ParamSpec) -> int:
    """Total number of scalar parameters (from params or from a spec)."""
    total = 0
    for value in params.values():
        shape = value if isinstance(value, tuple) else np.shape(value)
        total += int(np.prod(shape, dtype=np.int64))
    return total


def flatten(params: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """All parameters as one 1-D array, concatenated in sorted-name order (dtype preserved)."""
    if not params:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate([np.ravel(params[name]) for name in sorted(params)])


def unflatten(vector: npt.NDArray[Any], spec: ParamSpec) -> dict[str, npt.NDArray[Any]]:
    """Inverse of :func:`flatten` for a given spec (dtype of ``vector`` preserved)."""
    vector = np.asarray(vector)
    if vector.ndim != 1 or vector.size != num_params(spec):
        raise ValueError(f"vector of shape {vector.shape} does not fit a spec of {num_params(spec)} parameters")
    out: dict[str, npt.NDArray[Any]] = {}
    start = 0
    for name in sorted(spec):
        size = int(np.prod(spec[name], dtype=np.int64))
        out[name] = vector[start : start + size].reshape(spec[name]).copy()
        start += size
    return out


def check_params(params: Mapping[str, npt.NDArray[Any]], spec: ParamSpec, *, what: str = "params") -> None:
    """Raise ``ValueError`` naming the first mismatch between ``params`` and ``spec``."""
    missing = sorted(set(spec) - set(params))
    extra = sorted(set(params) - set(spec))
    if missing:
        raise ValueError(f"{what}: missing tensors {missing}")
    if extra:
        raise ValueError(f"{what}: unexpected tensors {extra}")
    for name in sorted(spec):
        shape = tuple(np.shape(params[name]))
        if shape != tuple(spec[name]):
            raise ValueError(f"{what}: tensor {name!r} has shape {shape}, expected {tuple(spec[name])}")


def params_delta(local: Mapping[str, npt.NDArray[Any]], global_: Mapping[str, npt.NDArray[Any]]) -> Params:
    """``local - global`` per tensor, computed in float64 and rounded once to float32."""
    check_params(local, shape_spec(global_), what="local params")
    return {
        name: (np.asarray(local[name], np.float64) - np.asarray(global_[name], np.float64)).astype(np.float32)
        for name in sorted(global_)
    }


def spec_to_json(spec: ParamSpec) -> dict[str, list[int]]:
    """A JSON-able form of a spec."""
    return {name: list(shape) for name, shape in sorted(spec.items())}


def spec_from_json(obj: Mapping[str, list[int]]) -> ParamSpec:
    """Inverse of :func:`spec_to_json`."""
    return {str(name): tuple(int(d) for d in shape) for name, shape in sorted(obj.items())}
