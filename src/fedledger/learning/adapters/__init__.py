"""Model adapters: one protocol over scikit-learn and PyTorch models."""

from fedledger.learning.adapters._base import FeatureArray, LabelArray, ModelAdapter, check_xy
from fedledger.learning.adapters._build import MODEL_KINDS, build_model
from fedledger.learning.adapters._sklearn import (
    EXPORT_FORMAT,
    SklearnLinearAdapter,
    SklearnMLPAdapter,
    load_sklearn_export,
)
from fedledger.learning.adapters._torch import TorchAdapter, import_torch, torch_mlp

__all__ = [
    "EXPORT_FORMAT",
    "MODEL_KINDS",
    "FeatureArray",
    "LabelArray",
    "ModelAdapter",
    "SklearnLinearAdapter",
    "SklearnMLPAdapter",
    "TorchAdapter",
    "build_model",
    "check_xy",
    "import_torch",
    "load_sklearn_export",
    "torch_mlp",
]
