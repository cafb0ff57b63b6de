"""Fang et al.'s local model poisoning attacks on Krum and on trimmed mean / median.

Fang, Cao, Jia, Gong, "Local Model Poisoning Attacks to Byzantine-Robust Federated
Learning", USENIX Security 2020 (arXiv:1911.11815). Both attacks push the
aggregate opposite to ``s``, the sign of the change the global model would
undergo without attack, estimated here from the colluders' own benign updates
(the paper's partial-knowledge setting: the attackers know only the updates their
compromised devices would have sent; with every benign update as input this is
the full-knowledge attack).

They work in the space of deltas ``local - global``: the global model is common to
every update, so a rule choosing or trimming deltas chooses or trims the same
models, and ``w_Re`` of the paper (the model before the attack) is the zero delta.

*Krum attack* (Section 4.2): the first attacker sends ``-lambda * s``, the others
copies of it within distance ``epsilon``. ``lambda`` starts at the paper's upper
bound and is halved until Krum, simulated on the crafted and the known benign
deltas, selects a crafted one (or ``lambda`` falls below ``threshold``).

*Trim attack* (Section 4.3): coordinate by coordinate, each attacker sends a value
beyond the benign extreme on the side opposite to ``s_j``: for ``s_j = -1`` a
uniform draw from ``[w_max, b * w_max]`` (``[w_max, w_max / b]`` when ``w_max <= 0``),
for ``s_j = 1`` from ``[w_min / b, w_min]`` (``[b * w_min, w_min]`` when
``w_min <= 0``), with ``b = 2`` in the paper (``mode="range"``). ``mode="std"`` is the
paper's partial-knowledge variant: draws from ``[mu + 3 sigma, mu + 4 sigma]`` or
``[mu - 4 sigma, mu - 3 sigma]``, with ``mu``, ``sigma`` the benign mean and standard
deviation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from fedledger.attacks._base import Array, Attack, AttackContext, check_positive
from fedledger.exceptions import ConfigError
from fedledger.learning.params import Params

__all__ = ["FangKrum", "FangTrim", "krum_choice"]


def _pairwise_sq_distances(vectors: Array) -> Array:
    sq = np.einsum("ij,ij->i", vectors, vectors)
    out: Array = np.maximum(sq[:, None] + sq[None, :] - 2.0 * vectors @ vectors.T, 0.0)
    return out


def krum_choice(vectors: Array, num_byzantine: int) -> int:
    """Index Krum selects (Blanchard et al., NeurIPS 2017): the vector with the smallest sum of squared
    distances to its ``n - f - 2`` nearest others (at least 1), as the attacker simulates it."""
    n = len(vectors)
    if n == 0:
        raise ConfigError("krum_choice needs at least one vector")
    if n == 1:
        return 0
    neighbours = min(n - 1, max(1, n - num_byzantine - 2))
    dist = _pairwise_sq_distances(vectors)
    np.fill_diagonal(dist, np.inf)
    scores = np.sort(dist, axis=1)[:, :neighbours].sum(axis=1)
    return int(np.argmin(scores))


def benign_direction(benign: Array) -> Array:
    """``s``: the sign of each coordinate of the benign mean step (0 where it is exactly 0)."""
    out: Array = np.sign(benign.mean(axis=0))
    return out


@dataclass(frozen=True)
class FangKrum(Attack):
    """The Krum attack: ``-lambda * s`` with the largest ``lambda`` Krum still selects (binary search)."""

    name: ClassVar[str] = "fang-krum"
    crafts_updates: ClassVar[bool] = True
    collusive: ClassVar[bool] = True

    epsilon: float = 0.01
    """Radius of the ball around the first crafted delta the other attackers' copies are drawn from."""
    threshold: float = 1e-5
    """Smallest ``lambda`` the search tries before giving up (the paper's stopping threshold)."""

    def __post_init__(self) -> None:
        if not (self.epsilon >= 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"epsilon must be non-negative and finite, got {self.epsilon}")
        check_positive("threshold", self.threshold)

    def lambda_upper_bound(self, benign: Array, ctx: AttackContext) -> float:
        """The paper's bound on ``lambda`` (Section 4.2), from the known benign deltas."""
        dim = benign.shape[1]
        m = ctx.num_workers if ctx.num_workers is not None else len(benign) + ctx.num_malicious
        c = ctx.num_malicious
        neighbours = min(len(benign) - 1, max(1, m - c - 2))
        spread = 0.0
        if neighbours >= 1:
            dist = np.sqrt(_pairwise_sq_distances(benign))
            np.fill_diagonal(dist, np.inf)
            spread = float(np.sort(dist, axis=1)[:, :neighbours].sum(axis=1).min())
        farthest = float(np.linalg.norm(benign, axis=1).max())
        bound = spread / (max(1, m - 2 * c - 1) * math.sqrt(dim)) + farthest / math.sqrt(dim)
        if ctx.clip_norm is not None:
            # A longer -lambda * s would be clipped (or refused) before Krum sees it: search below that.
            size = float(np.linalg.norm(benign_direction(benign)))
            bound = min(bound, ctx.clip_norm / size) if size > 0 else bound
        return bound

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        known = ctx.require_benign(benign, self.name)
        direction = benign_direction(known)
        c = ctx.num_malicious
        # Copies of the first crafted delta within epsilon (uniform directions, radius up to epsilon).
        offsets = ctx.rng.standard_normal(size=(c - 1, known.shape[1]))
        norms = np.linalg.norm(offsets, axis=1, keepdims=True)
        offsets *= self.epsilon * ctx.rng.uniform(size=(c - 1, 1)) / np.where(norms > 0, norms, 1.0)
        lam = self.lambda_upper_bound(known, ctx)
        while True:
            first = -lam * direction
            crafted = np.vstack([first[None, :], first[None, :] + offsets])
            if krum_choice(np.vstack([crafted, known]), c) < c or lam / 2 < self.threshold:
                return ctx.unstack(crafted)
            lam /= 2


