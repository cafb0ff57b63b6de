"""Validator scoring: how good is one member's update, measured on the validator's own data.

A scoring rule maps ``(adapter, global_params, update, X_val, y_val)`` to an integer score in
``[0, 10000]``; the contract accepts an update when the median of its committee's scores reaches the
task's threshold. Two families:

* ``trust`` (the task default): the cosine of the update with the validator's own update on its
  validation data (:func:`score_trust`), FLTrust's trust score with every validator as a root of trust.
  A continuous measurement, so honest updates score well clear of the threshold and a lying minority
  of a committee cannot drag them under it; ``benchmarks/results/robustness.md`` measures it against every attack.
  Once the model has converged on the validators' data, honest updates are small steps at arbitrary
  angles to the validator's own and trust rejects them: tasks that run many rounds past convergence
  (the demo's breast-cancer set converges in its first round) should score by accuracy.
* accuracy-based: ``accuracy``, ``relative`` and ``relative-accuracy`` (what the update does to the
  validator's accuracy), the default under client-level DP, whose noise hides the update's direction.
* loss-based: ``relative-loss`` (what the update does to the validator's validation cross-entropy, in basis points
  of a know-nothing model's loss). It does not saturate once the model has converged, as accuracy does, but it also
  shows how much honest members with different data cost each other, so it is no profile's default
  (``benchmarks/results/demo_record_dp.md``).

Every rule takes a keyword-only ``weight_divisor`` ``k`` (default 1): the update is
scored at the weight it will have in the aggregate, ``global + update / k`` (``k`` = the number of
updates expected in the aggregate), instead of alone at full weight. On non-IID data an honest
member's full-weight update moves the model towards its own labels and costs validators holding
other labels accuracy that the averaged model never loses, so full-weight scoring rejects honest
updates; but a ``1/k`` step changes few predictions, and ``benchmarks/results/robustness.md`` measures that with
validation sets of 30-120 images it does not separate poisoned updates from honest ones (nearly
all of both are accepted). Tasks therefore keep ``k = 1`` unless their validators hold far more data.
The division is exact integer arithmetic on the fixed-point values (toward zero), so every validator
computes the same candidate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput
from fedledger.learning.adapters._base import ModelAdapter
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.aggregation._batch import UpdateBatch, stack_updates
from fedledger.learning.aggregation._exact import IntArray, exact_sq_norms
from fedledger.learning.aggregation.median_norm import (
    lower_median,
    scale_factor,
    scale_to_median_norm,
    scaled_row,
)
from fedledger.learning.metrics import predict_proba
from fedledger.learning.params import Params
from fedledger.learning.update import DecodedUpdate

__all__ = [
    "MAX_SCORE",
    "SCORING_RULES",
    "accuracy_bps",
    "at_least_norm",
    "at_median_norm",
    "centered_on_round",
    "cosine_score",
    "evaluate",
    "loss_change_score",
    "mean_cross_entropy",
    "median_sq_norm",
    "reference_update",
    "relative_score",
    "scaled_update",
    "validation_loss",
    "score_relative",
    "score_relative_loss",
    "score_trust",
    "score_update",
    "score_update_relative",
]

MAX_SCORE = 10_000


@contextmanager
def _params_in(adapter: ModelAdapter, params: Mapping[str, npt.NDArray[Any]]) -> Iterator[ModelAdapter]:
    """``adapter`` holding ``params`` for the block; its own params come back afterwards."""
    saved = adapter.get_params()
    try:
        adapter.set_params(params)
        yield adapter
    finally:
        adapter.set_params(saved)


def evaluate(
    adapter: ModelAdapter, params: Mapping[str, npt.NDArray[Any]], X: npt.ArrayLike, y: npt.ArrayLike
) -> float:
    """Accuracy of ``params`` on (X, y); the adapter's own params are restored afterwards."""
    with _params_in(adapter, params):
        return adapter.evaluate(X, y)


def accuracy_bps(pred: npt.ArrayLike, y: npt.ArrayLike) -> int:
    """Accuracy in basis points, ``floor(10000 * correct / n)`` in integers (0 when there is no data)."""
    n = int(np.asarray(y).size)
    if n == 0:
        return 0
    correct = int(np.count_nonzero(np.asarray(pred) == np.asarray(y)))
    return correct * MAX_SCORE // n


def _check_divisor(weight_divisor: object) -> int:
    if isinstance(weight_divisor, bool) or not isinstance(weight_divisor, int | np.integer) or weight_divisor < 1:
        raise BadInput(f"weight_divisor must be an integer >= 1, got {weight_divisor!r}")
    return int(weight_divisor)


