"""Each accepted update's contribution to one round, measured by a validator on its own validation split.

A round's game: the players are the round's accepted updates (their float deltas from the round's global model),
and ``v(S)`` is the validator's metric of the model aggregated from coalition ``S``
(:func:`~fedledger.incentives.value.coalition_value`). Four methods share one signature and one set of rules
(:data:`CONTRIBUTION_METHODS`, by :class:`ContributionMethod`):

* ``loo``: leave-one-out, ``v(N) - v(N minus i)``;
* ``gtg-shapley``: GTG-Shapley (Liu et al., ACM TIST 2022), permutation Monte-Carlo with between-round and
  within-round truncation, guided sampling and a convergence stop;
* ``cgsv``: the cosine-gradient Shapley value (Xu et al., NeurIPS 2021), the cosine of each delta with the round's
  aggregate delta: data-free, anyone re-derives it from the blobs;
* ``exact-shapley``: over every coalition (at most :data:`EXACT_SHAPLEY_MAX_UPDATES` updates).

**Output.** A list of integers in ``0..10000``, one per update in commit order: the update's share of the round's
total positive contribution in basis points. The shares of a round sum to exactly 10000 (largest remainder, ties to
the lower index), or are all 0 when nothing in the round earned anything. Each validator posts its list; the
contract takes the median per update across validators and pays a round's pool in proportion to the medians (the
medians need not sum to 10000, so the payout divides by their sum).

**Rules every method follows** (each method applies them around its raw values):

* *Free riders get exactly 0*: a delta whose norm is at most :data:`FREE_RIDER_NORM_FRACTION` of the median norm of
  the round's non-zero deltas (a copy of the global model is a zero delta) is no player at all.
* *Copies get exactly 0*: an update whose cosine with an earlier update of the round (lower index, i.e. committed
  earlier) reaches :data:`COPY_COSINE` is no player either. The earlier one keeps its value: a member can only copy
  a blob it has seen, so the original is always committed first, and since the copy is left out of the game the
  original is not diluted by it.
* *Harm earns nothing*: raw values are clipped at 0; a negative value is not owed by anyone.
* *Declared example counts do not count*: every update enters ``v`` at equal weight. A declared count is a claim a
  validator cannot check, so weighting by it would let a member raise its share by inflating it (capping the weights
  only moves the target to the cap). The cost: a member holding more data is paid through the better update its data
  gives, not through the count.
* *Splitting data across identities is not neutralised here.* An update's value has diminishing returns in data, so
  two halves of one data set are each paid for the cover they give each other, and a method that ignores declared
  counts cannot tell two honest members with similar data from one member split in two: a split member's combined
  share rises under every method (``benchmarks/results/contribution.md``). The defence is the cost of an identity:
  admission by the consortium's admins and a stake per member.
* *Determinism*: the same inputs and seed give the same list. :func:`round_seed` derives the seed from public round
  data, so every validator draws the same permutations.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput
from fedledger.incentives.value import Metric, ValueFunction, coalition_value, delta_matrix
from fedledger.learning import DecodedUpdate

__all__ = [
    "BASIS_POINTS",
    "CONTRIBUTION_METHODS",
    "COPY_COSINE",
    "DEFAULT_CONTRIBUTION_METHOD",
    "EXACT_SHAPLEY_MAX_UPDATES",
    "FREE_RIDER_NORM_FRACTION",
    "ContributionFunction",
    "ContributionMethod",
    "ContributionSettings",
    "RoundGame",
    "TooManyUpdates",
    "basis_points",
    "cgsv",
    "exact_shapley",
    "gtg_shapley",
    "loo",
    "measure_round",
    "players_of",
    "round_seed",
]

BASIS_POINTS = 10_000
"""What a round's shares sum to."""
FREE_RIDER_NORM_FRACTION = 1e-3
"""A delta at most this fraction of the median non-zero delta norm of its round is a free rider's."""
COPY_COSINE = 0.999
"""Cosine with an earlier update of the round at or above which an update is a copy. Independent training on
different rows, even two halves of one data set, stays measurably below it."""
EXACT_SHAPLEY_MAX_UPDATES = 12
"""Exact Shapley evaluates ``2^n`` coalitions: 4,096 at this size."""


