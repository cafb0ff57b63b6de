"""Seed-compressed Shamir shares of a member's update for the masked checks, in vectorised field words.

A member shares ``n`` field elements (its fixed-point update and a blinding value) with degree
``t`` among ``m`` committee members, party ``j`` holding the polynomial's value at ``x = j + 1``
(MPyC's convention). Instead of drawing the ``t`` random coefficients and sending every party a
share vector, it

1. draws a fresh 32-byte seed for each of the first ``t`` parties and expands it with AES-256-CTR
   (the ``cryptography`` package) into that party's share vector, uniform in the field by rejection
   sampling (:func:`expand_seed`);
2. computes the other ``m - t`` parties' share vectors from the secret (the value at ``x = 0``) and
   the ``t`` seeded shares by Lagrange interpolation at ``x = t + 1 .. m``: MPyC's
   ``thresha.recombine`` gives the Lagrange coefficients, applied to all coordinates at once
   (:func:`interpolate`);
3. sends each seeded party its 32-byte seed and each other party its share vector, encrypted to it
   as before. A committee member with a seed expands it into the same share vector.

This is the share compression of SPDZ-style and Prio-style systems. It is as private as fresh
Shamir shares:

- *The distribution is the same.* A polynomial of degree ``t`` with ``f(0) = s`` is fixed
  equally by its ``t`` other coefficients or by its values at ``1 .. t`` (the Vandermonde map
  between them is a bijection), so drawing ``f(1) .. f(t)`` uniformly draws the polynomial
  uniformly, exactly as MPyC's ``np_random_split`` does. Any ``t`` parties' shares are then
  uniform and independent of ``s``.
- *The seeds are pseudorandom keys.* Replace the expansion of each seed a coalition of at most
  ``t`` parties does not hold by truly random values (AES-256-CTR under a secret uniformly random
  key is indistinguishable from random): the coalition's view becomes that of fresh shares, whose
  explicit values at its ``x > t`` points are uniform given the values at its seeded points. A
  seed it holds is its own share in compressed form and tells it nothing more.
- *A seed is as secret as the share it replaces*: drawn fresh for one party of one bundle, never
  reused, and sent only inside that party's AES-GCM ciphertext.

A member that deviates gains nothing: whatever seeds and rows it sends, the committee checks that
all ``m`` shares lie on one polynomial of degree ``t``
(:mod:`fedledger.privacy.masked_committee`) and names it otherwise.

Share vectors are kept as ``(n, words)`` arrays of little-endian 32-bit words, the form the
committee's exact linear algebra reads; on the wire each element takes ``ceil(bits / 8)`` bytes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedledger.exceptions import AggregationError, BadInput, ConfigError

__all__ = [
    "SEED_BYTES",
    "DealtShares",
    "below_modulus",
    "centred_int64",
    "deal",
    "expand_seed",
    "field_limbs",
    "from_words",
    "interpolate",
    "pack_words",
    "to_words",
    "unpack_words",
    "weighted_sum",
]

SEED_BYTES = 32  # an AES-256 key
_ZERO_NONCE = bytes(16)  # every seed is a fresh key used for one stream, so one fixed counter block suffices
_WORD = 0xFFFFFFFF
# Coefficient sums up to 2^28 keep every int64 limb sum below 2^61 and the float64 quotient estimate within one of
# the true quotient; larger committees (beyond 21 members) take MPyC's own object-array interpolation.
_MAX_COEFFICIENT_SUM = 2**28
# Weighted sums take 16-bit halves of the weights over groups of 2^11 members: each limb sum stays below
# 2^11 * 2^16 * 2^32 = 2^59 and each group's value below 2^27 p; with the shifted high halves (below 2^16 p) or up to
# 16 reduced groups added, a value stays below the 2^28 p that one exact reduction takes.
_WEIGHT_BITS = 16
_GROUP = 2**11
_MAX_MEMBERS = 2**15

WordArray = npt.NDArray[np.uint32]
LimbArray = npt.NDArray[np.int64]
ObjectArray = npt.NDArray[np.object_]


def words_for(modulus: int) -> int:
    """32-bit words per field element."""
    return (modulus.bit_length() + 31) // 32


def _below(limbs: npt.NDArray[Any], modulus: int) -> npt.NDArray[np.bool_]:
    """Per element of limb-major 32-bit limbs ``(words, n)`` (the top one may be wider): is it below ``modulus``?"""
    below = np.zeros(limbs.shape[1], dtype=bool)
    equal = np.ones(limbs.shape[1], dtype=bool)
    for index in range(limbs.shape[0] - 1, -1, -1):
        limb = modulus >> (32 * index) if index == limbs.shape[0] - 1 else (modulus >> (32 * index)) & _WORD
        below |= equal & (limbs[index] < limb)
        equal &= limbs[index] == limb
    return below


def below_modulus(words: npt.NDArray[Any], modulus: int) -> npt.NDArray[np.bool_]:
    """Per row of ``(n, words)`` little-endian 32-bit words, whether it encodes a value below ``modulus``."""
    return _below(words.T, modulus)


def expand_seed(seed: bytes, count: int, modulus: int) -> WordArray:
    """``count`` field elements, uniform below ``modulus``, from AES-256-CTR keyed by ``seed`` (rejection sampling).

    Candidates take the modulus's bit length from the keystream; those not below it are skipped, so the result is
    exactly uniform given a random keystream. Deterministic in ``seed``: the member and the committee member
    holding the seed get the same ``(count, words)`` vector.
    """
    if len(seed) != SEED_BYTES:
        raise BadInput(f"a share seed is {SEED_BYTES} bytes, got {len(seed)}")
    words = words_for(modulus)
    top_mask = np.uint32((1 << (modulus.bit_length() - 32 * (words - 1))) - 1)
    stream = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_NONCE)).encryptor()
    parts, have = [], 0
    while have < count:
        batch = count - have + (count - have) // 16 + 16  # the modulus is at least half the candidates' range
        raw = np.frombuffer(stream.update(bytes(4 * words * batch)), dtype="<u4").reshape(batch, words).copy()
        raw[:, -1] &= top_mask
        rows = raw.view(np.dtype((np.void, 4 * words))).ravel()  # whole rows: a 1-D mask copies them in one pass
        kept = rows[below_modulus(raw, modulus)][: count - have].view("<u4").reshape(-1, words)
        parts.append(kept)
        have += kept.shape[0]
    if not parts:
        return np.zeros((0, words), dtype=np.uint32)
    out: WordArray = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out.astype(np.uint32, copy=False)


def to_words(values: ObjectArray, words: int) -> WordArray:
    """Non-negative Python ints below ``2^(32 words)`` as ``(n, words)`` little-endian 32-bit words."""
    out = np.empty((len(values), words), dtype=np.uint32)
    rest = np.asarray(values, dtype=object)
    for index in range(words):
        out[:, index] = (rest & _WORD).astype(np.uint32)
        rest = rest >> 32
    return out


def from_words(words: npt.NDArray[Any]) -> ObjectArray:
    """``(n, words)`` little-endian 32-bit words as Python ints (object array)."""
    out: ObjectArray = np.zeros(words.shape[0], dtype=object)
    for index in range(words.shape[1] - 1, -1, -1):
        out = np.asarray((out << 32) + words[:, index].astype(np.int64).astype(object), dtype=object)
    return out


def pack_words(words: WordArray, wire_bytes: int) -> bytes:
    """Each element's low ``wire_bytes`` little-endian bytes (the rest are zero for values below the modulus)."""
    raw = np.ascontiguousarray(words, dtype="<u4").view(np.uint8).reshape(words.shape[0], -1)
    return np.ascontiguousarray(raw[:, :wire_bytes]).tobytes()


