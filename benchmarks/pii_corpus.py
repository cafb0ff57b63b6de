"""The labeled column corpus the PII classifier is trained and evaluated on, built reproducibly.

    PYTHONPATH=src python benchmarks/pii_corpus.py        # rewrites src/fedledger/data/classify/corpus.npz

Synthetic columns come from Faker (fixed seeds) across locales and header conventions; real columns come from the
public tables in ../shared/data (adult, heart-disease, nsl-kdd), labeled by hand below. Evaluation must be on data
the model never saw, so whole groups are held out:

* locales: trained on en_US de_DE fr_FR es_ES nl_NL ja_JP en_IN sv_SE da_DK; held out: it_IT pt_BR en_GB pl_PL fi_FI
  (their header language too: Italian, Portuguese, Polish and Finnish headers never occur in training);
* header styles: trained on snake_case, camelCase, UPPER_CASE, prefixed and meaningless (``col_7``); held out:
  "Title Case", kebab-case, PascalCase and dotted.name;
* tables: trained on nsl-kdd and heart-disease Cleveland + Switzerland; held out: adult (a table whose columns were
  never seen) and heart-disease Hungarian + VA (same schema, other hospitals' patients).

Concepts whose values alone cannot tell them apart (a customer number and an order number are both unique codes; a
salary and a price are both money) are never given a meaningless header: no classifier could be right there, and
including them would measure noise.
"""

from __future__ import annotations

import os
import random
import sys
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from fedledger.data.classify.features import FEATURE_NAMES, FEATURE_VERSION, ColumnProfile, column_features
from fedledger.data.classify.model import CLASSES

__all__ = ["CorpusColumn", "build_corpus", "featurize", "generate_columns"]

TRAIN_LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "nl_NL", "ja_JP", "en_IN", "sv_SE", "da_DK")
HELDOUT_LOCALES = ("it_IT", "pt_BR", "en_GB", "pl_PL", "fi_FI")
TRAIN_STYLES = ("snake", "camel", "upper", "prefixed", "meaningless")
HELDOUT_STYLES = ("title", "kebab", "pascal", "dotted", "meaningless")
# ../shared/data beside the checkout (worktrees sit one level deeper); FEDLEDGER_SHARED_DATA overrides.
_HERE = Path(__file__).resolve()
SHARED_DATA = next(
    (
        p
        for p in (
            Path(os.environ.get("FEDLEDGER_SHARED_DATA", "/nonexistent")),
            _HERE.parents[2] / "shared" / "data",
            _HERE.parents[3] / "shared" / "data",
        )
        if p.is_dir()
    ),
    _HERE.parents[2] / "shared" / "data",
)
OUTPUT = Path(__file__).resolve().parents[1] / "src" / "fedledger" / "data" / "classify" / "corpus.npz"
VARIANTS_PER_LOCALE = 2
SEED = 20240517


@dataclass
class CorpusColumn:
    header: str
    values: list[str | None]
    label: str
    concept: str
    source: str  # locale or table name


Gen = Callable[["Ctx"], str]


@dataclass
class Ctx:
    fake: object
    rng: random.Random
    locale: str
    row: int


@dataclass
class Concept:
    name: str
    label: str
    headers: dict[str, list[str]]  # language -> header phrases (space separated words)
    gen: Gen
    needs_header: bool = False


def _h(text: str) -> int:
    """A stable hash (str hashes are salted per process): picks one value format per locale."""
    return zlib.crc32(text.encode())


def _f(method: str) -> Gen:
    return lambda c: str(getattr(c.fake, method)())


def _national_id(c: Ctx) -> str:
    if c.locale == "pt_BR":
        return str(c.fake.cpf())  # type: ignore[attr-defined]
    if c.locale == "en_IN":
        return str(c.fake.aadhaar_id())  # type: ignore[attr-defined]
    return str(c.fake.ssn())  # type: ignore[attr-defined]


def _date_fmt(d: date, c: Ctx, style: int) -> str:
    return (
        d.isoformat(),
        d.strftime("%d/%m/%Y"),
        d.strftime("%m/%d/%Y"),
        d.strftime("%d.%m.%Y"),
        d.strftime("%Y/%m/%d"),
    )[style]


def _birth(c: Ctx) -> str:
    d = date(1935, 1, 1) + timedelta(days=c.rng.randint(0, 365 * 70))
    return _date_fmt(d, c, _h(c.locale) % 5)


def _event_time(c: Ctx) -> str:
    d = date(2022, 1, 1) + timedelta(days=c.rng.randint(0, 900))
    return f"{d.isoformat()} {c.rng.randint(0, 23):02d}:{c.rng.randint(0, 59):02d}:{c.rng.randint(0, 59):02d}"


def _event_date(c: Ctx) -> str:
    d = date(2023, 1, 1) + timedelta(days=c.rng.randint(0, 500))
    return _date_fmt(d, c, _h(c.locale) % 5)


def _choice(*options: str) -> Gen:
    return lambda c: c.rng.choice(options)


def _weighted(options: dict[str, float]) -> Gen:
    keys, weights = list(options), list(options.values())
    return lambda c: c.rng.choices(keys, weights)[0]


