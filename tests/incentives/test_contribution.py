"""Contribution measurement: the rules every method follows, on real heart-disease rounds where it matters.

The real-data tests train the four UCI heart-disease hospitals (``../shared/data``, prepared with the worked
example's recipe) with scikit-learn logistic regression, and skip when the data is absent.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import REPO, SHARED_DATA
from fedledger.data import Recipe, prepare
from fedledger.exceptions import BadInput
from fedledger.incentives import (
    BASIS_POINTS,
    CONTRIBUTION_METHODS,
    DEFAULT_CONTRIBUTION_METHOD,
    EXACT_SHAPLEY_MAX_UPDATES,
    ContributionMethod,
    ContributionSettings,
    RoundGame,
    TooManyUpdates,
    ValueMetric,
    basis_points,
    class_probabilities,
    coalition_value,
    delta_matrix,
    exact_shapley,
    gtg_shapley,
    measure_round,
    players_of,
    round_seed,
    validation_metric,
)
from fedledger.learning import DecodedUpdate, Params, build_model, params_delta, train_val_split
from fedledger.learning.metrics import predict_proba

HEART = SHARED_DATA / "heart-disease"
HEART_FILES = ["cleveland", "hungarian", "switzerland", "va"]
HEART_RECIPE = REPO / "examples" / "heart-disease" / "recipe.toml"
METHODS = list(ContributionMethod)
Rows = tuple[np.ndarray, np.ndarray]


class Heart:
    """The four hospitals' training rows, and one validator holding a share of every hospital's rows."""

    def __init__(self) -> None:
        recipe = Recipe.load(HEART_RECIPE)
        paths = [HEART / f"processed.{name}.data" for name in HEART_FILES]
        recipe = recipe.with_stats(np.asarray(sum(recipe.local_stats(p) for p in paths)))
        self.train: list[Rows] = []
        val: list[Rows] = []
        for k, path in enumerate(paths):
            data = prepare(recipe, path)
            X_tr, y_tr, X_val, y_val = train_val_split(data.X, data.y, val_fraction=0.3, seed=k)
            self.train.append((X_tr, y_tr))
            val.append((X_val, y_val))
        self.X_val = np.concatenate([x for x, _ in val])
        self.y_val = np.concatenate([y for _, y in val])
        self.spec = {"kind": "sklearn-logreg", "n_features": self.X_val.shape[1], "n_classes": 2, "seed": 0,
                     "C": 1.0, "iters_per_epoch": 5}  # fmt: skip

    def initial(self) -> Params:
        return build_model(self.spec).get_params()

    def deltas(self, global_params: Params, trainers: Sequence[Rows], round_id: int) -> list[Params]:
        out = []
        for k, (X, y) in enumerate(trainers):
            model = build_model(self.spec)
            model.set_params(global_params)
            model.fit(X, y, epochs=1, seed=round_id * 10 + k)
            out.append(params_delta(model.get_params(), global_params))
        return out

    def game(self, global_params: Params, deltas: Sequence[Params], seed: int = 0) -> RoundGame:
        metric = validation_metric(build_model(self.spec), self.X_val, self.y_val)
        return RoundGame(delta_matrix(deltas), coalition_value(global_params, deltas, metric), seed)


@pytest.fixture(scope="module")
def heart() -> Heart:
    if not HEART.is_dir():
        pytest.skip("shared heart-disease data not present")
    return Heart()


@pytest.fixture(scope="module")
def first_round(heart: Heart) -> tuple[Params, list[Params]]:
    """Round 1 from the initial model: the four hospitals' honest deltas."""
    initial = heart.initial()
    return initial, heart.deltas(initial, heart.train, 1)


def zero_like(delta: Params) -> Params:
    return {k: np.zeros_like(v) for k, v in delta.items()}


def check_output(shares: list[int], n: int) -> None:
    assert len(shares) == n and all(isinstance(s, int) and 0 <= s <= BASIS_POINTS for s in shares)
    assert sum(shares) in (0, BASIS_POINTS)


# -- the shared rules, every method --------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_honest_hospitals_share_the_round_deterministically(
    heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod
) -> None:
    initial, deltas = first_round
    measure = CONTRIBUTION_METHODS[method]
    shares = measure(heart.game(initial, deltas, seed=7), ContributionSettings())
    check_output(shares, 4)
    assert sum(shares) == BASIS_POINTS  # a first round from scratch gains on every validator
    assert measure(heart.game(initial, deltas, seed=7), ContributionSettings()) == shares


