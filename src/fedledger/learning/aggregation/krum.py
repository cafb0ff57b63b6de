"""Krum and Multi-Krum.

Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries:
Byzantine Tolerant Gradient Descent", NeurIPS 2017. With ``f`` Byzantine updates
among ``n > 2f + 2``, each update is scored by the sum of squared distances to its
``n - f - 2`` nearest neighbours; Krum outputs the update with the lowest score,
Multi-Krum averages the ``m`` lowest-scored updates.

Distances come from an exact Gram matrix of the int64 fixed-point rows
(:func:`~fedledger.learning.aggregation._exact.exact_gram`: vectorized BLAS on
limbs small enough to be exact), so scores are exact integers and the selection
is the same on every machine; ties go to the lowest index.

Fallback. Krum needs ``n > 2f + 2`` updates, Bulyan ``n >= 4f + 3``. On the ledger the accepted set
is decided by validators, so a round can leave fewer (measured in ``benchmarks/results/robustness.md``: with 10
members per round and a third of honest updates rejected, Multi-Krum and Bulyan failed up to 6 rounds
in 20). With ``fallback="median"`` (the default) such a round aggregates with the coordinate-wise
median (:mod:`.median`; Yin et al., ICML 2018) instead of failing: it is deterministic, needs no
Byzantine count, and keeps the rule's promise for the values it can still promise (fewer than half
arbitrary updates cannot move a coordinate outside the honest range). ``fallback=None`` restores the
error. The result's ``details`` say ``{"fallback": "median", "reason": ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fractions import Fraction

from fedledger.exceptions import AggregationError
from fedledger.learning.aggregation._batch import RuleInputs, RuleOutcome
from fedledger.learning.aggregation._exact import IntArray, exact_gram, mix
from fedledger.learning.aggregation._params import count_param
from fedledger.learning.aggregation.median import coordinate_median

__all__ = [
    "krum_rule",
    "krum_scores",
    "krum_tolerance",
    "median_fallback",
    "multi_krum_rule",
    "pairwise_sq_distances",
    "ranked_by_score",
]


def pairwise_sq_distances(matrix: IntArray) -> list[list[int]]:
    """Exact squared L2 distances between the rows of an int64 matrix, as Python ints."""
    gram: list[list[int]] = exact_gram(matrix).tolist()
    diag = [gram[i][i] for i in range(len(gram))]
    return [[diag[i] + diag[j] - 2 * g for j, g in enumerate(row)] for i, row in enumerate(gram)]


def krum_scores(distances: Sequence[Sequence[int]], members: Sequence[int], neighbours: int) -> list[int]:
    """Krum score of each of ``members``: its summed squared distance to its ``neighbours`` nearest other members.

    Krum proper uses ``neighbours = len(members) - f - 2``; with fewer other members, all of them count.
    """
    scores = []
    for i in members:
        row = distances[i]
        nearest = sorted([row[j] for j in members])[1 : neighbours + 1]  # [0] is the distance to itself, 0
        scores.append(sum(nearest))
    return scores


def ranked_by_score(members: Sequence[int], scores: Sequence[int]) -> list[int]:
    """``members`` ordered by score, ties broken by lowest index."""
    return [member for _, member in sorted(zip(scores, members, strict=True))]


class TooFewUpdates(AggregationError):
    """The rule needs more updates than it got (the case ``fallback`` handles)."""


def krum_tolerance(rule: str, n: int, params: Mapping[str, object]) -> int:
    """``f`` from params (default: the largest with ``n > 2f + 2``), checked against ``n``."""
    if params.get("f") is None:
        f = (n - 3) // 2
        if f < 0:
            raise TooFewUpdates(f"rule {rule!r} needs at least 3 updates, got {n}")
        return f
    f = count_param(rule, "f", params["f"])
    if n <= 2 * f + 2:
        raise TooFewUpdates(f"rule {rule!r} with f={f} needs n > 2f+2 = {2 * f + 2} updates, got {n}")
    return f


def median_fallback(rule: str, inputs: RuleInputs, params: Mapping[str, object], exc: TooFewUpdates) -> RuleOutcome:
    """The coordinate-wise median of all updates when ``params["fallback"] == "median"``; else re-raise ``exc``."""
    fallback = params.get("fallback")
    if fallback is None:
        raise exc
    if fallback != "median":
        raise AggregationError(f"rule {rule!r}: fallback must be 'median' or None, got {fallback!r}")
    batch = inputs.batch
    details: dict[str, object] = {"fallback": "median", "reason": str(exc)}
    return RuleOutcome(coordinate_median(batch.matrix), tuple(range(batch.size)), None, details)


def _krum_ranking(inputs: RuleInputs, f: int) -> tuple[list[int], list[int]]:
    members = list(range(inputs.batch.size))
    scores = krum_scores(pairwise_sq_distances(inputs.batch.matrix), members, len(members) - f - 2)
    return ranked_by_score(members, scores), scores


def krum_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    try:
        f = krum_tolerance("krum", batch.size, params)
    except TooFewUpdates as exc:
        return median_fallback("krum", inputs, params, exc)
    ranking, scores = _krum_ranking(inputs, f)
    chosen = ranking[0]
    weights = tuple(Fraction(int(k == chosen)) for k in range(batch.size))
    return RuleOutcome(batch.matrix[chosen].copy(), (chosen,), weights, {"f": f, "scores": scores})


def multi_krum_rule(inputs: RuleInputs, params: Mapping[str, object]) -> RuleOutcome:
    batch = inputs.batch
    try:
        f = krum_tolerance("multi-krum", batch.size, params)
    except TooFewUpdates as exc:
        return median_fallback("multi-krum", inputs, params, exc)
    m = batch.size - f if params.get("m") is None else count_param("multi-krum", "m", params["m"], minimum=1)
    if m > batch.size:
        raise AggregationError(f"rule 'multi-krum': m={m} exceeds the {batch.size} updates")
    weighting = params.get("weighting")
    if weighting not in ("uniform", "examples"):
        raise AggregationError(f"rule 'multi-krum': weighting must be 'uniform' or 'examples', got {weighting!r}")
    ranking, scores = _krum_ranking(inputs, f)
    chosen = sorted(ranking[:m])
    if weighting == "uniform":
        shares = {k: Fraction(1, m) for k in chosen}
    else:
        total = sum(batch.num_examples[k] for k in chosen)
        shares = {k: Fraction(batch.num_examples[k], total) for k in chosen}
    weights = tuple(shares.get(k, Fraction(0)) for k in range(batch.size))
    row = mix(batch.matrix, weights)
    return RuleOutcome(row, tuple(chosen), weights, {"f": f, "m": m, "scores": scores})
