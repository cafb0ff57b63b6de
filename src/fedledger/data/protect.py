"""Protect a table before it is used for training: ``fedledger data protect``.

Each column gets one action, from its class (identifier, quasi-identifier, sensitive, other: the classifier's
verdict with its confidence, overridden by the policy or the command line) and the policy
(:mod:`fedledger.data.policy`):

* **identifiers** are dropped, pseudonymized (keyed HMAC-SHA256: stable across runs and files, so tables still join)
  or tokenized (FF3-1 format-preserving encryption, reversible with the organization's key);
* **quasi-identifiers** are generalized together with Mondrian (:mod:`fedledger.data.anonymize`) until every
  combination of published values is shared by at least ``k`` rows; one output row per input row;
* **sensitive** columns are kept, and the equivalence classes are checked (and, when the policy sets targets,
  constrained) for l-diversity and t-closeness;
* everything else is kept.

The achieved k, l and t are measured on the *output* table, not taken from the algorithm's intentions. A target the
table cannot reach (fewer rows than k, fewer distinct sensitive values than l) is a :class:`ConfigError` and nothing
is written. Output and report are written to temporary files and renamed into place, so an interrupted run never
leaves a partial file that looks complete.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedledger.data.anonymize import (
    CategoricalQI,
    Hierarchy,
    NumericQI,
    SensitiveAttribute,
    Tokenizer,
    auto_hierarchy,
    distinct_l_diversity,
    entropy_l_diversity,
    equivalence_classes,
    k_anonymity,
    mondrian,
    pseudonymize,
    sensitive_histogram,
    t_closeness,
)
from fedledger.data.policy import ColumnClass, ColumnPolicy, ProtectionPolicy
from fedledger.data.tabular import read_table, write_table
from fedledger.exceptions import BadInput, ConfigError

__all__ = [
    "ColumnClassification",
    "ProtectionKeys",
    "ProtectionResult",
    "protect_file",
    "protect_frame",
    "needed_keys",
    "report_path_for",
    "resolve_classes",
    "write_result",
]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")


@dataclass(frozen=True)
class ColumnClassification:
    """A column's class, how sure we are (0..1) and who said so (classifier, policy, command line)."""

    column_class: ColumnClass
    confidence: float
    source: str


@dataclass(frozen=True)
class ProtectionKeys:
    """The organization's data keys (:func:`fedledger.data.keys.org_data_key`); only the ones the policy uses."""

    pseudonymize: bytes | None = None
    tokenize: bytes | None = None


@dataclass(frozen=True)
class ProtectionResult:
    frame: pd.DataFrame
    report: dict[str, Any]


def resolve_classes(
    columns: Iterable[str], policy: ProtectionPolicy, given: Mapping[str, ColumnClassification] | None = None
) -> dict[str, ColumnClassification]:
    """Every column's class: the policy's ``class`` wins, then ``given`` (command line or classifier). A column
    left without a class is a :class:`ConfigError`: nothing is classified silently."""
    given = given or {}
    out: dict[str, ColumnClassification] = {}
    unclassified = []
    for column in columns:
        declared = policy.columns.get(column, ColumnPolicy()).column_class
        if declared is not None:
            out[column] = ColumnClassification(declared, 1.0, "policy")
        elif column in given:
            out[column] = given[column]
        else:
            unclassified.append(column)
    if unclassified:
        raise ConfigError(
            f"no class for column(s) {', '.join(map(repr, unclassified))}: give them in the policy "
            "([columns.NAME] class = ...) or with --classes NAME=CLASS"
        )
    return out


# -- reading and writing -----------------------------------------------------------------------------------


def report_path_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".report.json")


# -- the pipeline --------------------------------------------------------------------------------------------


def _text_values(series: pd.Series) -> list[str | None]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in series.tolist()]


def _is_numeric(values: Sequence[str | None]) -> bool:
    """All present values are numbers, none with a leading zero (``02134`` is a code, not a quantity)."""
    present = [v.strip() for v in values if v is not None]
    return bool(present) and all(_NUMBER.match(v) and not _LEADING_ZERO.match(v) for v in present)