@pytest.mark.parametrize("method", METHODS)
def test_free_riders_get_exactly_zero_and_change_nobody_elses_share(
    heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod
) -> None:
    initial, deltas = first_round
    measure = CONTRIBUTION_METHODS[method]
    honest = measure(heart.game(initial, deltas, seed=3), ContributionSettings())
    tiny = {k: v * 1e-5 for k, v in deltas[0].items()}  # near-zero: a copy of the global model plus rounding
    riding = measure(heart.game(initial, [*deltas, zero_like(deltas[0]), tiny], seed=3), ContributionSettings())
    check_output(riding, 6)
    assert riding[4:] == [0, 0]
    assert riding[:4] == honest


@pytest.mark.parametrize("method", METHODS)
def test_a_copy_of_an_earlier_update_gets_zero_and_the_original_keeps_its_share(
    heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod
) -> None:
    initial, deltas = first_round
    measure = CONTRIBUTION_METHODS[method]
    honest = measure(heart.game(initial, deltas, seed=5), ContributionSettings())
    rng = np.random.default_rng(0)
    near_copy = {k: v + rng.normal(0, 1e-3 * float(np.abs(v).mean()) + 1e-9, v.shape) for k, v in deltas[1].items()}
    copied = measure(heart.game(initial, [*deltas, near_copy], seed=5), ContributionSettings())
    assert copied[4] == 0
    assert copied[:4] == honest


@pytest.mark.parametrize("method", METHODS)
def test_harm_earns_nothing(heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod) -> None:
    initial, deltas = first_round
    flipped = {k: -v for k, v in deltas[0].items()}  # sign flip
    shares = CONTRIBUTION_METHODS[method](heart.game(initial, [*deltas[1:], flipped], seed=1), ContributionSettings())
    check_output(shares, 4)
    assert shares[3] == 0 and sum(shares[:3]) == BASIS_POINTS


@pytest.mark.parametrize("method", METHODS)
def test_inflating_a_declared_example_count_changes_nothing(
    heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod
) -> None:
    initial, deltas = first_round
    metric = validation_metric(build_model(heart.spec), heart.X_val, heart.y_val)

    def updates(counts: Sequence[int]) -> list[DecodedUpdate]:
        return [DecodedUpdate(d, n, "float32", None, {}) for d, n in zip(deltas, counts, strict=True)]

    rows = [len(y) for _, y in heart.train]
    honest = measure_round(method, initial, updates(rows), metric, seed=11)
    for k in range(4):
        inflated = [n * 100 if j == k else n for j, n in enumerate(rows)]
        assert measure_round(method, initial, updates(inflated), metric, seed=11) == honest


@pytest.mark.parametrize("method", [m for m in METHODS if m is not ContributionMethod.CGSV])
def test_a_round_that_gains_nothing_pays_nobody(
    heart: Heart, first_round: tuple[Params, list[Params]], method: ContributionMethod
) -> None:
    initial, deltas = first_round
    game = heart.game(initial, [{k: -v for k, v in d.items()} for d in deltas])  # every update harms the model
    assert game.value(tuple(range(4))) - game.value(()) < 0
    assert CONTRIBUTION_METHODS[method](game, ContributionSettings()) == [0, 0, 0, 0]


# -- the methods ---------------------------------------------------------------------------------------------


def additive_game(weights: Sequence[float]) -> RoundGame:
    """v(S) = sum of the members' weights: every method must give each its weight's share."""
    rng = np.random.default_rng(0)
    deltas = rng.normal(size=(len(weights), 8))
    return RoundGame(deltas, lambda coalition: float(sum(weights[i] for i in coalition)), seed=1)


@pytest.mark.parametrize("method", [m for m in METHODS if m is not ContributionMethod.CGSV])
def test_an_additive_game_gives_each_member_its_own_worth(method: ContributionMethod) -> None:
    shares = CONTRIBUTION_METHODS[method](additive_game([1.0, 2.0, 3.0, 4.0]), ContributionSettings())
    assert shares == [1000, 2000, 3000, 4000]


