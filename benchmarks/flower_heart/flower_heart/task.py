"""The model's parameters, each hospital's rows, and scoring: numpy only (training is in ``train.py``).

The model is fedledger's ``sklearn-logreg`` (``src/fedledger/learning/adapters/_sklearn.py``) for a binary
label: ``coef`` (1, n_features) and ``intercept`` (1,), float32, starting at zero.
"""

from __future__ import annotations

import numpy as np


def initial_params(n_features: int) -> list[np.ndarray]:
    """Zeros, as fedledger's adapter starts."""
    return [np.zeros((1, n_features), dtype=np.float32), np.zeros(1, dtype=np.float32)]


def load(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A hospital's prepared rows (written by benchmarks/consortium.py): training and validation split."""
    with np.load(path) as data:
        return data["X_train"], data["y_train"], data["X_val"], data["y_val"]


def evaluate(params: list[np.ndarray], X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and log loss of the model ``params`` on ``X``, ``y``."""
    z = X.astype(np.float64) @ params[0][0].astype(np.float64) + float(params[1][0])
    p = 1.0 / (1.0 + np.exp(-z))
    eps = 1e-12
    loss = float(-np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)))
    return float(np.mean((p >= 0.5) == (y == 1))), loss
