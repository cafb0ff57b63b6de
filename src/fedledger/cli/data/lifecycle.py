"""``fedledger data cleanse | prepare | insights``: raw table -> clean table -> training table, and the report a
data steward reads before sharing anything.

Each command writes its output and a small JSON report atomically: both are written to temporary files beside
their targets and renamed into place only once everything succeeded, so a failure leaves no output (and an
earlier output untouched). Formats: ``docs/data-pipeline.md`` and ``docs/preparation.md``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from fedledger.cli.common import DEFAULT_WS, JsonOpt, WorkspaceOpt, console, print_json
from fedledger.cli.data._app import app
from fedledger.exceptions import BadInput, ConfigError

if TYPE_CHECKING:
    from fedledger.data.cleanse import CleanseRules
    from fedledger.data.prepare import Recipe

__all__ = ["cleanse_command", "insights_command", "prepare_command", "write_atomically"]

PREPARE_REPORT_FORMAT = "fedledger-prepare-report/1"
STATS_FORMAT = "fedledger-stats/1"
_TO_MISSING = {
    "unified": "missing markers unified",
    "invalid": "invalid -> missing",
    "out_of_range": "out of range -> missing",
}

InFile = Annotated[Path, typer.Argument(help="The table (CSV).", show_default=False)]
ReportOpt = Annotated[
    Path | None, typer.Option("--report", help="Where to write the JSON report (default: OUT.report.json).")
]
EncodingOpt = Annotated[
    str | None, typer.Option("--encoding", help="The file's encoding (default: detected, and reported).")
]


def write_atomically(files: Mapping[Path, bytes]) -> None:
    """Write every file or none: all are staged beside their targets first, then renamed into place."""
    staged: list[tuple[Path, Path]] = []
    current = Path()
    try:
        for current, data in files.items():
            tmp = current.with_name(f".{current.name}.tmp")
            staged.append((tmp, current))
            with tmp.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for tmp, current in staged:
            os.replace(tmp, current)
    except OSError as exc:
        raise BadInput(f"{current}: cannot write: {exc.strerror or exc}") from exc
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def _json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def _report_path(out: Path, report: Path | None) -> Path:
    return report if report is not None else out.with_name(out.name + ".report.json")


def _check_distinct(source: Path, *targets: Path) -> None:
    resolved = [t.resolve() for t in targets]
    if source.resolve() in resolved:
        raise BadInput(f"{source}: the output would overwrite the input; choose another --out")
    if len(set(resolved)) != len(resolved):
        raise BadInput(f"{targets[0]}: the output and the report are the same file")


def _read_document(path: Path) -> Any:
    """A TOML or JSON file (by extension; TOML otherwise)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from exc
    from fedledger.store.safejson import loads_shallow

    kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
    try:
        if kind == "JSON":
            return loads_shallow(text, what="the document")
        import tomllib

        return tomllib.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from exc
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: not valid {kind}: nested too deeply") from None


def _recipe_or_rules(path: Path) -> tuple[Recipe | None, CleanseRules | None]:
    """A preparation recipe (its [cleanse] table included), or a file holding only a [cleanse] table."""
    from fedledger.data.cleanse import CleanseRules
    from fedledger.data.prepare import Recipe

    doc = _read_document(path)
    if isinstance(doc, Mapping) and isinstance(doc.get("preparation"), Mapping):
        doc = doc["preparation"]
    if isinstance(doc, Mapping) and "columns" not in doc and set(doc) <= {"cleanse"}:
        return None, CleanseRules.from_dict(doc.get("cleanse", {}))
    try:
        return Recipe.from_dict(doc), None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _load_recipe(path: Path) -> Recipe:
    from fedledger.data.prepare import Recipe

    try:
        return Recipe.from_dict(_preparation_table(path))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _preparation_table(path: Path) -> Any:
    doc = _read_document(path)
    if isinstance(doc, Mapping) and isinstance(doc.get("preparation"), Mapping):
        return doc["preparation"]
    return doc


# --------------------------------------------------------------------------------------------------- cleanse


