"""A task's differential privacy, resolved from its config: the mechanism each member runs per
round, the noise it adds, the spend it declares on chain and the norm bound its update must meet.

Two modes (``TaskConfig.dp_mode``):

- ``client``: DP-FedAvg (McMahan, Ramage, Talwar, Zhang, ICLR 2018). Each member clips its update
  to ``clip_norm`` S and adds Gaussian noise of std ``sigma * S`` itself
  (:class:`~fedledger.privacy.dp.ClientDPTransform` with one share), so every update blob, which
  every member can read from the store, is on its own the Gaussian mechanism with noise multiplier
  ``sigma``: the member's declared spend holds against anyone who sees its update, not only against
  those who see the aggregate. One round is one Gaussian mechanism (sampling rate 1: every member
  trains every round).

  **With secure aggregation** nobody sees an individual update, only the unmasked sum, so each member
  adds one of ``n = min_commitments`` noise shares of std ``sigma * S / sqrt(n)``
  (``TaskConfig.dp_noise_shares``): the contract aborts a round with fewer than ``n`` commitments, and
  every committed masked input is in the sum (dropouts after committing are unmasked from their
  shares), so the sum carries noise of std at least ``sigma * S`` and each member's declared spend
  holds for the released aggregate, with ``n`` times less noise in the model. The masked inputs then
  carry weight 1 instead of the example count (``TaskConfig.masking_weight``): with weights ``n_i``
  the noise in the sum would be ``sigma S sqrt(sum n_j^2 / n)``, less than the ``n_i S`` a member with
  many examples contributes, and that member's guarantee would be weaker than declared.
- ``sample``: DP-SGD through Opacus inside local training (Abadi et al., CCS 2016), for torch models;
  one round is ``local_epochs`` epochs of the Poisson-sampled Gaussian mechanism over the member's
  examples. The update is then clipped to ``clip_norm`` as usual (post-processing).

The noise multiplier, unless the config fixes it, is calibrated with dp-accounting so that
``rounds`` rounds spend at most ``dp_epsilon`` at ``dp_delta``: every member can train every round,
and a member that trains more (a restarted task with the same account) is refused by its node and
by the contract.

**Norm bound for noisy updates.** Validators and aggregators bound an update's L2 norm by
``clip_norm`` S. Client-level noise pushes an honest update above it, so under ``client`` mode the
bound is :func:`~fedledger.privacy.dp.noisy_update_norm_bound`::

    S + sigma * S * (sqrt(d) + sqrt(2 * ln(1 / p)))

for ``d`` parameters and failure probability ``p`` = :data:`NORM_BOUND_FAILURE_PROBABILITY`:
``||clip(u) + z|| <= S + ||z||`` and the norm of ``z ~ N(0, (sigma S)^2 I_d)`` exceeds
``sigma S (sqrt(d) + t)`` with probability at most ``exp(-t^2 / 2)`` (Gaussian concentration of a
1-Lipschitz function, with ``E||z|| <= sigma S sqrt(d)``). An honest update is rejected with
probability below ``p``; a dishonest one gains at most that much room, which is noise-sized.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedledger.exceptions import BadInput, ConfigError
from fedledger.privacy.accounting import (
    PrivacyAccount,
    SampledGaussian,
    budget_to_micro,
    calibrate_noise_multiplier,
    compute_epsilon,
    dp_sgd_mechanism,
    within_budget,
)
from fedledger.privacy.dp import ClientDPTransform, NoiseSource, noisy_update_norm_bound

if TYPE_CHECKING:
    from fedledger.federation.config import TaskConfig

__all__ = ["NORM_BOUND_FAILURE_PROBABILITY", "TaskPrivacy", "num_params"]

NORM_BOUND_FAILURE_PROBABILITY = 1e-9
_TORCH_KINDS = ("torch-mlp", "torch")


def num_params(spec: dict[str, tuple[int, ...]]) -> int:
    """Number of scalar parameters of a model with tensor shapes ``spec``."""
    return sum(math.prod(shape) for shape in spec.values())


@functools.lru_cache(maxsize=64)
def _calibrated(budget_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    # Every node and auditor resolves the same config: calibrate once per process.
    return calibrate_noise_multiplier(target_epsilon=budget_epsilon, delta=delta, sample_rate=sample_rate, steps=steps)


@dataclass(frozen=True)
class TaskPrivacy:
    """The DP settings of a task with a privacy budget (``TaskConfig.dp_epsilon`` set)."""

    mode: str
    budget_epsilon: float
    delta: float
    rounds: int
    local_epochs: int
    clip_norm: float
    noise_multiplier: float | None  # sample mode without a fixed multiplier: calibrated per member
    batch_size: int
    max_grad_norm: float

    @classmethod
    def from_config(cls, config: TaskConfig) -> TaskPrivacy | None:
        """The task's DP, None for a task without; :class:`ConfigError` naming the bad ``dp_*`` field."""
        if config.dp_epsilon is None:
            if config.dp_noise_multiplier is not None:
                raise ConfigError("task config: dp_noise_multiplier is set but dp_epsilon (the budget) is not")
            return None
        from fedledger.federation.config import DP_MODES

        if config.dp_mode not in DP_MODES:
            raise ConfigError(f"task config: dp_mode {config.dp_mode!r} is not one of {', '.join(DP_MODES)}")
        eps = config.dp_epsilon
        if isinstance(eps, bool) or not isinstance(eps, int | float) or not (math.isfinite(eps) and eps > 0):
            raise ConfigError(f"task config: dp_epsilon must be a positive finite number, got {eps!r}")
        try:
            if budget_to_micro(eps) < 1:
                raise ConfigError(f"task config: dp_epsilon {eps!r} is below one micro-epsilon")
        except BadInput as exc:
            raise ConfigError(f"task config: dp_epsilon: {exc}") from exc
        if not (isinstance(config.dp_delta, int | float) and 0 < config.dp_delta < 1):
            raise ConfigError(f"task config: dp_delta must be in (0, 1), got {config.dp_delta!r}")
        sigma = config.dp_noise_multiplier
        if sigma is not None and not (isinstance(sigma, int | float) and math.isfinite(sigma) and sigma > 0):
            raise ConfigError(f"task config: dp_noise_multiplier must be positive and finite, got {sigma!r}")
        if config.dp_mode == "sample":
            if config.model.get("kind") not in _TORCH_KINDS:
                raise ConfigError(
                    f"task config: dp_mode 'sample' (DP-SGD with Opacus) needs a torch model "
                    f"({', '.join(_TORCH_KINDS)}), got {config.model.get('kind')!r}; use dp_mode 'client'"
                )
            if config.dp_batch_size < 1 or not (math.isfinite(config.dp_max_grad_norm) and config.dp_max_grad_norm > 0):
                raise ConfigError("task config: dp_batch_size and dp_max_grad_norm must be positive")
        elif sigma is None:
            sigma = _calibrated(float(eps), float(config.dp_delta), 1.0, config.rounds)
        privacy = cls(
            mode=config.dp_mode,
            budget_epsilon=float(eps),
            delta=float(config.dp_delta),
            rounds=config.rounds,
            local_epochs=config.local_epochs,
            clip_norm=config.clip_norm,
            noise_multiplier=None if sigma is None else float(sigma),
            batch_size=config.dp_batch_size,
            max_grad_norm=config.dp_max_grad_norm,
        )
        if privacy.mode == "client":
            one_round = compute_epsilon([privacy.mechanism(num_examples=1)], delta=privacy.delta)
            if not within_budget(one_round, privacy.budget_epsilon):
                raise ConfigError(
                    f"task config: dp_noise_multiplier {sigma} spends epsilon {one_round:.4g} in one round, "
                    f"more than the budget dp_epsilon {eps}"
                )
        return privacy

    @property
    def budget_micro(self) -> int:
        """The budget as the contract holds it (micro-epsilon, rounded down)."""
        return budget_to_micro(self.budget_epsilon)

    def noise_multiplier_for(self, num_examples: int) -> float:
        """The noise multiplier of a member with ``num_examples`` local examples."""
        if self.noise_multiplier is not None:
            return self.noise_multiplier
        probe = dp_sgd_mechanism(
            noise_multiplier=1.0, num_examples=num_examples, batch_size=self.batch_size, epochs=self.local_epochs
        )
        return _calibrated(self.budget_epsilon, self.delta, probe.sample_rate, probe.steps * self.rounds)

    def mechanism(self, *, num_examples: int) -> SampledGaussian:
        """What one round of a member with ``num_examples`` examples composes (for its accountant)."""
        sigma = self.noise_multiplier_for(num_examples)
        if self.mode == "client":
            return SampledGaussian(sigma, 1.0, 1)
        return dp_sgd_mechanism(
            noise_multiplier=sigma, num_examples=num_examples, batch_size=self.batch_size, epochs=self.local_epochs
        )

    def account(self, member: str) -> PrivacyAccount:
        """A fresh account for ``member`` under this task's delta."""
        return PrivacyAccount(member, self.delta)

    def client_transform(self, *, noise: NoiseSource | None = None, shares: int = 1) -> ClientDPTransform:
        """Clip and noise step for ``client`` mode: the member adds one of ``shares`` noise shares (all of
        the noise when ``shares`` is 1; see the module docstring for when it may be more)."""
        assert self.mode == "client" and self.noise_multiplier is not None
        return ClientDPTransform(
            clip_norm=self.clip_norm, noise_multiplier=self.noise_multiplier, expected_members=shares, noise=noise
        )

    def update_norm_bound(self, num_params: int) -> float:
        """The L2 bound validators apply to an update of ``num_params`` parameters (see the module doc)."""
        if self.mode != "client":
            return self.clip_norm
        assert self.noise_multiplier is not None
        return noisy_update_norm_bound(
            clip_norm=self.clip_norm,
            noise_std=self.noise_multiplier * self.clip_norm,
            num_params=num_params,
            failure_probability=NORM_BOUND_FAILURE_PROBABILITY,
        )
