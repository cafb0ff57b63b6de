"""Standing up a consortium and a task on one workspace: for simulations, demos and tests.

Real deployments do the same steps from several workspaces (``fedledger init``,
``member add``, ``task create``, ``node``); this does them all from one.

A task whose config names a purpose gets a DataRegistry (deployed here when none is given); its
contract then checks every commitment's dataset, and the members register their datasets in it
before training (:func:`fedledger.data.registration.register_table`, or the demo's CSVs).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount

from fedledger.attacks import Coalition, CoalitionMember, parse_attack
from fedledger.chain.batches import CommitmentBatchesClient
from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.consortium import ConsortiumClient, MemberStatus, Role
from fedledger.chain.encoding import as_address
from fedledger.chain.incentives import IncentivesClient
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import TrainingTaskClient
from fedledger.data.prepare import Recipe
from fedledger.exceptions import ConfigError, NotAuthorized
from fedledger.federation.behavior import Behavior
from fedledger.federation.config import TaskConfig
from fedledger.federation.consortium_stats import STATS_MEMBERS_KEY, stats_members
from fedledger.federation.evaluation import task_config
from fedledger.federation.incentives import fund_pool
from fedledger.federation.node import LocalData, MemberNode, NodeEvent
from fedledger.federation.secure import identity_key
from fedledger.learning import build_model, encode_model
from fedledger.store import BlobStore
from fedledger.workspace import Workspace

__all__ = [
    "MEMBER_ROLES",
    "SimulatedConsortium",
    "attacking_members",
    "create_consortium",
    "create_task",
    "join_task",
    "register_kx_key",
]

MEMBER_ROLES = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR


@dataclass
class SimulatedConsortium:
    operator: LocalAccount
    consortium: ConsortiumClient
    task: TrainingTaskClient
    store: BlobStore
    nodes: list[MemberNode]
    registry: DataRegistryClient | None = None  # the task's DataRegistry (tasks with a purpose)


def create_task(
    ws: Workspace,
    account: LocalAccount,
    store: BlobStore,
    config: TaskConfig,
    name: str = "default",
    *,
    data_registry: str | None = None,
    reward_pool: int = 0,
) -> TrainingTaskClient:
    """Put the config and the initial model in the store and deploy the task for them, checking
    commitments against ``data_registry`` (needed when the config has a purpose) and the config's
    privacy budget. A config without an ``evaluation_board`` gets a Bulletin deployed for it, whose address goes
    into the config before it is stored (members post their metrics there: :mod:`fedledger.federation.evaluation`);
    likewise a batched config without its ``commitment_batches`` gets a CommitmentBatches contract.

    A config with incentives gets its Incentives contract deployed first, the task gated by it (the task's
    ``stake_gate``, where members find it: :func:`~fedledger.federation.incentives.task_incentives`), and bound to
    the task; ``account`` funds its pool with ``reward_pool``."""
    if reward_pool and not config.incentives.enabled:
        raise ConfigError("a reward pool needs a task with incentives: set reward_per_round in its config")
    if not config.evaluation_board:
        board = BulletinClient.deploy(ws.chain, account, ws.config.consortium)
        config = dataclasses.replace(config, evaluation_board=board.address)
    if config.commitments == "batched" and not config.commitment_batches:
        # Recorded in the config before it is stored, and in the task contract: every member sees where batches go.
        batches = CommitmentBatchesClient.deploy(ws.chain, account, ws.config.consortium, window=config.batch_window)
        config = dataclasses.replace(config, commitment_batches=batches.address)
    if (
        config.preparation
        and STATS_MEMBERS_KEY not in config.extra
        and Recipe.from_dict(config.preparation).missing_stats()
    ):
        # The recipe's statistics come from the members' masked sums: the trainers admitted now take part.
        members = stats_members(ConsortiumClient(ws.chain, ws.config.consortium))
        config = dataclasses.replace(config, extra={**config.extra, STATS_MEMBERS_KEY: members})
    store.put(config.to_bytes())
    initial = build_model(config.model).get_params()
    initial_hash = store.put(encode_model(initial, config.model, metadata={"round": "0"}))
    params = config.chain_params(initial_hash, data_registry=data_registry)
    incentives = None
    if config.incentives.enabled:
        incentives = IncentivesClient.deploy(ws.chain, account, ws.config.consortium, config.incentives.chain_params())
        params = dataclasses.replace(params, stake_gate=incentives.address)
    task = TrainingTaskClient.deploy(ws.chain, account, ws.config.consortium, params)
    if incentives is not None:
        incentives.bind_task(task.address)
        if reward_pool:
            fund_pool(incentives, reward_pool)
    ws.config.tasks[name] = task.address
    ws.save()
    return task


def create_consortium(
    ws: Workspace,
    *,
    config: TaskConfig,
    datas: Sequence[LocalData],
    password: str,
    behaviors: Sequence[Behavior | None] | None = None,
    on_event: Callable[[NodeEvent], None] | None = None,
    reward_pool: int = 0,
) -> SimulatedConsortium:
    """An operator (admin only), one member per data share (trainer, validator, aggregator)
    with its own encrypted key, a task for ``config`` (its reward pool funded with ``reward_pool`` by the
    operator), and a node per member."""
    store = ws.store()
    operator = ws.keystore.create("operator", password)
    ws.config.key = "operator"
    ws.fund(operator.address)
    consortium = ConsortiumClient.deploy(ws.chain, operator, org="Consortium operator", roles=Role.ADMIN)
    ws.config.consortium = consortium.address
    ws.save()
    members = []
    for k in range(len(datas)):
        account = ws.keystore.create(f"hospital-{k + 1}", password)
        consortium.propose_admit(
            account.address,
            org=f"Hospital {k + 1}",
            roles=MEMBER_ROLES,
            store_uri=store.url,
            kx_public_key=identity_key(account).public_bytes,  # for secure aggregation
        )
        ws.fund(account.address)
        members.append(account)
    registry = DataRegistryClient.deploy(ws.chain, operator, consortium.address) if config.purpose else None
    task = create_task(
        ws, operator, store, config, data_registry=registry.address if registry else None, reward_pool=reward_pool
    )
    behaviors = list(behaviors) if behaviors is not None else [None] * len(datas)
    nodes = [
        MemberNode(
            name=f"Hospital {k + 1}",
            account=acct,
            task=task,
            store=store,
            data=datas[k],
            behavior=behaviors[k],
            on_event=on_event,
            state_dir=ws.root / "secagg" / f"hospital-{k + 1}",
        )
        for k, acct in enumerate(members)
    ]
    return SimulatedConsortium(operator, consortium, task, store, nodes, registry)


def attacking_members(
    datas: Sequence[LocalData], config: TaskConfig, attack: str, num_malicious: int, *, seed: int
) -> tuple[list[LocalData], list[CoalitionMember | None]]:
    """What each member trains on and how it behaves when the last ``num_malicious`` members run ``attack`` (the
    ``fedledger.attacks`` syntax) as one coalition against ``config``: their data poisoned where the attack poisons
    data, and a :class:`CoalitionMember` behaviour each; the others keep their data and behave honestly. The
    coalition knows the task's rules (its norm bound, the score it must reach), as any member does."""
    members: list[LocalData] = list(datas)
    behaviors: list[CoalitionMember | None] = [None] * len(datas)
    if not num_malicious:
        return members, behaviors
    coalition = Coalition(
        parse_attack(attack),
        num_malicious=num_malicious,
        num_workers=len(datas),
        clip_norm=config.clip_norm,
        score_floor=max(config.threshold, config.min_mean_score or 0),
        scores_at_median_norm=bool(config.score_at_median_norm),
        frac_bits=config.frac_bits,
        seed=seed,
    )
    first = len(datas) - num_malicious
    for j, member in enumerate(coalition.members):
        k = first + j
        X_bad, y_bad = member.poison_data(datas[k].X_train, datas[k].y_train, num_classes=2)
        members[k] = LocalData(X_bad, y_bad, datas[k].X_val, datas[k].y_val)
        behaviors[k] = member
    return members, behaviors