def _money(lo: float, sigma: float, symbols: tuple[str, ...] = ("", "", "$", "€", "£")) -> Gen:
    def gen(c: Ctx) -> str:
        amount = round(c.rng.lognormvariate(lo, sigma), 2)
        symbol = symbols[_h(c.locale) % len(symbols)]
        return f"{symbol}{amount:.2f}" if symbol else f"{amount:.2f}"

    return gen


def _customer_id(c: Ctx) -> str:
    kind = _h(c.locale) % 3
    if kind == 0:
        return str(uuid.UUID(int=c.rng.getrandbits(128)))
    if kind == 1:
        return f"C{c.rng.randint(10**6, 10**8)}"
    return str(c.rng.randint(10**7, 10**10))


def _order_id(c: Ctx) -> str:
    return f"ORD-{c.rng.randint(10**5, 10**7)}" if _h(c.locale) % 2 else str(uuid.UUID(int=c.rng.getrandbits(128)))


def _ip(c: Ctx) -> str:
    return str(c.fake.ipv4() if c.rng.random() < 0.8 else c.fake.ipv6())  # type: ignore[attr-defined]


def _latlon_pair(c: Ctx) -> str:
    lat, lon = c.rng.uniform(35, 60), c.rng.uniform(-10, 30)
    return f"{lat:.6f}, {lon:.6f}"


def _coord(lo: float, hi: float) -> Gen:
    return lambda c: f"{c.rng.uniform(lo, hi):.6f}"


def _icd10(c: Ctx) -> str:
    letter = c.rng.choice("ABCDEFGHIJKLMNOPQRSTVWXYZ")
    code = f"{letter}{c.rng.randint(0, 99):02d}"
    return code + (f".{c.rng.randint(0, 9)}" if c.rng.random() < 0.6 else "")


_DISEASES = (
    "Type 2 diabetes mellitus",
    "Essential hypertension",
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
    "Anxiety disorder",
    "Lung cancer",
    "Multiple sclerosis",
    "Parkinson's disease",
)
_DRUGS = (
    "Metformin",
    "Lisinopril",
    "Atorvastatin",
    "Levothyroxine",
    "Amlodipine",
    "Omeprazole",
    "Sertraline",
    "Salbutamol",
    "Insulin glargine",
    "Warfarin",
    "Ibuprofen",
    "Prednisone",
    "Fluoxetine",
    "Simvastatin",
)

_BRANDS = ("Ultra", "Pro", "Mini", "Max", "Eco")
_GOODS = ("Lamp", "Chair", "Phone", "Kettle", "Desk", "Drill")

