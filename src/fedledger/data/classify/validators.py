"""Value validators: does one cell look like (and check out as) an email, a card number, an IBAN...?

Shape alone is weak evidence (any 16-digit number looks like a card), so the validators check what can be checked,
through maintained libraries rather than hand-written arithmetic: check digits and number structure with
``python-stdnum`` (the Luhn checksum of card numbers, ISO 13616 IBANs, and national identity numbers: US SSN, Spanish
DNI/NIE, German IdNr, French NIR, Italian codice fiscale, Dutch BSN, Brazilian CPF/CNPJ, Polish PESEL, Finnish HETU,
Swedish personnummer, Danish CPR, Norwegian fodselsnummer, Belgian national number, Swiss AHV, Indian Aadhaar/PAN),
and telephone numbers with ``phonenumbers`` (Google's libphonenumber metadata). The UK National Insurance number has
no check digit and no stdnum module, so its published letter rules are the only check. Each validator takes one
stripped, non-empty string.

:func:`validated_identifier` decides whether a whole column holds *direct identifiers* (emails, phones, IBANs, card
numbers, national ids): at least :data:`VALIDATED_SHARE` of its non-empty values pass a strict check. Protection
uses it to override the classifier (:mod:`fedledger.data.classify.scan`), so its phone check is stricter than the
feature's: the value must be written like a phone number (``+``, ``00``, a leading trunk ``0`` or separators), which
keeps plain counts and amounts from ever passing as phones.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn as _luhn
from stdnum.be import nn as _be_nn
from stdnum.br import cnpj as _br_cnpj
from stdnum.br import cpf as _br_cpf
from stdnum.ch import ssn as _ch_ssn
from stdnum.de import idnr as _de_idnr
from stdnum.dk import cpr as _dk_cpr
from stdnum.es import dni as _es_dni
from stdnum.es import nie as _es_nie
from stdnum.fi import hetu as _fi_hetu
from stdnum.fr import nir as _fr_nir
from stdnum.in_ import aadhaar as _in_aadhaar
from stdnum.in_ import pan as _in_pan
from stdnum.it import codicefiscale as _it_cf
from stdnum.nl import bsn as _nl_bsn
from stdnum.no import fodselsnummer as _no_fnr
from stdnum.pl import pesel as _pl_pesel
from stdnum.se import personnummer as _se_pnr
from stdnum.us import ssn as _us_ssn

__all__ = [
    "IDENTIFIER_KINDS",
    "VALIDATED_SHARE",
    "VALIDATORS",
    "ValidatedIdentifier",
    "birth_year",
    "direct_identifier_kind",
    "is_card_number",
    "is_iban",
    "is_national_id",
    "is_phone",
    "luhn_valid",
    "validated_identifier",
]

_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")
_URL = re.compile(r"^(https?://|www\.)\S+$", re.IGNORECASE)
_PHONE_SHAPE = re.compile(r"^\+?[\d\s().\-/x]{7,24}$")
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)
_MAC = re.compile(r"^([0-9a-f]{2}[:-]){5}[0-9a-f]{2}$", re.IGNORECASE)
_ICD10 = re.compile(r"^[A-TV-Z]\d{2}(\.[0-9A-Z]{1,4})?$")
_MONEY = re.compile(
    r"^(?:[$€£¥₹]|R\$|(?:USD|EUR|GBP|JPY|INR|BRL|CHF)\s?)\s?-?\d[\d.,' ]*$"
    r"|^-?\d[\d.,' ]*\s?(?:[$€£¥₹]|USD|EUR|GBP|zł|kr)$"
)
_POSTCODES = re.compile(
    r"^(\d{5}(-\d{4})?"  # US ZIP, DE/FR/ES/IT
    r"|\d{4}"  # AT, CH, DK, BE, NL digits
    r"|\d{4}\s?[A-Z]{2}"  # NL
    r"|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}"  # UK
    r"|\d{3}-\d{4}"  # JP
    r"|\d{5}-?\d{3}"  # BR CEP
    r"|\d{2}-\d{3}"  # PL
    r"|\d{3}\s?\d{2}"  # SE
    r"|\d{6})$"  # IN PIN
)
_DATE_ISO = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
_DATE_DMY = re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4}|\d{2})(?:[ T](\d{1,2}):(\d{2})(?::\d{2})?)?$")
_DATE_YMD_SLASH = re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})$")
# A US SSN is only recognised written as 123-45-6789 (or with spaces): nine bare digits are any number at all.
_SSN_WRITTEN = re.compile(r"^\d{3}[- ]\d{2}[- ]\d{4}$")
# UK National Insurance number: prefix letters as HMRC allocates them, six digits, suffix A-D (no check digit).
_UK_NINO = re.compile(r"^[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]$")
_SEPARATORS = re.compile(r"[\s\-./]")
_NON_DIGIT = re.compile(r"[\s\-]")
_THOUSANDS = re.compile(r"^\d{1,3}([.,]\d{3})+$")
_DECIMAL = re.compile(r"^[+-]?\d+[.,]\d+$")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP", "PL", "SE")

_Check = Callable[[str], bool]


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 check (ISO/IEC 7812-1) over a string of digits."""
    return _luhn.is_valid(digits)


