"""Column classification on tables the classifier was not built from, fedledger vs Presidio in the same run.

    PYTHONPATH=src python benchmarks/pii_classification.py [--sealed] [--presidio-values 30] [--rows 0]

The evaluation tables are listed in ``benchmarks/pii_eval/tables.toml``, each with a hand-written ground truth (one
line per column: class and a one-line reason):

* real public tables read from ``../shared/data`` (never copied into the project): UCI Adult (census), UCI Heart
  Disease (Cleveland) and NSL-KDD (network connections). None of them is in the training corpus, and the lexicon
  holds none of their dataset-specific header codes (``trestbps``, ``thalach``, ``fnlwgt``...);
* synthetic tables generated here, by this file's own value generators (not ``pii_corpus.py``'s), from Faker locales
  the training corpus never uses, with the headers written in the ground-truth files: a 30-column identity file,
  tables with German, Spanish, French, Italian, Portuguese and Dutch headers (the training corpus's headers are
  English only), and a ``col_1..col_N`` table where only the values can tell;
* ``--sealed`` adds tables written together with the others but evaluated only once a change is finished.

For each table: per-class F1, macro-F1 and the confusion matrix, for fedledger (the shipped classifier, no
organization labels, all columns of the table classified together as ``data scan`` does) and for Presidio. A table's
macro-F1 averages the classes that occur in its truth or in the predictions (scikit-learn's convention), so on a
table whose columns are all ``other`` a single column called anything else halves it. The pooled line classifies
every dev table and scores all their columns together (all four classes occur).

Presidio baseline: presidio-analyzer with the ``no_op`` NLP engine (no spaCy model: regex and checksum recognizers
only; the small English spaCy model is not on PyPI), run on up to ``--presidio-values`` values of each column with the
header's tokens as context. A column takes the entity type found (score >= 0.5) in the largest share of its values
(ties: the higher total score), if that share is >= 50 %, mapped to our classes: DATE_TIME -> quasi_identifier
(dates are quasi-identifiers under HIPAA safe harbor), URL -> other, every other entity -> identifier (they are all
direct identifiers), no majority entity -> other. Presidio has no notion of sensitive attributes, so its sensitive F1
is 0 by construction.

Results and the experiment log: ``benchmarks/results/pii_classification.md``.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
import tomllib
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import SHARED_DATA  # noqa: E402

from fedledger.data.classify import CLASSES, ColumnClassifier, ColumnProfile, scan_table  # noqa: E402
from fedledger.data.classify.model import CORPUS_PATH  # noqa: E402

EVAL_DIR = Path(__file__).resolve().parent / "pii_eval"
PRESIDIO_CLASS = {"DATE_TIME": "quasi_identifier", "URL": "other"}  # anything else: identifier
SEED = 4242


@dataclass
class EvalColumn:
    header: str
    values: list[str | None]
    label: str
    reason: str


@dataclass
class EvalTable:
    name: str
    kind: str
    sealed: bool
    columns: list[EvalColumn]


# --- value generators of the synthetic evaluation tables -------------------------------------------------------------
# Written for the evaluation only: pii_corpus.py's training generators share no code or vocabulary lists with these.


@dataclass
class Row:
    fake: Any
    rng: random.Random
    lang: str  # language of the row's locale: en de es fr it pt nl
    locale: str


def _pick(options: Mapping[str, Sequence[str]]) -> Callable[[Row], str]:
    return lambda r: r.rng.choice(options.get(r.lang) or options["en"])


SEX = {
    "en": ("Male", "Female", "Non-binary"),
    "de": ("männlich", "weiblich", "divers"),
    "es": ("Hombre", "Mujer"),
    "fr": ("Homme", "Femme"),
    "it": ("Maschio", "Femmina"),
    "pt": ("Masculino", "Feminino"),
    "nl": ("Man", "Vrouw"),
}
MARITAL = {
    "en": ("Single", "Married", "Divorced", "Widowed", "Civil partnership"),
    "de": ("ledig", "verheiratet", "geschieden", "verwitwet", "eingetragene Lebenspartnerschaft"),
    "es": ("Soltero/a", "Casado/a", "Divorciado/a", "Viudo/a", "Pareja de hecho"),
    "fr": ("Célibataire", "Marié(e)", "Divorcé(e)", "Veuf/Veuve", "Pacsé(e)"),
    "it": ("Celibe/Nubile", "Coniugato/a", "Divorziato/a", "Vedovo/a"),
    "pt": ("Solteiro(a)", "Casado(a)", "Divorciado(a)", "Viúvo(a)", "União estável"),
    "nl": ("Ongehuwd", "Gehuwd", "Gescheiden", "Weduwe/weduwnaar", "Geregistreerd partner"),
}
RELIGION = {
    "en": ("Church of England", "Roman Catholic", "Muslim", "Jewish", "Hindu", "Sikh", "Buddhist", "No religion"),
    "de": ("römisch-katholisch", "evangelisch", "konfessionslos", "muslimisch", "jüdisch", "orthodox"),
    "es": ("Católica", "Protestante", "Musulmana", "Judía", "Ninguna"),
    "fr": ("Catholique", "Protestant", "Musulman", "Juif", "Bouddhiste", "Sans religion"),
    "it": ("Cattolica", "Ortodossa", "Musulmana", "Ebraica", "Nessuna"),
    "pt": ("Católica", "Evangélica", "Espírita", "Umbanda", "Sem religião"),
    "nl": ("Rooms-katholiek", "Protestants", "Islamitisch", "Joods", "Geen"),
}
ETHNICITY = {
    "en": ("White British", "White Irish", "Black African", "Black Caribbean", "Indian", "Pakistani", "Chinese"),
    "pt": ("Branca", "Preta", "Parda", "Amarela", "Indígena"),
}
EDUCATION = {
    "en": ("GCSE", "A-level", "Bachelor's degree", "Master's degree", "Doctorate"),
    "pt": ("Sem instrução", "Fundamental incompleto", "Médio completo", "Superior completo", "Pós-graduação"),
}
DISEASE = {
    "en": ("Type 1 diabetes", "Asthma", "Hypertension", "Depression", "Epilepsy", "Coeliac disease", "Breast cancer"),
    "de": ("Diabetes mellitus Typ 2", "Bluthochdruck", "Asthma bronchiale", "Depression", "Herzinsuffizienz"),
    "es": ("Diabetes tipo 2", "Hipertensión", "Asma", "Depresión", "Insuficiencia cardíaca"),
    "fr": ("Diabète de type 2", "Hypertension artérielle", "Asthme", "Insuffisance cardiaque", "Dépression", "BPCO"),
    "it": ("Diabete di tipo 2", "Ipertensione", "Asma", "Depressione", "Scompenso cardiaco"),
    "pt": ("Diabetes tipo 2", "Hipertensão", "Asma", "Depressão", "Insuficiência cardíaca"),
    "nl": ("Diabetes type 2", "Hoge bloeddruk", "Astma", "Depressie", "Hartfalen"),
}
MEDICATION = {
    "en": ("Paracetamol", "Salbutamol inhaler", "Sertraline", "Levothyroxine", "Ramipril"),
    "de": ("Ibuprofen", "Metoprolol", "Pantoprazol", "Ramipril", "L-Thyroxin"),
    "es": ("Paracetamol", "Omeprazol", "Enalapril", "Metformina", "Simvastatina"),
    "fr": ("Doliprane", "Lévothyrox", "Kardégic", "Metformine", "Amoxicilline", "Ventoline"),
    "it": ("Tachipirina", "Cardioaspirina", "Eutirox", "Metformina", "Pantoprazolo"),
    "pt": ("Losartana", "Metformina", "Omeprazol", "Sinvastatina", "Dipirona"),
    "nl": ("Paracetamol", "Omeprazol", "Metoprolol", "Metformine", "Simvastatine"),
}
BLOOD = {
    "en": ("A RhD positive", "A RhD negative", "B RhD positive", "O RhD positive", "O RhD negative", "AB RhD positive"),
    "de": ("A Rh+", "0 Rh+", "0 Rh-", "B Rh+", "AB Rh-"),
    "fr": ("A+", "A-", "B+", "O+", "O-", "AB+"),
}
YES_NO = {
    "en": ("Yes", "No"),
    "de": ("ja", "nein"),
    "es": ("Sí", "No"),
    "fr": ("oui", "non"),
    "it": ("sì", "no"),
    "pt": ("Sim", "Não"),
    "nl": ("ja", "nee"),
}
STATUS = {
    "en": ("Open", "Closed", "Pending", "In progress"),
    "es": ("Pendiente", "Aprobada", "Rechazada", "En revisión"),
    "it": ("In lavorazione", "Spedito", "Consegnato", "Annullato", "Reso"),
    "de": ("offen", "erledigt", "in Bearbeitung"),
    "fr": ("en cours", "terminé", "annulé"),
    "pt": ("pendente", "concluído", "cancelado"),
    "nl": ("open", "afgehandeld", "in behandeling"),
}
DEPARTMENT = {"de": ("Vertrieb", "Einkauf", "Personal", "IT", "Buchhaltung", "Produktion", "Logistik")}
INSURER = {"fr": ("MGEN", "Harmonie Mutuelle", "Malakoff Humanis", "AXA", "MAAF", "Groupama")}
PAYMENT = {"it": ("Carta di credito", "PayPal", "Bonifico", "Contrassegno", "Satispay")}
PLAN = {"nl": ("Basis", "Plus", "Premium", "Unlimited", "Sim Only 10GB")}
PARTY = {"pt": ("PT", "PL", "MDB", "PSDB", "PSOL", "União Brasil", "Nenhum")}
GOODS = {"it": ("Scarpe da corsa", "Zaino", "Caffettiera", "Lampada da tavolo", "Cuffie wireless", "Borraccia")}
BIRTH_FORMAT = {"de": "%d.%m.%Y", "nl": "%d-%m-%Y", "en": "%d/%m/%Y"}  # the rest: %d/%m/%Y


def _euro(amount: float, lang: str) -> str:
    whole, cents = f"{amount:,.2f}".split(".")
    if lang in ("de", "es", "it", "pt", "nl"):
        text = whole.replace(",", ".") + "," + cents
    elif lang == "fr":
        text = whole.replace(",", "\u202f") + "," + cents
    else:
        text = f"{whole}.{cents}"
    return {"pt": f"R$ {text}", "en": f"£{text}", "it": f"€ {text}", "nl": f"€ {text}"}.get(lang, f"{text} €")


def _birth(r: Row) -> str:
    born = date(1940, 1, 1) + timedelta(days=r.rng.randint(0, 365 * 65))
    return born.strftime(BIRTH_FORMAT.get(r.lang, "%d/%m/%Y"))


def _national_id(r: Row) -> str:
    fake = r.fake
    if r.locale == "es_ES":
        return str(fake.nif())
    if r.locale == "pt_BR":
        return str(fake.cpf())
    if r.locale in ("de_DE", "pt_PT", "en_IE", "it_CH"):
        # Faker has no national number for these locales: the German pension insurance number's layout.
        born = date(1950, 1, 1) + timedelta(days=r.rng.randint(0, 365 * 50))
        return f"{r.rng.randint(10, 89)} {born:%d%m%y} {r.rng.choice('ABCDEFGHKLMNOPRSTW')} {r.rng.randint(0, 999):03d}"
    return str(fake.ssn())


def _timestamp(r: Row) -> str:
    moment = datetime(2023, 1, 1) + timedelta(seconds=r.rng.randint(0, 600 * 86400))
    return moment.strftime("%d.%m.%Y %H:%M" if r.lang == "de" else "%Y-%m-%dT%H:%M:%S")


def _order_ref(r: Row) -> str:
    return f"{r.rng.choice(('IT', 'ORD', 'POL'))}{r.rng.randint(2019, 2024)}{r.rng.randint(0, 99999):05d}"


def _region(r: Row) -> str:
    if r.locale == "pt_BR":
        return str(r.fake.estado_sigla())
    return str(r.fake.administrative_unit())


def _f(method: str) -> Callable[[Row], str]:
    return lambda r: str(getattr(r.fake, method)())


_FAKERS: dict[str, Any] = {}


def _faker(locale: str, seed: int) -> Any:
    from faker import Faker

    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


def _us_state(r: Row) -> str:
    # US states come from en_US whatever the table's locales (Faker has them there only).
    if "en_US" not in _FAKERS:
        _FAKERS["en_US"] = _faker("en_US", SEED)
    return str(_FAKERS["en_US"].state())


GENERATORS: dict[str, Callable[[Row], str]] = {
    "person_ref": lambda r: f"{r.rng.choice(('PN', 'K', 'DOS'))}-{r.rng.randint(1, 999999):06d}",
    "first_name": _f("first_name"),
    "last_name": _f("last_name"),
    "full_name": _f("name"),
    "email": _f("email"),
    "phone": _f("phone_number"),
    "phone_intl": _f("phone_number"),
    "national_id": _national_id,
    "passport": _f("passport_number"),
    "license_plate": _f("license_plate"),
    "iban": _f("iban"),
    "card_number": _f("credit_card_number"),
    "card_expiry": _f("credit_card_expire"),
    "ipv4": _f("ipv4_public"),
    "ipv6": _f("ipv6"),
    "username": _f("user_name"),
    "street_address": lambda r: str(r.fake.street_address()).replace("\n", " "),
    "postcode": _f("postcode"),
    "city": _f("city"),
    "region": _region,
    "us_state": _us_state,
    "country": _f("country"),
    "birth_date": _birth,
    "birth_year": lambda r: str(r.rng.randint(1940, 2005)),
    "age": lambda r: str(r.rng.randint(18, 92)),
    "sex": _pick(SEX),
    "occupation": _f("job"),
    "employer": _f("company"),
    "marital": _pick(MARITAL),
    "education": _pick(EDUCATION),
    "religion": _pick(RELIGION),
    "ethnicity": _pick(ETHNICITY),
    "party": _pick(PARTY),
    "salary": lambda r: _euro(round(r.rng.lognormvariate(10.6 if r.lang in ("de", "en", "nl") else 7.8, 0.4)), r.lang),
    "balance": lambda r: _euro(round(r.rng.gauss(3000, 6000), 2), r.lang),
    "disease": _pick(DISEASE),
    "icd10": lambda r: r.rng.choice(("E11.9", "I10", "J45.0", "F32.1", "I50.0", "C50.9", "M17.1", "K50.0", "G40.9")),
    "medication": _pick(MEDICATION),
    "blood_type": _pick(BLOOD),
    "blood_pressure": lambda r: f"{int(r.rng.gauss(130, 18))}/{int(r.rng.gauss(82, 10))}",
    "yes_no": _pick(YES_NO),
    "department": _pick(DEPARTMENT),
    "hours": lambda r: r.rng.choice(("40", "38,5", "35", "30", "20")),
    "timestamp": _timestamp,
    "status": _pick(STATUS),
    "insurer": _pick(INSURER),
    "price": lambda r: _euro(round(r.rng.lognormvariate(3.2, 0.9), 2), r.lang),
    "order_ref": _order_ref,
    "order_date": lambda r: (date(2023, 1, 1) + timedelta(days=r.rng.randint(0, 700))).strftime("%d/%m/%Y"),
    "product": lambda r: f"{r.rng.choice(GOODS['it'])} {r.rng.choice(('Pro', 'Lite', 'Max', 'Basic'))}",
    "quantity": lambda r: str(r.rng.randint(1, 12)),
    "payment_method": _pick(PAYMENT),
    "rating": lambda r: str(r.rng.randint(1, 5)),
    "comment": _f("sentence"),
    "plan": _pick(PLAN),
    "data_volume": lambda r: f"{r.rng.lognormvariate(7.5, 1.0):.1f}",
    "survey_weight": lambda r: f"{r.rng.uniform(40, 2500):.4f}",
    "measurement": lambda r: f"{r.rng.gauss(21.5, 3.0):.2f}",
    "url": _f("url"),
}


def _read_truth(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["class"] not in CLASSES:
            raise SystemExit(f"{path}: column {row['column']!r} has unknown class {row['class']!r}")
    return rows


def _synthetic_table(name: str, spec: dict[str, object], truth: list[dict[str, str]]) -> EvalTable:
    seed = zlib.crc32(f"{SEED}:{name}".encode())
    rng = random.Random(seed)
    locales = list(spec["locales"])  # type: ignore[call-overload]
    fakers = {loc: _faker(loc, seed + i) for i, loc in enumerate(locales)}
    rows = int(spec["rows"])  # type: ignore[call-overload]
    columns = []
    for entry in truth:
        generator = GENERATORS[entry["generator"]]
        null_rate = rng.choice((0.0, 0.0, 0.0, 0.03, 0.1))
        values: list[str | None] = []
        for _ in range(rows):
            locale = rng.choice(locales)
            row = Row(fakers[locale], rng, locale[:2], locale)
            values.append(None if rng.random() < null_rate else generator(row))
        columns.append(EvalColumn(entry["column"], values, entry["class"], entry["reason"]))
    return EvalTable(name, "synthetic", bool(spec.get("sealed", False)), columns)


def _real_headers(name: str, headers_file: Path) -> list[str]:
    text = headers_file.read_text(encoding="utf-8", errors="replace")
    if name == "adult":
        names = [line.split(":")[0] for line in text.splitlines() if ": " in line and not line.startswith("|")]
        return [*names, "income"]  # the class column: adult.names's prediction task ("makes over 50K a year")
    if name == "heart-disease":
        import re

        return [m[1] for m in re.finditer(r"--\s*\d+\.\s*#\d+\s*\((\w+)\)", text)]
    return [line.split(",")[0] for line in text.splitlines() if line.strip()] + ["attack", "difficulty"]


def _real_table(name: str, spec: dict[str, object], truth: list[dict[str, str]]) -> EvalTable | None:
    import pandas as pd

    path = SHARED_DATA / str(spec["path"])
    if not path.exists():
        print(f"note: {path} not found; table {name} skipped", file=sys.stderr)
        return None
    headers = _real_headers(name, SHARED_DATA / str(spec["headers"]))
    if headers != [row["column"] for row in truth]:
        raise SystemExit(f"{name}: ground truth columns {[r['column'] for r in truth]} != file headers {headers}")
    frame = pd.read_csv(
        path, header=None, names=headers, dtype=str, skipinitialspace=True, na_values=["?"], keep_default_na=False
    )
    if "rows" in spec:
        frame = frame.sample(n=min(int(spec["rows"]), len(frame)), random_state=SEED)  # type: ignore[call-overload]
    columns = []
    for row in truth:
        values = [None if pd.isna(v) else str(v) for v in frame[row["column"]]]
        columns.append(EvalColumn(row["column"], values, row["class"], row["reason"]))
    return EvalTable(name, "real", False, columns)


def load_tables(*, sealed: bool) -> list[EvalTable]:
    specs = tomllib.loads((EVAL_DIR / "tables.toml").read_text(encoding="utf-8"))
    tables = []
    for name, spec in specs.items():
        if spec.get("sealed", False) and not sealed:
            continue
        truth = _read_truth(EVAL_DIR / spec["truth"])
        table = _real_table(name, spec, truth) if spec["kind"] == "real" else _synthetic_table(name, spec, truth)
        if table is not None:
            tables.append(table)
    return tables


def profiles_of(table: EvalTable) -> list[ColumnProfile]:
    return [
        ColumnProfile(
            c.header, rows=len(c.values), nulls=sum(v is None for v in c.values), sample=[v for v in c.values if v]
        )
        for c in table.columns
    ]


# --- scoring ---------------------------------------------------------------------------------------------------------


def f1_scores(truth: list[str], predicted: list[str], classes: tuple[str, ...] = CLASSES) -> dict[str, float]:
    """Per-class F1 for each class, macro-F1 over the classes present in truth or predictions, accuracy."""
    scores: dict[str, float] = {}
    present = [c for c in classes if c in truth or c in predicted]
    for cls in classes:
        tp = sum(t == cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == cls and p != cls for t, p in zip(truth, predicted, strict=True))
        scores[cls] = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else float("nan")
    scores["macro-F1"] = float(np.mean([scores[c] for c in present]))
    scores["accuracy"] = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return scores


def confusion(truth: list[str], predicted: list[str]) -> list[str]:
    short = {"identifier": "id", "quasi_identifier": "qi", "sensitive": "sens", "other": "other"}
    lines = ["    truth \\ predicted " + "".join(f"{short[c]:>7}" for c in CLASSES)]
    for t in CLASSES:
        counts = [sum(a == t and b == p for a, b in zip(truth, predicted, strict=True)) for p in CLASSES]
        lines.append(f"    {short[t]:<20}" + "".join(f"{n:>7}" for n in counts))
    return lines


def expected_calibration_error(
    confidence: npt.NDArray[np.float64], correct: npt.NDArray[np.float64], bins: int = 10
) -> float:
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


# --- Presidio --------------------------------------------------------------------------------------------------------


def presidio_analyzer() -> Any | None:
    try:
        import tldextract
        from presidio_analyzer import AnalyzerEngine
        from presidio_analyzer.nlp_engine import NlpEngineProvider
    except ImportError as exc:
        print(f"note: Presidio not run ({exc}); install the bench extra", file=sys.stderr)
        return None
    # Offline: tldextract would otherwise try to download the public suffix list; its bundled snapshot is used.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    engine = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
    ).create_engine()
    return AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])


def presidio_predictions(analyzer: Any, table: EvalTable, values_per_column: int) -> list[str]:
    from fedledger.data.classify.lexicon import tokens

    out = []
    for column in table.columns:
        values = [v for v in column.values if v][:values_per_column]
        found: Counter[str] = Counter()
        scores: Counter[str] = Counter()
        for value in values:
            best: dict[str, float] = {}
            for r in analyzer.analyze(value, language="en", context=tokens(column.header), score_threshold=0.5):
                best[r.entity_type] = max(best.get(r.entity_type, 0.0), r.score)
            found.update(best.keys())
            scores.update(best)
        if not values or not found:
            out.append("other")
            continue
        # Most values first, then the surer recognizer (an e-mail address is also found as a URL, at 0.5), then
        # the name: the choice must not depend on set iteration order, which changes with every process.
        entity = max(found, key=lambda e: (found[e], scores[e], e))
        out.append(PRESIDIO_CLASS.get(entity, "identifier") if found[entity] >= 0.5 * len(values) else "other")
    return out


# --- throughput ------------------------------------------------------------------------------------------------------


def throughput(rows: int) -> tuple[float, float]:
    """Seconds to read a CSV of ``rows`` rows with pandas, and to scan it with fedledger (same file, same run)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "email": [f"user{i}@example.org" for i in rng.integers(0, 10**7, rows)],
            "age": rng.integers(18, 90, rows),
            "zip": [f"{z:05d}" for z in rng.integers(0, 99999, rows)],
            "income": np.round(rng.lognormal(10.5, 0.5, rows), 2),
            "status": rng.choice(["active", "closed", "pending"], rows),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big.csv"
        frame.to_csv(path, index=False)
        del frame
        start = time.perf_counter()
        pd.read_csv(path)
        pandas_s = time.perf_counter() - start
        model = ColumnClassifier.load()
        start = time.perf_counter()
        report = scan_table(path, classifier=model)
        scan_s = time.perf_counter() - start
        assert report.rows == rows
    return pandas_s, scan_s


