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

from eth_account.signers.local import LocalAccount

from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import TrainingTaskClient
from fedledger.federation.config import TaskConfig
from fedledger.federation.node import Behavior, LocalData, MemberNode, NodeEvent
from fedledger.federation.secure import identity_key
from fedledger.learning import build_model, encode_model
from fedledger.store import BlobStore
from fedledger.workspace import Workspace

__all__ = ["MEMBER_ROLES", "SimulatedConsortium", "create_consortium", "create_task"]

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
) -> TrainingTaskClient:
    """Put the config and the initial model in the store and deploy the task for them, checking
    commitments against ``data_registry`` (needed when the config has a purpose) and the config's
    privacy budget. A config without an ``evaluation_board`` gets a Bulletin deployed for it, whose address goes
    into the config before it is stored (members post their metrics there: :mod:`fedledger.federation.evaluation`)."""
    if not config.evaluation_board:
        board = BulletinClient.deploy(ws.chain, account, ws.config.consortium)
        config = dataclasses.replace(config, evaluation_board=board.address)
    store.put(config.to_bytes())
    initial = build_model(config.model).get_params()
    initial_hash = store.put(encode_model(initial, config.model, metadata={"round": "0"}))
    params = config.chain_params(initial_hash, data_registry=data_registry)
    task = TrainingTaskClient.deploy(ws.chain, account, ws.config.consortium, params)
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
) -> SimulatedConsortium:
    """An operator (admin only), one member per data share (trainer, validator, aggregator)
    with its own encrypted key, a task for ``config``, and a node per member."""
    store = BlobStore(ws.root / ws.config.store)
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
    task = create_task(ws, operator, store, config, data_registry=registry.address if registry else None)
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
