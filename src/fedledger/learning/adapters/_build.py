"""Building an adapter from a JSON-able spec, so a task config can name its model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.exceptions import ConfigError
from fedledger.learning.adapters._base import ModelAdapter
from fedledger.learning.adapters._sklearn import SklearnLinearAdapter, SklearnMLPAdapter
from fedledger.learning.adapters._torch import TorchAdapter, load_factory, torch_mlp

__all__ = ["MODEL_KINDS", "build_model"]

MODEL_KINDS = ("sklearn-logreg", "sklearn-sgd", "sklearn-mlp", "torch-mlp", "torch")
_TRAIN_KEYS = ("lr", "batch_size", "optimizer", "momentum", "seed")


def build_model(spec: Mapping[str, Any]) -> ModelAdapter:
    """An adapter for ``spec``; ``ConfigError`` naming the problem if the spec is invalid.

    Kinds and keys (``n_features`` and ``n_classes`` always required):

    - ``sklearn-logreg``: ``C``, ``iters_per_epoch``, ``seed``
    - ``sklearn-sgd``: ``loss``, ``alpha``, ``learning_rate``, ``eta0``, ``seed``
    - ``sklearn-mlp``: ``hidden``, ``activation``, ``solver``, ``learning_rate_init``,
      ``batch_size``, ``alpha``, ``seed``
    - ``torch-mlp``: ``hidden``, ``lr``, ``batch_size``, ``optimizer``, ``momentum``, ``seed``
    - ``torch``: ``factory`` (``"package.module:callable"``, imported: trust the task config), ``kwargs``,
      and the training keys of ``torch-mlp``
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(f"model spec must be a JSON object, got {type(spec).__name__}")
    opts = dict(spec)
    kind = opts.pop("kind", None)
    if kind not in MODEL_KINDS:
        raise ConfigError(f"unknown model kind {kind!r}; expected one of {', '.join(MODEL_KINDS)}")
    try:
        n_features = int(opts.pop("n_features"))
        n_classes = int(opts.pop("n_classes"))
    except KeyError as exc:
        raise ConfigError(f"model spec for {kind!r} is missing {exc.args[0]!r}") from None
    try:
        if kind == "sklearn-logreg":
            return SklearnLinearAdapter(n_features, n_classes, estimator="logreg", **opts)
        if kind == "sklearn-sgd":
            return SklearnLinearAdapter(n_features, n_classes, estimator="sgd", **opts)
        if kind == "sklearn-mlp":
            return SklearnMLPAdapter(n_features, n_classes, **opts)
        train = {k: opts.pop(k) for k in _TRAIN_KEYS if k in opts}
        if kind == "torch-mlp":
            hidden = [int(h) for h in opts.pop("hidden", [32])]
            if opts:
                raise TypeError(f"unexpected keys {sorted(opts)}")
            module = torch_mlp(n_features, n_classes, hidden, seed=int(train.get("seed", 0)))
            full = {"kind": kind, "n_features": n_features, "n_classes": n_classes, "hidden": hidden, **train}
            return TorchAdapter(module, n_features=n_features, n_classes=n_classes, spec=full, **train)
        factory = load_factory(str(opts.pop("factory", "")))
        kwargs = dict(opts.pop("kwargs", {}))
        if opts:
            raise TypeError(f"unexpected keys {sorted(opts)}")
        full = {
            "kind": kind,
            "n_features": n_features,
            "n_classes": n_classes,
            "factory": spec["factory"],
            "kwargs": kwargs,
            **train,
        }
        return TorchAdapter(factory(**kwargs), n_features=n_features, n_classes=n_classes, spec=full, **train)
    except ImportError as exc:
        raise ConfigError(f"model kind {kind!r}: {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"invalid model spec for {kind!r}: {exc}") from exc
