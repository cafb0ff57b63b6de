"""A report's content, independent of its format: sections of text and tables, all strings.

The HTML and the PDF are both rendered from one :class:`Report`, and its facts (every section) are digested over
their canonical JSON; the digest, the chain, the block and the contracts read travel in the file's header, which
is what ``fedledger report verify`` starts from.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["REPORT_FORMAT", "Report", "Section", "Table", "renderer_versions", "utc"]

REPORT_FORMAT = "fedledger-report/1"


@dataclass(frozen=True)
class Table:
    """Rows of cells under ``columns``; with no columns, rows are (label, value) pairs."""

    rows: list[list[str]]
    columns: list[str] = field(default_factory=list)
    caption: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass(frozen=True)
class Report:
    """One derived report: its kind and arguments (what re-derives it), where it was derived from, its sections."""

    kind: str
    title: str
    args: dict[str, Any]
    provenance: dict[str, Any]
    sections: list[Section]

    def facts(self) -> dict[str, Any]:
        return {"provenance": self.provenance, "sections": [asdict(s) for s in self.sections]}

    @property
    def digest(self) -> str:
        body = json.dumps(self.facts(), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    @property
    def rederive_command(self) -> str:
        """The command that derives this very report again from the same block."""
        args = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in sorted(self.args.items()))
        return f"fedledger report {self.kind} {args} --at-block {self.provenance['block']}".replace("  ", " ")

    def header(self) -> dict[str, Any]:
        """What a report file carries to be verified: enough to re-derive it, and the digest to compare."""
        return {
            "format": REPORT_FORMAT,
            "kind": self.kind,
            "args": self.args,
            "provenance": self.provenance,
            "facts_sha256": self.digest,
            "renderer": renderer_versions(),
        }

    def provenance_rows(self) -> list[list[str]]:
        p = self.provenance
        rows = [
            ["Chain id", str(p["chain_id"])],
            ["Block", str(p["block"])],
            ["Block hash", p["block_hash"]],
            ["Block time (UTC)", utc(p["block_timestamp"])],
            ["Consortium contract", p["consortium"]],
            ["DataRegistry contract", p["data_registry"] or "none"],
        ]
        rows += [[f"Task contract '{name}'", address] for name, address in sorted(p["tasks"].items())]
        rows += [["Facts digest (SHA-256)", self.digest]]
        return rows

    @property
    def verify_commands(self) -> list[str]:
        return [
            "fedledger report verify FILE --workspace WORKSPACE",
            self.rederive_command + " --verify FILE --workspace WORKSPACE",
        ]


def renderer_versions() -> dict[str, str]:
    """The versions that shape a rendered file's bytes (a reader with others compares the text instead)."""
    out = {}
    for package in ("fedledger", "jinja2", "reportlab"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "unknown"
    return out


def utc(timestamp: int) -> str:
    return datetime.fromtimestamp(int(timestamp), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
