"""The labeled column corpus the PII classifier is trained on, built reproducibly from generated tables.

    PYTHONPATH=src python benchmarks/pii_corpus.py        # rewrites src/fedledger/data/classify/corpus.npz

The corpus is synthetic only: whole tables of a domain (customers, employees, patients, a census survey, orders,
network and sensor logs, bank accounts, and tables whose headers are all meaningless), so that every column is seen
with the other columns of its table (the classifier's table-context features). Nothing of the evaluation tables of
``pii_classification.py`` goes in, and they are kept apart by source:

* no public table: adult, heart-disease and nsl-kdd are evaluation tables only;
* headers are English only, written here, and none equals an evaluation header once normalized (the build stops
  if one does; meaningless ``col_7`` headers aside): the evaluation's headers are in six other languages or are
  English phrasings of its own;
* values come from Faker locales the evaluation never uses (:data:`TRAIN_LOCALES`: Canada, Australia, India, New
  Zealand, Poland, Czechia, Sweden, Denmark, Finland, Romania, Hungary, Croatia, Norway, Japan, Israel) and from
  English word lists written here; the evaluation's value generators and word lists are its own;
* the multilingual knowledge (header keywords, value words in seven languages) lives in the lexicon, which the
  classifier consults as features: the model learns from English what a "religion" header or a share of religion
  words means, and the lexicon carries that to ``Konfession`` and ``katholisch``.

Labeling policy. identifier: what points at one person (names, contact details, national and document numbers,
card and account numbers, addresses, IP addresses, user names, a person's or a person-record's number).
quasi_identifier: what narrows a person down in combination (age, birth date and year, postcode, city, region,
country and nationality, sex, occupation, employer, employment status, marital status, education, household role).
sensitive: GDPR art. 9 categories (health, racial or ethnic origin, religion, political opinion, trade-union
membership, sexual orientation, genetic and biometric data), criminal records, and financial facts about a person
(income, salary, capital gains and losses, balances, debts, credit scores). other: everything else, including
the numbers of orders and transactions, event times, prices, and card expiry dates. A column whose header is a code
the reader does not know takes the table's meaning: a finding in a clinical table (sensitive), a category of the
person in a census table when it holds words (quasi_identifier), a statistic otherwise (other).

Concepts whose values alone cannot tell them apart (a customer number and an order number are both unique codes; a
salary and a price are both money) never get a meaningless header.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import random
import string
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from fedledger.data.classify.features import FEATURE_NAMES, FEATURE_VERSION, ColumnProfile, table_features
from fedledger.data.classify.lexicon import is_meaningless, match_header, tokens
from fedledger.data.classify.model import CLASSES

__all__ = ["CorpusColumn", "SHARED_DATA", "build_corpus", "generate_tables", "training_header_keys"]

TRAIN_LOCALES = (
    "en_CA",
    "en_AU",
    "en_IN",
    "en_NZ",
    "pl_PL",
    "cs_CZ",
    "sv_SE",
    "da_DK",
    "fi_FI",
    "ro_RO",
    "hu_HU",
    "hr_HR",
    "no_NO",
    "ja_JP",
    "he_IL",
)
# ../shared/data beside the checkout (worktrees sit one level deeper); FEDLEDGER_SHARED_DATA overrides. Only the
# evaluation reads it.
_HERE = Path(__file__).resolve()
SHARED_DATA = next(
    (
        p
        for p in (
            Path(__import__("os").environ.get("FEDLEDGER_SHARED_DATA", "/nonexistent")),
            _HERE.parents[2] / "shared" / "data",
            _HERE.parents[3] / "shared" / "data",
        )
        if p.is_dir()
    ),
    _HERE.parents[2] / "shared" / "data",
)
OUTPUT = _HERE.parents[1] / "src" / "fedledger" / "data" / "classify" / "corpus.npz"
EVALUATION_DIR = _HERE.parent / "pii_eval"
SEED = 20240517
TABLES_PER_DOMAIN = 40


def _normalized(header: str) -> str:
    return " ".join(tokens(header))


def evaluation_headers(folder: Path = EVALUATION_DIR) -> frozenset[str]:
    """Every evaluation table's headers, normalized, except meaningless ones (``col_7`` says nothing)."""
    headers = set()
    for truth in sorted(folder.glob("*.csv")):
        with truth.open(encoding="utf-8", newline="") as fh:
            headers |= {_normalized(row["column"]) for row in csv.DictReader(fh) if not is_meaningless(row["column"])}
    return frozenset(headers)


# The training corpus must not hold an evaluation header: the build stops if one of its headers equals one.
EVALUATION_HEADERS = evaluation_headers()


@dataclass
class CorpusColumn:
    header: str
    values: list[str | None]
    label: str
    concept: str
    source: str  # table id: domain/locale/index


@dataclass
class Ctx:
    fake: Any
    rng: random.Random
    locale: str
    row: int
    state: dict[str, object] = field(default_factory=dict)  # per-column parameters drawn once


Gen = Callable[[Ctx], str]


@dataclass
class Concept:
    name: str
    label: str
    headers: tuple[str, ...]  # English phrases, space separated
    gen: Gen
    needs_header: bool = False


def _h(text: str) -> int:
    """A stable hash (str hashes are salted per process): picks one value format per column."""
    return zlib.crc32(text.encode())


def _f(method: str) -> Gen:
    return lambda c: str(getattr(c.fake, method)())


def _once(c: Ctx, key: str, draw: Callable[[], object]) -> object:
    """A parameter drawn once per column (a value format, a distribution's location)."""
    if key not in c.state:
        c.state[key] = draw()
    return c.state[key]


def _choice(*options: str) -> Gen:
    return lambda c: c.rng.choice(options)


