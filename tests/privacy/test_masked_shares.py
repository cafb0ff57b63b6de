"""Seed-compressed Shamir shares: they are MPyC's sharing and interpolation, exactly, in vectorised field words."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

pytest.importorskip("mpyc")

from fedledger.exceptions import AggregationError, BadInput  # noqa: E402
from fedledger.privacy.masked_checks import CheckParams, split_shares  # noqa: E402
from fedledger.privacy.masked_shares import (  # noqa: E402
    SEED_BYTES,
    below_modulus,
    centred_int64,
    expand_seed,
    field_limbs,
    from_words,
    interpolate,
    pack_words,
    to_words,
    unpack_words,
    weighted_sum,
    words_for,
)


def _recombine(params: CheckParams, points: list[tuple[int, np.ndarray]], at: int | list[int]) -> np.ndarray:
    from mpyc import thresha

    return np.asarray(thresha.np_recombine(params.field(), points, at).value)


@pytest.mark.parametrize("committee", [3, 5])
def test_any_threshold_plus_one_shares_reconstruct_the_secret(committee: int) -> None:
    params = CheckParams(length=200, norm_bound=1.0, committee=committee)
    p = params.modulus
    values = np.random.default_rng(committee).integers(-(2**63), 2**63 - 1, size=200, dtype=np.int64)
    values[:4] = [0, -1, 2**63 - 1, -(2**63)]
    shares = split_shares(values, params)
    assert len(shares.seeds) == params.threshold and shares.rows.shape[0] == committee - params.threshold
    rows = [from_words(shares.party_words(j, p)) for j in range(committee)]
    for subset in itertools.combinations(range(committee), params.threshold + 1):
        secret = _recombine(params, [(j + 1, rows[j]) for j in subset], 0)
        assert [int(v) for v in secret[:-1]] == [int(v) % p for v in values], subset


def test_values_of_any_size_are_shared_modulo_p() -> None:
    params = CheckParams(length=5, norm_bound=1.0)
    p = params.modulus
    wide = np.array([p - 1, p, p + 1, -(p + 5), 3 * p + 7], dtype=object)
    shares = split_shares(wide, params)
    rows = [from_words(shares.party_words(j, p)) for j in (1, 2)]
    secret = _recombine(params, [(2, rows[0]), (3, rows[1])], 0)
    assert [int(v) for v in secret[:-1]] == [p - 1, 0, 1, p - 5, 7]


@pytest.mark.parametrize(("nodes", "targets"), [(3, [3, 4, 5, 6]), (12, list(range(12, 24)))])
def test_interpolation_equals_mpyc_np_recombine(nodes: int, targets: list[int]) -> None:
    """Small Lagrange coefficients take the limb arithmetic, large ones (24 parties) MPyC's object arrays."""
    params = CheckParams(length=64, norm_bound=1.0)
    p = params.modulus
    rng = np.random.default_rng(nodes)
    values = [
        np.array([int.from_bytes(rng.bytes(16), "little") % p for _ in range(64)], dtype=object) for _ in range(nodes)
    ]
    for index, corner in enumerate(itertools.product([0, 1, p - 1], repeat=3)):  # extremes of the reduction
        for node, value in enumerate(corner):
            values[node][index] = value
    got = interpolate(params.field(), [(x, field_limbs(v, p)) for x, v in enumerate(values)], targets)
    want = _recombine(params, list(enumerate(values)), targets)
    assert got.shape == (len(targets), 64, params.element_bytes // 4)
    assert [[int(v) for v in from_words(row)] for row in got] == [[int(v) for v in row] for row in want]


def test_seed_expansion_is_deterministic_and_uniform_below_the_modulus() -> None:
    seed = bytes(range(SEED_BYTES))
    p = CheckParams(length=10, norm_bound=1.0).modulus
    first = expand_seed(seed, 5000, p)
    assert np.array_equal(first, expand_seed(seed, 5000, p))
    assert np.array_equal(first[:100], expand_seed(seed, 100, p))
    assert not np.array_equal(first, expand_seed(bytes(SEED_BYTES), 5000, p))
    assert below_modulus(first, p).all()
    # Rejection sampling: with a modulus just above 2^64 about half the candidates are dropped; the kept values
    # fill [0, modulus) evenly (top word 1 or 0 about equally often, with 0 ~ 2^64 / modulus of the time).
    modulus = 2**64 + 2**60 + 1
    kept = expand_seed(seed, 4000, modulus)
    assert kept.shape == (4000, 3) and below_modulus(kept, modulus).all()
    assert 0.88 < float(np.mean(kept[:, 2] == 0)) < 0.96  # 2^64 / (2^64 + 2^60) = 0.94
    nibble = from_words(kept[kept[:, 2] == 0, :2]) // 2**60
    assert abs(float(np.mean(nibble.astype(float))) - 7.5) < 0.4  # below 2^64, uniform: mean nibble 7.5
    with pytest.raises(BadInput, match="32 bytes"):
        expand_seed(b"short", 10, p)


def test_an_explicit_share_is_uniform_whatever_the_secret() -> None:
    """One committee member's share of 0 and of a large secret are alike: uniform over the field (top bits)."""
    params = CheckParams(length=4000, norm_bound=1.0)
    p = params.modulus
    for secret in (0, 2**62):
        shares = split_shares(np.full(4000, secret, dtype=np.int64), params)
        share = from_words(shares.party_words(params.committee - 1, p))
        buckets = np.bincount([int(v) * 8 // p for v in share], minlength=8)
        assert buckets.min() > 400 and buckets.max() < 600, buckets  # 500 expected each


def test_packed_elements_round_trip() -> None:
    params = CheckParams(length=300, norm_bound=1.0)
    shares = split_shares(np.arange(300, dtype=np.int64), params)
    row = shares.rows[0]
    packed = pack_words(row, params.wire_bytes)
    assert len(packed) == params.shared_length * params.wire_bytes < row.nbytes
    assert np.array_equal(unpack_words(packed, params.shared_length, row.shape[1], params.wire_bytes), row)


@pytest.mark.parametrize("modulus", [2**74 - 35, 2**89 - 1, 2**127 - 1])
def test_weighted_sums_reduce_exactly_and_centred_values_round_trip(modulus: int) -> None:
    rng = np.random.default_rng(3)
    words = words_for(modulus)
    vectors = [[int.from_bytes(rng.bytes(16), "little") % modulus for _ in range(40)] for _ in range(5)]
    weights = [0, 1, 2**16, 2**32 - 1, 65_537]
    summed = from_words(weighted_sum([to_words(np.array(v, dtype=object), words) for v in vectors], weights, modulus).T)
    assert list(summed) == [sum(w * v[i] for w, v in zip(weights, vectors, strict=True)) % modulus for i in range(40)]
    signed = [0, 1, -1, 2**31, -(2**31), 2**32 + 5, -(2**32) - 5, 2**63 - 1, -(2**63)]
    as_field = to_words(np.array([v % modulus for v in signed], dtype=object), words)
    assert centred_int64(as_field, modulus).tolist() == signed
    for outside in (2**63, -(2**63) - 1):
        with pytest.raises(AggregationError, match="do not fit a 64-bit integer"):
            centred_int64(to_words(np.array([outside % modulus], dtype=object), words), modulus)
