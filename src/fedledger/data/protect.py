"""Protect a table before it is used for training: ``fedledger data protect``.

First, data minimization: when the data has a declared goal (:mod:`fedledger.data.goal`), every column its purpose
does not need is dropped before anything else, and the report lists them.

Each remaining column's class (identifier, quasi-identifier, sensitive, other) is decided in one place,
:func:`fedledger.data.classify.scan.decide`: the class the policy, the command line or a ``data label`` label
declares, else the classifier's verdict, raised to the most protective likely class and flagged when the classifier
is unsure; and whatever either says, a column whose values validate as direct identifiers (e-mails, phones, IBANs,
card numbers, national ids) is an identifier. Then each column gets one action from its class and the policy
(:mod:`fedledger.data.policy`):

* **identifiers** are dropped, pseudonymized (keyed HMAC-SHA256: stable across runs and files, so tables still join)
  or tokenized (FF3-1 format-preserving encryption, reversible with the organization's key);
* **quasi-identifiers** are generalized together with Mondrian (:mod:`fedledger.data.anonymize`) until every
  combination of published values is shared by at least ``k`` rows; one output row per input row;
* **sensitive** columns are kept, and the equivalence classes are checked (and, when the policy sets targets,
  constrained) for l-diversity and t-closeness;
* everything else is kept.

No default publishes an identifier in clear: only an explicit per-column ``action = "keep"`` does, and the report
flags it.

The achieved k, l and t are measured on the *output* table, not taken from the algorithm's intentions. A target the
table cannot reach (fewer rows than k, fewer distinct sensitive values than l) is a :class:`ConfigError` and nothing
is written. A value that cannot be processed is a :class:`BadInput` naming the file, the line and the column.
Output and report are written to temporary files and renamed into place, so an interrupted run never leaves a
partial file that looks complete. The report's format is documented in ``docs/data-pipeline.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from fedledger.data.anonymize import (
    CategoricalQI,
    Hierarchy,
    NumericQI,
    Partitioning,
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
from fedledger.data.classify.scan import UNSURE_BELOW, Decision, decide, profile_frame
from fedledger.data.classify.validators import ValidatedIdentifier, validated_identifier
from fedledger.data.goal import Goal
from fedledger.data.policy import ColumnClass, ColumnPolicy, ProtectionPolicy
from fedledger.data.tabular import cell_location, read_table, write_table
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    from fedledger.data.classify.model import ColumnClassifier

__all__ = [
    "ColumnClassification",
    "ProtectionKeys",
    "ProtectionResult",
    "decide_classes",
    "minimize",
    "needed_keys",
    "protect_file",
    "protect_frame",
    "report_path_for",
    "resolve_classes",
    "write_result",
]

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_LEADING_ZERO = re.compile(r"^[+-]?0\d")


@dataclass(frozen=True)
class ColumnClassification:
    """A column's class, how sure we are (0..1) and who said so (policy, command line, label, classifier,
    validated). A classifier verdict carries its ``probabilities``; :func:`decide_classes` fills in the rest."""

    column_class: ColumnClass
    confidence: float
    source: str
    probabilities: Mapping[str, float] | None = field(default=None, compare=False)
    unsure: bool = False
    classifier_class: str | None = None
    overrides: str = ""
    validated: ValidatedIdentifier | None = None


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
    columns: Iterable[str],
    policy: ProtectionPolicy,
    given: Mapping[str, ColumnClassification] | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    predictions: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, ColumnClassification]:
    """Every column's declared class or classifier verdict, in this order: the policy's ``class``, ``given``
    (the command line), the user's ``labels`` (column -> class), the classifier's ``predictions`` (column ->
    class probabilities). A column left without any is a :class:`ConfigError`: nothing is classified silently.
    :func:`decide_classes` then applies the unsure and validated-identifier rules."""
    given = given or {}
    labels = labels or {}
    predictions = predictions or {}
    out: dict[str, ColumnClassification] = {}
    unclassified = []
    for column in columns:
        declared = policy.columns.get(column, ColumnPolicy()).column_class
        if declared is not None:
            out[column] = ColumnClassification(declared, 1.0, "policy")
        elif column in given:
            out[column] = given[column]
        elif column in labels:
            out[column] = ColumnClassification(cast(ColumnClass, labels[column]), 1.0, "label")
        elif column in predictions:
            probabilities = predictions[column]
            top = max(probabilities, key=lambda name: probabilities[name])
            out[column] = ColumnClassification(
                cast(ColumnClass, top), probabilities[top], "classifier", probabilities=dict(probabilities)
            )
        else:
            unclassified.append(column)
    if unclassified:
        raise ConfigError(
            f"no class for column(s) {', '.join(map(repr, unclassified))}: give them in the policy "
            "([columns.NAME] class = ...), with --classes NAME=CLASS, or with `fedledger data label`"
        )
    return out


def decide_classes(frame: pd.DataFrame, classes: Mapping[str, ColumnClassification]) -> dict[str, ColumnClassification]:
    """The final class of every column of ``frame`` (:func:`fedledger.data.classify.scan.decide` over its values):
    a classifier verdict below the confidence threshold becomes the more protective class, and a column whose values
    validate as direct identifiers becomes an identifier whoever classified it."""
    missing = [c for c in frame.columns if c not in classes]
    if missing:
        raise ConfigError(f"no class for column(s) {', '.join(map(repr, missing))}")
    out = {}
    for column in frame.columns:
        given = classes[column]
        from_classifier = given.source == "classifier" and given.probabilities is not None
        decision = decide(
            declared=None if from_classifier else (given.column_class, given.source),
            probabilities=given.probabilities if from_classifier else None,
            validated=validated_identifier(_text_values(frame[column])),
            confidence=given.confidence,
        )
        out[column] = ColumnClassification(
            cast(ColumnClass, decision.column_class),
            decision.confidence,
            decision.source,
            probabilities=given.probabilities,
            unsure=decision.unsure,
            classifier_class=decision.classifier_class,
            overrides=decision.overrides,
            validated=decision.validated,
        )
    return out


def minimize(frame: pd.DataFrame, goal: Goal | None) -> tuple[pd.DataFrame, list[str]]:
    """``frame`` without the columns ``goal``'s purpose does not need, and their names (data minimization)."""
    if goal is None:
        return frame, []
    goal.check_columns(frame.columns, table=_table_name(frame))
    dropped = [c for c in frame.columns if c not in goal.columns]
    kept = frame[[c for c in frame.columns if c in goal.columns]]
    kept.attrs = dict(frame.attrs)
    return kept, dropped


