"""CSV loading, Dirichlet splits, the breast-cancer hospitals, standardization."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.exceptions import ConfigError
from fedledger.learning import (
    FeatureStats,
    SklearnLinearAdapter,
    Standardizer,
    breast_cancer_hospitals,
    dirichlet_partition,
    dirichlet_split,
    load_csv_dataset,
    write_csv_dataset,
)


def test_csv_roundtrip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(20, 3)), rng.integers(0, 3, size=20)
    path = write_csv_dataset(tmp_path / "d.csv", X, y, ["a b", "c,d", "e"], "label")
    ds = load_csv_dataset(path, "label")
    assert ds.feature_names == ["a b", "c,d", "e"]
    assert ds.X.tobytes() == X.tobytes()
    np.testing.assert_array_equal(ds.y, y)
    X2, y2, _ = ds  # unpacks
    assert X2.shape == (20, 3) and y2.dtype == np.int64


def test_label_column_anywhere(tmp_path: Path) -> None:
    p = tmp_path / "d.csv"
    p.write_text("label,x,y\n1,0.5,2\n0,1.5,3\n\n")
    ds = load_csv_dataset(p, "label")
    np.testing.assert_array_equal(ds.X, [[0.5, 2], [1.5, 3]])
    np.testing.assert_array_equal(ds.y, [1, 0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("x,y\n1,0\n", "no label column 'label'"),
        ("x,label\n", "no data rows"),
        ("x,label\n1,0\n2\n", r"d\.csv:3: 1 fields, header has 2"),
        ("x,label\n1,0\nabc,1\n", r"d\.csv:3: non-numeric value 'abc'"),
        ("x,label\n1,0.5\n", r"d\.csv:2: label '0.5'"),
        ("x,label\nnan,1\n", r"d\.csv:2: NaN or Inf"),
        ("x,x,label\n1,2,0\n", "duplicate column"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "d.csv"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_csv_dataset(p, "label")


def test_missing_csv(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.csv"):
        load_csv_dataset(tmp_path / "nope.csv", "label")


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.floats(0.05, 10.0), st.integers(0, 2**32 - 1))
def test_dirichlet_partition_is_a_partition_with_minimums(n_parts: int, alpha: float, seed: int) -> None:
    y = np.repeat(np.arange(3), [40, 25, 60])
    parts = dirichlet_partition(y, n_parts, alpha, seed, min_per_class=2)
    allidx = np.concatenate(parts)
    assert sorted(allidx.tolist()) == list(range(len(y)))
    for p in parts:
        assert np.all(np.bincount(y[p], minlength=3) >= 2)
        assert np.all(np.diff(p) > 0)
    again = dirichlet_partition(y, n_parts, alpha, seed, min_per_class=2)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))


def test_dirichlet_small_alpha_is_skewed_and_errors() -> None:
    y = np.repeat([0, 1], 500)
    parts = dirichlet_split(np.arange(1000)[:, None], y, 4, 0.1, seed=3, min_per_class=0)
    fractions = [float(np.mean(py)) for _, py in parts if len(py)]
    assert max(fractions) - min(fractions) > 0.3
    with pytest.raises(ValueError, match="fewer than 2"):
        dirichlet_partition(np.array([0, 0, 1]), 2, 1.0, 0)


def test_breast_cancer_hospitals(tmp_path: Path) -> None:
    split = breast_cancer_hospitals(tmp_path, n_hospitals=4, alpha=0.5, seed=1)
    assert [p.name for p in split.hospitals] == [f"hospital_{i}.csv" for i in range(1, 5)]
    assert split.test.name == "test.csv" and split.label_column == "diagnosis"
    loaded = [load_csv_dataset(p, "diagnosis") for p in split.hospitals]
    test = load_csv_dataset(split.test, "diagnosis")
    assert sum(len(d.y) for d in loaded) + len(test.y) == 569
    assert all(d.feature_names == split.feature_names and len(d.feature_names) == 30 for d in loaded)
    assert all(set(d.y.tolist()) == {0, 1} for d in loaded)
    assert 100 <= len(test.y) <= 120
    # Same seed, same files.
    again = breast_cancer_hospitals(tmp_path / "again", n_hospitals=4, alpha=0.5, seed=1)
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(split.hospitals, again.hospitals, strict=True))

    # Pooled statistics from per-hospital stats equal the statistics of the pooled rows.
    pooled = FeatureStats.combine(FeatureStats.of(d.X) for d in loaded)
    all_x = np.vstack([d.X for d in loaded])
    np.testing.assert_allclose(pooled.mean, all_x.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(pooled.std, all_x.std(axis=0), rtol=1e-8)
    scaler = Standardizer.from_stats(pooled)
    model = SklearnLinearAdapter(30, 2)
    model.fit(scaler.transform(all_x), np.concatenate([d.y for d in loaded]), epochs=5)
    assert model.evaluate(scaler.transform(test.X), test.y) > 0.9


def test_standardizer() -> None:
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Standardizer.fit(X)
    np.testing.assert_array_equal(s.transform(X), [[-1.0, 0.0], [1.0, 0.0]])  # constant column only centred
    assert Standardizer.from_dict(s.to_dict()).transform(X).tolist() == s.transform(X).tolist()
    st_ = FeatureStats.of(X)
    assert FeatureStats.from_dict(st_.to_dict()).count == 2
