"""Unauthorized callers: every external state-changing function of every contract refuses them.

One table row per function (Consortium, DataRegistry, Bulletin, TrainingTask, SecureTrainingTask, Incentives,
CommitmentBatches). Each row
puts the chain in a state where the function *would* succeed (a positive control runs it for a legitimate
caller at the end), then sends it raw, bypassing the clients' own checks, from:

- an outsider: a fresh funded account never admitted;
- a revoked member that held every role it would need (admin included) and owns a dataset;
- where a role is needed, an active member without that role (or, for a dataset, a member that is not its
  owner).

Each refusal must raise ``NotAuthorized`` with the contract's exact revert string and leave the chain
unmoved. A meta-test parses the compiled ABIs: a non-view function without a row here fails it, unless it is
listed in ``PERMISSIONLESS`` (open to anyone by design, each with its reason); a test then shows an outsider's
call of each of those does exactly what the contract's rules say, refused only by the rules' own reasons.

Embedded chain only, one module-scoped world; each stage of a round is built once and reached again by
snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, MEMBER_ROLES, h, refused
from fedledger.chain import BulletinClient, Chain, ConsortiumClient, IncentivesClient, Role, TrainingTaskClient
from fedledger.chain.batches import CommitmentBatchesClient
from fedledger.chain.compiler import compile_contract
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.chain.governance_events import CallExecuted
from fedledger.chain.registry import DataRegistryClient, purpose_id
from fedledger.exceptions import InvalidState, NotAuthorized
from helpers.incentives import PARAMS as INCENTIVE_PARAMS
from helpers.incentives import STAKE

CONTRACTS = (
    "Consortium",
    "DataRegistry",
    "Bulletin",
    "TrainingTask",
    "SecureTrainingTask",
    "Incentives",
    "CommitmentBatches",
)
# instance key -> contract; "gated" is the task whose stake gate is the Incentives contract
TASK_CONTRACTS = {
    "task": "TrainingTask",
    "secure": "SecureTrainingTask",
    "masked": "SecureTrainingTask",  # with a check committee of three: masked validity checks
    "gated": "TrainingTask",
}
# Both tasks declare a mutable setting, so that a consortium vote can change it (the positive control of set_param).
GOVERNED = (("commit_duration", 60, 3_600),)
TASK_PARAMS = replace(DEFAULT_PARAMS, param_bounds=GOVERNED)
SECURE_PARAMS = replace(DEFAULT_PARAMS, secagg_threshold=2, param_bounds=GOVERNED)
MASKED_PARAMS = replace(DEFAULT_PARAMS, secagg_threshold=1, committee_size=3)
# The aggregators with a key-agreement key, hence the masked task's whole check committee; m3, an aggregator
# without one, is never on it.
CHECKERS = ("m0", "m1", "m2")
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
NOT_CONSORTIUM = "task: caller is not the consortium"
INC_NOT_CREATOR = "incentives: caller is not the creator"
INC_NOT_MEMBER = "incentives: caller is not a member"
INC_NOT_SCORER = "incentives: caller did not score the round"
BATCH_NOT_RELAY = "batches: caller is not an aggregator"
NOT_CHECKER = "task: caller is not on the check committee"
STAKED = ("m0", "m1", "m2", "m3")  # the gated task's staked members: its trainers and seated validators

# Functions with no caller guard by design: who sends them does not matter, the contract's rules decide.
PERMISSIONLESS: dict[str, frozenset[str]] = {
    "Incentives": frozenset(
        {
            "fund",  # adds the sender's own money to the pool: any donor is welcome
            "settle_round",  # credits a finalized round by the posted contributions, once, when the rules allow
            "slash_trainer",  # only an update the task's scores show clearly harmful, once
            "slash_validator",  # only a validator the task itself distrusts, once per episode
            "mark_ended",  # records a fact the task holds: its last round closed
            "withdraw_stake",  # pays back only the sender's own stake, after the end and dispute window
        }
    ),
    # Anyone may show a batch is bad or settle it: the contract checks the evidence (proofs, signatures,
    # the relay's receipt) and the windows itself; tests/chain/test_commitment_batches.py sends each from
    # an outsider or a member other than the relay.
    "CommitmentBatches": frozenset(
        {
            "challenge_forged",  # only a leaf in the tree whose signature is not a trainer's for the round
            "challenge_duplicate",  # only two leaves in the tree of the same member
            "challenge_missing",  # only with the trainer's signature and the relay's receipt
            "answer_missing",  # only with a proof of the disputed leaf in the tree
            "claim_missing",  # only for a dispute left unanswered past the answer deadline
            "finalize",  # only after the window, with no dispute open, once
            "deliver",  # only leaves that rebuild a finalized (or finalizable) root, once; the task judges each leaf
        }
    ),
}


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

    def send(self, caller: str, key: str, fn: str, *args: Any, value: int = 0) -> Any:
        name = TASK_CONTRACTS.get(key, key)
        contract = self.chain.contract(name, self.addr[key])
        return self.chain.transact(self.who[caller], getattr(contract.functions, fn)(*args), value=value)

    def task(self, key: str) -> TrainingTaskClient:
        return TrainingTaskClient(self.chain, self.addr[key], self.who["admin"])

    def incentives(self, caller: str = "admin") -> IncentivesClient:
        return IncentivesClient(self.chain, self.addr["Incentives"], self.who[caller])


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
    batches = CommitmentBatchesClient.deploy(chain, who["admin"], consortium.address, window=600)
    task = TrainingTaskClient.deploy(chain, who["admin"], consortium.address, TASK_PARAMS)
    secure = TrainingTaskClient.deploy(chain, who["admin"], consortium.address, SECURE_PARAMS)
    w = World(
        chain,
        who,
        {
            "Consortium": consortium.address,
            "DataRegistry": registry.address,
            "Bulletin": bulletin.address,
            "CommitmentBatches": batches.address,
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


def _plain_finalized(w: World) -> None:
    r = w.ctx["r_plain"]
    for n in ("m0", "m1"):  # the default quorum: two identical proposals
        w.send(n, "task", "propose_aggregate", r, b32("model-plain"), w.ctx["mask_plain"])


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


def _masked_checks(w: World) -> None:
    w.addr["masked"] = TrainingTaskClient.deploy(w.chain, w.who["admin"], w.addr["Consortium"], MASKED_PARAMS).address
    for n in CHECKERS:
        w.send(n, "Consortium", "update_metadata", b32(f"cert-{n}"), b32(f"kx-{n}"), "")
    r = w.ctx["r_masked"] = w.task("masked").as_(w.who["m0"]).open_round()
    for i, n in enumerate(TRAINERS):
        w.send(n, "masked", "commit_update", r, b32(f"bundle-{n}"), 10 + i, 0, 0)
    w.send("m0", "masked", "close_commits", r)


def _masked_checks_late(w: World) -> None:
    w.chain.advance_time(DEFAULT_PARAMS.validate_duration + 1)


# The Incentives world: a one-round task gated by an Incentives contract. In its round m3's update is rejected
# by every score (clearly harmful), the other three are accepted; the round finalizes, which ends the task.


def _inc_unbound(w: World) -> None:
    inc = IncentivesClient.deploy(w.chain, w.who["admin"], w.addr["Consortium"], INCENTIVE_PARAMS)
    params = replace(DEFAULT_PARAMS, stake_gate=inc.address, max_rounds=1)
    w.addr["Incentives"] = inc.address
    w.addr["gated"] = TrainingTaskClient.deploy(w.chain, w.who["admin"], w.addr["Consortium"], params).address


def _inc_bound(w: World) -> None:
    w.send("admin", "Incentives", "bind_task", w.addr["gated"])
    w.send("admin", "Incentives", "fund", 5_000, value=5_000)
    for n in STAKED:
        w.send(n, "Incentives", "deposit_stake", STAKE, value=STAKE)


def _inc_finalized(w: World) -> None:
    task = {n: w.task("gated").as_(w.who[n]) for n in STAKED}
    r = w.ctx["r_gated"] = task["m0"].open_round()
    for i, n in enumerate(STAKED):
        task[n].commit_update(r, b32(f"gated-{n}"), 100 + i)
    w.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    task["m0"].close_commits(r)
    for j, n in enumerate(STAKED):
        task[n].submit_scores(r, [None if i == j else 1_000 if i == 3 else 9_000 for i in range(4)])
    task["m0"].close_validation(r)
    mask = w.task("gated").round(r).accepted_mask
    task["m0"].propose_aggregate(r, b32("gated-model"), mask)
    task["m1"].propose_aggregate(r, b32("gated-model"), mask)


def _inc_posted(w: World) -> None:
    for j, n in enumerate(STAKED):
        indices = [i for i in range(3) if i != j]
        w.send(n, "Incentives", "post_contributions", w.ctx["r_gated"], indices, [1_000 * (i + 1) for i in indices])


def _inc_settled(w: World) -> None:
    w.send("m0", "Incentives", "settle_round", w.ctx["r_gated"])


STAGES: dict[str, tuple[str, Callable[[World], None]]] = {
    "plain_open": ("base", _plain_open),
    "plain_committed": ("plain_open", _plain_committed),
    "plain_validate": ("plain_committed", _plain_validate),
    "plain_scored": ("plain_validate", _plain_scored),
    "plain_aggregate": ("plain_scored", _plain_aggregate),
    "plain_aggregate_late": ("plain_aggregate", _plain_aggregate_late),
    "plain_finalized": ("plain_aggregate", _plain_finalized),
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
    "masked_checks": ("base", _masked_checks),
    "masked_checks_late": ("masked_checks", _masked_checks_late),
    "inc_unbound": ("base", _inc_unbound),
    "inc_bound": ("inc_unbound", _inc_bound),
    "inc_finalized": ("inc_bound", _inc_finalized),
    "inc_posted": ("inc_finalized", _inc_posted),
    "inc_settled": ("inc_posted", _inc_settled),
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
    value: int = 0  # native currency sent with every call of the row

    @property
    def id(self) -> str:
        return f"{self.key}.{self.fn}" if self.key in ("secure", "masked") else f"{self.contract}.{self.fn}"


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
CONSORTIUM = "consortium"  # a row's legitimate caller that is the consortium contract, by an approved proposal
DS = "dataset_m0"

CASES: tuple[Case, ...] = (
    # Consortium: admin governance, and a member's own metadata.
    _admin_only("propose_admit", lambda w: (NEW, "Newcomer", int(MEMBER_ROLES), b32("c"), b32("k"), "s3://x")),
    _admin_only("propose_roles", lambda w: (w.who["m1"].address, int(Role.TRAINER))),
    _admin_only("propose_revoke", lambda w: (w.who["m1"].address,)),
    _admin_only("propose_threshold", lambda w: (1,)),
    _admin_only("propose_call", lambda w: (w.addr["task"], w.task("task").contract.encode_abi("set_paused", [True]))),
    _admin_only("approve", lambda w: (w.ctx["pending"],), legit="admin2"),
    _admin_only("cancel", lambda w: (w.ctx["pending"],)),
    Case(
        "Consortium",
        "propose_release",
        "Consortium",
        "plain_finalized",
        lambda w: (w.addr["task"], w.ctx["r_plain"]),
        "admin",
        (("outsider", NOT_ADMIN), ("revoked", NOT_ADMIN), ("m0", NOT_ADMIN)),
    ),
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
    # CommitmentBatches: aggregators relay a round's root.
    Case(
        "CommitmentBatches",
        "post_batch",
        "CommitmentBatches",
        "base",
        lambda w: (w.addr["task"], 1, b32("root"), 3, b32("leaves")),
        "m0",
        (("outsider", BATCH_NOT_RELAY), ("revoked", BATCH_NOT_RELAY), ("trainer_only", BATCH_NOT_RELAY)),
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
    # Governed settings: only the consortium contract calls them, executing an approved proposal; no account
    # does, the admins included.
    *(
        _task(key, fn, "base", args, CONSORTIUM, NOT_CONSORTIUM, "admin", "admin2", "m0")
        for key in ("task", "secure")
        for fn, args in (("set_paused", lambda w: (True,)), ("set_param", lambda w: (1, 120)))
    ),
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
    # Masked validity checks: only the round's check committee posts outcomes; any member closes a late phase.
    _task(
        "masked",
        "post_check_outcome",
        "masked_checks",
        lambda w: (w.ctx["r_masked"], [0b11111, 0, 0, 0], b32("outcome")),
        "m0",
        NOT_CHECKER,
        "m3",
        "admin",
    ),
    _task(
        "masked",
        "post_check_abort",
        "masked_checks",
        lambda w: (w.ctx["r_masked"], b32("abort")),
        "m0",
        NOT_CHECKER,
        "m3",
    ),
    _member_only("masked", "close_checks", "masked_checks_late", "r_masked"),
    # Incentives: its creator binds the task; active members stake and claim; a round's scorers post.
    Case(
        "Incentives",
        "bind_task",
        "Incentives",
        "inc_unbound",
        lambda w: (w.addr["gated"],),
        "admin",
        tuple((c, INC_NOT_CREATOR) for c in ("outsider", "revoked", "m0", "admin2")),  # admin2: not the creator
    ),
    Case(
        "Incentives",
        "deposit_stake",
        "Incentives",
        "inc_bound",
        lambda w: (STAKE,),
        "trainer_only",
        (("outsider", INC_NOT_MEMBER), ("revoked", INC_NOT_MEMBER)),
        value=STAKE,
    ),
    Case(
        "Incentives",
        "post_contributions",
        "Incentives",
        "inc_finalized",
        lambda w: (w.ctx["r_gated"], [0, 2], [5_000, 5_000]),
        "m1",
        # A revoked member no longer sways payouts; validator_only and admin: a validator not seated (unstaked) and
        # a member without the role, neither scored
        (
            ("outsider", INC_NOT_MEMBER),
            ("revoked", INC_NOT_MEMBER),
            ("validator_only", INC_NOT_SCORER),
            ("admin", INC_NOT_SCORER),
        ),
    ),
    Case(
        "Incentives",
        "claim",
        "Incentives",
        "inc_settled",
        lambda w: (),
        "m1",
        (("outsider", INC_NOT_MEMBER), ("revoked", INC_NOT_MEMBER)),
    ),
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
            partial(world.send, value=case.value),
            caller,
            case.key,
            case.fn,
            *args,
        )
        assert exc.function == case.fn
    # Positive control: in this very state the call goes through for a caller holding the role, so the
    # refusals above are the caller's, not the phase's or the arguments'.
    if case.legit == CONSORTIUM:
        _through_a_vote(world, case, args)
        return
    result = world.send(case.legit, case.key, case.fn, *args, value=case.value)
    assert result.receipt["status"] == 1


def _through_a_vote(w: World, case: Case, args: tuple[Any, ...]) -> None:
    """The call, proposed by one admin and approved by the second (the world's threshold is two), executes."""
    task = w.task(case.key)
    payload = bytes.fromhex(task.contract.encode_abi(case.fn, list(args)).removeprefix("0x"))
    consortium = ConsortiumClient(w.chain, w.addr["Consortium"], w.who["admin"])
    proposal = consortium.propose_call(task.address, payload)
    assert consortium.as_(w.who["admin2"]).approve(proposal)
    executed = [e for e in consortium.events(from_block=w.chain.block_number) if isinstance(e, CallExecuted)]
    selector = "0x" + payload[:4].hex()
    assert [(e.proposal_id, e.target, e.selector) for e in executed] == [(proposal, task.address, selector)]


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


# -- permissionless functions: an outsider's call does what the rules say, no more ---------------------------


def _credits(w: World) -> tuple[Any, ...]:
    inc = w.incentives()
    return (tuple(inc.earned(w.who[n].address) for n in STAKED), inc.pool(), inc.totals())


def test_an_outsiders_call_of_a_permissionless_function_follows_the_rules(world: World) -> None:
    w = world
    reach(w, "inc_bound")
    pool = w.incentives().pool()
    w.send("outsider", "Incentives", "fund", 700, value=700)  # any donor adds to the pool
    assert w.incentives().pool() == pool + 700

    # settle_round: the outsider's settlement credits exactly what a member's does.
    reach(w, "inc_posted")
    r = w.ctx["r_gated"]
    w.send("m0", "Incentives", "settle_round", r)
    by_member = _credits(w)
    reach(w, "inc_posted")
    w.send("outsider", "Incentives", "settle_round", r)
    assert _credits(w) == by_member and by_member[0][0] > 0
    books = lambda: (w.chain.block_number, _credits(w))  # noqa: E731
    refused(
        books, InvalidState, "incentives: round already settled", w.send, "outsider", "Incentives", "settle_round", r
    )

    # slash_trainer: an accepted update is refused by the rule, for the outsider as for a member; the clearly
    # harmful one (every score below the threshold) is slashed whoever asks.
    for caller in ("outsider", "m0"):
        refused(books, InvalidState, "incentives: update accepted", w.send, caller, "Incentives", "slash_trainer", r, 0)
    w.send("outsider", "Incentives", "slash_trainer", r, 3)
    inc = w.incentives()
    harmful = STAKE * INCENTIVE_PARAMS.trainer_slash_bps // 10_000
    assert (inc.stake_of(w.who["m3"].address), inc.slashed_of(w.who["m3"].address)) == (STAKE - harmful, harmful)

    # slash_validator: a validator the task trusts is not slashed, whoever asks.
    for caller in ("outsider", "m0"):
        refused(
            books, InvalidState, "incentives: validator not distrusted",
            w.send, caller, "Incentives", "slash_validator", w.who["m1"].address, r,
        )  # fmt: skip

    # mark_ended records the task's own end (its one round finalized); withdraw_stake then pays back only the
    # caller's own stake: one without any is refused by that rule, not by who it is.
    w.send("outsider", "Incentives", "mark_ended")
    assert inc.ended_at == w.chain.timestamp()
    w.chain.advance_time(INCENTIVE_PARAMS.dispute_window)
    for caller in ("outsider", "revoked"):
        refused(books, InvalidState, "incentives: no stake", w.send, caller, "Incentives", "withdraw_stake")
    w.send("m1", "Incentives", "withdraw_stake")
    assert inc.stake_of(w.who["m1"].address) == 0


# -- the table is complete -------------------------------------------------------------------------------


def _state_changing(name: str) -> set[str]:
    return {
        item["name"]
        for item in compile_contract(name).abi
        if item.get("type") == "function" and item.get("stateMutability") not in ("view", "pure")
    }


def test_every_state_changing_function_has_a_refusal_case() -> None:
    """A new external non-view function, in any shipped contract, needs a row in CASES, or a place in
    PERMISSIONLESS with the reason it needs no guard; a function is in exactly one of the two."""
    from importlib.resources import files

    folder = files("fedledger.chain").joinpath("contracts")
    shipped = sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".vy"))
    assert sorted(CONTRACTS) == shipped, "a contract was added or removed: list it in CONTRACTS and cover it"
    assert set(PERMISSIONLESS) <= set(CONTRACTS)
    for name in CONTRACTS:
        covered = {c.fn for c in CASES if c.contract == name and c.refused}
        open_to_all = PERMISSIONLESS.get(name, frozenset())
        assert not covered & open_to_all, f"{name}: both refused and permissionless: {sorted(covered & open_to_all)}"
        missing = _state_changing(name) - covered
        assert missing == open_to_all, (
            f"{name}: no unauthorized-caller case for {sorted(missing - open_to_all)}; "
            f"listed permissionless but not a state-changing function: {sorted(open_to_all - missing)}"
        )
        stale = covered - _state_changing(name)
        assert not stale, f"{name}: cases for functions it no longer has: {sorted(stale)}"
    # Every row refuses an outsider; the secure-aggregation functions are covered on a secure task.
    assert all(any(c == "outsider" for c, _ in case.refused) for case in CASES)
    secure_fns = {"post_key_advert", "close_keys", "post_share_bundle", "close_shares", "submit_reveal", "close_unmask"}
    assert secure_fns <= {c.fn for c in CASES if c.key == "secure"}
