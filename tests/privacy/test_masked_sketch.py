"""The projections behind the masked checks: exact share arithmetic and the stated error probabilities."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("mpyc")

from fedledger.privacy.masked_checks import CheckParams, quantize_reference  # noqa: E402
from fedledger.privacy.masked_committee import sketch_decision  # noqa: E402
from fedledger.privacy.masked_shares import from_words, weighted_sum  # noqa: E402
from fedledger.privacy.masked_sketch import (  # noqa: E402
    chi2_threshold,
    false_accept,
    lower_tail,
    project,
    projection_chunks,
)

PARAMS = CheckParams(length=300, norm_bound=1.0, min_cosine=0.2, projections=64)
P = PARAMS.modulus


def _words(values: list[int]) -> np.ndarray:
    width = PARAMS.element_bytes
    raw = b"".join(v.to_bytes(width, "little") for v in values)
    return np.frombuffer(raw, dtype="<u4").reshape(len(values), width // 4).astype(np.uint32)


def _matrix(seed: bytes, k: int, length: int) -> np.ndarray:
    return np.concatenate([block for _, block in projection_chunks(seed, k, length)]).astype(np.int64)


def test_share_arithmetic_is_exact_modulo_p() -> None:
    rng = np.random.default_rng(1)
    vectors = [[int.from_bytes(rng.bytes(12), "little") % P for _ in range(PARAMS.length)] for _ in range(3)]
    words = [_words(v) for v in vectors]
    seed = b"s" * 32
    a = _matrix(seed, 64, PARAMS.length)
    assert set(np.unique(a)) == {-1, 0, 1}
    got = project(words, seed, 64, P)
    for vector, row in zip(vectors, got, strict=True):
        assert row == [sum(int(a[i, j]) * vector[i] for i in range(PARAMS.length)) % P for j in range(64)]
    reference = rng.integers(-(2**16), 2**16 + 1, size=PARAMS.length)
    reference[:2] = [2**16, -(2**16)]  # the extremes a quantized reference can hold
    with_reference = project(words, seed, 64, P, reference)
    assert [row[:64] for row in with_reference] == got
    assert [row[64] for row in with_reference] == [
        sum(int(r) * v for r, v in zip(reference, vector, strict=True)) % P for vector in vectors
    ]
    weights = [3, 2**32 - 1, 0]
    summed = from_words(weighted_sum(words, weights, P).T)
    expected = [sum(w * vec[i] for w, vec in zip(weights, vectors, strict=True)) % P for i in range(PARAMS.length)]
    assert [int(v) for v in summed] == expected


def test_entries_are_minus_one_zero_one_with_a_quarter_half_quarter() -> None:
    entries = _matrix(b"x" * 32, 256, 4000)
    shares = [float(np.mean(entries == v)) for v in (-1, 0, 1)]
    assert shares == pytest.approx([0.25, 0.5, 0.25], abs=0.01)


def test_the_half_attack_leaves_the_window_in_about_half_the_projections() -> None:
    # x = (p + 1) / 2 at two coordinates ("1/2" modulo p): with +-1 entries every projection would be 0 or +-1.
    half = (P + 1) // 2
    x = [0] * PARAMS.length
    x[0] = x[1] = half
    k = 256
    y = project([_words(x)], b"h" * 32, k, P)[0]
    centred = [v if v <= P // 2 else v - P for v in y]
    outside = sum(abs(v) > PARAMS.coordinate_bound for v in centred) / k
    assert 0.35 < outside < 0.65  # each projection leaves with probability exactly 1/2 here


def test_stated_probabilities_follow_their_bounds() -> None:
    k = 256
    q = chi2_threshold(k)
    u = q / k - 1
    assert math.exp(-k / 2 * (u - math.log1p(u))) == pytest.approx(2.0**-40, rel=1e-6)
    assert false_accept(k, q, 4.0) < false_accept(k, q, 3.0) < false_accept(k, q, 2.0) < false_accept(k, q, 1.5)
    assert lower_tail(k, 1.0) == 1.0
    assert PARAMS.guarantees()["wrap_around_accept"] == 2.0**-64


def test_norm_estimate_and_the_bound_over_many_seeds() -> None:
    rng = np.random.default_rng(3)
    params = CheckParams(length=PARAMS.length, norm_bound=1.0, min_cosine=None, projections=256)
    x = rng.normal(size=params.length)
    near = np.rint(x / np.linalg.norm(x) * 0.99 * 2**params.frac_bits).astype(np.int64)  # just inside the bound
    over = near * 3  # three times the bound
    ratios = []
    for seed in range(12):
        key = seed.to_bytes(32, "big")
        assert sketch_decision(near, params, None, key)
        assert not sketch_decision(over, params, None, key)
        y = _matrix(key, 256, params.length).T @ near
        ratios.append(2 * float(y @ y) / 256 / float(near @ near))
    low, high = params.guarantees()["norm_estimate_low"], params.guarantees()["norm_estimate_high"]
    assert low < min(ratios) and max(ratios) < high
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.1)


def test_direction_uses_the_estimated_norm() -> None:
    rng = np.random.default_rng(4)
    reference = rng.normal(size=PARAMS.length)
    ref = quantize_reference(reference, PARAMS)
    along = np.rint(reference / np.linalg.norm(reference) * 0.5 * 2**PARAMS.frac_bits).astype(np.int64)
    assert sketch_decision(along, PARAMS, ref, b"d" * 32)
    assert not sketch_decision(-along, PARAMS, ref, b"d" * 32)
