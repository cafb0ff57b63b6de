"""Evaluation metrics of a classifier, and pooling them across members without sharing data.

:func:`evaluate_model` scores a model on one member's holdout data with scikit-learn's metric
functions. Binary tasks: accuracy, ROC-AUC, PR-AUC (average precision), F1 of the positive class
(class 1), log loss and n. Multi-class tasks: accuracy, macro-F1, log loss, n and the one-vs-rest
macro ROC-AUC. Predictions are the most probable class (binary: positive when P(class 1) > 0.5).
An AUC is ``None`` where it is undefined (a holdout set with one class only).

Next to the metrics, a :class:`Metrics` carries what pooling needs, all of it aggregate counts:

* the confusion matrix (rows: true class, columns: predicted class) and the summed log loss, from
  which the pooled accuracy, F1 (macro-F1) and log loss are **exact**: they equal scikit-learn's
  metrics on the members' data concatenated, up to float rounding of the summed log loss;
* a histogram of the predicted scores per true class (:class:`ScoreHistogram`: for binary tasks
  the predicted P(class 1), for multi-class tasks each P(class k), in :data:`DEFAULT_BINS` equal
  bins on [0, 1]), from which the pooled ROC-AUC and PR-AUC are computed **to bin resolution**:
  they are exactly scikit-learn's ``roc_auc_score`` / ``average_precision_score`` on the
  concatenated data with every score rounded down to its bin's lower edge. Only the order of two
  scores inside one bin is lost (such pairs count as ties, i.e. one half for ROC-AUC), so the
  pooled ROC-AUC differs from the exact one by at most half the share of (positive, negative)
  pairs that share a bin; with 200 bins that is well below 0.01 for any model whose scores are
  not crowded into a few bins.

:func:`pool_metrics` combines members' metrics. What a member discloses is counts: its holdout
size, how its predictions fall per true class and score bin, and its summed loss; never a row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput
from fedledger.learning.adapters._base import ModelAdapter, check_xy
from fedledger.learning.adapters._build import build_model

__all__ = [
    "DEFAULT_BINS",
    "Metrics",
    "ScoreHistogram",
    "evaluate_model",
    "pool_metrics",
    "predict_proba",
]

DEFAULT_BINS = 200


@dataclass(frozen=True)
class ScoreHistogram:
    """Counts of predicted scores in ``bins`` equal bins on [0, 1], per score column and true class.

    Column ``j`` is the predicted probability of class ``classes[j]`` (binary tasks: one column, class 1);
    ``negative[j][b]`` counts the rows whose true class is not ``classes[j]`` and whose score falls in bin
    ``b`` (``[b/bins, (b+1)/bins)``, the last bin closed), ``positive[j][b]`` those whose true class is.
    """

    bins: int
    classes: tuple[int, ...]
    negative: tuple[tuple[int, ...], ...]
    positive: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        if isinstance(self.bins, bool) or not isinstance(self.bins, int) or self.bins < 1:
            raise BadInput(f"score histogram: bins must be a positive integer, got {self.bins!r}")
        if not (len(self.classes) == len(self.negative) == len(self.positive)):
            raise BadInput("score histogram: one negative and one positive row per class column")
        for row in (*self.negative, *self.positive):
            if len(row) != self.bins or any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in row):
                raise BadInput(f"score histogram: every row must hold {self.bins} non-negative integer counts")

    @classmethod
    def of(
        cls, scores: npt.NDArray[np.float64], y: npt.NDArray[Any], classes: Sequence[int], *, bins: int = DEFAULT_BINS
    ) -> ScoreHistogram:
        """The histogram of ``scores`` (n, len(classes)): column j is P(class ``classes[j]``)."""
        idx = np.minimum(np.floor(np.clip(scores, 0.0, 1.0) * bins).astype(np.int64), bins - 1)
        negative, positive = [], []
        for j, c in enumerate(classes):
            is_pos = y == c
            positive.append(tuple(int(v) for v in np.bincount(idx[is_pos, j], minlength=bins)))
            negative.append(tuple(int(v) for v in np.bincount(idx[~is_pos, j], minlength=bins)))
        return cls(bins, tuple(int(c) for c in classes), tuple(negative), tuple(positive))

    def __add__(self, other: ScoreHistogram) -> ScoreHistogram:
        if (self.bins, self.classes) != (other.bins, other.classes):
            raise BadInput(
                f"cannot pool score histograms of {self.bins} bins over classes {self.classes} with "
                f"{other.bins} bins over classes {other.classes}"
            )

        def add(a: tuple[tuple[int, ...], ...], b: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
            return tuple(tuple(x + y for x, y in zip(ra, rb, strict=True)) for ra, rb in zip(a, b, strict=True))

        return ScoreHistogram(
            self.bins, self.classes, add(self.negative, other.negative), add(self.positive, other.positive)
        )

    def roc_auc(self, column: int = 0) -> float | None:
        """ROC-AUC of one score column, scores in one bin counted as ties; None with one class only."""
        neg = np.asarray(self.negative[column], dtype=np.float64)
        pos = np.asarray(self.positive[column], dtype=np.float64)
        n_neg, n_pos = neg.sum(), pos.sum()
        if n_neg == 0 or n_pos == 0:
            return None
        below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])  # negatives in lower bins
        return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))

    def average_precision(self, column: int = 0) -> float | None:
        """Average precision (PR-AUC) of one score column with each bin as one threshold; None without positives."""
        neg = np.asarray(self.negative[column], dtype=np.float64)[::-1]
        pos = np.asarray(self.positive[column], dtype=np.float64)[::-1]
        n_pos = pos.sum()
        if n_pos == 0:
            return None
        tp, fp = np.cumsum(pos), np.cumsum(neg)
        used = (pos + neg) > 0
        precision = tp[used] / (tp[used] + fp[used])
        recall = tp[used] / n_pos
        steps = np.diff(np.concatenate([[0.0], recall]))
        return float(np.sum(steps * precision))

    def to_json(self) -> dict[str, Any]:
        return {
            "bins": self.bins,
            "range": [0.0, 1.0],
            "classes": list(self.classes),
            "negative": [list(r) for r in self.negative],
            "positive": [list(r) for r in self.positive],
        }

    @classmethod
    def from_json(cls, data: Any) -> ScoreHistogram:
        if not isinstance(data, dict):
            raise BadInput("score histogram must be a JSON object")
        try:
            if list(data["range"]) != [0.0, 1.0]:
                raise BadInput(f"score histogram range must be [0, 1], got {data['range']!r}")
            return cls(
                bins=data["bins"],
                classes=tuple(data["classes"]),
                negative=tuple(tuple(r) for r in data["negative"]),
                positive=tuple(tuple(r) for r in data["positive"]),
            )
        except (KeyError, TypeError) as exc:
            raise BadInput(f"malformed score histogram: {exc!r}") from exc


@dataclass(frozen=True)
class Metrics:
    """A model's metrics on one member's holdout data, or pooled over members (``members`` > 1).

    ``f1`` is the F1 of class 1 in binary tasks and the macro-F1 otherwise; ``pr_auc`` is ``None`` in
    multi-class tasks. ``confusion``, ``log_loss_sum`` and ``histogram`` are what pooling needs.
    ``roc_auc``/``pr_auc`` of pooled metrics come from the histograms (to bin resolution).
    """

    n: int
    n_classes: int
    accuracy: float
    f1: float
    log_loss: float
    roc_auc: float | None
    pr_auc: float | None
    confusion: tuple[tuple[int, ...], ...]
    log_loss_sum: float
    histogram: ScoreHistogram = field(repr=False)
    members: int = 1

    @property
    def binary(self) -> bool:
        return self.n_classes == 2

    def summary(self) -> dict[str, Any]:
        """The headline metrics (what tables show)."""
        return {
            "n": self.n,
            "accuracy": self.accuracy,
            "f1": self.f1,
            "log_loss": self.log_loss,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
        }

    def to_json(self) -> dict[str, Any]:
        """Every field but the histogram (:meth:`ScoreHistogram.to_json`), with stable keys."""
        return {
            **self.summary(),
            "n_classes": self.n_classes,
            "f1_average": "binary" if self.binary else "macro",
            "confusion": [list(r) for r in self.confusion],
            "log_loss_sum": self.log_loss_sum,
            "members": self.members,
        }

    @classmethod
    def from_json(cls, data: Any, histogram: Any) -> Metrics:
        """Metrics read back from :meth:`to_json` and the histogram's JSON; checked for consistency."""
        if not isinstance(data, dict):
            raise BadInput("metrics must be a JSON object")
        try:
            metrics = cls(
                n=_int(data["n"], "n"),
                n_classes=_int(data["n_classes"], "n_classes"),
                accuracy=_float(data["accuracy"], "accuracy"),
                f1=_float(data["f1"], "f1"),
                log_loss=_float(data["log_loss"], "log_loss"),
                roc_auc=None if data["roc_auc"] is None else _float(data["roc_auc"], "roc_auc"),
                pr_auc=None if data["pr_auc"] is None else _float(data["pr_auc"], "pr_auc"),
                confusion=tuple(tuple(_int(c, "confusion count") for c in row) for row in data["confusion"]),
                log_loss_sum=_float(data["log_loss_sum"], "log_loss_sum"),
                histogram=ScoreHistogram.from_json(histogram),
                members=_int(data.get("members", 1), "members"),
            )
        except (KeyError, TypeError) as exc:
            raise BadInput(f"malformed metrics: {exc!r}") from exc
        metrics.check()
        return metrics

    def check(self) -> None:
        """Counts that agree with each other (what a reader checks in a member's report)."""
        k = self.n_classes
        if k < 2 or self.n < 1:
            raise BadInput(f"metrics: need n >= 1 and n_classes >= 2, got n={self.n}, n_classes={k}")
        if len(self.confusion) != k or any(len(row) != k or min(row) < 0 for row in self.confusion):
            raise BadInput(f"metrics: confusion matrix must be {k} x {k} non-negative counts")
        if sum(map(sum, self.confusion)) != self.n:
            raise BadInput("metrics: confusion matrix does not add up to n")
        hist = self.histogram
        if hist.classes != _score_classes(k):
            raise BadInput(f"metrics: histogram columns {hist.classes} do not fit {k} classes")
        for j, c in enumerate(hist.classes):
            if (
                sum(hist.positive[j]) != sum(self.confusion[c])
                or sum(hist.negative[j]) + sum(hist.positive[j]) != self.n
            ):
                raise BadInput("metrics: histogram counts do not match the confusion matrix")
        if not (math.isfinite(self.log_loss_sum) and self.log_loss_sum >= 0):
            raise BadInput("metrics: log_loss_sum must be finite and non-negative")
        if not math.isclose(self.accuracy, _accuracy(self.confusion), rel_tol=1e-12, abs_tol=1e-12):
            raise BadInput("metrics: accuracy does not match the confusion matrix")
        if not math.isclose(self.log_loss, self.log_loss_sum / self.n, rel_tol=1e-9, abs_tol=1e-12):
            raise BadInput("metrics: log_loss does not match log_loss_sum / n")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"metrics: {what} must be an integer, got {value!r}")
    return value