def scaled_update(tensors: Mapping[str, npt.NDArray[Any]], weight_divisor: int) -> dict[str, npt.NDArray[np.uint64]]:
    """Fixed-point ``update / weight_divisor``, each value divided toward zero (exact, machine-independent)."""
    k = _check_divisor(weight_divisor)
    out = {}
    for name, arr in tensors.items():
        signed = np.asarray(arr, dtype=np.uint64).view(np.int64)
        if k == 1:
            out[name] = signed.view(np.uint64).copy()
            continue
        # Floor division, then one step toward zero for negative values with a remainder: exact for every
        # int64 (no abs(), which overflows at -2**63), and |update / k| never exceeds |update| / k.
        quotient = signed // np.int64(k)
        quotient += ((signed < 0) & (signed % np.int64(k) != 0)).astype(np.int64)
        out[name] = quotient.view(np.uint64)
    return out


def _candidate(global_params: Mapping[str, npt.NDArray[Any]], update: DecodedUpdate, weight_divisor: int) -> Params:
    """``global + update / weight_divisor``, exactly as aggregation would apply it."""
    frac_bits = update.fixed_frac_bits
    if frac_bits is not None:
        return apply_update(global_params, scaled_update(update.tensors, weight_divisor), frac_bits=frac_bits)
    divisor = _check_divisor(weight_divisor)
    return {
        k: (np.asarray(global_params[k], np.float64) + update.tensors[k].astype(np.float64) / divisor).astype(
            np.float32
        )
        for k in sorted(global_params)
    }


def _stacked(updates: Sequence[DecodedUpdate]) -> UpdateBatch:
    """fixed64 updates as one validated int64 matrix, a row each (what norms are computed and scaled on)."""
    for update in updates:
        if update.encoding != "fixed64":
            raise BadInput(f"norms are compared on fixed64 updates, got {update.encoding!r}")
    frac_bits = updates[0].frac_bits or 0
    return stack_updates([u.tensors for u in updates], [1] * len(updates), frac_bits=frac_bits)


def median_sq_norm(updates: Sequence[DecodedUpdate]) -> int:
    """The lower median of the updates' squared L2 norms, in squared fixed-point units (exact integers): the
    norm the round's aggregate clips every update to (:mod:`fedledger.learning.aggregation.median_norm`)."""
    if not updates:
        raise BadInput("the median norm of no updates")
    return lower_median(exact_sq_norms(_stacked(updates).matrix))


def at_least_norm(update: DecodedUpdate, sq_norm: int) -> DecodedUpdate:
    """``update`` scaled up to L2 norm ``sqrt(sq_norm)`` (squared fixed-point units) when it is shorter, else
    unchanged; a zero update stays zero.

    What a validator scores under ``TaskConfig.score_at_median_norm``: a step shorter than the round's median
    changes few of a small validation set's predictions whatever its direction, so an update that pulls the
    model the wrong way could pass by being short (the score-aware attack, which tunes its update until its own
    scoring expects it to pass, finds such short steps). Scaled to a typical honest step, its direction is what
    gets scored. The factor is
    ``floor(sqrt(sq_norm / |u|^2) * 2^40) / 2^40``, from exact integers, and the values are scaled exactly and
    rounded toward zero: the same kernel (:func:`.median_norm.scaled_row`) as the aggregate's
    ``lift_to_median_norm``, so where both are on, validators score the very values the aggregate lifts.
    """
    batch = _stacked([update])
    (own,) = exact_sq_norms(batch.matrix)
    factor = scale_factor(own, sq_norm, clip=False, lift=True)
    return update if factor == 1 else _with_row(update, batch, scaled_row(batch.matrix[0], factor))


def at_median_norm(updates: Sequence[DecodedUpdate]) -> list[DecodedUpdate]:
    """Each of a round's updates as :func:`at_least_norm` scales it to :func:`median_sq_norm` of them all: the
    aggregate's own lift (:func:`.median_norm.scale_to_median_norm`), on the updates stacked once."""
    if not updates:
        raise BadInput("the median norm of no updates")
    batch = _stacked(updates)
    lifted = scale_to_median_norm(batch.matrix, clip=False, lift=True)
    return [
        update if factor == 1 else _with_row(update, batch, row)
        for update, factor, row in zip(updates, lifted.factors, lifted.matrix, strict=True)
    ]