def unpack_words(data: bytes, count: int, words: int, wire_bytes: int) -> WordArray:
    """Inverse of :func:`pack_words`; ``data`` must hold exactly ``count`` elements."""
    raw = np.zeros((count, 4 * words), dtype=np.uint8)
    raw[:, :wire_bytes] = np.frombuffer(data, dtype=np.uint8).reshape(count, wire_bytes)
    return raw.view("<u4").astype(np.uint32)


def field_limbs(values: npt.NDArray[Any], modulus: int) -> LimbArray:
    """Integers (int64, or Python ints of any size) modulo ``modulus``, as limb-major int64 limbs ``(words, n)``."""
    words = words_for(modulus)
    if np.asarray(values).dtype == object:
        reduced: ObjectArray = np.asarray(np.asarray(values, dtype=object) % modulus, dtype=object)
        return np.ascontiguousarray(to_words(reduced, words).T, dtype=np.int64)
    signed = np.asarray(values, dtype=np.int64)
    limbs = np.zeros((words, signed.size), dtype=np.int64)
    if modulus < 2**63:
        signed = np.mod(signed, np.int64(modulus))  # exact: the modulus fits int64
    limbs[0] = signed & _WORD
    if words > 1:
        limbs[1] = signed >> 32  # arithmetic shift: the sign moves into the upper limb
        negative = signed < 0
        limbs += negative * _modulus_limbs(modulus)[:, None]  # s + p for s < 0 (p > 2^63 here): in [0, p)
    return _carry(limbs)