def test_gtg_shapley_approximates_exact_shapley_on_a_real_round(
    heart: Heart, first_round: tuple[Params, list[Params]]
) -> None:
    initial, deltas = first_round
    exact = np.array(exact_shapley(heart.game(initial, deltas), ContributionSettings()))
    errors = [
        np.abs(np.array(gtg_shapley(heart.game(initial, deltas, seed=seed), ContributionSettings())) - exact).max()
        for seed in range(5)
    ]
    # Monte-Carlo error of about 10n permutations: within 10 points of the round for every seed, 5 on average.
    assert max(errors) <= 1000 and np.mean(errors) <= 500


def test_gtg_shapley_stops_a_permutation_once_the_rest_can_add_nothing() -> None:
    # Any one update gives the whole gain: after the first of each permutation, the rest are not evaluated.
    asked: set[tuple[int, ...]] = set()

    def substitutes(coalition: tuple[int, ...]) -> float:
        asked.add(tuple(sorted(coalition)))
        return 1.0 if coalition else 0.0

    deltas = np.random.default_rng(0).normal(size=(4, 8))
    shares = gtg_shapley(RoundGame(deltas, substitutes, seed=2), ContributionSettings())
    assert shares == [2500, 2500, 2500, 2500]  # guided sampling: each update leads equally often
    assert asked == {(), (0,), (1,), (2,), (3,), (0, 1, 2, 3)}


def test_cgsv_reads_no_validation_data() -> None:
    deltas = np.array([[1.0, 0.0], [1.0, 0.1], [-1.0, 0.0], [0.5, 0.5]])

    def never(coalition: tuple[int, ...]) -> float:
        raise AssertionError("cgsv called v")

    shares = CONTRIBUTION_METHODS[ContributionMethod.CGSV](RoundGame(deltas, never), ContributionSettings())
    assert shares[2] == 0 and shares[0] > shares[3] > 0


def test_exact_shapley_refuses_too_many_updates() -> None:
    n = EXACT_SHAPLEY_MAX_UPDATES + 1
    with pytest.raises(TooManyUpdates, match="at most 12"):
        exact_shapley(additive_game([1.0] * n), ContributionSettings())
    assert issubclass(TooManyUpdates, BadInput)


def test_unknown_method_is_refused_by_name() -> None:
    with pytest.raises(BadInput, match="unknown contribution method 'median'"):
        measure_round("median", {"w": np.zeros(2, np.float32)}, [], lambda params: 0.0, seed=0)


def test_default_method_is_registered() -> None:
    assert DEFAULT_CONTRIBUTION_METHOD in CONTRIBUTION_METHODS


# -- the output and the screening ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "shares"),
    [
        ([1.0, 1.0, 1.0], [3334, 3333, 3333]),  # remainder to the lower index
        ([-1.0, 2.0, 1.0], [0, 6667, 3333]),  # negative values are clipped, not owed
        ([0.0, -2.0], [0, 0]),
        ([], []),
        ([float("nan"), 1.0], [0, 10000]),
    ],
)
def test_basis_points(values: list[float], shares: list[int]) -> None:
    assert basis_points(values) == shares


@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), max_size=30))
def test_basis_points_always_sum_to_the_pool_and_keep_the_order(values: list[float]) -> None:
    shares = basis_points(values)
    assert len(shares) == len(values) and all(0 <= s <= BASIS_POINTS for s in shares)
    assert sum(shares) == (BASIS_POINTS if any(v > 0 for v in values) else 0)
    for i, j in itertools.combinations(range(len(values)), 2):
        if values[i] > values[j]:
            assert shares[i] >= shares[j]
        if values[i] <= 0:
            assert shares[i] == 0


def test_players_leave_out_free_riders_and_later_copies_only() -> None:
    a, b = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    deltas = np.stack([a, np.zeros(3), b, a * 1.0001, 1e-6 * b, a + b, b * 0.5])
    assert players_of(deltas, ContributionSettings()) == (0, 2, 5)


def test_round_seed_is_public_and_order_sensitive() -> None:
    seed = round_seed("0xTask", 3, b"\x01" * 32)
    assert seed == round_seed("0xTask", 3, b"\x01" * 32) and 0 <= seed < 2**64
    assert seed != round_seed("0xTask", 4, b"\x01" * 32) != round_seed(3, "0xTask", b"\x01" * 32)
    assert round_seed("ab", "c") != round_seed("a", "bc")