CONCEPTS: tuple[Concept, ...] = (
    # --- identifiers ---------------------------------------------------------------------------------------------
    Concept(
        "full_name",
        "identifier",
        {
            "en": ["name", "full name", "customer name", "patient name", "contact name"],
            "de": ["name", "kundenname", "vollstaendiger name"],
            "fr": ["nom complet", "nom client"],
            "es": ["nombre completo", "nombre cliente"],
            "it": ["nome completo", "nominativo"],
            "nl": ["naam", "volledige naam"],
            "pt": ["nome completo", "nome cliente"],
            "pl": ["imie i nazwisko"],
            "fi": ["nimi"],
        },
        _f("name"),
    ),
    Concept(
        "first_name",
        "identifier",
        {
            "en": ["first name", "given name", "fname", "forename"],
            "de": ["vorname"],
            "fr": ["prenom"],
            "es": ["nombre"],
            "it": ["nome"],
            "nl": ["voornaam"],
            "pt": ["primeiro nome"],
            "pl": ["imie"],
            "fi": ["etunimi"],
        },
        _f("first_name"),
    ),
    Concept(
        "last_name",
        "identifier",
        {
            "en": ["last name", "surname", "lname", "family name"],
            "de": ["nachname"],
            "fr": ["nom de famille", "nom"],
            "es": ["apellido", "apellidos"],
            "it": ["cognome"],
            "nl": ["achternaam"],
            "pt": ["sobrenome"],
            "pl": ["nazwisko"],
            "fi": ["sukunimi"],
        },
        _f("last_name"),
    ),
    Concept(
        "email",
        "identifier",
        {
            "en": ["email", "email address", "e mail", "mail", "contact email"],
            "de": ["e mail adresse", "email"],
            "fr": ["courriel", "adresse email"],
            "es": ["correo electronico", "correo"],
            "it": ["posta elettronica", "email"],
            "nl": ["e mailadres", "email"],
            "pt": ["email", "correio eletronico"],
            "pl": ["adres email"],
            "fi": ["sahkoposti"],
        },
        _f("email"),
    ),
    Concept(
        "phone",
        "identifier",
        {
            "en": ["phone", "phone number", "mobile", "tel", "contact number"],
            "de": ["telefon", "telefonnummer", "handy"],
            "fr": ["telephone", "portable"],
            "es": ["telefono", "movil"],
            "it": ["telefono", "cellulare"],
            "nl": ["telefoonnummer", "mobiel"],
            "pt": ["telefone", "celular"],
            "pl": ["telefon"],
            "fi": ["puhelin"],
        },
        _f("phone_number"),
    ),
    Concept(
        "national_id",
        "identifier",
        {
            "en": ["ssn", "social security number", "national id", "tax id"],
            "de": ["steuer id", "sozialversicherungsnummer"],
            "fr": ["numero insee", "nir"],
            "es": ["dni", "nif"],
            "it": ["codice fiscale", "cf"],
            "nl": ["bsn", "burgerservicenummer"],
            "pt": ["cpf"],
            "pl": ["pesel"],
            "fi": ["henkilotunnus", "hetu"],
        },
        _national_id,
    ),
    Concept(
        "card",
        "identifier",
        {
            "en": ["credit card", "card number", "cc number"],
            "de": ["kreditkarte", "kartennummer"],
            "fr": ["numero de carte"],
            "es": ["numero de tarjeta", "tarjeta"],
            "it": ["numero carta", "carta di credito"],
            "nl": ["kaartnummer"],
            "pt": ["numero do cartao", "cartao"],
            "pl": ["numer karty"],
            "fi": ["kortti"],
        },
        _f("credit_card_number"),
    ),
    Concept(
        "iban",
        "identifier",
        {
            "en": ["iban", "bank account", "account number"],
            "de": ["iban", "kontonummer"],
            "fr": ["iban", "compte bancaire"],
            "es": ["iban", "cuenta bancaria"],
            "it": ["iban", "conto corrente"],
            "nl": ["iban", "rekeningnummer"],
            "pt": ["iban", "conta bancaria"],
            "pl": ["numer konta", "iban"],
            "fi": ["tilinumero", "iban"],
        },
        _f("iban"),
    ),
    Concept(
        "street_address",
        "identifier",
        {
            "en": ["address", "street address", "home address", "addr line1"],
            "de": ["adresse", "strasse", "anschrift"],
            "fr": ["adresse", "rue"],
            "es": ["direccion", "calle"],
            "it": ["indirizzo", "via"],
            "nl": ["adres", "straat"],
            "pt": ["endereco", "rua"],
            "pl": ["adres", "ulica"],
            "fi": ["osoite"],
        },
        _f("street_address"),
    ),
    Concept(
        "ip",
        "identifier",
        {
            "en": ["ip", "ip address", "client ip", "source ip"],
            "de": ["ip adresse"],
            "fr": ["adresse ip"],
            "es": ["direccion ip"],
            "it": ["indirizzo ip"],
            "nl": ["ip adres"],
            "pt": ["endereco ip"],
            "pl": ["adres ip"],
            "fi": ["ip osoite"],
        },
        _ip,
    ),
    Concept(
        "username",
        "identifier",
        {
            "en": ["username", "user name", "login", "handle"],
            "de": ["benutzername"],
            "fr": ["nom utilisateur"],
            "es": ["usuario"],
            "it": ["nome utente"],
            "nl": ["gebruikersnaam"],
            "pt": ["usuario"],
            "pl": ["login"],
            "fi": ["kayttajatunnus"],
        },
        _f("user_name"),
        needs_header=True,
    ),
    Concept(
        "customer_id",
        "identifier",
        {
            "en": ["customer id", "patient id", "user id", "member number", "client no"],
            "de": ["kundennummer", "patienten id"],
            "fr": ["numero client", "id patient"],
            "es": ["id cliente", "numero de paciente"],
            "it": ["codice cliente", "id paziente"],
            "nl": ["klantnummer", "patient id"],
            "pt": ["id cliente", "codigo paciente"],
            "pl": ["id klienta"],
            "fi": ["asiakasnumero"],
        },
        _customer_id,
        needs_header=True,
    ),
    Concept(
        "passport",
        "identifier",
        {
            "en": ["passport number", "passport no"],
            "de": ["reisepassnummer"],
            "fr": ["numero de passeport"],
            "es": ["numero de pasaporte"],
            "it": ["numero passaporto"],
            "nl": ["paspoortnummer"],
            "pt": ["numero do passaporte"],
            "pl": ["numer paszportu"],
            "fi": ["passin numero"],
        },
        _f("passport_number"),
        needs_header=True,
    ),
    # --- quasi-identifiers -----------------------------------------------------------------------------------------
    Concept(
        "age",
        "quasi_identifier",
        {
            "en": ["age", "age years", "patient age"],
            "de": ["alter"],
            "fr": ["age"],
            "es": ["edad"],
            "it": ["eta"],
            "nl": ["leeftijd"],
            "pt": ["idade"],
            "pl": ["wiek"],
            "fi": ["ika"],
        },
        lambda c: str(max(0, min(99, int(c.rng.gauss(45, 17))))),
    ),
    Concept(
        "birth_date",
        "quasi_identifier",
        {
            "en": ["date of birth", "dob", "birth date", "birthday"],
            "de": ["geburtsdatum"],
            "fr": ["date de naissance"],
            "es": ["fecha de nacimiento"],
            "it": ["data di nascita"],
            "nl": ["geboortedatum"],
            "pt": ["data de nascimento"],
            "pl": ["data urodzenia"],
            "fi": ["syntymaaika"],
        },
        _birth,
    ),
    Concept(
        "postcode",
        "quasi_identifier",
        {
            "en": ["zip", "zip code", "postal code", "postcode"],
            "de": ["plz", "postleitzahl"],
            "fr": ["code postal"],
            "es": ["codigo postal"],
            "it": ["cap", "codice postale"],
            "nl": ["postcode"],
            "pt": ["cep", "codigo postal"],
            "pl": ["kod pocztowy"],
            "fi": ["postinumero"],
        },
        _f("postcode"),
    ),
    Concept(
        "sex",
        "quasi_identifier",
        {
            "en": ["sex", "gender"],
            "de": ["geschlecht"],
            "fr": ["sexe", "genre"],
            "es": ["sexo", "genero"],
            "it": ["sesso"],
            "nl": ["geslacht"],
            "pt": ["sexo"],
            "pl": ["plec"],
            "fi": ["sukupuoli"],
        },
        lambda c: c.rng.choice(
            (("M", "F"), ("Male", "Female"), ("male", "female", "diverse"), ("m", "w"))[_h(c.locale) % 4]
        ),
    ),
    Concept(
        "occupation",
        "quasi_identifier",
        {
            "en": ["occupation", "job title", "profession", "job"],
            "de": ["beruf"],
            "fr": ["profession", "metier"],
            "es": ["profesion", "ocupacion"],
            "it": ["professione"],
            "nl": ["beroep"],
            "pt": ["profissao"],
            "pl": ["zawod"],
            "fi": ["ammatti"],
        },
        _f("job"),
    ),
    Concept(
        "city",
        "quasi_identifier",
        {
            "en": ["city", "town", "home city"],
            "de": ["stadt", "wohnort", "ort"],
            "fr": ["ville"],
            "es": ["ciudad"],
            "it": ["citta", "comune"],
            "nl": ["woonplaats", "stad"],
            "pt": ["cidade"],
            "pl": ["miasto"],
            "fi": ["kaupunki"],
        },
        _f("city"),
    ),
    Concept(
        "country",
        "quasi_identifier",
        {
            "en": ["country", "nationality", "country of birth"],
            "de": ["land", "staatsangehoerigkeit"],
            "fr": ["pays", "nationalite"],
            "es": ["pais", "nacionalidad"],
            "it": ["paese", "nazionalita"],
            "nl": ["land", "nationaliteit"],
            "pt": ["pais", "nacionalidade"],
            "pl": ["kraj"],
            "fi": ["maa"],
        },
        _f("country"),
    ),
    Concept(
        "marital",
        "quasi_identifier",
        {
            "en": ["marital status", "married"],
            "de": ["familienstand"],
            "fr": ["etat civil"],
            "es": ["estado civil"],
            "it": ["stato civile"],
            "nl": ["burgerlijke staat"],
            "pt": ["estado civil"],
            "pl": ["stan cywilny"],
            "fi": ["siviilisaaty"],
        },
        _choice("Single", "Married", "Divorced", "Widowed", "Separated"),
        needs_header=True,
    ),
    Concept(
        "education",
        "quasi_identifier",
        {
            "en": ["education", "education level", "highest degree"],
            "de": ["bildung", "abschluss"],
            "fr": ["niveau education", "diplome"],
            "es": ["educacion", "nivel educativo"],
            "it": ["istruzione", "titolo di studio"],
            "nl": ["opleiding"],
            "pt": ["escolaridade"],
            "pl": ["wyksztalcenie"],
            "fi": ["koulutus"],
        },
        _choice("High school", "Bachelor", "Master", "PhD", "Primary", "Vocational"),
        needs_header=True,
    ),
    Concept(
        "ethnicity",
        "quasi_identifier",
        {
            "en": ["race", "ethnicity", "ethnic group"],
            "de": ["ethnie"],
            "fr": ["origine ethnique"],
            "es": ["etnia"],
            "it": ["etnia"],
            "nl": ["etniciteit"],
            "pt": ["etnia", "raca"],
            "pl": ["pochodzenie etniczne"],
            "fi": ["etninen tausta"],
        },
        _choice("White", "Black", "Asian", "Hispanic", "Mixed", "Other"),
        needs_header=True,
    ),
    Concept(
        "employer",
        "quasi_identifier",
        {
            "en": ["employer", "company"],
            "de": ["arbeitgeber", "firma"],
            "fr": ["employeur", "entreprise"],
            "es": ["empleador", "empresa"],
            "it": ["datore di lavoro", "azienda"],
            "nl": ["werkgever", "bedrijf"],
            "pt": ["empregador", "empresa"],
            "pl": ["pracodawca", "firma"],
            "fi": ["tyonantaja"],
        },
        _f("company"),
        needs_header=True,
    ),
    # --- sensitive -------------------------------------------------------------------------------------------------
    Concept(
        "diagnosis_code",
        "sensitive",
        {
            "en": ["diagnosis code", "icd10", "icd code", "primary diagnosis"],
            "de": ["diagnose", "icd"],
            "fr": ["code diagnostic", "diagnostic"],
            "es": ["diagnostico", "codigo cie"],
            "it": ["diagnosi", "codice icd"],
            "nl": ["diagnose code"],
            "pt": ["diagnostico", "cid"],
            "pl": ["rozpoznanie"],
            "fi": ["diagnoosi"],
        },
        _icd10,
    ),
    Concept(
        "disease",
        "sensitive",
        {
            "en": ["diagnosis", "condition", "disease", "medical condition"],
            "de": ["krankheit", "diagnose"],
            "fr": ["maladie", "pathologie"],
            "es": ["enfermedad", "diagnostico"],
            "it": ["malattia", "patologia"],
            "nl": ["ziekte", "aandoening"],
            "pt": ["doenca", "condicao"],
            "pl": ["choroba"],
            "fi": ["sairaus"],
        },
        _choice(*_DISEASES),
        needs_header=True,
    ),
    Concept(
        "medication",
        "sensitive",
        {
            "en": ["medication", "drug", "prescription"],
            "de": ["medikament"],
            "fr": ["medicament", "traitement"],
            "es": ["medicamento"],
            "it": ["farmaco"],
            "nl": ["medicijn", "medicatie"],
            "pt": ["medicamento"],
            "pl": ["lek"],
            "fi": ["laake"],
        },
        _choice(*_DRUGS),
        needs_header=True,
    ),
    Concept(
        "blood_type",
        "sensitive",
        {
            "en": ["blood type", "blood group"],
            "de": ["blutgruppe"],
            "fr": ["groupe sanguin"],
            "es": ["grupo sanguineo"],
            "it": ["gruppo sanguigno"],
            "nl": ["bloedgroep"],
            "pt": ["tipo sanguineo"],
            "pl": ["grupa krwi"],
            "fi": ["veriryhma"],
        },
        _choice("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"),
    ),
    Concept(
        "income",
        "sensitive",
        {
            "en": ["income", "annual income", "salary", "wage"],
            "de": ["einkommen", "gehalt"],
            "fr": ["salaire", "revenu"],
            "es": ["salario", "ingresos"],
            "it": ["reddito", "stipendio"],
            "nl": ["inkomen", "salaris"],
            "pt": ["renda", "salario"],
            "pl": ["dochod", "wynagrodzenie"],
            "fi": ["tulot", "palkka"],
        },
        _money(10.6, 0.5),
        needs_header=True,
    ),
    Concept(
        "balance",
        "sensitive",
        {
            "en": ["account balance", "debt", "credit score", "loan amount"],
            "de": ["kontostand", "schulden"],
            "fr": ["solde", "dette"],
            "es": ["saldo", "deuda"],
            "it": ["saldo", "debito"],
            "nl": ["saldo", "schuld"],
            "pt": ["saldo", "divida"],
            "pl": ["saldo"],
            "fi": ["saldo"],
        },
        _money(8.0, 1.5, ("",)),
        needs_header=True,
    ),
    Concept(
        "gps",
        "sensitive",
        {
            "en": ["gps", "location", "coordinates", "last known location"],
            "de": ["standort", "koordinaten"],
            "fr": ["position", "coordonnees"],
            "es": ["ubicacion", "coordenadas"],
            "it": ["posizione", "coordinate"],
            "nl": ["locatie"],
            "pt": ["localizacao", "coordenadas"],
            "pl": ["lokalizacja"],
            "fi": ["sijainti"],
        },
        _latlon_pair,
    ),
    Concept(
        "latitude",
        "sensitive",
        {
            "en": ["latitude", "lat", "gps lat"],
            "de": ["breitengrad"],
            "fr": ["latitude"],
            "es": ["latitud"],
            "it": ["latitudine"],
            "nl": ["breedtegraad"],
            "pt": ["latitude"],
            "pl": ["szerokosc"],
            "fi": ["leveysaste"],
        },
        _coord(35, 60),
    ),
    Concept(
        "religion",
        "sensitive",
        {
            "en": ["religion", "faith"],
            "de": ["religion", "konfession"],
            "fr": ["religion"],
            "es": ["religion"],
            "it": ["religione"],
            "nl": ["religie"],
            "pt": ["religiao"],
            "pl": ["religia"],
            "fi": ["uskonto"],
        },
        _choice("Christian", "Muslim", "Jewish", "Hindu", "Buddhist", "None", "Other"),
        needs_header=True,
    ),
    Concept(
        "health_measure",
        "sensitive",
        {
            "en": ["cholesterol", "blood pressure", "glucose", "heart rate", "bmi"],
            "de": ["blutdruck", "cholesterin"],
            "fr": ["tension arterielle", "glycemie"],
            "es": ["presion arterial", "glucosa"],
            "it": ["pressione sanguigna", "glicemia"],
            "nl": ["bloeddruk"],
            "pt": ["pressao arterial", "glicose"],
            "pl": ["cisnienie krwi"],
            "fi": ["verenpaine"],
        },
        lambda c: (
            str(int(c.rng.gauss(130, 20)))
            if _h(c.locale) % 2
            else f"{int(c.rng.gauss(125, 15))}/{int(c.rng.gauss(80, 10))}"
        ),
        needs_header=True,
    ),
    Concept(
        "health_flag",
        "sensitive",
        {
            "en": ["hiv positive", "pregnant", "diabetic", "smoker", "disability"],
            "de": ["schwanger", "raucher"],
            "fr": ["enceinte", "fumeur"],
            "es": ["embarazada", "fumador"],
            "it": ["incinta", "fumatore"],
            "nl": ["zwanger", "roker"],
            "pt": ["gravida", "fumante"],
            "pl": ["ciaza"],
            "fi": ["raskaana"],
        },
        _choice("yes", "no"),
        needs_header=True,
    ),
    # --- other -----------------------------------------------------------------------------------------------------
    Concept(
        "order_id",
        "other",
        {
            "en": ["order id", "transaction id", "invoice number"],
            "de": ["bestellnummer", "rechnungsnummer"],
            "fr": ["numero de commande", "facture"],
            "es": ["numero de pedido", "factura"],
            "it": ["numero ordine", "fattura"],
            "nl": ["bestelnummer", "factuurnummer"],
            "pt": ["numero do pedido", "fatura"],
            "pl": ["numer zamowienia"],
            "fi": ["tilausnumero"],
        },
        _order_id,
        needs_header=True,
    ),
    Concept(
        "row_number",
        "other",
        {
            "en": ["row", "index", "line no"],
            "de": ["zeile", "index"],
            "fr": ["ligne", "index"],
            "es": ["fila", "indice"],
            "it": ["riga", "indice"],
            "nl": ["rij", "index"],
            "pt": ["linha", "indice"],
            "pl": ["wiersz"],
            "fi": ["rivi"],
        },
        lambda c: str(c.row + 1),
    ),
    Concept(
        "price",
        "other",
        {
            "en": ["price", "unit price", "amount", "total"],
            "de": ["preis", "betrag"],
            "fr": ["prix", "montant"],
            "es": ["precio", "importe"],
            "it": ["prezzo", "importo"],
            "nl": ["prijs", "bedrag"],
            "pt": ["preco", "valor"],
            "pl": ["cena"],
            "fi": ["hinta"],
        },
        _money(3.0, 1.0),
        needs_header=True,
    ),
    Concept(
        "quantity",
        "other",
        {
            "en": ["quantity", "qty", "count", "items"],
            "de": ["menge", "anzahl"],
            "fr": ["quantite"],
            "es": ["cantidad"],
            "it": ["quantita"],
            "nl": ["aantal"],
            "pt": ["quantidade"],
            "pl": ["ilosc"],
            "fi": ["maara"],
        },
        lambda c: str(c.rng.randint(1, 20)),
    ),
    Concept(
        "event_time",
        "other",
        {
            "en": ["created at", "timestamp", "updated at", "event time"],
            "de": ["erstellt am", "zeitstempel"],
            "fr": ["date creation", "horodatage"],
            "es": ["fecha creacion", "marca de tiempo"],
            "it": ["data creazione", "timestamp"],
            "nl": ["aangemaakt op", "tijdstempel"],
            "pt": ["criado em", "data hora"],
            "pl": ["data utworzenia"],
            "fi": ["aikaleima"],
        },
        _event_time,
    ),
    Concept(
        "order_date",
        "other",
        {
            "en": ["order date", "ship date", "invoice date"],
            "de": ["bestelldatum", "lieferdatum"],
            "fr": ["date de commande"],
            "es": ["fecha de pedido"],
            "it": ["data ordine"],
            "nl": ["besteldatum"],
            "pt": ["data do pedido"],
            "pl": ["data zamowienia"],
            "fi": ["tilauspaiva"],
        },
        _event_date,
    ),
    Concept(
        "status",
        "other",
        {
            "en": ["status", "order status", "state"],
            "de": ["status"],
            "fr": ["statut", "etat"],
            "es": ["estado"],
            "it": ["stato"],
            "nl": ["status"],
            "pt": ["status", "situacao"],
            "pl": ["status"],
            "fi": ["tila"],
        },
        _choice("active", "inactive", "pending", "closed", "shipped"),
    ),
    Concept(
        "category",
        "other",
        {
            "en": ["category", "product category", "type"],
            "de": ["kategorie", "typ"],
            "fr": ["categorie", "type"],
            "es": ["categoria", "tipo"],
            "it": ["categoria", "tipo"],
            "nl": ["categorie", "soort"],
            "pt": ["categoria", "tipo"],
            "pl": ["kategoria"],
            "fi": ["kategoria"],
        },
        _choice("Electronics", "Books", "Garden", "Toys", "Clothing", "Sports", "Food", "Beauty"),
    ),
    Concept(
        "product",
        "other",
        {
            "en": ["product", "product name", "item"],
            "de": ["produkt", "artikel"],
            "fr": ["produit", "article"],
            "es": ["producto", "articulo"],
            "it": ["prodotto", "articolo"],
            "nl": ["product", "artikel"],
            "pt": ["produto"],
            "pl": ["produkt"],
            "fi": ["tuote"],
        },
        lambda c: f"{c.rng.choice(_BRANDS)} {c.rng.choice(_GOODS)} {c.rng.randint(1, 900)}",
        needs_header=True,
    ),
    Concept(
        "flag",
        "other",
        {
            "en": ["is active", "newsletter opt in", "verified", "in stock"],
            "de": ["aktiv", "newsletter"],
            "fr": ["actif"],
            "es": ["activo"],
            "it": ["attivo"],
            "nl": ["actief"],
            "pt": ["ativo"],
            "pl": ["aktywny"],
            "fi": ["aktiivinen"],
        },
        _choice("true", "false"),
        needs_header=True,
    ),
    Concept(
        "rating",
        "other",
        {
            "en": ["rating", "score", "stars"],
            "de": ["bewertung"],
            "fr": ["note", "evaluation"],
            "es": ["valoracion"],
            "it": ["valutazione"],
            "nl": ["beoordeling"],
            "pt": ["avaliacao"],
            "pl": ["ocena"],
            "fi": ["arvosana"],
        },
        lambda c: str(c.rng.randint(1, 5)),
        needs_header=True,
    ),
    Concept(
        "measurement",
        "other",
        {
            "en": ["temperature", "duration ms", "bytes sent", "ratio"],
            "de": ["temperatur", "dauer"],
            "fr": ["temperature", "duree"],
            "es": ["temperatura", "duracion"],
            "it": ["temperatura", "durata"],
            "nl": ["temperatuur", "duur"],
            "pt": ["temperatura", "duracao"],
            "pl": ["temperatura"],
            "fi": ["lampotila"],
        },
        lambda c: f"{c.rng.uniform(0, 1000):.3f}",
    ),
    Concept(
        "comment",
        "other",
        {
            "en": ["comment", "notes", "description"],
            "de": ["kommentar", "beschreibung"],
            "fr": ["commentaire", "description"],
            "es": ["comentario", "descripcion"],
            "it": ["commento", "descrizione"],
            "nl": ["opmerking", "omschrijving"],
            "pt": ["comentario", "descricao"],
            "pl": ["komentarz"],
            "fi": ["kommentti"],
        },
        _f("sentence"),
        needs_header=True,
    ),
    Concept(
        "sku",
        "other",
        {
            "en": ["sku", "product code", "part number"],
            "de": ["artikelnummer"],
            "fr": ["reference produit"],
            "es": ["referencia"],
            "it": ["codice articolo"],
            "nl": ["artikelnummer"],
            "pt": ["codigo produto"],
            "pl": ["kod produktu"],
            "fi": ["tuotekoodi"],
        },
        lambda c: f"{c.rng.choice('ABCDEFGH')}{c.rng.choice('XYZ')}-{c.rng.randint(100, 999)}",
        needs_header=True,
    ),
    Concept(
        "color",
        "other",
        {
            "en": ["color", "colour"],
            "de": ["farbe"],
            "fr": ["couleur"],
            "es": ["color"],
            "it": ["colore"],
            "nl": ["kleur"],
            "pt": ["cor"],
            "pl": ["kolor"],
            "fi": ["vari"],
        },
        _f("color_name"),
    ),
    Concept(
        "url",
        "other",
        {
            "en": ["website", "url", "homepage"],
            "de": ["webseite"],
            "fr": ["site web"],
            "es": ["sitio web"],
            "it": ["sito web"],
            "nl": ["website"],
            "pt": ["site"],
            "pl": ["strona"],
            "fi": ["verkkosivu"],
        },
        _f("url"),
    ),
)

