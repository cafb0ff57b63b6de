"""Robust aggregation rules: each rule's defining property, exactness, determinism, bad input."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fedledger.exceptions import AggregationError
from fedledger.learning import FixedPoint, fedavg
from fedledger.learning.aggregation import (
    AGGREGATION_RULES,
    RuleResult,
    _exact,
    aggregate,
    bulyan,
    example_cap,
    median,
    median_norm,
    trimmed_mean,
)

FRAC = 16
FP = FixedPoint(FRAC)
LSB = FP.resolution

Updates = list[dict[str, np.ndarray]]


def encode_rows(rows: np.ndarray, split: int | None = None) -> Updates:
    """Float rows -> updates with two tensors ("a": first ``split`` values as 2-D when possible, "b": the rest)."""
    split = rows.shape[1] // 2 if split is None else split
    return [{"a": FP.encode(r[:split]), "b": FP.encode(r[split:])} for r in rows]


def raw_rows(rows_int64: np.ndarray) -> Updates:
    """int64 fixed-point rows (possibly hostile) -> updates, one tensor."""
    return [{"w": r.astype(np.int64).view(np.uint64).copy()} for r in rows_int64]


def flat(result: RuleResult) -> np.ndarray:
    return np.concatenate([result.delta[k].view(np.int64).ravel() for k in sorted(result.delta)])


def flat_float(result: RuleResult) -> np.ndarray:
    return flat(result).astype(np.float64) * LSB


def run(rule: str, updates: Updates, counts: list[int] | None = None, **kw: object) -> RuleResult:
    return aggregate(rule, updates, counts or [1] * len(updates), frac_bits=FRAC, **kw)  # type: ignore[arg-type]


def exact_sq_norm(row: np.ndarray) -> int:
    return sum(int(v) * int(v) for v in row)


def honest_and_hostile(rng: np.random.Generator, honest: int, hostile: int, d: int) -> np.ndarray:
    """int64 rows: honest fixed-point values around 0.5, then hostile extremes including wrapped uint64 values."""
    good = FP.encode(0.5 + 0.1 * rng.standard_normal((honest, d))).view(np.int64)
    extremes = np.array([2**63 - 1, -(2**63), -1, 2**62, -(2**62) - 7], dtype=np.int64)
    bad = rng.choice(extremes, size=(hostile, d))
    return np.concatenate([good, bad])


# --- exact kernels ------------------------------------------------------------------------------------------------


def test_exact_gram_matches_python_ints_on_extreme_values() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-(2**63), 2**63 - 1, size=(4, 37), dtype=np.int64, endpoint=True)
    x[0, :5] = [-(2**63), 2**63 - 1, -(2**63), 0, -1]
    y = rng.integers(-(2**20), 2**20, size=(3, 37), dtype=np.int64)
    expected = [[sum(int(a) * int(b) for a, b in zip(r, s, strict=True)) for s in y] for r in x]
    assert exact_gram_list(x, y) == expected
    assert _exact.exact_sq_norms(x) == [exact_sq_norm(r) for r in x]
    assert _exact.exact_gram(x).tolist() == [
        [sum(int(a) * int(b) for a, b in zip(r, s, strict=True)) for s in x] for r in x
    ]


def exact_gram_list(x: np.ndarray, y: np.ndarray) -> list[list[int]]:
    return [[int(v) for v in row] for row in _exact.exact_gram(x, y)]


def test_exact_gram_is_independent_of_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.integers(-(2**40), 2**40, size=(5, 3000), dtype=np.int64)
    whole = _exact.exact_gram(x).tolist()
    norms = _exact.exact_sq_norms(x)
    monkeypatch.setattr(_exact, "_GRAM_MAX_CHUNK", 7)
    monkeypatch.setattr(_exact._ChunkAccumulator, "_FLUSH_EVERY", 3)
    assert _exact.exact_gram(x).tolist() == whole
    assert _exact.exact_sq_norms(x) == norms


def test_rules_do_not_depend_on_column_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(15)
    rows = honest_and_hostile(rng, honest=9, hostile=2, d=50)
    updates = raw_rows(rows)
    before = {rule: run(rule, updates, **rule_kwargs(rule, updates)).delta["w"].tobytes() for rule in AGGREGATION_RULES}
    for module in (_exact, median, trimmed_mean, bulyan):
        monkeypatch.setattr(module, "COLUMN_CHUNK", 7)
    monkeypatch.setattr(_exact, "_GRAM_MAX_CHUNK", 5)
    for rule, expected in before.items():
        assert run(rule, updates, **rule_kwargs(rule, updates)).delta["w"].tobytes() == expected, rule


@given(
    rows=st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=6),
    weights=st.lists(st.integers(0, 2**20), min_size=6, max_size=6),
)
def test_combine_is_exact_truncated_division(rows: list[int], weights: list[int]) -> None:
    x = np.array(rows, dtype=np.int64)[:, None]
    coeffs = weights[: len(rows)]
    denom = max(1, sum(coeffs))
    exact = Fraction(sum(c * v for c, v in zip(coeffs, rows, strict=True)), denom)
    assert int(_exact.combine(x, coeffs, denom)[0]) == math.trunc(exact)


def test_midpoint_does_not_overflow() -> None:
    low = np.array([2**63 - 1, -(2**63), -3, -3, 5], dtype=np.int64)
    high = np.array([2**63 - 1, -(2**63), 0, -4, -6], dtype=np.int64)
    want = [math.trunc(Fraction(int(a) + int(b), 2)) for a, b in zip(low, high, strict=True)]
    assert _exact.midpoint(low, high).tolist() == want


# --- the registry -------------------------------------------------------------------------------------------------


def test_registry_lists_every_rule_with_a_citation() -> None:
    assert set(AGGREGATION_RULES) == {
        "fedavg",
        "median",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "bulyan",
        "fltrust",
        "fltrust-median",
        "centered-clipping",
        "norm-bounding",
        "foolsgold",
    }
    for name, spec in AGGREGATION_RULES.items():
        assert spec.name == name and spec.citation
    assert [n for n, s in AGGREGATION_RULES.items() if s.needs_reference] == ["fltrust"]


def test_fedavg_through_the_registry_equals_fedavg() -> None:
    rng = np.random.default_rng(3)
    updates = encode_rows(rng.standard_normal((6, 50)))
    counts = [3, 1, 7, 2, 9, 4]
    result = run("fedavg", updates, counts)
    direct = fedavg(updates, counts)
    assert set(result.delta) == set(direct)
    for name in direct:
        assert result.delta[name].dtype == np.uint64 and result.delta[name].shape == direct[name].shape
        assert result.delta[name].tobytes() == direct[name].tobytes()
    assert result.weights is not None and sum(result.weights) == 1


# --- each rule's defining property --------------------------------------------------------------------------------


def test_median_ignores_a_minority_of_arbitrary_values() -> None:
    rng = np.random.default_rng(4)
    rows = honest_and_hostile(rng, honest=6, hostile=5, d=40)
    out = flat(run("median", raw_rows(rows)))
    assert np.all(out >= rows[:6].min(axis=0)) and np.all(out <= rows[:6].max(axis=0))


def test_median_of_odd_and_even_counts() -> None:
    updates = encode_rows(np.array([[1.0, -4.0], [3.0, 2.0], [2.0, 8.0], [100.0, -1.0]]))
    assert flat_float(run("median", updates[:3])).tolist() == [2.0, 2.0]
    assert flat_float(run("median", updates)).tolist() == [2.5, 0.5]


def test_trimmed_mean_stays_within_the_honest_range() -> None:
    rng = np.random.default_rng(5)
    rows = honest_and_hostile(rng, honest=7, hostile=3, d=40)
    result = run("trimmed-mean", raw_rows(rows), params={"trim": 3})
    out = flat(result)
    assert result.details["trim"] == 3
    assert np.all(out >= rows[:7].min(axis=0)) and np.all(out <= rows[:7].max(axis=0))


def clustered(rng: np.random.Generator, honest: int, attackers: int, d: int) -> np.ndarray:
    """Honest updates near one direction; colluding attackers tightly packed far away."""
    center = rng.standard_normal(d)
    good = center + 0.05 * rng.standard_normal((honest, d))
    bad = -5.0 * center + 0.001 * rng.standard_normal((attackers, d))
    return np.concatenate([good, bad])


def test_krum_picks_an_honest_update() -> None:
    rng = np.random.default_rng(6)
    rows = clustered(rng, honest=7, attackers=3, d=30)
    result = run("krum", encode_rows(rows), params={"f": 3})
    (chosen,) = result.selected
    assert chosen < 7
    assert flat(result).tolist() == np.concatenate([FP.encode(rows[chosen]).view(np.int64)]).tolist()
    assert result.weights is not None and result.weights[chosen] == 1


def test_multi_krum_averages_only_honest_updates() -> None:
    rng = np.random.default_rng(7)
    rows = clustered(rng, honest=7, attackers=3, d=30)
    result = run("multi-krum", encode_rows(rows), params={"f": 3})
    assert result.selected == tuple(range(7))
    np.testing.assert_allclose(flat_float(result), rows[:7].mean(axis=0), atol=2 * LSB)


@pytest.mark.parametrize("attacker_spread", [0.001, 3.0])
def test_bulyan_stays_within_the_honest_range(attacker_spread: float) -> None:
    rng = np.random.default_rng(8)
    rows = clustered(rng, honest=9, attackers=2, d=30)
    rows[9:] += attacker_spread * rng.standard_normal((2, 30))
    encoded = encode_rows(rows)
    result = run("bulyan", encoded, params={"f": 2})
    honest = np.stack([flat_row(u) for u in encoded[:9]])
    out = flat(result)
    assert len(result.selected) == 7 and result.details["beta"] == 3
    if attacker_spread > 1:
        # Scattered attackers are never Krum's choice; tight clones can be once few candidates remain (Krum then
        # counts only |R| - f - 2 neighbours), which is why Bulyan's coordinate-wise stage exists.
        assert set(result.selected) <= set(range(9))
    assert np.all(out >= honest.min(axis=0)) and np.all(out <= honest.max(axis=0))


def flat_row(update: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([update[k].view(np.int64).ravel() for k in sorted(update)])


def test_bulyan_is_bounded_even_against_extreme_values() -> None:
    rng = np.random.default_rng(9)
    rows = honest_and_hostile(rng, honest=9, hostile=2, d=20)
    out = flat(run("bulyan", raw_rows(rows), params={"f": 2}))
    assert np.all(out >= rows[:9].min(axis=0)) and np.all(out <= rows[:9].max(axis=0))


def test_norm_bounding_output_norm_is_at_most_the_bound() -> None:
    rng = np.random.default_rng(10)
    rows = rng.standard_normal((6, 64))
    rows[0] *= 1000.0  # a boosted backdoor update
    result = run("norm-bounding", encode_rows(rows), [5, 1, 1, 1, 1, 1], params={"max_norm": 0.75})
    bound = Fraction(0.75) * 2**FRAC
    assert exact_sq_norm(flat(result)) <= bound * bound
    assert result.details["clip_factors"][0] < 0.01  # type: ignore[index]


def test_fltrust_zero_weight_against_the_reference_and_norm_bound() -> None:
    rng = np.random.default_rng(11)
    reference = rng.standard_normal(40)
    rows = np.stack([reference + 0.3 * rng.standard_normal(40) for _ in range(5)] + [-3 * reference, -reference])
    ref_update = encode_rows(reference[None, :])[0]
    result = run("fltrust", encode_rows(rows), reference=ref_update)
    assert result.weights is not None
    assert result.weights[5] == 0 and result.weights[6] == 0
    assert all(w > 0 for w in result.weights[:5]) and sum(result.weights) == 1
    assert result.selected == tuple(range(5))
    assert exact_sq_norm(flat(result)) <= exact_sq_norm(flat_row(ref_update))


def test_fltrust_without_agreement_leaves_the_model_unchanged() -> None:
    reference = np.ones(8)
    result = run(
        "fltrust", encode_rows(np.stack([-reference, -2 * reference])), reference=encode_rows(reference[None])[0]
    )
    assert not flat(result).any() and result.selected == ()


def test_centered_clipping_moves_the_center_at_most_tau_per_iteration() -> None:
    rng = np.random.default_rng(12)
    d = 50
    rows = 0.1 * rng.standard_normal((8, d))
    rows[:3] = 1e6  # attackers far away
    center_values = 0.05 * rng.standard_normal(d)
    center = encode_rows(center_values[None, :])[0]
    for iterations in (1, 3):
        result = run(
            "centered-clipping", encode_rows(rows), center=center, params={"tau": 0.5, "iterations": iterations}
        )
        moved = flat_float(result) - flat_float_row(center)
        assert np.linalg.norm(moved) <= 0.5 * iterations + math.sqrt(d) * LSB * iterations
    # Honest updates inside the radius move the center to their mean.
    honest = run("centered-clipping", encode_rows(rows[3:]), params={"tau": 100.0})
    np.testing.assert_allclose(flat_float(honest), rows[3:].mean(axis=0), atol=2 * LSB)


def flat_float_row(update: dict[str, np.ndarray]) -> np.ndarray:
    return flat_row(update).astype(np.float64) * LSB


def test_foolsgold_down_weights_sybil_clones() -> None:
    rng = np.random.default_rng(13)
    honest = rng.standard_normal((5, 60))
    sybil = rng.standard_normal(60)
    rows = np.concatenate([honest, np.tile(sybil, (4, 1))])
    result = run("foolsgold", encode_rows(rows))
    assert result.weights is not None
    assert all(w == 0 for w in result.weights[5:])
    assert all(w > 0 for w in result.weights[:5])
    assert result.selected == tuple(range(5))


def test_foolsgold_uses_the_history_when_given() -> None:
    rng = np.random.default_rng(14)
    rows = rng.standard_normal((6, 40))
    # This round looks diverse, but members 4 and 5 have pushed the same direction all along.
    history = rows.copy()
    history[4] = history[5] = 50 * rng.standard_normal(40)
    result = run("foolsgold", encode_rows(rows), history=encode_rows(history))
    assert result.weights is not None and result.weights[4] == result.weights[5] == 0
    assert all(w > 0 for w in result.weights[:4])


# --- clipping to the median norm before a rule (FLAME) ------------------------------------------------------------


def test_median_norm_clipping_shortens_only_updates_above_the_median() -> None:
    short, median_row, long = np.array([3, -4]), np.array([0, 10]), np.array([-60, 80])  # norms 5, 10, 100
    clip = median_norm.scale_to_median_norm(np.stack([short, median_row, long]).astype(np.int64), clip=True, lift=False)
    assert clip.median_sq_norm == 100
    assert clip.factors[:2] == [1, 1] and 0.1 - 2**-40 <= clip.factors[2] < 0.1
    assert clip.matrix[:2].tolist() == [[3, -4], [0, 10]]
    # 0.1 rounded down, then each value toward zero: the direction stays, the norm ends at most 10.
    assert clip.matrix[2].tolist() == [-5, 7]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), honest=st.integers(3, 9), data=st.data())
def test_median_norm_clipping_bounds_every_update_by_an_honest_norm(
    seed: int, honest: int, data: st.DataObject
) -> None:
    """A minority of hostile rows (extreme and wrapped int64 values) cannot raise the bound above the honest
    norms; every clipped row is at most the median norm long and keeps each coordinate's sign."""
    hostile = data.draw(st.integers(0, honest - 1), label="hostile")  # a strict minority
    rows = honest_and_hostile(np.random.default_rng(seed), honest, hostile, 13)
    clip = median_norm.scale_to_median_norm(rows, clip=True, lift=False)
    sq = [exact_sq_norm(r) for r in rows]
    honest_sq = sq[:honest]
    assert min(honest_sq) <= clip.median_sq_norm <= max(honest_sq)
    assert all(exact_sq_norm(r) <= clip.median_sq_norm for r in clip.matrix)
    assert sum(f == 1 for f in clip.factors) >= (len(rows) + 1) // 2
    assert np.all(np.abs(clip.matrix.astype(object)) <= np.abs(rows.astype(object)))
    assert np.all((np.sign(clip.matrix) == np.sign(rows)) | (clip.matrix == 0))