def _quasi_identifier(
    column: str, values: Sequence[str | None], spec: ColumnPolicy
) -> tuple[NumericQI | CategoricalQI, dict[str, Any]]:
    kind = spec.kind or ("numeric" if _is_numeric(values) else "categorical")
    if kind == "numeric":
        try:
            numbers = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        except ValueError as exc:
            raise BadInput(f"column {column!r} is declared numeric but holds a non-number: {exc}") from exc
        return NumericQI.from_array(column, numbers), {"kind": "numeric"}
    try:
        if isinstance(spec.hierarchy, Mapping):
            hierarchy, name = Hierarchy.from_children(spec.hierarchy, values), "policy"
        elif spec.hierarchy == "flat":
            hierarchy, name = Hierarchy.flat(values), "flat"
        elif spec.hierarchy == "prefix":
            hierarchy, name = Hierarchy.prefix(values), "prefix"
        else:
            hierarchy, name = auto_hierarchy(values)
    except ConfigError as exc:
        raise ConfigError(f"column {column!r}: {exc}") from None
    return CategoricalQI.from_values(column, values, hierarchy), {"kind": "categorical", "hierarchy": name}


def _domain_key(key: bytes, domain: str) -> bytes:
    """A separate pseudonym key per domain (the default domain uses the organization key itself)."""
    if not domain:
        return key
    return hmac.digest(key, b"fedledger/pseudonym-domain/" + domain.encode("utf-8"), hashlib.sha256)


def _require(key: bytes | None, action: str, column: str) -> bytes:
    if key is None:
        raise ConfigError(f"column {column!r} needs the organization's {action} key (open a workspace)")
    return key


def _target(target: float | None, achieved: Mapping[str, float], *, higher_is_better: bool) -> dict[str, Any]:
    met = None
    if target is not None:
        met = all((v >= target - 1e-9) if higher_is_better else (v <= target + 1e-9) for v in achieved.values())
    return {"target": target, "achieved": dict(achieved), "met": met}


def protect_frame(
    frame: pd.DataFrame,
    policy: ProtectionPolicy,
    *,
    classes: Mapping[str, ColumnClassification],
    keys: ProtectionKeys = ProtectionKeys(),
) -> ProtectionResult:
    """Apply ``policy`` to ``frame`` (values as text, ``None`` missing) and measure what was achieved.

    ``classes`` must cover every column (see :func:`resolve_classes`). Raises :class:`BadInput` for an unusable
    table and :class:`ConfigError` for a policy that does not fit it or targets the table cannot reach.
    """
    n = len(frame)
    if frame.shape[1] == 0:
        raise BadInput("the table has no columns")
    if n == 0:
        raise BadInput("the table has no rows")
    policy.check_columns(frame.columns)
    missing = [c for c in frame.columns if c not in classes]
    if missing:
        raise ConfigError(f"no class for column(s) {', '.join(map(repr, missing))}")

    out = pd.DataFrame(index=frame.index)
    columns_report: dict[str, dict[str, Any]] = {}
    qis: list[NumericQI | CategoricalQI] = []
    sensitive: list[SensitiveAttribute] = []
    for column in frame.columns:
        cls = classes[column]
        action = policy.action_for(column, cls.column_class)
        spec = policy.columns.get(column, ColumnPolicy())
        values = _text_values(frame[column])
        entry: dict[str, Any] = {
            "class": cls.column_class,
            "confidence": round(float(cls.confidence), 4),
            "class_source": cls.source,
            "action": action,
            "missing_values": sum(v is None for v in values),
        }
        if action == "drop":
            entry["suppressed_rows"] = n
        elif action == "pseudonymize":
            key = _domain_key(_require(keys.pseudonymize, "pseudonymize", column), spec.domain)
            out[column] = pseudonymize(values, key, length=policy.pseudonym_length)
            entry["pseudonymized_rows"] = n - entry["missing_values"]
        elif action == "tokenize":
            tokenizer = Tokenizer(_require(keys.tokenize, "tokenize", column), spec.domain)
            out[column], entry["alphabet"] = tokenizer.tokenize(values, column=column)
            entry["tokenized_rows"] = n - entry["missing_values"]
        elif action == "generalize":
            qi, described = _quasi_identifier(column, values, spec)
            qis.append(qi)
            entry.update(described)
            out[column] = values  # replaced once Mondrian has run
        else:
            out[column] = values
            if cls.column_class == "sensitive":
                sensitive.append(SensitiveAttribute.from_values(column, values, numeric=_is_numeric(values)))
        if cls.column_class == "quasi_identifier" and action != "generalize":
            entry["warning"] = f"quasi-identifier published with action {action!r}: not part of k-anonymity"
        columns_report[column] = entry

    partitioning = mondrian(
        qis, k=policy.k, mode=policy.mode, sensitive=sensitive, l=policy.l, l_kind=policy.l_kind, t=policy.t
    )
    for index, qi in enumerate(qis):
        published = partitioning.generalized(index)
        original = out[qi.name].tolist()
        out[qi.name] = published
        columns_report[qi.name]["generalized_rows"] = sum(a != b for a, b in zip(original, published, strict=True))
    for name, value in partitioning.ncp_percent_by_qi().items():
        columns_report[name]["ncp_percent"] = round(value, 4)

    report = _measure(out, policy, qis, sensitive, n)
    report.update(
        rows=n,
        columns_in=int(frame.shape[1]),
        columns_out=int(out.shape[1]),
        mode=policy.mode,
        ncp_percent=round(partitioning.ncp_percent, 4),
        columns=columns_report,
    )
    _raise_unmet(report)
    report["complete"] = True
    return ProtectionResult(out, report)