def _float(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"metrics: {what} must be a finite number, got {value!r}")
    return float(value)


def _score_classes(n_classes: int) -> tuple[int, ...]:
    return (1,) if n_classes == 2 else tuple(range(n_classes))


def _softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return np.asarray(e / e.sum(axis=1, keepdims=True))


def predict_proba(adapter: ModelAdapter, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Class probabilities (n, n_classes) in float64 from any adapter.

    scikit-learn adapters use their estimator's ``predict_proba`` (an SGD classifier trained with a
    non-probabilistic loss: the logistic / softmax of its decision function); torch adapters the
    softmax of the module's logits.
    """
    spec = adapter.spec
    n_features, n_classes = int(spec["n_features"]), int(spec["n_classes"])
    Xa, _ = check_xy(X, None, n_features=n_features, n_classes=n_classes)
    to_native = getattr(adapter, "to_native", None)
    module = getattr(adapter, "module", None)
    if to_native is not None:
        est = to_native()
        if hasattr(est, "predict_proba"):
            proba = np.asarray(est.predict_proba(Xa), dtype=np.float64)
        else:
            d = np.asarray(est.decision_function(Xa), dtype=np.float64)
            proba = _softmax(np.column_stack([-d / 2, d / 2]) if d.ndim == 1 else d)
    elif module is not None:
        import torch

        module.eval()
        with torch.no_grad():
            logits = module(torch.from_numpy(Xa.astype(np.float32)))
        proba = _softmax(np.asarray(logits.detach().cpu().numpy(), dtype=np.float64))
    else:
        raise BadInput(f"{type(adapter).__name__} gives no class probabilities")
    if proba.shape != (len(Xa), n_classes):
        raise BadInput(f"model gave probabilities of shape {proba.shape}, expected ({len(Xa)}, {n_classes})")
    proba = np.clip(proba, 0.0, 1.0)
    return np.asarray(proba / proba.sum(axis=1, keepdims=True))


def evaluate_model(
    model: ModelAdapter | Mapping[str, npt.NDArray[Any]],
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    spec: Mapping[str, Any] | None = None,
    bins: int = DEFAULT_BINS,
) -> Metrics:
    """The metrics of ``model`` on (X, y): an adapter, or params with their model ``spec``.

    Computed with scikit-learn's metric functions (``accuracy_score``, ``f1_score``, ``log_loss``,
    ``roc_auc_score``, ``average_precision_score``, ``confusion_matrix``).
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    if isinstance(model, Mapping):
        if spec is None:
            raise BadInput("evaluate_model: params need the model spec (spec=...)")
        adapter = build_model(spec)
        adapter.set_params(model)
    else:
        adapter = model
    k = int(adapter.spec["n_classes"])
    Xa, ya = check_xy(X, y, n_features=int(adapter.spec["n_features"]), n_classes=k)
    if len(ya) == 0:
        raise BadInput("evaluate_model: no rows to evaluate on")
    proba = predict_proba(adapter, Xa)
    pred = np.argmax(proba, axis=1)  # ties: the lower class, so binary is positive when P(1) > 0.5
    labels = list(range(k))
    loss_sum = float(log_loss(ya, proba, labels=labels, normalize=False))
    present = set(np.unique(ya).tolist())
    roc: float | None = None
    pr: float | None = None
    if k == 2:
        f1 = float(f1_score(ya, pred, pos_label=1, average="binary", zero_division=0))
        if present == {0, 1}:
            roc = float(roc_auc_score(ya, proba[:, 1]))
            pr = float(average_precision_score(ya, proba[:, 1]))
    else:
        f1 = float(f1_score(ya, pred, labels=labels, average="macro", zero_division=0))
        if len(present) == k:
            roc = float(roc_auc_score(ya, proba, multi_class="ovr", average="macro", labels=labels))
    classes = _score_classes(k)
    metrics = Metrics(
        n=len(ya),
        n_classes=k,
        accuracy=float(accuracy_score(ya, pred)),
        f1=f1,
        log_loss=loss_sum / len(ya),
        roc_auc=roc,
        pr_auc=pr,
        confusion=tuple(tuple(int(c) for c in row) for row in confusion_matrix(ya, pred, labels=labels)),
        log_loss_sum=loss_sum,
        histogram=ScoreHistogram.of(proba[:, list(classes)], ya, classes, bins=bins),
    )
    return metrics


