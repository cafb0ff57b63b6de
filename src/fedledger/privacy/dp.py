"""Differential privacy as wrappers around training: sample-level DP-SGD and client-level DP-FedAvg.

**Sample-level: DP-SGD** (Abadi et al., "Deep Learning with Differential
Privacy", CCS 2016) protects each training example of a member from everyone who
sees that member's updates. :func:`train_dp_sgd` wraps a PyTorch model's local
training with Opacus' ``PrivacyEngine.make_private`` (per-sample gradients,
per-sample clipping to ``max_grad_norm``, Gaussian noise of std
``noise_multiplier * max_grad_norm`` per step, Poisson sampling); nothing about
per-sample gradients is re-implemented here. The spend is computed with
dp-accounting (:mod:`fedledger.privacy.accounting`), and so is the noise
multiplier when a target epsilon is asked for, so the epsilon a member commits is
the one its noise was calibrated against. The model is trained on a private copy
(Opacus hooks never stay on the caller's module) and the trained weights copied back.

**Client-level: DP-FedAvg** (McMahan, Ramage, Talwar, Zhang, "Learning
Differentially Private Recurrent Language Models", ICLR 2018) protects a whole
member's contribution. :class:`ClientDPTransform` is an update-pipeline step:
clip the member's update to L2 norm ``S``, then add this member's share of the
noise. The noise is *distributed*: each member adds ``N(0, sigma^2 S^2 / n)``
per coordinate, so that the SUM of ``n`` members' updates, the only thing secure
aggregation reveals, carries ``N(0, sigma^2 S^2)``: the Gaussian mechanism with
noise multiplier ``sigma`` on a sum whose sensitivity to one member is ``S``
(the same scheme as Truex et al. 2019 and Kairouz, Liu, Steinke, "The
Distributed Discrete Gaussian Mechanism", ICML 2021, in continuous form).

*Noise shortfall.* If only ``m < n`` shares reach the sum (dropouts, rejected
updates) the sum carries variance ``(m / n) sigma^2 S^2``: the effective noise
multiplier is ``sigma * sqrt(m / n)`` (:func:`effective_noise_multiplier`, which
also covers FedAvg's example weights). To calibrate for dropouts, set ``n`` to the
FEWEST updates a finalized round can be aggregated from, not the expected count:
then every aggregate carries at least the target noise, at the price of
``n_actual / n_min`` times more noise than needed when everyone shows up.

*Randomness.* The noise must stay secret from everyone, so it never comes from
the pipeline's replay seed (which is derived from public values). By default
:class:`SystemNoise` seeds numpy's PCG64 from 256 bits of ``os.urandom`` for each
update; PCG64 is not a cryptographic generator, but its state is unpredictable
and its raw outputs are never published (only update + noise is).
:class:`SeededNoise` is for simulations and tests that must replay. Known limits:
floating-point Gaussian samples leak through their low-order bits in theory
(Mironov, CCS 2012); the fixed-point encoding that follows rounds every
coordinate to ``2**-frac_bits``, which blunts that attack, but a discrete Gaussian
over the fixed-point ring (Canonne, Kamath, Steinke 2020) is the rigorous fix.
For DP-SGD, Opacus' ``secure_mode=True`` (needs ``torchcsprng``) does the same job.
"""

from __future__ import annotations

import copy
import math
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.adapters import SklearnLinearAdapter, TorchAdapter, check_xy, import_torch
from fedledger.learning.params import Params, as_params
from fedledger.learning.update import ClipTransform, UpdateContext
from fedledger.privacy.accounting import (
    Accountant,
    PrivacyAccount,
    SampledGaussian,
    calibrate_noise_multiplier,
    compute_epsilon,
    dp_sgd_mechanism,
)
from fedledger.privacy.linear_dp_sgd import train_linear_dp_sgd

__all__ = [
    "ClientDPTransform",
    "DPSGDConfig",
    "DPTrainingResult",
    "NoiseSource",
    "SeededNoise",
    "SystemNoise",
    "effective_noise_multiplier",
    "noise_share_std",
    "noisy_update_norm_bound",
    "train_dp_sgd",
]