def test_accuracy_metric_is_a_share(heart: Heart, first_round: tuple[Params, list[Params]]) -> None:
    initial, deltas = first_round
    metric = validation_metric(build_model(heart.spec), heart.X_val, heart.y_val, ValueMetric.ACCURACY)
    value = coalition_value(initial, deltas, metric)
    assert 0.0 <= value(()) <= 1.0 and value((0, 1, 2, 3)) > value(())
    with pytest.raises(BadInput):
        validation_metric(build_model(heart.spec), heart.X_val[:0], heart.y_val[:0])


# -- sybil: one hospital's rows split across two identities ------------------------------------------------------

SYBIL_TOLERANCE = 0.02
"""Two points of the pool: the two halves train on different rows, so their updates, and the permutations GTG
draws for a game of five instead of four, differ from the whole's by chance as well as by design."""


def total_shares(heart: Heart, trainers: Sequence[Rows], rounds: int = 5) -> np.ndarray:
    """Each trainer's share of the pool summed over ``rounds`` FedAvg rounds (by row counts, as the protocol
    aggregates), measured with the default method on the validator's rows."""
    params, totals = heart.initial(), np.zeros(len(trainers))
    rows = np.array([len(y) for _, y in trainers], dtype=np.float64)
    for r in range(1, rounds + 1):
        deltas = heart.deltas(params, trainers, r)
        game = heart.game(params, deltas, seed=round_seed("sybil", r))
        totals += CONTRIBUTION_METHODS[DEFAULT_CONTRIBUTION_METHOD](game, ContributionSettings())
        params = {k: (v + sum(w * d[k] for w, d in zip(rows, deltas, strict=True)) / rows.sum()).astype(np.float32)
                  for k, v in params.items()}  # fmt: skip
    return totals / totals.sum()


@pytest.mark.xfail(
    strict=True,
    reason="Cleveland earns about 43 % of this pool whole and about 61 % as two identities (every method gains, "
    "see benchmarks/results/contribution.md): an update's value has diminishing returns in data, so two halves are "
    "each paid for the cover they give each other, and no method that ignores declared counts can tell two honest "
    "hospitals from one split in two. The defence is the cost of an identity (admission by the consortium's "
    "admins, a stake per member).",
)
def test_splitting_a_hospital_across_two_identities_does_not_raise_its_share(heart: Heart) -> None:
    whole = total_shares(heart, heart.train)
    X, y = heart.train[0]
    order = np.random.default_rng(0).permutation(len(y))
    halves = [(X[order[: len(y) // 2]], y[order[: len(y) // 2]]), (X[order[len(y) // 2 :]], y[order[len(y) // 2 :]])]
    split = total_shares(heart, [*halves, *heart.train[1:]])
    assert split[0] + split[1] <= whole[0] + SYBIL_TOLERANCE


def test_the_default_metric_weighs_each_class_the_same(heart: Heart, first_round: tuple[Params, list[Params]]) -> None:
    initial, deltas = first_round
    params = {k: v + deltas[2][k] for k, v in initial.items()}  # Switzerland's update: 93 % of its rows are positive
    model = build_model(heart.spec)
    model.set_params(params)
    right = predict_proba(model, heart.X_val)[np.arange(len(heart.y_val)), heart.y_val]
    per_class = [float(np.mean(np.log(right[heart.y_val == c]))) for c in (0, 1)]
    balanced = validation_metric(build_model(heart.spec), heart.X_val, heart.y_val)
    plain = validation_metric(build_model(heart.spec), heart.X_val, heart.y_val, ValueMetric.NEG_LOG_LOSS)
    assert balanced(params) == pytest.approx(np.mean(per_class), rel=1e-12)
    assert plain(params) == pytest.approx(float(np.mean(np.log(right))), rel=1e-12)
    assert balanced(params) != pytest.approx(plain(params))  # the split is not balanced


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_regression_probabilities_are_scikit_learns(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    X, y = rng.normal(size=(60, 5)), rng.integers(0, n_classes, 60)
    model = build_model({"kind": "sklearn-logreg", "n_features": 5, "n_classes": n_classes})
    model.fit(X, y, epochs=2)
    direct = class_probabilities(build_model(model.spec))(model.get_params(), X)
    np.testing.assert_allclose(direct, predict_proba(model, X), rtol=0, atol=1e-15)
