"""Value validators: does one cell look like (and check out as) an email, a card number, an IBAN...?

Shape alone is weak evidence (any 16-digit number looks like a card), so the validators check what can be checked:
the Luhn checksum of card numbers (ISO/IEC 7812-1), the ISO 13616 mod-97 checksum of IBANs, the 11-proof of Dutch
BSNs, the mod-11 check digits of Brazilian CPFs, ``ipaddress`` parsing, and phone numbers through Google's
libphonenumber port (``phonenumbers``) when it is installed. Each validator takes one stripped, non-empty string.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import date

__all__ = [
    "VALIDATORS",
    "birth_year",
    "is_card_number",
    "is_iban",
    "is_national_id",
    "is_phone",
    "luhn_valid",
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
_NATIONAL_IDS = (
    re.compile(r"^\d{3}-\d{2}-\d{4}$"),  # US SSN
    re.compile(r"^[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-Z]$"),  # UK National Insurance number
    re.compile(r"^[A-Z]{6}\d{2}[A-Z]\d{2}[A-Z]\d{3}[A-Z]$"),  # IT codice fiscale
    re.compile(r"^[12]\s?\d{2}\s?\d{2}\s?\d{2}\s?\d{3}\s?\d{3}(\s?\d{2})?$"),  # FR NIR (INSEE)
    re.compile(r"^[XYZ]?\d{7,8}-?[A-Z]$"),  # ES DNI / NIE
    re.compile(r"^\d{6}[-+A]\d{3}[0-9A-Y]$"),  # FI henkilotunnus
    re.compile(r"^\d{6}-?\d{4}$"),  # SE personnummer, DK CPR
    re.compile(r"^\d{4}\s?\d{4}\s?\d{4}$"),  # IN Aadhaar
    re.compile(r"^[A-Z]{5}\d{4}[A-Z]$"),  # IN PAN
    re.compile(r"^\d{2}\.?\d{3}\.?\d{3}/?\d{4}-?\d{2}$"),  # BR CNPJ
)
_CPF = re.compile(r"^\d{3}\.?\d{3}\.?\d{3}-?\d{2}$")
_PESEL = re.compile(r"^\d{11}$")
_BSN = re.compile(r"^\d{9}$")
_NON_DIGIT = re.compile(r"[\s\-]")
_PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "BR", "IN", "JP", "PL", "SE")


def luhn_valid(digits: str) -> bool:
    """The Luhn mod-10 check (ISO/IEC 7812-1) over a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(value: str) -> bool:
    digits = _NON_DIGIT.sub("", value)
    return 13 <= len(digits) <= 19 and digits.isdigit() and digits[0] in "23456" and luhn_valid(digits)


def is_iban(value: str) -> bool:
    """ISO 13616: two letters, two check digits, the BBAN; the rearranged number mod 97 must be 1."""
    compact = value.replace(" ", "").upper()
    if not (15 <= len(compact) <= 34 and compact[:2].isalpha() and compact[2:4].isdigit() and compact.isalnum()):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _cpf_valid(value: str) -> bool:
    digits = [int(c) for c in value if c.isdigit()]
    if len(set(digits)) == 1:
        return False
    for n in (9, 10):
        check = sum(d * w for d, w in zip(digits[:n], range(n + 1, 1, -1), strict=True)) * 10 % 11 % 10
        if check != digits[n]:
            return False
    return True


def _bsn_valid(value: str) -> bool:
    digits = [int(c) for c in value]
    return (sum(d * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - digits[8]) % 11 == 0


def _pesel_valid(value: str) -> bool:
    weights = (1, 3, 7, 9, 1, 3, 7, 9, 1, 3)
    return (10 - sum(int(c) * w for c, w in zip(value[:10], weights, strict=True)) % 10) % 10 == int(value[10])


def is_national_id(value: str) -> bool:
    """A national identity / social security / tax number of a common shape (with its checksum where known)."""
    upper = value.upper()
    if _CPF.match(value):
        return _cpf_valid(value)
    if _BSN.match(value):
        return _bsn_valid(value)
    if _PESEL.match(value):
        return _pesel_valid(value)
    return any(pattern.match(upper) for pattern in _NATIONAL_IDS)


try:
    import phonenumbers as _phonenumbers

    _HAS_PHONENUMBERS = True
except ImportError:  # pragma: no cover - phonenumbers comes with presidio; the shape check is the fallback
    _HAS_PHONENUMBERS = False


def is_phone(value: str) -> bool:
    """A telephone number: plausible shape, and a valid number for some region when libphonenumber is available."""
    if not _PHONE_SHAPE.match(value) or sum(c.isdigit() for c in value) < 7:
        return False
    if not _HAS_PHONENUMBERS:
        return True
    regions: tuple[str | None, ...] = (None,) if value.startswith("+") else _PHONE_REGIONS
    for region in regions:
        try:
            if _phonenumbers.is_valid_number(_phonenumbers.parse(value, region)):
                return True
        except _phonenumbers.NumberParseException:
            continue
    return False


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
    "iban": (is_iban, "IBANs with a valid mod-97 checksum"),
    "national_id": (is_national_id, "national id / social security numbers"),
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
