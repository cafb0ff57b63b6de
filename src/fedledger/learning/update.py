"""The update pipeline: model delta -> transforms -> update blob, and update validation.

A member computes ``delta = local - global`` and runs it through a chain of
:class:`Transform` s, typically ``ClipTransform`` -> privacy transforms (added by
the privacy layer through the same protocol) -> ``FixedPointEncode``. The result
is stored as a safetensors blob of arrays named like the params, with metadata:

``format``        ``fedledger-update/1``
``encoding``      ``fixed64`` (uint64 fixed point, what aggregation needs) or ``float32``
``frac_bits``     fractional bits of the fixed-point encoding (``fixed64`` only)
``num_examples``  local examples the update was trained on (FedAvg weight)
``transforms``    comma-separated names of the transforms applied, in order
plus whatever transforms record (``clip_norm`` from :class:`ClipTransform`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import UpdateRejected
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.params import Params, ParamSpec, params_delta
from fedledger.store.tensors import decode_tensors, encode_tensors

__all__ = [
    "UPDATE_FORMAT",
    "ClipTransform",
    "DecodedUpdate",
    "FixedPointEncode",
    "Transform",
    "UpdateContext",
    "UpdatePipeline",
    "encode_update",
    "global_l2_norm",
    "validate_update",
]

UPDATE_FORMAT = "fedledger-update/1"
Tensors = dict[str, npt.NDArray[Any]]


@dataclass
class UpdateContext:
    """What a transform may read and record while an update is built."""

    num_examples: int
    metadata: dict[str, str] = field(default_factory=dict)
    """Provenance the transform adds (e.g. its clip norm, a privacy budget); written into the blob."""
    rng: np.random.Generator | None = None
    """Randomness for transforms that need it (privacy noise); seeded by the caller for replay."""


@runtime_checkable
class Transform(Protocol):
    """One step of the update pipeline. Privacy transforms (DP noise, masking) implement this too."""

    @property
    def name(self) -> str:
        """Short name recorded in the blob's ``transforms`` metadata."""
        ...

    def __call__(self, update: Tensors, ctx: UpdateContext) -> Tensors: ...


def global_l2_norm(tensors: Mapping[str, npt.NDArray[Any]]) -> float:
    """L2 norm over all tensors together, in float64, summed in sorted-name order."""
    total = 0.0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], dtype=np.float64)
        total += float(np.dot(arr.ravel(), arr.ravel()))
    return math.sqrt(total)


@dataclass(frozen=True)
class ClipTransform:
    """Scale the whole update down to L2 norm ``max_norm`` if it is larger (bounds any one member's pull)."""

    max_norm: float
    name: str = "clip"

    def __post_init__(self) -> None:
        if not (self.max_norm > 0 and math.isfinite(self.max_norm)):
            raise ValueError(f"max_norm must be positive and finite, got {self.max_norm}")

    def __call__(self, update: Tensors, ctx: UpdateContext) -> Tensors:
        norm = global_l2_norm(update)
        ctx.metadata["clip_norm"] = repr(float(self.max_norm))
        if not math.isfinite(norm):
            raise ValueError("update contains NaN or Inf; refusing to clip it")
        if norm <= self.max_norm:
            return {k: np.asarray(v, dtype=np.float32) for k, v in update.items()}
        factor = self.max_norm / norm
        return {k: (np.asarray(v, np.float64) * factor).astype(np.float32) for k, v in update.items()}


@dataclass(frozen=True)
class FixedPointEncode:
    """Encode float tensors to uint64 fixed point; must be the last transform."""

    codec: FixedPoint = field(default_factory=FixedPoint)
    name: str = "fixed64"

    def __call__(self, update: Tensors, ctx: UpdateContext) -> Tensors:
        ctx.metadata["frac_bits"] = str(self.codec.frac_bits)
        return {k: self.codec.encode(v) for k, v in update.items()}


def encode_update(tensors: Mapping[str, npt.NDArray[Any]], metadata: Mapping[str, str]) -> bytes:
    """Serialize an update's tensors with its metadata (``format`` and ``encoding`` are filled in)."""
    dtypes = {np.asarray(t).dtype for t in tensors.values()}
    if dtypes <= {np.dtype(np.uint64)}:
        encoding = "fixed64"
    elif dtypes <= {np.dtype(np.float32)}:
        encoding = "float32"
    else:
        raise ValueError(f"update tensors must be all uint64 or all float32, got {sorted(map(str, dtypes))}")
    meta = dict(metadata)
    meta.update(format=UPDATE_FORMAT, encoding=encoding)
    if encoding == "fixed64" and "frac_bits" not in meta:
        raise ValueError("a fixed64 update needs frac_bits metadata")
    return encode_tensors(dict(tensors), meta)


