"""IPM, inner-product manipulation: make the aggregate point against the true gradient.

Xie, Koyejo, Gupta, "Fall of Empires: Breaking Byzantine-tolerant SGD by Inner
Product Manipulation", UAI 2019 (arXiv:1903.03936). All attackers submit
``-epsilon`` times the mean of the benign updates. A small ``epsilon`` (0.1 in the
paper) keeps the crafted update close to the benign ones, so median and Krum
select it or are pulled by it, while the inner product of the aggregate with the
true descent direction turns negative; a large one (100) overwhelms a plain mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from fedledger.attacks._base import Attack, AttackContext, check_positive
from fedledger.learning.params import Params

__all__ = ["IPM"]


@dataclass(frozen=True)
class IPM(Attack):
    """All attackers submit ``-epsilon * mean(benign deltas)``."""

    name: ClassVar[str] = "ipm"
    crafts_updates: ClassVar[bool] = True
    collusive: ClassVar[bool] = True

    epsilon: float = 0.1

    def __post_init__(self) -> None:
        check_positive("epsilon", self.epsilon)

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        crafted = -self.epsilon * ctx.require_benign(benign, self.name).mean(axis=0)
        return ctx.unstack(np.tile(crafted, (ctx.num_malicious, 1)))
