"""A data set's insights report: one self-contained HTML page, for the data steward, before anything is shared.

``fedledger data insights`` runs :func:`build_insights`. The page has no external asset and no script: inline CSS
and inline SVG charts drawn here, so it opens offline and can be archived with the data set's records. It shows:

* each column's class (identifier, quasi-identifier, sensitive, other) with the confidence and the evidence of the
  decision :func:`~fedledger.data.classify.scan.scan_table` made (the user's label when there is one);
* missingness per column (empty cells and the missing markers of :data:`~fedledger.data.cleanse.DEFAULT_MISSING`);
* distributions: a histogram for a numeric column, the most frequent values for another;
* the k-anonymity, l-diversity (distinct and entropy) and t-closeness the table achieves over its quasi-identifiers
  and sensitive columns, with the measures of :mod:`fedledger.data.anonymize`;
* the re-identification risk, estimated as the share of records that are unique on their quasi-identifiers (an
  attacker who knows a person's quasi-identifiers and finds one matching record has found that person), before
  protection and, given the protected table, after it.

What the page never shows: any value of an identifier column; a value that fewer than :data:`MIN_CELL` records
share (small-cell suppression, as statistical offices publish tables); the extremes of a numeric column (the
histogram runs from the 1st to the 99th percentile, and the outer bins hold the tails). Its summary
(:attr:`Insights.summary`) holds counts and measures only.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedledger.data.anonymize import (
    SensitiveAttribute,
    distinct_l_diversity,
    entropy_l_diversity,
    equivalence_classes,
    k_anonymity,
    sensitive_histogram,
    t_closeness,
)
from fedledger.data.cleanse import DEFAULT_MISSING
from fedledger.data.tabular import read_table

if TYPE_CHECKING:
    from fedledger.data.classify import ColumnClassifier
    from fedledger.data.classify.scan import ColumnReport, ScanReport

__all__ = ["INSIGHTS_REPORT_FORMAT", "MIN_CELL", "Insights", "build_insights", "uniqueness"]

INSIGHTS_REPORT_FORMAT = "fedledger-insights-report/1"
# A value is shown only when at least this many records hold it.
MIN_CELL = 5
TOP_VALUES = 10
HISTOGRAM_BINS = 20
_MISSING = frozenset(m.casefold() for m in DEFAULT_MISSING)
_CLASS_COLORS = {
    "identifier": "#b42318",
    "quasi_identifier": "#b54708",
    "sensitive": "#6941c6",
    "other": "#475467",
}


@dataclass(frozen=True)
class Insights:
    """The HTML page and its summary (a JSON-ready dict of counts and measures, no values)."""

    html: str
    summary: dict[str, Any]


# --------------------------------------------------------------------------------------------------- measures


def _present(series: pd.Series) -> pd.Series:
    """The column with empty cells and missing markers as None."""
    return series.map(lambda v: None if v is None or str(v).strip().casefold() in _MISSING else str(v).strip())


def _numeric(values: pd.Series) -> npt.NDArray[np.float64] | None:
    """The values as floats when every present one is a number (None otherwise)."""
    present = values.dropna()
    if present.empty:
        return None
    parsed = pd.to_numeric(present, errors="coerce")
    if parsed.isna().any() or not np.isfinite(parsed.to_numpy(dtype=np.float64)).all():
        return None
    numbers: npt.NDArray[np.float64] = parsed.to_numpy(dtype=np.float64)
    return numbers


def uniqueness(frame: pd.DataFrame, quasi_identifiers: Sequence[str]) -> dict[str, Any]:
    """Equivalence classes over ``quasi_identifiers`` (missing equal to missing): k, the number of classes, and
    the share of records unique on them (the re-identification risk estimate) and in classes smaller than
    :data:`MIN_CELL`."""
    n = len(frame)
    if n == 0:
        return {"rows": 0, "k": 0, "classes": 0, "unique_records": 0, "unique_share": 0.0, "small_class_share": 0.0}
    labels = equivalence_classes(frame, list(quasi_identifiers))
    sizes = np.bincount(labels)
    per_record = sizes[labels]
    unique = int(np.count_nonzero(per_record == 1))
    return {
        "rows": n,
        "k": k_anonymity(labels),
        "classes": int(sizes.size),
        "unique_records": unique,
        "unique_share": round(unique / n, 6),
        "small_class_share": round(float(np.count_nonzero(per_record < MIN_CELL)) / n, 6),
    }


def _anonymity(frame: pd.DataFrame, qis: Sequence[str], sensitive: Sequence[str]) -> dict[str, Any]:
    out = uniqueness(frame, qis)
    out["quasi_identifiers"] = list(qis)
    out["sensitive"] = list(sensitive)
    labels = equivalence_classes(frame, list(qis)) if len(frame) else np.zeros(0, dtype=np.int64)
    distinct: dict[str, int] = {}
    entropy: dict[str, float] = {}
    closeness: dict[str, float] = {}
    for name in sensitive:
        values = frame[name].tolist()
        numeric = _numeric(frame[name]) is not None
        attribute = SensitiveAttribute.from_values(name, values, numeric=numeric)
        hist = (
            sensitive_histogram(labels, attribute.codes, attribute.n_values)
            if len(frame)
            else np.zeros((0, 0), dtype=np.int64)
        )
        distinct[name] = distinct_l_diversity(hist)
        entropy[name] = round(entropy_l_diversity(hist), 6)
        closeness[name] = round(t_closeness(hist, ordered=attribute.ordered), 6)
    out["l_distinct"] = distinct
    out["l_entropy"] = entropy
    out["t_closeness"] = closeness
    return out


def _text_frame(path: Path) -> pd.DataFrame:
    frame = read_table(path, as_text=True)
    return pd.DataFrame({str(c): _present(frame[c]) for c in frame.columns}, index=frame.index)


# --------------------------------------------------------------------------------------------------- charts


def _num(x: float) -> str:
    if not math.isfinite(x):
        return "-"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    return f"{x:,.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


def _bar_chart(labels: Sequence[str], counts: Sequence[int], *, horizontal: bool, title: str) -> str:
    """An inline SVG bar chart; each bar carries a <title> tooltip (no script)."""
    top = max(counts, default=0) or 1
    esc = html.escape
    if horizontal:
        row, label_w, bar_w = 20, 170, 260
        height = row * len(labels) + 6
        parts = [
            f'<svg class="chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {label_w + bar_w + 70} {height}" '
            f'width="{label_w + bar_w + 70}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        ]
        for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
            y = 3 + i * row
            w = max(1.0, bar_w * count / top)
            short = label if len(label) <= 26 else label[:25] + "…"
            parts.append(
                f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">{esc(short)}</text>'
                f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row - 6}"><title>{esc(label)}: '
                f"{count:,}</title></rect>"
                f'<text x="{label_w + w + 4:.1f}" y="{y + 14}">{count:,}</text>'
            )
        parts.append("</svg>")
        return "".join(parts)
    width, height, pad = 460, 150, 22
    n = len(counts)
    slot = (width - 2 * pad) / max(n, 1)
    parts = [
        f'<svg class="chart" role="img" aria-label="{esc(title)}" viewBox="0 0 {width} {height + 20}" '
        f'width="{width}" height="{height + 20}" xmlns="http://www.w3.org/2000/svg">',
        f'<line x1="{pad}" y1="{height}" x2="{width - pad}" y2="{height}" class="axis"/>',
    ]
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        h = (height - 10) * count / top
        x = pad + i * slot
        parts.append(
            f'<rect x="{x + 1:.1f}" y="{height - h:.1f}" width="{max(slot - 2, 1):.1f}" height="{h:.1f}">'
            f"<title>{esc(label)}: {count:,}</title></rect>"
        )
    if labels:
        first, last = labels[0].split(" – ")[0], labels[-1].split(" – ")[-1]
        parts.append(f'<text x="{pad}" y="{height + 15}">{esc(first)}</text>')
        parts.append(f'<text x="{width - pad}" y="{height + 15}" text-anchor="end">{esc(last)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _histogram(values: npt.NDArray[np.float64]) -> tuple[str, dict[str, Any]]:
    """An SVG histogram between the 1st and 99th percentiles (the outer bins hold the tails) and its summary."""
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if hi <= lo:
        lo, hi = float(values.min()), float(values.max())
    clipped = np.clip(values, lo, hi)
    counts_arr, edges = np.histogram(clipped, bins=HISTOGRAM_BINS, range=(lo, hi) if hi > lo else None)
    labels = [f"{_num(a)} – {_num(b)}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
    labels[0] = f"≤ {_num(edges[1])}"
    labels[-1] = f"≥ {_num(edges[-2])}"
    chart = _bar_chart(labels, counts_arr.tolist(), horizontal=False, title="histogram")
    return chart, {"chart": "histogram", "bins": int(counts_arr.size)}


# --------------------------------------------------------------------------------------------------- the page

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#101828;margin:0;background:#f9fafb}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #eaecf0;padding-bottom:4px}
h3{font-size:15px;margin:0 0 6px}
.meta{color:#475467;margin:0 0 16px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border:1px solid #eaecf0;padding:6px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f7;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.badge{display:inline-block;color:#fff;border-radius:10px;padding:1px 8px;font-size:12px;white-space:nowrap}
.unsure{color:#b54708;font-weight:600}
ul.evidence{margin:0;padding-left:18px;color:#344054}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:12px}
.card{background:#fff;border:1px solid #eaecf0;border-radius:8px;padding:12px}
.note{color:#475467;font-size:13px}
.bar{height:10px;background:#eaecf0;border-radius:5px;overflow:hidden;min-width:80px}
.bar>span{display:block;height:100%;background:#b42318}
svg.chart{max-width:100%;height:auto;font-size:11px;fill:#475467}
svg.chart rect{fill:#2e90fa}
svg.chart .axis{stroke:#98a2b3}
.risk td{width:25%}
"""


