"""Keyed pseudonyms and format-preserving tokens for direct identifiers.

* **Pseudonyms** are HMAC-SHA256 (RFC 2104) of the value under the organization's ``pseudonymize`` key, base32
  encoded and truncated (default 26 characters, 130 bits). The same value gives the same pseudonym in every run
  and every file of the organization, so pseudonymized tables still join; without the key nobody can test a guess
  (unlike a plain hash of a phone number). Not reversible.
* **Tokens** are FF3-1 format-preserving encryption (NIST SP 800-38G Rev. 1) through the ``ff3`` package, under the
  organization's ``tokenize`` key and a 56-bit tweak derived from it: a 16-digit card number stays 16 digits, and
  :meth:`Tokenizer.detokenize` gives the value back to whoever holds the key. Characters outside the column's
  alphabet (spaces, dashes, dots ...) stay where they are; the letters and digits between them are encrypted as one
  string. One alphabet per column, chosen from all its values: digits if every value's payload is digits (digits
  stay digits), letters if all letters, else digits and letters. FF3-1 cannot encrypt fewer than ``minLen``
  characters (6 digits, 4 letters or alphanumerics: a domain under a million values is too small to hide in) nor
  more than ``maxLen`` (56 digits, 32 alphanumerics); such values are a :class:`~fedledger.exceptions.BadInput`
  naming the column, never silently left in clear.

Both work on distinct values only (a column of a million rows with ten thousand people costs ten thousand HMACs).
Missing values stay missing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from ff3 import FF3Cipher

from fedledger.exceptions import BadInput

__all__ = ["ALPHABETS", "DEFAULT_PSEUDONYM_LENGTH", "Tokenizer", "canonical_text", "pseudonymize"]

DEFAULT_PSEUDONYM_LENGTH = 26  # base32 characters: 130 bits
_MIN_KEY_BYTES = 16

_DIGITS = "0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
AlphabetName = Literal["digits", "letters", "alphanumeric"]
ALPHABETS: dict[AlphabetName, str] = {"digits": _DIGITS, "letters": _LETTERS, "alphanumeric": _DIGITS + _LETTERS}


def _check_key(key: bytes, purpose: str) -> None:
    if not isinstance(key, bytes) or len(key) < _MIN_KEY_BYTES:
        raise BadInput(f"the {purpose} key must be at least {_MIN_KEY_BYTES} bytes")


def canonical_text(value: object) -> str | None:
    """The text a value is keyed on: integral floats as integers, so ``42`` read as ``42.0`` (a column with a
    missing value) still gets the pseudonym of ``42``."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _distinct(values: Sequence[object] | pd.Series) -> tuple[list[int], list[str]]:
    """(index of each row's distinct text or -1, the distinct texts)."""
    texts = [canonical_text(v) for v in values]
    codes, uniques = pd.factorize(pd.Series(texts, dtype=object), use_na_sentinel=True)
    return codes.tolist(), [str(u) for u in uniques]


def pseudonymize(
    values: Sequence[object] | pd.Series, key: bytes, *, length: int = DEFAULT_PSEUDONYM_LENGTH
) -> list[str | None]:
    """HMAC-SHA256 pseudonyms (lowercase base32, ``length`` characters) of ``values``; missing stays missing."""
    _check_key(key, "pseudonymization")
    if not 16 <= length <= 52:
        raise BadInput("pseudonym length must be between 16 and 52 base32 characters")
    codes, uniques = _distinct(values)
    mapped = [
        base64.b32encode(hmac.digest(key, u.encode("utf-8"), hashlib.sha256)).decode("ascii").lower()[:length]
        for u in uniques
    ]
    return [mapped[c] if c >= 0 else None for c in codes]


def _payload(value: str, alphabet: str) -> str:
    return "".join(ch for ch in value if ch in alphabet)


def _splice(value: str, alphabet: str, payload: str) -> str:
    """``value`` with its alphabet characters replaced, in order, by ``payload``."""
    chars = iter(payload)
    return "".join(next(chars) if ch in alphabet else ch for ch in value)


@dataclass(frozen=True)
class Tokenizer:
    """FF3-1 tokens under ``key`` (16, 24 or 32 bytes: AES-128/192/256). ``domain`` separates token spaces: the
    same value gets different tokens in different domains (default: one domain, so tokens join across files)."""

    key: bytes
    domain: str = ""

    def __post_init__(self) -> None:
        _check_key(self.key, "tokenization")
        if len(self.key) not in (16, 24, 32):
            raise BadInput("the tokenization key must be 16, 24 or 32 bytes (AES)")

    @property
    def tweak(self) -> bytes:
        """The 56-bit FF3-1 tweak: derived from the key and domain, so it needs no storage of its own."""
        return hmac.digest(self.key, b"fedledger/ff3-1/tweak/" + self.domain.encode("utf-8"), hashlib.sha256)[:7]

    def _cipher(self, alphabet: AlphabetName) -> FF3Cipher:
        return FF3Cipher.withCustomAlphabet(self.key.hex(), self.tweak.hex(), ALPHABETS[alphabet])

    @staticmethod
    def alphabet_for(values: Sequence[str]) -> AlphabetName:
        """The smallest alphabet holding every value's letters and digits."""
        digits = letters = False
        for value in values:
            for ch in value:
                if ch.isascii():
                    digits = digits or ch.isdigit()
                    letters = letters or ch.isalpha()
        if digits and letters:
            return "alphanumeric"
        return "letters" if letters else "digits"

    def tokenize(
        self, values: Sequence[object] | pd.Series, *, column: str = "value", alphabet: AlphabetName | None = None
    ) -> tuple[list[str | None], AlphabetName]:
        """Tokens for ``values`` and the alphabet used (record it: :meth:`detokenize` needs it)."""
        codes, uniques = _distinct(values)
        alphabet = alphabet or self.alphabet_for(uniques)
        cipher = self._cipher(alphabet)
        chars = ALPHABETS[alphabet]
        payloads = [_payload(u, chars) for u in uniques]
        bad = [u for u, p in zip(uniques, payloads, strict=True) if not cipher.minLen <= len(p) <= cipher.maxLen]
        if bad:
            raise BadInput(
                f"column {column!r}: {len(bad)} distinct value(s) cannot be tokenized with FF3-1 over {alphabet}: "
                f"it needs {cipher.minLen} to {cipher.maxLen} {alphabet} characters per value "
                f"(e.g. a value of {len(_payload(bad[0], chars))}); pseudonymize or drop this column instead"
            )
        mapped = [_splice(u, chars, cipher.encrypt(p)) for u, p in zip(uniques, payloads, strict=True)]
        return [mapped[c] if c >= 0 else None for c in codes], alphabet

    def detokenize(self, tokens: Sequence[object] | pd.Series, *, alphabet: AlphabetName) -> list[str | None]:
        """The original values of ``tokens`` made with the same key, domain and ``alphabet``."""
        cipher = self._cipher(alphabet)
        chars = ALPHABETS[alphabet]
        codes, uniques = _distinct(tokens)
        try:
            mapped = [_splice(u, chars, cipher.decrypt(_payload(u, chars))) for u in uniques]
        except ValueError as exc:
            raise BadInput(f"not a token of this alphabet ({alphabet}): {exc}") from exc
        return [mapped[c] if c >= 0 else None for c in codes]
