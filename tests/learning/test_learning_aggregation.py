"""FedAvg over fixed point: exact, order-independent, bit-identical; model blobs and scoring."""

from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.exceptions import AggregationError, UpdateRejected
from fedledger.learning import (
    FixedPoint,
    SklearnLinearAdapter,
    UpdatePipeline,
    apply_update,
    as_params,
    decode_model,
    encode_model,
    fedavg,
    model_hash,
    score_update,
    shape_spec,
    validate_update,
    weighted_sum,
)

FP = FixedPoint(16)


def updates_from_floats(deltas: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    return [{k: FP.encode(v) for k, v in d.items()} for d in deltas]


def test_fedavg_matches_weighted_mean() -> None:
    deltas = [{"x": np.array([1.0, -2.0, 0.5])}, {"x": np.array([-1.0, 4.0, 0.25])}]
    avg = fedavg(updates_from_floats(deltas), [1, 3])
    np.testing.assert_allclose(FP.decode(avg["x"]), [-0.5, 2.5, 0.3125], atol=FP.resolution)


def test_fedavg_floor_divides_signed_values() -> None:
    # -1 and 0 in fixed-point units, weights 1 and 1: floor(-1 / 2) = -1, not 0.
    u = [{"x": np.array([2**64 - 1], np.uint64)}, {"x": np.array([0], np.uint64)}]
    assert fedavg(u, [1, 1])["x"].view(np.int64).tolist() == [-1]


def test_fedavg_is_independent_of_order_and_repeatable() -> None:
    rng = np.random.default_rng(7)
    deltas = [{"w": rng.normal(size=(5, 3)), "b": rng.normal(size=3)} for _ in range(4)]
    updates = updates_from_floats(deltas)
    counts = [13, 1, 250, 77]
    ref = fedavg(updates, counts)
    for perm in itertools.permutations(range(4)):
        out = fedavg([updates[i] for i in perm], [counts[i] for i in perm])
        for k in ref:
            assert out[k].tobytes() == ref[k].tobytes()


def test_masked_updates_aggregate_to_the_same_bits() -> None:
    rng = np.random.default_rng(1)
    deltas = [{"x": rng.normal(size=6)} for _ in range(3)]
    counts = [5, 7, 11]
    plain = fedavg(updates_from_floats(deltas), counts)
    # Secure-aggregation style: members pre-weight and add masks that sum to 0 mod 2^64.
    pre = [{"x": FP.encode(d["x"]) * np.uint64(n)} for d, n in zip(deltas, counts, strict=True)]
    m1, m2 = (rng.integers(0, 2**64, size=6, dtype=np.uint64) for _ in range(2))
    masks = [m1, m2, np.uint64(0) - m1 - m2]
    masked = [{"x": p["x"] + m} for p, m in zip(pre, masks, strict=True)]
    total = sum(counts)
    s = weighted_sum(masked, [1, 1, 1])["x"]
    out = np.floor_divide(s.view(np.int64), total).view(np.uint64)
    assert out.tobytes() == plain["x"].tobytes()


def test_fedavg_rejects_bad_input() -> None:
    u = {"x": np.zeros(2, np.uint64)}
    with pytest.raises(AggregationError, match="no updates"):
        fedavg([], [])
    with pytest.raises(AggregationError, match="weights"):
        fedavg([u], [0])
    with pytest.raises(AggregationError, match="weights"):
        fedavg([u], [True])
    with pytest.raises(AggregationError, match="2 weights"):
        fedavg([u], [1, 2])
    with pytest.raises(AggregationError, match="tensors"):
        fedavg([u, {"y": np.zeros(2, np.uint64)}], [1, 1])
    with pytest.raises(AggregationError, match="dtype"):
        fedavg([{"x": np.zeros(2, np.int64)}], [1])
    with pytest.raises(AggregationError, match="shape"):
        fedavg([u, {"x": np.zeros(3, np.uint64)}], [1, 1])


def test_apply_update_is_bit_identical_and_checked() -> None:
    g = as_params({"x": np.array([0.1, -0.2, 1e-8], np.float64)})
    upd = {"x": FP.encode([0.5, -0.25, 0.0])}
    a, b = apply_update(g, upd, frac_bits=16), apply_update(g, upd, frac_bits=16)
    assert a["x"].dtype == np.float32 and a["x"].tobytes() == b["x"].tobytes()
    np.testing.assert_allclose(a["x"], [0.6, -0.45, 1e-8], rtol=1e-6)
    with pytest.raises(AggregationError, match="shape"):
        apply_update(g, {"x": FP.encode([1.0])}, frac_bits=16)
    with pytest.raises(AggregationError, match="names"):
        apply_update(g, {"y": FP.encode([1.0, 2, 3])}, frac_bits=16)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.lists(st.floats(-5, 5), min_size=3, max_size=3), st.integers(1, 10_000)),
        min_size=1,
        max_size=6,
    ),
    st.randoms(),
)
def test_round_hash_is_order_independent(members: list[tuple[list[float], int]], rnd: object) -> None:
    g = {"x": np.array([0.25, -1.0, 3.0], np.float32)}
    updates = [{"x": FP.encode(v)} for v, _ in members]
    counts = [n for _, n in members]

    def round_hash(order: list[int]) -> str:
        avg = fedavg([updates[i] for i in order], [counts[i] for i in order])
        return model_hash(encode_model(apply_update(g, avg, frac_bits=16), {"kind": "t"}))

    order = list(range(len(members)))
    ref = round_hash(order)
    rnd.shuffle(order)  # type: ignore[attr-defined]
    assert round_hash(order) == ref