def _styled_choice(*variants: tuple[str, ...]) -> Gen:
    """One of several spellings of the same vocabulary per column ("M"/"F" or "male"/"female")."""
    return lambda c: c.rng.choice(variants[int(_once(c, "variant", lambda: c.rng.randrange(len(variants))))])  # type: ignore[call-overload]


# --- value generators ------------------------------------------------------------------------------------------------


def _national_id(c: Ctx) -> str:
    fake = c.fake
    if c.locale == "en_IN":
        if _once(c, "pan", lambda: c.rng.random() < 0.5):
            # The PAN (Indian tax number): five letters, four digits, a letter.
            letters = string.ascii_uppercase
            return (
                "".join(c.rng.choice(letters) for _ in range(5))
                + f"{c.rng.randint(0, 9999):04d}"
                + c.rng.choice(letters)
            )
        return str(fake.aadhaar_id())
    if c.locale in ("en_AU", "en_NZ", "cs_CZ", "da_DK"):
        # Faker falls back to US-shaped numbers here; a tax-file-number-like 9-digit code instead.
        return f"{c.rng.randint(100, 999)} {c.rng.randint(100, 999)} {c.rng.randint(100, 999)}"
    return str(fake.ssn())


def _date(d: date, c: Ctx) -> str:
    fmt = _once(c, "date_fmt", lambda: c.rng.choice(("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d %b %Y")))
    return d.strftime(str(fmt))


def _birth_date(c: Ctx) -> str:
    return _date(date(1930, 1, 1) + timedelta(days=c.rng.randint(0, 365 * 76)), c)


def _event_date(c: Ctx) -> str:
    return _date(date(2019, 1, 1) + timedelta(days=c.rng.randint(0, 2000)), c)


def _timestamp(c: Ctx) -> str:
    moment = datetime(2020, 1, 1) + timedelta(seconds=c.rng.randint(0, 1500 * 86400))
    fmt = _once(c, "ts_fmt", lambda: c.rng.choice(("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%d/%m/%Y %H:%M")))
    return moment.strftime(str(fmt))


def _money(mu: float, sigma: float, *, negative: float = 0.0) -> Gen:
    def gen(c: Ctx) -> str:
        amount = c.rng.lognormvariate(mu, sigma) * (-1 if c.rng.random() < negative else 1)
        style = _once(c, "money_fmt", lambda: c.rng.randrange(5))
        if style == 0:
            return f"{amount:.2f}"
        if style == 1:
            return f"{round(amount)}"
        if style == 2:
            return f"${amount:,.2f}"
        if style == 3:
            return f"{amount:,.2f}"
        return f"{amount:.0f} {_once(c, 'currency', lambda: c.rng.choice(('CAD', 'AUD', 'SEK', 'PLN', 'DKK')))}"

    return gen


def _capital_gain(c: Ctx) -> str:
    zero = float(_once(c, "zero", lambda: c.rng.uniform(0.75, 0.97)))  # type: ignore[arg-type]
    return "0" if c.rng.random() < zero else str(round(c.rng.lognormvariate(8.0, 1.2)))


def _person_ref(c: Ctx) -> str:
    kind = int(_once(c, "kind", lambda: c.rng.randrange(4)))  # type: ignore[call-overload]
    if kind == 0:
        return str(uuid.UUID(int=c.rng.getrandbits(128)))
    if kind == 1:
        prefix = _once(c, "prefix", lambda: c.rng.choice(("C", "P", "EMP", "M", "ID")))
        return f"{prefix}{c.rng.randint(10**5, 10**8)}"
    if kind == 2:
        return str(c.row + int(_once(c, "start", lambda: c.rng.choice((1, 1000, 100000)))))  # type: ignore[call-overload]
    return str(c.rng.randint(10**6, 10**10))


def _order_ref(c: Ctx) -> str:
    kind = int(_once(c, "kind", lambda: c.rng.randrange(3)))  # type: ignore[call-overload]
    if kind == 0:
        return f"INV-{c.rng.randint(10**5, 10**7)}"
    if kind == 1:
        return str(uuid.UUID(int=c.rng.getrandbits(128)))
    return str(c.row + 50000)


def _ip(c: Ctx) -> str:
    return str(c.fake.ipv4() if c.rng.random() < 0.85 else c.fake.ipv6())


def _region(c: Ctx) -> str:
    try:
        return str(c.fake.administrative_unit())
    except AttributeError:
        return c.rng.choice(("Ontario", "Quebec", "Alberta", "Manitoba", "Nova Scotia", "Yukon"))


def _sentence(c: Ctx) -> str:
    return str(c.fake.sentence(nb_words=c.rng.randint(4, 14)))


def _gauss_int(mean: float, sd: float, lo: float, hi: float) -> Gen:
    return lambda c: str(int(min(hi, max(lo, c.rng.gauss(mean, sd)))))


def _gauss_float(mean: float, sd: float, digits: int = 1) -> Gen:
    return lambda c: f"{c.rng.gauss(mean, sd):.{digits}f}"


def _binary(c: Ctx) -> str:
    style = _once(c, "style", lambda: c.rng.choice((("yes", "no"), ("Y", "N"), ("1", "0"), ("true", "false"))))
    return c.rng.choice(style)  # type: ignore[arg-type]


def _rare_binary(c: Ctx) -> str:
    style = cast(
        tuple[str, str], _once(c, "style", lambda: c.rng.choice((("1", "0"), ("yes", "no"), ("True", "False"))))
    )
    return style[0] if c.rng.random() < 0.1 else style[1]


def _skewed_count(c: Ctx) -> str:
    zero = float(_once(c, "zero", lambda: c.rng.uniform(0.3, 0.95)))  # type: ignore[arg-type]
    return "0" if c.rng.random() < zero else str(round(c.rng.lognormvariate(2.0, 1.5)))


def _rate(c: Ctx) -> str:
    return f"{min(1.0, max(0.0, c.rng.betavariate(0.5, 2.0))):.2f}"