class TooManyUpdates(BadInput):
    """Exact Shapley was asked for more updates than :data:`EXACT_SHAPLEY_MAX_UPDATES`."""


class ContributionMethod(StrEnum):
    """The contribution methods, by the name a task config gives."""

    LOO = "loo"
    GTG_SHAPLEY = "gtg-shapley"
    CGSV = "cgsv"
    EXACT_SHAPLEY = "exact-shapley"


@dataclass(frozen=True)
class ContributionSettings:
    """The methods' parameters: the shared rules' thresholds, the round-gain truncation of every method that reads
    ``v``, and GTG-Shapley's sampling."""

    round_tolerance: float = 1e-4
    """Between-round truncation, for every method that reads ``v``: a round whose gain ``v(N) - v(())`` (in the
    metric's units) is at most this pays nobody."""
    within_fraction: float = 0.01
    """Within-round truncation: a permutation stops once ``|v(N) - v(prefix)|`` is below this share of the gain."""
    convergence: float = 0.01
    """Stop once the estimate moved by less than this share (L1) over the last ``n`` permutations."""
    min_permutations: int = 10
    """At least this many rounds of guided sampling (each update first once per round) before testing convergence."""
    max_permutations: int = 500
    """At most this many permutations."""
    copy_cosine: float = COPY_COSINE
    """An update at or above this cosine with an earlier one is a copy (:data:`COPY_COSINE`)."""
    free_rider_fraction: float = FREE_RIDER_NORM_FRACTION
    """A delta at most this share of the median non-zero norm is a free rider's (:data:`FREE_RIDER_NORM_FRACTION`)."""


@dataclass(frozen=True)
class RoundGame:
    """One round's game as a validator sees it."""

    deltas: npt.NDArray[np.float64]
    """The updates' deltas, one row each, in commit order."""
    value: ValueFunction
    """``v(coalition)`` on the validator's validation split."""
    seed: int = 0
    """The permutations' seed (:func:`round_seed`)."""
    players: tuple[int, ...] = field(default=())
    """The updates that take part (not free riders, not copies); empty: :func:`players_of` decides."""


ContributionFunction = Callable[[RoundGame, ContributionSettings], list[int]]
"""A method: the round's game and the settings to each update's share in basis points."""


def round_seed(*public: bytes | str | int) -> int:
    """A 64-bit seed from public round data (task address, round id, the updates' hashes): every validator derives
    the same one, so GTG-Shapley draws the same permutations everywhere."""
    digest = hashlib.sha256()
    for part in public:
        raw = part if isinstance(part, bytes) else str(part).encode()
        digest.update(len(raw).to_bytes(4, "big") + raw)
    return int.from_bytes(digest.digest()[:8], "big")


def players_of(deltas: npt.NDArray[np.float64], settings: ContributionSettings) -> tuple[int, ...]:
    """The updates that take part in the game: not free riders, not copies of an earlier update (module rules)."""
    norms = np.linalg.norm(deltas, axis=1) if deltas.size else np.zeros(len(deltas))
    nonzero = norms[norms > 0]
    floor = settings.free_rider_fraction * float(np.median(nonzero)) if nonzero.size else 0.0
    players: list[int] = []
    for i in range(len(deltas)):
        if norms[i] <= floor or norms[i] == 0:
            continue
        earlier = [j for j in range(i) if norms[j] > floor]
        cosines = [float(deltas[i] @ deltas[j]) / (norms[i] * norms[j]) for j in earlier]
        if any(c >= settings.copy_cosine for c in cosines):
            continue
        players.append(i)
    return tuple(players)