@app.command("cleanse")
def cleanse_command(
    file: InFile,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the cleansed table (CSV, UTF-8).")],
    recipe: Annotated[
        Path | None,
        typer.Option(
            "--recipe",
            help="The preparation recipe (layout, column types, [cleanse] rules); or a file with only [cleanse].",
        ),
    ] = None,
    report: ReportOpt = None,
    encoding: EncodingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Remove duplicates, repair types, and turn invalid or out-of-range values into missing ones.

    Numbers with thousands separators or decimal commas, booleans and missing markers are repaired; exact
    duplicate rows are removed. The report counts every change per column (its examples show shapes, never
    values)."""
    from fedledger.data.cleanse import cleanse

    target = _report_path(out, report)
    _check_distinct(file, out, target)
    parsed, rules = _recipe_or_rules(recipe) if recipe is not None else (None, None)
    result = cleanse(file, parsed, rules=rules, encoding=encoding)
    document = {**result.report, "output": str(out), "recipe": str(recipe) if recipe is not None else None}
    write_atomically({out: result.to_csv().encode("utf-8"), target: _json_bytes(document)})
    if json_out:
        print_json({**document, "report": str(target)})
        return
    dup = document["duplicates"]["removed"]
    console.print(
        f"[green]Cleansed[/] {escape(str(file))} ({document['encoding']}) -> {escape(str(out))}: "
        f"{document['rows_read']:,} rows read, {document['rows_written']:,} written"
        + (f" ({dup:,} duplicate{'s' if dup != 1 else ''} removed)" if dup else "")
        + f"; {document['changed_cells']:,} cells changed",
        highlight=False,
    )
    if document["recipe_hash"]:
        console.print(f"  recipe {document['recipe_hash']}", highlight=False)
    for name, column in document["columns"].items():
        if not column["changed"]:
            continue
        parts = [f"{k.replace('_', ' ')} {v:,}" for k, v in column["repaired"].items()]
        parts += [f"{_TO_MISSING[k]} {v:,}" for k, v in column["to_missing"].items()]
        console.print(f"  {escape(name)} ({column['type']}): {', '.join(parts)}", highlight=False)
    console.print(f"  report: {escape(str(target))}", highlight=False)


# --------------------------------------------------------------------------------------------------- prepare


def _stats_document(path: Path, recipe: Recipe) -> Mapping[str, Any]:
    doc = _read_document(path)
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: expected a table with 'stats' or 'sum'")
    known = ("format", "recipe", "layout", "sum", "frac_bits", "stats", "rows")
    for key in doc:
        if key not in known:
            raise ConfigError(f"{path}: {key}: unknown key; known: {', '.join(known)}")
    if ("stats" in doc) == ("sum" in doc):
        raise ConfigError(f"{path}: give either 'stats' (per-column statistics) or 'sum' (a summed stats vector)")
    given = doc.get("recipe")
    if given is not None and given != recipe.hash():
        raise ConfigError(f"{path}: recipe: made for recipe {given}, not for this recipe ({recipe.hash()})")
    return doc


def _with_stats(recipe: Recipe, stats: str | None, table: Path, encoding: str | None) -> tuple[Recipe, str]:
    """The recipe with the statistics preparation needs, and where they came from."""
    from fedledger.data.prepare import Recipe

    if stats is None:
        lacking = recipe.missing_stats() if recipe.statistics != "local" else ()
        if lacking:
            col, stat = lacking[0]
            raise ConfigError(
                f"preparation.stats.{col}.{stat}: not set, and the recipe takes its statistics from the consortium; "
                "give --stats local (this file's own) or --stats FILE (statistics agreed by the consortium)"
            )
        return recipe, "recipe"
    if recipe.statistics == "given":
        raise ConfigError('--stats: the recipe gives its statistics (statistics = "given"); leave --stats out')
    if stats == "local":
        if recipe.statistics == "local":
            return recipe, "local"
        return recipe.with_stats(recipe.local_stats(table, encoding=encoding)), "local"
    path = Path(stats)
    if recipe.statistics != "consortium":
        raise ConfigError(f'--stats {path}: a statistics file needs statistics = "consortium" in the recipe')
    doc = _stats_document(path, recipe)
    if "sum" in doc:
        try:
            return recipe.with_stats(doc["sum"], frac_bits=doc.get("frac_bits")), str(path)
        except (BadInput, ConfigError) as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    merged = recipe.to_dict()
    if not isinstance(doc["stats"], Mapping):
        raise ConfigError(f"{path}: stats: expected a table of columns")
    merged["stats"] = {**merged["stats"], **doc["stats"]}
    try:
        return Recipe.from_dict(merged), str(path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def _prepared_csv(feature_names: tuple[str, ...], label: str, X: Any, y: Any) -> bytes:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*feature_names, label])
    for row, target in zip(X.tolist(), y.tolist(), strict=True):
        # repr: floats read back exactly
        writer.writerow([repr(float(v)) for v in row] + [str(int(target))])
    return buffer.getvalue().encode("utf-8")


@app.command("prepare")
def prepare_command(
    file: InFile,
    recipe: Annotated[Path, typer.Option("--recipe", help="The preparation recipe (TOML or JSON).")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where to write the training table (CSV: features after one-hot, label)."),
    ] = None,
    stats: Annotated[
        str | None,
        typer.Option(
            "--stats",
            help="Statistics for imputation and scaling: 'local' (this file's) or a file of agreed statistics "
            "('stats' per column, or 'sum', the consortium's summed vector).",
        ),
    ] = None,
    stats_out: Annotated[
        Path | None,
        typer.Option("--stats-out", help="Also write this file's statistics vector (what the consortium sums)."),
    ] = None,
    report: ReportOpt = None,
    encoding: EncodingOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Apply a preparation recipe and write the numeric training table.

    Imputation, one-hot encoding, scaling and feature selection as the recipe says; the table has a header (the
    feature names, then the label). The report gives the recipe hash a task config commits to."""
    if out is None and stats_out is None:
        raise BadInput("give --out (the training table), --stats-out (the statistics vector), or both")
    parsed = _load_recipe(recipe)
    committed = parsed.hash()
    files: dict[Path, bytes] = {}
    if stats_out is not None:
        files[stats_out] = _json_bytes(_stats_vector_document(parsed, file, encoding))
    document: dict[str, Any] = {"format": PREPARE_REPORT_FORMAT, "recipe": str(recipe), "recipe_hash": committed}
    if out is not None:
        target = _report_path(out, report)
        _check_distinct(file, out, target, *([stats_out] if stats_out is not None else []))
        files[out] = _prepare_into(document, parsed, file, out, stats, encoding)
        if stats_out is not None:
            document["stats_out"] = str(stats_out)
        files[target] = _json_bytes(document)
        document["report"] = str(target)
    write_atomically(files)
    if json_out:
        print_json(document if out is not None else {**document, "stats_out": str(stats_out)})
        return
    _print_prepared(document, parsed, file, out, stats_out)


def _stats_vector_document(parsed: Recipe, file: Path, encoding: str | None) -> dict[str, Any]:
    """This file's statistics vector, the document ``--stats-out`` writes for the consortium's secure sum."""
    from fedledger.data.prepare import stats_layout

    if parsed.statistics != "consortium":
        raise ConfigError(f'--stats-out: the recipe says statistics = "{parsed.statistics}", not "consortium"')
    vector = parsed.local_stats(file, encoding=encoding)
    return {
        "format": STATS_FORMAT,
        "recipe": parsed.hash(),
        "layout": [list(entry) for entry in stats_layout(parsed)],
        "sum": vector.tolist(),
        "frac_bits": None,
    }


def _prepare_into(
    document: dict[str, Any], parsed: Recipe, file: Path, out: Path, stats: str | None, encoding: str | None
) -> bytes:
    """Prepare ``file`` with the agreed statistics, add what was done to ``document``; the training table's CSV."""
    from fedledger.data.prepare import prepare

    agreed, source = _with_stats(parsed, stats, file, encoding)
    data = prepare(agreed, file, encoding=encoding)
    document |= {
        "source": str(file),
        "output": str(out),
        "statistics": parsed.statistics,
        "stats_from": source,
        "prepared_with_hash": agreed.hash(),
        "feature_names": list(data.feature_names),
        "label_column": parsed.label.column,
        "classes": list(data.classes),
        "class_counts": {c: int((data.y == i).sum()) for i, c in enumerate(data.classes)},
        "preparation": data.report.to_dict(),
    }
    return _prepared_csv(data.feature_names, parsed.label.column, data.X, data.y)


def _print_prepared(
    document: Mapping[str, Any], parsed: Recipe, file: Path, out: Path | None, stats_out: Path | None
) -> None:
    if out is not None:
        rep = document["preparation"]
        console.print(
            f"[green]Prepared[/] {escape(str(file))} -> {escape(str(out))}: {rep['rows_used']:,} rows x "
            f"{len(document['feature_names'])} features + {escape(parsed.label.column)} "
            f"(statistics: {escape(document['stats_from'])})",
            highlight=False,
        )
        dropped = sum(rep["rows_dropped"].values())
        if dropped:
            console.print(f"  rows dropped: {dropped:,} (missing label)", highlight=False)
        if rep["imputed"]:
            imputed = ", ".join(f"{escape(k)} {v:,}" for k, v in rep["imputed"].items())
            console.print(f"  imputed: {imputed}", highlight=False)
    console.print(f"  recipe hash: {document['recipe_hash']}", highlight=False)
    if stats_out is not None:
        console.print(f"  statistics vector: {escape(str(stats_out))}", highlight=False)
    if out is not None:
        console.print(f"  report: {escape(document['report'])}", highlight=False)


# --------------------------------------------------------------------------------------------------- insights


@app.command("insights")
def insights_command(
    file: Annotated[Path, typer.Argument(help="The table (CSV or Parquet).", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="The HTML report (default: FILE.insights.html).")
    ] = None,
    labels: Annotated[
        Path | None,
        typer.Option("--labels", help="Labels file (JSON lines); default: <workspace>/data/labels.jsonl."),
    ] = None,
    protected: Annotated[
        Path | None,
        typer.Option("--protected", help="The protected table made from FILE, to measure the risk after protection."),
    ] = None,
    report: ReportOpt = None,
    workspace: WorkspaceOpt = DEFAULT_WS,
    json_out: JsonOpt = False,
) -> None:
    """Write a self-contained HTML report on a table: classes, missingness, distributions, k/l/t, risk.

    Each column's class with its confidence and evidence, missingness, distributions with plots, the k, l and t
    achieved over the quasi-identifiers, and the share of records unique on them before and after protection.
    No identifier value and no value held by fewer than 5 records appears in it."""
    from fedledger.cli.data.scan import _classifier, _label_store
    from fedledger.data.insights import build_insights

    html_path = out if out is not None else file.with_name(file.name + ".insights.html")
    target = _report_path(html_path, report)
    _check_distinct(file, html_path, target)
    store = _label_store(workspace, labels, required=False)
    classifier, _ = _classifier(store)
    given = store.labels_for(file) if store is not None else {}
    result = build_insights(file, labels=given, classifier=classifier, protected=protected)
    document = {**result.summary, "output": str(html_path)}
    write_atomically({html_path: result.html.encode("utf-8"), target: _json_bytes(document)})
    if json_out:
        print_json({**document, "report": str(target)})
        return
    before = document["anonymity"]
    console.print(
        f"[green]Insights[/] {escape(str(file))} -> {escape(str(html_path))}: {document['rows']:,} rows, "
        f"{len(document['columns'])} columns",
        highlight=False,
    )
    for column in document["columns"]:
        mark = " (unsure)" if column["unsure"] else ""
        console.print(
            f"  {escape(column['name'])}: {column['class']}{mark}, {column['missing_ratio']:.1%} missing",
            highlight=False,
        )
    console.print(
        f"  quasi-identifiers: {escape(', '.join(document['quasi_identifiers']) or 'none')}; k = {before['k']}, "
        f"{before['unique_share']:.1%} of records unique on them",
        highlight=False,
    )
    if document["protected"] is not None:
        after = document["protected"]
        console.print(
            f"  after protection: k = {after['k']}, {after['unique_share']:.1%} of records unique", highlight=False
        )
    console.print(f"  report: {escape(str(target))}", highlight=False)
