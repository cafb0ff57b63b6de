"""Who held which role, and which dataset allowed which purpose, at any point of the ledger's history: replayed from
the trusted consortium's and the data registry's own events, to the log index, for the audit."""

from __future__ import annotations

from collections import defaultdict

from fedledger.chain.consortium import Role
from fedledger.chain.events import (
    DatasetRegistered,
    DatasetRevoked,
    LedgerEvent,
    MemberAdmitted,
    MemberRevoked,
    PurposesChanged,
    RolesChanged,
)

__all__ = ["DatasetHistory", "RoleHistory"]


class RoleHistory:
    """Members' roles over time, replayed from the trusted consortium's events."""

    def __init__(self, events: list[LedgerEvent]) -> None:
        self._changes: dict[str, list[tuple[tuple[int, int], Role, bool]]] = defaultdict(list)
        for e in events:
            at = (e.block_number, e.log_index)
            if isinstance(e, MemberAdmitted):
                self._changes[e.member].append((at, Role(e.roles), True))
            elif isinstance(e, RolesChanged):
                self._changes[e.member].append((at, Role(e.new_roles), True))
            elif isinstance(e, MemberRevoked):
                self._changes[e.member].append((at, Role(0), False))

    def had_role(self, member: str, role: Role, at: tuple[int, int]) -> bool:
        roles, active = Role(0), False
        for when, new_roles, new_active in self._changes.get(member, []):
            if when > at:
                break
            roles, active = new_roles, new_active
        return active and role in roles


class DatasetHistory:
    """Datasets' owners and purposes over time, replayed from the registry's events."""

    def __init__(self, events: list[LedgerEvent]) -> None:
        self._owner: dict[int, str] = {}
        self._changes: dict[int, list[tuple[tuple[int, int], frozenset[str]]]] = defaultdict(list)
        for e in events:
            at = (e.block_number, e.log_index)
            if isinstance(e, DatasetRegistered):
                self._owner[e.dataset_id] = e.owner
                self._changes[e.dataset_id].append((at, frozenset(e.purposes)))
            elif isinstance(e, PurposesChanged):
                self._changes[e.dataset_id].append((at, frozenset(e.purposes)))
            elif isinstance(e, DatasetRevoked):
                self._changes[e.dataset_id].append((at, frozenset()))

    def owner(self, dataset_id: int, at: tuple[int, int]) -> str | None:
        changes = self._changes.get(dataset_id, [])
        return self._owner.get(dataset_id) if changes and changes[0][0] < at else None

    def allowed(self, dataset_id: int, purpose_id: str, at: tuple[int, int]) -> bool:
        purposes: frozenset[str] = frozenset()
        for when, now in self._changes.get(dataset_id, []):
            if when > at:
                break
            purposes = now
        return purpose_id in purposes