def is_card_number(value: str) -> bool:
    """A payment card number: 13-19 digits (spaces or dashes allowed), a card-network first digit, Luhn-valid."""
    digits = _NON_DIGIT.sub("", value)
    return 13 <= len(digits) <= 19 and digits.isdigit() and digits[0] in "23456" and _luhn.is_valid(digits)


def is_iban(value: str) -> bool:
    """An IBAN (ISO 13616): country code, mod-97 check digits and the country's BBAN layout. National check digits
    inside the BBAN are not required: banks' internal schemes vary and the mod-97 check already covers typos."""
    return _iban.is_valid(value, check_country=False)


# National identity numbers by the shape of their compact form (separators removed): (length, all digits) ->
# the stdnum validators to try. Dispatching by shape keeps a value to one or two validators.
_NATIONAL_DIGITS: dict[int, tuple[_Check, ...]] = {
    9: (_nl_bsn.is_valid,),
    10: (_dk_cpr.is_valid, _se_pnr.is_valid),
    11: (_br_cpf.is_valid, _pl_pesel.is_valid, _de_idnr.is_valid, _no_fnr.is_valid, _be_nn.is_valid),
    12: (_in_aadhaar.is_valid, _se_pnr.is_valid),
    13: (_ch_ssn.is_valid,),
    14: (_br_cnpj.is_valid,),
    15: (_fr_nir.is_valid,),
}
_NATIONAL_ALNUM: dict[int, tuple[_Check, ...]] = {
    9: (_es_dni.is_valid, _es_nie.is_valid),
    10: (_in_pan.is_valid,),
    15: (_fr_nir.is_valid,),  # Corsican NIRs hold 2A / 2B
    16: (_it_cf.is_valid,),
}


def is_national_id(value: str) -> bool:
    """A national identity / social security / tax number that passes its scheme's checks (python-stdnum)."""
    upper = value.strip().upper()
    if _SSN_WRITTEN.match(upper):
        return _us_ssn.is_valid(upper)
    if _UK_NINO.match(upper):
        return True
    if len(upper) == 11 and _fi_hetu.is_valid(upper):
        return True  # its century sign (- + A) is part of the number, so it is checked before separators go
    compact = _SEPARATORS.sub("", upper)
    if not compact.isalnum() or not compact.isascii():
        return False
    table = _NATIONAL_DIGITS if compact.isdigit() else _NATIONAL_ALNUM
    if len(compact) == 9 and compact.isdigit() and len(value.strip()) != 9:
        return False  # a BSN is written as nine bare digits; 123.456.789 is a number, not a BSN
    return any(check(upper) for check in table.get(len(compact), ()))


