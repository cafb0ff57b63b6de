"""ALIE, "A Little Is Enough": a small, coordinated shift hidden in the benign spread.

Baruch, Baruch, Goldberg, "A Little Is Enough: Circumventing Defenses For
Distributed Learning", NeurIPS 2019 (arXiv:1902.06156). The colluders estimate
the coordinate-wise mean ``mu`` and standard deviation ``sigma`` of the benign
updates from their own honest updates and all submit ``mu - z_max * sigma``.
``z_max`` is the largest shift for which enough benign workers still lie further
from the mean than the attackers do: with ``n`` workers and ``m`` attackers,
``s = floor(n/2 + 1) - m`` benign workers must be "supporters", and
``z_max = Phi^{-1}((n - s) / n)`` (Algorithm 1 of the paper; ``Phi`` the standard
normal CDF). Median, trimmed mean and Krum all keep such a point, and the shift
adds up round after round. The paper writes ``mu + z sigma``; the sign only
mirrors the attack, and ``-`` opposes the benign step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import ClassVar

import numpy as np

from fedledger.attacks._base import Attack, AttackContext
from fedledger.exceptions import ConfigError
from fedledger.learning.params import Params

__all__ = ["ALIE", "alie_z_max"]


def alie_z_max(num_workers: int, num_malicious: int) -> float:
    """Baruch et al.'s ``z_max`` for ``n`` workers of which ``m`` are malicious.

    When the attackers are a majority (``s <= 0``) the paper's formula has no finite
    value; ``s`` is then taken as 1 (one supporter suffices).
    """
    if num_workers < 2:
        raise ConfigError(f"ALIE needs at least 2 workers, got {num_workers}")
    if not 1 <= num_malicious <= num_workers:
        raise ConfigError(f"num_malicious must be in [1, {num_workers}], got {num_malicious}")
    supporters = max(1, num_workers // 2 + 1 - num_malicious)
    return NormalDist().inv_cdf((num_workers - supporters) / num_workers)


@dataclass(frozen=True)
class ALIE(Attack):
    """All attackers submit ``mean - z * std`` of the colluders' benign deltas, coordinate-wise.

    ``z`` defaults to :func:`alie_z_max` from the context's ``num_workers`` and ``num_malicious``.
    """

    name: ClassVar[str] = "alie"
    crafts_updates: ClassVar[bool] = True
    collusive: ClassVar[bool] = True

    z: float | None = None

    def __post_init__(self) -> None:
        if self.z is not None and not math.isfinite(self.z):
            raise ConfigError(f"z must be finite, got {self.z}")

    def z_for(self, ctx: AttackContext) -> float:
        """The shift used in ``ctx``: ``z`` if set, else ``z_max`` for the context's workers."""
        if self.z is not None:
            return self.z
        if ctx.num_workers is None:
            raise ConfigError("alie needs num_workers in the attack context (or an explicit z=)")
        if ctx.num_workers == ctx.num_malicious == 1:
            # Alone in the round (the others left out, say by trainer reputation): nobody to hide among, so the
            # attacker submits its benign delta (the mean of one delta; its std is zero anyway).
            return 0.0
        return alie_z_max(ctx.num_workers, ctx.num_malicious)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        stacked = ctx.require_benign(benign, self.name)
        crafted = stacked.mean(axis=0) - self.z_for(ctx) * stacked.std(axis=0)
        return ctx.unstack(np.tile(crafted, (ctx.num_malicious, 1)))
