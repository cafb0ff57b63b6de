"""Validator scoring: how good is one member's update, measured on the validator's own data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt

from fedledger.learning.adapters._base import ModelAdapter
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.update import DecodedUpdate

__all__ = ["MAX_SCORE", "SCORING_RULES", "accuracy_bps", "evaluate", "score_update", "score_update_relative"]

MAX_SCORE = 10_000


@contextmanager
def _params_in(adapter: ModelAdapter, params: Mapping[str, np.ndarray]) -> Iterator[ModelAdapter]:
    """``adapter`` holding ``params`` for the block; its own params come back afterwards."""
    saved = adapter.get_params()
    try:
        adapter.set_params(params)
        yield adapter
    finally:
        adapter.set_params(saved)


def evaluate(adapter: ModelAdapter, params: Mapping[str, np.ndarray], X: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Accuracy of ``params`` on (X, y); the adapter's own params are restored afterwards."""
    with _params_in(adapter, params):
        return adapter.evaluate(X, y)


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
            k: (np.asarray(global_params[k], np.float64) + update.tensors[k].astype(np.float64)).astype(np.float32)
            for k in sorted(global_params)
        }
    with _params_in(adapter, candidate):
        return accuracy_bps(adapter.predict(X_val), np.asarray(y_val))


def score_update_relative(
    adapter: ModelAdapter,
    global_params: Mapping[str, np.ndarray],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
) -> int:
    """Score in [0, 10000]: ``min(after, 5000 + (after - before))`` in accuracy basis points,
    where ``before`` is the global model's accuracy on the validator's data and ``after``
    that of global + this update.

    The relative term is 5000 for "no change on my data" and 4500 for an update that costs
    5 accuracy points: unlike absolute accuracy it keeps catching a poisoned update once
    the global model is good. The absolute term catches one at the start, when the
    global model is still a constant guess and "no change" would look harmless.
    Integer arithmetic, so it is reproducible.
    """
    with _params_in(adapter, global_params):
        before = accuracy_bps(adapter.predict(X_val), np.asarray(y_val))
    after = score_update(adapter, global_params, update, X_val, y_val)
    return max(0, min(after, MAX_SCORE // 2 + after - before))


SCORING_RULES = {"accuracy": score_update, "relative-accuracy": score_update_relative}
"""Validator scoring rules a task config may name."""
