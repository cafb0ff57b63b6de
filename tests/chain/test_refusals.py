"""Unauthorized callers: every external state-changing function of every contract refuses them.

One table row per function (Consortium, DataRegistry, Bulletin, TrainingTask, SecureTrainingTask). Each row
puts the chain in a state where the function *would* succeed (a positive control runs it for a legitimate
caller at the end), then sends it raw, bypassing the clients' own checks, from:

- an outsider: a fresh funded account never admitted;
- a revoked member that held every role it would need (admin included) and owns a dataset;
- where a role is needed, an active member without that role (or, for a dataset, a member that is not its
  owner).

Each refusal must raise ``NotAuthorized`` with the contract's exact revert string and leave the chain
unmoved. A meta-test parses the compiled ABIs: a non-view function without a row here fails it.

Embedded chain only, one module-scoped world; each stage of a round is built once and reached again by
snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, MEMBER_ROLES, h, refused
from fedledger.chain import BulletinClient, Chain, ConsortiumClient, Role, TrainingTaskClient
from fedledger.chain.compiler import compile_contract
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.chain.registry import DataRegistryClient, purpose_id
from fedledger.exceptions import NotAuthorized

CONTRACTS = ("Consortium", "DataRegistry", "Bulletin", "TrainingTask", "SecureTrainingTask")
TASK_CONTRACTS = {"task": "TrainingTask", "secure": "SecureTrainingTask"}  # instance key -> contract
SECURE_PARAMS = replace(DEFAULT_PARAMS, secagg_threshold=2)
ALL_ROLES = Role.ADMIN | MEMBER_ROLES
TRAINERS = ("m0", "m1", "m2", "m3", "trainer_only")  # the active trainers, i.e. every secure round's listed members

# The contracts' refusals, by guard.
NOT_ADMIN = "consortium: caller is not an admin"
NOT_ACTIVE = "consortium: caller is not an active member"
REG_NOT_MEMBER = "registry: caller is not an active member"
REG_NOT_OWNER = "registry: caller is not the dataset owner"
BUL_NOT_MEMBER = "bulletin: not a member"
TASK_NOT_MEMBER = "task: caller is not a member"
NOT_TRAINER = "task: caller is not a trainer"
NOT_VALIDATOR = "task: caller is not a validator"
NOT_AGGREGATOR = "task: caller is not an aggregator"
NOT_AGG_OR_ADMIN = "task: caller is not an aggregator or admin"
NOT_VAL_OR_AGG = "task: caller is not a validator or aggregator"
TASK_NOT_ADMIN = "task: caller is not an admin"


def b32(text: str) -> bytes:
    return bytes.fromhex(h(text)[2:])


# -- the world ---------------------------------------------------------------------------------------


@dataclass
class World:
    chain: Chain
    who: dict[str, LocalAccount]
    addr: dict[str, str]  # contract key -> address
    ctx: dict[str, Any] = field(default_factory=dict)  # ids made by the stages
    snaps: dict[str, Any] = field(default_factory=dict)  # stage -> snapshot

    def send(self, caller: str, key: str, fn: str, *args: Any) -> Any:
        name = TASK_CONTRACTS.get(key, key)
        contract = self.chain.contract(name, self.addr[key])
        return self.chain.transact(self.who[caller], getattr(contract.functions, fn)(*args))

    def task(self, key: str) -> TrainingTaskClient:
        return TrainingTaskClient(self.chain, self.addr[key], self.who["admin"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    chain = Chain.embedded(tmp_path_factory.mktemp("refusals-chain"))
    faucet = Account.from_key(FAUCET_KEY.to_bytes())
    names = ["admin", "admin2", "m0", "m1", "m2", "m3", "trainer_only", "validator_only", "revoked", "outsider"]
    who = {n: Account.from_key(h(f"fedledger-refusals-{n}")) for n in names}
    for account in who.values():
        chain.transfer(faucet, account.address, 10**21)
    consortium = ConsortiumClient.deploy(chain, who["admin"], org="Founder", roles=Role.ADMIN)
    admitted = {
        "admin2": Role.ADMIN,
        "m0": MEMBER_ROLES,
        "m1": MEMBER_ROLES,
        "m2": MEMBER_ROLES,
        "m3": MEMBER_ROLES,
        "trainer_only": Role.TRAINER,
        "validator_only": Role.VALIDATOR,
        "revoked": ALL_ROLES,
    }
    for n, roles in admitted.items():
        consortium.propose_admit(who[n].address, org=f"Org-{n}", roles=roles)  # threshold 1: executes at once
    registry = DataRegistryClient.deploy(chain, who["admin"], consortium.address)
    bulletin = BulletinClient.deploy(chain, who["admin"], consortium.address)
    task = TrainingTaskClient.deploy(chain, who["admin"], consortium.address, DEFAULT_PARAMS)
    secure = TrainingTaskClient.deploy(chain, who["admin"], consortium.address, SECURE_PARAMS)
    w = World(
        chain,
        who,
        {
            "Consortium": consortium.address,
            "DataRegistry": registry.address,
            "Bulletin": bulletin.address,
            "task": task.address,
            "secure": secure.address,
        },
    )
    # A dataset of m0 and one of the member about to be revoked.
    for n in ("m0", "revoked"):
        w.send(n, "DataRegistry", "register_dataset", *_dataset_args(n))
        w.ctx[f"dataset_{n}"] = registry.datasets_of(who[n].address)[-1]
    consortium.propose_revoke(who["revoked"].address)
    consortium.propose_threshold(2)
    # A proposal left pending: the founder's approval is one of the two needed.
    w.ctx["pending"] = consortium.propose_roles(who["m3"].address, roles=MEMBER_ROLES)
    assert not consortium.is_active(who["revoked"].address)
    w.snaps["base"] = chain.snapshot()
    yield w
    chain.close()


def _dataset_args(tag: str) -> tuple[Any, ...]:
    purposes = [purpose_id("model-training")]
    return (b32(f"{tag}-root"), b32(f"{tag}-schema"), b32(f"{tag}-class"), b32(f"{tag}-policy"), purposes, 100)


# -- stages: each builds on its parent, once; later uses revert to its snapshot ------------------------


def _plain_open(w: World) -> None:
    w.ctx["r_plain"] = w.task("task").as_(w.who["m0"]).open_round()


def _plain_committed(w: World) -> None:
    r = w.ctx["r_plain"]
    for i in range(3):
        w.send(f"m{i}", "task", "commit_update", r, b32(f"plain-{i}"), 10 + i, 0, 0)
    w.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)


def _plain_validate(w: World) -> None:
    w.send("m0", "task", "close_commits", w.ctx["r_plain"])


def _plain_scored(w: World) -> None:
    r = w.ctx["r_plain"]
    w.send("validator_only", "task", "submit_scores", r, [0, 1, 2], [9000, 9000, 9000])
    w.send("m3", "task", "submit_scores", r, [0, 1, 2], [9000, 9000, 9000])
    w.chain.advance_time(DEFAULT_PARAMS.validate_duration + 1)


def _plain_aggregate(w: World) -> None:
    r = w.ctx["r_plain"]
    w.send("m0", "task", "close_validation", r)
    w.ctx["mask_plain"] = w.task("task").round(r).accepted_mask


def _plain_aggregate_late(w: World) -> None:
    w.chain.advance_time(DEFAULT_PARAMS.aggregate_duration + 1)


def _secure_keys(w: World) -> None:
    w.ctx["r_secure"] = w.task("secure").as_(w.who["m0"]).open_round()


def _secure_advertised(w: World) -> None:
    for n in TRAINERS:
        w.send(n, "secure", "post_key_advert", w.ctx["r_secure"], b32(f"advert-{n}"))


def _secure_shares(w: World) -> None:
    w.send("m0", "secure", "close_keys", w.ctx["r_secure"])


def _secure_shared(w: World) -> None:
    for n in TRAINERS:
        w.send(n, "secure", "post_share_bundle", w.ctx["r_secure"], b32(f"bundle-{n}"))


def _secure_open(w: World) -> None:
    w.send("m0", "secure", "close_shares", w.ctx["r_secure"])


def _secure_committed(w: World) -> None:
    r = w.ctx["r_secure"]
    for i, n in enumerate(TRAINERS):
        w.send(n, "secure", "commit_update", r, b32(f"masked-{n}"), 10 + i, 0, 0)


def _secure_unmask(w: World) -> None:
    w.send("m0", "secure", "close_commits", w.ctx["r_secure"])


def _secure_revealed(w: World) -> None:
    for n in TRAINERS:
        w.send(n, "secure", "submit_reveal", w.ctx["r_secure"], b32(f"reveal-{n}"))


def _secure_aggregate(w: World) -> None:
    r = w.ctx["r_secure"]
    w.send("m0", "secure", "close_unmask", r)
    w.ctx["mask_secure"] = w.task("secure").round(r).accepted_mask


def _secure_aggregate_late(w: World) -> None:
    w.chain.advance_time(DEFAULT_PARAMS.aggregate_duration + 1)


STAGES: dict[str, tuple[str, Callable[[World], None]]] = {
    "plain_open": ("base", _plain_open),
    "plain_committed": ("plain_open", _plain_committed),
    "plain_validate": ("plain_committed", _plain_validate),
    "plain_scored": ("plain_validate", _plain_scored),
    "plain_aggregate": ("plain_scored", _plain_aggregate),
    "plain_aggregate_late": ("plain_aggregate", _plain_aggregate_late),
    "secure_keys": ("base", _secure_keys),
    "secure_advertised": ("secure_keys", _secure_advertised),
    "secure_shares": ("secure_advertised", _secure_shares),
    "secure_shared": ("secure_shares", _secure_shared),
    "secure_open": ("secure_shared", _secure_open),
    "secure_committed": ("secure_open", _secure_committed),
    "secure_unmask": ("secure_committed", _secure_unmask),
    "secure_revealed": ("secure_unmask", _secure_revealed),
    "secure_aggregate": ("secure_revealed", _secure_aggregate),
    "secure_aggregate_late": ("secure_aggregate", _secure_aggregate_late),
}


def reach(w: World, stage: str) -> None:
    """Put the chain in ``stage``'s state (built on first use, reverted to afterwards)."""
    if stage not in w.snaps:
        parent, build = STAGES[stage]
        reach(w, parent)
        build(w)
        w.snaps[stage] = w.chain.snapshot()
    w.chain.revert(w.snaps[stage])