def test_median_norm_lifting_lengthens_only_nonzero_updates_below_the_median() -> None:
    tiny, zero, median_row, long = np.array([3, -4]), np.array([0, 0]), np.array([0, 10]), np.array([-60, 80])
    rows = np.stack([tiny, zero, median_row, long, [30, 40]]).astype(np.int64)  # norms 5, 0, 10, 100, 50
    lift = median_norm.scale_to_median_norm(rows, clip=False, lift=True)
    assert lift.median_sq_norm == 100  # the lower median: the zero row counts like any other
    assert lift.factors == [2, 1, 1, 1, 1]  # sqrt(100 / 25), exact
    # Zero stays zero (it has no direction to lift); rows at or above the median are untouched.
    assert lift.matrix[1:].tolist() == [[0, 0], [0, 10], [-60, 80], [30, 40]]
    assert lift.matrix[0].tolist() == [6, -8]
    both = median_norm.scale_to_median_norm(rows, clip=True, lift=True)
    assert both.matrix.tolist() == [[6, -8], [0, 0], [0, 10], [-5, 7], [5, 7]]  # clip factors round down


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), shrink=st.integers(1, 60))
def test_median_norm_lifting_is_exact_and_never_overshoots(seed: int, shrink: int) -> None:
    """A lifted row is ``trunc(row * factor)`` in exact integers, at most the median norm long and within a
    rounding step of it, with every coordinate's sign kept, however short the row was (up to 2^-60 of it)."""
    rng = np.random.default_rng(seed)
    rows = (rng.standard_normal((5, 17)) * 2.0**30).astype(np.int64)
    rows[0] = (rows[0].astype(np.float64) * 2.0**-shrink).astype(np.int64)
    lift = median_norm.scale_to_median_norm(rows, clip=False, lift=True)
    for row, out, factor in zip(rows, lift.matrix, lift.factors, strict=True):
        exact = [int(np.sign(v)) * (abs(int(v)) * factor.numerator // factor.denominator) for v in row]
        assert out.tolist() == exact
        if exact_sq_norm(row) and factor > 1:
            assert exact_sq_norm(out) <= lift.median_sq_norm
            # Rounded down twice (the factor to 2^-40, each value toward zero): short by at most one unit a value.
            assert math.isqrt(lift.median_sq_norm) - math.isqrt(exact_sq_norm(out)) <= len(row) + 1
    assert np.all((np.sign(lift.matrix) == np.sign(rows)) | (rows == 0))


def test_median_norm_lifting_refuses_a_median_norm_beyond_int64() -> None:
    # Wrapped extreme values in a majority of rows: a lifted row could not be held in int64, so a clear error.
    rows = np.full((3, 4), np.iinfo(np.int64).min, dtype=np.int64)
    rows[0] = [1, 0, 0, 0]
    with pytest.raises(AggregationError, match="cannot lift updates to a median norm of 2\\^63"):
        median_norm.scale_to_median_norm(rows, clip=False, lift=True)
    assert median_norm.scale_to_median_norm(rows, clip=True, lift=False).matrix[0].tolist() == [1, 0, 0, 0]


def test_median_norm_lifting_gives_a_short_copy_of_a_step_the_weight_of_a_step() -> None:
    # A near-zero copy of an honest step passes any scoring that reads only its direction; in the mean it would
    # drag the step toward zero. Lifted, it counts as the step it copies.
    rng = np.random.default_rng(17)
    rows = 0.1 * rng.standard_normal((6, 32))
    rows[0] = 0.01 * rows[1]
    updates = encode_rows(rows)
    plain, lifted = run("fedavg", updates), run("fedavg", updates, lift_to_median_norm=True)
    pre = median_norm.scale_to_median_norm(np.stack([flat_row(u) for u in updates]), clip=False, lift=True)
    assert flat(lifted).tolist() == flat(run("fedavg", raw_rows(pre.matrix))).tolist()
    assert lifted.details["median_norm_clip_factors"][0] > 10  # type: ignore[index]
    assert exact_sq_norm(flat(lifted)) > exact_sq_norm(flat(plain))


@pytest.mark.parametrize("rule", ["fedavg", "centered-clipping", "median", "multi-krum"])
def test_median_norm_clipping_runs_before_any_rule(rule: str) -> None:
    rng = np.random.default_rng(15)
    rows = 0.1 * rng.standard_normal((7, 32))
    rows[0] *= 500.0  # a boosted update
    updates = encode_rows(rows)
    plain = run(rule, updates)
    clipped = run(rule, updates, clip_to_median_norm=True)
    # The rule saw the clipped updates: the same as handing it clipped updates itself.
    pre = median_norm.scale_to_median_norm(np.stack([flat_row(u) for u in updates]), clip=True, lift=False)
    by_hand = run(rule, raw_rows(pre.matrix))
    assert flat(clipped).tolist() == flat(by_hand).tolist()
    assert clipped.details["median_sq_norm_before_rule"] == pre.median_sq_norm
    assert clipped.details["median_norm_clip_factors"][0] < 0.01  # type: ignore[index]
    if rule == "fedavg":  # the boosted update dragged the mean; clipped, it weighs what an honest one does
        assert exact_sq_norm(flat(clipped)) <= pre.median_sq_norm < exact_sq_norm(flat(plain))


def test_fltrust_median_clips_as_before_the_shared_clip_factors() -> None:
    # fltrust-median's own clip to the median norm now uses norm_bounding.clip_factors: same bits as the
    # formula it had, min(1, isqrt_ratio(M^2, |g|^2) / 2^40), on a case with clipped and unclipped updates.
    rng = np.random.default_rng(16)
    rows = rng.standard_normal((6, 20)) * np.array([[1.0], [2.0], [0.5], [3.0], [1.5], [0.8]])
    result = run("fltrust-median", encode_rows(rows))
    matrix = np.stack([flat_row(u) for u in encode_rows(rows)])
    sq = [exact_sq_norm(r) for r in matrix]
    m2 = result.details["median_sq_norm"]
    assert m2 == sorted(sq)[2]
    assert result.weights is not None
    factors = [min(Fraction(1), Fraction(_exact.isqrt_ratio(m2, q), 1 << 40)) for q in sq]
    expected = _exact.mix(matrix, [w * f for w, f in zip(result.weights, factors, strict=True)])
    assert flat(result).tolist() == expected.tolist()


# --- float reference implementations ------------------------------------------------------------------------------


def ref_krum_scores(x: np.ndarray, f: int) -> np.ndarray:
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    k = len(x) - f - 2
    return np.array([np.sort(np.delete(d2[i], i))[:k].sum() for i in range(len(x))])


def ref_bulyan(x: np.ndarray, f: int) -> np.ndarray:
    n = len(x)
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=2)
    remaining, chosen = list(range(n)), []
    for _ in range(n - 2 * f):
        scores = [sorted(d2[i, j] for j in remaining if j != i)[: n - f - 2] for i in remaining]
        winner = remaining[int(np.argmin([sum(s) for s in scores]))]
        chosen.append(winner)
        remaining.remove(winner)
    selected = x[sorted(chosen)]
    beta = len(chosen) - 2 * f
    closest = np.argsort(np.abs(selected - np.median(selected, axis=0)), axis=0, kind="stable")[:beta]
    return np.take_along_axis(selected, closest, axis=0).mean(axis=0)


def ref_rule(rule: str, x: np.ndarray, counts: np.ndarray, reference: np.ndarray) -> np.ndarray:
    n = len(x)
    if rule == "fedavg":
        return (counts[:, None] * x).sum(axis=0) / counts.sum()
    if rule == "median":
        return np.median(x, axis=0)
    if rule == "trimmed-mean":
        k = math.floor(0.1 * n)
        return np.sort(x, axis=0)[k : n - k].mean(axis=0)
    if rule == "krum":
        return x[int(np.argmin(ref_krum_scores(x, (n - 3) // 2)))]
    if rule == "multi-krum":
        f = (n - 3) // 2
        return x[np.argsort(ref_krum_scores(x, f), kind="stable")[: n - f]].mean(axis=0)
    if rule == "bulyan":
        return ref_bulyan(x, (n - 3) // 4)
    if rule == "norm-bounding":
        factors = np.minimum(1.0, 1.0 / np.linalg.norm(x, axis=1))
        return (counts[:, None] * factors[:, None] * x).sum(axis=0) / counts.sum()
    if rule == "centered-clipping":
        dist = np.linalg.norm(x, axis=1)
        return (x * np.minimum(1.0, 1.0 / dist)[:, None]).mean(axis=0)
    if rule == "fltrust":
        norms = np.linalg.norm(x, axis=1)
        ref_norm = np.linalg.norm(reference)
        trust = np.maximum(0.0, x @ reference / (norms * ref_norm))
        if trust.sum() == 0:
            return np.zeros(x.shape[1])  # nothing agrees with the reference: no move
        return (trust[:, None] * (ref_norm / norms)[:, None] * x).sum(axis=0) / trust.sum()
    if rule == "foolsgold":
        unit = x / np.linalg.norm(x, axis=1)[:, None]
        cs = unit @ unit.T
        np.fill_diagonal(cs, 0.0)  # as in the reference code (cosine matrix minus the identity)
        top = cs.max(axis=1)
        for i in range(n):
            for j in range(n):
                if i != j and top[j] > top[i]:
                    cs[i, j] *= top[i] / top[j]
        alpha = np.clip(1 - cs.max(axis=1), 0, 1)
        alpha = alpha / alpha.max()
        alpha[alpha == 1] = 0.99
        with np.errstate(divide="ignore"):
            alpha = np.clip(np.log(alpha / (1 - alpha)) + 0.5, 0, 1)
        if alpha.sum() == 0:
            return np.zeros(x.shape[1])
        return (alpha[:, None] * x).sum(axis=0) / alpha.sum()
    raise AssertionError(rule)


FLOAT_REFERENCE_RULES = [
    "fedavg",
    "median",
    "trimmed-mean",
    "krum",
    "multi-krum",
    "bulyan",
    "norm-bounding",
    "centered-clipping",
    "fltrust",
    "foolsgold",
]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 11), d=st.integers(2, 12))
def test_rules_match_a_float_reference(seed: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    direction = rng.standard_normal(d)
    x_float = direction + 0.7 * rng.standard_normal((n, d))
    updates = encode_rows(x_float)
    x = np.stack([flat_float_row(u) for u in updates])  # what the rules see, exactly
    counts = rng.integers(1, 50, n)
    reference_float = direction + 0.3 * rng.standard_normal(d)
    reference = encode_rows(reference_float[None])[0]
    for rule in FLOAT_REFERENCE_RULES:
        want = ref_rule(rule, x, counts.astype(np.float64), flat_float_row(reference))
        got = flat_float(run(rule, updates, counts.tolist(), reference=reference if rule == "fltrust" else None))
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * LSB, err_msg=rule)


# --- fallback of the Krum family, trust-free FLTrust -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "params", "n"),
    [("krum", {"f": 2}, 5), ("krum", {}, 2), ("multi-krum", {"f": 3}, 6), ("bulyan", {"f": 1}, 5), ("bulyan", {}, 1)],
)
def test_krum_family_falls_back_to_the_median(rule: str, params: dict[str, object], n: int) -> None:
    rng = np.random.default_rng(20)
    updates = encode_rows(rng.standard_normal((n, 8)))
    result = run(rule, updates, params=params)
    assert result.details["fallback"] == "median" and "updates, got" in str(result.details["reason"])
    assert flat(result).tobytes() == flat(run("median", updates)).tobytes()
    assert result.selected == tuple(range(n)) and result.weights is None


def test_krum_family_does_not_fall_back_when_it_has_enough_updates() -> None:
    rng = np.random.default_rng(21)
    updates = encode_rows(rng.standard_normal((7, 8)))
    for rule in ("krum", "multi-krum", "bulyan"):
        assert "fallback" not in run(rule, updates, params={"f": 1}).details, rule


def test_fltrust_median_gives_zero_weight_to_updates_against_the_majority() -> None:
    rng = np.random.default_rng(22)
    direction = rng.standard_normal(40)
    honest = [direction + 0.3 * rng.standard_normal(40) for _ in range(6)]
    rows = np.stack(honest + [-3 * direction, -direction, 5 * direction])  # two opposed, one boosted
    encoded = encode_rows(rows)
    result = run("fltrust-median", encoded)
    assert result.weights is not None and sum(result.weights) == 1
    assert result.weights[6] == 0 and result.weights[7] == 0
    assert all(w > 0 for w in result.weights[:6]) and result.weights[8] > 0
    # Every update is clipped to the median of the norms, so the boosted one weighs like an honest one
    # and the aggregate's norm is at most that median norm.
    sq_norms = sorted(exact_sq_norm(flat_row(u)) for u in encoded)
    assert exact_sq_norm(flat(result)) <= sq_norms[(len(sq_norms) - 1) // 2]
    cosine = float(flat_float(result) @ direction) / (np.linalg.norm(flat_float(result)) * np.linalg.norm(direction))
    assert cosine > 0.95


def test_fltrust_median_is_in_the_ledger_rules_and_needs_no_reference() -> None:
    from fedledger.federation import ledger_rules

    assert not AGGREGATION_RULES["fltrust-median"].needs_reference
    assert "fltrust-median" in ledger_rules() and "fltrust" not in ledger_rules()
    with pytest.raises(AggregationError, match="does not take a reference"):
        run("fltrust-median", small_updates(), reference=small_updates()[0])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 9), data=st.data())
def test_fltrust_median_is_a_function_of_the_update_set_alone(seed: int, n: int, data: st.DataObject) -> None:
    """Aggregators agree bit for bit: same bytes from copies and from any order of the accepted updates."""
    rng = np.random.default_rng(seed)
    updates = encode_rows(rng.standard_normal((n, 9)) + rng.standard_normal(9))
    order = data.draw(st.permutations(range(n)))
    base = run("fltrust-median", updates)
    permuted = run("fltrust-median", [updates[i] for i in order])
    copies = run("fltrust-median", [{k: v.copy() for k, v in u.items()} for u in updates])
    assert flat(base).tobytes() == flat(permuted).tobytes() == flat(copies).tobytes()


# --- determinism and symmetry -------------------------------------------------------------------------------------


def rule_kwargs(rule: str, updates: Updates) -> dict[str, object]:
    if AGGREGATION_RULES[rule].needs_reference:
        return {"reference": updates[0]}
    return {}


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(7, 11), hostile=st.booleans())
def test_every_rule_is_deterministic(seed: int, n: int, hostile: bool) -> None:
    rng = np.random.default_rng(seed)
    rows = honest_and_hostile(rng, n - 2, 2, 17) if hostile else FP.encode(rng.standard_normal((n, 17))).view(np.int64)
    updates = raw_rows(rows)
    counts = rng.integers(1, 1000, n).tolist()
    for rule in AGGREGATION_RULES:
        first = run(rule, updates, counts, **rule_kwargs(rule, updates))
        # A fresh copy in other memory (non-contiguous views) must give the same bytes.
        copies = [{"w": np.repeat(u["w"], 2)[::2]} for u in updates]
        second = run(rule, copies, counts, **rule_kwargs(rule, copies))
        assert first.delta["w"].tobytes() == second.delta["w"].tobytes(), rule
        assert first.selected == second.selected and first.weights == second.weights, rule


SYMMETRIC_RULES = [
    "fedavg",
    "median",
    "trimmed-mean",
    "norm-bounding",
    "centered-clipping",
    "fltrust",
    "fltrust-median",
    "foolsgold",
]


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 10), data=st.data())
def test_symmetric_rules_ignore_the_order_of_updates(seed: int, n: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    updates = encode_rows(rng.standard_normal((n, 9)))
    counts = rng.integers(1, 100, n).tolist()
    order = data.draw(st.permutations(range(n)))
    reference = encode_rows(rng.standard_normal((1, 9)))[0]
    for rule in SYMMETRIC_RULES + ["krum", "multi-krum", "bulyan"]:
        kw = {"reference": reference} if rule == "fltrust" else {}
        base = run(rule, updates, counts, **kw)
        permuted = run(rule, [updates[i] for i in order], [counts[i] for i in order], **kw)
        if rule not in SYMMETRIC_RULES:
            scores = base.details.get("scores")
            if scores is not None and sorted(scores).count(min(scores)) > 1:  # type: ignore[call-overload]
                continue  # a tie is broken by index, which a permutation changes
        assert flat(base).tobytes() == flat(permuted).tobytes(), rule


# --- bad input ----------------------------------------------------------------------------------------------------


def small_updates(n: int = 5) -> Updates:
    return encode_rows(np.arange(n * 4, dtype=np.float64).reshape(n, 4))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda u: aggregate("nope", u, [1] * 5, frac_bits=FRAC), "unknown aggregation rule 'nope'"),
        (lambda u: aggregate("median", [], [], frac_bits=FRAC), "no updates to aggregate"),
        (lambda u: aggregate("median", u, [1] * 4, frac_bits=FRAC), "5 updates but 4 example counts"),
        (lambda u: aggregate("median", u, [1, 1, 0, 1, 1], frac_bits=FRAC), r"num_examples\[2\] must be a positive"),
        (lambda u: aggregate("median", u, [1] * 5, frac_bits=60), "frac_bits must be an integer in"),
        (lambda u: run("median", [*u[:4], {"a": u[4]["a"]}]), r"update 4 has tensors \['a'\]"),
        (lambda u: run("median", [*u[:4], {"a": u[4]["a"], "b": u[4]["b"][:1]}]), "update 4 tensor 'b' has shape"),
        (
            lambda u: run("median", [*u[:4], {"a": u[4]["a"], "b": u[4]["b"].astype(np.float32)}]),
            "update 4 tensor 'b' has dtype float32",
        ),
        (lambda u: run("krum", u, params={"f": 2, "fallback": None}), r"needs n > 2f\+2 = 6 updates, got 5"),
        (lambda u: run("krum", u[:2], params={"fallback": None}), "needs at least 3 updates, got 2"),
        (lambda u: run("krum", u, params={"f": 2, "fallback": "mean"}), "fallback must be 'median' or None"),
        (lambda u: run("multi-krum", u, params={"f": 1, "m": 6}), "m=6 exceeds the 5 updates"),
        (lambda u: run("multi-krum", u, params={"weighting": "votes"}), "weighting must be 'uniform' or 'examples'"),
        (lambda u: run("bulyan", u, params={"f": 1, "fallback": None}), "needs n >= 4f\\+3 = 7 updates, got 5"),
        (lambda u: run("trimmed-mean", u, params={"beta": 0.5}), r"beta must be in \[0, 1/2\)"),
        (lambda u: run("trimmed-mean", u, params={"trim": 3}), "trimming 3 from each side needs more than 6"),
        (lambda u: run("median", u, params={"beta": 0.1}), "rule 'median' has no parameter 'beta'"),
        (lambda u: run("norm-bounding", u, params={"max_norm": -1.0}), "max_norm must be positive"),
        (lambda u: run("norm-bounding", u, params={"max_norm": float("nan")}), "max_norm must be finite"),
        (lambda u: run("centered-clipping", u, params={"iterations": 0}), "iterations must be an integer >= 1"),
        (lambda u: run("centered-clipping", u, params={"tau": "1"}), "tau must be a number"),
        (lambda u: run("fltrust", u), "rule 'fltrust' needs a reference update"),
        (lambda u: run("median", u, reference=u[0]), "rule 'median' does not take a reference update"),
        (lambda u: run("median", u, center=u[0]), "rule 'median' does not take a center"),
        (lambda u: run("krum", u, history=u), "rule 'krum' does not take an update history"),
        (lambda u: run("foolsgold", u, history=u[:3]), "5 updates but 3 history entries"),
        (lambda u: run("fltrust", u, reference={"a": u[0]["a"]}), r"reference has tensors \['a'\]"),
        (
            lambda u: run("centered-clipping", u, center={"a": u[0]["a"], "b": u[0]["b"].view(np.int64)}),
            "center tensor 'b' has dtype int64",
        ),
    ],
)
def test_bad_input_is_an_aggregation_error_naming_the_problem(call, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AggregationError, match=message):
        call(small_updates())


