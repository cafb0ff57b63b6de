"""Fixed-point encoding of real numbers into the ring Z_{2^64}.

A real ``x`` becomes the integer ``round(x * 2**frac_bits)``, stored as uint64 in
two's complement (so ``-1`` is ``2**64 - 1``). Sums and integer multiples are then
plain uint64 arithmetic, which wraps mod 2^64. That is exactly the ring that
masking-based secure aggregation works in: members can later add uniform uint64
masks that cancel mod 2^64 in the sum, with no change to this format.

Headroom. An aggregate of updates clipped to L2 norm ``C`` has every coordinate
bounded by ``C``; the example-weighted sum therefore stays below
``C * 2**frac_bits * total_examples`` in magnitude and must remain ``< 2**63`` to
be read back as a signed number. With ``frac_bits=16`` and ``C=10`` that allows
about 1.4e13 examples per round. :meth:`FixedPoint.check_headroom` enforces it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["FixedPoint"]

_INT63 = 2**63


@dataclass(frozen=True)
class FixedPoint:
    """Codec between float arrays and uint64 fixed-point arrays with ``frac_bits`` fractional bits."""

    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 52:
            raise ValueError(f"frac_bits must be in [0, 52], got {self.frac_bits}")

    @property
    def scale(self) -> float:
        return float(2**self.frac_bits)

    @property
    def resolution(self) -> float:
        """The smallest representable step, ``2**-frac_bits``."""
        return 1.0 / self.scale

    def encode(self, x: npt.ArrayLike) -> npt.NDArray[np.uint64]:
        """Float array -> uint64 array (round half to even, two's complement for negatives)."""
        arr = np.asarray(x, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError("cannot fixed-point encode NaN or Inf")
        # Multiplying by a power of two is exact in float64, so rounding happens once, in rint.
        q = np.rint(arr * self.scale)
        if q.size and float(np.max(np.abs(q))) >= 2.0**62:
            raise ValueError(f"value too large for fixed point with {self.frac_bits} fractional bits")
        encoded: npt.NDArray[np.uint64] = q.astype(np.int64).view(np.uint64)  # numpy types view() as Any
        return encoded

    def decode(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """uint64 array -> float64 array (reinterpreting as signed)."""
        arr = np.asarray(u)
        if arr.dtype != np.uint64:
            raise ValueError(f"fixed-point arrays are uint64, got {arr.dtype}")
        return np.ascontiguousarray(arr).view(np.int64).astype(np.float64) / self.scale

    def max_total_examples(self, clip_bound: float) -> int:
        """The largest example total whose weighted sum of ``clip_bound``-bounded values fits in int64."""
        if clip_bound <= 0:
            raise ValueError("clip_bound must be positive")
        return int((_INT63 - 1) // int(np.ceil(clip_bound * self.scale)))

    def check_headroom(self, clip_bound: float, total_examples: int) -> None:
        """Raise ``ValueError`` if ``clip_bound * 2**frac_bits * total_examples`` reaches 2^63."""
        if total_examples > self.max_total_examples(clip_bound):
            raise ValueError(
                f"fixed-point overflow risk: clip bound {clip_bound} x 2^{self.frac_bits} x "
                f"{total_examples} examples does not stay below 2^63"
            )
