"""``fedledger report verify FILE``: check a report file against the ledger it says it was derived from.

The file's header names the report's kind, its arguments, the chain, the block and the contracts, and the digest of
its facts. Verification derives the report again from that block (the chain must be the same, by id, and so must
the block's hash) and then requires, in order: the same provenance, the same facts digest, and the same content, by
bytes when the file was rendered with the same library versions, else by its text. A file edited anywhere, or
derived from another ledger, fails with the first difference named.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from fedledger.exceptions import BadInput, VerificationFailed
from fedledger.reports.document import REPORT_FORMAT, Report, renderer_versions
from fedledger.reports.render import Format, render

__all__ = ["ReportHeader", "Verified", "read_header", "verify_report"]

_HEADER_RE = re.compile(rb'<script type="application/json" id="fedledger-report">(.*?)</script>', re.DOTALL)


@dataclass(frozen=True)
class ReportHeader:
    fmt: Format
    kind: str
    args: dict[str, Any]
    block: int
    provenance: dict[str, Any]
    facts_sha256: str
    renderer: dict[str, str]


@dataclass(frozen=True)
class Verified:
    header: ReportHeader
    by: str  # "bytes" | "text"


def read_header(data: bytes) -> ReportHeader:
    """The header a report file carries; :class:`BadInput` for a file that is not a fedledger report."""
    if data.startswith(b"%PDF"):
        fmt: Format = "pdf"
        raw = _pdf_subject(data)
    else:
        match = _HEADER_RE.search(data)
        if match is None:
            raise BadInput("not a fedledger report: no report header in the file")
        fmt, raw = "html", match.group(1).decode("utf-8", errors="replace")
    try:
        body = json.loads(raw)
        if body["format"] != REPORT_FORMAT:
            raise BadInput(f"unsupported report format {body['format']!r}: expected {REPORT_FORMAT}")
        provenance = dict(body["provenance"])
        return ReportHeader(
            fmt=fmt,
            kind=str(body["kind"]),
            args=dict(body["args"]),
            block=int(provenance["block"]),
            provenance=provenance,
            facts_sha256=str(body["facts_sha256"]),
            renderer=dict(body["renderer"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"not a fedledger report: malformed report header ({exc})") from exc


def _pdf_subject(data: bytes) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        metadata = PdfReader(io.BytesIO(data)).metadata
    except (PyPdfError, ValueError) as exc:
        raise BadInput(f"not a readable PDF: {exc}") from exc
    subject = metadata.subject if metadata is not None else None
    if not subject:
        raise BadInput("not a fedledger report: the PDF has no report header")
    return str(subject)


def verify_report(data: bytes, derive: Callable[[ReportHeader], Report]) -> Verified:
    """Check ``data`` (a report file) against ``derive(header)``, the report derived afresh from the ledger;
    :class:`VerificationFailed` naming the first difference."""
    header = read_header(data)
    report = derive(header)
    where = f"block {header.block} of chain {header.provenance.get('chain_id')}"
    for key, value in report.provenance.items():
        if header.provenance.get(key) != value:
            raise VerificationFailed(
                f"the report names {key} {header.provenance.get(key)!r}, the ledger at {where} {value!r}"
            )
    if header.facts_sha256 != report.digest:
        raise VerificationFailed(
            f"the report's facts digest {header.facts_sha256} is not that of the facts the ledger gives at {where} "
            f"({report.digest}): the report was altered, or derived from another history"
        )
    fresh = render(report, header.fmt)
    if fresh == data:
        return Verified(header, "bytes")
    mine, theirs = _text(fresh, header.fmt), _text(data, header.fmt)
    if mine != theirs:
        raise VerificationFailed(f"the file's content differs from the ledger's at {where}: {_changes(theirs, mine)}")
    if header.renderer == renderer_versions():
        raise VerificationFailed(
            "the file's text matches the ledger but its bytes differ from a rendering with the very library versions "
            "it names: it was altered"
        )
    return Verified(header, "text")


def _changes(file_lines: list[str], ledger_lines: list[str], *, most: int = 3) -> str:
    """The first ``most`` places where the file's lines differ from the ledger's."""
    changes = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=file_lines, b=ledger_lines, autojunk=False).get_opcodes():
        if tag != "equal":
            said = " | ".join(file_lines[i1:i2][:2]) or "(nothing)"
            truth = " | ".join(ledger_lines[j1:j2][:2]) or "(nothing)"
            changes.append(f"the file says {said!r} where the ledger gives {truth!r}")
    more = f" (and {len(changes) - most} more)" if len(changes) > most else ""
    return "; ".join(changes[:most]) + more


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("br", "p", "tr", "td", "th", "h1", "h2"):
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _text(data: bytes, fmt: Format) -> list[str]:
    if fmt == "html":
        parser = _TextOf()
        parser.feed(data.decode("utf-8", errors="replace"))
        text = "".join(parser.parts)
    else:
        from pypdf import PdfReader

        text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    return [line.strip() for line in text.splitlines() if line.strip()]