# --- capping declared example counts at the round's median ---------------------------------------------------------


def test_example_cap_is_the_upper_median_of_the_committed_counts() -> None:
    assert example_cap.median_example_cap([159, 24, 10_000_000, 68]) == 159  # one inflater of four: an honest count
    assert example_cap.median_example_cap([5, 1, 3]) == 3
    assert example_cap.cap_example_counts([159, 24, 10_000_000, 68], 159) == [159, 24, 159, 68]
    with pytest.raises(ValueError, match="no committed example counts"):
        example_cap.median_example_cap([])


@settings(max_examples=50, deadline=None)
@given(honest=st.lists(st.integers(1, 10_000), min_size=1, max_size=12), data=st.data())
def test_a_minority_of_inflated_counts_cannot_raise_the_cap_above_an_honest_count(
    honest: list[int], data: st.DataObject
) -> None:
    # Any counts from fewer members than the honest ones (a strict minority of the round).
    inflated = data.draw(st.lists(st.integers(1, 10**7), max_size=len(honest) - 1), label="inflated")
    cap = example_cap.median_example_cap(honest + inflated)
    assert min(honest) <= cap <= max(honest)
    capped = example_cap.cap_example_counts(honest + inflated, cap)
    assert max(capped) <= max(honest)
    assert all(c == n for n, c in zip(honest + inflated, capped, strict=True) if n <= cap)


