"""Anonymization building blocks: Mondrian k-anonymity over generalization hierarchies, l-diversity and
t-closeness measures, keyed pseudonyms and format-preserving tokens.

:mod:`fedledger.data.protect` composes them into the ``fedledger data protect`` pipeline.
"""

from __future__ import annotations

from fedledger.data.anonymize._hierarchy import MISSING, ROOT, Hierarchy, auto_hierarchy
from fedledger.data.anonymize._metrics import (
    distinct_l_diversity,
    emd_to_distribution,
    entropy_l_diversity,
    equivalence_classes,
    k_anonymity,
    sensitive_histogram,
    t_closeness,
)
from fedledger.data.anonymize._mondrian import (
    CategoricalQI,
    Constraints,
    NumericQI,
    Partitioning,
    SensitiveAttribute,
    SplitMode,
    format_number,
    mondrian,
)
from fedledger.data.anonymize._pseudonym import (
    ALPHABETS,
    DEFAULT_PSEUDONYM_LENGTH,
    AlphabetName,
    Tokenizer,
    canonical_text,
    pseudonymize,
)

__all__ = [
    "ALPHABETS",
    "DEFAULT_PSEUDONYM_LENGTH",
    "MISSING",
    "ROOT",
    "AlphabetName",
    "CategoricalQI",
    "Constraints",
    "Hierarchy",
    "NumericQI",
    "Partitioning",
    "SensitiveAttribute",
    "SplitMode",
    "Tokenizer",
    "auto_hierarchy",
    "canonical_text",
    "distinct_l_diversity",
    "emd_to_distribution",
    "entropy_l_diversity",
    "equivalence_classes",
    "format_number",
    "k_anonymity",
    "mondrian",
    "pseudonymize",
    "sensitive_histogram",
    "t_closeness",
]