_LANGUAGE = {
    "en": "en",
    "de": "de",
    "fr": "fr",
    "es": "es",
    "it": "it",
    "nl": "nl",
    "pt": "pt",
    "pl": "pl",
    "fi": "fi",
    "ja": "en",
    "sv": "en",
    "da": "en",
}
_PREFIXES = ("cust", "pt", "usr", "src", "main", "tbl", "x")


def _style(words: list[str], style: str, rng: random.Random, index: int) -> str:
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
    return rng.choice(("col_{}", "field{}", "C{}", "var_{}", "Unnamed: {}", "X{}", "column{}")).format(index)


def generate_columns(split: str, *, seed: int = SEED) -> Iterator[CorpusColumn]:
    """Every synthetic column of one split ("train" or "heldout"), deterministically."""
    from faker import Faker

    locales = TRAIN_LOCALES if split == "train" else HELDOUT_LOCALES
    styles = TRAIN_STYLES if split == "train" else HELDOUT_STYLES
    for li, locale in enumerate(locales):
        fake = Faker(locale)
        language = _LANGUAGE[locale[:2]]
        for ci, concept in enumerate(CONCEPTS):
            for variant in range(VARIANTS_PER_LOCALE):
                rng = random.Random(f"{seed}:{split}:{locale}:{concept.name}:{variant}")
                fake.seed_instance(rng.getrandbits(32))
                usable = [s for s in styles if not (concept.needs_header and s == "meaningless")]
                style = rng.choice(usable)
                phrases = concept.headers.get(language) if rng.random() < 0.6 else None
                phrase = rng.choice(phrases or concept.headers["en"])
                header = _style(phrase.split(), style, rng, rng.randint(1, 40))
                rows = rng.randint(120, 500)
                null_rate = rng.choice((0.0, 0.0, 0.02, 0.1, 0.3))
                ctx = Ctx(fake, rng, locale, 0)
                values: list[str | None] = []
                for row in range(rows):
                    ctx.row = row
                    values.append(None if rng.random() < null_rate else concept.gen(ctx))
                yield CorpusColumn(header, values, concept.label, concept.name, locale)
            del ci
        del li


