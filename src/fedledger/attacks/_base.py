"""The attack interface: three hooks a malicious member can use, and the context they run in.

An :class:`Attack` may act at three points of a round, each a pure function of
its inputs and of the random generator it is handed (so a seeded run replays):

``poison_data(X, y, *, rng, num_classes)``
    before local training, on the member's own data (label flipping, backdoors);
``craft(benign, ctx)``
    after local training, on float deltas ``local - global``: ``benign`` are the
    colluders' honest deltas (what the coalition knows), the result is one crafted
    delta per malicious member (sign flipping, scaling, ALIE, IPM, Fang et al.);
``scores(honest_scores, update_owners, malicious_members, *, committees)``
    when a malicious member validates: the scores it submits instead of its honest ones
    (``committees[i]``, where the caller knows it, names the validators scoring update ``i``).

Every hook defaults to honest behaviour, so an attack overrides only what it
changes and attacks compose (:class:`Compose`). Deltas are framework-agnostic
:data:`~fedledger.learning.Params` (name -> float32 array); the maths runs on the
flattened float64 vectors.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.params import Params, ParamSpec, flatten, shape_spec, unflatten

__all__ = ["Array", "Attack", "AttackContext", "Compose", "NoAttack", "Scores"]

Array = npt.NDArray[Any]
"""Any numpy array: inputs, labels, flattened deltas (float64 inside the attacks)."""

Scores = list[int | None]
"""One validator's scores for a round's updates, ``None`` where it abstains (its own update)."""


@dataclass(frozen=True)
class AttackContext:
    """What a model-poisoning attack knows about the round it crafts for.

    ``rng`` is the only source of randomness an attack may use: callers seed it
    (e.g. ``np.random.default_rng([seed, round_id])``) so that runs replay.
    """

    global_params: Params
    """The round's global model; crafted deltas must have its names and shapes."""
    round_id: int
    num_malicious: int
    """How many crafted deltas to return (one per malicious member of the coalition)."""
    rng: np.random.Generator
    num_workers: int | None = None
    """Members submitting updates this round, malicious included (ALIE and Fang et al. need it)."""
    clip_norm: float | None = None
    """The task's L2 clip bound, when attacks should stay just under it."""
    score: Callable[[Params], int] | None = None
    """The committee median the coalition expects for a delta: the task's scoring rule run on its own members'
    validation data, as validators run it on theirs (score-aware attacks tune their updates against it)."""
    score_floor: int | None = None
    """The lowest committee median the coalition can draw without consequence: the task's acceptance threshold,
    or its trainer-reputation bound (``min_mean_score``) where that is higher."""
    scores_at_median_norm: bool = False
    """Validators score an update shorter than the round's median norm as if scaled up to it (the task's
    ``score_at_median_norm``); ``score`` does not, so a score-aware attack models it (see ScoreAware)."""

    def __post_init__(self) -> None:
        if self.num_malicious < 1:
            raise ConfigError(f"num_malicious must be at least 1, got {self.num_malicious}")
        if self.num_workers is not None and self.num_workers < self.num_malicious:
            raise ConfigError(f"num_workers ({self.num_workers}) is below num_malicious ({self.num_malicious})")
        if self.clip_norm is not None and not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise ConfigError(f"clip_norm must be positive and finite, got {self.clip_norm}")

    @property
    def spec(self) -> ParamSpec:
        return shape_spec(self.global_params)

    @property
    def dim(self) -> int:
        return sum(int(np.prod(s, dtype=np.int64)) for s in self.spec.values())

    def stack(self, deltas: Sequence[Params], *, what: str = "benign deltas") -> Array:
        """Deltas as a ``(len(deltas), dim)`` float64 matrix, checked against the global model's spec."""
        spec = self.spec
        rows = []
        for i, delta in enumerate(deltas):
            if shape_spec(delta) != spec:
                raise BadInput(f"{what}[{i}] has tensors {shape_spec(delta)}, expected {spec} (the global model's)")
            row = flatten({k: np.asarray(v, np.float64) for k, v in delta.items()})
            if not np.all(np.isfinite(row)):
                raise BadInput(f"{what}[{i}] contains NaN or Inf")
            rows.append(row)
        return np.stack(rows) if rows else np.zeros((0, self.dim), dtype=np.float64)

    def unstack(self, matrix: Array) -> list[Params]:
        """Rows of a float64 matrix back to float32 ``Params`` in the global model's layout."""
        spec = self.spec
        return [{k: v.astype(np.float32) for k, v in unflatten(np.asarray(row), spec).items()} for row in matrix]

    def require_benign(self, benign: Sequence[Params], attack: str, minimum: int = 1) -> Array:
        """The stacked benign deltas, or a clear error when the attack cannot work with so few."""
        if len(benign) < minimum:
            raise BadInput(f"{attack} needs at least {minimum} benign delta(s) of the colluders, got {len(benign)}")
        return self.stack(benign)

    def fit_norm(self, vector: Array, norm_fraction: float | None) -> Array:
        """``vector`` rescaled to L2 norm ``norm_fraction * clip_norm`` when both are set (a zero vector stays
        zero), else unchanged: the largest update the task's norm check still admits."""
        if norm_fraction is None or self.clip_norm is None:
            return vector
        norm = float(np.linalg.norm(vector))
        return vector * (norm_fraction * self.clip_norm / norm) if norm > 0 else vector


def own_or_mean(benign: Array, count: int) -> Array:
    """``count`` rows: row ``i`` is colluder ``i``'s own benign delta, or the colluders' mean when
    there are fewer known deltas than members (per-member attacks under partial knowledge)."""
    mean = benign.mean(axis=0)
    return np.stack([benign[i] if i < len(benign) else mean for i in range(count)])


