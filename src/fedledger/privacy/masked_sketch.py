"""The linear algebra and the probability behind the masked checks: random projections of shared updates.

The committee never checks an update coordinate by coordinate. After every member has
committed its share bundle, it derives ``k`` public projection vectors ``a_1 .. a_k``
from a seed nobody could predict at commit time, and computes ``y_j = <a_j, x>`` and
``<ref, x>`` on the shares (a linear map: local, no communication). Only these ``k + 1``
values per update enter the MPC.

Entries of ``a_j`` are ``b + b' - 1`` for two fresh bits: ``-1`` and ``+1`` with
probability 1/4 each, ``0`` with probability 1/2. Two properties follow:

- **Norm.** ``E y_j^2 = |x|^2 / 2`` and ``y_j`` is sub-Gaussian with that variance
  (``E exp(s a x_i) = cosh^2(s x_i / 2) <= exp(s^2 x_i^2 / 4)``), so ``Q = 2 S / |x|^2``
  with ``S = sum_j y_j^2`` has a moment generating function below that of a chi-square
  with ``k`` degrees of freedom: its upper tail is bounded by the chi-square Chernoff
  bound (:func:`chi2_threshold`). Its lower tail uses ``E Q_j^2 <= 3`` only
  (:func:`lower_tail`, Achlioptas's argument for database-friendly projections).
- **Wrap-around.** If some coordinate ``x_i``, read as a centred integer modulo ``p``,
  lies outside ``[-2W, 2W]``, then for any values of the other entries at most one of
  ``c - x_i``, ``c``, ``c + x_i`` (pairwise differences ``x_i``, ``x_i``, ``2 x_i``) or
  only the pair ``c +- x_i`` lies in ``[-W, W]``: each ``y_j`` leaves the window with
  probability at least 1/2, independently, so all ``k`` stay in it with probability at
  most ``2^-k``. No projection with integer entries does better than 1/2 per projection:
  with ``x_1 = x_2 = (p + 1) / 2`` ("1/2" modulo ``p``) the projection is small exactly when
  ``a_1 + a_2`` is even (always, for entries ``+-1``).

Share arithmetic is exact and vectorised: share vectors are kept as little-endian 32-bit
words, and every product sum stays below 2^53 so float64 BLAS computes it exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.exceptions import ConfigError

__all__ = [
    "FAIL_LOG2",
    "chi2_threshold",
    "combine_words",
    "derive_seed",
    "direction_band",
    "false_accept",
    "float_projection_chunks",
    "lower_tail",
    "project",
    "project_exact",
    "projection_chunks",
]

FAIL_LOG2 = 40  # an honest update is wrongly rejected with probability at most 2^-40
_SEED_LABEL = b"fedledger/masked-checks/projections/1"
_CHUNK = 2048  # coordinates per block: 4 MB of float64 entries at k = 256, which stay in cache for the product
_MAX_EXACT = 2**53  # float64 integers are exact below this
_REFERENCE_LIMIT = 2**16  # reference values as the committee receives them: L2 norm about 2^16

WordArray = npt.NDArray[np.uint32]

# Each byte of the stream holds four entries of one coordinate, two bits per entry, least significant first. The
# table maps a byte to its four entries as int8, stored as one uint32, so a single gather expands a whole block.
_BYTE_ENTRIES = (
    np.array([[((b >> 2 * q) & 1) + ((b >> (2 * q + 1)) & 1) - 1 for q in range(4)] for b in range(256)], np.int8)
    .view(np.uint32)
    .ravel()
)


def chi2_threshold(k: int, fail_log2: int = FAIL_LOG2) -> float:
    """``q`` with ``P[chi2_k >= q] <= 2^-fail_log2``: Chernoff ``exp(-k/2 (u - ln(1 + u)))`` at ``q = k(1 + u)``."""
    target = 2 * fail_log2 * math.log(2) / k
    low, high = 0.0, 64.0
    for _ in range(200):
        mid = (low + high) / 2
        if mid - math.log1p(mid) < target:
            low = mid
        else:
            high = mid
    return k * (1 + high)


def lower_tail(k: int, fraction: float) -> float:
    """Bound on ``P[S <= fraction * E S]`` for ``k`` projections of any fixed vector.

    ``E exp(-l Q) <= 1 - l + 3 l^2 / 2`` (``e^-z <= 1 - z + z^2/2``, ``E Q = 1``, ``E Q^2 <= 3``), so the bound is
    ``min_l [exp(l fraction) (1 - l + 3 l^2 / 2)]^k``, minimised on a fine grid of ``l``.
    """
    if fraction >= 1.0:
        return 1.0
    grid = np.linspace(0.0, 2.0 / 3.0, 4001)
    exponent = k * (grid * fraction + np.log(1 - grid + 1.5 * grid * grid))
    return float(math.exp(min(0.0, float(exponent.min()))))


def false_accept(k: int, q: float, ratio: float) -> float:
    """Bound on accepting an update whose norm is ``ratio`` times the bound (``ratio > 1``), threshold ``q``."""
    return lower_tail(k, q / (k * ratio * ratio))


def direction_band(k: int, q: float, fail_log2: int = FAIL_LOG2) -> tuple[float, float]:
    """``(low, high)`` such that ``2 S / (k |x|^2)`` lies in it except with probability ``2 * 2^-fail_log2``."""
    target = 2.0**-fail_log2
    low, high = 0.0, 1.0
    for _ in range(100):
        mid = (low + high) / 2
        if lower_tail(k, mid) > target:
            high = mid
        else:
            low = mid
    return low, q / k


def derive_seed(context: bytes, contributions: Sequence[str], bundle_hashes: dict[str, bytes]) -> bytes:
    """The projections' seed: the round, every committee member's fresh contribution and every committed bundle.

    The contributions are drawn after the bundles were committed, so no member could grind its bundle for
    favourable projections; the bundle hashes bind the seed to what was committed.
    """
    digest = hashlib.sha256(_SEED_LABEL + len(context).to_bytes(2, "big") + context)
    for contribution in contributions:
        digest.update(bytes.fromhex(contribution))
    for member in sorted(bundle_hashes):
        digest.update(member.encode() + b"\x00" + bundle_hashes[member])
    return digest.digest()


def projection_chunks(seed: bytes, k: int, length: int) -> Iterator[tuple[int, npt.NDArray[np.int8]]]:
    """Blocks ``(start, E)`` of the projection matrix, ``E[i, j]`` the entry of coordinate ``start + i`` in ``a_j``.

    The AES-256-CTR keystream under the seed (the ``cryptography`` package; a third of SHAKE-256's cost here) gives
    ``2 k`` bits per coordinate, coordinate-major; entry = bit + next bit - 1. Blocks are int8: callers that multiply
    in float64 convert into a buffer they reuse, which is most of the cost saved.
    """
    if k % 4:
        raise ConfigError(f"the number of projections must be a multiple of 4, got {k}")
    if len(seed) != 32:
        raise ConfigError(f"a projection seed is 32 bytes, got {len(seed)}")
    stream = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    per_coordinate = k // 4
    zeros = bytes(min(_CHUNK, length) * per_coordinate)
    for start in range(0, length, _CHUNK):
        stop = min(length, start + _CHUNK)
        keystream = np.frombuffer(stream.update(zeros[: (stop - start) * per_coordinate]), dtype=np.uint8)
        yield start, _BYTE_ENTRIES[keystream].view(np.int8).reshape(stop - start, k)


def float_projection_chunks(seed: bytes, k: int, length: int) -> Iterator[tuple[int, npt.NDArray[np.float64]]]:
    """:func:`projection_chunks` as float64 for BLAS, in one reused buffer: a block is valid until the next one.

    Reusing the buffer matters: at 100k coordinates and ``k = 256`` fresh blocks would page in 200 MB per pass,
    which costs more than the products themselves.
    """
    buffer = np.empty((min(_CHUNK, length), k), dtype=np.float64)
    for start, block in projection_chunks(seed, k, length):
        entries = buffer[: block.shape[0]]
        entries[...] = block
        yield start, entries


def combine_words(sums: npt.NDArray[np.float64], modulus: int, width: int = 32) -> list[int]:
    """Rebuild field elements from per-word sums (last axis: words, least significant first), modulo ``modulus``."""
    flat = sums.reshape(-1, sums.shape[-1])
    out = []
    for row in flat:
        value = 0
        for index in range(row.size - 1, -1, -1):
            value = (value << width) + int(row[index])
        out.append(value % modulus)
    return out


def project_exact(rows: npt.NDArray[np.int64], seed: bytes, k: int) -> npt.NDArray[np.int64]:
    """The ``k`` projections of each row of ``rows`` (``(n, d)`` fixed-point integers, or one ``d``-vector), exactly.

    Float64 products are exact while ``max |x| * d < 2^53`` (any update or center within a norm bound of
    ``2^(53 - f)`` over ``d`` coordinates); beyond that this raises rather than round.
    """
    matrix = np.atleast_2d(np.asarray(rows, dtype=np.int64))
    length = matrix.shape[1]
    if int(np.abs(matrix).max(initial=0)) * max(1, length) >= _MAX_EXACT:
        raise ConfigError("values too large for exact float64 projections")
    total = np.zeros((matrix.shape[0], k), dtype=np.float64)
    for start, block in float_projection_chunks(seed, k, length):
        total += matrix[:, start : start + block.shape[0]].astype(np.float64) @ block
    out: npt.NDArray[np.int64] = total.astype(np.int64)
    return out[0] if np.asarray(rows).ndim == 1 else out


def project(
    shares: Sequence[WordArray], seed: bytes, k: int, modulus: int, reference: npt.NDArray[np.int64] | None = None
) -> list[list[int]]:
    """Each share vector's ``k`` projections (field elements), all members in one pass over the matrix; with a
    ``reference`` (integers of magnitude below ``2^16``) each row ends with one more value, ``<ref, s>``.

    ``shares[m]`` is ``(length, words)`` 32-bit words. Every product is exact in float64: the projections sum at
    most ``length`` terms below ``2^32``; the reference enters as its two 8-bit parts ``ref = 2^8 hi + lo``, whose
    block products stay below ``2^8 2^32 2^11`` and are summed in int64.
    """
    if not shares:
        return []
    length, words = shares[0].shape
    if length * 2**32 >= _MAX_EXACT:
        raise ConfigError(f"{length} parameters are too many for exact float64 projections")
    parts = None if reference is None else _reference_parts(reference, length)
    total = np.zeros((k, words * len(shares)), dtype=np.float64)
    dots = np.zeros((2, words * len(shares)), dtype=np.int64)
    stacked = np.empty((min(_CHUNK, length), words * len(shares)), dtype=np.float64)
    for start, block in float_projection_chunks(seed, k, length):
        n = block.shape[0]
        for m, share in enumerate(shares):
            stacked[:n, m * words : (m + 1) * words] = share[start : start + n]
        total += block.T @ stacked[:n]
        if parts is not None:
            dots += (parts[start : start + n].T @ stacked[:n]).astype(np.int64)
    per_member = total.reshape(k, len(shares), words).transpose(1, 0, 2)
    rows = [combine_words(per_member[m], modulus) for m in range(len(shares))]
    if parts is not None:
        exact = dots[0].astype(object) + 2**8 * dots[1].astype(object)  # Python ints: the sum can pass 2^63
        for m, row in enumerate(rows):
            row += combine_words(exact[m * words : (m + 1) * words].reshape(1, words), modulus)
    return rows


def _reference_parts(reference: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.float64]:
    """``(length, 2)``: the low 8 bits of each reference value in ``[0, 256)`` and the rest in ``[-256, 256]``."""
    ref = np.asarray(reference, dtype=np.int64)
    if ref.shape != (length,):
        raise ConfigError(f"reference has shape {ref.shape}, the shares {length} values")
    if int(np.abs(ref).max(initial=0)) > _REFERENCE_LIMIT:
        raise ConfigError("reference too large for exact float64 inner products")
    parts: npt.NDArray[np.float64] = np.stack([ref & 0xFF, ref >> 8], axis=1).astype(np.float64)
    return parts
