"""Pseudo-random masks over Z_{2^64} from a short seed.

A mask is the AES-128-CTR keystream under the seed (zero IV), read as
little-endian uint64: one call into OpenSSL and a zero-copy ``np.frombuffer``,
about 5 GB/s with AES-NI. Each seed is used for exactly one mask per round
(seeds are derived per round context), so the fixed IV never repeats a
(key, counter) pair. A keystream of a secure block cipher is indistinguishable
from uniform, so the uint64 masks are uniform mod 2^64 as the one-time-pad
argument of Bonawitz et al. (CCS 2017, section 4) needs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

U64Array = npt.NDArray[np.uint64]

SEED_BYTES = 16
_ZERO_IV = bytes(16)


def mask_from_seed(seed: bytes, length: int) -> U64Array:
    """``length`` uniform uint64 values expanded from a 16-byte ``seed`` (deterministic)."""
    if len(seed) != SEED_BYTES:
        raise ValueError(f"mask seeds are {SEED_BYTES} bytes, got {len(seed)}")
    if length < 0:
        raise ValueError(f"mask length must be non-negative, got {length}")
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_IV)).encryptor()
    stream = encryptor.update(bytes(8 * length))
    # frombuffer over immutable bytes is read-only; callers only read masks (they add/subtract into accumulators).
    return np.frombuffer(stream, dtype="<u8").astype(np.uint64, copy=False)
