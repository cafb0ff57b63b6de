"""Compliance reports derived from the ledger: GDPR records of processing and erasures, HIPAA audit controls, and
model cards, as HTML and PDF, each stating the chain, the block and the contracts it was derived from and carrying
what ``fedledger report verify`` needs to check it against them.

Layers: :mod:`.snapshot` reads the ledger at one block; :mod:`.gdpr`, :mod:`.hipaa` and :mod:`.model_card` derive a
format-free :class:`~fedledger.reports.document.Report`; :mod:`.render` renders it; :mod:`.verify` checks a file.
"""

from __future__ import annotations

from fedledger.reports.derive import KINDS, derive_report
from fedledger.reports.document import REPORT_FORMAT, Report, Section, Table
from fedledger.reports.gdpr import gdpr_report
from fedledger.reports.hipaa import access_log, hipaa_report
from fedledger.reports.model_card import model_card, model_versions
from fedledger.reports.render import FORMATS, Format, render
from fedledger.reports.snapshot import LedgerSnapshot, TaskView
from fedledger.reports.verify import ReportHeader, Verified, read_header, verify_report

__all__ = [
    "FORMATS",
    "KINDS",
    "REPORT_FORMAT",
    "Format",
    "LedgerSnapshot",
    "Report",
    "ReportHeader",
    "Section",
    "Table",
    "TaskView",
    "Verified",
    "access_log",
    "derive_report",
    "gdpr_report",
    "hipaa_report",
    "model_card",
    "model_versions",
    "read_header",
    "render",
    "verify_report",
]
