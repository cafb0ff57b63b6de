"""Model adapters: params round trip, warm-started deterministic training, export, build_model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedledger.exceptions import ConfigError
from fedledger.learning import (
    ModelAdapter,
    SklearnLinearAdapter,
    SklearnMLPAdapter,
    build_model,
    load_sklearn_export,
    shape_spec,
)
from fedledger.learning.metrics import predict_proba


def blobs(n_classes: int, n: int = 300, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(n_classes, d))
    y = rng.integers(0, n_classes, size=n)
    return centers[y] + rng.normal(size=(n, d)), y


SKLEARN_SPECS: list[dict[str, Any]] = [
    {"kind": "sklearn-logreg", "n_features": 6, "n_classes": 2},
    {"kind": "sklearn-logreg", "n_features": 6, "n_classes": 3},
    {"kind": "sklearn-sgd", "n_features": 6, "n_classes": 2, "seed": 3},
    {"kind": "sklearn-sgd", "n_features": 6, "n_classes": 4},
    {"kind": "sklearn-mlp", "n_features": 6, "n_classes": 2, "hidden": [8], "learning_rate_init": 0.01},
    {"kind": "sklearn-mlp", "n_features": 6, "n_classes": 3, "hidden": [8, 4], "learning_rate_init": 0.01},
]


@pytest.fixture(params=SKLEARN_SPECS, ids=lambda s: f"{s['kind']}-{s['n_classes']}")
def spec(request: pytest.FixtureRequest) -> dict[str, Any]:
    return dict(request.param)


def test_adapter_protocol_and_spec_roundtrip(spec: dict[str, Any]) -> None:
    model = build_model(spec)
    assert isinstance(model, ModelAdapter)
    assert json.loads(json.dumps(model.spec)) == model.spec
    again = build_model(model.spec)
    assert again.spec == model.spec
    for k, v in model.get_params().items():
        assert v.dtype == np.float32
        np.testing.assert_array_equal(again.get_params()[k], v)  # same seed, same initial params


def test_training_learns_and_is_deterministic(spec: dict[str, Any]) -> None:
    X, y = blobs(spec["n_classes"])
    a, b = build_model(spec), build_model(spec)
    a.fit(X, y, epochs=5, seed=11)
    b.fit(X, y, epochs=5, seed=11)
    assert a.evaluate(X, y) > 0.85
    for k, v in a.get_params().items():
        assert v.tobytes() == b.get_params()[k].tobytes()
    assert a.predict(X).dtype == np.int64
    # Class probabilities, as validation-loss scoring reads them: a distribution per row, its mode the prediction.
    proba = predict_proba(a, X)
    assert proba.shape == (len(y), spec["n_classes"]) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), a.predict(X))


def test_training_continues_from_set_params(spec: dict[str, Any]) -> None:
    X, y = blobs(spec["n_classes"])
    trained = build_model(spec)
    trained.fit(X, y, epochs=5)
    fresh = build_model(spec)
    fresh.set_params(trained.get_params())
    assert fresh.evaluate(X, y) == trained.evaluate(X, y)
    before = fresh.evaluate(X, y)
    fresh.fit(X, y, epochs=1)
    # One more epoch from trained params stays good: training started from them, not from scratch.
    assert fresh.evaluate(X, y) >= before - 0.05


def test_training_with_missing_classes_keeps_the_shape(spec: dict[str, Any]) -> None:
    X, y = blobs(spec["n_classes"])
    model = build_model(spec)
    shapes = shape_spec(model.get_params())
    only = y == 0
    model.fit(X[only], y[only], epochs=2)
    assert shape_spec(model.get_params()) == shapes


def test_set_params_checks_names_and_shapes(spec: dict[str, Any]) -> None:
    model = build_model(spec)
    params = model.get_params()
    name = sorted(params)[0]
    with pytest.raises(ValueError, match="missing"):
        model.set_params({k: v for k, v in params.items() if k != name})
    with pytest.raises(ValueError, match="shape"):
        model.set_params({**params, name: np.zeros((*params[name].shape, 1), np.float32)})


def test_bad_inputs(spec: dict[str, Any]) -> None:
    model = build_model(spec)
    X, y = blobs(spec["n_classes"])
    with pytest.raises(ValueError, match="shape"):
        model.fit(X[:, :3], y)
    with pytest.raises(ValueError, match="labels"):
        model.fit(X, y + 10)


def test_sklearn_export_is_pickle_free_and_reloads(spec: dict[str, Any], tmp_path: Path) -> None:
    X, y = blobs(spec["n_classes"])
    model = build_model(spec)
    model.fit(X, y, epochs=3)
    path = model.export(tmp_path / "model.json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "fedledger-sklearn-json/1"
    est = load_sklearn_export(path)
    np.testing.assert_array_equal(est.predict(X), model.predict(X))


def test_linear_param_names_and_shapes() -> None:
    assert shape_spec(SklearnLinearAdapter(30, 2).get_params()) == {"coef": (1, 30), "intercept": (1,)}
    assert shape_spec(SklearnLinearAdapter(4, 3).get_params()) == {"coef": (3, 4), "intercept": (3,)}
    mlp = SklearnMLPAdapter(4, 3, hidden=(5,))
    assert shape_spec(mlp.get_params()) == {
        "coefs.0": (4, 5),
        "coefs.1": (5, 3),
        "intercepts.0": (5,),
        "intercepts.1": (3,),
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kind": "nope", "n_features": 1, "n_classes": 2}, "unknown model kind"),
        ({"kind": "sklearn-logreg", "n_classes": 2}, "missing 'n_features'"),
        ({"kind": "sklearn-logreg", "n_features": 3, "n_classes": 2, "bogus": 1}, "bogus"),
        ({"kind": "sklearn-mlp", "n_features": 3, "n_classes": 2, "solver": "lbfgs"}, "solver"),
        ({"kind": "torch", "n_features": 3, "n_classes": 2, "factory": "no-colon"}, "invalid model spec"),
    ],
)
def test_build_model_errors(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_model(spec)


# -- torch (optional) --------------------------------------------------------------


def test_torch_adapter(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    spec = {"kind": "torch-mlp", "n_features": 6, "n_classes": 3, "hidden": [16], "lr": 0.1, "seed": 2}
    X, y = blobs(3)
    a, b = build_model(spec), build_model(spec)
    assert isinstance(a, ModelAdapter)
    assert a.spec == spec
    state = torch.random.get_rng_state()
    a.fit(X, y, epochs=5, seed=4)
    b.fit(X, y, epochs=5, seed=4)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's RNG is untouched
    assert a.evaluate(X, y) > 0.85
    for k, v in a.get_params().items():
        assert v.dtype == np.float32 and v.tobytes() == b.get_params()[k].tobytes()
    assert shape_spec(a.get_params()) == {
        "0.bias": (16,),
        "0.weight": (16, 6),
        "2.bias": (3,),
        "2.weight": (3, 16),
    }
    c = build_model(spec)
    c.set_params(a.get_params())
    np.testing.assert_array_equal(c.predict(X), a.predict(X))
    proba = predict_proba(a, X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(proba.argmax(axis=1), a.predict(X))
    from safetensors.torch import load_file

    path = a.export(tmp_path / "model.safetensors")
    module = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    module.load_state_dict(load_file(str(path)))
    with torch.no_grad():
        native = module(torch.from_numpy(X.astype(np.float32))).argmax(dim=1).numpy()
    np.testing.assert_array_equal(native, a.predict(X))


def test_torch_factory_spec() -> None:
    pytest.importorskip("torch")
    spec = {
        "kind": "torch",
        "n_features": 6,
        "n_classes": 2,
        "factory": "fedledger.learning:torch_mlp",
        "kwargs": {"n_features": 6, "n_classes": 2, "hidden": [4]},
        "lr": 0.05,
    }
    model = build_model(spec)
    X, y = blobs(2)
    model.fit(X, y, epochs=3)
    assert model.evaluate(X, y) > 0.8
    assert build_model(model.spec).spec == model.spec
