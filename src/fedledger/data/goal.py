"""The purpose of processing, declared before the data is used: ``fedledger data goal``.

GDPR asks for a specified purpose (Art. 5(1)(b)), a lawful basis (Art. 6(1)), data limited to what the purpose needs
(Art. 5(1)(c), data minimization) and a bounded storage period (Art. 5(1)(e)). A :class:`Goal` records the four
for one data file, as a small JSON document beside it (``patients.csv`` -> ``patients.csv.goal.json``,
:func:`goal_path_for`)::

    {
      "format": "fedledger-goal/1",
      "data": "patients.csv",
      "purpose": "model-training:heart-disease",
      "lawful_basis": "public_task",
      "retention": "5y",
      "columns": ["age", "sex", "cp", "trestbps", "chol", "num"],
      "description": "Train the consortium's heart-disease risk model.",
      "declared_at": "2025-05-01T09:30:00+00:00"
    }

* ``purpose`` is the name the dataset is registered for on the ledger (a canonical name: a-z 0-9 . _ : / -), so the
  purpose-limitation check a node runs before training (:func:`fedledger.data.registration.check_purpose`) compares
  the same string;
* ``lawful_basis`` is one of :data:`LAWFUL_BASES`, Art. 6(1)(a)-(f) in order;
* ``retention`` is how long the data may be kept: a number of days, weeks, months or years (``90d``, ``26w``,
  ``6m``, ``5y``) or the last day as an ISO date (``2030-12-31``);
* ``columns`` are the columns the purpose needs; ``data protect`` drops every other column of the table and says so
  in its report, and registration refuses a table holding any other column.

The file is written atomically (a temporary file renamed into place). Reading is strict: an unknown key, a basis
outside the list or a malformed retention is a :class:`~fedledger.exceptions.ConfigError` naming the file and line.
:attr:`Goal.digest` (SHA-256 of the canonical JSON) is what a registration records.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from fedledger.exceptions import BadInput, ConfigError

__all__ = ["GOAL_FORMAT", "LAWFUL_BASES", "Goal", "goal_path_for"]

GOAL_FORMAT = "fedledger-goal/1"
# GDPR Art. 6(1) (a) to (f).
LAWFUL_BASES: tuple[str, ...] = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
_KEYS = ("format", "data", "purpose", "lawful_basis", "retention", "columns", "description", "declared_at")
_RETENTION = re.compile(r"^([1-9]\d{0,3})([dwmy])$")


def goal_path_for(data: str | Path) -> Path:
    """Where the goal of a data file lives: beside it, named after it."""
    data = Path(data)
    return data.with_name(data.name + ".goal.json")


def _check_retention(retention: str) -> None:
    if _RETENTION.match(retention):
        return
    try:
        date.fromisoformat(retention)
    except ValueError:
        raise ConfigError(
            f"retention {retention!r}: expected a period such as 90d, 26w, 6m or 5y, or a last day as YYYY-MM-DD"
        ) from None


@dataclass(frozen=True)
class Goal:
    """What the data is for, on what lawful basis, for how long, and which of its columns that needs."""

    purpose: str
    lawful_basis: str
    retention: str
    columns: tuple[str, ...]
    data: str = ""
    description: str = ""
    declared_at: str = ""
    source: str = field(default="", compare=False, repr=False)  # the file it was read from, for messages

    def __post_init__(self) -> None:
        from fedledger.chain.encoding import name_id

        try:
            name_id(self.purpose, what="purpose", example="model-training:heart-disease")
        except BadInput as exc:
            raise ConfigError(str(exc)) from None
        if self.lawful_basis not in LAWFUL_BASES:
            raise ConfigError(
                f"lawful basis {self.lawful_basis!r}: expected one of {', '.join(LAWFUL_BASES)} (GDPR Art. 6(1))"
            )
        if not isinstance(self.retention, str):
            raise ConfigError(f"retention must be a string, not {self.retention!r}")
        _check_retention(self.retention)
        if isinstance(self.columns, str) or not all(isinstance(c, str) and c for c in self.columns):
            raise ConfigError("columns must be a list of column names")
        if not self.columns:
            raise ConfigError("columns: a purpose needs at least one column")
        repeated = sorted({c for c in self.columns if self.columns.count(c) > 1})
        if repeated:
            raise ConfigError(f"columns: {', '.join(map(repr, repeated))} listed twice")

    # -- the document ------------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": GOAL_FORMAT,
            "data": self.data,
            "purpose": self.purpose,
            "lawful_basis": self.lawful_basis,
            "retention": self.retention,
            "columns": list(self.columns),
            "description": self.description,
            "declared_at": self.declared_at,
        }

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of the canonical JSON document: what a registration records."""
        from fedledger.data.commitment import document_hash

        return document_hash(self.to_json()).hex()

    def summary(self) -> dict[str, Any]:
        """What a report says about the goal it applied."""
        return {
            "file": self.source,
            "purpose": self.purpose,
            "lawful_basis": self.lawful_basis,
            "retention": self.retention,
            "columns": list(self.columns),
            "sha256": self.digest,
        }

    @classmethod
    def declare(
        cls,
        data: str | Path,
        *,
        purpose: str,
        lawful_basis: str,
        retention: str,
        columns: Sequence[str],
        available: Iterable[str],
        description: str = "",
    ) -> Goal:
        """A new goal for the file ``data`` whose columns are ``available``; every needed column must be one."""
        goal = cls(
            purpose=purpose,
            lawful_basis=lawful_basis,
            retention=retention,
            columns=tuple(columns),
            data=Path(data).name,
            description=description,
            declared_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        goal.check_columns(available, table=str(data))
        return goal

    def check_columns(self, available: Iterable[str], *, table: str) -> None:
        """A :class:`BadInput` naming every needed column the table ``table`` lacks (its header is line 1)."""
        have = list(available)
        missing = [c for c in self.columns if c not in have]
        if missing:
            origin = f" (goal {self.source})" if self.source else ""
            raise BadInput(
                f"{table} line 1, column {missing[0]!r}: the purpose {self.purpose!r}{origin} needs column(s) "
                f"{', '.join(map(repr, missing))} that the table does not have (it has {', '.join(map(repr, have))})"
            )

    # -- files -------------------------------------------------------------------------------------------

    def write(self, path: str | Path) -> Path:
        """Write the goal to ``path`` atomically."""
        path = Path(path)
        staged = path.with_name(f".{path.name}.tmp")
        try:
            staged.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            os.replace(staged, path)
        except OSError as exc:
            raise BadInput(f"{path}: cannot write the goal: {exc}") from exc
        finally:
            staged.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Goal:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"goal file {path} not found (declare one with `fedledger data goal`)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"goal file {path}: cannot read: {exc}") from exc
        from fedledger.store.safejson import UnsafeJSON, loads_shallow

        try:
            data = loads_shallow(text, what=f"goal file {path}")
        except json.JSONDecodeError as exc:
            raise ConfigError(f"goal file {path} line {exc.lineno}: not valid JSON: {exc.msg}") from None
        except UnsafeJSON as exc:
            raise ConfigError(str(exc)) from None
        return cls.from_mapping(data, source=str(path), text=text)

    @classmethod
    def from_mapping(cls, data: Any, *, source: str = "goal", text: str = "") -> Goal:
        def where(key: str) -> str:
            line = _line_of_key(text, key)
            return f"{source} line {line}" if line else source

        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: a goal is a JSON object")
        unknown = [k for k in data if k not in _KEYS]
        if unknown:
            raise ConfigError(f"{where(unknown[0])}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_KEYS)})")
        if data.get("format", GOAL_FORMAT) != GOAL_FORMAT:
            raise ConfigError(f"{where('format')}: format {data['format']!r} is not {GOAL_FORMAT!r}")
        missing = [k for k in ("purpose", "lawful_basis", "retention", "columns") if k not in data]
        if missing:
            raise ConfigError(f"{source}: missing key(s) {', '.join(missing)}")
        for key in ("purpose", "lawful_basis", "retention", "data", "description", "declared_at"):
            if key in data and not isinstance(data[key], str):
                raise ConfigError(f"{where(key)}: {key} must be a string")
        columns = data["columns"]
        if not isinstance(columns, list):
            raise ConfigError(f"{where('columns')}: columns must be a list of column names")
        try:
            return cls(
                purpose=data["purpose"],
                lawful_basis=data["lawful_basis"],
                retention=data["retention"],
                columns=tuple(columns),
                data=data.get("data", ""),
                description=data.get("description", ""),
                declared_at=data.get("declared_at", ""),
                source=source,
            )
        except ConfigError as exc:
            key = next((k for k in ("lawful_basis", "retention", "columns", "purpose") if _names(str(exc), k)), "")
            raise ConfigError(f"{where(key) if key else source}: {exc}") from None


def _names(message: str, key: str) -> bool:
    """Whether a validation message is about ``key`` (messages start with the key's words)."""
    return message.startswith(key.replace("_", " ")) or message.startswith(key) or f"{key} name" in message


def _line_of_key(text: str, key: str) -> int | None:
    """The line on which ``"key":`` first appears in a JSON text (1-based), if it does."""
    match = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None
