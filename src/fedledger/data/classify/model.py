"""The column classifier: a scikit-learn model over column features, retrained locally with the organization's labels.

What ships is not a fitted model but the labeled corpus's feature matrix (``corpus.npz``, built reproducibly by
``benchmarks/pii_corpus.py`` from generated tables; ``benchmarks/pii_classification.py`` measures it on tables it
was not built from): loading fits the model deterministically (fixed seed, no subsampling), so nothing
executable is deserialized (no pickle) and the organization's own labels join the same fit, weighted
:data:`ORG_LABEL_WEIGHT` times a corpus column so a handful of them outweigh the generic corpus where they apply.
Fitted models are cached per process, keyed by the corpus and label contents.

The estimator is an ensemble of extremely randomized trees (``ExtraTreesClassifier``), wrapped in
``CalibratedClassifierCV`` (Platt sigmoid, 3-fold; Platt 1999, Niculescu-Mizil & Caruana 2005) so the reported
confidence is a calibrated probability rather than a raw tree vote. Evidence is chosen by occlusion: each feature in
turn is set to its corpus median and the drop in the predicted class's probability measures how much that feature
drove the decision (Zeiler & Fergus 2014's occlusion idea applied to tabular features).

:meth:`ColumnClassifier.classify` takes the columns of one table together: each column's features include what the
table's other columns are about (:func:`.features.table_features`), which decides columns whose header is a code
only the table's author knows.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.data.classify.features import FEATURE_NAMES, FEATURE_VERSION, ColumnProfile, table_features
from fedledger.data.classify.features import describe_feature as _describe
from fedledger.exceptions import ConfigError

__all__ = ["CLASSES", "CORPUS_PATH", "ORG_LABEL_WEIGHT", "ColumnClassifier", "Prediction"]

CLASSES: tuple[str, ...] = ("identifier", "quasi_identifier", "sensitive", "other")
CORPUS_PATH = Path(__file__).with_name("corpus.npz")
ORG_LABEL_WEIGHT = 30.0
SEED = 0
MAX_EVIDENCE = 4
# A feature "drove" the decision when hiding it costs the predicted class at least this much probability.
EVIDENCE_MIN_DROP = 0.01

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Prediction:
    """A column's class with its calibrated probability, every class's probability, and why."""

    label: str
    confidence: float
    probabilities: dict[str, float]
    evidence: list[str] = field(default_factory=list)


def _estimator() -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.ensemble import ExtraTreesClassifier

    # Extremely randomized trees (Geurts et al. 2006): fast enough to refit at every load (about a second).
    trees = ExtraTreesClassifier(n_estimators=100, class_weight="balanced", random_state=SEED, n_jobs=1)
    return CalibratedClassifierCV(trees, method="sigmoid", cv=3)


class ColumnClassifier:
    """Classifies column profiles into :data:`CLASSES`; build with :meth:`fit` or :meth:`load`."""

    def __init__(self, estimator: Any, baseline: FloatArray, *, corpus_columns: int, org_labels: int) -> None:
        self._estimator = estimator
        self._baseline = baseline
        self.corpus_columns = corpus_columns
        self.org_labels = org_labels

    @classmethod
    def fit(
        cls,
        features: FloatArray,
        labels: npt.NDArray[np.int64],
        *,
        sample_weight: FloatArray | None = None,
        org_labels: int = 0,
    ) -> ColumnClassifier:
        """Fit on a feature matrix (layout ``FEATURE_NAMES``) and class indices into :data:`CLASSES`."""
        if features.ndim != 2 or features.shape[1] != len(FEATURE_NAMES):
            raise ConfigError(f"feature matrix has shape {features.shape}, expected (n, {len(FEATURE_NAMES)})")
        missing = sorted(set(range(len(CLASSES))) - set(labels.tolist()))
        if missing:
            raise ConfigError(f"training labels lack class(es) {[CLASSES[i] for i in missing]}")
        estimator = _estimator()
        estimator.fit(features, labels, sample_weight=sample_weight)
        baseline = np.median(features[: len(features) - org_labels], axis=0)
        return cls(estimator, baseline, corpus_columns=len(features) - org_labels, org_labels=org_labels)

    @classmethod
    def load(
        cls, *, org_labels: Sequence[tuple[Sequence[float], str]] = (), corpus: Path = CORPUS_PATH
    ) -> ColumnClassifier:
        """The shipped corpus plus the organization's (features, class) labels, fitted once per process."""
        digest = hashlib.sha256(Path(corpus).read_bytes() if Path(corpus).exists() else b"")
        for vector, label in org_labels:
            digest.update(np.asarray(vector, dtype=np.float64).tobytes() + label.encode())
        key = digest.hexdigest()
        with _CACHE_LOCK:
            if key not in _CACHE:
                _CACHE[key] = cls._load_uncached(org_labels, Path(corpus))
            return _CACHE[key]

    @classmethod
    def _load_uncached(cls, org_labels: Sequence[tuple[Sequence[float], str]], corpus: Path) -> ColumnClassifier:
        try:
            with np.load(corpus, allow_pickle=False) as data:
                version = str(data["feature_version"])
                features = data["features"].astype(np.float64)
                labels = data["labels"].astype(np.int64)
                classes = tuple(str(c) for c in data["classes"])
        except FileNotFoundError:
            raise ConfigError(f"classifier corpus {corpus} is missing (run benchmarks/pii_corpus.py)") from None
        except (OSError, KeyError, ValueError) as exc:
            raise ConfigError(f"classifier corpus {corpus} is unreadable: {exc}") from exc
        if version != FEATURE_VERSION or classes != CLASSES:
            raise ConfigError(
                f"classifier corpus {corpus} was built for feature layout {version}, this code uses "
                f"{FEATURE_VERSION}: rebuild it with benchmarks/pii_corpus.py"
            )
        weights = np.ones(len(labels))
        if org_labels:
            extra = np.array([list(vector) for vector, _ in org_labels], dtype=np.float64)
            features = np.vstack([features, extra])
            labels = np.concatenate([labels, [CLASSES.index(label) for _, label in org_labels]])
            weights = np.concatenate([weights, np.full(len(org_labels), ORG_LABEL_WEIGHT)])
        return cls.fit(features, labels, sample_weight=weights, org_labels=len(org_labels))

    def probabilities(self, features: FloatArray) -> FloatArray:
        """Class probabilities, one row per feature vector, columns in :data:`CLASSES` order."""
        proba: FloatArray = self._estimator.predict_proba(np.atleast_2d(features))
        return proba

    def classify(self, profiles: Sequence[ColumnProfile]) -> list[Prediction]:
        """Class, calibrated confidence and evidence for each column of one table (all its columns, for context)."""
        if not profiles:
            return []
        matrix = table_features(profiles)
        # Row 0 of each block: the column as it is; row i + 1: its feature i replaced by the corpus median
        # (occlusion). All columns' blocks go through the forest in one call: per-call overhead dominates.
        changed = [np.flatnonzero(vector != self._baseline) for vector in matrix]
        blocks = []
        for vector, features in zip(matrix, changed, strict=True):
            occluded = np.repeat(vector[None, :], len(features) + 1, axis=0)
            occluded[np.arange(1, len(features) + 1), features] = self._baseline[features]
            blocks.append(occluded)
        proba = self.probabilities(np.vstack(blocks))
        bounds = np.cumsum([0] + [len(block) for block in blocks])
        return [
            self._explain(profile, vector, features, proba[start:end])
            for profile, vector, features, start, end in zip(
                profiles, matrix, changed, bounds[:-1], bounds[1:], strict=True
            )
        ]

    def _explain(
        self, profile: ColumnProfile, vector: FloatArray, changed: npt.NDArray[np.intp], proba: FloatArray
    ) -> Prediction:
        best = int(np.argmax(proba[0]))
        drops = proba[0, best] - proba[1:, best]
        # Redundant signals (a card column is also unique per row) each cost little when hidden alone, so the
        # direct observations (a validator accepting most values, a header keyword) go first whenever they
        # support the decision at all; the rest follow by how much hiding them costs.
        names = [FEATURE_NAMES[j] for j in changed]
        direct = np.array(
            [
                (n.startswith("values:") and vector[j] >= 0.5) or n.startswith("header:")
                for n, j in zip(names, changed, strict=True)
            ]
        )
        supports = drops > 0
        priority = drops + (direct & supports)
        evidence: list[str] = []
        for i in np.argsort(-priority, kind="stable"):
            if not (drops[i] >= EVIDENCE_MIN_DROP or (direct[i] and supports[i])) or len(evidence) == MAX_EVIDENCE:
                break
            sentence = _describe(FEATURE_NAMES[changed[i]], float(vector[changed[i]]), profile)
            if sentence and sentence not in evidence:
                evidence.append(sentence)
        if not profile.sample:
            evidence.append(
                "header only: the file has no rows" if profile.rows == 0 else f"all {profile.rows} values are empty"
            )
        if not evidence:
            evidence.append("no single feature dominated; decided by the combined value statistics")
        return Prediction(
            label=CLASSES[best],
            confidence=float(proba[0, best]),
            probabilities={cls: round(float(p), 4) for cls, p in zip(CLASSES, proba[0], strict=True)},
            evidence=evidence,
        )


_CACHE: dict[str, ColumnClassifier] = {}
_CACHE_LOCK = threading.Lock()