def _modulus_limbs(modulus: int) -> LimbArray:
    return np.array([(modulus >> (32 * j)) & _WORD for j in range(words_for(modulus))], dtype=np.int64)


def _carry(limbs: LimbArray) -> LimbArray:
    """Normalise signed limb sums in place: every limb but the top into ``[0, 2^32)``; the top keeps the sign."""
    for index in range(limbs.shape[0] - 1):
        carry = limbs[index] >> 32
        limbs[index] &= _WORD
        limbs[index + 1] += carry
    return limbs


def _reduce(limbs: LimbArray, modulus: int) -> LimbArray:
    """Normalised limbs of ``V`` with ``|V| < 2^28 p`` -> limbs of ``V mod p`` in ``[0, p)``.

    A float64 quotient estimate from the top two limbs is within ``2^-21`` of ``V / p`` (the dropped limbs are
    below ``2^-32 p``; four roundings of relative size ``2^-53`` on a quotient under ``2^28`` stay below
    ``2^-22``), so its floor ``q`` is within one of ``floor(V / p)`` and ``V - q p`` lies in ``[-p, 2p)``: one
    conditional addition or subtraction of ``p`` finishes the reduction exactly.
    """
    p_limbs = _modulus_limbs(modulus)[:, None]
    top = limbs.shape[0] - 1
    estimate = limbs[top].astype(np.float64) * 2.0 ** (32 * top)
    if top:
        estimate += limbs[top - 1].astype(np.float64) * 2.0 ** (32 * (top - 1))
    rest = _carry(limbs - np.floor(estimate / float(modulus)).astype(np.int64) * p_limbs)
    below_zero = (rest[-1] < 0).astype(np.int64)  # the lower limbs are normalised: the top one has the sign
    at_least_p = (~_below(rest, modulus)).astype(np.int64)  # False below zero, where the top limb is negative
    rest += (below_zero - at_least_p) * p_limbs
    return _carry(rest)


def _lagrange(field: Any, nodes: list[int], targets: list[int]) -> list[list[int]]:
    """MPyC's Lagrange coefficients: row ``r`` gives the value at ``targets[r]`` from the values at ``nodes``."""
    from mpyc import thresha

    unit = [(x, [1 if i == j else 0 for j in range(len(nodes))]) for i, x in enumerate(nodes)]
    return [[int(c) for c in row] for row in thresha.recombine(field, unit, targets)]


