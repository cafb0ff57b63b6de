"""Patient tables for the data tests: real UCI Heart Disease (Cleveland) rows when the shared data is beside the
checkout, with seeded Faker names and e-mails standing in for the patients the data set does not identify."""

from __future__ import annotations

import pandas as pd
from faker import Faker

from conftest import SHARED_DATA

HEART = SHARED_DATA / "heart-disease" / "processed.cleveland.data"
HEART_COLUMNS = ["age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
                 "slope", "ca", "thal", "num"]  # fmt: skip


def patients(n: int = 40) -> pd.DataFrame:
    """Heart-disease rows with a patient name, e-mail and record number."""
    if HEART.exists():
        table = pd.read_csv(HEART, header=None, names=HEART_COLUMNS, na_values="?").head(n)
    else:
        rows = [[63.0, 1.0, 1.0, 145.0, 233.0, 1.0, 2.0, 150.0, 0.0, 2.3, 3.0, 0.0, 6.0, 0]] * n
        table = pd.DataFrame(rows, columns=HEART_COLUMNS)
    fake = Faker()
    fake.seed_instance(7)
    table.insert(0, "patient", [f"MRN-{100000 + i}" for i in range(len(table))])
    table.insert(1, "name", [fake.name() for _ in range(len(table))])
    table.insert(2, "email", [fake.email() for _ in range(len(table))])
    return table
