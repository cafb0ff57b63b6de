"""Exact integer kernels that every robust rule is built from.

Aggregators on different machines must produce bit-identical aggregates, so no
rule may depend on the order or vector width of a floating-point reduction. The
kernels here only compute exact integer results:

* :func:`exact_gram` and :func:`exact_sq_norms` — inner products of int64 rows,
  exact as Python ints whatever the magnitudes (even hostile, wrapped ones). Each
  value is split into ``b``-bit limbs and the limb products are summed in float64
  BLAS over column chunks small enough that every partial sum is an integer below
  2^53; such sums are exact in any summation order, so BLAS blocking, threading
  and FMA cannot change them. Chunk results are accumulated as int64 and limbs
  recombined as Python ints.
* :func:`combine` — ``trunc(sum_i a_i x_i / D)`` for non-negative integer
  coefficients, exact: 16-bit limbs, int64 sums, and a long division from the top
  limb down. Rounding toward zero never increases a coordinate's magnitude, so a
  norm bound that holds for the exact rational combination holds for the result.
* :func:`quantize` — rational weights to integer coefficients over one
  denominator, exact when the denominators allow, otherwise rounded *down* to a
  power-of-two denominator (so bounds proven for the exact weights still hold).
* :func:`isqrt_ratio` — ``floor(sqrt(num / den) * 2^bits)`` in Python integers,
  for norms, clip factors and cosine similarities.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt

# The rule modules' shared toolkit, not the package's API: no __all__, and nothing here is re-exported.

IntArray = npt.NDArray[np.int64]
"""Signed view of fixed-point values (and anything else the kernels compute on)."""

ObjectArray = npt.NDArray[np.object_]
"""An array of Python ints (exact, unbounded)."""

COEFF_BITS = 46
"""Coefficients passed to :func:`combine` must sum below ``2**COEFF_BITS`` and the denominator stay below it."""

FRACTION_BITS = 40
"""Fractional bits of the fixed-point factors (clip factors, cosines, norm ratios) computed by the rules."""

COLUMN_CHUNK = 1 << 15
"""Columns processed at a time by column-wise kernels, to bound temporary memory."""

SELECT_BLOCK_BYTES = 1 << 21
"""Bytes of one transposed block in :func:`column_blocks`: small enough to stay in cache while it is selected."""

_LIMB16 = 16
_MASK16 = np.int64(0xFFFF)
_FLOAT_EXACT_BITS = 53
_GRAM_LIMB_MAX_BITS = 22  # keeps float chunks at >= 2^(52 - 44) = 256 columns
_GRAM_MAX_CHUNK = 1 << 16  # bounds each float64 limb copy to 2^19 bytes per row


def magnitude_bits(arr: IntArray) -> int:
    """Smallest ``k`` with ``-2**k <= v < 2**k`` for every int64 ``v`` in ``arr`` (0 for an empty array)."""
    if arr.size == 0:
        return 0
    lo = int(arr.min())
    hi = int(arr.max())
    return max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0)


def _float_limbs(chunk: IntArray, limb_bits: int, num_limbs: int) -> list[npt.NDArray[np.float64]]:
    """Split int64 values into ``num_limbs`` float64 limbs: unsigned low limbs, a signed top limb."""
    limbs: list[npt.NDArray[np.float64]] = []
    rest = chunk
    mask = np.int64((1 << limb_bits) - 1)
    for _ in range(num_limbs - 1):
        limbs.append((rest & mask).astype(np.float64))
        rest = rest >> np.int64(limb_bits)  # arithmetic shift: floor division by 2^b
    limbs.append(rest.astype(np.float64))
    return limbs


def _gram_plan(bits: int, d: int) -> tuple[int, int, int]:
    """(limb bits, number of limbs, chunk columns) such that each float64 chunk sum stays below 2^53."""
    num_limbs = max(1, math.ceil(bits / _GRAM_LIMB_MAX_BITS))
    limb_bits = max(1, math.ceil(bits / num_limbs))
    # |limb| <= 2^b, so |product| <= 2^(2b) and a chunk of 2^(53 - 2b - 1) columns sums below 2^52.
    chunk = 1 << max(0, _FLOAT_EXACT_BITS - 1 - 2 * limb_bits)
    return limb_bits, num_limbs, max(1, min(chunk, _GRAM_MAX_CHUNK, max(d, 1)))


class _ChunkAccumulator:
    """Sums exact float64 chunk results (each below 2^52 in magnitude) into Python ints without overflow."""

    _FLUSH_EVERY = 1 << 10  # 2^10 chunk sums of < 2^52 stay below 2^62 in int64

    def __init__(self, shape: tuple[int, ...]) -> None:
        self._fast = np.zeros(shape, dtype=np.int64)
        self._slow: ObjectArray | None = None
        self._pending = 0

    def add(self, part: npt.NDArray[np.float64]) -> None:
        self._fast += part.astype(np.int64)
        self._pending += 1
        if self._pending == self._FLUSH_EVERY:
            self._flush()

    def _flush(self) -> ObjectArray:
        as_int = self._fast.astype(object)
        slow = as_int if self._slow is None else self._slow + as_int
        self._slow = slow
        self._fast[...] = 0
        self._pending = 0
        return slow

    def total(self) -> ObjectArray:
        """Object array of Python ints."""
        return self._flush()


def exact_gram(x: IntArray, y: IntArray | None = None) -> ObjectArray:
    """``x @ y.T`` for int64 matrices, exactly, as an object array of Python ints (``y`` defaults to ``x``)."""
    other = x if y is None else y
    n, d = x.shape
    m = other.shape[0]
    bits = max(magnitude_bits(x), magnitude_bits(other))
    if d == 0 or bits == 0:
        return np.zeros((n, m), dtype=np.int64).astype(object)
    limb_bits, num_limbs, chunk = _gram_plan(bits, d)
    acc = _ChunkAccumulator((num_limbs * n, num_limbs * m))
    for start in range(0, d, chunk):
        left = np.concatenate(_float_limbs(x[:, start : start + chunk], limb_bits, num_limbs), axis=0)
        if y is None:
            right = left
        else:
            right = np.concatenate(_float_limbs(other[:, start : start + chunk], limb_bits, num_limbs), axis=0)
        # Every entry is an integer sum whose partial sums stay below 2^52: exact in any order.
        acc.add(left @ right.T)
    blocks = acc.total()
    out = np.zeros((n, m), dtype=np.int64).astype(object)
    for i in range(num_limbs):
        for j in range(num_limbs):
            out = out + blocks[i * n : (i + 1) * n, j * m : (j + 1) * m] * (1 << (limb_bits * (i + j)))
    return out


def exact_sq_norms(x: IntArray) -> list[int]:
    """Squared L2 norm of each int64 row, exactly, as Python ints."""
    n, d = x.shape
    bits = magnitude_bits(x)
    if d == 0 or bits == 0:
        return [0] * n
    limb_bits, num_limbs, chunk = _gram_plan(bits, d)
    acc = _ChunkAccumulator((num_limbs, num_limbs, n))
    for start in range(0, d, chunk):
        limbs = _float_limbs(x[:, start : start + chunk], limb_bits, num_limbs)
        # Row-wise products of every limb pair; exact for the same reason as in exact_gram.
        acc.add(np.array([[np.einsum("nc,nc->n", a, b) for b in limbs] for a in limbs]))
    blocks = acc.total()
    norms = [0] * n
    for i in range(num_limbs):
        for j in range(num_limbs):
            shift = limb_bits * (i + j)
            for k in range(n):
                norms[k] += int(blocks[i, j, k]) << shift
    return norms


def combine(x: IntArray, coeffs: Sequence[int], denom: int, *, extra: tuple[IntArray, int] | None = None) -> IntArray:
    """``trunc(sum_i coeffs[i] * x[i] / denom)`` per column, exactly, as int64.

    ``x`` is an int64 matrix (rows = vectors), ``coeffs`` non-negative ints with
    ``sum(coeffs) < 2**COEFF_BITS`` and ``0 < denom < 2**COEFF_BITS``. The true
    result must fit in int64, which holds whenever ``sum(coeffs) <= denom`` (a
    convex combination, or less). Each value is split into 16-bit limbs (the top
    one signed); per limb the coefficient-weighted sum stays below 2^62; a long
    division from the top limb down then yields the floor, corrected to truncation.
    ``extra`` is one more (row, coefficient) term, so a combination with a vector
    held apart (a center) is rounded once without stacking it onto ``x``.
    """
    if extra is not None:
        extra_row, extra_coeff = extra
        if extra_coeff:
            return _combine_with_row(x, coeffs, denom, extra_row, extra_coeff)
    n, d = x.shape
    if len(coeffs) != n:
        raise ValueError(f"{len(coeffs)} coefficients for {n} rows")
    if any(c < 0 for c in coeffs) or sum(coeffs) >= 1 << COEFF_BITS or not 0 < denom < 1 << COEFF_BITS:
        raise ValueError("coefficients out of range for an exact combination")
    out = np.zeros(d, dtype=np.int64)
    keep = [i for i, c in enumerate(coeffs) if c]
    if not keep or d == 0:
        return out
    weights = np.array([coeffs[i] for i in keep], dtype=np.int64)
    for start in range(0, d, COLUMN_CHUNK):
        block = x[:, start : start + COLUMN_CHUNK]
        out[start : start + block.shape[1]] = _combine_block(block if len(keep) == n else block[keep], weights, denom)
    return out


def _combine_with_row(x: IntArray, coeffs: Sequence[int], denom: int, row: IntArray, coeff: int) -> IntArray:
    out = np.empty(x.shape[1], dtype=np.int64)
    for start in range(0, x.shape[1], COLUMN_CHUNK):
        block = np.concatenate([x[:, start : start + COLUMN_CHUNK], row[None, start : start + COLUMN_CHUNK]])
        out[start : start + block.shape[1]] = combine(block, [*coeffs, coeff], denom)
    return out


def _combine_block(rows: IntArray, weights: IntArray, denom: int) -> IntArray:
    num_limbs = max(1, math.ceil(magnitude_bits(rows) / _LIMB16))
    # Coefficient-weighted sums per limb, most significant first.
    limb_sums: list[IntArray] = []
    rest = rows
    for _ in range(num_limbs - 1):
        limb_sums.append(weights @ (rest & _MASK16))
        rest = rest >> np.int64(_LIMB16)
    limb_sums.append(weights @ rest)
    limb_sums.reverse()
    den = np.int64(denom)
    remainder = np.zeros(rows.shape[1], dtype=np.int64)
    result = np.zeros(rows.shape[1], dtype=np.uint64)
    for level, limb_sum in enumerate(limb_sums):
        current = (remainder << np.int64(_LIMB16)) + limb_sum if level else limb_sum
        quotient = np.floor_divide(current, den)
        remainder = current - quotient * den
        shift = np.uint64(_LIMB16 * (num_limbs - 1 - level))
        # The true result fits in int64, so summing the digits mod 2^64 recovers it exactly.
        result += quotient.view(np.uint64) << shift
    floor: IntArray = result.view(np.int64)
    truncated: IntArray = floor + ((floor < 0) & (remainder != 0)).astype(np.int64)
    return truncated


def mix(x: IntArray, weights: Sequence[Fraction]) -> IntArray:
    """``trunc(sum_i weights[i] * x[i])`` with the weights quantized by :func:`quantize`."""
    coeffs, denom = quantize(weights)
    return combine(x, coeffs, denom)


def quantize(weights: Sequence[Fraction]) -> tuple[list[int], int]:
    """Non-negative rational weights as (integer coefficients, denominator) for :func:`combine`.

    Exact when a common denominator fits, otherwise every weight is rounded down
    onto a power-of-two grid, so ``coeff / denom <= weight`` always.
    """
    if any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative")
    total = sum(weights, Fraction(0))
    if total >= 1 << (COEFF_BITS - 2):
        raise ValueError(f"weights sum to {float(total):.3g}, too large for an exact combination")
    common = 1
    for w in weights:
        common = common * w.denominator // math.gcd(common, w.denominator)
        if common >= 1 << FRACTION_BITS:
            break
    else:
        coeffs = [int(w * common) for w in weights]
        if sum(coeffs) < 1 << COEFF_BITS:
            return coeffs, common
    denom = 1 << max(0, COEFF_BITS - 2 - max(1, math.ceil(total)).bit_length())
    return [math.floor(w * denom) for w in weights], denom


def isqrt_ratio(num: int, den: int, bits: int = FRACTION_BITS) -> int:
    """``floor(sqrt(num / den) * 2**bits)`` for ``num >= 0``, ``den > 0``, in exact integer arithmetic."""
    return math.isqrt((num << (2 * bits)) // den)


def column_blocks(matrix: IntArray, max_columns: int) -> Iterator[tuple[slice, IntArray]]:
    """The columns of an ``(n, d)`` matrix in blocks, each a fresh C-contiguous ``(columns, n)`` copy.

    Selecting along axis 0 of the row-major matrix makes NumPy gather every column's
    ``n`` strided values into a buffer and scatter them back, which costs more than the
    selection itself; a transposed block puts each column's values side by side, so
    ``partition``/``sort`` along axis 1 work in place on it. Each block holds at most
    ``max_columns`` columns and about :data:`SELECT_BLOCK_BYTES` bytes, so the extra
    memory stays bounded whatever ``d`` (the matrix itself may be gigabytes) and the
    block stays in cache while it is selected and summed. The copies are the caller's
    to reorder.
    """
    n, d = matrix.shape
    step = max(1, min(max_columns, SELECT_BLOCK_BYTES // (matrix.itemsize * max(n, 1))))
    for start in range(0, d, step):
        columns = slice(start, min(d, start + step))
        yield columns, np.ascontiguousarray(matrix[:, columns].T)


def midpoint(low: IntArray, high: IntArray) -> IntArray:
    """``trunc((low + high) / 2)`` for int64 arrays, without overflow."""
    floor = (low >> np.int64(1)) + (high >> np.int64(1)) + (low & high & np.int64(1))
    odd = ((low ^ high) & np.int64(1)).astype(bool)
    truncated: IntArray = floor + (odd & (floor < 0)).astype(np.int64)
    return truncated
