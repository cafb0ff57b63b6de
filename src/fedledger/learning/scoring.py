"""Validator scoring: how good is one member's update, measured on the validator's own data."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from fedledger.learning.adapters._base import ModelAdapter
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.update import DecodedUpdate

__all__ = ["MAX_SCORE", "accuracy_bps", "evaluate", "score_update"]

MAX_SCORE = 10_000


def evaluate(
    adapter: ModelAdapter, params: Mapping[str, np.ndarray], X: npt.ArrayLike, y: npt.ArrayLike
) -> float:
    """Accuracy of ``params`` on (X, y); the adapter's own params are restored afterwards."""
    saved = adapter.get_params()
    try:
        adapter.set_params(params)
        return adapter.evaluate(X, y)
    finally:
        adapter.set_params(saved)


def accuracy_bps(pred: np.ndarray, y: np.ndarray) -> int:
    """Accuracy in basis points, ``floor(10000 * correct / n)`` in integers (0 when there is no data)."""
    n = int(np.asarray(y).size)
    if n == 0:
        return 0
    correct = int(np.count_nonzero(np.asarray(pred) == np.asarray(y)))
    return correct * MAX_SCORE // n


def score_update(
    adapter: ModelAdapter,
    global_params: Mapping[str, np.ndarray],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
) -> int:
    """Score in [0, 10000]: accuracy, in basis points, of ``global + update`` on the validation data.

    The update is applied alone and at full weight (as if it were the only one
    accepted), exactly as aggregation would apply it (:func:`apply_update`), so a
    harmful update shows up as lost accuracy. The adapter's params are restored.
    """
    if update.encoding == "fixed64":
        assert update.frac_bits is not None
        candidate = apply_update(global_params, update.tensors, frac_bits=update.frac_bits)
    else:
        candidate = {
            k: (np.asarray(global_params[k], np.float64) + update.tensors[k].astype(np.float64)).astype(
                np.float32
            )
            for k in sorted(global_params)
        }
    saved = adapter.get_params()
    try:
        adapter.set_params(candidate)
        return accuracy_bps(adapter.predict(X_val), np.asarray(y_val))
    finally:
        adapter.set_params(saved)
