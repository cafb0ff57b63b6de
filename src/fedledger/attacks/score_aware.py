"""A poisoning attack that knows the validators' scoring and stays just above what it tolerates.

Shejwalkar, Houmansadr, "Manipulating the Byzantine: Optimizing Model Poisoning Attacks and Defenses for
Federated Learning", NDSS 2021: an attacker that knows (or can estimate) the defence scales its malicious
perturbation by the largest factor the defence still lets through, found by a search over that factor.
Cao et al. (FLTrust, NDSS 2021, Section VI) evaluate their defence against the same kind of adaptive attack.

Here the defence is fedledger's validation: committees score every update on their own data, the contract
accepts an update whose committee median reaches the task's threshold and, with trainer reputation by scores,
leaves out a trainer whose medians average below ``min_mean_score``. An attacker can run the same scoring rule
on its own validation data (:attr:`AttackContext.score`) and pick, between its honest delta and the inner
attack's crafted one (sign flipping stretched to the clip bound by default, the most harmful direction the
norm check admits), the update furthest towards the crafted one whose expected score still reaches the floor
plus a margin. Its own data is not the validators', so the margin buys safety against their disagreement.
Where validators score a short update at the round's median norm (``AttackContext.scores_at_median_norm``),
it scores each candidate the same way, its own honest deltas' median norm standing in for the round's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from fedledger.attacks._base import Array, Attack, AttackContext, own_or_mean
from fedledger.attacks.simple import SignFlip
from fedledger.exceptions import ConfigError
from fedledger.learning.params import Params
from fedledger.learning.scoring import MAX_SCORE

__all__ = ["ScoreAware"]


@dataclass(frozen=True)
class ScoreAware(Attack):
    """Each attacker submits ``benign + g * (crafted - benign)``, ``crafted`` being ``inner``'s delta, with the
    largest ``g`` in [0, 1] (bisection, ``steps`` halvings) whose expected score reaches ``floor + margin``
    (``floor`` 0: the context's ``score_floor``). Where even its honest delta falls short it submits that."""

    name: ClassVar[str] = "score-aware"
    crafts_updates: ClassVar[bool] = True

    inner: Attack = field(default_factory=SignFlip)
    floor: int = 0
    margin: int = 100
    steps: int = 8

    def __post_init__(self) -> None:
        if not isinstance(self.inner, Attack) or not self.inner.crafts_updates:
            raise ConfigError(f"score-aware tones down a crafted update: inner {self.inner!r} crafts none")
        if isinstance(self.inner, ScoreAware):
            raise ConfigError("score-aware inner cannot itself be score-aware")
        for what, value, low in (("floor", self.floor, 0), ("margin", self.margin, 0), ("steps", self.steps, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_SCORE:
                raise ConfigError(f"score-aware {what} must be an integer in [{low}, {MAX_SCORE}], got {value!r}")

    @property
    def collusive(self) -> bool:  # type: ignore[override]
        return self.inner.collusive

    def target(self, ctx: AttackContext) -> int:
        """The expected score each crafted update must reach."""
        floor = self.floor or ctx.score_floor
        if floor is None:
            raise ConfigError("score-aware needs floor= or a score_floor in the attack context")
        return floor + self.margin

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        score = ctx.score
        if score is None:
            raise ConfigError("score-aware needs the validators' scoring of its own data (score in the context)")
        target = self.target(ctx)
        stacked = ctx.require_benign(benign, self.name)
        honest = own_or_mean(stacked, ctx.num_malicious)
        crafted = ctx.stack(self.inner.craft(benign, ctx), what="crafted deltas")
        # Validators that score a short update at the round's median norm score its direction at that norm;
        # the coalition's best guess of that median is the lower median of its own honest deltas' norms.
        floor_norm = 0.0
        if ctx.scores_at_median_norm:
            norms = np.sort(np.linalg.norm(stacked, axis=1))
            floor_norm = float(norms[(len(norms) - 1) // 2])

        def passes(vector: Array) -> bool:
            norm = float(np.linalg.norm(vector))
            if 0 < norm < floor_norm:
                vector = vector * (floor_norm / norm)
            return score(ctx.unstack(vector[None])[0]) >= target

        out = []
        for start, end in zip(honest, crafted, strict=True):
            direction = end - start
            low, high = 0.0, 1.0
            if passes(end):
                low = high
            for _ in range(0 if low == high else self.steps):
                middle = (low + high) / 2
                if passes(start + middle * direction):
                    low = middle
                else:
                    high = middle
            out.append(start + low * direction)
        return ctx.unstack(np.stack(out))
