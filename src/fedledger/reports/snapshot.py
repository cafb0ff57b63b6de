"""The ledger as it stood at one block: what every compliance report is derived from.

Every read goes through one block number: contract state is called at that block and events are read up to it,
so a report derived at block N says the same thing whenever it is derived again, however far the chain has moved
on. Who did something is the sender of the transaction that emitted its event (the chain's own word, whatever
the event's fields say), and when is its block's timestamp.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from eth_utils import to_checksum_address

from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Member, Role
from fedledger.chain.encoding import as_address
from fedledger.chain.events import LedgerEvent, MemberAdmitted, RolesChanged
from fedledger.chain.registry import DataRegistryClient, DatasetInfo
from fedledger.chain.task import TrainingTaskClient
from fedledger.exceptions import BadInput, ConfigError, StoreError
from fedledger.federation.config import TaskConfig
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_shallow

__all__ = ["LedgerSnapshot", "TaskView"]


@dataclass
class TaskView:
    """One task of the workspace as it stood at the snapshot's block."""

    name: str
    client: TrainingTaskClient
    events: list[LedgerEvent]
    config: TaskConfig | None  # None when its config blob is not in this store


@dataclass
class LedgerSnapshot:
    """The consortium, its data registry and tasks at ``block`` (see the module's docstring)."""

    chain: Chain
    store: BlobStore
    block: int
    consortium: ConsortiumClient
    registry: DataRegistryClient | None
    task_addresses: Mapping[str, str]
    _timestamps: dict[int, int] = field(default_factory=dict, repr=False)
    _senders: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def at(
        cls,
        chain: Chain,
        store: BlobStore,
        *,
        consortium: str,
        registry: str = "",
        tasks: Mapping[str, str] | None = None,
        block: int | None = None,
    ) -> LedgerSnapshot:
        """The snapshot at ``block`` (default: the latest); :class:`BadInput` for a block the chain has not
        reached, :class:`ConfigError` without a consortium or for contracts not deployed by then."""
        if not consortium:
            raise ConfigError("this workspace has no consortium: a report is derived from a consortium's ledger")
        latest = chain.block_number
        if block is None:
            block = latest
        if isinstance(block, bool) or not isinstance(block, int) or block < 0:
            raise BadInput(f"malformed block number {block!r}: expected a non-negative integer")
        if block > latest:
            raise BadInput(f"block {block} is in the future: the chain's latest block is {latest}")
        if not _deployed(chain, consortium, block):
            raise ConfigError(f"the consortium {consortium} was not deployed yet at block {block}")
        live_registry = registry if registry and _deployed(chain, registry, block) else ""
        live_tasks = {name: a for name, a in sorted((tasks or {}).items()) if _deployed(chain, a, block)}
        return cls(
            chain=chain,
            store=store,
            block=block,
            consortium=ConsortiumClient(chain, consortium),
            registry=DataRegistryClient(chain, live_registry) if live_registry else None,
            task_addresses=live_tasks,
        )

    # -- where and when ------------------------------------------------------------------------------------------

    @cached_property
    def chain_id(self) -> int:
        return self.chain.chain_id

    @cached_property
    def block_hash(self) -> str:
        return "0x" + bytes(self.chain.w3.eth.get_block(self.block)["hash"]).hex()

    def timestamp(self, block: int) -> int:
        if block not in self._timestamps:
            self._timestamps[block] = self.chain.timestamp(block)
        return self._timestamps[block]

    def sender(self, event: LedgerEvent) -> str:
        """Who sent the transaction that emitted ``event``."""
        if event.tx_hash not in self._senders:
            tx = self.chain.w3.eth.get_transaction(event.tx_hash)  # type: ignore[arg-type]
            self._senders[event.tx_hash] = as_address(str(tx["from"]))
        return self._senders[event.tx_hash]

    # -- the consortium ------------------------------------------------------------------------------------------

    @cached_property
    def members(self) -> list[Member]:
        return self.consortium.members(block=self.block)

    @cached_property
    def orgs(self) -> dict[str, str]:
        return {m.address: m.org for m in self.members}

    def org(self, address: str) -> str:
        return self.orgs.get(address, "not a member")

    @cached_property
    def consortium_events(self) -> list[LedgerEvent]:
        return self.consortium.events(to_block=self.block)

    def roles_at(self, address: str, event: LedgerEvent) -> Role:
        """``address``'s consortium roles just before ``event`` (replayed from the consortium's own events)."""
        roles = Role(0)
        for e in self.consortium_events:
            if (e.block_number, e.log_index) > (event.block_number, event.log_index):
                break
            if isinstance(e, MemberAdmitted) and e.member == address:
                roles = Role(e.roles)
            elif isinstance(e, RolesChanged) and e.member == address:
                roles = Role(e.new_roles)
        return roles

    # -- the data registry ---------------------------------------------------------------------------------------

    @cached_property
    def registry_events(self) -> list[LedgerEvent]:
        return [] if self.registry is None else self.registry.events(to_block=self.block)

    @cached_property
    def datasets(self) -> list[DatasetInfo]:
        if self.registry is None:
            return []
        count = int(self.chain.call(self.registry.contract.functions.dataset_count(), block=self.block))
        return [self.registry.dataset(i, block=self.block) for i in range(1, count + 1)]

    def document(self, digest: str) -> Any | None:
        """A JSON document the store holds under ``digest`` (0x-hex SHA-256, as registered); None when it does
        not hold it or it is no JSON (the store checks the bytes against the hash)."""
        try:
            raw = self.store.get(digest.removeprefix("0x"))
            return loads_shallow(raw, what=f"document {digest}")
        except (StoreError, ValueError):
            return None

    # -- the tasks -----------------------------------------------------------------------------------------------

    @cached_property
    def tasks(self) -> list[TaskView]:
        views = []
        for name, address in self.task_addresses.items():
            client = TrainingTaskClient(self.chain, address)
            views.append(TaskView(name, client, client.events(to_block=self.block), self._config(client)))
        return views

    def task(self, name: str) -> TaskView:
        for view in self.tasks:
            if view.name == name:
                return view
        known = ", ".join(v.name for v in self.tasks) or "none"
        raise ConfigError(f"no task named {name!r} deployed by block {self.block} (known: {known})")

    def _config(self, client: TrainingTaskClient) -> TaskConfig | None:
        try:
            return TaskConfig.from_bytes(self.store.get(client.params().config_hash.removeprefix("0x")))
        except (StoreError, ConfigError):
            return None

    def provenance(self) -> dict[str, Any]:
        """Where the report was derived from: chain, block and every contract read."""
        return {
            "chain_id": self.chain_id,
            "block": self.block,
            "block_hash": self.block_hash,
            "block_timestamp": self.timestamp(self.block),
            "consortium": self.consortium.address,
            "data_registry": self.registry.address if self.registry is not None else None,
            "tasks": {name: as_address(a) for name, a in self.task_addresses.items()},
        }


def _deployed(chain: Chain, address: str, block: int) -> bool:
    try:
        code = chain.w3.eth.get_code(to_checksum_address(as_address(address)), block_identifier=block)
    except ValueError as exc:
        raise BadInput(f"cannot read the code at {address}: {exc}") from exc
    return len(bytes(code)) > 0
