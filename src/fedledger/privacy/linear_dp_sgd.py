"""Sample-level DP-SGD for the scikit-learn linear model, in numpy: the base install's record-level DP.

Opacus needs torch, so a member training scikit-learn's ``SGDClassifier`` (``sklearn-sgd`` with the log loss, the
model of ``fedledger demo``) runs DP-SGD here (Abadi, Chu, Goodfellow, McMahan, Mironov, Talwar, Zhang, "Deep
Learning with Differential Privacy", CCS 2016), with the same schedule Opacus runs for torch models, so that the
same :func:`~fedledger.privacy.accounting.dp_sgd_mechanism` accounts for both:

- ``ceil(n / batch_size)`` steps per epoch, each on a Poisson sample that holds every example independently with
  probability ``q = 1 / steps_per_epoch``;
- each sampled example's gradient (:meth:`SklearnLinearAdapter.per_example_gradients`, all parameters together)
  clipped to L2 norm ``C = max_grad_norm``; the clipped gradients summed, Gaussian noise of std
  ``noise_multiplier * C`` added to every coordinate, and the sum divided by the expected batch ``q * n`` (a
  fixed divisor: the actual batch size is itself private);
- one SGD step along that noisy mean plus the L2 penalty's gradient, which reads no example.

One round is therefore the Poisson-subsampled Gaussian mechanism of rate ``q``, composed ``epochs *
steps_per_epoch`` times, with sensitivity ``C`` per step (adding or removing one example changes the clipped sum
by at most ``C``). The epsilon comes from dp-accounting's accountant for exactly that event, never from a formula
here: this module only runs the steps, and returns the mechanism it ran so the caller accounts for what happened.

**Learning rate.** scikit-learn's SGD takes one step of ``eta0`` per example. A DP-SGD step averages an expected
batch of ``B = q * n`` examples, so it steps ``eta0 * B`` by default: an epoch moves the model about as far as one
of scikit-learn's epochs along the mean clipped gradient.

**Randomness.** Both the Poisson sample and the noise must stay secret: the privacy amplification by subsampling
assumes nobody knows which examples a step used, and noise that can be regenerated can be subtracted. The round's
training seed is derived from public values (task, member, round), so neither comes from it: by default they come
from numpy's PCG64 seeded with 256 bits of ``os.urandom`` per call, as client-level noise does
(:class:`~fedledger.privacy.dp.SystemNoise`). Tests pass their own generator to replay a run. The floating-point
caveat of :mod:`fedledger.privacy.dp` (Mironov 2012) applies here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.adapters import SklearnLinearAdapter, check_xy
from fedledger.learning.params import as_params
from fedledger.privacy.accounting import SampledGaussian, dp_sgd_mechanism

__all__ = ["clip_per_example", "secret_generator", "train_linear_dp_sgd"]

FloatArray = npt.NDArray[np.float64]

_NAMES = ("coef", "intercept")  # the linear model's parameters, flattened in this order


def secret_generator() -> np.random.Generator:
    """A generator nobody else can replay: PCG64 seeded with 256 bits of ``os.urandom``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int.from_bytes(os.urandom(32), "big"))))


def clip_per_example(gradients: FloatArray, max_norm: float) -> FloatArray:
    """Each row of ``gradients`` (one example's flattened gradient) scaled down to L2 norm at most ``max_norm``;
    rows already within the bound are unchanged."""
    if gradients.ndim != 2:
        raise BadInput(f"per-example gradients must be 2-D (examples, parameters), got shape {gradients.shape}")
    norms = np.linalg.norm(gradients, axis=1)
    factors = np.minimum(1.0, max_norm / np.maximum(norms, np.finfo(np.float64).tiny))
    clipped: FloatArray = gradients * factors[:, None]
    return clipped


def train_linear_dp_sgd(
    model: SklearnLinearAdapter,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    epochs: int,
    batch_size: int,
    max_grad_norm: float,
    noise_multiplier: float,
    lr: float | None = None,
    rng: np.random.Generator | None = None,
) -> SampledGaussian:
    """Train ``model`` in place with DP-SGD (see the module docstring); returns the mechanism it ran.

    ``lr`` defaults to the model's ``eta0`` times the expected batch. ``rng`` draws the Poisson samples and the
    noise; leave it None outside tests (:func:`secret_generator`).
    """
    if not isinstance(model, SklearnLinearAdapter):
        raise ConfigError(f"numpy DP-SGD trains sklearn-sgd with loss 'log_loss', got {type(model).__name__}")
    if not model.supports_dp_sgd:
        raise ConfigError(
            f"numpy DP-SGD trains sklearn-sgd with loss 'log_loss', got {model.spec['kind']} with loss {model.loss!r}"
        )
    Xa, ya = _checked(model, X, y)
    mechanism = dp_sgd_mechanism(
        noise_multiplier=noise_multiplier, num_examples=len(ya), batch_size=batch_size, epochs=epochs
    )
    if not (math.isfinite(max_grad_norm) and max_grad_norm > 0):
        raise BadInput(f"max_grad_norm must be positive and finite, got {max_grad_norm!r}")
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise BadInput(f"noise_multiplier must be positive and finite, got {noise_multiplier!r}")
    expected_batch = mechanism.sample_rate * len(ya)
    step_size = model.eta0 * expected_batch if lr is None else lr
    if not (math.isfinite(step_size) and step_size > 0):
        raise BadInput(f"the DP-SGD learning rate must be positive and finite, got {step_size!r}")
    gen = secret_generator() if rng is None else rng
    params = {name: arr.astype(np.float64) for name, arr in model.get_params().items()}
    noise_std = noise_multiplier * max_grad_norm
    for _ in range(mechanism.steps):
        sampled = gen.random(len(ya)) < mechanism.sample_rate
        grads = model.per_example_gradients(Xa[sampled], ya[sampled], params=params)
        summed = clip_per_example(_flat_rows(grads), max_grad_norm).sum(axis=0)
        noisy = (summed + gen.normal(0.0, noise_std, size=summed.shape)) / expected_batch
        penalty = model.penalty_gradient(params=params)
        for name, value in _unflatten(noisy, params).items():
            params[name] = params[name] - step_size * (value + penalty[name])
    model.set_params(as_params(params))
    return mechanism


def _checked(model: SklearnLinearAdapter, X: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, Any]:
    try:
        Xa, ya = check_xy(X, y, n_features=model.n_features, n_classes=model.n_classes)
    except ValueError as exc:
        raise BadInput(f"DP-SGD training data: {exc}") from exc
    if ya.size == 0:
        raise BadInput("DP-SGD training data is empty")
    return Xa, ya


def _flat_rows(grads: Mapping[str, FloatArray]) -> FloatArray:
    """Per-example gradients as one row per example: every parameter, in :data:`_NAMES` order."""
    n = grads[_NAMES[0]].shape[0]
    return np.concatenate([grads[name].reshape(n, -1) for name in _NAMES], axis=1)


def _unflatten(flat: FloatArray, like: Mapping[str, FloatArray]) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    offset = 0
    for name in _NAMES:
        size = like[name].size
        out[name] = flat[offset : offset + size].reshape(like[name].shape)
        offset += size
    return out