def basis_points(values: Sequence[float]) -> list[int]:
    """Each value's share of the positive total in basis points, summing to exactly 10000 (largest remainder, ties
    to the lower index); negative values count as 0; all zeros when nothing is positive."""
    clipped = [v if math.isfinite(v) and v > 0 else 0.0 for v in values]
    total = math.fsum(clipped)
    if total <= 0:
        return [0] * len(values)
    exact = [v / total * BASIS_POINTS for v in clipped]
    shares = [math.floor(x) for x in exact]
    short = BASIS_POINTS - sum(shares)
    order = sorted((i for i, v in enumerate(clipped) if v > 0), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[:short]:
        shares[i] += 1
    return shares


def _sub_value(game: RoundGame, players: tuple[int, ...]) -> ValueFunction:
    """The game restricted to ``players``, indexed by position among them."""
    return lambda coalition: game.value(tuple(players[k] for k in coalition))


def _measured(
    game: RoundGame,
    settings: ContributionSettings,
    raw: Callable[..., npt.NDArray[np.float64]],
    *,
    valued: bool = True,
) -> list[int]:
    """The shared rules around a method's raw values (module docstring). ``valued``: the method reads ``v``, so a
    round whose players gain at most ``round_tolerance`` on the validator's split pays nobody (GTG's between-round
    truncation, applied to every method that can see the gain)."""
    players = game.players or players_of(game.deltas, settings)
    values = np.zeros(len(game.deltas))
    if players:
        sub = _sub_value(game, players)
        if not valued or sub(tuple(range(len(players)))) - sub(()) > settings.round_tolerance:
            values[list(players)] = raw(len(players), sub, game.deltas[list(players)], game.seed, settings)
    return basis_points([float(v) for v in values])


def _loo_raw(n: int, v: ValueFunction, deltas: Any, seed: int, settings: ContributionSettings) -> Any:
    everyone = tuple(range(n))
    full = v(everyone)
    return np.array([full - v(tuple(j for j in everyone if j != i)) for i in range(n)])


def _cgsv_raw(n: int, v: ValueFunction, deltas: Any, seed: int, settings: ContributionSettings) -> Any:
    aggregate = deltas.mean(axis=0)
    aggregate_norm = float(np.linalg.norm(aggregate))
    if not aggregate_norm > 0:  # the players cancel out: no direction to agree with
        return np.zeros(n)
    return np.asarray(deltas @ aggregate / (np.linalg.norm(deltas, axis=1) * aggregate_norm))


def _exact_raw(n: int, v: ValueFunction, deltas: Any, seed: int, settings: ContributionSettings) -> Any:
    if n > EXACT_SHAPLEY_MAX_UPDATES:
        raise TooManyUpdates(f"exact Shapley over {n} updates needs 2^{n} coalitions; at most "
                             f"{EXACT_SHAPLEY_MAX_UPDATES} updates")  # fmt: skip
    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for subset in itertools.combinations(others, size):
                phi[i] += weight * (v(tuple(sorted((*subset, i)))) - v(subset))
    return phi


def _permutation_marginals(
    perm: Sequence[int], v: ValueFunction, v_empty: float, v_full: float, stop_below: float
) -> npt.NDArray[np.float64]:
    """One permutation's marginal gains; once the remaining gain is below ``stop_below`` the rest get 0 (GTG's
    within-round truncation)."""
    marginals = np.zeros(len(perm))
    previous, prefix = v_empty, []
    for i in perm:
        if abs(v_full - previous) < stop_below:
            break
        prefix.append(i)
        current = v(tuple(sorted(prefix)))
        marginals[i], previous = current - previous, current
    return marginals


def _gtg_raw(n: int, v: ValueFunction, deltas: Any, seed: int, settings: ContributionSettings) -> Any:
    v_empty, v_full = v(()), v(tuple(range(n)))
    gain = v_full - v_empty  # above round_tolerance: _measured truncated the rounds that gained nothing
    rng = np.random.default_rng(seed)
    phi, history = np.zeros(n), []
    base: list[int] = []
    for k in range(1, settings.max_permutations + 1):
        # Guided sampling: permutations come in blocks of n, the rotations of one random order, so that each update
        # leads once per block (GTG's guide) and holds every other position once per block too.
        if (k - 1) % n == 0:
            base = [int(i) for i in rng.permutation(n)]
        shift = (k - 1) % n
        perm = base[shift:] + base[:shift]
        phi += (_permutation_marginals(perm, v, v_empty, v_full, settings.within_fraction * gain) - phi) / k
        history.append(phi.copy())
        if k % n == 0 and k >= max(settings.min_permutations, 2) * n and _converged(history, n, settings.convergence):
            break
    return phi


def _converged(history: Sequence[npt.NDArray[np.float64]], n: int, tolerance: float) -> bool:
    now, before = history[-1], history[-1 - n]
    scale = float(np.abs(now).sum())
    return scale > 0 and float(np.abs(now - before).sum()) / scale < tolerance


def loo(game: RoundGame, settings: ContributionSettings = ContributionSettings()) -> list[int]:
    """Leave-one-out: ``v(N) - v(N minus i)`` among the round's players."""
    return _measured(game, settings, _loo_raw)


def gtg_shapley(game: RoundGame, settings: ContributionSettings = ContributionSettings()) -> list[int]:
    """GTG-Shapley (Liu et al., 2022) among the round's players, seeded by ``game.seed``."""
    return _measured(game, settings, _gtg_raw)


def cgsv(game: RoundGame, settings: ContributionSettings = ContributionSettings()) -> list[int]:
    """Cosine-gradient Shapley value (Xu et al., 2021): each player's cosine with the players' mean delta. Uses no
    validation data (``game.value`` is not called)."""
    return _measured(game, settings, _cgsv_raw, valued=False)


def exact_shapley(game: RoundGame, settings: ContributionSettings = ContributionSettings()) -> list[int]:
    """The exact Shapley value over every coalition of the round's players (:class:`TooManyUpdates` past
    :data:`EXACT_SHAPLEY_MAX_UPDATES`)."""
    return _measured(game, settings, _exact_raw)


CONTRIBUTION_METHODS: Mapping[ContributionMethod, ContributionFunction] = {
    ContributionMethod.LOO: loo,
    ContributionMethod.GTG_SHAPLEY: gtg_shapley,
    ContributionMethod.CGSV: cgsv,
    ContributionMethod.EXACT_SHAPLEY: exact_shapley,
}

DEFAULT_CONTRIBUTION_METHOD = ContributionMethod.GTG_SHAPLEY
"""GTG-Shapley, chosen by ``benchmarks/contribution.py``: of the Shapley approximations the issue asks for, it ranks
members as exact Shapley does while the coalitions it evaluates grow with the permutations it draws, not as 2^n
(exact Shapley refuses past 12 updates); it pays the free rider nothing; its cost is a small part of a fedledger
round; and a split member gains least under it. CGSV is cheaper and data-free but ranks worse and can pay a
sign-flipping attacker (its delta counts in the mean it is compared with). Leave-one-out is cheaper too but is no
Shapley approximation: a member whose data others duplicate gets almost nothing."""


def measure_round(
    method: ContributionMethod | str,
    global_params: Mapping[str, npt.NDArray[Any]],
    updates: Sequence[DecodedUpdate],
    metric: Metric,
    *,
    seed: int,
    settings: ContributionSettings = ContributionSettings(),
) -> list[int]:
    """What a validator posts for a round: each accepted update's share in basis points, by ``method``, on the
    validator's ``metric``. The updates' declared ``num_examples`` are not read (module rules)."""
    try:
        chosen = CONTRIBUTION_METHODS[ContributionMethod(method)]
    except ValueError as exc:
        raise BadInput(f"unknown contribution method {method!r}; known: {', '.join(ContributionMethod)}") from exc
    deltas = [u.to_float() for u in updates]
    game = RoundGame(delta_matrix(deltas), coalition_value(global_params, deltas, metric), seed)
    return chosen(game, settings)
