"""The two models of the benchmark and fast local SGD on one shared module.

FLTrust's Fashion-MNIST classifier is a small CNN; ours is the two-conv LeNet shape, narrow
(conv 1->8 5x5, max-pool, conv 8->16 5x5, max-pool, linear 256->10: 5,994 parameters). Twice as
wide (16/32 channels) costs 2-2.5x the CPU time per step on this machine, which the one-hour grid
cannot afford. It standardizes its input (Fashion-MNIST's training mean and sd) as its first step,
so data, triggers and attacks stay in pixel units: at the same cost this lowered attack-free FedAvg's
test error from 0.30-0.32 to 0.26 (20 rounds, seeds 0-2).
Heart disease uses logistic regression as FLamby does (a linear layer; two logits and softmax
cross-entropy, which is logistic regression on the logit difference).

Speed: on two CPU cores, training the members one after the other on a single module with
plain batched convolutions measured faster than ``torch.func.vmap`` over stacked parameters
(vmap turns the convolutions into grouped ones, which are slow on CPU), so members are trained
sequentially on one module whose parameters are overwritten in place. Pooling in channels-last layout
and ReLU after pooling cut the Fashion-MNIST cells' CPU time by 6-15 % (11 % over the grid) with
bit-identical results (benchmarks/results/robustness.md, run 27a).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from fedledger.learning.params import Params

__all__ = ["FashionCNN", "LocalTrainer", "build_model"]


def _pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max-pooling in channels-last layout, whose CPU kernel (forward and backward) measured about twice as
    fast as the default layout's on these small feature maps. Same values and same gradients: max-pooling picks
    the same element in either layout (the first maximum of its window)."""
    return torch.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2).contiguous()


class FashionCNN(nn.Module):
    PIXEL_MEAN, PIXEL_SD = 0.2860, 0.3530
    """Fashion-MNIST's training-set pixel mean and sd (pixels in [0, 1])."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.PIXEL_MEAN) / self.PIXEL_SD
        # ReLU after pooling: the same values (both are monotone) on a quarter of the elements.
        x = torch.relu(_pool(self.conv1(x)))
        x = torch.relu(_pool(self.conv2(x)))
        return self.fc(x.flatten(1))  # type: ignore[no-any-return]


def build_model(kind: str, *, num_features: int = 0, seed: int) -> nn.Module:
    """``cnn`` (Fashion-MNIST) or ``logreg`` (``num_features`` inputs, two classes), seeded."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if kind == "cnn":
            return FashionCNN()
        if kind == "logreg":
            return nn.Linear(num_features, 2)
    raise ValueError(f"unknown model kind {kind!r}")


class LocalTrainer:
    """Local SGD, prediction and parameter exchange (fedledger ``Params``) on one module."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module
        self.names = sorted(name for name, _ in module.named_parameters())
        self._params = dict(module.named_parameters())

    def get_params(self) -> Params:
        return {n: self._params[n].detach().numpy().copy() for n in self.names}

    def set_params(self, params: Mapping[str, np.ndarray]) -> None:
        with torch.no_grad():
            for n in self.names:
                self._params[n].copy_(torch.from_numpy(np.asarray(params[n], dtype=np.float32)))

    def train(
        self,
        params: Mapping[str, np.ndarray],
        X: torch.Tensor,
        y: torch.Tensor,
        *,
        steps: int,
        batch_size: int,
        lr: float,
        rng: np.random.Generator,
    ) -> Params:
        """``steps`` SGD steps from ``params`` on minibatches drawn (without replacement within a batch)
        from (X, y) by ``rng``; the trained params."""
        self.set_params(params)
        module = self.module
        module.train()
        n = len(y)
        for _ in range(steps):
            idx = torch.from_numpy(rng.choice(n, size=min(batch_size, n), replace=False))
            loss = nn.functional.cross_entropy(module(X[idx]), y[idx])
            grads = torch.autograd.grad(loss, [self._params[k] for k in self.names])
            with torch.no_grad():
                for k, g in zip(self.names, grads, strict=True):
                    self._params[k].sub_(lr * g)
        return self.get_params()

    @torch.no_grad()
    def probabilities(self, params: Mapping[str, np.ndarray], X: torch.Tensor, *, chunk: int = 256) -> np.ndarray:
        """Class probabilities of ``params`` on X (the softmax of the module's logits, in float64), as
        :func:`fedledger.learning.metrics.predict_proba` computes them for a torch adapter."""
        self.set_params(params)
        self.module.eval()
        out = [torch.softmax(self.module(X[i : i + chunk]).double(), dim=1) for i in range(0, len(X), chunk)]
        return torch.cat(out).numpy() if out else np.zeros((0, 0))

    @torch.no_grad()
    def predict(self, params: Mapping[str, np.ndarray], X: torch.Tensor, *, chunk: int = 256) -> np.ndarray:
        """Predicted labels of ``params`` on X, ``chunk`` inputs at a time (256 measured 2.3x faster than
        4096 on one core: the activations stay in cache)."""
        self.set_params(params)
        self.module.eval()
        out = [self.module(X[i : i + chunk]).argmax(dim=1) for i in range(0, len(X), chunk)]
        return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)