def _badge(cls: str) -> str:
    color = _CLASS_COLORS.get(cls, "#475467")
    return f'<span class="badge" style="background:{color}">{html.escape(cls.replace("_", "-"))}</span>'


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _risk_bar(share: float) -> str:
    return f'<div class="bar" title="{_pct(share)}"><span style="width:{100 * share:.1f}%"></span></div>'


def build_insights(
    path: str | Path,
    *,
    labels: Mapping[str, str] | None = None,
    classifier: ColumnClassifier | None = None,
    protected: str | Path | None = None,
    scan: ScanReport | None = None,
) -> Insights:
    """The insights page of the table at ``path`` (CSV or Parquet). ``labels`` (column -> class) are the user's
    labels for this file; ``protected`` is the table ``fedledger data protect`` wrote from it, measured the same
    way for the "after" column of the risk section. ``scan`` reuses a scan already made of ``path``."""
    from fedledger.data.classify.scan import scan_table

    path = Path(path)
    report = scan or scan_table(path, classifier=classifier, labels=labels or {})
    frame = _text_frame(path)
    n = len(frame)
    decisions = {c.name: c for c in report.columns}
    column_rows: list[str] = []
    cards: list[str] = []
    columns_summary: list[dict[str, Any]] = []
    for name in frame.columns:
        entry, row, card = _column_section(name, decisions.get(name), frame[name], n)
        column_rows.append(row)
        cards.append(card)
        columns_summary.append(entry)

    qis = [c["name"] for c in columns_summary if c["class"] == "quasi_identifier"]
    sensitive = [c["name"] for c in columns_summary if c["class"] == "sensitive"]
    summary: dict[str, Any] = {
        "format": INSIGHTS_REPORT_FORMAT,
        "source": str(path),
        "encoding": report.source.encoding,
        "rows": n,
        "columns": columns_summary,
        "quasi_identifiers": qis,
        "sensitive": sensitive,
        "flags": [f for c in report.columns if c.decision is not None and (f := c.decision.flag(c.name))],
        "anonymity": _anonymity(frame, qis, sensitive),
        "protected": _protected_anonymity(protected, qis, sensitive) if protected is not None else None,
        "min_cell": MIN_CELL,
    }
    return Insights(_page(path, report, summary, column_rows, cards), summary)


