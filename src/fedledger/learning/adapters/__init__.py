"""Model adapters: one protocol over scikit-learn and PyTorch models."""

from fedledger.learning.adapters._base import ModelAdapter
from fedledger.learning.adapters._build import MODEL_KINDS, build_model
from fedledger.learning.adapters._sklearn import SklearnLinearAdapter, SklearnMLPAdapter, load_sklearn_export
from fedledger.learning.adapters._torch import TorchAdapter, torch_mlp

__all__ = [
    "MODEL_KINDS",
    "ModelAdapter",
    "SklearnLinearAdapter",
    "SklearnMLPAdapter",
    "TorchAdapter",
    "build_model",
    "load_sklearn_export",
    "torch_mlp",
]