def _measure(
    out: pd.DataFrame,
    policy: ProtectionPolicy,
    qis: Sequence[NumericQI | CategoricalQI],
    sensitive: Sequence[SensitiveAttribute],
    n: int,
) -> dict[str, Any]:
    """k, l and t as an attacker sees them: equivalence classes of the published QI values."""
    labels = equivalence_classes(out, [qi.name for qi in qis])
    distinct: dict[str, float] = {}
    entropy: dict[str, float] = {}
    closeness: dict[str, float] = {}
    for sa in sensitive:
        hist = sensitive_histogram(labels, sa.codes, sa.n_values)
        distinct[sa.name] = distinct_l_diversity(hist)
        entropy[sa.name] = round(entropy_l_diversity(hist), 6)
        closeness[sa.name] = round(t_closeness(hist, ordered=sa.ordered), 6)
    l_achieved = distinct if policy.l_kind == "distinct" else entropy
    k = k_anonymity(labels)
    return {
        "k": {"target": policy.k, "achieved": k, "met": k >= policy.k},
        "l": _target(policy.l, l_achieved, higher_is_better=True)
        | {"kind": policy.l_kind, "distinct": distinct, "entropy": entropy},
        "t": _target(policy.t, closeness, higher_is_better=False),
        "equivalence_classes": int(labels.max()) + 1 if n else 0,
        "quasi_identifiers": [qi.name for qi in qis],
        "sensitive": [sa.name for sa in sensitive],
    }


def _raise_unmet(report: Mapping[str, Any]) -> None:
    unmet = []
    if not report["k"]["met"]:
        k = report["k"]
        unmet.append(f"k={k['target']} (achieved {k['achieved']}; the table has {report['rows']} rows)")
    for name in ("l", "t"):
        if report[name]["met"] is False:
            unmet.append(f"{name}={report[name]['target']} (achieved {report[name]['achieved']} over the whole table)")
    if unmet:
        raise ConfigError(f"the table cannot meet the policy's targets: {'; '.join(unmet)}; nothing was written")


def needed_keys(policy: ProtectionPolicy, classes: Mapping[str, ColumnClassification]) -> set[str]:
    """The data key purposes (``pseudonymize``, ``tokenize``) the columns' actions use."""
    actions = {policy.action_for(column, c.column_class) for column, c in classes.items()}
    return {str(action) for action in actions if action in ("pseudonymize", "tokenize")}


def write_result(result: ProtectionResult, out: str | Path, *, report_path: str | Path | None = None) -> Path:
    """Write the protected table (CSV or Parquet by suffix) and then its JSON report, each atomically: the report,
    which says the output is complete, never exists without the output it describes. Returns the report's path."""
    out = Path(out)
    report_file = Path(report_path) if report_path is not None else report_path_for(out)
    staged = report_file.with_name(f".{report_file.name}.tmp")
    try:
        staged.write_text(json.dumps(result.report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        write_table(result.frame, out)
        os.replace(staged, report_file)
    finally:
        staged.unlink(missing_ok=True)
    return report_file


def protect_file(
    path: str | Path,
    out: str | Path,
    policy: ProtectionPolicy,
    *,
    classes: Mapping[str, ColumnClassification] | None = None,
    keys: ProtectionKeys = ProtectionKeys(),
    report_path: str | Path | None = None,
) -> ProtectionResult:
    """Read ``path`` (CSV or Parquet), protect it, and write ``out`` and its JSON report (see :func:`write_result`)."""
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise BadInput(f"{out}: refusing to overwrite the input file")
    frame = read_table(path, as_text=True)
    result = protect_frame(frame, policy, classes=resolve_classes(frame.columns, policy, classes), keys=keys)
    result = ProtectionResult(result.frame, dict(result.report, input=str(path), output=str(out)))
    write_result(result, out, report_path=report_path)
    return result