def _table_name(frame: pd.DataFrame) -> str:
    source = frame.attrs.get("source")
    return str(source["path"]) if isinstance(source, dict) and "path" in source else "the table"


# -- reading and writing -----------------------------------------------------------------------------------


def report_path_for(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".report.json")


# -- the pipeline --------------------------------------------------------------------------------------------


def _text_values(series: pd.Series) -> list[str | None]:
    """Cells as text; missing, and blank cells (a quoted ``""`` is read as an empty string), as None."""
    return [
        None if v is None or (isinstance(v, float) and np.isnan(v)) or not str(v).strip() else str(v)
        for v in series.tolist()
    ]


def _is_numeric(values: Sequence[str | None]) -> bool:
    """All present values are numbers, none with a leading zero (``02134`` is a code, not a quantity)."""
    present = [v.strip() for v in values if v is not None]
    return bool(present) and all(_NUMBER.match(v) and not _LEADING_ZERO.match(v) for v in present)


def _quasi_identifier(
    column: str, values: Sequence[str | None], spec: ColumnPolicy, where: Callable[[int], str]
) -> tuple[NumericQI | CategoricalQI, dict[str, Any]]:
    kind = spec.kind or ("numeric" if _is_numeric(values) else "categorical")
    if kind == "numeric":
        numbers = np.full(len(values), np.nan)
        for row, value in enumerate(values):
            if value is None:
                continue
            try:
                numbers[row] = float(value)
            except ValueError:
                raise BadInput(
                    f"{where(row)}: the policy declares this quasi-identifier numeric, but the value is not a number"
                ) from None
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
        raise ConfigError(f"{where(-1)}: {exc}") from None
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


def _tokenize(tokenizer: Tokenizer, values: list[str | None], column: str, where: Callable[[int], str]) -> Any:
    try:
        return tokenizer.tokenize(values, column=column)
    except BadInput as exc:
        # Name the first row that cannot be tokenized (this error path tokenizes value by value).
        for row, value in enumerate(values):
            if value is None:
                continue
            try:
                tokenizer.tokenize([value], column=column)
            except BadInput:
                raise BadInput(f"{where(row)}: {str(exc).removeprefix(f'column {column!r}: ')}") from None
        raise


