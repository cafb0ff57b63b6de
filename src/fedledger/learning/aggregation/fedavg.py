"""Federated averaging over fixed-point updates.

McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-Efficient
Learning of Deep Networks from Decentralized Data", AISTATS 2017
(arXiv:1602.05629): the new global model is the example-weighted mean of the
members' models, equivalently ``global + sum_k (n_k / n) * delta_k``.

Here the deltas arrive as uint64 fixed point (see
:mod:`fedledger.learning.fixedpoint`). The weighted sum is computed exactly in
Z_{2^64} (uint64 arithmetic wraps), so it does not depend on the order of the
updates; it is read back as a signed int64 and floor-divided by the total example
count. Every honest party therefore gets the same integers, and after
:func:`apply_update` the same float32 bits and the same model hash.

For secure aggregation later, members pre-multiply their delta by ``n_k`` and
mask it; the aggregator then calls this with unit weights and divides by the
published total: same ring, same division, same result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError

__all__ = ["fedavg", "weighted_sum"]


def weighted_sum(
    updates: Sequence[Mapping[str, npt.NDArray[Any]]], weights: Sequence[int]
) -> dict[str, npt.NDArray[Any]]:
    """``sum_k weights[k] * updates[k]`` per tensor, mod 2^64 (uint64)."""
    if not updates:
        raise AggregationError("no updates to aggregate")
    if len(updates) != len(weights):
        raise AggregationError(f"{len(updates)} updates but {len(weights)} weights")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int | np.integer) or int(w) <= 0 or int(w) >= 2**63:
            raise AggregationError(f"weights must be positive integers below 2^63, got {w!r}")
    names = sorted(updates[0])
    shapes = {n: np.shape(updates[0][n]) for n in names}
    for k, upd in enumerate(updates):
        if sorted(upd) != names:
            raise AggregationError(f"update {k} has tensors {sorted(upd)}, expected {names}")
        for n in names:
            arr = np.asarray(upd[n])
            if arr.dtype != np.uint64:
                raise AggregationError(f"update {k} tensor {n!r} has dtype {arr.dtype}, expected uint64")
            if arr.shape != shapes[n]:
                raise AggregationError(f"update {k} tensor {n!r} has shape {arr.shape}, expected {shapes[n]}")
    out: dict[str, npt.NDArray[Any]] = {}
    for n in names:
        acc = np.zeros(shapes[n], dtype=np.uint64)
        for upd, w in zip(updates, weights, strict=True):
            # uint64 multiply and add wrap mod 2^64: exact ring arithmetic, order-independent.
            acc += np.asarray(upd[n], dtype=np.uint64) * np.uint64(int(w))
        out[n] = acc
    return out


def fedavg(
    updates: Sequence[Mapping[str, npt.NDArray[Any]]], num_examples: Sequence[int]
) -> dict[str, npt.NDArray[Any]]:
    """Example-weighted average of fixed-point updates, as fixed point (uint64).

    ``floor(sum_k n_k * u_k / sum_k n_k)`` with ``u_k`` read as signed; the
    caller must keep the headroom rule (see ``FixedPoint.check_headroom``) so the
    true weighted sum fits in int64.
    """
    summed = weighted_sum(updates, num_examples)
    total = sum(int(n) for n in num_examples)
    if total >= 2**63:
        raise AggregationError(f"total example count {total} does not fit in int64")
    return {n: np.floor_divide(s.view(np.int64), np.int64(total)).view(np.uint64) for n, s in summed.items()}