# -- the table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    contract: str  # ABI name
    fn: str
    key: str  # which deployed instance (task: TrainingTask, secure: SecureTrainingTask)
    stage: str
    args: Callable[[World], tuple[Any, ...]]
    legit: str  # a caller for whom the call succeeds in this stage (positive control)
    refused: tuple[tuple[str, str], ...]  # (caller, exact revert string)

    @property
    def id(self) -> str:
        return f"{self.key}.{self.fn}" if self.key == "secure" else f"{self.contract}.{self.fn}"


def _admin_only(fn: str, args: Callable[[World], tuple[Any, ...]], legit: str = "admin") -> Case:
    return Case(
        "Consortium",
        fn,
        "Consortium",
        "base",
        args,
        legit,
        (("outsider", NOT_ADMIN), ("revoked", NOT_ADMIN), ("m0", NOT_ADMIN)),
    )


def _owner_only(fn: str, args: Callable[[World], tuple[Any, ...]]) -> Case:
    return Case(
        "DataRegistry",
        fn,
        "DataRegistry",
        "base",
        args,
        "m0",
        (
            ("outsider", REG_NOT_MEMBER),
            ("revoked", REG_NOT_MEMBER),  # its own dataset: a revoked owner changes nothing
            ("m1", REG_NOT_OWNER),  # an active member, not the owner
            ("admin", REG_NOT_OWNER),  # nor does an admin own others' data
        ),
    )