def _accuracy(confusion: Sequence[Sequence[int]]) -> float:
    total = sum(map(sum, confusion))
    return sum(confusion[i][i] for i in range(len(confusion))) / total if total else 0.0


def _f1_of(confusion: Sequence[Sequence[int]], c: int) -> float:
    tp = confusion[c][c]
    fn = sum(confusion[c]) - tp
    fp = sum(row[c] for row in confusion) - tp
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def pool_metrics(members: Sequence[Metrics]) -> Metrics:
    """The metrics of the members' data pooled, from their counts alone.

    Accuracy, F1 (macro-F1) and log loss are exact (those of the concatenated data); ROC-AUC and
    PR-AUC come from the summed score histograms, to bin resolution (see the module docstring).
    """
    if not members:
        raise BadInput("pool_metrics: no metrics to pool")
    k = members[0].n_classes
    if any(m.n_classes != k for m in members):
        raise BadInput("pool_metrics: members evaluated tasks with different numbers of classes")
    confusion = tuple(tuple(sum(m.confusion[i][j] for m in members) for j in range(k)) for i in range(k))
    n = sum(m.n for m in members)
    loss_sum = math.fsum(m.log_loss_sum for m in members)
    histogram = members[0].histogram
    for m in members[1:]:
        histogram = histogram + m.histogram
    if k == 2:
        f1 = _f1_of(confusion, 1)
        roc, pr = histogram.roc_auc(0), histogram.average_precision(0)
    else:
        f1 = sum(_f1_of(confusion, c) for c in range(k)) / k
        aucs = [histogram.roc_auc(j) for j in range(k)]
        roc = None if any(a is None for a in aucs) else sum(a for a in aucs if a is not None) / k
        pr = None
    return Metrics(
        n=n,
        n_classes=k,
        accuracy=_accuracy(confusion),
        f1=f1,
        log_loss=loss_sum / n,
        roc_auc=roc,
        pr_auc=pr,
        confusion=confusion,
        log_loss_sum=loss_sum,
        histogram=histogram,
        members=sum(m.members for m in members),
    )
