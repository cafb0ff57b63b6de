"""The organization's own column labels, kept locally as JSON lines.

A label stores the column's *features* (header groups, validator shares, statistics), never its values, so the
labels file holds no personal data. Each line records the feature layout version it was computed with; labels from
another layout are reported as stale and left out of training rather than misread.

Labels serve twice: the classifier retrains with them (:meth:`LabelStore.training_pairs`), and a label is the class
of the very column it was given for (:meth:`LabelStore.labels_for`: ``data scan`` and ``data protect`` take it as
declared, whatever its feature layout). A record with an unknown class or unknown fields is an error naming the
file and line, never skipped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from fedledger.data.classify.features import FEATURE_NAMES, FEATURE_VERSION
from fedledger.exceptions import BadInput, ConfigError

__all__ = ["LABELS_FILE", "LabelStore", "LabeledColumn"]

LABELS_FILE = Path("data") / "labels.jsonl"  # inside a workspace


@dataclass(frozen=True)
class LabeledColumn:
    file: str
    column: str
    label: str
    features: list[float]
    feature_version: str = FEATURE_VERSION
    labeled_at: str = ""


class LabelStore:
    """Append-only labels file; :meth:`training_pairs` gives what the classifier trains on."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def add(self, entry: LabeledColumn) -> LabeledColumn:
        from fedledger.data.classify.model import CLASSES

        if entry.label not in CLASSES:
            raise BadInput(f"unknown class {entry.label!r}: expected one of {', '.join(CLASSES)}")
        if len(entry.features) != len(FEATURE_NAMES):
            raise BadInput(
                f"label for {entry.column!r} has {len(entry.features)} features, expected {len(FEATURE_NAMES)}"
            )
        stamped = LabeledColumn(
            **{**asdict(entry), "labeled_at": entry.labeled_at or datetime.now(UTC).isoformat(timespec="seconds")}
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existing = self.path.read_bytes() if self.path.exists() else b""
        if existing and not existing.endswith(b"\n"):
            existing += b"\n"
        # Rewrite and rename rather than append: a crash mid-write must not leave half a record behind.
        staged = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with staged.open("wb") as fh:
                fh.write(existing + (json.dumps(asdict(stamped), sort_keys=True) + "\n").encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(staged, self.path)
        finally:
            staged.unlink(missing_ok=True)
        return stamped

    def entries(self) -> list[LabeledColumn]:
        """Every label, oldest first; ``ConfigError`` naming the line (and column) when the file is corrupt."""
        from fedledger.data.classify.model import CLASSES

        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{self.path}: not a labels file (not UTF-8): {exc}") from exc
        from fedledger.store.safejson import loads_shallow

        out = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = LabeledColumn(**loads_shallow(line, what="the record"))
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{self.path} line {number}: not a label record: {exc}") from exc
            if entry.label not in CLASSES:
                raise ConfigError(
                    f"{self.path} line {number}, column {entry.column!r}: unknown class {entry.label!r} "
                    f"(expected one of {', '.join(CLASSES)})"
                )
            out.append(entry)
        return out

    def labels_for(self, file: str | Path) -> dict[str, str]:
        """column -> class of the latest label given for ``file`` (matched by its resolved path)."""
        target = str(Path(file).resolve())
        return {entry.column: entry.label for entry in self.entries() if entry.file == target}

    def training_pairs(self) -> tuple[list[tuple[list[float], str]], int]:
        """((features, class) for current-layout labels, the latest label per file and column; stale count)."""
        latest: dict[tuple[str, str], LabeledColumn] = {}
        stale = 0
        for entry in self.entries():
            if entry.feature_version != FEATURE_VERSION:
                stale += 1
                continue
            latest[(entry.file, entry.column)] = entry
        return [(e.features, e.label) for e in latest.values()], stale
