"""Column classification quality on a held-out corpus, fedledger vs Presidio's regex recognizers; scan throughput.

    PYTHONPATH=src python benchmarks/pii_classification.py [--rows 1000000] [--presidio-values 30]

Held-out corpus: see ``pii_corpus.py`` (locales, header styles and tables never used for training). fedledger is the
shipped classifier (no organization labels). Presidio baseline: presidio-analyzer with the ``no_op`` NLP engine (no
spaCy model, so no PERSON/LOCATION/NRP: regex and checksum recognizers only), run on up to ``--presidio-values``
values of each column with the column's header tokens as context. A column takes the entity type found (score
>= 0.5) in the largest share of its values, if that share is >= 50 %, mapped to our classes:

    identifier        EMAIL_ADDRESS PHONE_NUMBER CREDIT_CARD IBAN_CODE IP_ADDRESS US_SSN US_ITIN US_PASSPORT
                      US_DRIVER_LICENSE US_BANK_NUMBER UK_NHS UK_NINO ES_NIF ES_NIE IT_FISCAL_CODE IT_* PL_PESEL
                      IN_* AU_* SG_* MEDICAL_LICENSE CRYPTO (every other recognizer's entity: all are direct ids)
    quasi_identifier  DATE_TIME (dates are quasi-identifiers under HIPAA safe harbor)
    other             URL, and every column without a majority entity

Presidio has no notion of quasi-identifiers beyond dates and none of sensitive attributes, so its sensitive F1 is 0
by construction: compare the identifier row for a like-for-like view of direct-PII detection.

Last measured (OMP_NUM_THREADS=1, 2 CPU cores shared with other jobs; 553 held-out columns from 8 sources):

    class              support  fedledger F1  Presidio F1
    identifier             130         0.949        0.497
    quasi_identifier       124         0.951        0.130
    sensitive              137         0.982        0.000
    other                  162         0.964        0.442
    macro-F1                           0.961        0.267
    accuracy                           0.962        0.353
    fedledger expected calibration error (10 bins): 0.046
    fedledger accuracy by source: synthetic 0.97 (510), heart-hungarian 0.93 (14), heart-va 1.00 (14), adult 0.60 (15)
    1,000,000-row 5-column CSV: pandas.read_csv 5.29 s, fedledger data scan 10.60 s (ratio 2.01)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pii_corpus import CorpusColumn, build_corpus  # noqa: E402

from fedledger.data.classify import CLASSES, ColumnClassifier, scan_table  # noqa: E402

PRESIDIO_CLASS = {"DATE_TIME": "quasi_identifier", "URL": "other"}  # anything else: identifier


def f1_table(truth: list[str], predicted: list[str]) -> dict[str, float]:
    scores = {}
    for cls in CLASSES:
        tp = sum(t == cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != cls and p == cls for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == cls and p != cls for t, p in zip(truth, predicted, strict=True))
        scores[cls] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    scores["macro-F1"] = float(np.mean([scores[c] for c in CLASSES]))
    scores["accuracy"] = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return scores


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def presidio_predictions(columns: list[CorpusColumn], values_per_column: int) -> tuple[list[str], float]:
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    from fedledger.data.classify.lexicon import tokens

    # Offline: tldextract would otherwise try to download the public suffix list; its bundled snapshot is used.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    engine = NlpEngineProvider(
        nlp_configuration={"nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "none"}]}
    ).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    out = []
    start = time.perf_counter()
    for column in columns:
        values = [v for v in column.values if v is not None][:values_per_column]
        found: Counter[str] = Counter()
        for value in values:
            results = analyzer.analyze(value, language="en", context=tokens(column.header), score_threshold=0.5)
            found.update({r.entity_type for r in results})
        if values and found and found.most_common(1)[0][1] >= 0.5 * len(values):
            out.append(PRESIDIO_CLASS.get(found.most_common(1)[0][0], "identifier"))
        else:
            out.append("other")
    return out, time.perf_counter() - start


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the throughput CSV")
    parser.add_argument("--presidio-values", type=int, default=30, help="values per column given to Presidio")
    args = parser.parse_args()

    columns, features, labels = build_corpus("heldout")
    truth = [c.label for c in columns]
    model = ColumnClassifier.load()
    proba = model.probabilities(features)
    ours = [CLASSES[i] for i in proba.argmax(axis=1)]
    ece = expected_calibration_error(proba.max(axis=1), proba.argmax(axis=1) == labels)
    theirs, presidio_s = presidio_predictions(columns, args.presidio_values)

    fl, pr = f1_table(truth, ours), f1_table(truth, theirs)
    support = Counter(truth)
    print(f"held-out corpus: {len(columns)} columns from {len({c.source for c in columns})} sources")
    print(f"{'class':<18}{'support':>8}{'fedledger F1':>14}{'Presidio F1':>13}")
    for key in (*CLASSES, "macro-F1", "accuracy"):
        print(f"{key:<18}{support.get(key, ''):>8}{fl[key]:>14.3f}{pr[key]:>13.3f}")
    print(f"fedledger expected calibration error (10 bins): {ece:.3f}")
    print(f"Presidio analysis time: {presidio_s:.1f} s for {args.presidio_values} values/column")
    by_source: dict[str, list[bool]] = {}
    for column, predicted in zip(columns, ours, strict=True):
        group = column.source if not column.source[:2].islower() or "_" not in column.source else "synthetic"
        by_source.setdefault(group, []).append(predicted == column.label)
    print(
        "fedledger accuracy by source: " + ", ".join(f"{k} {np.mean(v):.2f} ({len(v)})" for k, v in by_source.items())
    )

    pandas_s, scan_s = throughput(args.rows)
    print(
        f"throughput on a {args.rows:,}-row, 5-column CSV: pandas.read_csv {pandas_s:.2f} s, "
        f"fedledger data scan {scan_s:.2f} s (ratio scan/pandas {scan_s / pandas_s:.2f})"
    )


if __name__ == "__main__":
    main()
