"""The ``relative-loss`` scoring rule: the change in the validator's validation loss, as a fraction of the loss
before, centred on 5000; and why it exists: once a model has converged, a reversed update changes few predictions
(accuracy-based scoring calls it harmless) but still raises the loss."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedledger.exceptions import BadInput
from fedledger.federation.modes import Scoring
from fedledger.federation.profiles import DEFAULT_THRESHOLDS
from fedledger.learning import SCORING_RULES, UpdatePipeline, build_model, validate_update
from fedledger.learning.metrics import predict_proba
from fedledger.learning.scoring import (
    LOSS_FLOOR,
    loss_change_score,
    mean_cross_entropy,
    score_relative,
    score_relative_loss,
    validation_loss,
)

N_FEATURES = 5


LN2 = math.log(2)


@pytest.mark.parametrize(
    ("before", "after", "n_classes", "want"),
    [
        (0.4, 0.4, 2, 5000),  # no change in my loss
        (0.4, 0.4 + 0.05 * LN2, 2, 4500),  # adds 5 % of a know-nothing model's loss: the default threshold
        (0.4, 0.4 - 0.1 * LN2, 2, 6000),
        (0.4, 0.4 + 0.05 * math.log(10), 10, 4500),  # the unit is ln(classes)
        (0.1, 0.1 + LN2, 2, 0),  # from converged to know-nothing clamps to zero
        (LN2, 0.0, 2, 10_000),  # from know-nothing to perfect clamps to the top
        (0.0, 0.0, 2, 5000),
    ],
)
def test_loss_change_score_counts_basis_points_of_a_know_nothing_loss(
    before: float, after: float, n_classes: int, want: int
) -> None:
    assert loss_change_score(before, after, n_classes=n_classes) == pytest.approx(want, abs=1)


@pytest.mark.parametrize(("before", "after", "n_classes"), [(math.nan, 0.1, 2), (0.1, math.inf, 2), (-0.1, 0.1, 2)])
def test_loss_change_score_refuses_losses_that_are_not_losses(before: float, after: float, n_classes: int) -> None:
    with pytest.raises(BadInput, match="finite"):
        loss_change_score(before, after, n_classes=n_classes)
    with pytest.raises(BadInput, match="2 classes"):
        loss_change_score(0.1, 0.1, n_classes=1)


def test_mean_cross_entropy_reads_the_true_labels_probability_with_a_floor() -> None:
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [1.0, 0.0]])
    want = -(math.log(0.9) + math.log(0.8) + math.log(LOSS_FLOOR)) / 3
    assert mean_cross_entropy(probabilities, [0, 1, 1]) == pytest.approx(want)
    assert mean_cross_entropy(np.zeros((0, 2)), []) == 0.0
    with pytest.raises(BadInput, match="labels outside"):
        mean_cross_entropy(probabilities, [0, 1, 2])


def _converged() -> tuple[object, dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A logistic regression trained to convergence on well-separated classes (train, validation)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    X = rng.normal(size=(300, N_FEATURES)) + 2.0 * (2 * y[:, None] - 1) * np.array([1.0, 0.5, 0.0, 0.0, 0.0])
    model = build_model({"kind": "sklearn-sgd", "n_features": N_FEATURES, "n_classes": 2, "seed": 0})
    model.fit(X[:200], y[:200], epochs=5, seed=0)
    return model, model.get_params(), X[:200], y[:200], X[200:], y[200:]


def _update(global_params: dict[str, np.ndarray], local: dict[str, np.ndarray], sign: float):  # type: ignore[no-untyped-def]
    """``sign`` times the step from ``global_params`` to ``local``, through the task's update pipeline."""
    moved = {k: (global_params[k] + sign * (local[k] - global_params[k])).astype(np.float32) for k in local}
    blob = UpdatePipeline.default(max_norm=5.0, frac_bits=24).run(moved, global_params, num_examples=60)
    return validate_update(blob, {k: v.shape for k, v in global_params.items()}, max_bytes=1 << 20)


def test_a_reversed_step_at_convergence_costs_loss_though_no_accuracy() -> None:
    model, global_params, X, y, X_val, y_val = _converged()
    model.fit(X[:60], y[:60], epochs=1, seed=1)  # one more honest step on part of the data
    local = model.get_params()
    model.set_params(global_params)
    honest, reversed_long = _update(global_params, local, 1.0), _update(global_params, local, -20.0)
    threshold = DEFAULT_THRESHOLDS[Scoring.RELATIVE_LOSS]
    # Accuracy saturates: neither step moves a validation prediction, so both look harmless.
    assert score_relative(model, global_params, honest, X_val, y_val) == 5000
    assert score_relative(model, global_params, reversed_long, X_val, y_val) == 5000
    # The loss does not: the honest step lowers it, the reversed one raises it past the threshold.
    assert score_relative_loss(model, global_params, honest, X_val, y_val) > 5000
    assert score_relative_loss(model, global_params, reversed_long, X_val, y_val) < threshold
    assert SCORING_RULES["relative-loss"] is score_relative_loss
    # Scoring leaves the validator's model as it was.
    for name, value in model.get_params().items():
        np.testing.assert_array_equal(value, global_params[name])


def test_weight_divisor_scores_the_update_at_its_share_of_the_aggregate() -> None:
    model, global_params, X, y, X_val, y_val = _converged()
    model.fit(X[:60], y[:60], epochs=1, seed=1)
    local = model.get_params()
    model.set_params(global_params)
    harmful = _update(global_params, local, -20.0)
    full = score_relative_loss(model, global_params, harmful, X_val, y_val)
    tenth = score_relative_loss(model, global_params, harmful, X_val, y_val, weight_divisor=10)
    assert full < tenth < 5000


def test_a_linear_model_trained_on_hinge_loss_reads_the_softmax_of_its_decision_function() -> None:
    hinge = build_model({"kind": "sklearn-sgd", "n_features": N_FEATURES, "n_classes": 2, "loss": "hinge"})
    X, y = np.zeros((4, N_FEATURES)), np.array([0, 1, 0, 1])
    hinge.fit(np.eye(N_FEATURES)[:2].repeat(2, axis=0), y, epochs=1, seed=0)
    assert validation_loss(hinge, hinge.get_params(), X, y) == pytest.approx(
        mean_cross_entropy(predict_proba(hinge, X), y)
    )