def _survey_weight(c: Ctx) -> str:
    weight = c.rng.lognormvariate(float(_once(c, "mu", lambda: c.rng.uniform(4, 12))), 0.5)  # type: ignore[arg-type]
    return f"{weight:.2f}" if _once(c, "decimals", lambda: c.rng.random() < 0.5) else str(round(weight))


def _product(c: Ctx) -> str:
    name = f"{c.rng.choice(_BRANDS)} {c.rng.choice(_GOODS)}"
    return f"{name} {c.rng.randint(1, 900)}" if _once(c, "numbered", lambda: c.rng.random() < 0.5) else name


def _few_names(c: Ctx) -> str:
    pool = _once(c, "pool", lambda: [str(c.fake.name()) for _ in range(c.rng.randint(3, 25))])
    return str(c.rng.choice(pool))  # type: ignore[arg-type]


def _coded(lo: int, hi: int) -> Gen:
    def gen(c: Ctx) -> str:
        top = int(_once(c, "top", lambda: c.rng.randint(lo + 3, hi)))  # type: ignore[call-overload]
        return str(c.rng.randint(lo, top))

    return gen


def _blood_group(c: Ctx) -> str:
    group, sign = c.rng.choice(("A", "B", "AB", "O")), c.rng.random() < 0.85
    style = int(_once(c, "style", lambda: c.rng.randrange(4)))  # type: ignore[call-overload]
    if style == 0:
        return f"{group}{'+' if sign else '-'}"
    if style == 1:
        return f"{group} {'pos' if sign else 'neg'}"
    if style == 2:
        return f"{group} Rh {'positive' if sign else 'negative'}"
    return f"{group}{'pos' if sign else 'neg'}"


def _expiry(c: Ctx) -> str:
    year = c.rng.randint(24, 33)
    full = _once(c, "full", lambda: c.rng.random() < 0.3)
    return f"{c.rng.randint(1, 12):02d}/{2000 + year if full else year}"


