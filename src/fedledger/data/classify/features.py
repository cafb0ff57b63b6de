"""Column features: what the classifier sees of a column, and how each feature reads as evidence.

A column is summarized by a :class:`ColumnProfile` (its header, exact row and null counts over the whole file, and
a uniform sample of its non-empty values as text). :func:`column_features` turns a profile into a fixed-length
vector:

* header: the lexicon groups its header matches (:mod:`.lexicon`), whether it is meaningless (``col_7``) or opaque
  (a word the lexicon does not know, like a data set's own abbreviation);
* values: the share of sampled values each validator accepts (emails, Luhn-valid cards, IBANs...), the share that
  are words of a known kind (:data:`.lexicon.VALUE_TERMS`: sex, marital status, religion, diseases, countries...),
  value shapes (blood groups, ``MM/YY`` expiry dates, codes), cardinality, entropy, numeric and string statistics;
* table context: what the *other* columns of the same table are about (the share whose headers speak of health, of
  identity, of network traffic...). An opaque header means different things in a clinical table (a coded finding)
  and in a network log (a connection statistic), and no single column can tell. :func:`table_features` fills these
  from the whole table; :func:`column_features` on a column alone leaves them at "no context".

The vector's layout is :data:`FEATURE_NAMES`; :data:`FEATURE_VERSION` hashes it so a stored feature matrix from
another layout is refused instead of silently misread. :func:`describe_feature` turns one feature's value into a
sentence ("94 % of values are valid emails"); the classifier picks which sentences to show by occlusion.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fedledger.data.classify.lexicon import (
    HEADER_GROUPS,
    VALUE_TERMS,
    is_meaningless,
    match_header,
    match_value_terms,
    tokens,
)
from fedledger.data.classify.validators import VALIDATORS, birth_year

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "ColumnProfile",
    "column_features",
    "describe_feature",
    "table_features",
]

# Validators run on at most this many sampled values (phone validation costs ~20 us a value).
VALIDATION_SAMPLE = 400
# The validators the features use, by name: a validator added elsewhere does not silently change the layout.
VALUE_CHECKS: tuple[tuple[str, str], ...] = (
    ("email", "valid email addresses"),
    ("phone", "valid phone numbers"),
    ("card", "Luhn-valid 13-19-digit card numbers"),
    ("iban", "IBANs with a valid mod-97 checksum"),
    ("national_id", "national id / social security numbers"),
    ("ip", "IPv4/IPv6 addresses"),
    ("mac", "MAC addresses"),
    ("uuid", "UUIDs"),
    ("url", "URLs"),
    ("date", "dates"),
    ("datetime", "timestamps"),
    ("birth_date", "plausible birth dates"),
    ("postcode", "postcode-shaped"),
    ("latlon", "GPS-precision coordinates"),
    ("icd10", "ICD-10 diagnosis codes"),
    ("money", "money amounts with a currency"),
    ("number", "numbers"),
)
TERM_PHRASES = {
    "sex": "words for sex or gender",
    "yes_no": "yes/no words",
    "marital": "marital-status words",
    "religion": "religion words",
    "ethnicity": "words for ethnic origin",
    "education": "education levels",
    "health": "diseases or drugs",
    "status": "workflow status words",
    "country": "country names",
    "region": "region or state names",
}
# Header groups by what they say a table is about, for the table context.
DOMAINS: dict[str, frozenset[str]] = {
    domain: frozenset(groups.split())
    for domain, groups in {
        "identity": "name email phone national_id document card bank_account address username network",
        "demographic": "age birth postcode sex occupation organization geo_area nationality marital education "
        "household",
        "special": "ethnicity religion politics union orientation special",
        "health": "health health_measure",
        "finance": "finance",
        "commerce": "money item status score web text expiry department",
        "tech": "tech quantity count flag statistic",
    }.items()
}

_STAT_FEATURES = (
    "header_meaningless",
    "header_opaque",
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
    "decimal_comma_share",
    "boolean_share",
    "age_like_share",
    "year_like_share",
    "unit_interval_share",
    "small_int_codes",
    "zero_share",
    "sequential",
    "log_abs_mean",
    "log_std",
    "log_max",
    "tail_ratio",
    "negative_share",
    "mean_length",
    "length_std",
    "letters_only_share",
    "digit_share",
    "code_share",
    "has_space_share",
    "title_words_share",
    "mean_words",
    "non_latin_share",
    "upper_share",
    "birth_year_spread",
    "blood_group_share",
    "expiry_share",
    "ratio_pair_share",
    "sentence_share",
)
_CONTEXT_FEATURES = (
    *(f"context:{domain}" for domain in DOMAINS),
    "context:opaque",
    "context:meaningless",
    "context:validated_ids",
    "context:columns",
)
FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"header:{group}" for group in HEADER_GROUPS)
    + tuple(f"values:{name}" for name, _ in VALUE_CHECKS)
    + tuple(f"terms:{category}" for category in VALUE_TERMS)
    + _STAT_FEATURES
    + _CONTEXT_FEATURES
)
FEATURE_VERSION = hashlib.sha256("\n".join(FEATURE_NAMES).encode()).hexdigest()[:16]
_INDEX = {name: i for i, name in enumerate(FEATURE_NAMES)}
_HEADER_SLICE = slice(0, len(HEADER_GROUPS))
_IDENTIFIER_CHECKS = [_INDEX[f"values:{n}"] for n in ("email", "phone", "card", "iban", "national_id", "ip", "mac")]

_BOOLEAN_WORDS = VALUE_TERMS["yes_no"][1]
_TITLE_WORD = re.compile(r"^[^\W\d_][^\W\d_'.\-]*\.?$")
_DIGITS = re.compile(r"\d")
_LETTERS = re.compile(r"[^\W\d_]")
_BLOOD_GROUP = re.compile(
    r"^(A|B|AB|O|0)\s*(Rh\s*D?)?\s*([+\-\u2212]|pos(itive)?|neg(ative)?|positi[fv]e?|negati[fv]e?)$", re.IGNORECASE
)
_EXPIRY = re.compile(r"^(0[1-9]|1[0-2])\s?[/\-.]\s?(\d{2}|20\d{2})$")
_DECIMAL_COMMA = re.compile(r"^-?\d{1,3}(\.\d{3})*,\d+$|^-?\d+,\d+$")
_RATIO_PAIR = re.compile(r"^\d{2,3}\s?/\s?\d{2,3}$")
_PLAIN_DECIMAL = re.compile(r"^-?\d+\.\d+$")
_SHORT_BARE_NUMBER = re.compile(r"^[1-9]\d{6,7}$")


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


def _validator(name: str) -> Callable[[str], bool] | None:
    entry = VALIDATORS.get(name)
    if entry is None:
        return None
    predicate = entry[0]
    if name == "phone":
        # A plain decimal ("1234.5678", a weight or a rate) parses as a phone number in some region, and so does a
        # bare 7-8 digit number (a postcode, an account or order code as often as a short local phone number):
        # neither counts as phone evidence.
        return lambda v: not _PLAIN_DECIMAL.match(v) and not _SHORT_BARE_NUMBER.match(v) and predicate(v)
    return predicate


_CHECKS = [(f"values:{name}", _validator(name)) for name, _ in VALUE_CHECKS]


def _weighted_share(counts: Counter[str], n: int, predicate: Callable[[str], bool]) -> float:
    """Share of the ``n`` values for which ``predicate`` holds, evaluated once per distinct value."""
    return sum(count for value, count in counts.items() if predicate(value)) / n


def column_features(profile: ColumnProfile) -> npt.NDArray[np.float64]:
    """The feature vector (layout :data:`FEATURE_NAMES`) of one column on its own (context features: none)."""
    vec = np.zeros(len(FEATURE_NAMES), dtype=np.float64)
    _header_features(vec, profile.name)
    vec[_INDEX["null_ratio"]] = profile.null_ratio
    values = [v.strip() for v in profile.sample if v is not None and v.strip()]
    if not values:
        return vec
    checked = values[:VALIDATION_SAMPLE]
    checked_counts = Counter(checked)
    for name, predicate in _CHECKS:
        if predicate is not None:
            vec[_INDEX[name]] = _weighted_share(checked_counts, len(checked), predicate)
    counts = Counter(values)
    _distribution_features(vec, counts, len(values))
    _numeric_features(vec, values, counts)
    _text_features(vec, values, counts, checked)
    return vec


def _header_features(vec: npt.NDArray[np.float64], header: str) -> None:
    """The lexicon groups the header matches, and whether it says anything at all."""
    groups = match_header(header)
    for group in groups:
        vec[_INDEX[f"header:{group}"]] = 1.0
    meaningless = is_meaningless(header)
    vec[_INDEX["header_meaningless"]] = float(meaningless)
    vec[_INDEX["header_opaque"]] = float(not meaningless and not groups)
    vec[_INDEX["header_tokens"]] = len(tokens(header))


def _distribution_features(vec: npt.NDArray[np.float64], counts: Counter[str], n: int) -> None:
    """Vocabulary hits and how the ``n`` sampled values are spread over their distinct values."""
    distinct = len(counts)
    term_hits: Counter[str] = Counter()
    for value, count in counts.items():
        for category in match_value_terms(value):
            term_hits[category] += count
    for category in VALUE_TERMS:
        vec[_INDEX[f"terms:{category}"]] = term_hits[category] / n

    vec[_INDEX["distinct_ratio"]] = distinct / n
    vec[_INDEX["unique_per_row"]] = float(distinct == n and n >= 20)
    probabilities = np.array(list(counts.values()), dtype=np.float64) / n
    vec[_INDEX["entropy"]] = float(-(probabilities * np.log2(probabilities)).sum() / math.log2(n)) if n > 1 else 0.0
    vec[_INDEX["log_distinct"]] = math.log1p(distinct)
    vec[_INDEX["top_value_share"]] = counts.most_common(1)[0][1] / n
    vec[_INDEX["log_rows_sampled"]] = math.log1p(n)


def _numeric_features(vec: npt.NDArray[np.float64], values: Sequence[str], counts: Counter[str]) -> None:
    """What the values that parse as numbers look like: integers, codes, ages, years, shares, spread, tails."""
    n = len(values)
    distinct = len(counts)
    numbers = _numbers(values)
    numeric_share = len(numbers) / n
    integers = [x for x in numbers if x == int(x) and "." not in str(x).rstrip("0").rstrip(".")]
    vec[_INDEX["integer_share"]] = len(integers) / n
    vec[_INDEX["float_share"]] = numeric_share - len(integers) / n
    vec[_INDEX["decimal_comma_share"]] = _weighted_share(counts, n, lambda v: bool(_DECIMAL_COMMA.match(v)))
    vec[_INDEX["boolean_share"]] = _weighted_share(counts, n, lambda v: v.lower() in _BOOLEAN_WORDS) * float(
        distinct <= 3
    )
    if not numbers:
        return
    arr = np.array(numbers)
    vec[_INDEX["age_like_share"]] = _share([x == int(x) and 0 <= x <= 110 for x in numbers]) * numeric_share
    vec[_INDEX["year_like_share"]] = _share([x == int(x) and 1900 <= x <= 2030 for x in numbers]) * numeric_share
    vec[_INDEX["unit_interval_share"]] = float(((arr >= 0) & (arr <= 1)).mean()) * numeric_share
    distinct_numbers = np.unique(arr)
    vec[_INDEX["small_int_codes"]] = float(
        len(integers) == len(numbers) and len(distinct_numbers) <= 12 and numeric_share > 0.95
    )
    vec[_INDEX["zero_share"]] = float((arr == 0).mean()) * numeric_share
    vec[_INDEX["sequential"]] = float(
        len(integers) == n
        and len(distinct_numbers) == n
        and n >= 20
        and (distinct_numbers.max() - distinct_numbers.min()) <= 1.2 * n
    )
    vec[_INDEX["log_abs_mean"]] = _signed_log(float(arr.mean()))
    vec[_INDEX["log_std"]] = math.log1p(float(arr.std()))
    magnitudes = np.abs(arr)
    vec[_INDEX["log_max"]] = math.log1p(float(magnitudes.max()))
    # Heavy right tails (gains, balances, byte counts) against bell-shaped measurements (ages, pressures).
    vec[_INDEX["tail_ratio"]] = math.log1p(float(np.percentile(magnitudes, 99))) - math.log1p(
        float(np.median(magnitudes))
    )
    vec[_INDEX["negative_share"]] = float((arr < 0).mean()) * numeric_share


def _text_features(
    vec: npt.NDArray[np.float64], values: Sequence[str], counts: Counter[str], checked: Sequence[str]
) -> None:
    """The values' shape as text: length, words, letters and digits, case, script, and telling patterns."""
    n = len(values)
    lengths = np.array([len(v) for v in values], dtype=np.float64)
    vec[_INDEX["mean_length"]] = math.log1p(float(lengths.mean()))
    vec[_INDEX["length_std"]] = math.log1p(float(lengths.std()))
    vec[_INDEX["letters_only_share"]] = _weighted_share(counts, n, lambda v: v.replace(" ", "").isalpha())
    vec[_INDEX["digit_share"]] = _weighted_share(counts, n, lambda v: bool(_DIGITS.search(v)))
    vec[_INDEX["code_share"]] = _weighted_share(
        counts, n, lambda v: " " not in v and bool(_DIGITS.search(v)) and bool(_LETTERS.search(v))
    )
    vec[_INDEX["has_space_share"]] = _weighted_share(counts, n, lambda v: " " in v)
    vec[_INDEX["title_words_share"]] = _weighted_share(
        counts, n, lambda v: bool(v.split()) and all(_TITLE_WORD.match(w) and w[0].isupper() for w in v.split())
    )
    vec[_INDEX["mean_words"]] = sum(len(v.split()) * c for v, c in counts.items()) / n
    vec[_INDEX["non_latin_share"]] = _weighted_share(
        counts, n, lambda v: any(ord(c) > 0x24F and c.isalpha() for c in v)
    )
    vec[_INDEX["upper_share"]] = _weighted_share(counts, n, lambda v: v.isupper())
    years = [y for y in (birth_year(v) for v in checked) if y is not None]
    vec[_INDEX["birth_year_spread"]] = float(np.std(years)) / 30.0 if len(years) >= 5 else 0.0
    vec[_INDEX["blood_group_share"]] = _weighted_share(counts, n, lambda v: bool(_BLOOD_GROUP.match(v)))
    vec[_INDEX["expiry_share"]] = _weighted_share(counts, n, lambda v: bool(_EXPIRY.match(v)))
    vec[_INDEX["ratio_pair_share"]] = _weighted_share(counts, n, lambda v: bool(_RATIO_PAIR.match(v)))
    vec[_INDEX["sentence_share"]] = _weighted_share(counts, n, lambda v: len(v.split()) >= 4 and v[-1] in ".!?")


