"""One thing the audit found wrong, named by where it happened (round, member, hash)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Discrepancy"]


@dataclass(frozen=True)
class Discrepancy:
    round_id: int | None
    member: str | None
    hash: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.round_id is not None:
            where.append(f"round {self.round_id}")
        if self.member:
            where.append(f"member {self.member}")
        if self.hash:
            where.append(f"hash {self.hash}")
        return f"{', '.join(where)}: {self.message}" if where else self.message
