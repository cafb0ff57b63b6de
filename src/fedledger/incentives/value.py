"""The value of a coalition of a round's updates, as one validator measures it on its own validation split.

``v(S)`` is the validator's metric of the model ``global + mean(delta_i for i in S)``: every update at equal weight,
whatever example count it declares (see :mod:`fedledger.incentives.contribution` for why), and ``v(())`` is the
round's global model. The metric is the class-balanced negative log-loss by default (:class:`ValueMetric`):

* *class-balanced*: every class present in the validator's split weighs the same, so a validator's own class mix
  does not decide what the others' data is worth. Validators of a non-IID consortium hold skewed splits, and the
  contract takes the median of their shares: measured on the raw rows, the median follows the class mix of the
  majority of validators, and the members holding the minority class, which the model needs most, are paid least;
* *log-loss*: smooth, so a small real improvement is a small positive gain. Accuracy on a validation split of a few
  dozen rows moves in steps of one row, so most coalitions past the first few updates tie exactly, and ties carry
  no ranking. The unbalanced log-loss and accuracy remain for tasks that want them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit, softmax

from fedledger.exceptions import BadInput
from fedledger.learning import ModelAdapter, Params, SklearnLinearAdapter, flatten, shape_spec, unflatten
from fedledger.learning.metrics import predict_proba

__all__ = [
    "LOG_LOSS_FLOOR",
    "Coalition",
    "Metric",
    "ValueFunction",
    "ValueMetric",
    "class_probabilities",
    "coalition_value",
    "delta_matrix",
    "validation_metric",
]

LOG_LOSS_FLOOR = 1e-15
"""Probabilities are clipped here before the log, as scikit-learn's ``log_loss`` does: a confident mistake costs
about 34.5 nats, not infinity."""

Coalition = tuple[int, ...]
"""Indices of a round's updates, ascending."""

ValueFunction = Callable[[Coalition], float]
"""``v(coalition)``: the validator's metric of the model aggregated from that coalition's updates."""

Metric = Callable[[Params], float]
"""A validator's metric of a model's parameters on its own validation split (higher is better)."""


class ValueMetric(StrEnum):
    """What a validator measures a coalition's model by."""

    BALANCED_NEG_LOG_LOSS = "balanced-neg-log-loss"
    """Minus the log-loss with every class present in the split weighing the same (the default, see the module)."""
    NEG_LOG_LOSS = "neg-log-loss"
    """Minus the mean log-loss of the predicted class probabilities over the rows."""
    ACCURACY = "accuracy"
    """The share of validation rows predicted right."""


def validation_metric(
    adapter: ModelAdapter,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    kind: ValueMetric = ValueMetric.BALANCED_NEG_LOG_LOSS,
) -> Metric:
    """The metric ``kind`` of a model's params on ``(X_val, y_val)``, measured through ``adapter``.

    ``adapter`` is a scratch model: each measurement replaces its params.
    """
    X = np.asarray(X_val, dtype=np.float64)
    y = np.asarray(y_val, dtype=np.int64)
    if y.size == 0:
        raise BadInput("a contribution needs a non-empty validation split")
    rows = np.arange(y.size)
    weights = np.full(y.size, 1.0 / y.size)
    if kind is ValueMetric.BALANCED_NEG_LOG_LOSS:
        classes, counts = np.unique(y, return_counts=True)
        per_class = dict(zip(classes.tolist(), (1.0 / (len(classes) * counts)).tolist(), strict=True))
        weights = np.array([per_class[int(label)] for label in y])

    probabilities = class_probabilities(adapter)

    def neg_log_loss(params: Params) -> float:
        right = probabilities(params, X)[rows, y]  # the probability given to each row's true class
        return float(weights @ np.log(np.clip(right, LOG_LOSS_FLOOR, 1.0)))

    def accuracy(params: Params) -> float:
        adapter.set_params(params)
        return float(adapter.evaluate(X, y))

    return accuracy if kind is ValueMetric.ACCURACY else neg_log_loss


def class_probabilities(
    adapter: ModelAdapter,
) -> Callable[[Params, npt.NDArray[np.float64]], npt.NDArray[np.float64]]:
    """``(params, X) -> (n, n_classes)`` class probabilities of the model ``adapter`` holds with ``params``.

    Logistic regression takes a direct path, the formula scikit-learn's ``predict_proba`` applies (the logistic of
    the decision function, softmax past two classes), without building an estimator for each of the thousands of
    coalitions a round asks about; other models go through the adapter (which it then holds ``params``).
    """
    if isinstance(adapter, SklearnLinearAdapter) and adapter.estimator == "logreg":

        def linear(params: Params, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
            z = X @ np.asarray(params["coef"], np.float64).T + np.asarray(params["intercept"], np.float64)
            if z.shape[1] == 1:
                positive = expit(z[:, 0])
                return np.column_stack([1.0 - positive, positive])
            return np.asarray(softmax(z, axis=1))

        return linear

    def through_adapter(params: Params, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        adapter.set_params(params)
        return predict_proba(adapter, X)

    return through_adapter


def delta_matrix(deltas: Sequence[Mapping[str, npt.NDArray[Any]]]) -> npt.NDArray[np.float64]:
    """The round's update deltas as rows of one float64 matrix (tensors in sorted-name order)."""
    if not deltas:
        return np.zeros((0, 0), dtype=np.float64)
    return np.stack([flatten({k: np.asarray(v, np.float64) for k, v in d.items()}) for d in deltas])


def coalition_value(
    global_params: Mapping[str, npt.NDArray[Any]],
    deltas: Sequence[Mapping[str, npt.NDArray[Any]]],
    metric: Metric,
) -> ValueFunction:
    """``v(S)``: ``metric`` of ``global + mean(deltas[S])`` (``v(())``: of the global model), each coalition measured
    once (the methods ask for the same coalitions many times)."""
    spec = shape_spec(global_params)
    base = flatten({k: np.asarray(v, np.float64) for k, v in global_params.items()})
    rows = delta_matrix(deltas)
    if rows.size and rows.shape[1] != base.size:
        raise BadInput(f"updates have {rows.shape[1]} parameters, the global model {base.size}")
    cache: dict[Coalition, float] = {}

    def value(coalition: Coalition) -> float:
        key = tuple(sorted(coalition))
        if key not in cache:
            vector = base + rows[list(key)].mean(axis=0) if key else base
            cache[key] = metric(unflatten(vector.astype(np.float32), spec))
        return cache[key]

    return value