_DOMAIN_COLUMNS = {
    domain: [_INDEX[f"header:{g}"] for g in groups if f"header:{g}" in _INDEX] for domain, groups in DOMAINS.items()
}


def table_features(profiles: Sequence[ColumnProfile]) -> npt.NDArray[np.float64]:
    """Feature vectors of all columns of one table, each with the context of the table's other columns."""
    matrix = np.stack([column_features(p) for p in profiles]) if profiles else np.zeros((0, len(FEATURE_NAMES)))
    add_context(matrix)
    return matrix


def add_context(matrix: npt.NDArray[np.float64]) -> None:
    """Fill the ``context:*`` features of a table's feature matrix (one row per column) in place."""
    n = len(matrix)
    if n < 2:
        return
    per_column = {
        domain: matrix[:, columns].max(axis=1) if columns else np.zeros(n)
        for domain, columns in _DOMAIN_COLUMNS.items()
    }
    per_column["opaque"] = matrix[:, _INDEX["header_opaque"]]
    per_column["meaningless"] = matrix[:, _INDEX["header_meaningless"]]
    per_column["validated_ids"] = (matrix[:, _IDENTIFIER_CHECKS].max(axis=1) >= 0.5).astype(np.float64)
    for key, flags in per_column.items():
        # The other columns' mean: a column's own header is already in its features.
        matrix[:, _INDEX[f"context:{key}"]] = (flags.sum() - flags) / (n - 1)
    matrix[:, _INDEX["context:columns"]] = math.log(n)


