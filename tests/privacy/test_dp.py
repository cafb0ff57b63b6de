"""DP-SGD through Opacus and client-level DP-FedAvg noise shares."""

from __future__ import annotations

import inspect
import math
from typing import Any

import numpy as np
import pytest

from fedledger.exceptions import BadInput, ConfigError, UpdateRejected
from fedledger.learning import FixedPointEncode, UpdatePipeline, build_model, shape_spec, validate_update
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import UpdateContext, global_l2_norm
from fedledger.privacy.accounting import PrivacyAccount, PrivacyBudgetExceeded, compute_epsilon
from fedledger.privacy.dp import (
    ClientDPTransform,
    DPSGDConfig,
    SeededNoise,
    SystemNoise,
    effective_noise_multiplier,
    noise_share_std,
    noisy_update_norm_bound,
    train_dp_sgd,
)

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

DELTA = 1e-5


def _blobs(n: int = 480, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well-separated Gaussian classes in 6 dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 6)) + np.where(y[:, None] == 1, 1.5, -1.5) * np.array([1, 1, 0, 0, 0, 0])
    return X, y


def _model(seed: int = 0) -> Any:
    return build_model({"kind": "torch-mlp", "n_features": 6, "n_classes": 2, "hidden": [8], "lr": 0.2, "seed": seed})


# -- DP-SGD ----------------------------------------------------------------------------------------


def test_dp_sgd_hits_the_target_epsilon_and_learns() -> None:
    X, y = _blobs()
    model = _model()
    before = model.get_params()
    result = train_dp_sgd(
        model, X, y, epochs=3, batch_size=32, max_grad_norm=1.0, delta=DELTA, seed=7, target_epsilon=3.0
    )
    assert 2.97 < result.epsilon <= 3.0
    assert result.epsilon == compute_epsilon([result.mechanism], delta=DELTA)
    assert result.mechanism.steps == 3 * 15 and result.mechanism.sample_rate == 1 / 15  # ceil(480 / 32) = 15
    assert any(not np.array_equal(before[k], result.params[k]) for k in before)
    assert all(np.array_equal(model.get_params()[k], result.params[k]) for k in before)  # adapter updated in place
    assert model.evaluate(X, y) > 0.8


def test_dp_sgd_replays_with_the_same_seed_and_only_then() -> None:
    X, y = _blobs(200)
    kw: dict[str, Any] = dict(epochs=1, batch_size=20, max_grad_norm=1.0, delta=DELTA, noise_multiplier=1.0)
    a = train_dp_sgd(_model(), X, y, seed=3, **kw).params
    b = train_dp_sgd(_model(), X, y, seed=3, **kw).params
    c = train_dp_sgd(_model(), X, y, seed=4, **kw).params
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_dp_sgd_noise_is_what_moves_the_model() -> None:
    """Noise 10x the largest clipped gradient: weights move by Opacus' noise, std sigma * C * lr / batch per step."""
    X, y = _blobs(400)
    module = torch.nn.Linear(6, 2)
    start = {k: v.detach().clone() for k, v in module.state_dict().items()}
    sigma, clip, lr = 1000.0, 1e-3, 1.0
    result = train_dp_sgd(
        module, X, y, epochs=1, batch_size=100, max_grad_norm=clip, delta=DELTA, seed=0, noise_multiplier=sigma, lr=lr
    )
    moved = np.concatenate([(module.state_dict()[k] - start[k]).numpy().ravel() for k in start])
    steps = result.mechanism.steps  # 4 steps, expected batch 100: per-step noise std sigma * clip / 100
    expected = sigma * clip * lr / 100 * math.sqrt(steps)
    assert np.std(moved) == pytest.approx(expected, rel=0.5)  # 14 weights: loose, but a wrong scale is 10x off
    assert set(result.params) == {"bias", "weight"}


def test_dp_sgd_leaves_no_opacus_hooks_on_the_callers_module() -> None:
    X, y = _blobs(100)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    train_dp_sgd(module, X, y, epochs=1, batch_size=10, max_grad_norm=1.0, delta=DELTA, seed=0, noise_multiplier=1.0)
    for sub in module.modules():
        assert not sub._forward_hooks and not sub._backward_hooks
        assert all(not hasattr(p, "grad_sample") for p in sub.parameters(recurse=False))
    assert type(module) is torch.nn.Sequential