FloatArray = npt.NDArray[np.float64]
Tensors = dict[str, npt.NDArray[Any]]


# -- sample-level DP-SGD through Opacus ----------------------------------------------------------


@dataclass(frozen=True)
class DPTrainingResult:
    """Trained params and the spend: of this call from :func:`train_dp_sgd`, cumulative from ``train_round``."""

    params: Params
    mechanism: SampledGaussian
    epsilon: float
    delta: float

    @property
    def noise_multiplier(self) -> float:
        return self.mechanism.noise_multiplier


def train_dp_sgd(
    model: Any,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    epochs: int,
    batch_size: int,
    max_grad_norm: float,
    delta: float,
    seed: int,
    noise_multiplier: float | None = None,
    target_epsilon: float | None = None,
    lr: float | None = None,
    accountant: Accountant = "rdp",
    secure_mode: bool = False,
) -> DPTrainingResult:
    """Train ``model`` with DP-SGD: a :class:`TorchAdapter` or a ``torch.nn.Module`` classifier via Opacus, the
    scikit-learn linear model (``sklearn-sgd``, log loss) via :mod:`fedledger.privacy.linear_dp_sgd`, which needs
    no torch and draws its samples and noise from ``os.urandom``, never from ``seed``.

    Give exactly one of ``noise_multiplier`` or ``target_epsilon`` (then the
    smallest noise multiplier reaching it for these epochs is found with
    dp-accounting). ``batch_size`` is the expected Poisson batch. Optimizer,
    momentum and (unless ``lr`` is given) learning rate are the adapter's; a bare
    module trains with SGD at ``lr`` (default 0.05). The model is updated in
    place and its params returned. ``secure_mode`` asks Opacus for
    cryptographically secure sampling and noise (needs ``torchcsprng``; then the
    seed governs nothing but the initial RNG fork).
    """
    if (noise_multiplier is None) == (target_epsilon is None):
        raise BadInput("give exactly one of noise_multiplier or target_epsilon")
    _check_schedule(epochs, batch_size, max_grad_norm)
    if isinstance(model, SklearnLinearAdapter) and model.supports_dp_sgd:
        Xl, yl = _check_data(X, y, n_features=model.n_features, n_classes=model.n_classes)
        planned = _planned_mechanism(
            len(yl), batch_size, epochs, noise_multiplier, target_epsilon, delta=delta, accountant=accountant
        )
        return _train_linear(model, Xl, yl, planned, epochs, batch_size, max_grad_norm, lr, delta, accountant)
    torch = import_torch()
    trainee = _Trainee.of(torch, model, lr)
    Xa, ya = _check_data(X, y, n_features=trainee.n_features, n_classes=trainee.n_classes)
    if not (math.isfinite(trainee.lr) and trainee.lr > 0):
        raise BadInput(f"lr must be positive and finite, got {trainee.lr!r}")
    mechanism = _planned_mechanism(
        len(ya), batch_size, epochs, noise_multiplier, target_epsilon, delta=delta, accountant=accountant
    )
    epsilon = compute_epsilon([mechanism], delta=delta, accountant=accountant)

    module = trainee.module
    private_copy = copy.deepcopy(module)
    _run_opacus(
        torch,
        private_copy,
        Xa,
        ya,
        mechanism=mechanism,
        epochs=epochs,
        batch_size=batch_size,
        max_grad_norm=max_grad_norm,
        seed=seed,
        lr=trainee.lr,
        optimizer_kind=trainee.optimizer_kind,
        momentum=trainee.momentum,
        secure_mode=secure_mode,
    )
    module.load_state_dict(private_copy.state_dict())
    module.eval()
    params = (
        model.get_params()
        if isinstance(model, TorchAdapter)
        else as_params(
            {k: v.detach().cpu().float().numpy() for k, v in module.state_dict().items() if v.is_floating_point()}
        )
    )
    return DPTrainingResult(params=params, mechanism=mechanism, epsilon=epsilon, delta=delta)


