"""Column headers and cell values: normalization and a multilingual vocabulary.

Headers come in every convention (``customerEmail``, ``CUST_EMAIL``, ``E-Mail-Adresse``, ``Religionszugehörigkeit``,
``col_7``), so a header is split on case changes, digits and punctuation, accent-folded and lower-cased before
matching. A header matches a :data:`LEXICON` group when one of its tokens, or a run of 2-3 adjacent tokens joined,
equals a keyword; keywords of six letters or more (and shorter ones marked ``~``) also match as the head or tail of a
longer token, which reads compounds (``religion`` in ``religionszugehorigkeit``, ``gehalt`` in
``bruttojahresgehalt``, ``nummer`` in ``kundennummer``). Two groups depend on position: ``flag`` (``is_``, ``has_``
... first) and ``count`` (``num_``, ``n_``, ``number of``... first).

Keywords cover English, German, French, Spanish, Italian, Portuguese and Dutch and common abbreviations. They are
general vocabulary: no column code of a particular data set. Groups describe *what a column is about*, not its
class, so the classifier learns how groups combine with each other and with the values (``patient`` + ``id`` is an
identifier, ``is_`` + ``email`` is a flag; a ``state`` whose values are region names is a place, one whose values
are ``open``/``closed`` is a status).

:data:`VALUE_TERMS` is the same idea for cell values: words that say what a value is (``katholisch``, ``divorced``,
``Hypertension``, ``Bavaria``), each category one classifier feature (the share of sampled values that hit it).
"""

from __future__ import annotations

import re
import unicodedata

from fedledger.data.classify._header_words import HEADER_KEYWORDS
from fedledger.data.classify._value_words import VALUE_KEYWORDS

__all__ = [
    "LEXICON",
    "VALUE_TERMS",
    "HeaderMatch",
    "fold",
    "is_meaningless",
    "match_header",
    "match_value_terms",
    "tokens",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


LEXICON: dict[str, frozenset[str]] = {
    group: frozenset(w.rstrip("~") for w in words.split()) for group, words in HEADER_KEYWORDS.items()
}
# Keywords that also match as the head or tail of a longer token.
_AFFIX: dict[str, frozenset[str]] = {
    group: frozenset(w.rstrip("~") for w in words.split() if len(w) >= 6 or w.endswith("~"))
    for group, words in HEADER_KEYWORDS.items()
}
# Positional groups: a flag ("is_active", "has_email", "possui deficiencia") and a count ("num_logins", "n_items").
_FLAG_FIRST = _words("is has was can did ist hat est tiene possui tem heeft")
_FLAG_ANY = _words("flag yn indicator optin optout consent verified enabled")
_COUNT_FIRST = _words("num n nb nbr cnt count anzahl aantal cantidad quantita quantidade quantite")
_COUNT_PAIRS = _words("numberof countof totalof")
HEADER_GROUPS: tuple[str, ...] = (*LEXICON, "flag", "count")

_MEANINGLESS = re.compile(
    r"^(col|column|field|var|variable|attr|attribute|feature|x|c|f|v|unnamed|spalte|colonne|columna|colonna|coluna|"
    r"kolom)\d*$"
)
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")
_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def fold(text: str) -> str:
    """Accents removed, ``ß`` -> ``ss`` (``Religionszugehörigkeit`` -> ``Religionszugehorigkeit``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ß", "ss")


def tokens(header: str) -> list[str]:
    """``"customerEmail_Address2"`` -> ``["customer", "email", "address", "2"]``."""
    spaced = _CAMEL.sub(" ", fold(str(header)))
    return [t for t in _NON_ALNUM.split(spaced.lower()) if t]


def is_meaningless(header: str) -> bool:
    """Headers that say nothing about the column (``col_7``, ``Unnamed: 3``, ``X12``, empty)."""
    joined = "".join(t for t in tokens(header))
    return not joined or joined.isdigit() or bool(_MEANINGLESS.match(joined))


class HeaderMatch(dict[str, str]):
    """group -> the header fragment that matched it."""


def _affix_hit(token: str, keywords: frozenset[str]) -> str | None:
    for keyword in keywords:
        if len(token) >= len(keyword) + 2 and (token.startswith(keyword) or token.endswith(keyword)):
            return keyword
    return None


def match_header(header: str) -> HeaderMatch:
    """Lexicon groups the header matches, each with the fragment that matched."""
    parts = [t for t in tokens(header) if not t.isdigit()]
    candidates = list(parts)
    for width in (2, 3):
        candidates += ["".join(parts[i : i + width]) for i in range(len(parts) - width + 1)]
    found = HeaderMatch()
    for group, words in LEXICON.items():
        for candidate in candidates:
            if candidate in words or (len(candidate) > 5 and candidate.rstrip("s") in words):
                found[group] = candidate
                break
        else:
            for part in parts:
                if (keyword := _affix_hit(part, _AFFIX[group])) is not None:
                    found[group] = keyword
                    break
    if parts and (parts[0] in _FLAG_FIRST or any(p in _FLAG_ANY for p in parts)):
        found["flag"] = parts[0] if parts[0] in _FLAG_FIRST else next(p for p in parts if p in _FLAG_ANY)
    if parts and (parts[0] in _COUNT_FIRST or "".join(parts[:2]) in _COUNT_PAIRS) and len(parts) > 1:
        found["count"] = parts[0]
    return found


# --- cell values ----------------------------------------------------------------------------------------------------

VALUE_TERMS: dict[str, tuple[str, frozenset[str]]] = {
    category: (mode, _words(text)) for category, (mode, text) in VALUE_KEYWORDS.items()
}


def _value_key(value: str) -> tuple[str, list[str]]:
    """(the value folded to letters and digits only, its words)."""
    words = [w for w in _NON_ALNUM.split(fold(value).lower()) if w]
    return "".join(words), words


def match_value_terms(value: str) -> set[str]:
    """The :data:`VALUE_TERMS` categories one cell value hits."""
    whole, words = _value_key(value)
    hits = set()
    for category, (mode, terms) in VALUE_TERMS.items():
        if mode == "whole":
            hit = whole in terms
        elif mode == "token":
            hit = any(w in terms for w in words) or whole in terms
        else:
            hit = any(w.startswith(t) for w in words for t in terms if len(w) >= len(t))
        if hit:
            hits.add(category)
    return hits
