"""Params helpers, the fixed-point codec, the update pipeline and update validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from fedledger.exceptions import UpdateRejected
from fedledger.learning import (
    UPDATE_FORMAT,
    ClipTransform,
    FixedPoint,
    FixedPointEncode,
    Transform,
    UpdateContext,
    UpdatePipeline,
    as_params,
    encode_update,
    flatten,
    global_l2_norm,
    num_params,
    shape_spec,
    unflatten,
    validate_update,
)
from fedledger.store import encode_tensors

MAX = 1 << 20


def make_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return as_params({"w": rng.normal(size=(3, 4)), "b": rng.normal(size=4)})


# -- params --------------------------------------------------------------------


def test_flatten_unflatten_and_spec() -> None:
    p = make_params()
    spec = shape_spec(p)
    assert spec == {"b": (4,), "w": (3, 4)}
    assert num_params(p) == num_params(spec) == 16
    v = flatten(p)
    assert v.dtype == np.float32 and v.shape == (16,)
    np.testing.assert_array_equal(v[:4], p["b"])  # sorted names: b before w
    back = unflatten(v, spec)
    for k in p:
        np.testing.assert_array_equal(back[k], p[k])
    with pytest.raises(ValueError):
        unflatten(v[:-1], spec)


# -- fixed point ---------------------------------------------------------------


def test_fixed_point_two_complement_and_rounding() -> None:
    fp = FixedPoint(16)
    u = fp.encode([1.0, -1.0, 0.0, 2.0**-17, 3 * 2.0**-17])
    assert u.dtype == np.uint64
    assert u.tolist() == [65536, 2**64 - 65536, 0, 0, 2]  # round half to even
    np.testing.assert_array_equal(fp.decode(u), [1.0, -1.0, 0.0, 0.0, 2 * 2.0**-16])


def test_fixed_point_masks_cancel_mod_2_64() -> None:
    fp = FixedPoint(16)
    x, y = fp.encode([0.5, -3.25]), fp.encode([-1.5, 1.0])
    mask = np.random.default_rng(0).integers(0, 2**64, size=2, dtype=np.uint64)
    masked_sum = (x + mask) + (y - mask)  # uint64 wraps: masks cancel
    np.testing.assert_array_equal(fp.decode(masked_sum), [-1.0, -2.25])


def test_fixed_point_rejects_non_finite_and_overflow() -> None:
    fp = FixedPoint(16)
    with pytest.raises(ValueError, match="NaN"):
        fp.encode([np.nan])
    with pytest.raises(ValueError, match="too large"):
        fp.encode([2.0**50])
    with pytest.raises(ValueError, match="uint64"):
        fp.decode(np.zeros(2, dtype=np.int64))


def test_headroom() -> None:
    fp = FixedPoint(16)
    n = fp.max_total_examples(10.0)
    assert 10 * 2**16 * n < 2**63 <= 10 * 2**16 * (n + 1)
    fp.check_headroom(10.0, n)
    with pytest.raises(ValueError, match="2\\^63"):
        fp.check_headroom(10.0, n + 1)


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, st.integers(0, 20), elements=st.floats(-1e6, 1e6)))
def test_fixed_point_error_is_at_most_half_a_step(x: np.ndarray) -> None:
    fp = FixedPoint(16)
    assert np.all(np.abs(fp.decode(fp.encode(x)) - x) <= fp.resolution / 2)


# -- pipeline ------------------------------------------------------------------


def test_clip_scales_to_max_norm_and_leaves_small_updates_alone() -> None:
    ctx = UpdateContext(num_examples=1)
    big = {"a": np.full(4, 3.0, np.float32), "b": np.full(2, 4.0, np.float32)}
    clipped = ClipTransform(1.0)(big, ctx)
    assert global_l2_norm(clipped) == pytest.approx(1.0, rel=1e-6)
    np.testing.assert_allclose(clipped["a"] / clipped["b"][0], big["a"] / 4.0, rtol=1e-6)
    small = {"a": np.full(2, 0.1, np.float32)}
    np.testing.assert_array_equal(ClipTransform(1.0)(small, ctx)["a"], small["a"])
    assert ctx.metadata["clip_norm"] == "1.0"
    with pytest.raises(ValueError):
        ClipTransform(0.0)


def test_pipeline_produces_a_valid_fixed_point_blob() -> None:
    g, local = make_params(0), make_params(1)
    blob = UpdatePipeline.default(max_norm=1.0).run(local, g, num_examples=42)
    upd = validate_update(blob, shape_spec(g), max_bytes=MAX, frac_bits=16, max_norm=1.0)
    assert upd.encoding == "fixed64" and upd.frac_bits == 16 and upd.num_examples == 42
    assert upd.metadata["format"] == UPDATE_FORMAT
    assert upd.metadata["transforms"] == "clip,fixed64"
    assert all(t.dtype == np.uint64 for t in upd.tensors.values())
    assert global_l2_norm(upd.to_float()) == pytest.approx(1.0, abs=1e-3)


def test_pipeline_is_deterministic() -> None:
    g, local = make_params(0), make_params(1)
    pipe = UpdatePipeline.default(max_norm=5.0)
    assert pipe.run(local, g, num_examples=3) == pipe.run(local, g, num_examples=3)


def test_custom_transform_plugs_in_before_encoding() -> None:
    class Halve:
        name = "halve"

        def __call__(self, update: dict[str, np.ndarray], ctx: UpdateContext) -> dict[str, np.ndarray]:
            ctx.metadata["halved"] = "yes"
            return {k: v / 2 for k, v in update.items()}

    assert isinstance(Halve(), Transform)
    g = {"x": np.zeros(2, np.float32)}
    local = {"x": np.array([1.0, -1.0], np.float32)}
    blob = UpdatePipeline([Halve(), FixedPointEncode()]).run(local, g, num_examples=1)
    upd = validate_update(blob, shape_spec(g), max_bytes=MAX)
    assert upd.metadata["halved"] == "yes"
    np.testing.assert_array_equal(upd.to_float()["x"], [0.5, -0.5])


def test_encoder_must_be_last() -> None:
    with pytest.raises(ValueError, match="last"):
        UpdatePipeline([FixedPointEncode(), ClipTransform(1.0)])


def test_float_pipeline_without_encoding() -> None:
    g, local = make_params(0), make_params(1)
    blob = UpdatePipeline([ClipTransform(100.0)]).run(local, g, num_examples=5)
    upd = validate_update(blob, shape_spec(g), max_bytes=MAX)
    assert upd.encoding == "float32" and upd.frac_bits is None
    np.testing.assert_allclose(upd.tensors["w"], local["w"] - g["w"], rtol=1e-6)


# -- validation ----------------------------------------------------------------

SPEC = {"b": (4,), "w": (3, 4)}


def fixed_blob(tensors: dict[str, np.ndarray], **meta: str) -> bytes:
    base = {"format": UPDATE_FORMAT, "encoding": "fixed64", "frac_bits": "16", "num_examples": "10"}
    base.update(meta)
    return encode_tensors(tensors, {k: v for k, v in base.items() if v != "-"})


def good_tensors() -> dict[str, np.ndarray]:
    return {"b": np.zeros(4, np.uint64), "w": np.zeros((3, 4), np.uint64)}


def test_valid_blob_passes() -> None:
    upd = validate_update(fixed_blob(good_tensors()), SPEC, max_bytes=MAX)
    assert upd.num_examples == 10


@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"garbage", "not a safetensors blob"),
        (fixed_blob(good_tensors())[:-5], "not a safetensors blob"),
        (fixed_blob({"w": np.zeros((3, 4), np.uint64)}), "missing tensors: b"),
        (fixed_blob({**good_tensors(), "extra": np.zeros(1, np.uint64)}), "unexpected tensors: extra"),
        (fixed_blob({**good_tensors(), "w": np.zeros((4, 3), np.uint64)}), "tensor 'w' has shape \\(4, 3\\)"),
        (fixed_blob({**good_tensors(), "b": np.zeros(4, np.int64)}), "tensor 'b' has dtype int64"),
        (fixed_blob(good_tensors(), num_examples="-"), "metadata missing: num_examples"),
        (fixed_blob(good_tensors(), frac_bits="-"), "metadata missing: frac_bits"),
        (fixed_blob(good_tensors(), format="-"), "metadata missing: format"),
        (fixed_blob(good_tensors(), encoding="-"), "metadata missing: encoding"),
        (fixed_blob(good_tensors(), format="other/9"), "unknown update format"),
        (fixed_blob(good_tensors(), num_examples="0"), "num_examples must be positive"),
        (fixed_blob(good_tensors(), num_examples="ten"), "not an integer"),
    ],
)
def test_invalid_blobs_are_rejected_with_reason(blob: bytes, reason: str) -> None:
    with pytest.raises(UpdateRejected, match=reason):
        validate_update(blob, SPEC, max_bytes=MAX)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_in_float_blobs_are_rejected(bad: float) -> None:
    w = np.zeros((3, 4), np.float32)
    w[1, 2] = bad
    blob = encode_update({"b": np.zeros(4, np.float32), "w": w}, {"num_examples": "3"})
    with pytest.raises(UpdateRejected, match="tensor 'w' contains NaN or Inf"):
        validate_update(blob, SPEC, max_bytes=MAX)


def test_oversized_blob_is_rejected() -> None:
    blob = fixed_blob(good_tensors())
    with pytest.raises(UpdateRejected, match=f"oversized: {len(blob)} bytes, limit 100"):
        validate_update(blob, SPEC, max_bytes=100)


def test_frac_bits_norm_and_example_cap() -> None:
    fp = FixedPoint(16)
    scaled = {"b": fp.encode(np.full(4, 10.0)), "w": fp.encode(np.zeros((3, 4)))}
    with pytest.raises(UpdateRejected, match="exceeds the clip bound"):
        validate_update(fixed_blob(scaled), SPEC, max_bytes=MAX, max_norm=1.0)
    validate_update(fixed_blob(scaled), SPEC, max_bytes=MAX, max_norm=20.0)
    with pytest.raises(UpdateRejected, match="frac_bits 16, expected 20"):
        validate_update(fixed_blob(good_tensors()), SPEC, max_bytes=MAX, frac_bits=20)
    with pytest.raises(UpdateRejected, match="above the limit"):
        validate_update(fixed_blob(good_tensors()), SPEC, max_bytes=MAX, max_examples=5)
