"""Label flipping: train honestly on deliberately wrong labels.

Biggio, Nelson, Laskov, "Poisoning Attacks against Support Vector Machines", ICML 2012
(label noise as poisoning); Tolpegin, Truex, Gursoy, Liu, "Data Poisoning Attacks
Against Federated Learning Systems", ESORICS 2020 (label flipping by FL
participants). The attacker maps each label ``l`` to ``C - 1 - l`` on a fraction of
its examples and then trains normally, so its update is a plausible one, only wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedledger.attacks._base import Array, Attack, check_fraction
from fedledger.exceptions import BadInput, ConfigError

__all__ = ["LabelFlip", "poisoned_rows"]


def poisoned_rows(n: int, fraction: float, rng: np.random.Generator) -> Array:
    """Sorted indices of ``round(fraction * n)`` rows out of ``n``, drawn without replacement."""
    count = min(n, int(round(fraction * n)))
    return np.sort(rng.choice(n, size=count, replace=False)) if count else np.zeros(0, dtype=np.int64)


def integer_labels(y: Array, num_classes: int) -> Array:
    """``y`` as int64 labels, or ``BadInput`` if any is not an integer in ``[0, num_classes)``."""
    labels = np.asarray(y)
    if labels.ndim != 1:
        raise BadInput(f"labels must be a 1-D array, got shape {labels.shape}")
    as_int = labels.astype(np.int64)
    if labels.size and (not np.array_equal(as_int, labels) or as_int.min() < 0 or as_int.max() >= num_classes):
        raise BadInput(f"labels must be integers in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}]")
    return as_int


@dataclass(frozen=True)
class LabelFlip(Attack):
    """Replaces label ``l`` by ``C - 1 - l`` on ``fraction`` of the member's examples."""

    name: ClassVar[str] = "label-flip"
    poisons_data: ClassVar[bool] = True

    num_classes: int | None = None
    """``C``; when unset, the caller passes it to :meth:`poison_data` (the task's class count)."""
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.num_classes is not None and self.num_classes < 2:
            raise ConfigError(f"num_classes must be at least 2, got {self.num_classes}")
        check_fraction("fraction", self.fraction, allow_none=False)

    def poison_data(
        self, X: Array, y: Array, *, rng: np.random.Generator, num_classes: int | None = None
    ) -> tuple[Array, Array]:
        classes = self.num_classes if self.num_classes is not None else num_classes
        if classes is None:
            raise ConfigError("label-flip needs num_classes (as a parameter or from the task)")
        labels = integer_labels(y, classes).copy()
        rows = poisoned_rows(len(labels), self.fraction, rng)
        labels[rows] = classes - 1 - labels[rows]
        return np.array(X, copy=True), labels.astype(np.asarray(y).dtype)