def _member_only(key: str, fn: str, stage: str, round_key: str) -> Case:
    return Case(
        TASK_CONTRACTS[key],
        fn,
        key,
        stage,
        lambda w: (w.ctx[round_key],),
        "m1",
        (("outsider", TASK_NOT_MEMBER), ("revoked", TASK_NOT_MEMBER)),
    )


def _task(
    key: str, fn: str, stage: str, args: Callable[[World], tuple[Any, ...]], legit: str, reason: str, *lacking: str
) -> Case:
    """A role-gated task function: outsider, revoked member and each member in ``lacking`` refused."""
    return Case(
        TASK_CONTRACTS[key],
        fn,
        key,
        stage,
        args,
        legit,
        tuple((c, reason) for c in ("outsider", "revoked", *lacking)),
    )


NEW = Account.from_key(h("fedledger-refusals-newcomer")).address
DS = "dataset_m0"

CASES: tuple[Case, ...] = (
    # Consortium: admin governance, and a member's own metadata.
    _admin_only("propose_admit", lambda w: (NEW, "Newcomer", int(MEMBER_ROLES), b32("c"), b32("k"), "s3://x")),
    _admin_only("propose_roles", lambda w: (w.who["m1"].address, int(Role.TRAINER))),
    _admin_only("propose_revoke", lambda w: (w.who["m1"].address,)),
    _admin_only("propose_threshold", lambda w: (1,)),
    _admin_only("approve", lambda w: (w.ctx["pending"],), legit="admin2"),
    _admin_only("cancel", lambda w: (w.ctx["pending"],)),
    Case(
        "Consortium",
        "update_metadata",
        "Consortium",
        "base",
        lambda w: (b32("cert"), b32("kx"), "s3://bucket"),
        "m0",
        (("outsider", NOT_ACTIVE), ("revoked", NOT_ACTIVE)),
    ),
    # DataRegistry: members register; only a dataset's active owner changes it.
    Case(
        "DataRegistry",
        "register_dataset",
        "DataRegistry",
        "base",
        lambda w: _dataset_args("new"),
        "m1",
        (("outsider", REG_NOT_MEMBER), ("revoked", REG_NOT_MEMBER)),
    ),
    _owner_only("update_commitment", lambda w: (w.ctx[DS], b32("root-2"), 101)),
    _owner_only("set_purposes", lambda w: (w.ctx[DS], [b32("other-purpose")])),
    _owner_only("record_erasure", lambda w: (w.ctx[DS], b32("subject"))),
    _owner_only("revoke_dataset", lambda w: (w.ctx[DS],)),
    # Bulletin: members post.
    Case(
        "Bulletin",
        "post",
        "Bulletin",
        "base",
        lambda w: (w.addr["task"], 1, b32("metrics"), b32("blob")),
        "m0",
        (("outsider", BUL_NOT_MEMBER), ("revoked", BUL_NOT_MEMBER)),
    ),
    # TrainingTask, plain rounds.
    _task("task", "open_round", "base", lambda w: (), "m0", NOT_AGG_OR_ADMIN, "trainer_only", "validator_only"),
    _task(
        "task",
        "commit_update",
        "plain_open",
        lambda w: (w.ctx["r_plain"], b32("u"), 10, 0, 0),
        "m0",
        NOT_TRAINER,
        "validator_only",
        "admin",
    ),
    _member_only("task", "close_commits", "plain_committed", "r_plain"),
    _task(
        "task",
        "flag_update",
        "plain_committed",
        lambda w: (w.ctx["r_plain"], 0, "bad shape"),
        "validator_only",
        NOT_VAL_OR_AGG,
        "trainer_only",
        "admin",
    ),
    _task(
        "task",
        "submit_scores",
        "plain_validate",
        lambda w: (w.ctx["r_plain"], [0, 1, 2], [9000, 9000, 9000]),
        "validator_only",
        NOT_VALIDATOR,
        "trainer_only",
        "admin",
    ),
    _member_only("task", "close_validation", "plain_scored", "r_plain"),
    _task(
        "task",
        "propose_aggregate",
        "plain_aggregate",
        lambda w: (w.ctx["r_plain"], b32("model-1"), w.ctx["mask_plain"]),
        "m0",
        NOT_AGGREGATOR,
        "trainer_only",
        "validator_only",
        "admin",
    ),
    _member_only("task", "close_aggregation", "plain_aggregate_late", "r_plain"),
    _task(
        "task",
        "clear_reputation",
        "base",
        lambda w: (w.who["m1"].address,),
        "admin",
        TASK_NOT_ADMIN,
        "m0",
        "trainer_only",
        "validator_only",
    ),
    # SecureTrainingTask: secure-aggregation rounds.
    _task(
        "secure",
        "post_key_advert",
        "secure_keys",
        lambda w: (w.ctx["r_secure"], b32("advert")),
        "m0",
        NOT_TRAINER,
        "validator_only",
        "admin",
    ),
    _member_only("secure", "close_keys", "secure_advertised", "r_secure"),
    _task(
        "secure",
        "post_share_bundle",
        "secure_shares",
        lambda w: (w.ctx["r_secure"], b32("bundle")),
        "m0",
        NOT_TRAINER,
        "validator_only",
        "admin",
    ),
    _member_only("secure", "close_shares", "secure_shared", "r_secure"),
    _task(
        "secure",
        "submit_reveal",
        "secure_unmask",
        lambda w: (w.ctx["r_secure"], b32("reveal")),
        "m0",
        NOT_TRAINER,
        "validator_only",
        "admin",
    ),
    _member_only("secure", "close_unmask", "secure_revealed", "r_secure"),
    # The same guards on the secure task's round-core functions.
    _task("secure", "open_round", "base", lambda w: (), "m0", NOT_AGG_OR_ADMIN, "trainer_only", "validator_only"),
    _task(
        "secure",
        "commit_update",
        "secure_open",
        lambda w: (w.ctx["r_secure"], b32("u"), 10, 0, 0),
        "m0",
        NOT_TRAINER,
        "validator_only",
        "admin",
    ),
    _member_only("secure", "close_commits", "secure_committed", "r_secure"),
    _task(
        "secure",
        "flag_update",
        "secure_committed",
        lambda w: (w.ctx["r_secure"], 0, "bad shape"),
        "validator_only",
        NOT_VAL_OR_AGG,
        "trainer_only",
        "admin",
    ),
    _task(
        "secure",
        "propose_aggregate",
        "secure_aggregate",
        lambda w: (w.ctx["r_secure"], b32("model-1"), w.ctx["mask_secure"]),
        "m0",
        NOT_AGGREGATOR,
        "trainer_only",
        "validator_only",
        "admin",
    ),
    _member_only("secure", "close_aggregation", "secure_aggregate_late", "r_secure"),
)