def is_phone(value: str) -> bool:
    """A telephone number: plausible shape, and a valid number (libphonenumber metadata) for some region."""
    if not _PHONE_SHAPE.match(value) or sum(c.isdigit() for c in value) < 7:
        return False
    regions: tuple[str | None, ...] = (None,) if value.startswith("+") else _PHONE_REGIONS
    for region in regions:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(value, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def _written_like_a_phone(value: str) -> bool:
    """International prefix, trunk zero or separators: what tells a phone number from any other run of digits."""
    if _date_parts(value) is not None or _THOUSANDS.match(value) or _DECIMAL.match(value):
        return False
    return value.startswith(("+", "00", "0", "(")) or any(sep in value for sep in " -.()/")


def _ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _date_parts(value: str) -> tuple[int, int, int, bool] | None:
    """(year, month, day, has_time) for the common date layouts, or None."""
    if m := _DATE_ISO.match(value):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        has_time = m[4] is not None
    elif m := _DATE_YMD_SLASH.match(value):
        year, month, day, has_time = int(m[1]), int(m[2]), int(m[3]), False
    elif m := _DATE_DMY.match(value):
        first, second, year = int(m[1]), int(m[2]), int(m[3])
        year += 1900 if len(m[3]) == 2 and year > 30 else 2000 if len(m[3]) == 2 else 0
        day, month = (first, second) if second <= 12 else (second, first)
        has_time = m[4] is not None
    else:
        return None
    if not (1 <= month <= 12 and 1 <= day <= 31 and 1800 <= year <= 2200):
        return None
    return year, month, day, has_time


def birth_year(value: str) -> int | None:
    """The year of a date that could be a living person's birth date (not in the future, at most 120 years ago)."""
    parts = _date_parts(value)
    if parts is None or parts[3]:
        return None
    this_year = date.today().year
    return parts[0] if this_year - 120 <= parts[0] <= this_year else None


def _latitude_or_longitude(value: str) -> bool:
    """A decimal degree with >= 4 decimals (GPS precision), or a "lat, lon" pair."""
    pieces = [p.strip() for p in value.strip("()[]").split(",")] if "," in value else [value]
    if len(pieces) not in (1, 2):
        return False
    for piece in pieces:
        whole, dot, frac = piece.lstrip("-+").partition(".")
        if not (dot and whole.isdigit() and frac.isdigit() and len(frac) >= 4 and float(whole) <= 180):
            return False
    return True


def _number(value: str) -> bool:
    try:
        float(value.replace(",", ""))
    except ValueError:
        return False
    return True


# name -> (predicate, evidence phrase: "<pct> of values are <phrase>")
VALIDATORS: dict[str, tuple[Callable[[str], bool], str]] = {
    "email": (lambda v: bool(_EMAIL.match(v)), "valid email addresses"),
    "phone": (is_phone, "valid phone numbers"),
    "card": (is_card_number, "Luhn-valid 13-19-digit card numbers"),
    "iban": (is_iban, "IBANs with valid check digits"),
    "national_id": (is_national_id, "national id numbers that pass their scheme's checks"),
    "ip": (_ip, "IPv4/IPv6 addresses"),
    "mac": (lambda v: bool(_MAC.match(v)), "MAC addresses"),
    "uuid": (lambda v: bool(_UUID.match(v)), "UUIDs"),
    "url": (lambda v: bool(_URL.match(v)), "URLs"),
    "date": (lambda v: _date_parts(v) is not None, "dates"),
    "datetime": (lambda v: (p := _date_parts(v)) is not None and p[3], "timestamps"),
    "birth_date": (lambda v: birth_year(v) is not None, "plausible birth dates"),
    "postcode": (lambda v: bool(_POSTCODES.match(v.upper())), "postcode-shaped"),
    "latlon": (_latitude_or_longitude, "GPS-precision coordinates"),
    "icd10": (lambda v: bool(_ICD10.match(v.upper())), "ICD-10 diagnosis codes"),
    "money": (lambda v: bool(_MONEY.match(v)), "money amounts with a currency"),
    "number": (_number, "numbers"),
}


# -- direct identifiers: the columns protection must never publish in clear -----------------------------------

IDENTIFIER_KINDS: dict[str, tuple[_Check, str]] = {
    # Check-digit schemes first: a card number with spaces is also shaped like a phone number.
    "email": (lambda v: bool(_EMAIL.match(v)), "valid email addresses"),
    "iban": (is_iban, "IBANs with valid check digits"),
    "card": (is_card_number, "Luhn-valid card numbers"),
    "national_id": (is_national_id, "national id numbers that pass their scheme's checks"),
    "phone": (lambda v: _written_like_a_phone(v) and is_phone(v), "valid phone numbers"),
}
# A column is a direct identifier when at least this share of its non-empty values pass one of the checks above.
# Half, not "all": real exports mix formats and typos, and a column that is half phone numbers leaks half its rows.
# Random digits pass a check-digit test about one time in ten, so no column of ordinary numbers gets near it.
VALIDATED_SHARE = 0.5
# Values checked per column, spread evenly over the column (phone checks cost ~20 us each).
VALIDATED_SAMPLE = 1_000


@dataclass(frozen=True)
class ValidatedIdentifier:
    """A column's values check out as direct identifiers: the commonest ``kind``, the ``share`` of checked values
    that passed any identifier check, and how many values were ``checked``."""

    kind: str
    share: float
    checked: int

    def describe(self) -> str:
        return f"{self.share:.0%} of {self.checked} checked values are {IDENTIFIER_KINDS[self.kind][1]}"

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "share": round(self.share, 4), "checked": self.checked}


def direct_identifier_kind(value: str) -> str | None:
    """The direct-identifier kind one value validates as (email, phone, iban, card, national_id), or None."""
    value = value.strip()
    if not value:
        return None
    for kind, (check, _) in IDENTIFIER_KINDS.items():
        if check(value):
            return kind
    return None


def validated_identifier(values: Iterable[str | None]) -> ValidatedIdentifier | None:
    """Whether a column holds direct identifiers (see :data:`VALIDATED_SHARE`); None when it does not."""
    present = [v.strip() for v in values if v is not None and v.strip()]
    if not present:
        return None
    step = max(1, len(present) // VALIDATED_SAMPLE)
    checked = present[::step][:VALIDATED_SAMPLE]
    verdicts: dict[str, str | None] = {}
    counts: dict[str, int] = {}
    for value in checked:
        if value not in verdicts:
            verdicts[value] = direct_identifier_kind(value)
        kind = verdicts[value]
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
    passed = sum(counts.values())
    if not passed or passed < VALIDATED_SHARE * len(checked):
        return None
    kind = max(counts, key=lambda k: counts[k])
    return ValidatedIdentifier(kind, passed / len(checked), len(checked))