def interpolate(field: Any, nodes: list[tuple[int, LimbArray]], targets: list[int]) -> WordArray:
    """Values at ``targets`` of the polynomials through ``nodes`` (x, limbs ``(words, n)`` in ``[0, p)``).

    Returns ``(len(targets), n, words)`` 32-bit words in ``[0, p)``. MPyC's ``thresha.recombine`` gives the
    coefficients; for small ones (committees up to 21 members) they are applied as centred integers to the limbs
    and reduced exactly (:func:`_reduce`), otherwise MPyC's ``thresha.np_recombine`` interpolates the values as
    Python ints.
    """
    modulus = int(field.modulus)
    matrix = _lagrange(field, [x for x, _ in nodes], targets)
    centred = [[c - modulus if c > modulus // 2 else c for c in row] for row in matrix]
    words, count = nodes[0][1].shape
    if max(sum(abs(c) for c in row) for row in centred) >= _MAX_COEFFICIENT_SUM:
        from mpyc import thresha

        points = [(x, from_words(limbs.T)) for x, limbs in nodes]
        values = thresha.np_recombine(field, points, targets).value
        return np.stack([to_words(row, words) for row in values])
    out = np.empty((len(targets), count, words), dtype=np.uint32)
    for index, row in enumerate(centred):
        total = np.zeros((words, count), dtype=np.int64)
        for coefficient, (_, limbs) in zip(row, nodes, strict=True):
            total += coefficient * limbs
        out[index] = _reduce(_carry(total), modulus).T
    return out


@dataclass(frozen=True)
class DealtShares:
    """A member's shares of ``n`` field elements: a seed for each of the first ``threshold`` parties (their share
    vectors are its expansion) and explicit share vectors ``rows[i]`` for party ``threshold + i``."""

    seeds: tuple[bytes, ...]
    rows: WordArray  # (committee - threshold, n, words)

    @property
    def threshold(self) -> int:
        return len(self.seeds)

    @property
    def committee(self) -> int:
        return self.threshold + int(self.rows.shape[0])

    def party_words(self, party: int, modulus: int) -> WordArray:
        """Committee member ``party``'s share vector as 32-bit words (expanding its seed where it has one)."""
        if party < self.threshold:
            return expand_seed(self.seeds[party], int(self.rows.shape[1]), modulus)
        row: WordArray = self.rows[party - self.threshold]
        return row


def deal(secrets: LimbArray, field: Any, threshold: int, committee: int) -> DealtShares:
    """Shamir shares of degree ``threshold`` for ``committee`` parties of ``secrets`` (limbs ``(words, n)``)."""
    modulus = int(field.modulus)
    seeds = tuple(os.urandom(SEED_BYTES) for _ in range(threshold))
    nodes = [(0, secrets)]
    count = secrets.shape[1]
    nodes += [
        (j + 1, np.ascontiguousarray(expand_seed(s, count, modulus).T, dtype=np.int64)) for j, s in enumerate(seeds)
    ]
    rows = interpolate(field, nodes, list(range(threshold + 1, committee + 1)))
    return DealtShares(seeds, rows)


def weighted_sum(shares: list[WordArray], weights: list[int], modulus: int) -> LimbArray:
    """``sum_m weights[m] * s_m`` modulo ``modulus`` for share vectors ``(n, words)``: limbs ``(words, n)`` in
    ``[0, p)``, exact in int64 limbs (weights below ``2^32``, at most ``2^15`` members)."""
    if not shares or len(shares) != len(weights):
        raise ConfigError(f"{len(shares)} share vectors for {len(weights)} weights")
    if len(shares) > _MAX_MEMBERS:
        raise ConfigError(f"{len(shares)} members: at most {_MAX_MEMBERS} for exact 64-bit accumulation")
    if any(not 0 <= w < 2 ** (2 * _WEIGHT_BITS) for w in weights):
        raise ConfigError(f"a weight outside [0, 2^{2 * _WEIGHT_BITS}): {weights}")
    count, words = shares[0].shape
    mask = (1 << _WEIGHT_BITS) - 1
    shifts = [0] if max(weights) <= mask else [_WEIGHT_BITS, 0]  # counts of examples rarely need the high halves
    total = np.zeros((words, count), dtype=np.int64)
    for index, shift in enumerate(shifts):
        if index:
            total <<= _WEIGHT_BITS  # the reduced sum of the high halves moves up before the low halves are added
        for start in range(0, len(shares), _GROUP):
            group = np.zeros((words, count), dtype=np.int64)
            for share, weight in zip(shares[start : start + _GROUP], weights[start : start + _GROUP], strict=True):
                if (half := (weight >> shift) & mask) != 0:
                    group += np.int64(half) * share.T.astype(np.int64)
            total += _carry(group) if len(shares) <= _GROUP else _reduce(_carry(group), modulus)
        total = _reduce(_carry(total), modulus)
    return total


def centred_int64(words: npt.NDArray[Any], modulus: int) -> npt.NDArray[np.int64]:
    """Field elements ``(n, words)`` as centred integers (``v - p`` for ``v > p / 2``) in int64.

    Raises :class:`AggregationError` when one does not fit int64 (a revealed sum can only do that if the field
    was sized wrongly).
    """
    limbs = np.ascontiguousarray(np.asarray(words).T, dtype=np.int64)
    negative = ~_below(limbs, modulus // 2 + 1)
    limbs = _carry(limbs - negative.astype(np.int64) * _modulus_limbs(modulus)[:, None])
    if limbs.shape[0] == 1:
        return np.asarray(limbs[0], dtype=np.int64)
    # value = limbs[0] + 2^32 H, with H the signed integer of the upper limbs; it fits int64 when H fits int32,
    # that is when the upper limbs are the sign extension of a 32-bit word.
    upper = limbs[1:]
    sign = np.where(upper[-1] < 0, np.int64(-1), np.int64(0))
    if upper.shape[0] == 1:
        high = upper[0]
        fits = (high >= -(2**31)) & (high < 2**31)
    else:
        extension = np.where(sign < 0, np.int64(_WORD), np.int64(0))
        fits = (upper[-1] == sign) & np.all(upper[1:-1] == extension, axis=0)
        fits &= (upper[0] >= 2**31) == (sign < 0)
        high = upper[0] - (sign < 0) * np.int64(2**32)
    if not bool(np.all(fits)):
        raise AggregationError(f"{int(np.count_nonzero(~fits))} revealed values do not fit a 64-bit integer")
    return np.asarray(limbs[0] + (high << 32), dtype=np.int64)