def _chain_state(w: World, caller: str) -> tuple[int, int, int]:
    """No new block and the caller's nonce and balance unchanged: nothing was sent or written."""
    address = w.who[caller].address
    return (w.chain.block_number, w.chain.w3.eth.get_transaction_count(address), w.chain.balance(address))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_unauthorized_callers_are_refused(world: World, case: Case) -> None:
    reach(world, case.stage)
    args = case.args(world)
    for caller, reason in case.refused:
        exc = refused(
            lambda caller=caller: _chain_state(world, caller),
            NotAuthorized,
            reason,
            world.send,
            caller,
            case.key,
            case.fn,
            *args,
        )
        assert exc.function == case.fn
    # Positive control: in this very state the call goes through for a caller holding the role, so the
    # refusals above are the caller's, not the phase's or the arguments'.
    result = world.send(case.legit, case.key, case.fn, *args)
    assert result.receipt["status"] == 1


def test_a_revoked_owner_cannot_touch_its_own_dataset(world: World) -> None:
    reach(world, "base")
    d = world.ctx["dataset_revoked"]
    for fn, args in (
        ("update_commitment", (d, b32("root-3"), 102)),
        ("set_purposes", (d, [b32("other-purpose")])),
        ("record_erasure", (d, b32("subject"))),
        ("revoke_dataset", (d,)),
    ):
        refused(
            lambda: _chain_state(world, "revoked"),
            NotAuthorized,
            REG_NOT_MEMBER,
            world.send,
            "revoked",
            "DataRegistry",
            fn,
            *args,
        )