def test_dp_sgd_parameters_are_keyword_only_and_checked() -> None:
    X, y = _blobs(50)
    params = inspect.signature(train_dp_sgd).parameters
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for name, p in params.items() if name not in ("model", "X", "y")
    )
    with pytest.raises(TypeError):
        train_dp_sgd(_model(), X, y, 1, 10, 1.0, DELTA, 0)  # type: ignore[misc]
    common: dict[str, Any] = dict(epochs=1, batch_size=10, max_grad_norm=1.0, delta=DELTA, seed=0)
    with pytest.raises(BadInput, match="exactly one"):
        train_dp_sgd(_model(), X, y, **common)
    with pytest.raises(BadInput, match="exactly one"):
        train_dp_sgd(_model(), X, y, noise_multiplier=1.0, target_epsilon=1.0, **common)
    with pytest.raises(BadInput, match="TorchAdapter or a torch.nn.Module"):
        train_dp_sgd(
            build_model({"kind": "sklearn-logreg", "n_features": 6, "n_classes": 2}),
            X,
            y,
            noise_multiplier=1.0,
            **common,
        )
    with pytest.raises(BadInput, match="shape"):
        train_dp_sgd(_model(), X[:, :3], y, noise_multiplier=1.0, **common)
    with pytest.raises(BadInput, match="max_grad_norm"):
        train_dp_sgd(_model(), X, y, noise_multiplier=1.0, **{**common, "max_grad_norm": 0.0})