# -- model blobs ---------------------------------------------------------------


def test_model_blob_roundtrip_and_hash() -> None:
    params = as_params({"w": np.arange(6).reshape(2, 3), "b": np.ones(3)})
    spec = {"kind": "sklearn-logreg", "n_features": 3, "n_classes": 2}
    blob = encode_model(params, spec, metadata={"round": "4"})
    assert model_hash(blob) == hashlib.sha256(blob).hexdigest()
    assert encode_model(dict(reversed(params.items())), dict(reversed(spec.items())), metadata={"round": "4"}) == blob
    m = decode_model(blob, expected_spec=shape_spec(params))
    assert m.spec == spec and m.metadata["round"] == "4"
    np.testing.assert_array_equal(m.params["w"], params["w"])
    with pytest.raises(UpdateRejected, match="do not match"):
        decode_model(blob, expected_spec={"w": (3, 2), "b": (3,)})


def test_model_blob_rejections() -> None:
    with pytest.raises(ValueError, match="NaN"):
        encode_model({"w": np.array([np.nan], np.float32)}, {"kind": "x"})
    with pytest.raises(ValueError, match="reserved"):
        encode_model({"w": np.zeros(1, np.float32)}, {}, metadata={"format": "x"})
    with pytest.raises(UpdateRejected, match="not a model blob"):
        decode_model(
            UpdatePipeline.default(max_norm=1).run(
                {"w": np.ones(1, np.float32)}, {"w": np.zeros(1, np.float32)}, num_examples=1
            )
        )
    with pytest.raises(UpdateRejected, match="not a safetensors blob"):
        decode_model(b"junk")


# -- scoring -------------------------------------------------------------------


def test_scoring_rewards_good_updates_and_punishes_bad_ones() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.0]) > 0).astype(np.int64)
    model = SklearnLinearAdapter(5, 2, seed=0)
    g = model.get_params()
    model.fit(X[:200], y[:200], epochs=2)
    local = model.get_params()
    model.set_params(g)
    pipe = UpdatePipeline.default(max_norm=100.0)
    spec = shape_spec(g)
    good = validate_update(pipe.run(local, g, num_examples=200), spec, max_bytes=1 << 20)
    flipped_local = {k: 2 * g[k] - local[k] for k in g}  # sign-flipped delta
    bad = validate_update(pipe.run(flipped_local, g, num_examples=200), spec, max_bytes=1 << 20)
    s_good = score_update(model, g, good, X[200:], y[200:])
    s_bad = score_update(model, g, bad, X[200:], y[200:])
    assert 0 <= s_bad < 5000 < 9000 < s_good <= 10000
    assert isinstance(s_good, int)
    for k in g:  # adapter restored
        np.testing.assert_array_equal(model.get_params()[k], g[k])
