"""Local training, as fedledger's ``sklearn-logreg`` adapter does it, in plain scikit-learn.

One local epoch is ``iters_per_epoch`` lbfgs iterations of a LogisticRegression (``C`` from the task) warm-started
from the global model. Flower starts a new ClientApp process for every message, so the ClientApp imports this
module (and scikit-learn) only for training messages, before it starts timing the training.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression


def fit(params: list[np.ndarray], X: np.ndarray, y: np.ndarray, *, C: float, iters: int, seed: int) -> list[np.ndarray]:
    """``iters`` lbfgs iterations from ``params`` (one zero-weight row per class missing locally, as fedledger)."""
    missing = np.setdiff1d(np.arange(2), y)
    weights = np.ones(len(y))
    if missing.size:
        X = np.vstack([X, np.zeros((missing.size, X.shape[1]))])
        y = np.concatenate([y, missing])
        weights = np.concatenate([weights, np.zeros(missing.size)])
    model = LogisticRegression(C=C, max_iter=iters, warm_start=True, random_state=seed)
    model.coef_ = params[0].astype(np.float64)
    model.intercept_ = params[1].astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y, sample_weight=weights)
    return [model.coef_.astype(np.float32), model.intercept_.astype(np.float32)]
