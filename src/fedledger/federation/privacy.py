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
- ``sample``: DP-SGD inside local training (Abadi et al., CCS 2016): through Opacus for torch models,
  through :mod:`fedledger.privacy.linear_dp_sgd` for ``sklearn-sgd`` with the log loss (no torch needed);
  one round is ``local_epochs`` epochs of the Poisson-sampled Gaussian mechanism over the member's
  examples. The update is then clipped to ``clip_norm`` as usual (post-processing). It protects each
  record, not the member's whole contribution, so validators can still read and score every update.

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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fedledger.exceptions import ConfigError
from fedledger.federation.modes import DpMode
from fedledger.federation.sections import PipelineSettings, PrivacySettings, TrainingSettings
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

__all__ = ["NORM_BOUND_FAILURE_PROBABILITY", "TaskPrivacy", "num_params"]

NORM_BOUND_FAILURE_PROBABILITY = 1e-9
"""How often an honest noisy update may exceed its norm bound: once in a billion updates, so no honest member is
ever rejected in practice, while a dishonest one gains only noise-sized room (see the module docstring)."""

_TORCH_KINDS = ("torch-mlp", "torch")  # the model kinds Opacus can train
_NUMPY_DP_SGD_KIND = "sklearn-sgd"  # with the log loss: fedledger.privacy.linear_dp_sgd, no torch needed


def _require_dp_sgd(model: Mapping[str, Any]) -> None:
    """Refuse (:class:`ConfigError`) a model no DP-SGD implementation here can train."""
    kind = model.get("kind")
    if kind in _TORCH_KINDS:
        return
    if kind == _NUMPY_DP_SGD_KIND and model.get("loss", "log_loss") == "log_loss":
        return
    raise ConfigError(
        f"task config: dp_mode 'sample' (DP-SGD) needs a torch model ({', '.join(_TORCH_KINDS)}, through Opacus) or "
        f"{_NUMPY_DP_SGD_KIND} with loss 'log_loss' (numpy), got {kind!r}"
        + (f" with loss {model.get('loss')!r}" if kind == _NUMPY_DP_SGD_KIND else "")
        + "; use dp_mode 'client'"
    )


def num_params(spec: dict[str, tuple[int, ...]]) -> int:
    """Number of scalar parameters of a model with tensor shapes ``spec``."""
    return sum(math.prod(shape) for shape in spec.values())


@functools.lru_cache(maxsize=64)
def _calibrated(budget_epsilon: float, delta: float, sample_rate: float, steps: int) -> float:
    # Every node and auditor resolves the same config: calibrate once per process.
    return calibrate_noise_multiplier(target_epsilon=budget_epsilon, delta=delta, sample_rate=sample_rate, steps=steps)


@dataclass(frozen=True)
class TaskPrivacy:
    """The DP mechanism of a task with a privacy budget (``TaskConfig.dp_epsilon`` set)."""

    mode: DpMode
    budget_epsilon: float
    delta: float
    rounds: int
    local_epochs: int
    clip_norm: float
    noise_multiplier: float | None  # sample mode without a fixed multiplier: calibrated per member
    batch_size: int
    max_grad_norm: float

    @classmethod
    def resolve(
        cls, settings: PrivacySettings, training: TrainingSettings, pipeline: PipelineSettings
    ) -> TaskPrivacy | None:
        """The task's DP from its (validated) sections, None for a task without; :class:`ConfigError` if the
        mechanism does not fit the model or the budget."""
        if settings.epsilon is None:
            return None
        sigma = settings.noise_multiplier
        if settings.mode is DpMode.SAMPLE:
            _require_dp_sgd(training.model)
        elif sigma is None:
            sigma = _calibrated(float(settings.epsilon), float(settings.delta), 1.0, training.rounds)
        privacy = cls(
            mode=settings.mode,
            budget_epsilon=float(settings.epsilon),
            delta=float(settings.delta),
            rounds=training.rounds,
            local_epochs=training.local_epochs,
            clip_norm=pipeline.clip_norm,
            noise_multiplier=None if sigma is None else float(sigma),
            batch_size=settings.batch_size,
            max_grad_norm=settings.max_grad_norm,
        )
        privacy._check_one_round_within_budget()
        return privacy

    def _check_one_round_within_budget(self) -> None:
        """A client-level noise multiplier fixed by the config must leave room for at least one round."""
        if self.mode is not DpMode.CLIENT:
            return
        one_round = compute_epsilon([self.mechanism(num_examples=1)], delta=self.delta)
        if not within_budget(one_round, self.budget_epsilon):
            raise ConfigError(
                f"task config: dp_noise_multiplier {self.noise_multiplier} spends epsilon {one_round:.4g} in one "
                f"round, more than the budget dp_epsilon {self.budget_epsilon}"
            )

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
        if self.mode is DpMode.CLIENT:
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
        return ClientDPTransform(
            clip_norm=self.clip_norm, noise_multiplier=self._client_sigma(), expected_members=shares, noise=noise
        )

    def update_norm_bound(self, num_params: int) -> float:
        """The L2 bound validators apply to an update of ``num_params`` parameters (see the module doc)."""
        if self.mode is not DpMode.CLIENT:
            return self.clip_norm
        return noisy_update_norm_bound(
            clip_norm=self.clip_norm,
            noise_std=self._client_sigma() * self.clip_norm,
            num_params=num_params,
            failure_probability=NORM_BOUND_FAILURE_PROBABILITY,
        )

    def _client_sigma(self) -> float:
        """The noise multiplier of client-level DP (always resolved in ``client`` mode)."""
        if self.mode is not DpMode.CLIENT or self.noise_multiplier is None:
            raise ConfigError(f"task privacy: client-level noise needs dp_mode 'client', this task's is {self.mode}")
        return self.noise_multiplier
