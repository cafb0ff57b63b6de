"""The GDPR grounds a dataset is processed on, recorded with its registration.

A controller must name the lawful basis of each processing (Art. 6(1)), and for special categories of data, health
data among them, a condition of Art. 9(2) as well; its records of processing (Art. 30(1)(f)) name the envisaged time
limits for erasure. None of it is personal, but none of it belongs in a contract either: it travels in the
registration's policy document, whose SHA-256 the DataRegistry already holds (``policy_hash``), under the key
:data:`POLICY_KEY`, so a compliance report reads it back from the store and checks it against the chain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fedledger.exceptions import BadInput

__all__ = ["ARTICLE_6_BASES", "ARTICLE_9_CONDITIONS", "POLICY_KEY", "LawfulBasis"]

POLICY_KEY = "gdpr"

ARTICLE_6_BASES: dict[str, str] = {
    "consent": "Art. 6(1)(a) consent of the data subject",
    "contract": "Art. 6(1)(b) performance of a contract",
    "legal-obligation": "Art. 6(1)(c) compliance with a legal obligation",
    "vital-interests": "Art. 6(1)(d) vital interests of the data subject",
    "public-task": "Art. 6(1)(e) task carried out in the public interest",
    "legitimate-interests": "Art. 6(1)(f) legitimate interests of the controller",
}

ARTICLE_9_CONDITIONS: dict[str, str] = {
    "explicit-consent": "Art. 9(2)(a) explicit consent",
    "health-care": "Art. 9(2)(h) preventive or occupational medicine, medical diagnosis, health care",
    "public-health": "Art. 9(2)(i) public interest in the area of public health",
    "scientific-research": "Art. 9(2)(j) scientific research or statistical purposes",
}


@dataclass(frozen=True)
class LawfulBasis:
    """A dataset's lawful basis (an :data:`ARTICLE_6_BASES` key), its Art. 9(2) condition for special categories of
    data (an :data:`ARTICLE_9_CONDITIONS` key, or ""), and its retention (free text: a date or a rule)."""

    basis: str
    special_category_condition: str = ""
    retention: str = ""

    def __post_init__(self) -> None:
        if self.basis not in ARTICLE_6_BASES:
            raise BadInput(f"unknown lawful basis {self.basis!r}; known: {', '.join(ARTICLE_6_BASES)}")
        condition = self.special_category_condition
        if condition and condition not in ARTICLE_9_CONDITIONS:
            raise BadInput(
                f"unknown special-category condition {condition!r}; known: {', '.join(ARTICLE_9_CONDITIONS)}"
            )
        if not isinstance(self.retention, str) or len(self.retention) > 200:
            raise BadInput("retention must be a text of at most 200 characters")

    def to_json(self, purposes: Sequence[str]) -> dict[str, Any]:
        """The policy document's :data:`POLICY_KEY` entry; it names the purposes in full, since the chain holds
        only their hashes."""
        return {
            "lawful_basis": self.basis,
            "special_category_condition": self.special_category_condition,
            "retention": self.retention,
            "purposes": list(purposes),
        }

    @classmethod
    def from_policy(cls, policy: Any) -> LawfulBasis | None:
        """The basis recorded in a registration's policy document; None when it records none."""
        entry = policy.get(POLICY_KEY) if isinstance(policy, Mapping) else None
        if not isinstance(entry, Mapping) or not isinstance(entry.get("lawful_basis"), str):
            return None
        return cls(
            basis=entry["lawful_basis"],
            special_category_condition=str(entry.get("special_category_condition") or ""),
            retention=str(entry.get("retention") or ""),
        )

    def describe(self) -> str:
        text = ARTICLE_6_BASES[self.basis]
        if self.special_category_condition:
            text += "; " + ARTICLE_9_CONDITIONS[self.special_category_condition]
        return text