# Public tables, labeled by hand. Clinical measurements of a patient are health data (GDPR art. 9) -> sensitive;
# demographics that narrow a person down in combination -> quasi_identifier; network-connection statistics describe
# connections, not people -> other.
HEART_COLUMNS = {
    "age": "quasi_identifier",
    "sex": "quasi_identifier",
    "cp": "sensitive",  # chest pain type
    "trestbps": "sensitive",  # resting blood pressure
    "chol": "sensitive",  # serum cholesterol
    "fbs": "sensitive",  # fasting blood sugar > 120
    "restecg": "sensitive",  # resting ECG result
    "thalach": "sensitive",  # max heart rate
    "exang": "sensitive",  # exercise-induced angina
    "oldpeak": "sensitive",  # ST depression
    "slope": "sensitive",
    "ca": "sensitive",
    "thal": "sensitive",  # ECG / fluoroscopy / thallium findings
    "num": "sensitive",  # the heart-disease diagnosis itself
}
ADULT_COLUMNS = {
    "age": "quasi_identifier",
    "workclass": "quasi_identifier",
    "fnlwgt": "other",  # census sampling weight: a statistic, not about the person
    "education": "quasi_identifier",
    "education-num": "quasi_identifier",
    "marital-status": "quasi_identifier",
    "occupation": "quasi_identifier",
    "relationship": "quasi_identifier",
    "race": "quasi_identifier",
    "sex": "quasi_identifier",
    "capital-gain": "sensitive",
    "capital-loss": "sensitive",  # financial situation
    "hours-per-week": "other",  # working hours: weakly identifying, treated as ordinary data here
    "native-country": "quasi_identifier",
    "income": "sensitive",  # the salary class: the textbook sensitive attribute of this table
}