_DISEASES = (
    "Type 2 diabetes",
    "Hypertension",
    "Asthma",
    "Major depressive disorder",
    "Migraine",
    "Chronic kidney disease",
    "Atrial fibrillation",
    "Breast cancer",
    "HIV infection",
    "Hepatitis C",
    "Rheumatoid arthritis",
    "COPD",
    "Epilepsy",
    "Schizophrenia",
    "Coronary artery disease",
    "Osteoporosis",
    "Hypothyroidism",
    "Generalized anxiety disorder",
    "Lung cancer",
    "Multiple sclerosis",
    "Parkinson's disease",
    "Obesity",
    "Pneumonia",
    "Heart failure",
)
_DRUGS = (
    "Metformin 500mg",
    "Lisinopril",
    "Atorvastatin 20 mg",
    "Levothyroxine",
    "Amlodipine",
    "Omeprazole",
    "Sertraline",
    "Salbutamol",
    "Insulin glargine",
    "Warfarin",
    "Ibuprofen",
    "Prednisolone",
    "Fluoxetine",
    "Simvastatin",
    "Bisoprolol",
    "Amoxicillin",
)
_RELIGIONS = (
    ("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "Sikh", "No religion", "Other"),
    ("Catholic", "Protestant", "Orthodox", "Islam", "Judaism", "Atheist", "Agnostic"),
    ("Anglican", "Baptist", "Methodist", "Lutheran", "Muslim", "Hindu", "None"),
)
_ETHNICITIES = (
    ("White", "Black", "Asian", "Hispanic", "Mixed", "Other"),
    ("White", "Black or African American", "Asian", "American Indian or Alaska Native", "Two or more races"),
    ("Caucasian", "African", "Asian", "Latino", "Pacific Islander", "Indigenous", "Arab"),
)
_MARITAL = (
    ("Single", "Married", "Divorced", "Widowed", "Separated"),
    ("never married", "married", "divorced", "widowed", "de facto partnership"),
    ("S", "M", "D", "W"),
)
_EDUCATION = (
    ("High school", "Some college", "Associate degree", "Bachelor's degree", "Master's degree", "Doctorate"),
    ("Primary", "Secondary", "Vocational", "Undergraduate", "Postgraduate", "PhD"),
    ("Year 10", "Year 12", "Certificate III", "Diploma", "Bachelor", "Masters"),
)
_SEX = (("M", "F"), ("Male", "Female"), ("male", "female", "other"), ("man", "woman"), ("1", "2"))
_STATUS = (
    ("active", "inactive", "pending", "closed"),
    ("Open", "In progress", "Resolved", "Closed"),
    ("shipped", "delivered", "cancelled", "returned", "processing"),
    ("approved", "rejected", "pending review", "submitted"),
)
_NAMED_REGIONS = (
    "Ontario",
    "Quebec",
    "British Columbia",
    "Alberta",
    "Manitoba",
    "Saskatchewan",
    "Nova Scotia",
    "New Brunswick",
    "New South Wales",
    "Victoria",
    "Queensland",
    "Western Australia",
    "South Australia",
    "Tasmania",
)
_HOUSEHOLD = ("Head", "Spouse", "Child", "Parent", "Sibling", "Grandchild", "Lodger", "Partner")
_EMPLOYMENT = ("Employed", "Self-employed", "Unemployed", "Retired", "Student", "Government", "Part-time")
_PARTIES = ("Labour", "Conservative", "Liberal", "Green", "Democrat", "Republican", "Independent", "None")
_ORIENTATION = ("Heterosexual", "Gay", "Lesbian", "Bisexual", "Prefer not to say", "Asexual")
_DEPARTMENTS = ("Sales", "Finance", "IT", "Human Resources", "Operations", "Marketing", "Legal", "Support")
_CATEGORIES = ("Electronics", "Books", "Garden", "Toys", "Clothing", "Sports", "Food", "Beauty", "Home")
_BRANDS = ("Ultra", "Pro", "Mini", "Max", "Eco", "Plus")
_GOODS = ("Lamp", "Chair", "Phone case", "Kettle", "Desk", "Drill", "Backpack", "Blender")
_PLANS = ("Basic", "Standard", "Premium", "Family", "Business", "Trial")
_PAYMENT = ("Visa", "Mastercard", "PayPal", "Bank transfer", "Cash", "Apple Pay")
_PROTOCOLS = ("tcp", "udp", "icmp")
_SERVICES = ("http", "https", "ssh", "dns", "smtp", "ftp", "ntp", "imap", "telnet", "rdp")
_ECG = ("normal", "ST-T abnormality", "LV hypertrophy", "sinus rhythm", "atrial fibrillation")
_ALLERGIES = ("Penicillin", "Peanuts", "Latex", "None known", "Shellfish", "Pollen", "Sulfa drugs")
_WORDS = ("alpha", "bravo", "delta", "kilo", "lima", "oscar", "sierra", "tango", "zulu", "echo", "nova", "terra")


def _opaque_header(rng: random.Random) -> str:
    """A header the lexicon does not know: an abbreviation, like the codes of real data sets."""
    for _ in range(100):
        length = rng.randint(2, 8)
        letters = "".join(rng.choice(string.ascii_lowercase) for _ in range(length))
        if rng.random() < 0.2:
            letters += str(rng.randint(1, 9))
        if not match_header(letters) and letters not in EVALUATION_HEADERS:
            return letters
    return "zzq"


# --- concepts ----------------------------------------------------------------------------------------------------


def _c(name: str, label: str, headers: str, gen: Gen, *, needs_header: bool = False) -> Concept:
    return Concept(name, label, tuple(h.strip() for h in headers.split("|")), gen, needs_header)


ID, QI, SENS, OTHER = CLASSES
CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in (
        # identifiers
        _c("full_name", ID, "name|full name|customer name|patient name|contact name|account holder", _f("name")),
        # A handful of names over many rows (the doctor, the sales rep): still names of people.
        _c(
            "staff_name",
            ID,
            "doctor name|sales rep|account manager|assigned agent|attending physician|handled by",
            _few_names,
        ),
        _c("first_name", ID, "first name|fname|forename|first names", _f("first_name")),
        _c("last_name", ID, "last name|surname|lname|last names", _f("last_name")),
        _c("email", ID, "email address|e mail|mail|customer email|email addr", _f("email")),
        _c("phone", ID, "phone|phone number|tel|contact number|cell phone|fax|mobile phone no", _f("phone_number")),
        _c("national_id", ID, "ssn|national id|tax id|social security number|national insurance number", _national_id),
        _c("passport", ID, "passport number|passport|passport id", _f("passport_number"), needs_header=True),
        _c("plate", ID, "license plate|licence plate|vehicle plate", _f("license_plate"), needs_header=True),
        _c("card", ID, "credit card|card number|cc number|card no", _f("credit_card_number")),
        _c("iban", ID, "iban number|bank account|account iban|iban code", _f("iban")),
        _c(
            "account_number",
            ID,
            "account number|acct no|bank account number",
            lambda c: str(c.rng.randint(10**7, 10**12)),
            needs_header=True,
        ),
        _c("address", ID, "address|addr line1|mailing address|residential address|street", _f("street_address")),
        _c("ip", ID, "ip|ip address|client ip|source ip|remote addr", _ip),
        _c("mac", ID, "mac address|device mac|mac", _f("mac_address")),
        _c("username", ID, "username|user name|login|handle|screen name", _f("user_name"), needs_header=True),
        _c(
            "person_ref",
            ID,
            "customer id|patient id|user id|member number|client no|employee id|record id|id|person id",
            _person_ref,
            needs_header=True,
        ),
        # quasi-identifiers
        _c("age", QI, "patient age|age at visit|current age|age yrs|age in years", _gauss_int(44, 17, 0, 99)),
        _c("birth_date", QI, "dob|birthday|birth dt|date born", _birth_date),
        _c("birth_year", QI, "birth year|year of birth|yob", lambda c: str(c.rng.randint(1930, 2008))),
        _c("postcode", QI, "zip code|postal code|zipcode|postal", _f("postcode")),
        _c("sex", QI, "patient sex|sex code|gender code|customer gender", _styled_choice(*_SEX)),
        _c("occupation", QI, "profession|job|occupation title|current job", _f("job"), needs_header=True),
        _c("employer", QI, "company|employer name|employing company", _f("company"), needs_header=True),
        _c("employment", QI, "employment status|employment type|work status", _choice(*_EMPLOYMENT)),
        _c("city", QI, "city|home city|city of residence|town name", _f("city"), needs_header=True),
        _c(
            "region", QI, "province|county|state province|home state|state name|region name", _region, needs_header=True
        ),
        # Region names the lexicon's gazetteer knows: these a reader tells from the values alone.
        _c("region_named", QI, "province|territory|home state|region name|state name", _choice(*_NAMED_REGIONS)),
        _c("country", QI, "country|nationality|country of birth|citizenship", _f("country")),
        _c("marital", QI, "married|civil status|marital stat|marital state", _styled_choice(*_MARITAL)),
        _c("education", QI, "education level|highest degree|qualification|schooling", _styled_choice(*_EDUCATION)),
        # Categorical quasi-identifiers are often stored as numeric codes (ISCED levels, years of schooling).
        _c(
            "education_code",
            QI,
            "education code|education years|years of education|isced level",
            _coded(0, 20),
            needs_header=True,
        ),
        _c("marital_code", QI, "marital code|marital status code|marital", _coded(1, 6), needs_header=True),
        _c(
            "household",
            QI,
            "household role|relation to head|relationship to head",
            _choice(*_HOUSEHOLD),
            needs_header=True,
        ),
        # sensitive
        _c("ethnicity", SENS, "ethnicity|ethnic group|racial group|race code", _styled_choice(*_ETHNICITIES)),
        _c("religion", SENS, "religion|faith|denomination|religious group", _styled_choice(*_RELIGIONS)),
        _c("party", SENS, "political party|party affiliation|politics", _choice(*_PARTIES), needs_header=True),
        _c("union", SENS, "union member|trade union|union membership", _binary, needs_header=True),
        _c("orientation", SENS, "sexual orientation|sexuality", _choice(*_ORIENTATION), needs_header=True),
        _c("criminal", SENS, "criminal record|convictions|prior offense", _binary, needs_header=True),
        _c("diagnosis", SENS, "diagnosis|condition|disease|primary diagnosis|medical conditions", _choice(*_DISEASES)),
        _c("icd10", SENS, "diagnosis code|icd10|icd code|dx code", lambda c: _icd10(c)),
        _c("medication", SENS, "medication|drug|prescription|current medication", _choice(*_DRUGS)),
        _c("allergy", SENS, "allergy|allergies|known allergies", _choice(*_ALLERGIES), needs_header=True),
        _c("blood_type", SENS, "blood type|blood group", _blood_group),
        _c(
            "blood_pressure",
            SENS,
            "blood pressure|bp|systolic bp|resting bp",
            lambda c: (
                f"{int(c.rng.gauss(125, 15))}/{int(c.rng.gauss(80, 10))}"
                if _once(c, "pair", lambda: c.rng.random() < 0.5)
                else str(int(c.rng.gauss(130, 18)))
            ),
            needs_header=True,
        ),
        _c(
            "lab",
            SENS,
            "cholesterol|glucose|heart rate|bmi|hba1c|ldl|fasting glucose",
            _gauss_float(120, 35, 0),
            needs_header=True,
        ),
        _c("body", SENS, "weight kg|height cm|body weight|height", _gauss_float(75, 14), needs_header=True),
        _c(
            "health_flag",
            SENS,
            "pregnant|diabetic|disability|has diabetes|is smoker|disabled|smoking status",
            _binary,
            needs_header=True,
        ),
        _c("ecg", SENS, "ecg result|ekg|ecg", _choice(*_ECG), needs_header=True),
        _c("income", SENS, "annual income|salary|wage|gross pay|monthly salary|income amount", _money(10.6, 0.5)),
        _c(
            "capital_gain",
            SENS,
            "capital gains|capital losses|investment gains|realized gains|net capital gains",
            _capital_gain,
        ),
        _c(
            "balance",
            SENS,
            "account balance|balance|debt|loan amount|outstanding debt|mortgage",
            _money(8.0, 1.5, negative=0.15),
            needs_header=True,
        ),
        _c(
            "finance_flag",
            SENS,
            "in arrears|loan default|overdue payments|bankrupt|has debt|missed payment",
            _binary,
            needs_header=True,
        ),
        _c(
            "credit_score",
            SENS,
            "credit score|credit rating",
            _gauss_int(680, 70, 300, 850),
            needs_header=True,
        ),
        # other
        _c(
            "order_ref",
            OTHER,
            "order id|transaction id|invoice number|order no|ticket id",
            _order_ref,
            needs_header=True,
        ),
        _c("row_index", OTHER, "row|index|line no|row number", lambda c: str(c.row + 1)),
        _c("price", OTHER, "price|unit price|amount|total|fee|order total", _money(3.0, 1.0), needs_header=True),
        _c("quantity", OTHER, "quantity|qty|items|units", lambda c: str(c.rng.randint(1, 20)), needs_header=True),
        _c("event_time", OTHER, "created at|timestamp|updated at|event time|last login|logged at", _timestamp),
        _c("event_date", OTHER, "order date|ship date|visit date|start date|invoice date|admission date", _event_date),
        _c(
            "status", OTHER, "status|order status|account status|current state|state of order", _styled_choice(*_STATUS)
        ),
        _c("category", OTHER, "category|product category|type|segment", _choice(*_CATEGORIES)),
        _c(
            "product",
            OTHER,
            "product|product name|item",
            _product,
            needs_header=True,
        ),
        _c(
            "sku",
            OTHER,
            "sku|product code|part number",
            lambda c: f"{c.rng.choice('ABCDEFGH')}{c.rng.choice('XYZ')}-{c.rng.randint(100, 999)}",
            needs_header=True,
        ),
        _c("rating", OTHER, "rating|score|stars|satisfaction", lambda c: str(c.rng.randint(1, 5)), needs_header=True),
        _c(
            "measurement",
            OTHER,
            "temperature|humidity|voltage|pressure hpa|reading",
            _gauss_float(21, 6, 2),
            needs_header=True,
        ),
        _c("comment", OTHER, "comment|notes|description|remarks", _sentence),
        _c("color", OTHER, "color|colour", _f("color_name")),
        # A bare yes/no column says nothing personal: only its header could.
        _c("flag", OTHER, "active|verified|newsletter|opt in|is deleted|in stock|enabled", _binary),
        _c("url", OTHER, "website|url|homepage|referrer", _f("url")),
        _c("expiry", OTHER, "expiry date|exp date|valid thru|expiration|card exp", _expiry),
        _c("currency", OTHER, "currency|currency code", _choice("EUR", "USD", "GBP", "CAD", "AUD", "SEK")),
        _c("department", OTHER, "department|dept|team|division", _choice(*_DEPARTMENTS), needs_header=True),
        _c("plan", OTHER, "plan|subscription|tier|membership level", _choice(*_PLANS), needs_header=True),
        _c("payment", OTHER, "payment method|payment type", _choice(*_PAYMENT), needs_header=True),
        _c(
            "survey_weight",
            OTHER,
            "sample weight|survey weight|weight|final weight|person weight",
            _survey_weight,
            needs_header=True,
        ),
        _c(
            "hours",
            OTHER,
            "weekly hours|working hours|hours worked|contract hours",
            _gauss_int(38, 9, 1, 80),
            needs_header=True,
        ),
        _c("protocol", OTHER, "protocol|proto|transport", _choice(*_PROTOCOLS), needs_header=True),
        _c("service", OTHER, "app protocol|dst service|service name", _choice(*_SERVICES), needs_header=True),
        _c(
            "port",
            OTHER,
            "port|dst port|src port",
            lambda c: str(c.rng.choice((22, 53, 80, 443, 8080, 3389, c.rng.randint(1024, 65535)))),
            needs_header=True,
        ),
        _c(
            "bytes",
            OTHER,
            "bytes|bytes sent|bytes received|payload size|duration ms|packets",
            _skewed_count,
            needs_header=True,
        ),
        _c("rate", OTHER, "error rate|ratio|drop rate|pct|utilization", _rate, needs_header=True),
        _c(
            "http_status",
            OTHER,
            "http status|response code|status code",
            _choice("200", "200", "301", "404", "500"),
            needs_header=True,
        ),
        _c(
            "sensor_id",
            OTHER,
            "sensor id|station id|node id",
            lambda c: f"S{c.rng.randint(1, 40):03d}",
            needs_header=True,
        ),
        _c(
            "device_id",
            ID,
            "device id|imei|device identifier",
            lambda c: str(uuid.UUID(int=c.rng.getrandbits(128))),
            needs_header=True,
        ),
    )
}


