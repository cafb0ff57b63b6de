"""Which report a kind names: the one entry point the CLI and verification derive every report through."""

from __future__ import annotations

from typing import Any

from fedledger.exceptions import BadInput
from fedledger.reports.document import Report
from fedledger.reports.gdpr import gdpr_report
from fedledger.reports.hipaa import hipaa_report
from fedledger.reports.model_card import model_card
from fedledger.reports.snapshot import LedgerSnapshot

__all__ = ["KINDS", "derive_report"]

KINDS = ("gdpr", "hipaa", "model")


def derive_report(snapshot: LedgerSnapshot, kind: str, args: dict[str, Any]) -> Report:
    """The report of ``kind`` with its ``args`` (``model``: ``task`` and ``version``) from ``snapshot``."""
    if kind == "gdpr":
        return gdpr_report(snapshot)
    if kind == "hipaa":
        return hipaa_report(snapshot)
    if kind == "model":
        task, version = args.get("task", "default"), args.get("version")
        if not isinstance(task, str) or not (version is None or isinstance(version, int)):
            raise BadInput(f"malformed model card arguments {args!r}")
        return model_card(snapshot, task=task, version=version)
    raise BadInput(f"unknown report kind {kind!r}: expected one of {', '.join(KINDS)}")