def _header_overlap(table: EvalTable, corpus: Path) -> str:
    """How many of the table's headers occur verbatim (after normalization) among the training corpus's headers;
    meaningless headers (``col_7``) are not counted: they occur everywhere and say nothing."""
    try:
        from pii_corpus import training_header_keys
    except ImportError:
        return "n/a"
    from fedledger.data.classify.lexicon import is_meaningless, tokens

    known = training_header_keys(corpus)
    headers = [c.header for c in table.columns if not is_meaningless(c.header)]
    if not headers:
        return "none (all meaningless)"
    return f"{sum(' '.join(tokens(h)) in known for h in headers)}/{len(headers)}"


def _fmt(x: float) -> str:
    return "    -" if x != x else f"{x:5.3f}"  # NaN: the class occurs neither in truth nor in predictions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sealed", action="store_true", help="also evaluate the sealed tables")
    parser.add_argument("--presidio-values", type=int, default=30, help="values per column given to Presidio")
    parser.add_argument("--no-presidio", action="store_true", help="skip the Presidio baseline")
    parser.add_argument("--rows", type=int, default=0, help="rows of the throughput CSV (0: skip throughput)")
    parser.add_argument("--verbose", action="store_true", help="list every column, not only the misclassified")
    parser.add_argument("--corpus", type=Path, default=CORPUS_PATH, help="classifier corpus (default: the shipped one)")
    args = parser.parse_args()

    start = time.perf_counter()
    model = ColumnClassifier.load(corpus=args.corpus)
    print(f"classifier fitted in {time.perf_counter() - start:.1f} s ({model.corpus_columns} corpus columns)")
    analyzer = None if args.no_presidio else presidio_analyzer()
    tables = load_tables(sealed=args.sealed)
    pooled: dict[str, dict[str, list[str]]] = {"dev": {}, "sealed": {}}
    confidences, correct = [], []
    for table in tables:
        truth = [c.label for c in table.columns]
        predictions = model.classify(profiles_of(table))
        ours = [p.label for p in predictions]
        confidences += [p.confidence for p in predictions]
        correct += [o == t for o, t in zip(ours, truth, strict=True)]
        theirs = presidio_predictions(analyzer, table, args.presidio_values) if analyzer else None
        group = pooled["sealed" if table.sealed else "dev"]
        for key, labels in (("truth", truth), ("fedledger", ours), ("presidio", theirs or [])):
            group.setdefault(key, []).extend(labels)
        fl = f1_scores(truth, ours)
        pr = f1_scores(truth, theirs) if theirs else None
        title = f"{table.name} ({table.kind}{', sealed' if table.sealed else ''}, {len(truth)} columns"
        print(f"\n== {title}, headers also in training: {_header_overlap(table, args.corpus)})")
        print(f"  {'':<18}" + "".join(f"{c[:10]:>11}" for c in (*CLASSES, "macro-F1", "accuracy")))
        print(f"  {'fedledger F1':<18}" + "".join(f"{_fmt(fl[k]):>11}" for k in (*CLASSES, "macro-F1", "accuracy")))
        if pr:
            print(f"  {'Presidio F1':<18}" + "".join(f"{_fmt(pr[k]):>11}" for k in (*CLASSES, "macro-F1", "accuracy")))
        print("  fedledger confusion:")
        print("\n".join(confusion(truth, ours)))
        if theirs:
            print("  Presidio confusion:")
            print("\n".join(confusion(truth, theirs)))
        for column, prediction in zip(table.columns, predictions, strict=True):
            if args.verbose or prediction.label != column.label:
                mark = "  " if prediction.label == column.label else "X "
                print(
                    f"  {mark}{column.header!r}: truth {column.label}, predicted {prediction.label} "
                    f"({prediction.confidence:.2f}); {'; '.join(prediction.evidence[:2])}"
                )
    for name, group in pooled.items():
        if not group:
            continue
        fl = f1_scores(group["truth"], group["fedledger"])
        print(f"\n== pooled {name} tables ({len(group['truth'])} columns)")
        print(f"  {'':<18}" + "".join(f"{c[:10]:>11}" for c in (*CLASSES, "macro-F1", "accuracy")))
        print(f"  {'fedledger F1':<18}" + "".join(f"{_fmt(fl[k]):>11}" for k in (*CLASSES, "macro-F1", "accuracy")))
        if group["presidio"]:
            pr = f1_scores(group["truth"], group["presidio"])
            print(f"  {'Presidio F1':<18}" + "".join(f"{_fmt(pr[k]):>11}" for k in (*CLASSES, "macro-F1", "accuracy")))
    ece = expected_calibration_error(np.array(confidences), np.array(correct, dtype=float))
    print(f"\nfedledger expected calibration error (10 bins, all tables): {ece:.3f}")
    if args.rows:
        pandas_s, scan_s = throughput(args.rows)
        print(
            f"throughput on a {args.rows:,}-row, 5-column CSV: pandas.read_csv {pandas_s:.2f} s, "
            f"fedledger data scan {scan_s:.2f} s (ratio scan/pandas {scan_s / pandas_s:.2f})"
        )


if __name__ == "__main__":
    main()
