"""Column features: what the classifier sees of a column, and how each feature reads as evidence.

A column is summarized by a :class:`ColumnProfile` (its header, exact row and null counts over the whole file, and
a uniform sample of its non-empty values as text). :func:`column_features` turns a profile into a fixed-length
vector: header lexicon groups, the fraction of sampled values each validator accepts, cardinality and entropy,
numeric and string statistics. The vector's layout is :data:`FEATURE_NAMES`; :data:`FEATURE_VERSION` hashes it so a
stored feature matrix from another layout is refused instead of silently misread.

:func:`describe_feature` turns one feature's value into a sentence ("94 % of values are valid emails"); the
classifier picks which sentences to show by occlusion (how much the predicted class's probability drops when the
feature is set to its typical value), so the evidence is what actually drove the decision.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedledger.data.classify.lexicon import LEXICON, is_meaningless, match_header, tokens
from fedledger.data.classify.validators import VALIDATORS, birth_year

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "ColumnProfile",
    "column_features",
    "describe_feature",
]

# Validators run on at most this many sampled values (phone validation costs ~20 us a value).
VALIDATION_SAMPLE = 400
_BOOLEAN_WORDS = frozenset(
    [
        "true",
        "false",
        "yes",
        "no",
        "y",
        "n",
        "t",
        "f",
        "0",
        "1",
        "ja",
        "nein",
        "oui",
        "non",
        "si",
        "sim",
        "nao",
    ]
)
_TITLE_WORD = re.compile(r"^[^\W\d_][^\W\d_'.\-]*\.?$")
_DIGITS = re.compile(r"\d")

_STAT_FEATURES = (
    "header_meaningless",
    "header_tokens",
    "null_ratio",
    "distinct_ratio",
    "unique_per_row",
    "entropy",
    "log_distinct",
    "top_value_share",
    "log_rows_sampled",
    "integer_share",
    "float_share",
    "boolean_share",
    "age_like_share",
    "unit_interval_share",
    "sequential",
    "log_abs_mean",
    "log_std",
    "negative_share",
    "mean_length",
    "length_std",
    "letters_only_share",
    "digit_share",
    "has_space_share",
    "title_words_share",
    "mean_words",
    "non_latin_share",
    "upper_share",
    "birth_year_spread",
)
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"header:{group}" for group in LEXICON) + tuple(f"values:{name}" for name in VALIDATORS) + _STAT_FEATURES
)
FEATURE_VERSION = hashlib.sha256("\n".join(FEATURE_NAMES).encode()).hexdigest()[:16]
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}


@dataclass
class ColumnProfile:
    """One column as the classifier sees it: exact counts over the file, a sample of its non-empty values."""

    name: str
    rows: int
    nulls: int
    sample: list[str] = field(default_factory=list)

    @property
    def null_ratio(self) -> float:
        return self.nulls / self.rows if self.rows else 1.0


def _share(flags: Sequence[bool]) -> float:
    return sum(flags) / len(flags) if flags else 0.0


def _signed_log(x: float) -> float:
    return math.copysign(math.log1p(abs(x)), x)


def _numbers(values: Sequence[str]) -> list[float]:
    out = []
    for v in values:
        try:
            number = float(v)
        except ValueError:
            continue
        if math.isfinite(number):
            out.append(number)
    return out


def column_features(profile: ColumnProfile) -> npt.NDArray[np.float64]:
    """The feature vector (layout :data:`FEATURE_NAMES`) of one column."""
    vec = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    for group in match_header(profile.name):
        vec[_INDEX[f"header:{group}"]] = 1.0
    vec[_INDEX["header_meaningless"]] = float(is_meaningless(profile.name))
    vec[_INDEX["header_tokens"]] = len(tokens(profile.name))
    vec[_INDEX["null_ratio"]] = profile.null_ratio
    values = [v.strip() for v in profile.sample if v is not None and v.strip()]
    if not values:
        return vec
    checked = values[:VALIDATION_SAMPLE]
    for name, (predicate, _) in VALIDATORS.items():
        vec[_INDEX[f"values:{name}"]] = _share([predicate(v) for v in checked])

    counts = Counter(values)
    n = len(values)
    distinct = len(counts)
    vec[_INDEX["distinct_ratio"]] = distinct / n
    vec[_INDEX["unique_per_row"]] = float(distinct == n and n >= 20)
    probabilities = np.array(list(counts.values()), dtype=np.float64) / n
    vec[_INDEX["entropy"]] = float(-(probabilities * np.log2(probabilities)).sum() / math.log2(n)) if n > 1 else 0.0
    vec[_INDEX["log_distinct"]] = math.log1p(distinct)
    vec[_INDEX["top_value_share"]] = counts.most_common(1)[0][1] / n
    vec[_INDEX["log_rows_sampled"]] = math.log1p(n)

    numbers = _numbers(values)
    numeric_share = len(numbers) / n
    integers = [x for x in numbers if x == int(x) and "." not in str(x).rstrip("0").rstrip(".")]
    vec[_INDEX["integer_share"]] = len(integers) / n
    vec[_INDEX["float_share"]] = numeric_share - len(integers) / n
    vec[_INDEX["boolean_share"]] = _share([v.lower() in _BOOLEAN_WORDS for v in values]) * float(distinct <= 3)
    if numbers:
        arr = np.array(numbers)
        vec[_INDEX["age_like_share"]] = _share([x == int(x) and 0 <= x <= 110 for x in numbers]) * numeric_share
        vec[_INDEX["unit_interval_share"]] = float(((arr >= 0) & (arr <= 1)).mean()) * numeric_share
        unique_sorted = np.unique(arr)
        vec[_INDEX["sequential"]] = float(
            len(integers) == n
            and len(unique_sorted) == n
            and n >= 20
            and (unique_sorted.max() - unique_sorted.min()) <= 1.2 * n
        )
        vec[_INDEX["log_abs_mean"]] = _signed_log(float(arr.mean()))
        vec[_INDEX["log_std"]] = math.log1p(float(arr.std()))
        vec[_INDEX["negative_share"]] = float((arr < 0).mean()) * numeric_share

    lengths = np.array([len(v) for v in values], dtype=np.float64)
    vec[_INDEX["mean_length"]] = math.log1p(float(lengths.mean()))
    vec[_INDEX["length_std"]] = math.log1p(float(lengths.std()))
    vec[_INDEX["letters_only_share"]] = _share([v.replace(" ", "").isalpha() for v in values])
    vec[_INDEX["digit_share"]] = _share([bool(_DIGITS.search(v)) for v in values])
    vec[_INDEX["has_space_share"]] = _share([" " in v for v in values])
    words = [v.split() for v in values]
    vec[_INDEX["title_words_share"]] = _share(
        [bool(ws) and all(_TITLE_WORD.match(w) and w[0].isupper() for w in ws) for ws in words]
    )
    vec[_INDEX["mean_words"]] = float(np.mean([len(ws) for ws in words]))
    vec[_INDEX["non_latin_share"]] = _share([any(ord(c) > 0x24F and c.isalpha() for c in v) for v in values])
    vec[_INDEX["upper_share"]] = _share([v.isupper() for v in values])
    years = [y for y in (birth_year(v) for v in checked) if y is not None]
    vec[_INDEX["birth_year_spread"]] = float(np.std(years)) / 30.0 if len(years) >= 5 else 0.0
    return vec


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


def describe_feature(name: str, value: float, profile: ColumnProfile) -> str | None:
    """A sentence for one feature's value, or None when the value is not worth saying."""
    if name.startswith("header:"):
        if not value:
            return None
        fragment = match_header(profile.name).get(name.removeprefix("header:"), name)
        return f"header matches '{fragment}'"
    if name.startswith("values:"):
        if value < 0.05:
            return f"no values are {VALIDATORS[name.removeprefix('values:')][1]}"
        return f"{_pct(value)} of values are {VALIDATORS[name.removeprefix('values:')][1]}"
    sample = len(profile.sample)
    phrases = {
        "header_meaningless": "header carries no meaning; decided from the values" if value else None,
        "null_ratio": f"{_pct(value)} of rows are empty",
        "distinct_ratio": f"{_pct(value)} of sampled values are distinct",
        "unique_per_row": "unique per row" if value else "values repeat across rows",
        "entropy": f"value entropy {value:.2f} of the maximum",
        "log_distinct": f"{round(math.expm1(value))} distinct values in the sample",
        "top_value_share": f"the most common value covers {_pct(value)} of rows",
        "integer_share": f"{_pct(value)} of values are integers",
        "float_share": f"{_pct(value)} of values are decimals",
        "boolean_share": f"{_pct(value)} of values are yes/no flags" if value else None,
        "age_like_share": f"{_pct(value)} of values are whole numbers in 0-110 (age-like)",
        "unit_interval_share": f"{_pct(value)} of values lie in [0, 1]",
        "sequential": "a running row number (consecutive integers)" if value else None,
        "mean_length": f"values are {math.expm1(value):.0f} characters long on average",
        "letters_only_share": f"{_pct(value)} of values are letters only",
        "digit_share": f"{_pct(value)} of values contain digits",
        "has_space_share": f"{_pct(value)} of values contain spaces",
        "title_words_share": f"{_pct(value)} of values are capitalized words (like names or places)",
        "mean_words": f"{value:.1f} words per value on average",
        "non_latin_share": f"{_pct(value)} of values are in a non-Latin script" if value else None,
        "birth_year_spread": "dates spread over decades, like birth dates" if value > 0.3 else None,
    }
    if sample == 0 and name not in ("header_meaningless", "null_ratio"):
        return None
    return phrases.get(name)