def test_dp_sgd_refuses_layers_opacus_cannot_handle() -> None:
    X, y = _blobs(50)
    module = torch.nn.Sequential(torch.nn.Linear(6, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    with pytest.raises(ConfigError, match="cannot be trained with DP-SGD"):
        train_dp_sgd(
            module, X, y, epochs=1, batch_size=10, max_grad_norm=1.0, delta=DELTA, seed=0, noise_multiplier=1.0
        )


def test_member_at_its_budget_refuses_to_train_and_keeps_its_model() -> None:
    X, y = _blobs(120)
    config = DPSGDConfig(noise_multiplier=1.2, max_grad_norm=1.0, batch_size=20, delta=DELTA)
    per_round = config.mechanism(num_examples=len(y), epochs=1)
    two_rounds = compute_epsilon([per_round] * 2, delta=DELTA)
    three_rounds = compute_epsilon([per_round] * 3, delta=DELTA)
    budget = (two_rounds + three_rounds) / 2
    model, account = _model(), PrivacyAccount("hospital-a", DELTA)
    declared = []
    for round_id in (1, 2):
        result = config.train_round(
            model, X, y, account=account, budget_epsilon=budget, round_id=round_id, epochs=1, seed=round_id
        )
        declared.append(result.epsilon)
    assert declared[1] == pytest.approx(two_rounds) and declared[0] < declared[1]
    frozen = model.get_params()
    with pytest.raises(PrivacyBudgetExceeded):
        config.train_round(model, X, y, account=account, budget_epsilon=budget, round_id=3, epochs=1, seed=3)
    assert all(np.array_equal(frozen[k], model.get_params()[k]) for k in frozen)
    assert [r for r, _ in account.rounds] == [1, 2]
    with pytest.raises(ConfigError, match="delta"):
        config.train_round(
            model, X, y, account=PrivacyAccount("b", 1e-6), budget_epsilon=9, round_id=1, epochs=1, seed=0
        )


# -- client-level DP-FedAvg --------------------------------------------------------------------------


class _ZeroNoise:
    def normal(self, scale: float, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape)


def _update(norm: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    raw = {"b": rng.normal(size=(5,)), "w": rng.normal(size=(10, 5))}
    scale = norm / global_l2_norm(raw)
    return {k: (v * scale).astype(np.float32) for k, v in raw.items()}


def test_client_dp_clips_to_the_bound() -> None:
    transform = ClientDPTransform(clip_norm=1.5, noise_multiplier=1.0, expected_members=4, noise=_ZeroNoise())
    big = transform(_update(40.0), UpdateContext(num_examples=10))
    assert global_l2_norm(big) == pytest.approx(1.5, rel=1e-6)
    small = transform(_update(0.3), UpdateContext(num_examples=10))
    assert global_l2_norm(small) == pytest.approx(0.3, rel=1e-6)  # already inside: untouched


def test_client_dp_adds_exactly_its_share_in_float() -> None:
    transform = ClientDPTransform(clip_norm=1.0, noise_multiplier=2.0, expected_members=4, noise=SeededNoise(5))
    ctx = UpdateContext(num_examples=10)
    out = transform(_update(10.0), ctx)
    clipped = ClientDPTransform(clip_norm=1.0, noise_multiplier=2.0, expected_members=4, noise=_ZeroNoise())(
        _update(10.0), UpdateContext(num_examples=10)
    )
    replay = SeededNoise(5)
    for name in sorted(out):  # noise drawn per tensor, in sorted-name order
        expected = clipped[name].astype(np.float64) + replay.normal(1.0, clipped[name].shape)  # 2 * 1 / sqrt(4)
        assert out[name].dtype == np.float32
        np.testing.assert_allclose(out[name], expected, rtol=1e-6, atol=1e-6)
    assert ctx.metadata["dp_noise_std"] == "1.0" and ctx.metadata["dp_expected_members"] == "4"


def test_noise_shares_sum_to_the_target_variance() -> None:
    sigma, clip, n, dim = 1.3, 2.0, 10, 40_000
    zero = {"w": np.zeros(dim, dtype=np.float32)}
    shares = [
        ClientDPTransform(clip_norm=clip, noise_multiplier=sigma, expected_members=n, noise=SeededNoise(100 + k))(
            zero, UpdateContext(num_examples=1)
        )["w"].astype(np.float64)
        for k in range(n)
    ]
    target = (sigma * clip) ** 2
    # The sample variance over 40000 coordinates has relative std sqrt(2 / 40000) = 0.7 %.
    assert np.var(np.sum(shares, axis=0)) == pytest.approx(target, rel=0.03)
    assert np.var(shares[0]) == pytest.approx(target / n, rel=0.03)
    # Shortfall: 6 of 10 shares carry 60 % of the variance, as effective_noise_multiplier says.
    short = np.var(np.sum(shares[:6], axis=0))
    assert short == pytest.approx(target * 0.6, rel=0.03)
    eff = effective_noise_multiplier(sigma, expected_members=n, weights=6)
    assert short == pytest.approx((eff * clip) ** 2, rel=0.03)


def test_effective_noise_multiplier() -> None:
    assert effective_noise_multiplier(1.0, expected_members=8, weights=8) == pytest.approx(1.0)
    assert effective_noise_multiplier(1.0, expected_members=8, weights=2) == pytest.approx(0.5)
    assert effective_noise_multiplier(1.0, expected_members=4, weights=[100, 100, 100, 100]) == pytest.approx(1.0)
    # Unequal example weights lose noise relative to the largest member's pull.
    assert effective_noise_multiplier(1.0, expected_members=4, weights=[400, 10, 10, 10]) < 0.51
    with pytest.raises(BadInput):
        effective_noise_multiplier(1.0, expected_members=4, weights=[])


def test_system_noise_is_fresh_and_has_the_right_scale() -> None:
    a = SystemNoise().normal(3.0, (20_000,))
    b = SystemNoise().normal(3.0, (20_000,))
    assert not np.array_equal(a, b)
    assert np.std(a) == pytest.approx(3.0, rel=0.03)
    # Default transforms draw from the system source, never from the pipeline's replay seed.
    t = ClientDPTransform(clip_norm=1.0, noise_multiplier=1.0, expected_members=1)
    one = t(_update(0.5), UpdateContext(num_examples=1, rng=np.random.default_rng(0)))
    two = t(_update(0.5), UpdateContext(num_examples=1, rng=np.random.default_rng(0)))
    assert not np.array_equal(one["w"], two["w"])


def test_client_dp_parameters_are_keyword_only_and_checked() -> None:
    with pytest.raises(TypeError):
        ClientDPTransform(1.0, 1.0, 4)  # type: ignore[misc]
    for bad in ({"clip_norm": 0.0}, {"noise_multiplier": -1.0}, {"expected_members": 0}, {"clip_norm": math.inf}):
        kwargs: dict[str, Any] = {"clip_norm": 1.0, "noise_multiplier": 1.0, "expected_members": 4, **bad}
        with pytest.raises(BadInput):
            ClientDPTransform(**kwargs)
    assert noise_share_std(clip_norm=2.0, noise_multiplier=1.5, expected_members=9) == pytest.approx(1.0)


def test_noisy_updates_pass_validation_against_the_noisy_bound_only() -> None:
    """Through the real pipeline: the clip bound alone rejects honest noisy updates; the noise-aware bound does not."""
    global_ = {"b": np.zeros(5, np.float32), "w": np.zeros((10, 5), np.float32)}
    local = {k: v + u for (k, v), u in zip(sorted(global_.items()), _update(9.0).values(), strict=True)}
    transform = ClientDPTransform(clip_norm=1.0, noise_multiplier=1.0, expected_members=2, noise=SeededNoise(1))
    pipeline = UpdatePipeline([transform, FixedPointEncode(FixedPoint(24))])
    blob = pipeline.run(local, global_, num_examples=12)
    bound = noisy_update_norm_bound(clip_norm=1.0, noise_std=transform.share_std, num_params=55)
    decoded = validate_update(blob, shape_spec(global_), max_bytes=1 << 20, frac_bits=24, max_norm=bound)
    assert decoded.metadata["transforms"] == "client-dp,fixed64"
    assert decoded.metadata["dp_noise_multiplier"] == "1.0"
    with pytest.raises(UpdateRejected, match="exceeds the clip bound"):
        validate_update(blob, shape_spec(global_), max_bytes=1 << 20, frac_bits=24, max_norm=1.0)