def _protected_anonymity(protected: str | Path, qis: list[str], sensitive: list[str]) -> dict[str, Any]:
    """The anonymity measures of the protected table, over the quasi-identifiers it still holds."""
    out = _text_frame(Path(protected))
    kept_qis = [q for q in qis if q in out.columns]
    after = _anonymity(out, kept_qis, [s for s in sensitive if s in out.columns])
    after["source"] = str(protected)
    after["dropped_quasi_identifiers"] = [q for q in qis if q not in out.columns]
    return after


def _column_section(name: str, col: ColumnReport | None, values: pd.Series, n: int) -> tuple[dict[str, Any], str, str]:
    """One column's summary entry, its row of the columns table and its distribution card."""
    esc = html.escape
    decision = col.decision if col is not None else None
    cls = decision.column_class if decision is not None else "other"
    missing = int(values.isna().sum())
    present = values.dropna()
    distinct = int(present.nunique())
    numbers = _numeric(values)
    entry: dict[str, Any] = {
        "name": name,
        "class": cls,
        "class_source": decision.source if decision is not None else None,
        "confidence": round(float(decision.confidence), 4) if decision is not None else None,
        "unsure": bool(decision.unsure) if decision is not None else False,
        "kind": "numeric" if numbers is not None else "text",
        "missing": missing,
        "missing_ratio": round(missing / n, 6) if n else 0.0,
        "distinct": distinct,
    }
    by = esc(decision.source) if decision is not None else "-"
    if decision is not None and decision.unsure:
        by += ' <span class="unsure">(unsure: treated as the more protective class)</span>'
    confidence = f"{decision.confidence:.0%}" if decision is not None else "-"
    evidence = "".join(f"<li>{esc(e)}</li>" for e in (col.evidence if col is not None else []))
    row = (
        f"<tr><td>{esc(name)}</td><td>{_badge(cls)}</td><td>{by}</td><td class='num'>{confidence}</td>"
        f"<td><ul class='evidence'>{evidence}</ul></td>"
        f"<td class='num'>{missing:,} ({_pct(missing / n if n else 0)})</td><td class='num'>{distinct:,}</td></tr>"
    )
    body, entry["distribution"] = _distribution(cls, present, numbers, distinct, missing)
    return entry, row, f"<div class='card'><h3>{esc(name)} {_badge(cls)}</h3>{body}</div>"