def register_kx_key(consortium: ConsortiumClient, account: LocalAccount) -> bool:
    """Publish this member's key-agreement key (secure aggregation) when the ledger does not hold it yet, keeping
    its certificate fingerprint and store URL; True if it sent the update. Members admitted by address alone (the
    admin never sees their keys) register it themselves when they join a task."""
    member = consortium.as_(account).member(account.address)
    kx = "0x" + identity_key(account).public_bytes.hex()
    if member.kx_public_key == kx:
        return False
    consortium.as_(account).update_metadata(
        cert_fingerprint=member.cert_fingerprint, kx_public_key=kx, store_uri=member.store_uri
    )
    return True


def join_task(
    ws: Workspace, address: str, *, name: str = "default", store: str | None = None, account: LocalAccount
) -> dict[str, Any]:
    """Record the task at ``address`` in ``ws`` under ``name``: checks this member is active in the task's
    consortium, takes the store its creator published on the ledger (or ``store``), checks the task config is
    there under the hash the chain holds, and registers this member's key-agreement key."""
    task_address = as_address(address, what="task address")
    task = TrainingTaskClient(ws.chain, task_address)
    consortium_address = task.consortium_address
    if ws.config.consortium and ws.config.consortium.lower() != consortium_address.lower():
        raise ConfigError(
            f"task {task_address} belongs to consortium {consortium_address}, this workspace to {ws.config.consortium}"
        )
    consortium = ConsortiumClient(ws.chain, consortium_address)
    me = consortium.member(account.address)
    if me.status is not MemberStatus.ACTIVE:
        raise NotAuthorized(
            f"{account.address} is not an active member of consortium {consortium_address}: "
            "an admin admits it first (fedledger member add ADDRESS --org ... --roles ...)"
        )
    url = store or consortium.member(task.creator).store_uri
    if not url:
        raise ConfigError(f"the creator of task {task_address} published no store URL: give one with --store")
    ws.config.consortium = consortium_address
    ws.config.store = url
    config = task_config(task, ws.store())  # the config must be in the store under the hash the chain holds
    ws.fund(account.address)
    register_kx_key(consortium, account)
    ws.config.tasks[name] = task_address
    ws.save()
    return {
        "name": name,
        "address": task_address,
        "consortium": consortium_address,
        "member": account.address,
        "roles": me.roles.names(),
        "store": url,
        "config_hash": task.params().config_hash,
        "rounds": config.rounds,
    }
