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
(the report says so). Unknown keys are errors (a typo must not silently weaken protection), and so is a policy
naming a column the table does not have (:meth:`ProtectionPolicy.check_columns`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
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
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"policy file {path} not found") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"policy file {path} is not valid TOML: {exc}") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str = "policy") -> ProtectionPolicy:
        unknown = sorted(set(data) - _TOP_KEYS)
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_KEYS))})")
        columns_data = data.get("columns", {})
        if not isinstance(columns_data, Mapping):
            raise ConfigError(f"{source}: [columns] must be a table of column tables")
        columns = {str(name): _column_policy(name, spec, source) for name, spec in columns_data.items()}
        scalars = {key: value for key, value in data.items() if key != "columns"}
        try:
            return cls(columns=columns, **scalars)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def with_k(self, k: int | None) -> ProtectionPolicy:
        """This policy with ``k`` replaced (the command line wins over the file)."""
        return self if k is None else replace(self, k=k)

    def check_columns(self, available: Iterable[str]) -> None:
        """A :class:`ConfigError` naming every policy column the table lacks."""
        have = set(available)
        missing = [name for name in self.columns if name not in have]
        if missing:
            raise ConfigError(
                f"policy names column(s) not in the table: {', '.join(map(repr, missing))} "
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


def _column_policy(name: str, spec: Any, source: str) -> ColumnPolicy:
    where = f"{source}: [columns.{name}]"
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where} must be a table")
    unknown = sorted(set(spec) - _COLUMN_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_COLUMN_KEYS))})")
    column_class = spec.get("class")
    if column_class is not None and column_class not in CLASSES:
        raise ConfigError(f"{where}: class must be one of {', '.join(CLASSES)}, not {column_class!r}")
    action = spec.get("action")
    if action is not None and action not in ACTIONS:
        raise ConfigError(f"{where}: action must be one of {', '.join(ACTIONS)}, not {action!r}")
    kind = spec.get("kind")
    if kind is not None and kind not in ("numeric", "categorical"):
        raise ConfigError(f"{where}: kind must be 'numeric' or 'categorical', not {kind!r}")
    hierarchy = spec.get("hierarchy", "auto")
    if isinstance(hierarchy, str):
        if hierarchy not in ("auto", "flat", "prefix"):
            raise ConfigError(f"{where}: hierarchy must be 'auto', 'flat', 'prefix' or a table, not {hierarchy!r}")
    elif isinstance(hierarchy, Mapping):
        for parent, children in hierarchy.items():
            if not isinstance(children, list) or not all(isinstance(c, str) for c in children):
                raise ConfigError(f"{where}: hierarchy node {parent!r} must list its children as strings")
        if kind == "numeric":
            raise ConfigError(f"{where}: a hierarchy table needs kind = 'categorical'")
    else:
        raise ConfigError(f"{where}: hierarchy must be a string or a table")
    domain = spec.get("domain", "")
    if not isinstance(domain, str):
        raise ConfigError(f"{where}: domain must be a string")
    return ColumnPolicy(column_class, action, kind, hierarchy, domain)