def _icd10_code(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFGHIJKLMNOPQRSTVWXYZ")
    return f"{letter}{rng.randint(0, 99):02d}" + (f".{rng.randint(0, 9)}" if rng.random() < 0.6 else "")


def _icd10(c: Ctx) -> str:
    # Real diagnosis columns repeat a few common codes as often as they spread over many.
    common = _once(c, "common", lambda: [_icd10_code(c.rng) for _ in range(c.rng.choice((5, 12, 40)))])
    return c.rng.choice(common) if c.rng.random() < 0.7 else _icd10_code(c.rng)  # type: ignore[arg-type]


# Decoys: lexicon words in headers that do not mean the concept (a flag about an e-mail, a count of logins).
_DECOY_WORDS = ("email", "phone", "address", "account", "card", "admin", "user", "profile", "device", "customer")


def _decoy(rng: random.Random) -> tuple[str, Gen, str]:
    word = rng.choice(_DECOY_WORDS)
    kind = rng.randrange(4)
    if kind == 0:
        return (
            f"{rng.choice(('is', 'has', 'was'))} {word} {rng.choice(('verified', 'confirmed', 'active', 'blocked'))}",
            _rare_binary,
            "flag",
        )
    if kind == 1:
        return f"num {word}s {rng.choice(('added', 'sent', 'created', 'removed'))}", _skewed_count, "count"
    if kind == 2:
        return f"{word} {rng.choice(('count', 'total count', 'changes count'))}", _skewed_count, "count"
    # A place or identity word over yes/no values: a flag, whatever the word (a column of 0/1 is not a country).
    place = rng.choice(("country flag", "region match", "name match", "city known", "mail ok", "user ok"))
    return place, _rare_binary, "binary"


def _opaque(domain: str, rng: random.Random) -> tuple[Gen, str, str]:
    """(values, class, kind) of an opaque-headed column in a table of ``domain``."""
    kind = rng.choice(("codes", "measure", "skewed", "words", "rate", "large"))
    if kind == "codes":
        top = rng.randint(1, 6)
        base = rng.choice((0, 1))
        gen: Gen = lambda c: str(c.rng.randint(base, base + top))  # noqa: E731
    elif kind == "measure":
        mean, sd = rng.uniform(1, 250), rng.uniform(0.5, 40)
        gen = _gauss_float(mean, sd, rng.choice((0, 1, 1, 2)))
    elif kind == "skewed":
        gen = _skewed_count
    elif kind == "large":
        # Wide-ranging integers (weights, populations, byte totals), 4-7 digits.
        mu = rng.uniform(8, 13)
        gen = lambda c: str(round(c.rng.lognormvariate(mu, 0.6)))  # noqa: E731
    elif kind == "words":
        vocabulary = tuple(rng.sample(_WORDS, rng.randint(2, 7)))
        upper = rng.random() < 0.4
        gen = lambda c: c.rng.choice(vocabulary).upper() if upper else c.rng.choice(vocabulary).capitalize()  # noqa: E731
    else:
        gen = _rate
    if domain == "clinical":
        label = SENS
    elif domain == "census" and kind == "words":
        label = QI
    else:
        label = OTHER
    return gen, label, kind


# Which concepts each kind of table draws from, and how likely each is.
DOMAINS: dict[str, dict[str, float]] = {
    "crm": {
        "full_name": 0.5,
        "first_name": 0.4,
        "last_name": 0.4,
        "email": 0.8,
        "phone": 0.7,
        "address": 0.5,
        "postcode": 0.6,
        "city": 0.6,
        "region": 0.4,
        "region_named": 0.20,
        "country": 0.4,
        "birth_date": 0.4,
        "age": 0.3,
        "sex": 0.4,
        "person_ref": 0.8,
        "username": 0.3,
        "card": 0.2,
        "expiry": 0.15,
        "iban": 0.2,
        "income": 0.2,
        "event_time": 0.5,
        "status": 0.4,
        "plan": 0.3,
        "comment": 0.2,
        "url": 0.1,
        "rating": 0.2,
        "employer": 0.2,
        "occupation": 0.2,
        "ip": 0.2,
        "credit_score": 0.1,
        "marital": 0.15,
        "flag": 0.25,
        "finance_flag": 0.1,
        "national_id": 0.15,
        "staff_name": 0.2,
    },
    "hr": {
        "person_ref": 0.9,
        "full_name": 0.5,
        "first_name": 0.5,
        "last_name": 0.5,
        "email": 0.6,
        "phone": 0.5,
        "national_id": 0.5,
        "iban": 0.3,
        "account_number": 0.2,
        "address": 0.4,
        "birth_date": 0.6,
        "sex": 0.6,
        "marital": 0.5,
        "religion": 0.3,
        "union": 0.3,
        "health_flag": 0.3,
        "income": 0.8,
        "department": 0.6,
        "occupation": 0.6,
        "hours": 0.4,
        "event_date": 0.4,
        "city": 0.3,
        "postcode": 0.3,
        "region": 0.2,
        "region_named": 0.10,
        "country": 0.2,
        "education": 0.3,
        "ethnicity": 0.2,
        "event_time": 0.3,
        "status": 0.2,
        "education_code": 0.1,
        "party": 0.1,
        "orientation": 0.05,
        "staff_name": 0.2,
    },
    "clinical": {
        "person_ref": 0.8,
        "full_name": 0.4,
        "national_id": 0.3,
        "birth_date": 0.5,
        "age": 0.6,
        "sex": 0.8,
        "postcode": 0.3,
        "city": 0.2,
        "diagnosis": 0.5,
        "icd10": 0.4,
        "medication": 0.4,
        "allergy": 0.2,
        "blood_type": 0.3,
        "blood_pressure": 0.5,
        "lab": 0.8,
        "body": 0.4,
        "health_flag": 0.5,
        "ecg": 0.2,
        "event_date": 0.5,
        "event_time": 0.2,
        "phone": 0.2,
        "ethnicity": 0.2,
        "comment": 0.1,
        "status": 0.1,
        "staff_name": 0.3,
    },
    "census": {
        "age": 0.9,
        "sex": 0.9,
        "marital": 0.7,
        "education": 0.7,
        "occupation": 0.6,
        "employment": 0.6,
        "household": 0.5,
        "ethnicity": 0.6,
        "religion": 0.3,
        "country": 0.6,
        "region": 0.5,
        "region_named": 0.25,
        "city": 0.2,
        "postcode": 0.2,
        "income": 0.6,
        "capital_gain": 0.4,
        "survey_weight": 0.5,
        "hours": 0.5,
        "birth_year": 0.3,
        "person_ref": 0.2,
        "party": 0.35,
        "orientation": 0.15,
        "health_flag": 0.2,
        "criminal": 0.1,
        "education_code": 0.3,
        "marital_code": 0.2,
    },
    "commerce": {
        "order_ref": 0.9,
        "event_date": 0.6,
        "event_time": 0.4,
        "product": 0.6,
        "sku": 0.4,
        "category": 0.5,
        "quantity": 0.7,
        "price": 0.8,
        "status": 0.6,
        "payment": 0.4,
        "full_name": 0.4,
        "email": 0.4,
        "phone": 0.2,
        "address": 0.4,
        "postcode": 0.4,
        "city": 0.4,
        "region": 0.2,
        "region_named": 0.10,
        "country": 0.3,
        "card": 0.2,
        "expiry": 0.2,
        "rating": 0.3,
        "comment": 0.3,
        "currency": 0.3,
        "color": 0.2,
        "url": 0.1,
        "flag": 0.25,
        "national_id": 0.1,
        "staff_name": 0.15,
    },
    "network": {
        "event_time": 0.8,
        "ip": 0.7,
        "protocol": 0.6,
        "service": 0.5,
        "port": 0.5,
        "bytes": 0.9,
        "rate": 0.6,
        "http_status": 0.3,
        "status": 0.3,
        "username": 0.3,
        "mac": 0.2,
        "device_id": 0.2,
        "url": 0.2,
        "category": 0.2,
        "order_ref": 0.2,
        "flag": 0.25,
    },
    "sensor": {
        "event_time": 0.9,
        "sensor_id": 0.7,
        "measurement": 0.9,
        "rate": 0.4,
        "bytes": 0.3,
        "status": 0.3,
        "device_id": 0.3,
        "region": 0.2,
        "region_named": 0.10,
        "city": 0.2,
        "row_index": 0.3,
        "category": 0.2,
        "flag": 0.25,
    },
    "banking": {
        "person_ref": 0.6,
        "full_name": 0.6,
        "iban": 0.6,
        "account_number": 0.4,
        "card": 0.4,
        "expiry": 0.3,
        "balance": 0.8,
        "income": 0.5,
        "credit_score": 0.4,
        "national_id": 0.4,
        "birth_date": 0.4,
        "address": 0.3,
        "phone": 0.3,
        "email": 0.3,
        "event_time": 0.5,
        "price": 0.4,
        "status": 0.4,
        "currency": 0.4,
        "employment": 0.3,
        "marital": 0.2,
        "occupation": 0.2,
        "order_ref": 0.3,
        "flag": 0.25,
        "finance_flag": 0.3,
        "staff_name": 0.15,
    },
}
# How many opaque-headed and decoy columns a table of each domain gets (at most).
OPAQUE = {"crm": 1, "hr": 1, "clinical": 6, "census": 3, "commerce": 2, "network": 6, "sensor": 3, "banking": 1}
DECOYS = {"crm": 2, "hr": 1, "clinical": 0, "census": 0, "commerce": 1, "network": 4, "sensor": 1, "banking": 1}
VALUES_ONLY_TABLES = 80
# A person-record number is an identifier in a table about people; elsewhere "id" numbers records of events.
_PERSON_DOMAINS = frozenset(("crm", "hr", "clinical", "census", "banking"))

_PREFIXES = ("cust", "pt", "usr", "src", "main", "tbl", "x", "c", "p")


def _style(words: list[str], rng: random.Random, index: int, *, meaningless: bool) -> str:
    if meaningless:
        return rng.choice(("col_{}", "field{}", "C{}", "var_{}", "Unnamed: {}", "X{}", "column{}", "V{}")).format(index)
    style = rng.choice(("snake", "camel", "upper", "prefixed", "title", "kebab", "pascal", "dotted", "plain"))
    if style == "snake":
        return "_".join(words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "upper":
        return "_".join(words).upper()
    if style == "prefixed":
        return f"{rng.choice(_PREFIXES)}_{'_'.join(words)}"
    if style == "title":
        return " ".join(w.capitalize() for w in words)
    if style == "kebab":
        return "-".join(words)
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "dotted":
        return ".".join(words)
    return " ".join(words)


def _values(gen: Gen, ctx: Ctx, rows: int, null_rate: float) -> list[str | None]:
    out: list[str | None] = []
    for row in range(rows):
        ctx.row = row
        out.append(None if ctx.rng.random() < null_rate else gen(ctx))
    return out


def _table(domain: str, index: int, seed: int) -> list[CorpusColumn]:
    from faker import Faker

    rng = random.Random(f"{seed}:{domain}:{index}")
    locale = rng.choice(TRAIN_LOCALES)
    fake = Faker(locale)
    fake.seed_instance(rng.getrandbits(32))
    values_only = domain == "values_only"
    if values_only:
        # Every concept a reader could tell from its values, equally often: these tables teach the values alone.
        readable = sorted(name for name, concept in CONCEPTS.items() if not concept.needs_header)
        chosen = rng.sample(readable, rng.randint(8, 20))
    else:
        chosen = [name for name, p in DOMAINS[domain].items() if rng.random() < p]
    rows = rng.randint(120, 400)
    source = f"{domain}/{locale}/{index}"
    specs: list[tuple[str, Gen, str, str]] = []  # header, values, class, concept
    for name in chosen:
        concept = CONCEPTS[name]
        label = concept.label
        if name == "person_ref" and domain not in _PERSON_DOMAINS:
            label = OTHER
        meaningless = values_only or (not concept.needs_header and rng.random() < 0.05)
        phrase = rng.choice(concept.headers)
        header = _style(phrase.split(), rng, rng.randint(1, 40), meaningless=meaningless)
        specs.append((header, concept.gen, label, name))
    if not values_only:
        for _ in range(rng.randint(0, OPAQUE[domain])):
            gen, label, kind = _opaque(domain, rng)
            specs.append((_opaque_header(rng), gen, label, f"opaque:{kind}"))
        for _ in range(rng.randint(0, DECOYS[domain])):
            phrase, gen, kind = _decoy(rng)
            specs.append((_style(phrase.split(), rng, 0, meaningless=False), gen, OTHER, f"decoy:{kind}"))
    rng.shuffle(specs)
    columns = []
    for header, gen, label, name in specs:
        ctx = Ctx(fake, random.Random(rng.getrandbits(64)), locale, 0)
        null_rate = rng.choice((0.0, 0.0, 0.0, 0.02, 0.1, 0.3))
        columns.append(CorpusColumn(header, _values(gen, ctx, rows, null_rate), label, name, source))
    return columns


def generate_tables(*, seed: int = SEED) -> Iterator[list[CorpusColumn]]:
    """Every training table, deterministically."""
    for domain in DOMAINS:
        for index in range(TABLES_PER_DOMAIN):
            table = _table(domain, index, seed)
            if table:
                yield table
    for index in range(VALUES_ONLY_TABLES):
        table = _table("values_only", index, seed)
        if table:
            yield table


def _profile(column: CorpusColumn) -> ColumnProfile:
    sample = [v for v in column.values if v is not None]
    return ColumnProfile(column.header, rows=len(column.values), nulls=len(column.values) - len(sample), sample=sample)


def build_corpus(*, seed: int = SEED) -> tuple[list[CorpusColumn], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """(columns, feature matrix with table context, class indices) of the training corpus."""
    columns: list[CorpusColumn] = []
    blocks = []
    # Some Faker locales print a disclaimer per generated national number.
    with contextlib.redirect_stdout(io.StringIO()):
        tables = list(generate_tables(seed=seed))
    for table in tables:
        columns += table
        blocks.append(table_features([_profile(c) for c in table]))
    shared = sorted({_normalized(c.header) for c in columns} & EVALUATION_HEADERS)
    if shared:
        raise SystemExit(f"training headers equal to evaluation headers (rephrase them in pii_corpus.py): {shared}")
    labels = np.array([CLASSES.index(c.label) for c in columns], dtype=np.int64)
    return columns, np.vstack(blocks), labels


def training_header_keys(corpus: Path = OUTPUT) -> frozenset[str]:
    """The training corpus's headers, normalized (tokens joined by spaces), as stored in the corpus file."""
    with np.load(corpus, allow_pickle=False) as data:
        return frozenset(str(h) for h in data["headers"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help="generator seed (the shipped corpus uses the default)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    output: Path = args.output
    columns, features, labels = build_corpus(seed=args.seed)
    np.savez_compressed(
        output,
        features=features.astype(np.float32),
        labels=labels,
        feature_names=np.array(FEATURE_NAMES),
        feature_version=np.array(FEATURE_VERSION),
        classes=np.array(CLASSES),
        sources=np.array([c.source for c in columns]),
        concepts=np.array([c.concept for c in columns]),
        headers=np.array([_normalized(c.header) for c in columns]),
    )
    counts = {cls: int((labels == i).sum()) for i, cls in enumerate(CLASSES)}
    tables = len({c.source for c in columns})
    print(
        f"wrote {output} ({output.stat().st_size / 1024:.0f} KiB): {len(columns)} columns in {tables} tables {counts}"
    )


if __name__ == "__main__":
    main()