def _table_columns(
    path: Path, names: list[str], labels: dict[str, str], source: str, rows: int
) -> Iterator[CorpusColumn]:
    import pandas as pd

    frame = pd.read_csv(
        path,
        header=None,
        names=names,
        dtype=str,
        skipinitialspace=True,
        na_values=["?"],
        keep_default_na=False,
        comment="|",
    )
    frame = frame.sample(n=min(rows, len(frame)), random_state=SEED)
    for name in names:
        if name in labels:
            values = [None if pd.isna(v) else str(v) for v in frame[name]]
            yield CorpusColumn(name, values, labels[name], f"table:{name}", source)


def table_columns(split: str) -> Iterator[CorpusColumn]:
    """Columns of the public tables for one split; nothing when ../shared/data is absent."""
    if not SHARED_DATA.is_dir():
        print(f"note: {SHARED_DATA} not found; corpus built without the public tables", file=sys.stderr)
        return
    heart = list(HEART_COLUMNS)
    hospitals = ("cleveland", "switzerland") if split == "train" else ("hungarian", "va")
    for hospital in hospitals:
        yield from _table_columns(
            SHARED_DATA / "heart-disease" / f"processed.{hospital}.data", heart, HEART_COLUMNS, f"heart-{hospital}", 400
        )
    if split == "train":
        names = [line.split(",")[0] for line in (SHARED_DATA / "nsl-kdd" / "Field Names.csv").read_text().splitlines()]
        names += ["attack", "difficulty"]
        labels = dict.fromkeys(names, "other")  # connection statistics and attack labels: no person in them
        yield from _table_columns(SHARED_DATA / "nsl-kdd" / "KDDTrain+.txt", names, labels, "nsl-kdd", 400)
    else:
        names = list(ADULT_COLUMNS)
        yield from _table_columns(SHARED_DATA / "adult" / "adult.data", names, ADULT_COLUMNS, "adult", 500)


