"""scikit-learn adapters: linear models (LogisticRegression, SGDClassifier) and MLPClassifier.

Export format. scikit-learn's own persistence is pickle, which fedledger never
uses, so :meth:`export` writes ``fedledger-sklearn-json/1``: the estimator class,
its constructor parameters and fitted arrays as JSON; :func:`load_sklearn_export`
rebuilds a fitted estimator from it (only the classes below are accepted).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import sklearn
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import LabelBinarizer

from fedledger.learning.adapters._base import FeatureArray, LabelArray, accuracy, check_xy
from fedledger.learning.params import Params, ParamSpec, as_params, check_params, shape_spec

__all__ = ["EXPORT_FORMAT", "SklearnLinearAdapter", "SklearnMLPAdapter", "load_sklearn_export"]

EXPORT_FORMAT = "fedledger-sklearn-json/1"
_ESTIMATORS: dict[str, type[Any]] = {
    "LogisticRegression": LogisticRegression,
    "SGDClassifier": SGDClassifier,
    "MLPClassifier": MLPClassifier,
}


def _with_all_classes(
    X: FeatureArray, y: LabelArray, n_classes: int
) -> tuple[FeatureArray, LabelArray, npt.NDArray[Any]]:
    """Append one zero-weight row per class absent from ``y``.

    Non-IID members often lack a class; scikit-learn sizes ``coef_`` from the
    labels it sees, so without this the warm start would not fit. Zero weight
    keeps these rows out of the loss (SGD still applies its L2 shrink once per row).
    """
    missing = np.setdiff1d(np.arange(n_classes), y)
    weights = np.ones(len(y), dtype=np.float64)
    if missing.size == 0:
        return X, y, weights
    Xa = np.vstack([X, np.zeros((missing.size, X.shape[1]))])
    return Xa, np.concatenate([y, missing]), np.concatenate([weights, np.zeros(missing.size)])


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    return value


def _write_export(path: Path, est: Any, arrays: Mapping[str, Any]) -> Path:
    init = {k: _jsonable(v) for k, v in est.get_params().items() if k != "penalty" or v != "deprecated"}
    doc = {
        "format": EXPORT_FORMAT,
        "class": type(est).__name__,
        "sklearn_version": sklearn.__version__,
        "init_params": init,
        "fitted": {k: _jsonable(v) for k, v in arrays.items()},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, sort_keys=True, indent=1))
    return path


def load_sklearn_export(path: str | Path) -> Any:
    """A fitted scikit-learn estimator from a ``fedledger-sklearn-json/1`` file."""
    doc = json.loads(Path(path).read_text())
    if doc.get("format") != EXPORT_FORMAT:
        raise ValueError(f"{path}: not a {EXPORT_FORMAT} export")
    cls = _ESTIMATORS.get(doc["class"])
    if cls is None:
        raise ValueError(f"{path}: unsupported estimator class {doc['class']!r}")
    init = dict(doc["init_params"])
    if cls is MLPClassifier:
        init["hidden_layer_sizes"] = tuple(init["hidden_layer_sizes"])
    est = cls(**init)
    fitted = doc["fitted"]
    classes = np.asarray(fitted["classes_"], dtype=np.int64)
    if cls is MLPClassifier:
        coefs = [np.asarray(c, dtype=np.float64) for c in fitted["coefs_"]]
        intercepts = [np.asarray(b, dtype=np.float64) for b in fitted["intercepts_"]]
        _mlp_restore(est, coefs, intercepts, classes)
    else:
        est.coef_ = np.asarray(fitted["coef_"], dtype=np.float64)
        est.intercept_ = np.asarray(fitted["intercept_"], dtype=np.float64)
        est.classes_ = classes
        est.n_features_in_ = est.coef_.shape[1]
    return est


class _SklearnPrediction:
    """Prediction and accuracy through the adapter's native estimator (shared by the sklearn adapters)."""

    n_features: int
    n_classes: int

    def to_native(self) -> Any:
        raise NotImplementedError

    def predict(self, X: npt.ArrayLike) -> LabelArray:
        Xa, _ = check_xy(X, None, n_features=self.n_features, n_classes=self.n_classes)
        return np.asarray(self.to_native().predict(Xa), dtype=np.int64)

    def evaluate(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        return accuracy(self.predict(Xa), ya)


class SklearnLinearAdapter(_SklearnPrediction):
    """Linear classifier: params ``coef`` (k, n_features) and ``intercept`` (k,).

    k = 1 for binary tasks, else n_classes.

    ``estimator="logreg"``: LogisticRegression (lbfgs, full batch, no randomness);
    one epoch is ``iters_per_epoch`` lbfgs iterations warm-started from the
    current params. ``estimator="sgd"``: SGDClassifier, one epoch is one shuffled
    pass, seeded. Labels are ``0..n_classes-1``; params start at zero.
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        estimator: str = "logreg",
        seed: int = 0,
        C: float = 1.0,
        iters_per_epoch: int = 10,
        loss: str = "log_loss",
        alpha: float = 1e-4,
        learning_rate: str = "constant",
        eta0: float = 0.01,
    ) -> None:
        if estimator not in ("logreg", "sgd"):
            raise ValueError(f"estimator must be 'logreg' or 'sgd', got {estimator!r}")
        if n_features < 1 or n_classes < 2:
            raise ValueError("need n_features >= 1 and n_classes >= 2")
        self.n_features, self.n_classes, self.estimator, self.seed = n_features, n_classes, estimator, seed
        self.C, self.iters_per_epoch = C, iters_per_epoch
        self.loss, self.alpha, self.learning_rate, self.eta0 = loss, alpha, learning_rate, eta0
        k = 1 if n_classes == 2 else n_classes
        self._coef = np.zeros((k, n_features), dtype=np.float32)
        self._intercept = np.zeros(k, dtype=np.float32)

    @property
    def spec(self) -> dict[str, Any]:
        common = {"n_features": self.n_features, "n_classes": self.n_classes, "seed": self.seed}
        if self.estimator == "logreg":
            return {"kind": "sklearn-logreg", **common, "C": self.C, "iters_per_epoch": self.iters_per_epoch}
        return {
            "kind": "sklearn-sgd",
            **common,
            "loss": self.loss,
            "alpha": self.alpha,
            "learning_rate": self.learning_rate,
            "eta0": self.eta0,
        }

    def param_spec(self) -> ParamSpec:
        return shape_spec(self.get_params())

    def get_params(self) -> Params:
        return {"coef": self._coef.copy(), "intercept": self._intercept.copy()}

    def set_params(self, params: Mapping[str, npt.NDArray[Any]]) -> None:
        check_params(params, self.param_spec(), what="params")
        p = as_params(params)
        self._coef, self._intercept = p["coef"], p["intercept"]

    def to_native(self) -> LogisticRegression | SGDClassifier:
        """A fitted scikit-learn estimator holding the current params."""
        est = self._new_estimator(epochs=1, seed=self.seed)
        est.coef_ = self._coef.astype(np.float64)
        est.intercept_ = self._intercept.astype(np.float64)
        est.classes_ = np.arange(self.n_classes)
        est.n_features_in_ = self.n_features
        return est

    def _new_estimator(self, *, epochs: int, seed: int) -> LogisticRegression | SGDClassifier:
        if self.estimator == "logreg":
            return LogisticRegression(
                C=self.C, max_iter=epochs * self.iters_per_epoch, warm_start=True, random_state=seed
            )
        return SGDClassifier(
            loss=self.loss,
            alpha=self.alpha,
            learning_rate=self.learning_rate,
            eta0=self.eta0,
            max_iter=epochs,
            tol=None,
            shuffle=True,
            random_state=seed,
        )

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int = 1, seed: int | None = None) -> None:
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        if epochs < 1 or len(ya) == 0:
            return
        Xf, yf, w = _with_all_classes(Xa, ya, self.n_classes)
        est = self._new_estimator(epochs=epochs, seed=self.seed if seed is None else seed)
        coef, intercept = self._coef.astype(np.float64), self._intercept.astype(np.float64)
        with warnings.catch_warnings():
            # Bounded local steps are the point of federated training, not a convergence failure.
            warnings.simplefilter("ignore", ConvergenceWarning)
            if isinstance(est, LogisticRegression):
                est.coef_, est.intercept_ = coef, intercept  # read by warm_start
                est.fit(Xf, yf, sample_weight=w)
            else:
                est.fit(Xf, yf, coef_init=coef, intercept_init=intercept, sample_weight=w)
        self._coef = np.asarray(est.coef_, dtype=np.float32).reshape(self._coef.shape)
        self._intercept = np.asarray(est.intercept_, dtype=np.float32).reshape(self._intercept.shape)

    def export(self, path: str | Path) -> Path:
        est = self.to_native()
        arrays = {"coef_": est.coef_, "intercept_": est.intercept_, "classes_": est.classes_}
        return _write_export(Path(path), est, arrays)

    # -- what DP-SGD needs (fedledger.privacy.linear_dp_sgd) --------------------------------------------------

    @property
    def supports_dp_sgd(self) -> bool:
        """Whether :meth:`per_example_gradients` covers this model's training loss: SGDClassifier's log loss.
        LogisticRegression trains with lbfgs, which has no per-example step to clip."""
        return self.estimator == "sgd" and self.loss == "log_loss"

    def per_example_gradients(
        self, X: npt.ArrayLike, y: npt.ArrayLike, *, params: Mapping[str, npt.NDArray[Any]] | None = None
    ) -> dict[str, npt.NDArray[np.float64]]:
        """Each example's gradient of the log loss at ``params`` (default: the current ones), in float64:
        ``coef`` of shape (n, k, n_features) and ``intercept`` of shape (n, k).

        The loss is SGDClassifier's: binary log loss for two classes (k = 1), one-vs-rest log losses for more
        (k = n_classes), so d loss / d z_c = sigmoid(z_c) - [y == c] for each output c. The L2 penalty is not
        in it: it does not depend on any example (:meth:`penalty_gradient`).
        """
        if not self.supports_dp_sgd:
            raise ValueError(
                f"per-example gradients cover the log loss of sklearn-sgd, not {self.spec['kind']} with loss "
                f"{self.loss!r}"
            )
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        coef, intercept = self._float64(params)
        logits = Xa @ coef.T + intercept  # (n, k)
        targets = (ya[:, None] == (np.arange(coef.shape[0]) if coef.shape[0] > 1 else 1)).astype(np.float64)
        residual = _sigmoid(logits) - targets  # (n, k)
        return {"coef": residual[:, :, None] * Xa[:, None, :], "intercept": residual}

    def penalty_gradient(
        self, *, params: Mapping[str, npt.NDArray[Any]] | None = None
    ) -> dict[str, npt.NDArray[np.float64]]:
        """The gradient of SGDClassifier's L2 penalty ``alpha / 2 * ||coef||^2`` (the intercept is not penalized)."""
        coef, intercept = self._float64(params)
        return {"coef": self.alpha * coef, "intercept": np.zeros_like(intercept)}

    def _float64(self, params: Mapping[str, npt.NDArray[Any]] | None) -> tuple[FloatMatrix, FloatMatrix]:
        if params is None:
            return self._coef.astype(np.float64), self._intercept.astype(np.float64)
        check_params(params, self.param_spec(), what="params")
        return np.asarray(params["coef"], dtype=np.float64), np.asarray(params["intercept"], dtype=np.float64)


FloatMatrix = npt.NDArray[np.float64]


def _sigmoid(z: FloatMatrix) -> FloatMatrix:
    """The logistic function, without overflow for large negative inputs."""
    out: FloatMatrix = np.exp(-np.logaddexp(0.0, -z))
    return out


def _mlp_restore(
    est: MLPClassifier,
    coefs: Sequence[npt.NDArray[Any]],
    intercepts: Sequence[npt.NDArray[Any]],
    classes: npt.NDArray[Any],
) -> None:
    """Give a fresh MLPClassifier the fitted state for ``coefs``/``intercepts``.

    One ``partial_fit`` on a single zero row builds scikit-learn's internal state
    (label binarizer, layer counts, output activation); the weights are then
    overwritten, and the optimizer dropped so the next local training starts
    with fresh optimizer state, as a new round should.
    """
    n_features = coefs[0].shape[0]
    with warnings.catch_warnings():
        # A one-row batch is smaller than batch_size; expected, and its step is discarded below.
        warnings.simplefilter("ignore")
        est.partial_fit(np.zeros((1, n_features)), classes[:1], classes=classes)
    est.coefs_ = [np.array(c, dtype=np.float64) for c in coefs]
    est.intercepts_ = [np.array(b, dtype=np.float64) for b in intercepts]
    if hasattr(est, "_optimizer"):
        del est._optimizer
    est.n_iter_, est.t_ = 0, 0
    if not hasattr(est, "_label_binarizer"):
        est._label_binarizer = LabelBinarizer().fit(classes)


class SklearnMLPAdapter(_SklearnPrediction):
    """MLPClassifier: params ``coefs.i`` (n_in, n_out) and ``intercepts.i`` (n_out,) per layer i.

    One epoch is one ``partial_fit`` pass (minibatches of ``batch_size``),
    continuing from the current params with a fresh optimizer; initial weights
    are Glorot-uniform from ``seed`` (scikit-learn's own rule).
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        *,
        hidden: Sequence[int] = (32,),
        activation: str = "relu",
        solver: str = "adam",
        learning_rate_init: float = 1e-3,
        batch_size: int = 32,
        alpha: float = 1e-4,
        seed: int = 0,
    ) -> None:
        if n_features < 1 or n_classes < 2:
            raise ValueError("need n_features >= 1 and n_classes >= 2")
        if solver not in ("adam", "sgd"):
            raise ValueError("solver must be 'adam' or 'sgd' (lbfgs cannot train incrementally)")
        self.n_features, self.n_classes, self.hidden = n_features, n_classes, tuple(int(h) for h in hidden)
        self.activation, self.solver, self.learning_rate_init = activation, solver, learning_rate_init
        self.batch_size, self.alpha, self.seed = batch_size, alpha, seed
        n_out = 1 if n_classes == 2 else n_classes
        sizes = [n_features, *self.hidden, n_out]
        rng = np.random.default_rng(seed)
        factor = 2.0 if activation == "logistic" else 6.0
        self._params: Params = {}
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
            bound = float(np.sqrt(factor / (fan_in + fan_out)))
            self._params[f"coefs.{i}"] = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
            self._params[f"intercepts.{i}"] = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        self._params = as_params(self._params)

    @property
    def n_layers(self) -> int:
        return len(self.hidden) + 1

    @property
    def spec(self) -> dict[str, Any]:
        return {
            "kind": "sklearn-mlp",
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "hidden": list(self.hidden),
            "activation": self.activation,
            "solver": self.solver,
            "learning_rate_init": self.learning_rate_init,
            "batch_size": self.batch_size,
            "alpha": self.alpha,
            "seed": self.seed,
        }

    def param_spec(self) -> ParamSpec:
        return shape_spec(self._params)

    def get_params(self) -> Params:
        return {k: v.copy() for k, v in self._params.items()}

    def set_params(self, params: Mapping[str, npt.NDArray[Any]]) -> None:
        check_params(params, self.param_spec(), what="params")
        self._params = as_params(params)

    def _new_estimator(self, seed: int) -> MLPClassifier:
        return MLPClassifier(
            hidden_layer_sizes=self.hidden,
            activation=self.activation,
            solver=self.solver,
            learning_rate_init=self.learning_rate_init,
            batch_size=self.batch_size,
            alpha=self.alpha,
            random_state=seed,
            shuffle=True,
        )

    def to_native(self, seed: int | None = None) -> MLPClassifier:
        """A fitted MLPClassifier holding the current params."""
        est = self._new_estimator(self.seed if seed is None else seed)
        coefs = [self._params[f"coefs.{i}"] for i in range(self.n_layers)]
        intercepts = [self._params[f"intercepts.{i}"] for i in range(self.n_layers)]
        _mlp_restore(est, coefs, intercepts, np.arange(self.n_classes))
        return est

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int = 1, seed: int | None = None) -> None:
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        if epochs < 1 or len(ya) == 0:
            return
        base = self.seed if seed is None else seed
        est = self.to_native(base)
        est.set_params(batch_size=min(self.batch_size, len(ya)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for epoch in range(epochs):
                est.set_params(random_state=base + epoch)  # a new, reproducible shuffle per epoch
                est.partial_fit(Xa, ya)
        params = {f"coefs.{i}": c for i, c in enumerate(est.coefs_)}
        params.update({f"intercepts.{i}": b for i, b in enumerate(est.intercepts_)})
        self._params = as_params(params)

    def export(self, path: str | Path) -> Path:
        est = self.to_native()
        arrays = {"coefs_": est.coefs_, "intercepts_": est.intercepts_, "classes_": est.classes_}
        return _write_export(Path(path), est, arrays)