def check_fraction(name: str, value: float | None, *, allow_zero: bool = False, allow_none: bool = True) -> None:
    """Raise ``ConfigError`` unless ``value`` is a fraction in (0, 1] ([0, 1] with ``allow_zero``)."""
    if value is None:
        if not allow_none:
            raise ConfigError(f"{name} is required")
        return
    low_ok = value >= 0 if allow_zero else value > 0
    if not (low_ok and value <= 1 and math.isfinite(value)):
        interval = "[0, 1]" if allow_zero else "(0, 1]"
        raise ConfigError(f"{name} must be in {interval}, got {value}")


def check_positive(name: str, value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise ConfigError(f"{name} must be positive and finite, got {value}")


class Attack:
    """Base class: honest behaviour at every hook. Subclasses override the hooks they change.

    Class attributes describe the attack to the code running it:

    (A fourth hook, :meth:`claimed_examples`, sets the example count a member declares.)

    ``name``            registry name (see :data:`fedledger.attacks.ATTACKS`)
    ``poisons_data``    overrides :meth:`poison_data`
    ``crafts_updates``  overrides :meth:`craft`
    ``lies_in_scores``  overrides :meth:`scores`
    ``needs_training``  uses the colluders' benign deltas (free-riders do not: the runner may skip training)
    ``collusive``       crafts from all colluders' deltas together (ALIE, IPM, Fang, sybils); otherwise
                        each member's crafted delta depends only on its own benign delta
    """

    name: ClassVar[str] = "none"
    poisons_data: ClassVar[bool] = False
    crafts_updates: ClassVar[bool] = False
    lies_in_scores: ClassVar[bool] = False
    needs_training: ClassVar[bool] = True
    collusive: ClassVar[bool] = False

    def poison_data(
        self, X: Array, y: Array, *, rng: np.random.Generator, num_classes: int | None = None
    ) -> tuple[Array, Array]:
        """The member's training data after poisoning (new arrays; inputs are never modified)."""
        return X, y

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        """``ctx.num_malicious`` deltas to submit, from the colluders' ``benign`` deltas.

        ``benign[i]`` is malicious member ``i``'s honest delta when it is known;
        the result's ``i``-th delta is what member ``i`` submits.
        """
        if not benign:
            return [{k: np.zeros_like(v, dtype=np.float32) for k, v in ctx.global_params.items()}] * ctx.num_malicious
        return ctx.unstack(own_or_mean(ctx.stack(benign), ctx.num_malicious))

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        malicious_members: Collection[str],
        *,
        committees: Sequence[Collection[str]] | None = None,
    ) -> Scores:
        """The scores a malicious validator submits; ``update_owners[i]`` committed update ``i`` and
        ``committees[i]`` (None: not known) are the validators scoring it, this one included."""
        return list(honest_scores)

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        """The example count a malicious member declares for its update, having trained on ``num_examples``
        (``max_examples``: the most the task admits)."""
        return num_examples

    def describe(self) -> str:
        """``name(param=value, ...)`` for logs and reports."""
        names: list[str] = [f.name for f in dataclasses.fields(self)] if dataclasses.is_dataclass(self) else []
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in names)
        return f"{self.name}({args})"


@dataclass(frozen=True)
class NoAttack(Attack):
    """Honest behaviour (the baseline every attack is compared with)."""

    name: ClassVar[str] = "none"


@dataclass(frozen=True)
class Compose(Attack):
    """Several attacks by one coalition, applied in order at each hook.

    Data poisoning and score lying chain; crafting pipes one attack's crafted
    deltas into the next as its input (``backdoor`` then ``scaling`` is
    Bagdasaryan et al.'s model replacement; ``sign-flip`` plus ``lying-validators``
    poisons and vouches for the poison).
    """

    parts: tuple[Attack, ...]

    def __post_init__(self) -> None:
        if not self.parts:
            raise ConfigError("Compose needs at least one attack")

    @property
    def name(self) -> str:  # type: ignore[override]
        return "+".join(p.name for p in self.parts)

    @property
    def poisons_data(self) -> bool:  # type: ignore[override]
        return any(p.poisons_data for p in self.parts)

    @property
    def crafts_updates(self) -> bool:  # type: ignore[override]
        return any(p.crafts_updates for p in self.parts)

    @property
    def lies_in_scores(self) -> bool:  # type: ignore[override]
        return any(p.lies_in_scores for p in self.parts)

    @property
    def needs_training(self) -> bool:  # type: ignore[override]
        return all(p.needs_training for p in self.parts)

    @property
    def collusive(self) -> bool:  # type: ignore[override]
        return any(p.collusive for p in self.parts)

    def poison_data(
        self, X: Array, y: Array, *, rng: np.random.Generator, num_classes: int | None = None
    ) -> tuple[Array, Array]:
        for part in self.parts:
            X, y = part.poison_data(X, y, rng=rng, num_classes=num_classes)
        return X, y

    def craft(self, benign: Sequence[Params], ctx: AttackContext) -> list[Params]:
        deltas = list(benign)
        for part in self.parts:
            deltas = part.craft(deltas, ctx)
        return deltas

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        malicious_members: Collection[str],
        *,
        committees: Sequence[Collection[str]] | None = None,
    ) -> Scores:
        out = list(honest_scores)
        for part in self.parts:
            out = part.scores(out, update_owners, malicious_members, committees=committees)
        return out

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        for part in self.parts:
            num_examples = part.claimed_examples(num_examples, max_examples=max_examples)
        return num_examples

    def describe(self) -> str:
        return " + ".join(p.describe() for p in self.parts)