def featurize(column: CorpusColumn) -> np.ndarray:
    sample = [v for v in column.values if v is not None]
    profile = ColumnProfile(
        column.header, rows=len(column.values), nulls=len(column.values) - len(sample), sample=sample
    )
    return column_features(profile)


def build_corpus(split: str) -> tuple[list[CorpusColumn], np.ndarray, np.ndarray]:
    """(columns, feature matrix, class indices) of one split."""
    columns = list(generate_columns(split)) + list(table_columns(split))
    features = np.stack([featurize(c) for c in columns])
    labels = np.array([CLASSES.index(c.label) for c in columns], dtype=np.int64)
    return columns, features, labels


def main() -> None:
    columns, features, labels = build_corpus("train")
    np.savez_compressed(
        OUTPUT,
        features=features.astype(np.float32),
        labels=labels,
        feature_names=np.array(FEATURE_NAMES),
        feature_version=np.array(FEATURE_VERSION),
        classes=np.array(CLASSES),
        sources=np.array([c.source for c in columns]),
        concepts=np.array([c.concept for c in columns]),
    )
    counts = {cls: int((labels == i).sum()) for i, cls in enumerate(CLASSES)}
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size / 1024:.0f} KiB): {len(columns)} columns {counts}")


if __name__ == "__main__":
    main()
