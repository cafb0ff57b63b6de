"""The one protocol every model adapter implements, and shared input checks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, overload, runtime_checkable

import numpy as np
import numpy.typing as npt

from fedledger.learning.params import Params, ParamSpec

__all__ = ["FeatureArray", "LabelArray", "ModelAdapter", "check_xy"]


@runtime_checkable
class ModelAdapter(Protocol):
    """A model seen as named float32 arrays that can be trained locally, evaluated and exported."""

    @property
    def spec(self) -> dict[str, Any]:
        """JSON-able spec, defaults filled in: ``build_model(adapter.spec)`` rebuilds an equal model."""
        ...

    def param_spec(self) -> ParamSpec: ...

    def get_params(self) -> Params:
        """A copy of the current parameters."""
        ...

    def set_params(self, params: Mapping[str, npt.NDArray[Any]]) -> None:
        """Replace all parameters (``ValueError`` if names or shapes differ)."""
        ...

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int = 1, seed: int | None = None) -> None:
        """Train locally, continuing from the current params; same inputs and seed give the same params."""
        ...

    def predict(self, X: npt.ArrayLike) -> LabelArray:
        """Class labels in ``range(n_classes)``."""
        ...

    def evaluate(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        """Accuracy on (X, y)."""
        ...

    def export(self, path: str | Path) -> Path:
        """Write the model in its framework's own (pickle-free) format; returns the path written."""
        ...


FeatureArray = npt.NDArray[np.float64]
"""Examples as rows of float64 features."""
LabelArray = npt.NDArray[np.int64]
"""Class labels in ``range(n_classes)``."""


@overload
def check_xy(
    X: npt.ArrayLike, y: npt.ArrayLike, *, n_features: int, n_classes: int
) -> tuple[FeatureArray, LabelArray]: ...


@overload
def check_xy(X: npt.ArrayLike, y: None, *, n_features: int, n_classes: int) -> tuple[FeatureArray, None]: ...


def check_xy(
    X: npt.ArrayLike, y: npt.ArrayLike | None, *, n_features: int, n_classes: int
) -> tuple[FeatureArray, LabelArray | None]:
    """X as float64 (n, n_features); y as int64 labels in ``range(n_classes)`` (None for None)."""
    Xa = np.asarray(X, dtype=np.float64)
    if Xa.ndim != 2 or Xa.shape[1] != n_features:
        raise ValueError(f"X must have shape (n, {n_features}), got {Xa.shape}")
    if not np.all(np.isfinite(Xa)):
        raise ValueError("X contains NaN or Inf")
    if y is None:
        return Xa, None
    ya = np.asarray(y)
    if ya.shape != (Xa.shape[0],):
        raise ValueError(f"y must have shape ({Xa.shape[0]},), got {ya.shape}")
    if ya.size and not np.all(np.equal(np.mod(ya, 1), 0)):
        raise ValueError("labels must be integers")
    yi = ya.astype(np.int64)
    if yi.size and (yi.min() < 0 or yi.max() >= n_classes):
        raise ValueError(f"labels must be in [0, {n_classes}), got range [{yi.min()}, {yi.max()}]")
    return Xa, yi


def accuracy(pred: LabelArray, y: LabelArray) -> float:
    return float(np.mean(pred == y)) if y.size else 0.0
