"""Update tensors as one flat uint64 vector, and the pairwise masks that cancel in the survivors' sum."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from fedledger.exceptions import BadInput

from ._prg import U64Array, mask_from_seed

Layout = tuple[tuple[str, tuple[int, ...]], ...]


def layout_of(tensors: Mapping[str, U64Array]) -> Layout:
    return tuple((name, tuple(np.shape(tensors[name]))) for name in sorted(tensors))


def flatten(tensors: Mapping[str, U64Array], layout: Layout, *, what: str) -> U64Array:
    if layout_of(tensors) != layout:
        raise BadInput(f"{what} has tensors {layout_of(tensors)}, expected {layout}")
    parts = []
    for name, _ in layout:
        arr = np.asarray(tensors[name])
        if arr.dtype != np.uint64:
            raise BadInput(f"{what} tensor {name!r} has dtype {arr.dtype}, expected uint64 (fixed point)")
        parts.append(arr.ravel())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def unflatten(flat: U64Array, layout: Layout) -> dict[str, U64Array]:
    out, offset = {}, 0
    for name, shape in layout:
        size = math.prod(shape)
        out[name] = flat[offset : offset + size].reshape(shape).copy()
        offset += size
    return out


def apply_pair_mask(acc: U64Array, seed: bytes, *, member: str, peer: str, sign: int) -> None:
    """Add ``sign`` times the (member, peer) pairwise mask as ``member`` contributed it (+ if member < peer)."""
    mask = mask_from_seed(seed, acc.size)
    if (member < peer) == (sign > 0):
        acc += mask
    else:
        acc -= mask
