"""The fields every typed event record carries: where it happened (contract, block, transaction, log index).

Each contract's event records (:mod:`fedledger.chain.events`, :mod:`fedledger.chain.incentive_events`) subclass
:class:`LedgerEvent` with the event's own fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar

__all__ = ["LedgerEvent"]


@dataclass(frozen=True)
class LedgerEvent:
    """Where an event happened; subclasses add the event's fields."""

    contract: str
    block_number: int
    tx_hash: str
    log_index: int

    source: ClassVar[str] = ""

    @property
    def name(self) -> str:
        return type(self).__name__

    def to_json(self) -> dict[str, Any]:
        return {"event": self.name, **asdict(self)}
