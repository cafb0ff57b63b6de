"""PyTorch adapter for any ``torch.nn.Module`` classifier (torch is optional and imported lazily).

Params are the module's floating-point ``state_dict`` entries (weights, biases
and float buffers such as BatchNorm statistics) as float32 numpy arrays.
Export writes the ``state_dict`` with safetensors (the format PyTorch model hubs
use; ``torch.save`` would be pickle): load it back with
``module.load_state_dict(safetensors.torch.load_file(path))``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.learning.adapters._base import FeatureArray, LabelArray, accuracy, check_xy
from fedledger.learning.params import Params, ParamSpec, as_params, check_params, shape_spec

__all__ = ["TorchAdapter", "import_torch", "torch_mlp"]


def import_torch() -> Any:
    """The torch module, or ``ImportError`` saying how to install the optional extra."""
    try:
        return importlib.import_module("torch")
    except ImportError as exc:
        raise ImportError("PyTorch models need the optional extra: pip install 'fedledger[torch]'") from exc


def torch_mlp(n_features: int, n_classes: int, hidden: Sequence[int] = (32,), *, seed: int = 0) -> Any:
    """A ReLU multilayer perceptron with seeded initial weights."""
    torch = import_torch()
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        layers: list[Any] = []
        sizes = [n_features, *hidden]
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_classes))
        return nn.Sequential(*layers)


class TorchAdapter:
    """Wraps a module mapping (n, n_features) float inputs to (n, n_classes) logits.

    Training: cross-entropy, a fresh SGD (or Adam) optimizer per ``fit`` call,
    minibatches in a seeded permutation; RNG state is forked so the caller's
    global torch RNG is untouched and the same seed gives the same params.
    ``spec`` is the JSON spec used to build it (set by :func:`build_model`).
    """

    def __init__(
        self,
        module: Any,
        *,
        n_features: int,
        n_classes: int,
        lr: float = 0.05,
        batch_size: int = 32,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        seed: int = 0,
        spec: Mapping[str, Any] | None = None,
    ) -> None:
        self._torch = import_torch()
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self.module = module
        self.n_features, self.n_classes = n_features, n_classes
        self.lr, self.batch_size, self.optimizer, self.momentum, self.seed = (
            lr,
            batch_size,
            optimizer,
            momentum,
            seed,
        )
        self._spec = (
            dict(spec) if spec is not None else {"kind": "torch", "n_features": n_features, "n_classes": n_classes}
        )
        self._names = sorted(k for k, v in module.state_dict().items() if v.is_floating_point())

    @property
    def spec(self) -> dict[str, Any]:
        return dict(self._spec)

    def param_spec(self) -> ParamSpec:
        return shape_spec(self.get_params())

    def get_params(self) -> Params:
        state = self.module.state_dict()
        return as_params({k: state[k].detach().cpu().to(self._torch.float32).numpy() for k in self._names})

    def set_params(self, params: Mapping[str, npt.NDArray[Any]]) -> None:
        check_params(params, self.param_spec(), what="params")
        state = self.module.state_dict()
        new = {k: self._torch.from_numpy(np.array(params[k], dtype=np.float32)).to(state[k].dtype) for k in self._names}
        self.module.load_state_dict(new, strict=False)

    def _logits(self, X: FeatureArray) -> Any:
        torch = self._torch
        self.module.eval()
        with torch.no_grad():
            return self.module(torch.from_numpy(X.astype(np.float32)))

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int = 1, seed: int | None = None) -> None:
        torch = self._torch
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        if epochs < 1 or len(ya) == 0:
            return
        Xt = torch.from_numpy(Xa.astype(np.float32))
        yt = torch.from_numpy(ya)
        params = [p for p in self.module.parameters() if p.requires_grad]
        opt: Any
        if self.optimizer == "sgd":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum)
        else:
            opt = torch.optim.Adam(params, lr=self.lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed if seed is None else seed)
            gen = torch.Generator().manual_seed(self.seed if seed is None else seed)
            self.module.train()
            for _ in range(epochs):
                perm = torch.randperm(len(yt), generator=gen)
                for start in range(0, len(yt), self.batch_size):
                    idx = perm[start : start + self.batch_size]
                    opt.zero_grad()
                    loss = loss_fn(self.module(Xt[idx]), yt[idx])
                    loss.backward()
                    opt.step()
        self.module.eval()

    def predict(self, X: npt.ArrayLike) -> LabelArray:
        Xa, _ = check_xy(X, None, n_features=self.n_features, n_classes=self.n_classes)
        return np.asarray(self._logits(Xa).argmax(dim=1).numpy(), dtype=np.int64)

    def evaluate(self, X: npt.ArrayLike, y: npt.ArrayLike) -> float:
        Xa, ya = check_xy(X, y, n_features=self.n_features, n_classes=self.n_classes)
        return accuracy(self.predict(Xa), ya)

    def export(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(target), metadata={"model_spec": _json(self._spec)})
        return target


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def load_factory(ref: str) -> Callable[..., Any]:
    """``"package.module:callable"`` -> the callable (how a task config names a custom torch model)."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"torch factory must look like 'package.module:callable', got {ref!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{ref} is not callable")
    return obj  # type: ignore[no-any-return]