def _pct(x: float) -> str:
    return f"{x * 100:.0f} %"


_CHECK_PHRASES = dict(VALUE_CHECKS)


def describe_feature(name: str, value: float, profile: ColumnProfile) -> str | None:
    """A sentence for one feature's value, or None when the value is not worth saying."""
    if name.startswith("header:"):
        if not value:
            return None
        fragment = match_header(profile.name).get(name.removeprefix("header:"), name)
        return f"header matches '{fragment}'"
    if name.startswith("values:"):
        phrase = _CHECK_PHRASES[name.removeprefix("values:")]
        return f"no values are {phrase}" if value < 0.05 else f"{_pct(value)} of values are {phrase}"
    if name.startswith("terms:"):
        phrase = TERM_PHRASES[name.removeprefix("terms:")]
        return f"no values are {phrase}" if value < 0.05 else f"{_pct(value)} of values are {phrase}"
    if name.startswith("context:"):
        key = name.removeprefix("context:")
        if key == "columns" or not value:
            return None
        what = {
            "opaque": "have headers the lexicon does not know",
            "meaningless": "have meaningless headers",
            "validated_ids": "hold validated identifiers",
        }.get(key, f"are about {key}")
        return f"{_pct(value)} of the table's other columns {what}"
    sample = len(profile.sample)
    phrases = {
        "header_meaningless": "header carries no meaning; decided from the values" if value else None,
        "header_opaque": "the header is a word the lexicon does not know" if value else None,
        "null_ratio": f"{_pct(value)} of rows are empty",
        "distinct_ratio": f"{_pct(value)} of sampled values are distinct",
        "unique_per_row": "unique per row" if value else "values repeat across rows",
        "entropy": f"value entropy {value:.2f} of the maximum",
        "log_distinct": f"{round(math.expm1(value))} distinct values in the sample",
        "top_value_share": f"the most common value covers {_pct(value)} of rows",
        "integer_share": f"{_pct(value)} of values are integers",
        "float_share": f"{_pct(value)} of values are decimals",
        "decimal_comma_share": f"{_pct(value)} of values are decimals with a comma" if value else None,
        "boolean_share": f"{_pct(value)} of values are yes/no flags" if value else None,
        "age_like_share": f"{_pct(value)} of values are whole numbers in 0-110 (age-like)",
        "year_like_share": f"{_pct(value)} of values are years" if value else None,
        "unit_interval_share": f"{_pct(value)} of values lie in [0, 1]",
        "small_int_codes": "a handful of integer codes" if value else None,
        "zero_share": f"{_pct(value)} of values are zero" if value else None,
        "sequential": "a running row number (consecutive integers)" if value else None,
        "tail_ratio": "a heavy right tail (a few very large values)" if value > 2 else None,
        "mean_length": f"values are {math.expm1(value):.0f} characters long on average",
        "letters_only_share": f"{_pct(value)} of values are letters only",
        "digit_share": f"{_pct(value)} of values contain digits",
        "code_share": f"{_pct(value)} of values are codes mixing letters and digits" if value else None,
        "has_space_share": f"{_pct(value)} of values contain spaces",
        "title_words_share": f"{_pct(value)} of values are capitalized words (like names or places)",
        "mean_words": f"{value:.1f} words per value on average",
        "non_latin_share": f"{_pct(value)} of values are in a non-Latin script" if value else None,
        "birth_year_spread": "dates spread over decades, like birth dates" if value > 0.3 else None,
        "blood_group_share": f"{_pct(value)} of values are blood groups" if value else None,
        "expiry_share": f"{_pct(value)} of values are MM/YY expiry dates" if value else None,
        "ratio_pair_share": f"{_pct(value)} of values are pairs like 120/80" if value else None,
        "sentence_share": f"{_pct(value)} of values are sentences" if value else None,
    }
    if sample == 0 and name not in ("header_meaningless", "header_opaque", "null_ratio"):
        return None
    return phrases.get(name)