def _train_linear(
    model: SklearnLinearAdapter,
    X: FloatArray,
    y: npt.NDArray[np.int64],
    planned: SampledGaussian,
    epochs: int,
    batch_size: int,
    max_grad_norm: float,
    lr: float | None,
    delta: float,
    accountant: Accountant,
) -> DPTrainingResult:
    """DP-SGD in numpy for the scikit-learn linear model; the spend is that of the mechanism that ran."""
    ran = train_linear_dp_sgd(
        model,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        max_grad_norm=max_grad_norm,
        noise_multiplier=planned.noise_multiplier,
        lr=lr,
    )
    epsilon = compute_epsilon([ran], delta=delta, accountant=accountant)
    return DPTrainingResult(params=model.get_params(), mechanism=ran, epsilon=epsilon, delta=delta)


def _planned_mechanism(
    num_examples: int,
    batch_size: int,
    epochs: int,
    noise_multiplier: float | None,
    target_epsilon: float | None,
    *,
    delta: float,
    accountant: Accountant,
) -> SampledGaussian:
    """The mechanism DP-SGD will run: the given noise multiplier, or the smallest reaching ``target_epsilon``."""
    probe = dp_sgd_mechanism(noise_multiplier=1.0, num_examples=num_examples, batch_size=batch_size, epochs=epochs)
    if target_epsilon is not None:
        noise_multiplier = calibrate_noise_multiplier(
            target_epsilon=target_epsilon,
            delta=delta,
            sample_rate=probe.sample_rate,
            steps=probe.steps,
            accountant=accountant,
        )
    if noise_multiplier is None or not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise BadInput(f"noise_multiplier must be positive and finite, got {noise_multiplier!r}")
    return SampledGaussian(float(noise_multiplier), probe.sample_rate, probe.steps)


