"""Column classification: which columns of a table identify people, narrow them down, or reveal sensitive facts.

Each column is classified as ``identifier`` (direct PII: names, emails, phones, national ids, card and account
numbers, addresses), ``quasi_identifier`` (age, birth date, postcode, sex, occupation...: identifying in
combination), ``sensitive`` (health, income, religion, location traces...) or ``other``, with a calibrated
confidence and the evidence that drove it. See :mod:`.model` for the classifier and :mod:`.scan` for streaming
large files.
"""

from __future__ import annotations

from fedledger.data.classify.features import FEATURE_NAMES, FEATURE_VERSION, ColumnProfile, column_features
from fedledger.data.classify.labels import LabeledColumn, LabelStore
from fedledger.data.classify.model import CLASSES, ColumnClassifier, Prediction
from fedledger.data.classify.scan import ColumnReport, ScanReport, profile_table, scan_table

__all__ = [
    "CLASSES",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "ColumnClassifier",
    "ColumnProfile",
    "ColumnReport",
    "LabelStore",
    "LabeledColumn",
    "Prediction",
    "ScanReport",
    "column_features",
    "profile_table",
    "scan_table",
]