def test_fedavg_under_the_cap_weights_an_inflated_claim_as_the_median_member() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 1.0], [-4.0, -4.0]])
    updates = encode_rows(rows, split=1)
    counts = [100, 60, 10_000_000]  # the third member claims the task's maximum
    plain, capped = run("fedavg", updates, counts), run("fedavg", updates, counts, example_cap=100)
    assert flat_float(plain) == pytest.approx([-4.0, -4.0], abs=1e-3)  # the claim outweighs everyone
    assert flat(capped).tolist() == flat(run("fedavg", updates, [100, 60, 100])).tolist()
    assert capped.details["example_cap"] == 100
    # Counts at or below the cap keep their weights exactly: the same bits as no cap at all.
    assert (
        flat(run("fedavg", updates, [100, 60, 80], example_cap=100)).tolist()
        == flat(run("fedavg", updates, [100, 60, 80])).tolist()
    )


def test_rules_that_ignore_counts_are_unchanged_by_the_cap() -> None:
    updates = encode_rows(np.random.default_rng(3).standard_normal((5, 6)))
    counts = [10, 20, 30, 40, 10_000_000]
    for rule in ("median", "centered-clipping", "trimmed-mean"):
        assert flat(run(rule, updates, counts, example_cap=30)).tolist() == flat(run(rule, updates, counts)).tolist()


@pytest.mark.parametrize("cap", [0, -3, True, 2.5])
def test_a_bad_example_cap_is_refused_by_name(cap: object) -> None:
    with pytest.raises(AggregationError, match="example_cap must be a positive integer"):
        run("fedavg", encode_rows(np.ones((2, 2))), example_cap=cap)
