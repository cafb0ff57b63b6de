"""Untargeted model poisoning that needs no optimisation: flip, boost, noise, free-ride, clone.

These are the baselines of the Byzantine-robust FL literature:

* sign flipping and Gaussian noise: Li, Xu, Chen, Giannakis, Ling, "RSA: Byzantine-Robust
  Stochastic Aggregation Methods for Distributed Learning from Heterogeneous Datasets", AAAI 2019;
  Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries: Byzantine Tolerant
  Gradient Descent" (Krum), NeurIPS 2017 (Gaussian Byzantine vectors);
* scaling (boosting): Bhagoji, Chakraborty, Mittal, Calo, "Analyzing Federated Learning through an
  Adversarial Lens", ICML 2019 (explicit boosting), and Bagdasaryan et al.'s model replacement (AISTATS 2020);
* free-riders: Lin, Du, Liu, "Free-riders in Federated Learning: Attacks and Defenses", arXiv:1911.12560
  (2019); Fraboni, Vidal, Lorenzi, "Free-rider Attacks on Model Aggregation in Federated Learning",
  AISTATS 2021 (disguised free-riders send noise shaped like a real update);
* count inflation: FedAvg weights each update by the example count its member declares (McMahan et al.,
  AISTATS 2017), which no one else can check; declaring the task's maximum makes one member outweigh all;
* sybils: Fung, Yoon, Beschastnikh, "The Limitations of Federated Learning in Sybil Settings"
  (FoolsGold), RAID 2020: one adversary, many identities, one update cloned.

With ``clip_norm`` in the context and ``norm_fraction`` set, flipped and boosted
updates are stretched to ``norm_fraction * clip_norm`` (0.99 by default), the
largest norm the task's check still admits: only the validators can catch them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fedledger.attacks._base import (
    Attack,
    AttackContext,
    NoAttack,
    check_fraction,
    check_positive,
    own_or_mean,
)
from fedledger.exceptions import ConfigError
from fedledger.learning.params import Params

__all__ = ["FreeRider", "FreeRiderNoise", "GaussianNoise", "Scaling", "SignFlip", "Sybil"]


@dataclass(frozen=True)
class SignFlip(Attack):
    """Each attacker submits ``-scale`` times its own benign delta (Li et al., AAAI 2019), stretched to
    ``norm_fraction * clip_norm`` when the context has a clip norm."""

    name: ClassVar[str] = "sign-flip"
    crafts_updates: ClassVar[bool] = True

    scale: float = 1.0
    norm_fraction: float | None = 0.99

    def __post_init__(self) -> None:
        check_positive("scale", self.scale)
        check_fraction("norm_fraction", self.norm_fraction)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        own = own_or_mean(ctx.require_benign(benign, self.name), ctx.num_malicious)
        return ctx.unstack(np.stack([ctx.fit_norm(-self.scale * row, self.norm_fraction) for row in own]))


@dataclass(frozen=True)
class Scaling(Attack):
    """Each attacker boosts its own benign delta by ``factor`` (Bhagoji et al., ICML 2019), or, when the
    context has a clip norm and ``norm_fraction`` is set, stretches it to ``norm_fraction * clip_norm``:
    as far as the norm bound allows."""

    name: ClassVar[str] = "scaling"
    crafts_updates: ClassVar[bool] = True

    factor: float = 10.0
    norm_fraction: float | None = 0.99

    def __post_init__(self) -> None:
        check_positive("factor", self.factor)
        check_fraction("norm_fraction", self.norm_fraction)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        own = own_or_mean(ctx.require_benign(benign, self.name), ctx.num_malicious)
        return ctx.unstack(np.stack([ctx.fit_norm(self.factor * row, self.norm_fraction) for row in own]))


@dataclass(frozen=True)
class GaussianNoise(Attack):
    """Each attacker submits a vector of i.i.d. ``N(0, sigma^2)`` coordinates (Blanchard et al., NeurIPS
    2017; Li et al., AAAI 2019): no training, pure disruption of a mean aggregator."""

    name: ClassVar[str] = "gaussian"
    crafts_updates: ClassVar[bool] = True
    needs_training: ClassVar[bool] = False

    sigma: float = 1.0

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        return ctx.unstack(ctx.rng.normal(0.0, self.sigma, size=(ctx.num_malicious, ctx.dim)))


@dataclass(frozen=True)
class FreeRider(Attack):
    """Resubmits the global model, i.e. a zero delta (Lin et al., 2019): claims a reward, trains nothing."""

    name: ClassVar[str] = "free-rider"
    crafts_updates: ClassVar[bool] = True
    needs_training: ClassVar[bool] = False

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        return ctx.unstack(np.zeros((ctx.num_malicious, ctx.dim)))


@dataclass(frozen=True)
class CountInflation(Attack):
    """Declares ``claim`` examples, however many it trained on (0, the default: the most the checks admit, which
    is the task's ``max_examples``, or the rows its dataset registered when the task has a data registry; a larger
    claim is lowered to that). The update itself is left as it is: compose it, ``free-rider+count-inflation``
    submits nothing with the weight of everyone."""

    name: ClassVar[str] = "count-inflation"

    claim: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.claim, bool) or not isinstance(self.claim, int) or self.claim < 0:
            raise ConfigError(f"claim must be a non-negative integer (0: the task's maximum), got {self.claim!r}")

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        return min(self.claim, max_examples) if self.claim else max_examples


@dataclass(frozen=True)
class FreeRiderNoise(Attack):
    """A disguised free-rider (Fraboni et al., AISTATS 2021): random noise with the norm of a plausible
    update, ``norm`` if given, else ``norm_fraction * clip_norm``; trains nothing."""

    name: ClassVar[str] = "free-rider-noise"
    crafts_updates: ClassVar[bool] = True
    needs_training: ClassVar[bool] = False

    norm: float | None = None
    norm_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.norm is not None:
            check_positive("norm", self.norm)
        check_fraction("norm_fraction", self.norm_fraction, allow_none=False)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        if self.norm is not None:
            target = self.norm
        elif ctx.clip_norm is not None:
            target = self.norm_fraction * ctx.clip_norm
        else:
            raise ConfigError("free-rider-noise needs norm= or a clip_norm in the attack context")
        noise = ctx.rng.standard_normal(size=(ctx.num_malicious, ctx.dim))
        norms = np.linalg.norm(noise, axis=1, keepdims=True)
        return ctx.unstack(noise * (target / np.where(norms > 0, norms, 1.0)))


@dataclass(frozen=True)
class Sybil(Attack):
    """Every attacker submits the same delta: ``inner``'s first crafted delta (Fung et al., RAID 2020).

    With the default ``inner`` (honest) this is one real training run passed off under
    ``num_malicious`` identities, multiplying its weight in the aggregate and its rewards.
    """

    name: ClassVar[str] = "sybil"
    crafts_updates: ClassVar[bool] = True
    collusive: ClassVar[bool] = True

    inner: Attack = field(default_factory=NoAttack)

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Attack):
            raise ConfigError(f"sybil inner must be an Attack, got {type(self.inner).__name__}")
        if isinstance(self.inner, Sybil):
            raise ConfigError("sybil inner cannot itself be a sybil attack")

    @property
    def needs_training(self) -> bool:  # type: ignore[override]
        return self.inner.needs_training

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        first = self.inner.craft(benign, ctx)[0]
        return [{k: v.copy() for k, v in first.items()} for _ in range(ctx.num_malicious)]