def _with_row(update: DecodedUpdate, batch: UpdateBatch, row: IntArray) -> DecodedUpdate:
    """``update`` holding ``row`` (a row of ``batch``'s layout) as its tensors."""
    return DecodedUpdate(batch.unflatten(row), update.num_examples, update.encoding, update.frac_bits, update.metadata)


def score_update(
    adapter: ModelAdapter,
    global_params: Mapping[str, npt.NDArray[Any]],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    weight_divisor: int = 1,
) -> int:
    """Score in [0, 10000]: accuracy, in basis points, of ``global + update / weight_divisor`` on the
    validation data.

    With the default ``weight_divisor=1`` the update is applied alone and at full weight (as if it
    were the only one accepted), exactly as aggregation would apply it (:func:`apply_update`), so a
    harmful update shows up as lost accuracy. The adapter's params are restored.
    """
    candidate = _candidate(global_params, update, weight_divisor)
    with _params_in(adapter, candidate):
        return accuracy_bps(adapter.predict(X_val), np.asarray(y_val))


def relative_score(before_bps: int, after_bps: int) -> int:
    """``5000 + after - before`` clamped to ``[0, 10000]``: 5000 is "no change on my data", 4000 "costs me
    10 accuracy points", 10000 "gains me 50 or more"."""
    return max(0, min(MAX_SCORE, MAX_SCORE // 2 + after_bps - before_bps))


def score_relative(
    adapter: ModelAdapter,
    global_params: Mapping[str, npt.NDArray[Any]],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    weight_divisor: int = 1,
) -> int:
    """Score in [0, 10000]: :func:`relative_score` of the global model's accuracy (``before``) and that of
    ``global + update / weight_divisor`` (``after``) on the validator's data, in basis points.

    It measures what the update does to the model, whatever the model's level: an update that costs
    the validator accuracy scores below 5000 whether the global model is at 10 % (random weights) or at
    90 %. Integer arithmetic, so it is reproducible.
    """
    with _params_in(adapter, global_params):
        before = accuracy_bps(adapter.predict(X_val), np.asarray(y_val))
    after = score_update(adapter, global_params, update, X_val, y_val, weight_divisor=weight_divisor)
    return relative_score(before, after)


# The ``relative-accuracy`` rule is the same score as :func:`score_relative`, without an absolute term such as
# ``min(after, 5000 + after - before)``: that term is the smaller one exactly when ``before < 5000``, and then below
# any usable threshold, so a task started from random weights (about 10 % accuracy on ten classes) would score every
# update near 1000, accept none at the default threshold 4500, and never move its model (measured in
# benchmarks/results/robustness.md). Once ``before >= 5000`` that formula equals the relative term anyway. The name
# stays so that committed task configs keep their meaning.
score_update_relative = score_relative


LOSS_FLOOR = 1e-15
"""Smallest probability the cross-entropy reads (scikit-learn's ``log_loss`` clips the same way): a confident
mistake costs ``-ln(1e-15)``, about 34.5 nats, instead of an infinite loss."""


def mean_cross_entropy(probabilities: npt.ArrayLike, y: npt.ArrayLike) -> float:
    """Mean negative log-probability of the true labels, each probability clipped to ``[LOSS_FLOOR, 1]``
    (0.0 when there is no data)."""
    labels = np.asarray(y, dtype=np.int64).ravel()
    if labels.size == 0:
        return 0.0
    probs = np.asarray(probabilities, dtype=np.float64).reshape(labels.size, -1)
    if labels.min() < 0 or labels.max() >= probs.shape[1]:
        raise BadInput(f"labels outside the {probs.shape[1]} classes the model gives probabilities for")
    picked = np.clip(probs[np.arange(labels.size), labels], LOSS_FLOOR, 1.0)
    return float(-np.log(picked).mean())


def _probabilities(
    adapter: ModelAdapter, params: Mapping[str, npt.NDArray[Any]], X: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Class probabilities of ``params`` on X (:func:`fedledger.learning.metrics.predict_proba`: a linear model
    trained without probabilities reads the softmax of its decision function); the adapter's own params are
    restored afterwards."""
    with _params_in(adapter, params):
        return predict_proba(adapter, X)


def validation_loss(
    adapter: ModelAdapter, params: Mapping[str, npt.NDArray[Any]], X: npt.ArrayLike, y: npt.ArrayLike
) -> float:
    """:func:`mean_cross_entropy` of ``params`` on (X, y); the adapter's own params are restored afterwards."""
    return mean_cross_entropy(_probabilities(adapter, params, X), y)


def loss_change_score(before: float, after: float, *, n_classes: int) -> int:
    """``5000 + 10000 (before - after) / ln(n_classes)``, floored and clamped to ``[0, 10000]``: the change in the
    validation loss in basis points of the loss of a model that knows nothing (uniform probabilities over
    ``n_classes``), as ``relative`` counts the change in accuracy in basis points. 5000 is "no change in my
    validation loss"; 4500 "adds 5 % of a know-nothing model's loss" (0.035 nats for two classes).

    Why that unit and not a fraction of the loss before: once a model has converged its loss is small, so an honest
    update's ordinary effect, DP noise included, is a large fraction of it, and honest updates would score far
    below 5000 (``benchmarks/results/demo_record_dp.md``). The know-nothing loss is the task's own fixed scale, the
    same in every round."""
    if not (np.isfinite(before) and np.isfinite(after)) or before < 0 or after < 0:
        raise BadInput(f"validation losses must be finite and >= 0, got {before!r} and {after!r}")
    if n_classes < 2:
        raise BadInput(f"a validation loss needs at least 2 classes, got {n_classes}")
    change = MAX_SCORE * (before - after) / float(np.log(n_classes))
    return max(0, min(MAX_SCORE, MAX_SCORE // 2 + int(np.floor(change))))


def score_relative_loss(
    adapter: ModelAdapter,
    global_params: Mapping[str, npt.NDArray[Any]],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    weight_divisor: int = 1,
) -> int:
    """Score in [0, 10000]: :func:`loss_change_score` of the validator's validation loss (mean cross-entropy) under
    the global model (``before``) and under ``global + update / weight_divisor`` (``after``).

    Why a loss and not accuracy: accuracy counts predictions that cross the decision boundary, so once the model has
    converged a step that pulls examples towards the wrong class changes few of them, and a sign-flipped update
    scores like an honest one. The loss is continuous: to first order a step against the validator's gradient
    raises it by as much as the same step along the gradient lowers it, whether or not any prediction flips."""
    before = _probabilities(adapter, global_params, X_val)
    after = _probabilities(adapter, _candidate(global_params, update, weight_divisor), X_val)
    return loss_change_score(
        mean_cross_entropy(before, y_val), mean_cross_entropy(after, y_val), n_classes=before.shape[1]
    )


def _as_vector(tensors: Mapping[str, npt.NDArray[Any]], *, fixed64: bool) -> npt.NDArray[np.float64]:
    parts = []
    for name in sorted(tensors):
        arr = np.asarray(tensors[name])
        if fixed64:
            arr = arr.astype(np.uint64, copy=False).view(np.int64)
        parts.append(arr.astype(np.float64).ravel())
    return np.concatenate(parts) if parts else np.zeros(0)


def cosine_score(update: npt.ArrayLike, reference: npt.ArrayLike) -> int:
    """``5000 + 5000 cos(update, reference)``, rounded to the nearest integer, in ``[0, 10000]``.

    5000 is "orthogonal to what my data asks for" (and the score of a zero update: it contributes
    nothing), 10000 "the same direction", 0 "the opposite one". Cosine ignores magnitude, which the
    norm bound already caps."""
    u = np.asarray(update, dtype=np.float64).ravel()
    v = np.asarray(reference, dtype=np.float64).ravel()
    if u.shape != v.shape:
        raise BadInput(f"update has {u.size} values but the reference has {v.size}")
    # Scale each to unit max first: fixed-point integers up to 2**63 would overflow the dot product's range.
    nu, nv = np.abs(u).max(initial=0.0), np.abs(v).max(initial=0.0)
    if nu == 0 or nv == 0 or not (np.isfinite(nu) and np.isfinite(nv)):
        return MAX_SCORE // 2
    u, v = u / nu, v / nv
    cos = float(u @ v) / (float(np.linalg.norm(u)) * float(np.linalg.norm(v)))
    return max(0, min(MAX_SCORE, MAX_SCORE // 2 + int(round(MAX_SCORE / 2 * cos))))


def reference_update(
    adapter: ModelAdapter,
    global_params: Mapping[str, npt.NDArray[Any]],
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    epochs: int = 1,
    seed: int | None = None,
) -> Params:
    """The validator's own update: local training from the global model on its validation data, minus the
    global model (FLTrust's server update, with the validator's data as the root data set)."""
    with _params_in(adapter, global_params):
        adapter.fit(X_val, y_val, epochs=epochs, seed=seed)
        trained = adapter.get_params()
    return {k: np.asarray(trained[k], np.float64) - np.asarray(global_params[k], np.float64) for k in sorted(trained)}


def score_trust(
    adapter: ModelAdapter,
    global_params: Mapping[str, npt.NDArray[Any]],
    update: DecodedUpdate,
    X_val: npt.ArrayLike,
    y_val: npt.ArrayLike,
    *,
    weight_divisor: int = 1,
    reference: Mapping[str, npt.NDArray[Any]] | None = None,
    epochs: int = 1,
    seed: int | None = None,
) -> int:
    """Trust score in [0, 10000]: :func:`cosine_score` of the update and the validator's own
    :func:`reference_update` on its validation data.

    FLTrust's trust bootstrapping (Cao et al., NDSS 2021) with each validator as its own root of trust:
    an update pointing where the validator's data pulls the model scores above 5000, an update against it
    (sign flipping, IPM, Fang's attacks, label flipping) below, one that carries nothing (a free rider
    resubmitting the global model, or noise, which is orthogonal to everything in high dimension) near
    5000. Unlike accuracy on a few dozen images it is a continuous measurement, so honest updates' scores
    do not straddle the threshold by chance. Pass ``reference`` to reuse one per round; ``weight_divisor``
    does not change a cosine and is accepted for the common signature.
    """
    _check_divisor(weight_divisor)
    if reference is None:
        reference = reference_update(adapter, global_params, X_val, y_val, epochs=epochs, seed=seed)
    missing = sorted(set(reference) ^ set(update.tensors))
    if missing:
        raise BadInput(f"update and reference differ in tensors: {', '.join(missing)}")
    vector = _as_vector(update.tensors, fixed64=update.encoding == "fixed64")
    return cosine_score(vector, _as_vector(reference, fixed64=False))


MIN_SCORES_TO_CENTER = 3
"""Fewest updates a validator scores in a round for :func:`centered_on_round` to re-centre them: the median of
three is an honest update's score when at most one of them is not; of one or two, it may be the attacker's."""


def centered_on_round(scores: Sequence[int]) -> list[int]:
    """A validator's scores of one round's updates, each re-centred on the validator's median score of the round:
    ``5000 + score - median``, clamped to ``[0, 10000]`` (unchanged when it scored fewer than
    :data:`MIN_SCORES_TO_CENTER`).

    Why: honest members whose data differ from the validator's cost it accuracy too, and how much depends on the
    validator as much as on the update. A validator holding one population (an IoT gateway that has seen almost
    only normal traffic; Switzerland's hospital, 93 % with disease) loses accuracy to nearly every other member's
    honest update, and with absolute scores it votes against all of them. With a majority of honest updates in
    the round, the validator's median score is an honest update's: measured against it, a score says how much more
    an update costs this validator than the round's typical update does. Free riders and noise, which gain nothing
    while honest updates gain, fall below it as well.

    What it cannot do: an honest update that is itself the round's outlier (Switzerland's, at full weight, costs
    Cleveland and Hungary 30 points more than the others' updates do) still scores like an attack, and an attack
    that pulls where one honest population would (a sign flip of a skewed member's update) can look like honest
    variation. ``benchmarks/results/honest_members.md`` measures both.

    The median is the contract's (:func:`fedledger.chain.task.contract_median`), in integers: every auditor
    re-derives the same scores."""
    raw = [int(s) for s in scores]
    if len(raw) < MIN_SCORES_TO_CENTER:
        return raw
    xs, n = sorted(raw), len(raw)
    median = xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2
    return [max(0, min(MAX_SCORE, MAX_SCORE // 2 + s - median)) for s in raw]


class ScoringRule(Protocol):
    """What a task's ``scoring`` names: ``(adapter, global_params, update, X_val, y_val) -> score``."""

    def __call__(
        self,
        adapter: ModelAdapter,
        global_params: Mapping[str, npt.NDArray[Any]],
        update: DecodedUpdate,
        X_val: npt.ArrayLike,
        y_val: npt.ArrayLike,
        *,
        weight_divisor: int = 1,
    ) -> int: ...


SCORING_RULES: dict[str, ScoringRule] = {
    "accuracy": score_update,
    "relative": score_relative,
    "relative-accuracy": score_update_relative,
    "relative-loss": score_relative_loss,
    "trust": score_trust,
}
"""Validator scoring rules a task config may name."""