@dataclass(frozen=True)
class FangTrim(Attack):
    """The Trim attack: each coordinate beyond the benign extreme, opposite to the benign direction."""

    name: ClassVar[str] = "fang-trim"
    crafts_updates: ClassVar[bool] = True
    collusive: ClassVar[bool] = True

    b: float = 2.0
    mode: Literal["range", "std"] = "range"

    def __post_init__(self) -> None:
        if not (self.b > 1 and math.isfinite(self.b)):
            raise ConfigError(f"b must be finite and greater than 1, got {self.b}")
        if self.mode not in ("range", "std"):
            raise ConfigError(f"mode must be 'range' or 'std', got {self.mode!r}")

    def bounds(self, benign: Array) -> tuple[Array, Array]:
        """Per coordinate, the interval ``[low, high]`` the crafted values are drawn from."""
        direction = benign_direction(benign)
        # Where the benign mean is exactly 0 there is no direction to oppose; push up like s_j = -1.
        up = direction <= 0
        if self.mode == "std":
            mu, sigma = benign.mean(axis=0), benign.std(axis=0)
            low = np.where(up, mu + 3 * sigma, mu - 4 * sigma)
            high = np.where(up, mu + 4 * sigma, mu - 3 * sigma)
            return low, high
        w_max, w_min = benign.max(axis=0), benign.min(axis=0)
        up_far = np.where(w_max > 0, self.b * w_max, w_max / self.b)
        down_far = np.where(w_min > 0, w_min / self.b, self.b * w_min)
        low = np.where(up, w_max, down_far)
        high = np.where(up, up_far, w_min)
        return low, high

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        low, high = self.bounds(ctx.require_benign(benign, self.name))
        draws = ctx.rng.uniform(size=(ctx.num_malicious, low.size))
        return ctx.unstack(low + draws * (high - low))