def _distribution(
    cls: str, present: pd.Series, numbers: npt.NDArray[np.float64] | None, distinct: int, missing: int
) -> tuple[str, dict[str, Any]]:
    """The distribution card's body and its summary: never a value of an identifier, never a value fewer than
    MIN_CELL records hold."""
    if cls == "identifier":
        body = (
            f"<p class='note'>Values not shown: an identifier column. {distinct:,} distinct values, "
            f"{missing:,} missing.</p>"
        )
        return body, {"chart": "none", "reason": "identifier"}
    if present.empty:
        return "<p class='note'>Every value is missing.</p>", {"chart": "none", "reason": "no values"}
    if numbers is not None and distinct > HISTOGRAM_BINS:
        chart, info = _histogram(numbers)
        q1, median, q3 = (float(v) for v in np.percentile(numbers, [25, 50, 75]))
        body = chart + (
            f"<p class='note'>mean {_num(float(numbers.mean()))}, standard deviation "
            f"{_num(float(numbers.std()))}, quartiles {_num(q1)} / {_num(median)} / {_num(q3)}; "
            "the outer bins hold the tails (below the 1st and above the 99th percentile)" + ".</p>"
        )
        return body, info
    counts = present.value_counts()
    shown = counts[counts >= MIN_CELL].head(TOP_VALUES)
    if numbers is not None:  # a few numeric codes: in their numeric order, as written
        shown = shown.iloc[np.argsort([float(v) for v in shown.index], kind="stable")]
    rest = int(counts.sum() - shown.sum())
    labels_shown = [str(v) for v in shown.index]
    chart = (
        _bar_chart(labels_shown, [int(c) for c in shown.tolist()], horizontal=True, title="most frequent values")
        if len(shown)
        else ""
    )
    body = chart + (
        f"<p class='note'>{distinct:,} distinct values; {rest:,} records hold values not shown (beyond the "
        f"top {TOP_VALUES}, or shared by fewer than {MIN_CELL} records).</p>"
    )
    return body, {"chart": "top values", "shown": len(shown), "records_not_shown": rest}