def protect_frame(
    frame: pd.DataFrame,
    policy: ProtectionPolicy,
    *,
    classes: Mapping[str, ColumnClassification],
    keys: ProtectionKeys = ProtectionKeys(),
    goal: Goal | None = None,
) -> ProtectionResult:
    """Apply ``goal`` (drop the columns its purpose does not need) and ``policy`` to ``frame`` (values as text,
    ``None`` missing) and measure what was achieved.

    ``classes`` must cover every column the goal keeps (see :func:`resolve_classes`); they are finalized by
    :func:`decide_classes`. Raises :class:`BadInput` for an unusable table and :class:`ConfigError` for a policy
    that does not fit it or targets the table cannot reach.
    """
    table = _table_name(frame)
    source = frame.attrs.get("source")
    n = len(frame)
    if frame.shape[1] == 0:
        raise BadInput(f"{table}: the table has no columns")
    if n == 0:
        raise BadInput(f"{table}: the table has no rows")
    policy.check_columns(frame.columns, table=table)
    columns_in = int(frame.shape[1])
    frame, dropped = minimize(frame, goal)
    final = decide_classes(frame, classes)

    published = _Published(pd.DataFrame(index=frame.index))
    for column in frame.columns:
        _protect_column(published, column, final[column], policy, keys, _text_values(frame[column]), n, table, source)
    for column in dropped:
        published.columns[column] = {"action": "drop", "reason": "minimization", "suppressed_rows": n}
    partitioning = _generalize(published, policy)

    report = _measure(published.out, policy, published.qis, published.sensitive, n)
    report.update(
        rows=n,
        columns_in=columns_in,
        columns_out=int(published.out.shape[1]),
        mode=policy.mode,
        ncp_percent=round(partitioning.ncp_percent, 4),
        columns=published.columns,
        source=source if isinstance(source, dict) else None,
        goal=goal.summary() if goal is not None else None,
        minimization={"dropped": dropped, "kept": [str(c) for c in frame.columns]} if goal is not None else None,
        unsure_below=UNSURE_BELOW,
        flags=published.flags,
    )
    _raise_unmet(report)
    report["complete"] = True
    return ProtectionResult(published.out, report)


@dataclass
class _Published:
    """What protection builds column by column: the published frame, the per-column report and flags, and the
    quasi-identifiers and sensitive attributes that Mondrian then partitions over."""

    out: pd.DataFrame
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    qis: list[NumericQI | CategoricalQI] = field(default_factory=list)
    sensitive: list[SensitiveAttribute] = field(default_factory=list)


def _protect_column(
    published: _Published,
    column: str,
    cls: ColumnClassification,
    policy: ProtectionPolicy,
    keys: ProtectionKeys,
    values: list[str | None],
    n: int,
    table: str,
    source: Any,
) -> None:
    """Apply the policy's action for ``column`` (its class decides the default) and report it."""
    action = policy.action_for(column, cls.column_class)
    spec = policy.columns.get(column, ColumnPolicy())
    out = published.out

    def where(row: int) -> str:
        return f"{table}, column {column!r}" if row < 0 else cell_location(source, row, column)

    entry = _class_entry(cls, action, values)
    if action == "drop":
        entry["suppressed_rows"] = n
    elif action == "pseudonymize":
        key = _domain_key(_require(keys.pseudonymize, "pseudonymize", column), spec.domain)
        out[column] = pseudonymize(values, key, length=policy.pseudonym_length)
        entry["pseudonymized_rows"] = n - entry["missing_values"]
    elif action == "tokenize":
        tokenizer = Tokenizer(_require(keys.tokenize, "tokenize", column), spec.domain)
        out[column], entry["alphabet"] = _tokenize(tokenizer, values, column, where)
        entry["tokenized_rows"] = n - entry["missing_values"]
    elif action == "generalize":
        qi, described = _quasi_identifier(column, values, spec, where)
        published.qis.append(qi)
        entry.update(described)
        out[column] = values  # replaced once Mondrian has run
    else:
        out[column] = values
        if cls.column_class == "sensitive":
            published.sensitive.append(SensitiveAttribute.from_values(column, values, numeric=_is_numeric(values)))
    if flag := _flag(column, cls):
        published.flags.append(flag)
    if cls.column_class == "identifier" and action in ("keep", "generalize"):
        entry["warning"] = f"identifier published with action {action!r} (set in the policy): not protected"
        published.flags.append(f"column {column!r}: {entry['warning']}")
    elif cls.column_class == "quasi_identifier" and action != "generalize":
        entry["warning"] = f"quasi-identifier published with action {action!r}: not part of k-anonymity"
        published.flags.append(f"column {column!r}: {entry['warning']}")
    published.columns[column] = entry


def _class_entry(cls: ColumnClassification, action: str, values: list[str | None]) -> dict[str, Any]:
    """A column's report entry: its class, where the class came from, and the action taken."""
    entry: dict[str, Any] = {
        "class": cls.column_class,
        "confidence": round(float(cls.confidence), 4),
        "class_source": cls.source,
        "unsure": cls.unsure,
        "action": action,
        "missing_values": sum(v is None for v in values),
    }
    if cls.classifier_class is not None:
        entry["classifier_class"] = cls.classifier_class
    if cls.overrides:
        entry["overrides"] = cls.overrides
    if cls.validated is not None:
        entry["validated"] = cls.validated.to_json()
    return entry