# -- the table is complete -------------------------------------------------------------------------------


def _state_changing(name: str) -> set[str]:
    return {
        item["name"]
        for item in compile_contract(name).abi
        if item.get("type") == "function" and item.get("stateMutability") not in ("view", "pure")
    }


def test_every_state_changing_function_has_a_refusal_case() -> None:
    """A new external non-view function, in any shipped contract, needs a row in CASES."""
    from importlib.resources import files

    folder = files("fedledger.chain").joinpath("contracts")
    shipped = sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".vy"))
    assert sorted(CONTRACTS) == shipped, "a contract was added or removed: list it in CONTRACTS and cover it"
    for name in CONTRACTS:
        covered = {c.fn for c in CASES if c.contract == name and c.refused}
        missing = _state_changing(name) - covered
        assert not missing, f"{name}: no unauthorized-caller case for {sorted(missing)}"
        stale = covered - _state_changing(name)
        assert not stale, f"{name}: cases for functions it no longer has: {sorted(stale)}"
    # Every row refuses an outsider; the secure-aggregation functions are covered on a secure task.
    assert all(any(c == "outsider" for c, _ in case.refused) for case in CASES)
    secure_fns = {"post_key_advert", "close_keys", "post_share_bundle", "close_shares", "submit_reveal", "close_unmask"}
    assert secure_fns <= {c.fn for c in CASES if c.key == "secure"}
