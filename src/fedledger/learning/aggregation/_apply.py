"""Applying a fixed-point aggregate to float32 global params, bit-identically everywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.params import Params

__all__ = ["apply_update"]


def apply_update(
    global_params: Mapping[str, npt.NDArray[Any]], update_fixed: Mapping[str, npt.NDArray[Any]], *, frac_bits: int
) -> Params:
    """``global + decode(update)`` as float32.

    Each step is a correctly rounded IEEE-754 operation (int64 -> float64,
    division by a power of two, one float64 addition, one rounding to float32),
    so every machine computes the same bits.
    """
    missing = sorted(set(global_params) ^ set(update_fixed))
    if missing:
        raise AggregationError(f"update and global params differ in tensor names: {missing}")
    codec = FixedPoint(frac_bits)
    out: Params = {}
    for name in sorted(global_params):
        g = np.asarray(global_params[name])
        u = np.asarray(update_fixed[name])
        if g.shape != u.shape:
            raise AggregationError(f"tensor {name!r}: update shape {u.shape} != global shape {g.shape}")
        if u.dtype != np.uint64:
            raise AggregationError(f"tensor {name!r}: update dtype {u.dtype}, expected uint64")
        out[name] = (g.astype(np.float64) + codec.decode(u)).astype(np.float32)
    return out
