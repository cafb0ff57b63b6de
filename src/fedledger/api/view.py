"""The read model behind the API: one workspace's chain and store, read through the same functions the CLI
commands use (``task status``, ``task metrics``, ``privacy report``, ``rewards``, ``data datasets``,
``audit verify``), so the dashboard and the CLI never disagree.

Reads are serialized by one lock: the embedded chain is one py-evm database that is not safe to read from several
threads at once, and the web server answers requests on a thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from fedledger.api.rounds import read_rounds
from fedledger.chain.bulletin import METRICS_TOPIC
from fedledger.chain.encoding import hex32
from fedledger.chain.events import SubjectErased
from fedledger.chain.registry import DataRegistryClient, purpose_id
from fedledger.chain.task import Phase, TrainingTaskClient
from fedledger.cli.privacy import spends_on_chain
from fedledger.cli.rewards import rewards_report
from fedledger.data.registration import build_lineage, round_lineage
from fedledger.federation.config import TaskConfig
from fedledger.federation.evaluation import round_metrics, task_bulletin, task_config
from fedledger.federation.status import task_status
from fedledger.learning.metrics import Metrics
from fedledger.privacy.accounting import build_privacy_report, micro_to_epsilon
from fedledger.workspace import Workspace

__all__ = ["LedgerView"]

T = TypeVar("T")
_CACHE_ENTRIES = 256  # answers kept for one block; a flood of distinct queries only clears them


def _metrics(m: Metrics) -> dict[str, Any]:
    return {**m.summary(), "members": m.members}


class LedgerView:
    """Read-only views of a workspace's consortium, tasks and data registry."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws
        self._lock = threading.RLock()
        self._cache: dict[Hashable, Any] = {}
        self._cache_head = b""
        self._configs: dict[str, TaskConfig] = {}

    def read(self, fn: Callable[[], T], key: Hashable | None = None) -> T:
        """``fn()`` with the chain to itself; with a ``key``, the answer is kept until the chain's next block (every
        view is a function of the chain at a block and of blobs named by their hashes), so a dashboard that reads
        again while nothing happens costs one read of the head block."""
        with self._lock:
            if key is None:
                return fn()
            # The head block's hash, not its number: a reorganized chain reuses numbers for other blocks.
            head = bytes(self.ws.chain.w3.eth.get_block("latest")["hash"])
            if head != self._cache_head or len(self._cache) >= _CACHE_ENTRIES:
                self._cache, self._cache_head = {}, head
            if key not in self._cache:
                self._cache[key] = fn()
            return cast(T, self._cache[key])

    # -- helpers --------------------------------------------------------------------------------------------------

    @property
    def task_names(self) -> list[str]:
        return sorted(self.ws.config.tasks)

    def _task(self, name: str) -> TrainingTaskClient:
        return self.ws.task(name)

    def _config(self, name: str) -> TaskConfig:
        """A task's config, by the hash its contract holds (immutable, so read once)."""
        if name not in self._configs:
            self._configs[name] = task_config(self._task(name), self.ws.store())
        return self._configs[name]

    def orgs(self) -> dict[str, str]:
        """Organization by member address (read once a block: most views name members)."""
        return self.read(lambda: {m.address: m.org for m in self.ws.consortium().members()}, "orgs")

    def is_active_member(self, address: str) -> bool:
        return self.read(lambda: self.ws.consortium().is_active(address))

    def org_of(self, address: str) -> str | None:
        return self.orgs().get(address)

    @property
    def chain_id(self) -> int:
        return self.read(lambda: self.ws.chain.chain_id)

    # -- views ----------------------------------------------------------------------------------------------------

    def head(self) -> dict[str, Any]:
        """The chain head and each task's round and phase: what a dashboard polls to know when to read again."""
        chain = self.ws.chain
        tasks = []
        for name in self.task_names:
            task = self._task(name)
            current = task.current_round
            tasks.append(
                {
                    "name": name,
                    "address": task.address,
                    "current_round": current,
                    "phase": task.round(current).phase.name.lower() if current else Phase.NONE.name.lower(),
                    "rounds_finalized": len(task.model_history()),
                }
            )
        return {"chain_id": chain.chain_id, "block": chain.block_number, "timestamp": chain.timestamp(), "tasks": tasks}

    def consortium(self) -> dict[str, Any]:
        client = self.ws.consortium()
        return {
            "address": client.address,
            "threshold": client.threshold,
            "admin_count": client.admin_count,
            "members": [m.to_json() for m in client.members()],
            "pending_proposals": [
                {
                    "proposal_id": p.proposal_id,
                    "kind": p.kind.name.lower(),
                    "target": p.target,
                    "roles": p.roles.names(),
                    "threshold": p.threshold,
                    "approvals": p.approvals,
                    "proposer": p.proposer,
                }
                for p in client.pending_proposals()
            ],
        }

    def task(self, name: str) -> dict[str, Any]:
        task, config = self._task(name), self._config(name)
        status = task_status(task, self.ws.consortium(), self.ws.store())
        params = task.params()
        current = status["round"] or {}
        return {
            **status,
            "name": name,
            "address": task.address,
            "kind": task.kind.value,
            "phase": current.get("phase", Phase.NONE.name.lower()),
            "committed": current.get("committed", []),
            "missing": current.get("missing", []),
            "purpose": config.purpose or None,
            "aggregation": str(config.aggregation),
            "scoring": str(config.scoring),
            "acceptance_threshold": params.acceptance_threshold,
            "min_commitments": params.min_commitments,
            "dp": params.privacy_budget > 0,
            "privacy_budget_epsilon": micro_to_epsilon(params.privacy_budget) if params.privacy_budget else None,
            "incentives": int(params.stake_gate, 16) != 0,
            "evaluation_board": config.evaluation_board or None,
            "data_registry": params.data_registry if int(params.data_registry, 16) else None,
        }

    def rounds(self, name: str, first: int, last: int | None) -> list[dict[str, Any]]:
        task = self._task(name)
        end = task.current_round if last is None else min(last, task.current_round)
        return read_rounds(task, list(range(first, end + 1)), self.orgs())

    def metrics(self, name: str, round_id: int | None) -> dict[str, Any]:
        """Every member's posted metrics per round and their pooled value (``fedledger task metrics``)."""
        task, store = self._task(name), self.ws.store()
        if not self._config(name).evaluation_board:
            return {"task": task.address, "bulletin": None, "rounds": []}
        bulletin = task_bulletin(task, store)
        if round_id is None:
            rounds = sorted({p.round_id for p in bulletin.posts(task.address, topic=METRICS_TOPIC)})
        else:
            rounds = [round_id]
        orgs = self.orgs()
        rows = []
        for r in rounds:
            result = round_metrics(task, bulletin, store, r)
            rows.append(
                {
                    "round": r,
                    "model_hash": result.model_hash,
                    "pooled": _metrics(result.pooled) if result.pooled is not None else None,
                    "members": [
                        {**_metrics(m), "member": a, "org": orgs.get(a, "")} for a, m in sorted(result.members.items())
                    ],
                    "invalid": [
                        {"member": a, "org": orgs.get(a, ""), "reason": why}
                        for a, why in sorted(result.invalid.items())
                    ],
                }
            )
        return {"task": task.address, "bulletin": bulletin.address, "rounds": rows}

    def privacy(self, name: str) -> dict[str, Any]:
        """Each member's declared cumulative epsilon (``fedledger privacy report``)."""
        if self._task(name).params().privacy_budget == 0:
            return {"dp": False, "budget_epsilon": None, "delta": None, "task_epsilon": None, "members": []}
        records, budget, delta = spends_on_chain(self.ws, name)
        report = build_privacy_report(records, budget_epsilon=budget, delta=delta)
        orgs = self.orgs()
        return {
            "dp": True,
            **report.to_json(),
            "members": [{**m.to_json(), "org": orgs.get(m.member, "")} for m in report.members],
        }

    def rewards(self, name: str) -> dict[str, Any]:
        """The pool and each member's contributions and payouts (``fedledger rewards``)."""
        params = self._task(name).params()
        if int(params.stake_gate, 16) == 0:
            return {
                "incentives": False,
                "reason": "the task was created without incentives",
                **dict.fromkeys(("contract", "block", "currency", "reward_per_round", "pool", "rounds"), None),
                "members": [],
            }
        report = rewards_report(self.ws, name)
        return {**report, "incentives": True, "reason": None, "contract": report["incentives"]}

    def lineage(self, name: str, round_id: int | None) -> list[dict[str, Any]]:
        """Each finalized model -> its accepted updates -> the datasets behind them."""
        task, config = self._task(name), self._config(name)
        history = task.model_history()
        rounds = sorted(history) if round_id is None else [r for r in (round_id,) if r in history]
        registry_address = task.params().data_registry
        registry = DataRegistryClient(self.ws.chain, registry_address) if int(registry_address, 16) else None
        orgs = self.orgs()
        rows = []
        for r in rounds:
            if registry is not None and config.purpose:
                lineage = round_lineage(task, registry, r, purpose=config.purpose).to_json()
            else:
                info = task.round(r)
                accepted = [u for u in task.updates(r) if u.index in set(info.accepted)]
                lineage = build_lineage(r, info.model_hash, "", accepted, {}, {}).to_json()
                lineage["compliant"] = None
            rows.append(_lineage_row(lineage, orgs))
        return rows

    def datasets(self) -> dict[str, Any]:
        """Every dataset in the workspace's data registries, with its purposes and the erasures recorded."""
        declared = {self._config(n).purpose for n in self.task_names} - {""}
        names = {hex32(purpose_id(p)): p for p in declared}
        orgs = self.orgs()
        datasets, erasures = [], []
        for address in self._registries():
            registry = DataRegistryClient(self.ws.chain, address)
            for dataset_id in range(1, registry.dataset_count + 1):
                info = registry.dataset(dataset_id).to_json()
                info["purposes"] = [names.get(p, p) for p in info["purposes"]]
                datasets.append({**info, "registry": address, "org": orgs.get(info["owner"], "")})
            erasures += [
                {
                    "dataset_id": e.dataset_id,
                    "subject_hash": e.subject_hash,
                    "erasures": e.erasures,
                    "block": e.block_number,
                    "tx_hash": e.tx_hash,
                }
                for e in registry.events()
                if isinstance(e, SubjectErased)
            ]
        return {"datasets": datasets, "erasures": erasures}

    def _registries(self) -> list[str]:
        found = {self.ws.config.data_registry} if self.ws.config.data_registry else set()
        for name in self.task_names:
            address = self._task(name).params().data_registry
            if int(address, 16):
                found.add(address)
        return sorted(found)

    def audit(self, name: str) -> dict[str, Any]:
        """``fedledger audit verify`` of the task, with the block it was read at."""
        from fedledger.audit import verify_task

        block = self.ws.chain.block_number
        report = verify_task(self.ws.chain, self.ws.config.consortium, self._task(name).address, self.ws.store())
        data = report.to_json()
        result = {
            **data,
            "block": block,
            "discrepancies": [d["text"] for d in data["discrepancies"]],
            "refused": [d["text"] for d in data["refused"]],
        }
        if data["payouts"] is not None:
            payouts = data["payouts"]
            result["payouts"] = {**payouts, "discrepancies": [d["text"] for d in payouts["discrepancies"]]}
        return result


def _lineage_row(lineage: dict[str, Any], orgs: dict[str, str]) -> dict[str, Any]:
    return {
        "round": lineage["round_id"],
        "model_hash": lineage["model_hash"],
        "purpose": lineage["purpose"] or None,
        "compliant": lineage["compliant"],
        "updates": [{**u, "org": orgs.get(u["member"], "")} for u in lineage["updates"]],
    }
