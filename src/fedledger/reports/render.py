"""A :class:`~fedledger.reports.document.Report` as HTML (a Jinja2 template shipped in the package) or PDF
(reportlab, which installs from PyPI without system libraries).

Both renderings are deterministic: the same report gives the same bytes with the same library versions (the PDF in
reportlab's invariant mode: no creation time, a fixed document id), which is what lets ``fedledger report verify``
compare a file with a fresh derivation. Both carry the report's header (:meth:`Report.header`): the HTML in a
``<script type="application/json" id="fedledger-report">`` element, the PDF as its document subject.
"""

from __future__ import annotations

import io
import json
from typing import Literal
from xml.sax.saxutils import escape

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer
from reportlab.platypus import Table as PdfTable

from fedledger.reports.document import Report, Table

__all__ = ["FORMATS", "Format", "render", "render_html", "render_pdf"]

Format = Literal["html", "pdf"]
FORMATS: tuple[Format, ...] = ("html", "pdf")


def render(report: Report, fmt: Format) -> bytes:
    return render_html(report) if fmt == "html" else render_pdf(report)


def _lines(value: str) -> Markup:
    return Markup("<br>").join(value.split("\n"))


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("fedledger.reports", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
        keep_trailing_newline=True,
    )
    env.filters["lines"] = _lines
    env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": True}
    return env


def render_html(report: Report) -> bytes:
    template = _environment().get_template("report.html.j2")
    return template.render(report=report, header=report.header()).encode("utf-8")


# -- PDF -------------------------------------------------------------------------------------------------------------

_PAGE_WIDTH = A4[0] - 30 * mm  # inside 15 mm margins
_STYLES = getSampleStyleSheet()
_BODY = ParagraphStyle("body", parent=_STYLES["BodyText"], fontSize=8.5, leading=10.5)
_CELL = ParagraphStyle("cell", parent=_BODY, fontSize=7, leading=8.5)
# Hashes and addresses in one unbroken line: Courier at this size fits 66 hex characters in a value column.
_MONO = ParagraphStyle("mono", parent=_CELL, fontName="Courier", fontSize=6.8, leading=8.5)
_HEAD = ParagraphStyle("head", parent=_CELL, fontName="Helvetica-Bold")
_GRID = [
    ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
    ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ("LEFTPADDING", (0, 0), (-1, -1), 3),
    ("RIGHTPADDING", (0, 0), (-1, -1), 3),
]


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    return Paragraph("<br/>".join(escape(line) for line in text.split("\n")), style)


def _cell(text: str) -> Paragraph:
    token = text.strip()
    return _para(text, _MONO if token.startswith("0x") and " " not in token else _CELL)


def _pdf_table(table: Table) -> PdfTable:
    if not table.columns:
        widths = [0.3 * _PAGE_WIDTH, 0.7 * _PAGE_WIDTH]
        data = [[_para(label, _HEAD), _cell(value)] for label, value in table.rows]
        return PdfTable(data, colWidths=widths, style=_GRID, repeatRows=0)
    widths = _column_widths(table)
    data = [[_para(c, _HEAD) for c in table.columns]]
    data += [[_cell(v) for v in row] for row in table.rows]
    style = [*_GRID, ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke)]
    return PdfTable(data, colWidths=widths, style=style, repeatRows=1)


def _column_widths(table: Table) -> list[float]:
    """Each column gets the width its longest line needs when the page allows; the columns that need more than an
    equal share of what is left share it in proportion to their need, and wrap (water filling)."""
    n = len(table.columns)
    need = []
    for i in range(n):
        lines = [line for row in table.rows for line in row[i].split("\n")]
        widest = max((_text_width(line) for line in lines), default=0.0)
        need.append(max(widest, stringWidth(table.columns[i], _HEAD.fontName, _HEAD.fontSize)) + 7)
    widths: dict[int, float] = {}
    flexible, room = set(range(n)), _PAGE_WIDTH
    while flexible:
        share = room / len(flexible)
        fits = [i for i in flexible if need[i] <= share]
        if not fits:
            break
        for i in fits:
            widths[i] = need[i]
            room -= need[i]
            flexible.discard(i)
    total = sum(need[i] for i in flexible)
    for i in flexible:
        widths[i] = room * need[i] / total
    spare = _PAGE_WIDTH - sum(widths.values())  # when everything fits: spread the rest evenly
    return [widths[i] + spare / n for i in range(n)]


def _text_width(line: str) -> float:
    token = line.strip()
    style = _MONO if token.startswith("0x") and " " not in token else _CELL
    return float(stringWidth(line, style.fontName, style.fontSize))


def render_pdf(report: Report) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=15 * mm,
        title=report.title,
        author="fedledger",
        creator=f"fedledger {report.header()['renderer']['fedledger']}",
        subject=json.dumps(report.header(), sort_keys=True, separators=(",", ":")),
        invariant=1,
    )
    story: list[Flowable] = [Paragraph(escape(report.title), _STYLES["Title"])]
    story.append(
        _para("Derived from the ledger alone at the block below. To check this file against the chain:", _BODY)
    )
    story += [_para(command, _MONO) for command in report.verify_commands]
    story += [Spacer(1, 3 * mm), _pdf_table(Table(report.provenance_rows()))]
    for section in report.sections:
        story.append(Paragraph(escape(section.title), _STYLES["Heading2"]))
        story += [_para(text, _BODY) for text in section.text]
        for table in section.tables:
            story += [Spacer(1, 2 * mm), _pdf_table(table)]
    doc.build(story)
    return buffer.getvalue()
