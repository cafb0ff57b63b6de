"""The protection policy: what ``fedledger data protect`` does to each column, and the privacy targets.

A policy is a TOML file (read with :mod:`tomllib`); every key is optional::

    k = 10                        # k-anonymity over the quasi-identifiers (default 5)
    mode = "strict"               # Mondrian split model: "strict" or "relaxed"
    l = 2                         # l-diversity target on every sensitive column (off by default)
    l_kind = "distinct"           # "distinct" or "entropy"
    t = 0.3                       # t-closeness target (EMD; off by default)
    identifier_action = "pseudonymize"   # default for identifiers: "pseudonymize", "tokenize" or "drop"
    pseudonym_length = 26         # base32 characters of a pseudonym

    [columns.card_number]
    class = "identifier"          # overrides the classifier
    action = "tokenize"           # drop | pseudonymize | tokenize | keep | generalize
    domain = "cards"              # tokens/pseudonyms of different domains never match (default: one domain)

    [columns.zip]
    class = "quasi_identifier"
    kind = "categorical"          # "numeric" (ranges) or "categorical" (hierarchy); default: inferred
    hierarchy = "prefix"          # "auto" (default), "flat", "prefix", or a table parent -> children:

    [columns.workclass.hierarchy]
    "Self-employ" = ["Self-emp-not-inc", "Self-emp-inc"]
    gov = ["Federal-gov", "Local-gov", "State-gov"]

Default action by class: identifier -> ``identifier_action``, quasi_identifier -> generalize, sensitive and other
-> keep. ``generalize`` makes any column a quasi-identifier; ``keep`` on a quasi-identifier publishes it unchanged
(the report says so). No default ever publishes an identifier in clear: only an explicit ``action = "keep"`` on the
column does, and the report flags it. Unknown keys and values are errors naming the file and line (a typo must not
silently weaken protection), and so is a policy naming a column the table does not have
(:meth:`ProtectionPolicy.check_columns`). The format is documented with examples in ``docs/data-pipeline.md``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from fedledger.data.anonymize import DEFAULT_PSEUDONYM_LENGTH, SplitMode
from fedledger.exceptions import ConfigError

__all__ = [
    "CLASSES",
    "DEFAULT_K",
    "Action",
    "ColumnClass",
    "ColumnPolicy",
    "HierarchySpec",
    "ProtectionPolicy",
    "parse_classes",
]

ColumnClass = Literal["identifier", "quasi_identifier", "sensitive", "other"]
Action = Literal["drop", "pseudonymize", "tokenize", "keep", "generalize"]
HierarchySpec = Literal["auto", "flat", "prefix"] | Mapping[str, Sequence[str]]
CLASSES: tuple[ColumnClass, ...] = get_args(ColumnClass)
ACTIONS: tuple[Action, ...] = get_args(Action)
IDENTIFIER_ACTIONS = ("pseudonymize", "tokenize", "drop")
DEFAULT_K = 5

_TOP_KEYS = {"k", "mode", "l", "l_kind", "t", "identifier_action", "pseudonym_length", "columns"}
_COLUMN_KEYS = {"class", "action", "kind", "hierarchy", "domain"}


@dataclass(frozen=True)
class ColumnPolicy:
    column_class: ColumnClass | None = None
    action: Action | None = None
    kind: Literal["numeric", "categorical"] | None = None
    hierarchy: HierarchySpec = "auto"
    domain: str = ""


@dataclass(frozen=True)
class ProtectionPolicy:
    k: int = DEFAULT_K
    mode: SplitMode = "strict"
    l: float | None = None  # noqa: E741  (the literature's name)
    l_kind: Literal["distinct", "entropy"] = "distinct"
    t: float | None = None
    identifier_action: Action = "pseudonymize"
    pseudonym_length: int = DEFAULT_PSEUDONYM_LENGTH
    columns: Mapping[str, ColumnPolicy] = field(default_factory=dict)
    # Where it was read from, for messages: the file, and the line of each [columns.NAME] table.
    source: str = field(default="", compare=False, repr=False)
    column_lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"k must be an integer >= 1, not {self.k!r}")
        if self.mode not in get_args(SplitMode):
            raise ConfigError(f"mode must be 'strict' or 'relaxed', not {self.mode!r}")
        if self.l is not None and (isinstance(self.l, bool) or not isinstance(self.l, int | float) or self.l < 1):
            raise ConfigError(f"l must be a number >= 1, not {self.l!r}")
        if self.l_kind not in ("distinct", "entropy"):
            raise ConfigError(f"l_kind must be 'distinct' or 'entropy', not {self.l_kind!r}")
        if self.t is not None and (
            isinstance(self.t, bool) or not isinstance(self.t, int | float) or not 0 <= self.t <= 1
        ):
            raise ConfigError(f"t must be a number between 0 and 1, not {self.t!r}")
        if self.identifier_action not in IDENTIFIER_ACTIONS:
            raise ConfigError(f"identifier_action must be one of {', '.join(IDENTIFIER_ACTIONS)}")
        if not isinstance(self.pseudonym_length, int) or not 16 <= self.pseudonym_length <= 52:
            raise ConfigError("pseudonym_length must be an integer between 16 and 52")

    # -- reading -------------------------------------------------------------------------------------

    @classmethod
    def from_toml(cls, path: str | Path) -> ProtectionPolicy:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} not found") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"policy file {path} is not UTF-8 text: {exc}") from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from exc
        except RecursionError:  # tomllib recurses once per nested array or inline table
            raise ConfigError(f"policy file {path} is not valid TOML: nested too deeply") from None
        return cls.from_mapping(data, source=str(path), text=text)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "policy", text: str = "") -> ProtectionPolicy:
        """A policy from parsed TOML; ``text`` (the file's text) lets errors name the line."""
        lines = _TomlLines(text)

        def where(key: str | None = None, column: str | None = None) -> str:
            line = lines.line_of(key, column)
            return f"{source} line {line}" if line else source

        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ConfigError(
                f"{where(unknown[0])}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_KEYS))})"
            )
        columns_data = data.get("columns", {})
        if not isinstance(columns_data, Mapping):
            raise ConfigError(f"{where('columns')}: [columns] must be a table of column tables")
        columns = {str(name): _column_policy(name, spec, where) for name, spec in columns_data.items()}
        scalars = {key: value for key, value in data.items() if key != "columns"}
        column_lines = {name: line for name in columns if (line := lines.line_of(None, name))}
        try:
            return cls(columns=columns, source=source, column_lines=column_lines, **scalars)
        except ConfigError as exc:
            key = str(exc).split(" ", 1)[0]
            raise ConfigError(f"{where(key if key in _TOP_KEYS else None)}: {exc}") from None

    def with_k(self, k: int | None) -> ProtectionPolicy:
        """This policy with ``k`` replaced (the command line wins over the file)."""
        return self if k is None else replace(self, k=k)

    def check_columns(self, available: Iterable[str], *, table: str = "the table") -> None:
        """A :class:`ConfigError` naming every policy column the table lacks (and the line that names the first)."""
        have = set(available)
        missing = [name for name in self.columns if name not in have]
        if missing:
            line = self.column_lines.get(missing[0])
            where = f"{self.source or 'policy'}{f' line {line}' if line else ''}: "
            raise ConfigError(
                f"{where}policy names column(s) not in {table}: {', '.join(map(repr, missing))} "
                f"(table columns: {', '.join(sorted(have))})"
            )

    def action_for(self, column: str, column_class: ColumnClass) -> Action:
        explicit = self.columns.get(column, ColumnPolicy()).action
        if explicit is not None:
            return explicit
        defaults: dict[ColumnClass, Action] = {
            "identifier": self.identifier_action,
            "quasi_identifier": "generalize",
            "sensitive": "keep",
            "other": "keep",
        }
        return defaults[column_class]


def parse_classes(text: str) -> dict[str, ColumnClass]:
    """``"ssn=identifier,age=quasi_identifier"`` -> a mapping (the ``--classes`` option)."""
    out: dict[str, ColumnClass] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep or not name or value not in CLASSES:
            raise ConfigError(f"--classes: expected COLUMN=CLASS with CLASS one of {', '.join(CLASSES)}, got {item!r}")
        out[name.strip()] = value
    return out


class _TomlLines:
    """Finds the line of a key in a policy's TOML text, for error messages (best effort: plain keys and
    ``[columns.NAME]`` tables; None when the text is not at hand or the key is written another way)."""

    _HEADER = re.compile(r"^\[\s*([^\]]+?)\s*\]")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def line_of(self, key: str | None, column: str | None = None) -> int | None:
        """The line of ``key`` at the top level (``column`` None) or in ``[columns.COLUMN]``; with ``key`` None,
        the line of the ``[columns.COLUMN]`` header."""
        wanted = None if column is None else f"columns.{column}"
        assignment = None if key is None else re.compile(rf"^\s*([\"']?){re.escape(key)}\1\s*=")
        table = None
        for number, line in enumerate(self.lines, start=1):
            header = self._HEADER.match(line.strip())
            if header:
                table = ".".join(part.strip().strip("\"'") for part in header[1].split("."))
                if assignment is None and table == wanted:
                    return number
            elif assignment is not None and table == wanted and assignment.match(line):
                return number
        return None


def _column_policy(name: str, spec: Any, where: Callable[..., str]) -> ColumnPolicy:
    def here(key: str | None = None) -> str:
        return f"{where(key, name)}: [columns.{name}]"

    if not isinstance(spec, Mapping):
        raise ConfigError(f"{here()} must be a table")
    unknown = sorted(set(spec) - _COLUMN_KEYS)
    if unknown:
        raise ConfigError(
            f"{here(unknown[0])}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_COLUMN_KEYS))})"
        )
    column_class = spec.get("class")
    if column_class is not None and column_class not in CLASSES:
        raise ConfigError(f"{here('class')}: class must be one of {', '.join(CLASSES)}, not {column_class!r}")
    action = spec.get("action")
    if action is not None and action not in ACTIONS:
        raise ConfigError(f"{here('action')}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    kind = spec.get("kind")
    if kind is not None and kind not in ("numeric", "categorical"):
        raise ConfigError(f"{here('kind')}: kind must be 'numeric' or 'categorical', not {kind!r}")
    hierarchy = spec.get("hierarchy", "auto")
    if isinstance(hierarchy, str):
        if hierarchy not in ("auto", "flat", "prefix"):
            raise ConfigError(
                f"{here('hierarchy')}: hierarchy must be 'auto', 'flat', 'prefix' or a table, not {hierarchy!r}"
            )
    elif isinstance(hierarchy, Mapping):
        for parent, children in hierarchy.items():
            if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
                raise ConfigError(f"{here()}: hierarchy node {parent!r} must list its children as strings")
        if kind == "numeric":
            raise ConfigError(f"{here('kind')}: a hierarchy table needs kind = 'categorical'")
    else:
        raise ConfigError(f"{here('hierarchy')}: hierarchy must be a string or a table")
    domain = spec.get("domain", "")
    if not isinstance(domain, str):
        raise ConfigError(f"{here('domain')}: domain must be a string")
    return ColumnPolicy(column_class, action, kind, hierarchy, domain)
