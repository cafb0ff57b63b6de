"""Backdoor (targeted) poisoning: a trigger pattern that makes the model answer the attacker's label.

Gu, Dolan-Gavitt, Garg, "BadNets: Identifying Vulnerabilities in the Machine
Learning Model Supply Chain", arXiv:1708.06733 (2017): stamp a small pixel
pattern on some training inputs and relabel them to the target class; the model
learns the shortcut while clean accuracy barely moves. Bagdasaryan, Veit, Hua,
Estrin, Shmatikov, "How To Backdoor Federated Learning", AISTATS 2020: a
participant trains on a mix of clean and backdoored data and boosts its update
(model replacement, ``boost ~ n / eta``) so that it survives averaging.

The trigger is a function of the feature layout: a ``size x size`` patch in a
corner of image-shaped inputs (``(n, H, W)``, ``(n, C, H, W)``, or flat rows with
``image_shape`` given, e.g. ``(28, 28)`` for MNIST), or a fixed set of columns of
tabular rows. Success is measured by :func:`backdoor_success_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from fedledger.attacks._base import Array, Attack, AttackContext, check_fraction, check_positive, own_or_mean
from fedledger.attacks.label_flip import poisoned_rows
from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.params import Params

__all__ = ["Backdoor", "PixelTrigger", "backdoor_success_rate"]

Corner = Literal["bottom-right", "bottom-left", "top-right", "top-left"]


@dataclass(frozen=True)
class PixelTrigger:
    """Sets a ``size x size`` corner patch of each image (or ``size * size`` columns of a tabular row,
    ``features`` if given, else the last ones) to ``value``."""

    size: int = 3
    value: float = 1.0
    image_shape: tuple[int, ...] | None = None
    """Layout of flat rows, ``(H, W)`` or ``(C, H, W)``; unset for image arrays and tabular rows."""
    corner: Corner = "bottom-right"
    features: tuple[int, ...] | None = None
    """Tabular rows only: the columns the trigger sets."""

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"trigger size must be a positive integer, got {self.size!r}")
        if not math.isfinite(self.value):
            raise ConfigError(f"trigger value must be finite, got {self.value}")
        if self.corner not in ("bottom-right", "bottom-left", "top-right", "top-left"):
            raise ConfigError(f"unknown trigger corner {self.corner!r}")
        if self.image_shape is not None and (
            len(self.image_shape) not in (2, 3) or any(int(d) < 1 for d in self.image_shape)
        ):
            raise ConfigError(f"image_shape must be (H, W) or (C, H, W) with positive sizes, got {self.image_shape}")
        if self.image_shape is not None and self.features is not None:
            raise ConfigError("a trigger takes image_shape (images) or features (tabular), not both")

    def _patch(self, images: Array) -> None:
        """Stamp the patch, in place, on the last two axes of ``images``."""
        height, width = images.shape[-2:]
        if self.size > min(height, width):
            raise BadInput(f"trigger of size {self.size} does not fit {height}x{width} images")
        rows = slice(0, self.size) if self.corner.startswith("top") else slice(height - self.size, height)
        cols = slice(0, self.size) if self.corner.endswith("left") else slice(width - self.size, width)
        images[..., rows, cols] = self.value

    def columns(self, num_features: int) -> Array:
        """The columns set on tabular rows of ``num_features`` features."""
        cols = np.array(self.features if self.features is not None else [], dtype=np.int64)
        if self.features is None:
            count = self.size * self.size
            if count > num_features:
                raise BadInput(f"a trigger of {count} features does not fit rows of {num_features} features")
            cols = np.arange(num_features - count, num_features)
        if cols.size == 0 or cols.min() < 0 or cols.max() >= num_features:
            raise BadInput(f"trigger features {self.features} out of range for rows of {num_features} features")
        return cols

    def apply(self, X: Array) -> Array:
        """A triggered copy of the inputs ``X`` (first axis: examples)."""
        out = np.array(X, copy=True)
        if out.ndim >= 3:
            self._patch(out)
        elif out.ndim == 2 and self.image_shape is not None:
            shape = tuple(int(d) for d in self.image_shape)
            if int(np.prod(shape)) != out.shape[1]:
                raise BadInput(f"rows of {out.shape[1]} features do not have image shape {shape}")
            images = out.reshape((out.shape[0], *shape))
            self._patch(images)
            out = images.reshape(out.shape)
        elif out.ndim == 2:
            out[:, self.columns(out.shape[1])] = self.value
        else:
            raise BadInput(f"inputs must have an examples axis and features, got shape {out.shape}")
        return out


@dataclass(frozen=True)
class Backdoor(Attack):
    """Stamps the trigger on ``poison_fraction`` of the member's examples and relabels them ``target_label``;
    the trained delta is then multiplied by ``boost`` (and stretched to ``norm_fraction * clip_norm`` when set)."""

    name: ClassVar[str] = "backdoor"
    poisons_data: ClassVar[bool] = True
    crafts_updates: ClassVar[bool] = True

    target_label: int = 0
    poison_fraction: float = 0.5
    trigger_size: int = 3
    trigger_value: float = 1.0
    image_shape: tuple[int, ...] | None = None
    trigger_features: tuple[int, ...] | None = None
    corner: Corner = "bottom-right"
    boost: float = 1.0
    norm_fraction: float | None = None

    def __post_init__(self) -> None:
        if isinstance(self.target_label, bool) or not isinstance(self.target_label, int) or self.target_label < 0:
            raise ConfigError(f"target_label must be a non-negative integer, got {self.target_label!r}")
        check_fraction("poison_fraction", self.poison_fraction, allow_none=False)
        check_positive("boost", self.boost)
        check_fraction("norm_fraction", self.norm_fraction)
        self.trigger  # noqa: B018 -- builds the trigger once to validate its parameters now

    @property
    def trigger(self) -> PixelTrigger:
        image_shape = tuple(self.image_shape) if self.image_shape is not None else None
        features = tuple(self.trigger_features) if self.trigger_features is not None else None
        return PixelTrigger(self.trigger_size, self.trigger_value, image_shape, self.corner, features)

    def poison_data(
        self, X: Array, y: Array, *, rng: np.random.Generator, num_classes: int | None = None
    ) -> tuple[Array, Array]:
        if num_classes is not None and self.target_label >= num_classes:
            raise ConfigError(f"target_label {self.target_label} is not one of the task's {num_classes} classes")
        X_arr, labels = np.asarray(X), np.array(y, copy=True)
        if len(X_arr) != len(labels):
            raise BadInput(f"{len(X_arr)} inputs but {len(labels)} labels")
        rows = poisoned_rows(len(labels), self.poison_fraction, rng)
        out = np.array(X_arr, copy=True)
        if rows.size:
            out[rows] = self.trigger.apply(X_arr[rows])
        labels[rows] = self.target_label
        return out, labels

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        own = own_or_mean(ctx.require_benign(benign, self.name), ctx.num_malicious)
        return ctx.unstack(np.stack([ctx.fit_norm(self.boost * row, self.norm_fraction) for row in own]))


def backdoor_success_rate(
    predict: Callable[[Array], Array],
    X: Array,
    y: Array,
    *,
    trigger: PixelTrigger,
    target_label: int,
    flips_only: bool = False,
) -> float:
    """Attack success rate: the fraction of triggered test inputs whose true label is not the target
    that ``predict`` classifies as ``target_label`` (Bagdasaryan et al., 2020, "backdoor accuracy").

    That rate includes the model's natural confusion into the target class (a Fashion-MNIST model at
    74 % accuracy calls a quarter of shirts "T-shirt" with or without a trigger). With ``flips_only``
    the denominator is the same but an input counts only if the trigger *caused* the target: it is
    classified correctly without the trigger and as the target with it, so a model without a backdoor
    scores near 0 whatever its accuracy."""
    labels = np.asarray(y)
    if len(labels) != len(X):
        raise BadInput(f"{len(X)} inputs but {len(labels)} labels")
    keep = labels != target_label
    if not np.any(keep):
        raise BadInput(f"every test label is the target {target_label}: nothing to measure the backdoor on")
    inputs = np.asarray(X)[keep]
    hits = np.asarray(predict(trigger.apply(inputs))) == target_label
    if flips_only:
        hits &= np.asarray(predict(inputs)) == labels[keep]
    return float(np.mean(hits))