def _generalize(published: _Published, policy: ProtectionPolicy) -> Partitioning:
    """Partition the rows with Mondrian over the quasi-identifiers and publish their generalized values."""
    partitioning = mondrian(
        published.qis,
        k=policy.k,
        mode=policy.mode,
        sensitive=published.sensitive,
        l=policy.l,
        l_kind=policy.l_kind,
        t=policy.t,
    )
    out, columns = published.out, published.columns
    for index, qi in enumerate(published.qis):
        generalized = partitioning.generalized(index)
        original = out[qi.name].tolist()
        out[qi.name] = generalized
        columns[qi.name]["generalized_rows"] = sum(a != b for a, b in zip(original, generalized, strict=True))
    for name, value in partitioning.ncp_percent_by_qi().items():
        columns[name]["ncp_percent"] = round(value, 4)
    return partitioning


def _flag(column: str, cls: ColumnClassification) -> str | None:
    """The report's sentence for an unsure or overridden class (the same words ``data scan`` uses)."""
    decision = Decision(
        cls.column_class, cls.confidence, cls.source, cls.unsure, cls.classifier_class, cls.overrides, cls.validated
    )
    return decision.flag(column)


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


KeySource = ProtectionKeys | Callable[[set[str]], ProtectionKeys]


def protect_file(
    path: str | Path,
    out: str | Path,
    policy: ProtectionPolicy,
    *,
    classes: Mapping[str, ColumnClassification] | None = None,
    labels: Mapping[str, str] | None = None,
    classifier: ColumnClassifier | Callable[[], ColumnClassifier] | None = None,
    goal: Goal | None = None,
    keys: KeySource = ProtectionKeys(),
    report_path: str | Path | None = None,
) -> ProtectionResult:
    """Read ``path`` (CSV or Parquet), protect it, and write ``out`` and its JSON report (see :func:`write_result`).

    Columns neither the policy, ``classes`` nor ``labels`` classify are classified by ``classifier`` (or the one a
    function returns, called only then; default: the shipped model) from the same sample ``data scan`` draws.
    ``keys`` is the organization's keys, or a function from the key purposes the columns need (``pseudonymize``,
    ``tokenize``) to them, called only when one is needed.
    """
    path, out = Path(path), Path(out)
    if out.resolve() == path.resolve():
        raise BadInput(f"{out}: refusing to overwrite the input file")
    frame = read_table(path, as_text=True)
    policy.check_columns(frame.columns, table=str(path))
    kept, _ = minimize(frame, goal)
    classes = dict(classes or {})
    unknown = [name for name in classes if name not in frame.columns]
    if unknown:
        raise BadInput(f"{path}: no column(s) {', '.join(map(repr, unknown))} to classify")
    resolved = _classify(kept, policy, classes, labels or {}, classifier)
    final = decide_classes(kept, resolved)
    purposes = needed_keys(policy, final)
    if not callable(keys):
        chosen = keys
    elif purposes:
        chosen = keys(purposes)
    else:
        chosen = ProtectionKeys()  # no column needs a key: the workspace is never opened
    result = protect_frame(frame, policy, classes=resolved, keys=chosen, goal=goal)
    result = ProtectionResult(result.frame, dict(result.report, input=str(path), output=str(out)))
    write_result(result, out, report_path=report_path)
    return result


def _classify(
    frame: pd.DataFrame,
    policy: ProtectionPolicy,
    classes: Mapping[str, ColumnClassification],
    labels: Mapping[str, str],
    classifier: ColumnClassifier | Callable[[], ColumnClassifier] | None,
) -> dict[str, ColumnClassification]:
    """Declared classes, and the classifier's verdicts for the columns nobody declared."""
    undeclared = [
        c
        for c in frame.columns
        if c not in classes and c not in labels and policy.columns.get(c, ColumnPolicy()).column_class is None
    ]
    predictions: dict[str, Mapping[str, float]] = {}
    if undeclared:
        from fedledger.data.classify.model import ColumnClassifier

        model = classifier() if callable(classifier) else classifier or ColumnClassifier.load()
        profiles = [p for p in profile_frame(frame) if p.name in undeclared]
        predictions = {p.name: q.probabilities for p, q in zip(profiles, model.classify(profiles), strict=True)}
    return resolve_classes(frame.columns, policy, classes, labels=labels, predictions=predictions)