def _check_schedule(epochs: int, batch_size: int, max_grad_norm: float) -> None:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise BadInput(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BadInput(f"batch_size must be a positive integer, got {batch_size!r}")
    if not (math.isfinite(max_grad_norm) and max_grad_norm > 0):
        raise BadInput(f"max_grad_norm must be positive and finite, got {max_grad_norm!r}")


@dataclass(frozen=True)
class _Trainee:
    """The module DP-SGD trains and how: an adapter's own optimizer settings, or SGD for a bare module."""

    module: Any
    n_features: int | None
    n_classes: int | None
    lr: float
    optimizer_kind: str
    momentum: float

    @classmethod
    def of(cls, torch: Any, model: Any, lr: float | None) -> _Trainee:
        if isinstance(model, TorchAdapter):
            return cls(
                model.module,
                model.n_features,
                model.n_classes,
                model.lr if lr is None else lr,
                model.optimizer,
                model.momentum,
            )
        if isinstance(model, torch.nn.Module):
            return cls(model, None, None, 0.05 if lr is None else lr, "sgd", 0.0)
        raise BadInput(
            f"DP-SGD trains a TorchAdapter or a torch.nn.Module (or sklearn-sgd with the log loss, without torch), "
            f"got {type(model).__name__}"
        )


def _check_data(
    X: npt.ArrayLike, y: npt.ArrayLike, *, n_features: int | None, n_classes: int | None
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    Xa = np.asarray(X)
    ya = np.asarray(y)
    if Xa.ndim != 2:
        raise BadInput(f"X must be 2-D (examples, features), got shape {Xa.shape}")
    try:
        checked_X, checked_y = check_xy(
            Xa,
            ya,
            n_features=Xa.shape[1] if n_features is None else n_features,
            n_classes=(int(np.max(ya)) + 1 if ya.size else 1) if n_classes is None else n_classes,
        )
    except (ValueError, TypeError) as exc:
        raise BadInput(f"DP-SGD training data: {exc}") from exc
    if checked_y is None or checked_y.size == 0:
        raise BadInput("DP-SGD training data is empty")
    return checked_X, checked_y


def _run_opacus(
    torch: Any,
    module: Any,
    X: FloatArray,
    y: npt.NDArray[np.int64],
    *,
    mechanism: SampledGaussian,
    epochs: int,
    batch_size: int,
    max_grad_norm: float,
    seed: int,
    lr: float,
    optimizer_kind: str,
    momentum: float,
    secure_mode: bool,
) -> None:
    """Opacus' make_private over ``module``, then plain epochs over the Poisson-sampling loader."""
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator

    module.train()  # Opacus validates (and trains) modules in training mode; adapters leave theirs in eval
    errors = ModuleValidator.validate(module, strict=False)
    if errors:
        raise ConfigError(
            f"model cannot be trained with DP-SGD: {errors[0]} (opacus.validators.ModuleValidator.fix "
            "replaces unsupported layers such as BatchNorm)"
        )
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer: Any
    if optimizer_kind == "sgd":
        optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum)
    else:
        optimizer = torch.optim.Adam(params, lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        # Opacus warns that secure RNG is off (the documented simulation default) and torch that the
        # per-sample-gradient hooks fire on an input that needs no gradient; neither is actionable here.
        warnings.filterwarnings("ignore", message=".*Secure RNG turned off.*")
        warnings.filterwarnings("ignore", message=".*Full backward hook is firing.*")
        # Poisson sampling draws from the global torch RNG (forked, so the caller's stream is untouched).
        torch.manual_seed(seed)
        engine = PrivacyEngine(accountant="rdp", secure_mode=secure_mode)
        private_module, private_optimizer, private_loader = engine.make_private(
            module=module,
            optimizer=optimizer,
            data_loader=loader,
            noise_multiplier=mechanism.noise_multiplier,
            max_grad_norm=max_grad_norm,
            poisson_sampling=True,
            noise_generator=None if secure_mode else torch.Generator().manual_seed(seed),
        )
        # The accountant's event must be what Opacus actually runs.
        if len(private_loader) * epochs != mechanism.steps or not math.isclose(
            1.0 / len(private_loader), mechanism.sample_rate
        ):
            raise RuntimeError("Opacus' sampling differs from the accounted mechanism; refusing to train")
        private_module.train()
        for _ in range(epochs):
            for xb, yb in private_loader:
                private_optimizer.zero_grad()
                loss_fn(private_module(xb), yb).backward()
                private_optimizer.step()  # noise is added even for an empty Poisson batch
        private_module.remove_hooks()


@dataclass(frozen=True, kw_only=True)
class DPSGDConfig:
    """A task's sample-level DP settings; :meth:`train` runs :func:`train_dp_sgd` with them.

    ``noise_multiplier`` is fixed for the whole task (calibrate it up front for
    the budget over all rounds with :func:`~fedledger.privacy.accounting.calibrate_noise_multiplier`),
    so every member's per-round mechanism is known before it trains and its node
    can refuse a round that would overrun the budget.
    """

    noise_multiplier: float
    max_grad_norm: float = 1.0
    batch_size: int = 64
    delta: float = 1e-5
    accountant: Accountant = "rdp"

    def __post_init__(self) -> None:
        SampledGaussian(self.noise_multiplier, 1.0, 1)
        if self.noise_multiplier <= 0:
            raise ConfigError("DP-SGD: noise_multiplier must be positive")
        if not (math.isfinite(self.max_grad_norm) and self.max_grad_norm > 0):
            raise ConfigError(f"DP-SGD: max_grad_norm must be positive and finite, got {self.max_grad_norm}")
        if self.batch_size < 1:
            raise ConfigError(f"DP-SGD: batch_size must be positive, got {self.batch_size}")
        if not 0 < self.delta < 1:
            raise ConfigError(f"DP-SGD: delta must be in (0, 1), got {self.delta}")

    def mechanism(self, *, num_examples: int, epochs: int) -> SampledGaussian:
        """The mechanism one round of local training will run (for the look-ahead budget check)."""
        return dp_sgd_mechanism(
            noise_multiplier=self.noise_multiplier, num_examples=num_examples, batch_size=self.batch_size, epochs=epochs
        )

    def train_round(
        self,
        model: Any,
        X: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        account: PrivacyAccount,
        budget_epsilon: float,
        round_id: int,
        epochs: int,
        seed: int,
    ) -> DPTrainingResult:
        """One round of a member's private training, refused BEFORE training if it would overrun the budget.

        Raises ``PrivacyBudgetExceeded`` (model untouched) when the spend after
        this round would not fit ``budget_epsilon``; otherwise trains and records
        the round in ``account``. ``result.epsilon`` is then the cumulative spend
        the member declares with its update.
        """
        if account.delta != self.delta or account.accountant != self.accountant:
            raise ConfigError(
                f"privacy account uses delta {account.delta} ({account.accountant}), "
                f"DP-SGD config delta {self.delta} ({self.accountant})"
            )
        n = len(np.asarray(y))
        account.require_budget(budget_epsilon, self.mechanism(num_examples=max(n, 1), epochs=epochs))
        result = self.train(model, X, y, epochs=epochs, seed=seed)
        cumulative = account.record(round_id, result.mechanism)
        return DPTrainingResult(params=result.params, mechanism=result.mechanism, epsilon=cumulative, delta=self.delta)

    def train(self, model: Any, X: npt.ArrayLike, y: npt.ArrayLike, *, epochs: int, seed: int) -> DPTrainingResult:
        """Train once with these settings (no budget check; see :meth:`train_round`)."""
        return train_dp_sgd(
            model,
            X,
            y,
            epochs=epochs,
            batch_size=self.batch_size,
            max_grad_norm=self.max_grad_norm,
            delta=self.delta,
            seed=seed,
            noise_multiplier=self.noise_multiplier,
            accountant=self.accountant,
        )


# -- client-level DP-FedAvg: clip and add a noise share ------------------------------------------


@runtime_checkable
class NoiseSource(Protocol):
    """Where Gaussian noise comes from."""

    def normal(self, scale: float, shape: tuple[int, ...]) -> FloatArray:
        """float64 samples of ``N(0, scale^2)``."""
        ...


class SystemNoise:
    """Fresh, unpredictable noise: PCG64 seeded from 256 bits of ``os.urandom`` on every call."""

    def normal(self, scale: float, shape: tuple[int, ...]) -> FloatArray:
        seed = np.random.SeedSequence(int.from_bytes(os.urandom(32), "big"))
        return np.random.Generator(np.random.PCG64(seed)).normal(0.0, scale, size=shape)


class SeededNoise:
    """Replayable noise for simulations and tests only: anyone who knows the seed can remove it."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.Generator(np.random.PCG64(seed))

    def normal(self, scale: float, shape: tuple[int, ...]) -> FloatArray:
        return self._rng.normal(0.0, scale, size=shape)


def noise_share_std(*, clip_norm: float, noise_multiplier: float, expected_members: int) -> float:
    """Per-coordinate std of one member's share: ``sigma * S / sqrt(n)`` (n shares sum to ``sigma * S``)."""
    if isinstance(expected_members, bool) or not isinstance(expected_members, int) or expected_members < 1:
        raise BadInput(f"expected_members must be a positive integer, got {expected_members!r}")
    if not (math.isfinite(clip_norm) and clip_norm > 0):
        raise BadInput(f"clip_norm must be positive and finite, got {clip_norm!r}")
    if not (math.isfinite(noise_multiplier) and noise_multiplier > 0):
        raise BadInput(f"noise_multiplier must be positive and finite, got {noise_multiplier!r}")
    return noise_multiplier * clip_norm / math.sqrt(expected_members)


def effective_noise_multiplier(
    noise_multiplier: float, *, expected_members: int, weights: Sequence[float] | int
) -> float:
    """The noise multiplier the aggregate actually carries, given who contributed.

    ``weights`` are the aggregation weights of the updates summed (FedAvg's
    example counts, or an int ``m`` for ``m`` unit weights). The weighted sum
    carries noise std ``sigma * S * sqrt(sum w_k^2 / n)`` and one member moves it
    by at most ``max w_k * S``, so the multiplier is
    ``sigma * sqrt(sum w_k^2 / n) / max w_k``: ``sigma`` for ``n`` equal weights,
    ``sigma * sqrt(m / n)`` when only ``m`` of them arrive. Account with this
    value; unequal weights always lose noise, which is why client-level DP
    aggregates with unit (or capped) weights.
    """
    w = [1.0] * weights if isinstance(weights, int) else [float(v) for v in weights]
    if not w or any(not (math.isfinite(v) and v > 0) for v in w):
        raise BadInput("weights must be a non-empty list of positive numbers (or a positive count)")
    noise_share_std(clip_norm=1.0, noise_multiplier=noise_multiplier, expected_members=expected_members)
    return noise_multiplier * math.sqrt(sum(v * v for v in w) / expected_members) / max(w)


def noisy_update_norm_bound(
    *, clip_norm: float, noise_std: float, num_params: int, failure_probability: float = 1e-9
) -> float:
    """An L2 bound an honest clipped-and-noised update exceeds with probability below ``failure_probability``.

    ``||clip(u) + z|| <= S + ||z||`` and, for ``z ~ N(0, s^2 I_d)``,
    ``||z|| <= s * (sqrt(d) + sqrt(2 ln(1/p)))`` except with probability ``p``
    (Gaussian concentration of the 1-Lipschitz norm, with ``E||z|| <= s sqrt(d)``).
    Validators check noisy updates against this instead of the clip bound.
    """
    if num_params < 1 or noise_std < 0 or not 0 < failure_probability < 1:
        raise BadInput("num_params must be positive, noise_std >= 0 and failure_probability in (0, 1)")
    return clip_norm + noise_std * (math.sqrt(num_params) + math.sqrt(2.0 * math.log(1.0 / failure_probability)))


@dataclass(frozen=True, kw_only=True)
class ClientDPTransform:
    """Update-pipeline step for DP-FedAvg: clip to ``clip_norm``, add this member's noise share, in float.

    Put it where ``ClipTransform`` would go (before ``FixedPointEncode``):
    ``UpdatePipeline([ClientDPTransform(clip_norm=S, noise_multiplier=sigma,
    expected_members=n_min), FixedPointEncode(codec)])``. ``expected_members``
    is the fewest updates a finalized round aggregates (see the module docstring
    on dropouts). The pipeline's replay RNG is deliberately not used.
    """

    clip_norm: float
    noise_multiplier: float
    expected_members: int
    noise: NoiseSource | None = None
    name: str = "client-dp"

    def __post_init__(self) -> None:
        noise_share_std(
            clip_norm=self.clip_norm, noise_multiplier=self.noise_multiplier, expected_members=self.expected_members
        )

    @property
    def share_std(self) -> float:
        return noise_share_std(
            clip_norm=self.clip_norm, noise_multiplier=self.noise_multiplier, expected_members=self.expected_members
        )

    def __call__(self, update: Mapping[str, npt.NDArray[Any]], ctx: UpdateContext) -> Tensors:
        clipped = ClipTransform(self.clip_norm)(dict(update), ctx)
        source = self.noise if self.noise is not None else SystemNoise()
        std = self.share_std
        noisy = {
            name: (np.asarray(clipped[name], np.float64) + source.normal(std, clipped[name].shape)).astype(np.float32)
            for name in sorted(clipped)
        }
        ctx.metadata.update(
            dp_clip_norm=repr(float(self.clip_norm)),
            dp_noise_multiplier=repr(float(self.noise_multiplier)),
            dp_expected_members=str(self.expected_members),
            dp_noise_std=repr(std),
        )
        return noisy
