"""Record-level DP-SGD for the scikit-learn linear model (no torch): clipping, noise, and the accounting of what ran."""

from __future__ import annotations

import numpy as np
import pytest

from fedledger.exceptions import ConfigError
from fedledger.federation import TaskConfig
from fedledger.learning.adapters import SklearnLinearAdapter, build_model
from fedledger.learning.params import flatten
from fedledger.privacy.accounting import compute_epsilon, dp_sgd_mechanism
from fedledger.privacy.dp import train_dp_sgd
from fedledger.privacy.linear_dp_sgd import clip_per_example, train_linear_dp_sgd

MODEL = {"kind": "sklearn-sgd", "n_features": 5, "n_classes": 2, "eta0": 0.05, "seed": 1}


def _data(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    return X, (X[:, 0] + 0.3 * rng.normal(size=n) > 0).astype(np.int64)


def _linear() -> SklearnLinearAdapter:
    model = build_model(MODEL)
    assert isinstance(model, SklearnLinearAdapter)
    return model


def test_each_row_is_clipped_to_the_bound_and_short_rows_are_kept() -> None:
    grads = np.array([[3.0, 4.0], [0.3, 0.4], [0.0, 0.0]])
    clipped = clip_per_example(grads, 1.0)
    assert np.linalg.norm(clipped, axis=1) == pytest.approx([1.0, 0.5, 0.0])
    assert clipped[0] == pytest.approx([0.6, 0.8]) and clipped[1] == pytest.approx([0.3, 0.4])


def test_one_example_moves_a_step_by_at_most_its_clipped_share() -> None:
    """Neighbouring datasets (one example replaced by an extreme one), same samples and noise: one full-batch step
    differs by at most lr * 2C / n, which clipping guarantees; the unclipped gradients differ by about 100x that."""
    X, y = _data()
    X_far = X.copy()
    X_far[0] = 1000.0  # a per-example gradient of norm about 2200
    lr, bound = 2.0, 0.5
    results = []
    for features in (X, X_far):
        model = _linear()
        train_linear_dp_sgd(
            model,
            features,
            y,
            epochs=1,
            batch_size=len(y),  # one step, every example sampled: q = 1
            max_grad_norm=bound,
            noise_multiplier=1.0,
            lr=lr,
            rng=np.random.default_rng(3),
        )
        results.append(flatten(model.get_params()).astype(np.float64))
    moved = float(np.linalg.norm(results[0] - results[1]))
    assert 0 < moved <= lr * 2 * bound / len(y) * (1 + 1e-5)
    raw = _linear().per_example_gradients(X_far[:1], y[:1])
    assert lr * float(np.linalg.norm(np.concatenate([raw["coef"].ravel(), raw["intercept"].ravel()]))) / len(y) > 50


def test_the_per_example_gradients_are_the_log_loss_gradients() -> None:
    X, y = _data(6)
    model = _linear()
    model.set_params(
        {"coef": np.array([[0.5, -0.2, 0.1, 0.0, 0.3]], np.float32), "intercept": np.array([0.1], np.float32)}
    )
    grads = model.per_example_gradients(X, y)
    z = X @ np.array([0.5, -0.2, 0.1, 0.0, 0.3]) + 0.1
    residual = 1 / (1 + np.exp(-z)) - y
    assert grads["coef"][:, 0, :] == pytest.approx(residual[:, None] * X, rel=1e-5)
    assert grads["intercept"][:, 0] == pytest.approx(residual, rel=1e-5)


class _Counting(SklearnLinearAdapter):
    calls = 0

    def per_example_gradients(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        type(self).calls += 1
        return super().per_example_gradients(*args, **kwargs)


def test_the_steps_that_run_are_the_steps_accounted_and_the_task_budget_holds() -> None:
    """A few-silos task with a budget trains with DP-SGD by default; the multiplier dp-accounting calibrates for a
    member's examples keeps all rounds within the budget, and training runs exactly the accounted steps."""
    config = TaskConfig(model=MODEL, profile="few-silos", dp_epsilon=8.0, rounds=3, local_epochs=2)
    privacy = config.privacy
    assert privacy is not None and privacy.mode == "sample"
    X, y = _data(200)  # q = 1/4: below 1/3 dp-accounting's RDP series converge fast
    mechanism = privacy.mechanism(num_examples=len(y))
    assert mechanism == dp_sgd_mechanism(
        noise_multiplier=privacy.noise_multiplier_for(len(y)), num_examples=len(y), batch_size=64, epochs=2
    )
    spent = compute_epsilon([mechanism] * config.rounds, delta=config.dp_delta)
    assert 7.9 < spent <= 8.0
    model = _Counting(5, 2, estimator="sgd", eta0=0.05)
    result = train_dp_sgd(
        model, X, y, epochs=2, batch_size=64, max_grad_norm=1.0, delta=1e-5, seed=0,
        noise_multiplier=mechanism.noise_multiplier,
    )  # fmt: skip
    assert result.mechanism == mechanism and _Counting.calls == mechanism.steps
    assert result.epsilon == pytest.approx(compute_epsilon([mechanism], delta=1e-5))


def test_models_without_a_dp_sgd_path_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="'sklearn-sgd' with loss 'hinge'"):
        TaskConfig(model={**MODEL, "loss": "hinge"}, dp_epsilon=4.0, dp_mode="sample")
    with pytest.raises(ConfigError, match="numpy DP-SGD trains sklearn-sgd with loss 'log_loss'"):
        train_linear_dp_sgd(
            SklearnLinearAdapter(5, 2, estimator="logreg"), *_data(), epochs=1, batch_size=8, max_grad_norm=1.0,
            noise_multiplier=1.0,
        )  # fmt: skip


def test_dp_mode_auto_is_the_profiles_and_a_bad_mode_is_named() -> None:
    assert TaskConfig(model=MODEL, profile="few-silos", dp_epsilon=8.0).dp_mode == "sample"
    assert TaskConfig(model=MODEL, profile="consortium", dp_epsilon=8.0).dp_mode == "client"
    assert TaskConfig(model=MODEL, profile="few-silos").dp_mode == "client"  # no budget: unused, hashes as before
    assert TaskConfig(model=MODEL, profile="few-silos", dp_epsilon=8.0, dp_mode="client").dp_mode == "client"
    with pytest.raises(ConfigError, match=r"unknown DP mode 'record' \(field 'dp_mode'\); known: client, sample"):
        TaskConfig(model=MODEL, dp_epsilon=8.0, dp_mode="record")
