"""The validated input every rule works on: updates flattened into one int64 matrix.

Tensors are concatenated in sorted-name order (as everywhere in fedledger), each
update becoming one row of signed int64 fixed-point values (the uint64 bits
reinterpreted). Rules compute one int64 row; :meth:`UpdateBatch.unflatten` turns
it back into named uint64 tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._exact import IntArray

# The rule modules' shared toolkit, not the package's API: no __all__, and nothing here is re-exported.

Tensors = Mapping[str, npt.NDArray[Any]]
"""Named arrays as given by the caller (validated before use)."""


@dataclass(frozen=True)
class UpdateBatch:
    """``n`` validated updates; :attr:`matrix` is their ``(n, d)`` int64 stack, built on first use."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    updates: Sequence[Tensors]
    num_examples: tuple[int, ...]
    frac_bits: int

    @cached_property
    def matrix(self) -> IntArray:
        """One row per update: its tensors in sorted-name order, flattened, as signed int64."""
        total = sum(int(np.prod(s, dtype=np.int64)) for s in self.shapes)
        matrix = np.empty((len(self.updates), total), dtype=np.int64)
        for k, update in enumerate(self.updates):
            offset = 0
            for name in self.names:
                arr = np.asarray(update[name])
                matrix[k, offset : offset + arr.size] = arr.reshape(-1).view(np.int64)
                offset += arr.size
        return matrix

    @property
    def size(self) -> int:
        return len(self.updates)

    def flatten(self, tensors: Tensors, what: str) -> IntArray:
        """One more update-shaped tensor dict (reference, center, history) as an int64 row, validated."""
        if sorted(tensors) != list(self.names):
            raise AggregationError(f"{what} has tensors {sorted(tensors)}, expected {list(self.names)}")
        parts = []
        for name, shape in zip(self.names, self.shapes, strict=True):
            arr = np.asarray(tensors[name])
            if arr.dtype != np.uint64:
                raise AggregationError(f"{what} tensor {name!r} has dtype {arr.dtype}, expected uint64")
            if arr.shape != shape:
                raise AggregationError(f"{what} tensor {name!r} has shape {arr.shape}, expected {shape}")
            parts.append(np.ascontiguousarray(arr).reshape(-1).view(np.int64))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def with_rows(self, matrix: IntArray) -> UpdateBatch:
        """The same batch (names, shapes, example counts) holding ``matrix``'s rows as its updates."""
        if matrix.shape != self.matrix.shape:
            raise AggregationError(f"rows of shape {matrix.shape} for a batch of shape {self.matrix.shape}")
        batch = UpdateBatch(
            self.names, self.shapes, [self.unflatten(row) for row in matrix], self.num_examples, self.frac_bits
        )
        batch.__dict__["matrix"] = matrix  # prime the cached property: the rows are already stacked
        return batch

    def unflatten(self, row: IntArray) -> dict[str, npt.NDArray[np.uint64]]:
        """An int64 row back into named uint64 tensors."""
        out: dict[str, npt.NDArray[np.uint64]] = {}
        offset = 0
        flat = np.ascontiguousarray(row, dtype=np.int64).view(np.uint64)
        for name, shape in zip(self.names, self.shapes, strict=True):
            count = int(np.prod(shape, dtype=np.int64))
            out[name] = flat[offset : offset + count].reshape(shape).copy()
            offset += count
        return out


def _check_count(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 < int(value) < 2**63:
        raise AggregationError(f"{what} must be a positive integer below 2^63, got {value!r}")
    return int(value)


def stack_updates(updates: Sequence[Tensors], num_examples: Sequence[int], *, frac_bits: int) -> UpdateBatch:
    """Validate updates (same names, shapes, uint64) and example counts."""
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, int) or not 0 <= frac_bits <= 52:
        raise AggregationError(f"frac_bits must be an integer in [0, 52], got {frac_bits!r}")
    if not updates:
        raise AggregationError("no updates to aggregate")
    if len(num_examples) != len(updates):
        raise AggregationError(f"{len(updates)} updates but {len(num_examples)} example counts")
    counts = tuple(_check_count(c, f"num_examples[{k}]") for k, c in enumerate(num_examples))
    names = tuple(sorted(updates[0]))
    shapes = tuple(tuple(int(s) for s in np.shape(updates[0][name])) for name in names)
    for k, update in enumerate(updates):
        if tuple(sorted(update)) != names:
            raise AggregationError(f"update {k} has tensors {sorted(update)}, expected {list(names)}")
        for name, shape in zip(names, shapes, strict=True):
            arr = np.asarray(update[name])
            if arr.dtype != np.uint64:
                raise AggregationError(f"update {k} tensor {name!r} has dtype {arr.dtype}, expected uint64")
            if arr.shape != shape:
                raise AggregationError(f"update {k} tensor {name!r} has shape {arr.shape}, expected {shape}")
    return UpdateBatch(names, shapes, list(updates), counts, frac_bits)


@dataclass(frozen=True)
class RuleInputs:
    """Everything a rule may read: the updates and the optional side inputs, all validated and flattened."""

    batch: UpdateBatch
    reference: IntArray | None = None
    """A trusted update (FLTrust's server update; validators' local training in fedledger)."""
    center: IntArray | None = None
    """Where centered clipping starts: the previous aggregate (momentum), or zero."""
    history: IntArray | None = None
    """Per-update accumulated history, one row per update (FoolsGold)."""


@dataclass(frozen=True)
class RuleOutcome:
    """What a rule computed, before it is turned back into tensors."""

    row: IntArray
    selected: tuple[int, ...]
    weights: tuple[Fraction, ...] | None
    details: dict[str, object] = field(default_factory=dict)
