"""``fedledger data scan`` and ``fedledger data label``: classify a table's columns; teach the classifier."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal, overload

import typer
from rich.markup import escape
from rich.table import Table

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, print_json
from fedledger.cli.data._app import app
from fedledger.data.classify import CLASSES, ColumnClassifier, LabeledColumn, LabelStore, profile_table, scan_table
from fedledger.data.classify.features import table_features
from fedledger.data.classify.labels import LABELS_FILE
from fedledger.data.classify.scan import DEFAULT_SAMPLE_ROWS, decide
from fedledger.data.tabular import DEFAULT_BATCH_ROWS
from fedledger.exceptions import BadInput, ConfigError

__all__ = ["label", "scan"]

FileArg = Annotated[Path, typer.Argument(help="CSV or Parquet file.", show_default=False)]
LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="Labels file (JSON lines); default: <workspace>/data/labels.jsonl."),
]


@overload
def _label_store(workspace: Path, labels: Path | None, *, required: Literal[True]) -> LabelStore: ...


@overload
def _label_store(workspace: Path, labels: Path | None, *, required: bool) -> LabelStore | None: ...


def _label_store(workspace: Path, labels: Path | None, *, required: bool) -> LabelStore | None:
    """The labels file: --labels, else the workspace's; None when neither exists and none is required."""
    if labels is not None:
        return LabelStore(labels)
    if (workspace / "config.json").exists():
        return LabelStore(workspace / LABELS_FILE)
    if required:
        raise ConfigError(f"no fedledger workspace in {workspace}: pass --workspace DIR or --labels FILE")
    return None


def _classifier(store: LabelStore | None) -> tuple[ColumnClassifier, int]:
    if store is None:
        return ColumnClassifier.load(), 0
    pairs, stale = store.training_pairs()
    return ColumnClassifier.load(org_labels=pairs), stale


@app.command("scan")
def scan(
    file: FileArg,
    workspace: WorkspaceOpt = DEFAULT_WS,
    labels: LabelsOpt = None,
    sample_rows: Annotated[int, typer.Option(help="Rows sampled (uniformly) for the value checks.")] = (
        DEFAULT_SAMPLE_ROWS
    ),
    batch_rows: Annotated[int, typer.Option(help="Rows read per batch while streaming.")] = DEFAULT_BATCH_ROWS,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Also write the report (scan.json format) to this file.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Classify each column as identifier, quasi_identifier, sensitive or other, with confidence and evidence.

    The class shown is the one `data protect` acts on: your label for the column if you gave one, else the
    classifier's (the more protective class when it is unsure), and identifier for values that validate as
    e-mails, phones, IBANs, card numbers or national ids."""
    store = _label_store(workspace, labels, required=False)
    classifier, stale = _classifier(store)
    given = store.labels_for(file) if store is not None else {}
    report = scan_table(
        file,
        classifier=classifier,
        sample_rows=sample_rows,
        batch_rows=batch_rows,
        stale_labels=stale,
        labels=given,
    )
    document = report.to_json()
    if out is not None:
        _write_json(out, document)
    if json_out:
        print_json(document)
        return
    source = report.source
    console.print(
        f"{escape(str(source.path))}: {source.format}"
        + (f", {source.encoding}, delimiter {source.delimiter!r}" if source.format == "csv" else "")
        + f", {report.rows:,} rows read, {report.sampled_rows:,} sampled; "
        + f"model: {classifier.corpus_columns} corpus columns + {classifier.org_labels} of your labels",
        highlight=False,
    )
    if source.note:
        console.print(f"[yellow]note:[/] {escape(source.note)}")
    if stale:
        console.print(f"[yellow]note:[/] {stale} label(s) were recorded with another feature layout and are ignored")
    table = Table("column", "class", "decided by", "classifier", "evidence")
    for column in report.columns:
        # scan_table decides every column; the fallback is the one the column's JSON uses.
        decision = column.decision or decide(probabilities=column.probabilities)
        by = decision.source + (" (unsure)" if decision.unsure else "")
        if decision.validated is not None and decision.source == "validated":
            by += f": {decision.validated.describe()}"
        table.add_row(
            escape(column.name),
            decision.column_class,
            escape(by),
            f"{column.label} {column.confidence:.0%}",
            escape("; ".join(column.evidence)),
        )
    console.print(table)
    for flag in document["flags"]:
        console.print(f"[yellow]flag:[/] {escape(flag)}")
    if out is not None:
        console.print(f"wrote {escape(str(out))}")


def _write_json(path: Path, document: object) -> None:
    """Write ``document`` to ``path`` atomically (a temporary file renamed into place)."""
    staged = path.with_name(f".{path.name}.tmp")
    try:
        staged.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(staged, path)
    except OSError as exc:
        raise BadInput(f"{path}: cannot write: {exc}") from exc
    finally:
        staged.unlink(missing_ok=True)


@app.command("label")
def label(
    file: FileArg,
    column: Annotated[str, typer.Argument(help="Column name as in the file's header.", show_default=False)],
    cls: Annotated[str, typer.Argument(metavar="CLASS", help=f"One of: {', '.join(CLASSES)}.", show_default=False)],
    workspace: WorkspaceOpt = DEFAULT_WS,
    labels: LabelsOpt = None,
    sample_rows: Annotated[int, typer.Option(help="Rows sampled (uniformly) for the value checks.")] = (
        DEFAULT_SAMPLE_ROWS
    ),
    json_out: JsonOpt = False,
) -> None:
    """Record the right class for a column; later scans retrain with your labels (kept locally, no values stored)."""
    if cls not in CLASSES:
        raise BadInput(f"unknown class {cls!r}: expected one of {', '.join(CLASSES)}")
    store = _label_store(workspace, labels, required=True)
    # The whole table: a column's features include what the table's other columns are about (a coded column is
    # sensitive in a clinical table, other in a network log), so a label must carry that context too.
    profiles = profile_table(file, sample_rows=sample_rows).columns
    names = [p.name for p in profiles]
    if column not in names:
        raise BadInput(f"{file} line 1, column {column}: no column of that name (the file has {', '.join(names)})")
    at = names.index(column)
    classifier, _ = _classifier(store)
    before = classifier.classify(profiles)[at]
    features = table_features(profiles)[at]
    entry = store.add(
        LabeledColumn(file=str(Path(file).resolve()), column=column, label=cls, features=features.tolist())
    )
    result = {
        "file": entry.file,
        "column": column,
        "class": cls,
        "previous_class": before.label,
        "previous_confidence": round(before.confidence, 4),
        "labels_file": str(store.path),
    }
    if json_out:
        print_json(result)
        return
    console.print(
        f"labeled {escape(column)!r} as {cls} (the classifier said {before.label}, {before.confidence:.0%}); "
        f"saved to {escape(str(store.path))}",
        highlight=False,
    )
