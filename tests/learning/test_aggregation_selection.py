"""Median, trimmed mean and Bulyan's closest-to-median mean equal a plain sorted reference, bit for bit.

The kernels pick between a full sort and introselect by the number of updates, sum the trimmed band in int64
when the magnitudes allow and in exact limbs otherwise, and work on transposed column blocks. None of these
choices may change a bit: every test runs each path against ``np.sort`` along axis 0 followed by the exact
midpoint or the exact truncated mean in Python integers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedledger.learning.aggregation import _exact, bulyan, median, trimmed_mean

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Values at and around every power of two from 2^50 up, where the int64 sum of a band stops being safe.
NEAR_HEADROOM = sorted(
    {s * (2**k + e) for k in range(50, 63) for s in (1, -1) for e in (-1, 0, 1)} | {INT64_MIN, INT64_MAX}
)
PATHS = ("sort", "select")


def reference_median(matrix: np.ndarray) -> list[int]:
    ordered = np.sort(matrix, axis=0)
    n = matrix.shape[0]
    return [
        math.trunc(Fraction(int(a) + int(b), 2)) for a, b in zip(ordered[(n - 1) // 2], ordered[n // 2], strict=True)
    ]


def reference_trimmed_mean(matrix: np.ndarray, trim: int) -> list[int]:
    n = matrix.shape[0]
    band = np.sort(matrix, axis=0)[trim : n - trim]
    return [math.trunc(Fraction(sum(int(v) for v in column), n - 2 * trim)) for column in band.T]


@contextmanager
def selection_path(path: str, block_bytes: int | None = None) -> Iterator[None]:
    """Force the full sort or the introselect path (and optionally tiny column blocks)."""
    limit = 10**9 if path == "sort" else 0
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(median, "_SORT_MAX_ROWS", limit)
        patch.setattr(trimmed_mean, "_SORT_MAX_ROWS", limit)
        if block_bytes is not None:
            patch.setattr(_exact, "SELECT_BLOCK_BYTES", block_bytes)
        yield


def check_both_rules(matrix: np.ndarray) -> None:
    n = matrix.shape[0]
    want_median = reference_median(matrix)
    want_trimmed = {trim: reference_trimmed_mean(matrix, trim) for trim in range((n + 1) // 2)}
    for path in PATHS:
        for block_bytes in (None, 3 * 8 * n):  # one block, and blocks of three columns
            with selection_path(path, block_bytes):
                assert median.coordinate_median(matrix).tolist() == want_median, (path, block_bytes)
                for trim, want in want_trimmed.items():
                    assert trimmed_mean.trimmed_mean(matrix, trim).tolist() == want, (path, block_bytes, trim)


values = st.one_of(
    st.integers(INT64_MIN, INT64_MAX),
    st.sampled_from(NEAR_HEADROOM),
    st.integers(-3, 3),  # ties
    st.integers(-(2**20), 2**20),
)


@given(
    shape=st.tuples(st.integers(1, 12), st.integers(1, 7)),
    data=st.data(),
)
def test_median_and_trimmed_mean_equal_the_sorted_reference(shape: tuple[int, int], data: st.DataObject) -> None:
    n, d = shape
    cells = data.draw(st.lists(values, min_size=n * d, max_size=n * d))
    check_both_rules(np.array(cells, dtype=np.int64).reshape(n, d))


@given(
    n=st.integers(1, 12),
    d=st.integers(1, 5),
    bits=st.integers(50, 63),
    seed=st.integers(0, 2**32 - 1),
)
def test_bands_just_inside_and_outside_the_int64_sum_headroom(n: int, d: int, bits: int, seed: int) -> None:
    # Magnitudes of exactly 2^bits put the plain int64 sum right at its limit for some band widths and past it
    # for others, so both the fast sum and the limb fallback are exercised on the values where they meet.
    rng = np.random.default_rng(seed)
    high = min(2**bits, INT64_MAX)
    matrix = rng.integers(-(2**bits), high, size=(n, d), dtype=np.int64, endpoint=True)
    matrix[rng.random((n, d)) < 0.3] = -(2**bits)
    check_both_rules(matrix)


@pytest.mark.parametrize("n", [63, 64, 65, 128, 129, 150])
def test_update_counts_around_the_sort_threshold_use_the_default_path_unchanged(n: int) -> None:
    rng = np.random.default_rng(n)
    honest = rng.normal(0, 655, size=(n, 40)).astype(np.int64)
    honest[: n // 7] = rng.choice(np.array([INT64_MIN, INT64_MAX, -1, 2**62], dtype=np.int64), size=(n // 7, 40))
    honest[:, :5] = 7  # constant columns: all ties
    assert median.coordinate_median(honest).tolist() == reference_median(honest)
    for trim in (0, 1, n // 10, (n - 1) // 2):
        assert trimmed_mean.trimmed_mean(honest, trim).tolist() == reference_trimmed_mean(honest, trim), trim


@pytest.mark.parametrize("bits", range(55, 64))
def test_a_band_of_equal_extremes_averages_to_itself_without_wrapping(bits: int) -> None:
    # Every value at -2^bits (or 2^bits - 1) makes the band's sum as large as the magnitudes allow, so a plain
    # int64 sum chosen one bit too eagerly wraps around and gives a wrong mean.
    for n in range(1, 10):
        matrix = np.array([[-(2**bits), 2**bits - 1, -(2**bits) + 1]] * n, dtype=np.int64)
        for path in PATHS:
            with selection_path(path):
                for trim in range((n + 1) // 2):
                    got = trimmed_mean.trimmed_mean(matrix, trim).tolist()
                    assert got == [-(2**bits), 2**bits - 1, -(2**bits) + 1], (bits, n, trim, path)
                assert median.coordinate_median(matrix).tolist() == matrix[0].tolist()


def reference_closest_to_median_mean(matrix: np.ndarray, beta: int) -> list[int]:
    """Per column, in Python ints: grow a window from the sorted middle, nearer side first, left on ties."""
    theta = matrix.shape[0]
    out = []
    for column in np.sort(matrix, axis=0).T:
        values = [int(v) for v in column]
        middle = math.trunc(Fraction(values[(theta - 1) // 2] + values[theta // 2], 2))
        left, right = (theta - 1) // 2 - theta % 2, theta // 2 + theta % 2
        for _ in range(beta - theta % 2):
            take_left = left >= 0 and (right >= theta or middle - values[left] <= values[right] - middle)
            left, right = (left - 1, right) if take_left else (left, right + 1)
        out.append(math.trunc(Fraction(sum(values[left + 1 : left + 1 + beta]), beta)))
    return out


@given(
    shape=st.tuples(st.integers(1, 9), st.integers(1, 5)),
    data=st.data(),
)
def test_bulyan_closest_to_median_mean_equals_the_sorted_reference(shape: tuple[int, int], data: st.DataObject) -> None:
    theta, d = shape
    cells = data.draw(st.lists(values, min_size=theta * d, max_size=theta * d))
    matrix = np.array(cells, dtype=np.int64).reshape(theta, d)
    for beta in range(1, theta + 1):
        want = reference_closest_to_median_mean(matrix, beta)
        for block_bytes in (None, 2 * 8 * theta):
            with selection_path("sort", block_bytes):
                assert bulyan.closest_to_median_mean(matrix, beta).tolist() == want, (beta, block_bytes)