class UpdatePipeline:
    """Runs the transforms over ``local - global`` and produces the update blob bytes."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        for i, t in enumerate(transforms):
            if isinstance(t, FixedPointEncode) and i != len(transforms) - 1:
                raise ValueError("FixedPointEncode must be the last transform")
        self.transforms = tuple(transforms)

    @classmethod
    def default(cls, *, max_norm: float, frac_bits: int = 16) -> UpdatePipeline:
        """Clip then fixed-point encode (privacy transforms slot in between)."""
        return cls([ClipTransform(max_norm), FixedPointEncode(FixedPoint(frac_bits))])

    def transform(
        self, local: Params, global_: Params, *, num_examples: int, seed: int | None = None
    ) -> tuple[Tensors, dict[str, str]]:
        """The transformed delta and the metadata for its blob."""
        if num_examples <= 0:
            raise ValueError(f"num_examples must be positive, got {num_examples}")
        ctx = UpdateContext(num_examples=num_examples, rng=np.random.default_rng(seed))
        update: Tensors = params_delta(local, global_)
        for t in self.transforms:
            update = t(update, ctx)
        meta = dict(ctx.metadata)
        meta["num_examples"] = str(num_examples)
        meta["transforms"] = ",".join(t.name for t in self.transforms)
        return update, meta

    def run(self, local: Params, global_: Params, *, num_examples: int, seed: int | None = None) -> bytes:
        """The update blob bytes for ``local - global``."""
        update, meta = self.transform(local, global_, num_examples=num_examples, seed=seed)
        return encode_update(update, meta)


@dataclass(frozen=True)
class DecodedUpdate:
    """A validated update: tensors (uint64 for ``fixed64``, float32 for ``float32``) and its metadata."""

    tensors: dict[str, npt.NDArray[Any]]
    num_examples: int
    encoding: str
    frac_bits: int | None
    metadata: dict[str, str]

    def __post_init__(self) -> None:
        if self.encoding == "fixed64" and self.frac_bits is None:
            raise UpdateRejected("a fixed64 update needs its frac_bits")

    @property
    def fixed_frac_bits(self) -> int | None:
        """The fractional bits of a ``fixed64`` update; None for a ``float32`` one."""
        return self.frac_bits if self.encoding == "fixed64" else None

    def to_float(self) -> dict[str, npt.NDArray[np.float64]]:
        """The update as float64 arrays (decoding fixed point if needed)."""
        frac_bits = self.fixed_frac_bits
        if frac_bits is not None:
            codec = FixedPoint(frac_bits)
            return {k: codec.decode(v) for k, v in self.tensors.items()}
        return {k: v.astype(np.float64) for k, v in self.tensors.items()}


def _meta_int(meta: Mapping[str, str], key: str) -> int:
    if key not in meta:
        raise UpdateRejected(f"metadata missing: {key}")
    try:
        return int(meta[key])
    except ValueError:
        raise UpdateRejected(f"metadata {key}={meta[key]!r} is not an integer") from None


def validate_update(
    blob: bytes,
    expected_spec: ParamSpec,
    *,
    max_bytes: int,
    frac_bits: int | None = None,
    max_norm: float | None = None,
    max_examples: int | None = None,
) -> DecodedUpdate:
    """Decode an update blob and check it against what the task expects, or raise ``UpdateRejected``.

    Checks, in order: size, safetensors structure, metadata (format, encoding,
    frac_bits, num_examples), tensor names, dtypes, shapes, NaN/Inf (float blobs),
    then optionally ``frac_bits`` equality, the L2 norm bound (with room for
    fixed-point rounding) and a cap on the claimed example count.
    """
    if len(blob) > max_bytes:
        raise UpdateRejected(f"oversized: {len(blob)} bytes, limit {max_bytes}")
    tensors, meta = decode_tensors(blob)
    fmt = meta.get("format")
    if fmt is None:
        raise UpdateRejected("metadata missing: format")
    if fmt != UPDATE_FORMAT:
        raise UpdateRejected(f"unknown update format {fmt!r}, expected {UPDATE_FORMAT!r}")
    encoding = meta.get("encoding")
    if encoding is None:
        raise UpdateRejected("metadata missing: encoding")
    if encoding not in ("fixed64", "float32"):
        raise UpdateRejected(f"unknown update encoding {encoding!r}")
    num_examples = _meta_int(meta, "num_examples")
    if num_examples <= 0:
        raise UpdateRejected(f"num_examples must be positive, got {num_examples}")
    if max_examples is not None and num_examples > max_examples:
        raise UpdateRejected(f"num_examples {num_examples} above the limit {max_examples}")
    blob_frac: int | None = None
    if encoding == "fixed64":
        blob_frac = _meta_int(meta, "frac_bits")
        if frac_bits is not None and blob_frac != frac_bits:
            raise UpdateRejected(f"frac_bits {blob_frac}, expected {frac_bits}")
        if not 0 <= blob_frac <= 52:
            raise UpdateRejected(f"frac_bits {blob_frac} out of range [0, 52]")
    missing = sorted(set(expected_spec) - set(tensors))
    if missing:
        raise UpdateRejected(f"missing tensors: {', '.join(missing)}")
    extra = sorted(set(tensors) - set(expected_spec))
    if extra:
        raise UpdateRejected(f"unexpected tensors: {', '.join(extra)}")
    want_dtype = np.dtype(np.uint64) if encoding == "fixed64" else np.dtype(np.float32)
    for name in sorted(expected_spec):
        arr = tensors[name]
        if arr.dtype != want_dtype:
            raise UpdateRejected(f"tensor {name!r} has dtype {arr.dtype}, expected {want_dtype} for {encoding}")
        if arr.shape != tuple(expected_spec[name]):
            raise UpdateRejected(f"tensor {name!r} has shape {arr.shape}, expected {tuple(expected_spec[name])}")
        if encoding == "float32" and not np.all(np.isfinite(arr)):
            raise UpdateRejected(f"tensor {name!r} contains NaN or Inf")
    update = DecodedUpdate(tensors, num_examples, encoding, blob_frac, meta)
    if max_norm is not None:
        norm = global_l2_norm(update.to_float())
        # Rounding to fixed point moves each coordinate by at most half a step; float32 clipping by ~1 ulp.
        slack = 1e-6 * max_norm
        if blob_frac is not None:
            slack += math.sqrt(sum(a.size for a in tensors.values())) * 2.0 ** -(blob_frac + 1)
        if norm > max_norm + slack:
            raise UpdateRejected(f"update L2 norm {norm:.6g} exceeds the clip bound {max_norm}")
    return update