def _measure_rows(m: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [
        ("k-anonymity (smallest group sharing the quasi-identifiers)", f"{m['k']:,}"),
        ("groups (equivalence classes)", f"{m['classes']:,}"),
        ("records unique on their quasi-identifiers", f"{m['unique_records']:,} ({_pct(m['unique_share'])})"),
        (f"records in groups smaller than {MIN_CELL}", _pct(m["small_class_share"])),
    ]
    for name in m["sensitive"]:
        rows.append(
            (f"l-diversity of {name} (distinct / entropy)", f"{m['l_distinct'][name]} / {m['l_entropy'][name]}")
        )
        rows.append((f"t-closeness of {name} (largest distance to the whole table)", f"{m['t_closeness'][name]}"))
    return rows


def _page(path: Path, report: ScanReport, summary: Mapping[str, Any], column_rows: list[str], cards: list[str]) -> str:
    esc = html.escape
    before, after = summary["anonymity"], summary["protected"]
    qis = ", ".join(summary["quasi_identifiers"]) or "none"
    sens = ", ".join(summary["sensitive"]) or "none"
    measure_rows = "".join(f"<tr><th>{esc(a)}</th><td class='num'>{esc(b)}</td></tr>" for a, b in _measure_rows(before))
    if not summary["quasi_identifiers"]:
        measure_rows += (
            "<tr><td colspan='2' class='note'>No column is a quasi-identifier: every record falls into one group."
            "</td></tr>"
        )
    risk = (
        "<table class='risk'><tr><th></th><th>records unique on their quasi-identifiers</th><th></th><th>k</th></tr>"
        f"<tr><th>before protection</th><td class='num'>{_pct(before['unique_share'])}</td>"
        f"<td>{_risk_bar(before['unique_share'])}</td><td class='num'>{before['k']:,}</td></tr>"
    )
    if after is not None:
        after_share = after["unique_share"]
        risk += (
            f"<tr><th>after protection<br><span class='note'>{esc(Path(after['source']).name)}</span></th>"
            f"<td class='num'>{_pct(after_share)}</td><td>{_risk_bar(after_share)}</td>"
            f"<td class='num'>{after['k']:,}</td></tr>"
        )
    risk += "</table>"
    if after is None:
        risk += (
            "<p class='note'>Give the protected table (<code>--protected FILE</code>) to measure the risk after "
            "protection.</p>"
        )
    else:
        if after["dropped_quasi_identifiers"]:
            risk += (
                "<p class='note'>Quasi-identifiers the protected table no longer holds: "
                f"{esc(', '.join(after['dropped_quasi_identifiers']))}.</p>"
            )
        after_rows = "".join(
            f"<tr><th>{esc(a)}</th><td class='num'>{esc(b)}</td></tr>" for a, b in _measure_rows(after)
        )
        risk += f"<h3>Measured on the protected table</h3><table>{after_rows}</table>"
    flags = "".join(f"<li>{esc(f)}</li>" for f in summary["flags"])
    source = report.source
    described = f"{source.format}" + (
        f", {source.encoding}, delimiter {source.delimiter!r}" if source.format == "csv" else ""
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Insights: {esc(path.name)}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>Insights: {esc(path.name)}</h1>
<p class="meta">{summary["rows"]:,} records, {len(summary["columns"])} columns ({esc(described)}); made
{datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")} by fedledger data insights. Values shared by fewer than
{MIN_CELL} records and every value of an identifier column are left out of this page.</p>
<section id="columns"><h2>Columns and their classes</h2>
<table><tr><th>column</th><th>class</th><th>decided by</th><th>confidence</th><th>evidence</th><th>missing</th>
<th>distinct</th></tr>
{"".join(column_rows)}
</table>
{f"<h3>Flags</h3><ul>{flags}</ul>" if flags else ""}
</section>
<section id="distributions"><h2>Distributions</h2>
<div class="cards">{"".join(cards)}</div>
</section>
<section id="anonymity"><h2>Anonymity: k, l and t</h2>
<p class="meta">Quasi-identifiers: {esc(qis)}. Sensitive: {esc(sens)}.</p>
<table>{measure_rows}</table>
</section>
<section id="risk"><h2>Re-identification risk</h2>
<p class="meta">Estimated as the share of records that no other record matches on the quasi-identifiers: someone
who knows those attributes of a person and finds a single matching record has found that person.</p>
{risk}
</section>
</main></body></html>
"""
