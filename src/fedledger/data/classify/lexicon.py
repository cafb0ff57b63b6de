"""Column headers: normalization into tokens and a multilingual keyword lexicon.

Headers come in every convention (``customerEmail``, ``CUST_EMAIL``, ``E-Mail-Adresse``, ``col_7``), so a header is
split on case changes, digits and punctuation, accent-folded and lower-cased before matching. Each lexicon group is
one classifier feature (1.0 when a token, or a joined token pair, matches one of its keywords); the keyword that
matched becomes evidence ("header matches 'ssn'"). Keywords cover English, German, French, Spanish, Italian, Dutch,
Portuguese and common abbreviations; the groups describe *what a column is about*, not its class, so the classifier
learns how groups combine (``patient`` + ``id`` is an identifier, ``patient`` + ``age`` is not).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["LEXICON", "HeaderMatch", "is_meaningless", "match_header", "tokens"]

# group -> keywords (normalized: lower case, no accents). Multi-word keywords match joined adjacent tokens.
LEXICON: dict[str, frozenset[str]] = {
    key: frozenset(words.split())
    for key, words in {
        "name": (
            "name names fullname firstname lastname surname forename givenname familyname middlename nom prenom "
            "nombre apellido apellidos nome cognome naam voornaam achternaam vorname nachname sobrenome fname "
            "lname nm contactname"
        ),
        "email": "email mail emailaddress courriel correo correoelectronico posta emailadres adresseemail",
        "phone": (
            "phone phonenumber telephone tel tele mobile cell cellphone fax telefon telefono telefone telefoonnummer "
            "handy portable movil cellulare celular contactnumber msisdn telefonnummer"
        ),
        "national_id": (
            "ssn sin nin nino socialsecurity nationalid nationalidentifier taxid tin bsn cpf cnpj rg aadhaar aadhar "
            "pan nif nie dni codicefiscale cf insee nir personalausweis steuerid steuernummer sozialversicherung "
            "svnr burgerservicenummer personnummer pesel hetu henkilotunnus"
        ),
        "passport": "passport passeport pasaporte passaporto paspoort reisepass driverslicense licence license",
        "card": "creditcard card cardnumber cc ccnum pan kreditkarte carte tarjeta carta kaart cartao",
        "bank_account": (
            "iban bban bic swift account acct accountnumber acctno konto kontonummer compte cuenta conto rekening "
            "routing sortcode bankaccount"
        ),
        "address": (
            "address addr street streetaddress adresse anschrift strasse rue direccion calle indirizzo via adres "
            "straat endereco rua line1 addressline housenumber hausnummer"
        ),
        "username": "username user login userid handle nickname screenname benutzername utilisateur usuario",
        "network": "ip ipaddress ipv4 ipv6 mac macaddress deviceid imei hostname",
        "id_word": "id identifier uuid guid key number no nr num code ref reference nummer numero",
        "person": (
            "customer cust client patient user employee emp member person subscriber applicant kunde kunden "
            "patientin mitarbeiter cliente paziente klant medewerker paciente holder owner contact"
        ),
        "age": "age ages alter edad eta leeftijd idade anos",
        "birth": (
            "birth birthdate birthday dob born geburt geburtsdatum geburtstag naissance datenaissance nacimiento "
            "nascita geboorte geboortedatum nascimento yob"
        ),
        "postcode": "zip zipcode postcode postal postalcode plz cap cep pin pincode codepostal codigopostal postcodes",
        "sex": "sex gender geschlecht sexe sexo sesso geslacht genre",
        "occupation": (
            "occupation job jobtitle profession title position role beruf metier profesion ocupacion professione "
            "beroep profissao occupazione  employment"
        ),
        "geo_area": (
            "city town village municipality county state province region country nationality citizenship stadt ort "
            "land ville pays ciudad pais citta paese stad gemeente cidade estado bundesland"
        ),
        "demographic": (
            "race ethnicity ethnic marital maritalstatus married education degree relationship household children "
            "familienstand nationalite estadocivil language"
        ),
        "body": "height weight bmi groesse gewicht taille poids peso altura lengte gewicht",
        "health": (
            "diagnosis diagnose diagnostic disease condition illness icd icd10 medication medicine drug prescription "
            "treatment symptom symptoms allergy blood bloodtype bloodpressure cholesterol chol glucose heart cardiac "
            "hiv cancer pregnancy pregnant disability mental therapy diagnosi malattia enfermedad maladie krankheit "
            "ziekte doenca medikament traitement farmaco trestbps thalach fbs restecg oldpeak thal cp exang ca"
        ),
        "finance_status": (
            "income salary wage wages earnings revenue einkommen gehalt lohn salaire revenu salario ingresos "
            "stipendio reddito inkomen salaris renda balance debt loan credit creditscore score networth "
            "mortgage bankrupt bankruptcy"
        ),
        "belief": (
            "religion religious faith political party politics union orientation sexualorientation criminal "
            "conviction religion konfession"
        ),
        "location_trace": (
            "lat latitude lon lng long longitude gps coordinates coords location geo position geolocation"
        ),
        "event_time": "date time timestamp datetime created updated modified ts at when datum fecha data heure",
        "quantity": (
            "amount price cost total quantity qty count sum fee tax discount rate ratio percent pct duration "
            "bytes size length menge preis betrag prix precio prezzo"
        ),
        "item": (
            "product item sku category type kind status flag state color colour model brand description comment "
            "notes protocol service label class"
        ),
        "organization": "company employer organization organisation firm business firma entreprise empresa azienda",
    }.items()
}

_MEANINGLESS = re.compile(r"^(col|column|field|var|variable|attr|attribute|feature|x|c|f|v|unnamed|spalte)\d*$")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ß", "ss")


def tokens(header: str) -> list[str]:
    """``"customerEmail_Address2"`` -> ``["customer", "email", "address", "2"]``."""
    spaced = _CAMEL.sub(" ", _fold(str(header)))
    return [t for t in re.split(r"[^0-9a-zA-Z]+", spaced.lower()) if t]


def is_meaningless(header: str) -> bool:
    """Headers that say nothing about the column (``col_7``, ``Unnamed: 3``, ``X12``, empty)."""
    joined = "".join(t for t in tokens(header))
    return not joined or joined.isdigit() or bool(_MEANINGLESS.match(joined))


class HeaderMatch(dict[str, str]):
    """group -> the header fragment that matched it."""


def match_header(header: str) -> HeaderMatch:
    """Lexicon groups the header matches, each with the fragment that matched (single tokens and joined runs)."""
    parts = tokens(header)
    candidates = list(parts)
    for width in (2, 3):
        candidates += ["".join(parts[i : i + width]) for i in range(len(parts) - width + 1)]
    found = HeaderMatch()
    for group, words in LEXICON.items():
        for candidate in candidates:
            if candidate in words or (len(candidate) > 5 and candidate.rstrip("s") in words):
                found[group] = candidate
                break
    return found
