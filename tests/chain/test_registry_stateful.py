"""Stateful property test: random call sequences against the DataRegistry.

A hypothesis ``RuleBasedStateMachine`` drives the DataRegistry on the embedded chain
with random callers (members, the admin, an outsider, revoked members), random
dataset ids (unknown ones included) and values drawn from small pools, so that
repeats ("unchanged", "duplicate", "already erased") happen often. A plain Python
model says what each call must do; every outcome must match it exactly: success,
or the exact typed error with the contract's exact revert string and no new block.
Calls the client itself refuses (empty or repeated purposes) are sent raw as well,
so the contract's own checks run.

A plain task with the registry and a purpose, whose rounds never reach a quorum
(so they can be recycled at will), stands for every use of a dataset: a member's
commitment must name its own active dataset allowing the task's purpose.

Invariants checked against the chain after every step:

- the registry's count, records, purposes, listings and ``allows``/``owner_of``
  views agree with the model;
- a dataset's owner, schema, classification, policy and registration block never
  change once written; a revoked dataset stays revoked and allows nothing; an
  erasure, once recorded, stays recorded;
- every registry event was sent by the dataset's owner while it was an active
  member (only the owner acts on its dataset; revoked members and outsiders never).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from conftest import DEFAULT_PARAMS, Ledger, Refusal, attempt_call, h, run_machine
from fedledger.chain import TrainingTaskClient
from fedledger.chain.encoding import ZERO_HASH, hex32
from fedledger.chain.events import (
    DatasetRegistered,
    DatasetRevoked,
    DatasetUpdated,
    MemberRevoked,
    PurposesChanged,
    SubjectErased,
)
from fedledger.chain.registry import DataRegistryClient, DatasetStatus, purpose_id
from fedledger.exceptions import (
    BadInput,
    InvalidArgument,
    InvalidState,
    NotAuthorized,
    PurposeRefused,
)

TRAINING = "model-training:heart-disease"  # the task's purpose
PURPOSE_NAMES = [TRAINING, "research:cardiology", "marketing", "model-training:fraud"]
PURPOSES = [hex32(purpose_id(p)) for p in PURPOSE_NAMES]
SUBJECTS = [h(f"subject-{i}") for i in range(4)]
MAX_REVOKED = 2  # keep owners able to act
ADMIN, OUTSIDER = 4, 5

# Every refusal the model predicts, as (error class, the contract's revert string).
NOT_MEMBER: Refusal = (NotAuthorized, "registry: caller is not an active member")
UNKNOWN: Refusal = (InvalidArgument, "registry: dataset id out of range")
NOT_OWNER: Refusal = (NotAuthorized, "registry: caller is not the dataset owner")
REVOKED: Refusal = (InvalidState, "registry: dataset revoked")
ZERO_COMMITMENT: Refusal = (InvalidArgument, "registry: zero commitment")
ZERO_ROWS: Refusal = (InvalidArgument, "registry: zero rows")
EMPTY_PURPOSES: Refusal = (InvalidArgument, "registry: empty purposes")
ZERO_PURPOSE: Refusal = (InvalidArgument, "registry: zero purpose")
DUPLICATE_PURPOSE: Refusal = (InvalidArgument, "registry: duplicate purpose")
COMMITMENT_UNCHANGED: Refusal = (InvalidState, "registry: commitment unchanged")
PURPOSES_UNCHANGED: Refusal = (InvalidState, "registry: purposes unchanged")
ZERO_SUBJECT: Refusal = (InvalidArgument, "registry: zero subject hash")
ALREADY_ERASED: Refusal = (InvalidState, "registry: subject already erased")
NOT_TRAINER: Refusal = (NotAuthorized, "task: caller is not a trainer")
NOT_OWNED: Refusal = (NotAuthorized, "task: dataset not owned by sender")
PURPOSE_REFUSED: Refusal = (PurposeRefused, "task: purpose not allowed for dataset")
CLIENT_REFUSES: Refusal = (BadInput, "")  # the client refuses before sending anything

actors = st.integers(min_value=0, max_value=5)  # 0..3 members, 4 admin, 5 outsider
targets = st.integers(min_value=0, max_value=7)  # a dataset id; 0 and ids past the count are unknown
# Mostly an active owner acting on one of its own datasets (so that calls get past the access checks
# and reach the dataset's state); sometimes any owner, revoked ones included; otherwise a random
# caller on a random id.
as_owner = st.sampled_from(["active", "active", "active", "any", "random"])
hashes = st.sampled_from([h("a"), h("b"), h("c")] * 3 + [ZERO_HASH])
rows_values = st.sampled_from([303, 303, 303, 1000, 1, 0])
purpose_lists = st.one_of(
    st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True),
    st.lists(st.sampled_from([*PURPOSES, ZERO_HASH]), min_size=0, max_size=4),  # empty, zero or repeated ids
)
subjects = st.sampled_from([*SUBJECTS, ZERO_HASH])


@dataclass
class DatasetModel:
    owner: str
    commitment: str
    schema_hash: str
    classification_hash: str
    policy_hash: str
    rows: int
    registered_at: int
    purposes: list[str]
    status: DatasetStatus = DatasetStatus.ACTIVE
    erased: list[str] = field(default_factory=list)


def purposes_refusal(purposes: list[str]) -> Refusal | None:
    """The contract's ``_set_allowed`` checks, in its order."""
    if not purposes:
        return EMPTY_PURPOSES
    seen: set[str] = set()
    for p in purposes:
        if p == ZERO_HASH:
            return ZERO_PURPOSE
        if p in seen:
            return DUPLICATE_PURPOSE
        seen.add(p)
    return None


def client_accepts(purposes: list[str]) -> bool:
    """Whether the client's ``purpose_ids`` would send this list (it refuses empty, zero and repeated ids)."""
    return bool(purposes) and ZERO_HASH not in purposes and len(set(purposes)) == len(purposes)


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self, ledger: Ledger, registry: DataRegistryClient, task: TrainingTaskClient) -> None:
        super().__init__()
        self.ledger = ledger
        self.chain = ledger.chain
        self.registry = registry
        self.task = task
        self.snapshot = self.chain.snapshot()
        self.accounts = [*ledger.members, ledger.admin, ledger.outsider]
        self.addresses = [a.address for a in self.accounts]
        self.active = set(self.addresses[:5])  # members and the admin
        self.trainers = set(self.addresses[:4])
        self.revoked: dict[str, int] = {}  # address -> block it was revoked in
        self.datasets: dict[int, DatasetModel] = {}
        self.owned: dict[str, list[int]] = {a: [] for a in self.addresses}
        self.written: dict[int, tuple[Any, ...]] = {}  # write-once fields as first read from the chain
        self.erased_seen: set[tuple[int, str]] = set()
        self.revoked_seen: set[int] = set()
        # Opened here, not once per test: each example's round then has a full commit phase ahead.
        self.task_round = task.as_(ledger.admin).open_round()
        self.task_committed: set[str] = set()
        self.revoked_at: dict[int, int] = {}  # dataset id -> block of its DatasetRevoked event
        self.touched: set[int] = set()  # datasets the last step acted on
        self.touched_subjects: set[tuple[int, str]] = set()
        self.events_from = self.chain.block_number + 1
        self.actions = Counter[str]()

    def teardown(self) -> None:
        try:
            self.check_everything()
        finally:
            self.chain.revert(self.snapshot)

    # -- model helpers ---------------------------------------------------------------

    def owner_refusal(self, actor: int, dataset_id: int) -> Refusal | None:
        """The contract's ``_check_owner``: an active member, a known id, its own dataset."""
        who = self.addresses[actor]
        if who not in self.active:
            return NOT_MEMBER
        if dataset_id not in self.datasets:
            return UNKNOWN
        if self.datasets[dataset_id].owner != who:
            return NOT_OWNER
        return None

    def choose(self, actor: int, pick: int, owner: str) -> tuple[int, int]:
        """(actor, dataset id) for a rule: an existing dataset and its owner, or the drawn caller and id."""
        ids = sorted(self.datasets)
        if owner == "active":
            ids = [i for i in ids if self.datasets[i].owner in self.active]
        if owner != "random" and ids:
            dataset_id = ids[pick % len(ids)]
            actor, pick = self.addresses.index(self.datasets[dataset_id].owner), dataset_id
        self.touched.add(pick)
        return actor, pick

    def active_refusal(self, dataset_id: int) -> Refusal | None:
        return REVOKED if self.datasets[dataset_id].status is not DatasetStatus.ACTIVE else None

    def attempt(self, name: str, expected: Refusal | None, fn: Callable[..., Any], *args: Any, **kw: Any) -> bool:
        return attempt_call(self.chain, self.actions, name, expected, lambda: fn(*args, **kw))

    def raw(self, actor: int, function: str, *args: Any) -> Any:
        """Send straight to the contract, past the client's own checks."""
        fn = getattr(self.registry.contract.functions, function)(*args)
        return self.chain.transact(self.accounts[actor], fn)

    def reg(self, actor: int) -> DataRegistryClient:
        return self.registry.as_(self.accounts[actor])

    # -- rules --------------------------------------------------------------------

    @rule(
        actor=actors,
        commitment=hashes,
        schema=hashes,
        zero_field=st.sampled_from([None] * 8 + ["classification", "policy"]),
        purposes=purpose_lists,
        rows=rows_values,
        via_client=st.booleans(),
    )
    def register_dataset(
        self,
        actor: int,
        commitment: str,
        schema: str,
        zero_field: str | None,
        purposes: list[str],
        rows: int,
        via_client: bool,
    ) -> None:
        who = self.addresses[actor]
        classification = ZERO_HASH if zero_field == "classification" else h(f"classification-{actor}")
        policy = ZERO_HASH if zero_field == "policy" else h(f"policy-{actor}")
        expected: Refusal | None = None
        if via_client and not client_accepts(purposes):
            expected = CLIENT_REFUSES
        elif who not in self.active:
            expected = NOT_MEMBER
        elif commitment == ZERO_HASH:
            expected = ZERO_COMMITMENT
        elif schema == ZERO_HASH:
            expected = (InvalidArgument, "registry: zero schema hash")
        elif classification == ZERO_HASH:
            expected = (InvalidArgument, "registry: zero classification hash")
        elif policy == ZERO_HASH:
            expected = (InvalidArgument, "registry: zero policy hash")
        elif rows == 0:
            expected = ZERO_ROWS
        else:
            expected = purposes_refusal(purposes)
        args = (commitment, schema, classification, policy)

        def call() -> Any:
            if not via_client:
                return self.raw(actor, "register_dataset", *args, purposes, rows)
            return self.reg(actor).register_dataset(
                commitment=commitment,
                schema_hash=schema,
                classification_hash=classification,
                policy_hash=policy,
                purposes=[bytes.fromhex(p[2:]) for p in purposes],
                rows=rows,
            )

        if self.attempt("register_dataset", expected, call):
            dataset_id = len(self.datasets) + 1
            self.datasets[dataset_id] = DatasetModel(
                who, commitment, schema, classification, policy, rows, self.chain.block_number, list(purposes)
            )
            self.owned[who].append(dataset_id)
            self.touched.add(dataset_id)

    @rule(
        member=st.integers(0, 4),
        commitment=st.sampled_from([h("a"), h("b")]),
        purposes=st.lists(st.sampled_from(PURPOSES), min_size=1, max_size=3, unique=True),
    )
    def register_valid(self, member: int, commitment: str, purposes: list[str]) -> None:
        """A well-formed registration by a member or the admin (revoked ones are still refused), so that
        examples hold enough datasets for the other rules to work on."""
        self.register_dataset(member, commitment, h("schema"), None, purposes, 303, True)

    @rule(actor=actors, pick=targets, owner=as_owner, commitment=hashes, rows=rows_values)
    def update_commitment(self, actor: int, pick: int, owner: str, commitment: str, rows: int) -> None:
        actor, dataset_id = self.choose(actor, pick, owner)
        expected = self.owner_refusal(actor, dataset_id) or self.active_refusal(dataset_id)
        if expected is None:
            d = self.datasets[dataset_id]
            if commitment == ZERO_HASH:
                expected = ZERO_COMMITMENT
            elif rows == 0:
                expected = ZERO_ROWS
            elif commitment == d.commitment and rows == d.rows:
                expected = COMMITMENT_UNCHANGED
        call = self.reg(actor).update_commitment
        if self.attempt("update_commitment", expected, call, dataset_id, commitment=commitment, rows=rows):
            self.datasets[dataset_id].commitment = commitment
            self.datasets[dataset_id].rows = rows

    @rule(actor=actors, pick=targets, owner=as_owner, purposes=purpose_lists, via_client=st.booleans())
    def set_purposes(self, actor: int, pick: int, owner: str, purposes: list[str], via_client: bool) -> None:
        actor, dataset_id = self.choose(actor, pick, owner)
        expected: Refusal | None
        if via_client and not client_accepts(purposes):
            expected = CLIENT_REFUSES
        else:
            expected = self.owner_refusal(actor, dataset_id) or self.active_refusal(dataset_id)
            if expected is None:
                if purposes == self.datasets[dataset_id].purposes:
                    expected = PURPOSES_UNCHANGED
                else:
                    expected = purposes_refusal(purposes)

        def call() -> Any:
            if not via_client:
                return self.raw(actor, "set_purposes", dataset_id, purposes)
            return self.reg(actor).set_purposes(dataset_id, [bytes.fromhex(p[2:]) for p in purposes])

        if self.attempt("set_purposes", expected, call):
            self.datasets[dataset_id].purposes = list(purposes)

    @rule(actor=actors, pick=targets, owner=as_owner, subject=subjects)
    def record_erasure(self, actor: int, pick: int, owner: str, subject: str) -> None:
        actor, dataset_id = self.choose(actor, pick, owner)
        self.touched_subjects.add((dataset_id, subject))
        # Allowed on revoked datasets too: erasure requests outlive a dataset's use.
        expected = self.owner_refusal(actor, dataset_id)
        if expected is None:
            if subject == ZERO_HASH:
                expected = ZERO_SUBJECT
            elif subject in self.datasets[dataset_id].erased:
                expected = ALREADY_ERASED
        if self.attempt("record_erasure", expected, self.reg(actor).record_erasure, dataset_id, subject):
            self.datasets[dataset_id].erased.append(subject)

    @rule(actor=actors, pick=targets, owner=st.sampled_from(["active", "any", "random"]))
    def revoke_dataset(self, actor: int, pick: int, owner: str) -> None:
        actor, dataset_id = self.choose(actor, pick, owner)
        expected = self.owner_refusal(actor, dataset_id) or self.active_refusal(dataset_id)
        if self.attempt("revoke_dataset", expected, self.reg(actor).revoke_dataset, dataset_id):
            self.datasets[dataset_id].status = DatasetStatus.REVOKED

    @rule(actor=actors, pick=targets, owner=as_owner)
    def use_dataset(self, actor: int, pick: int, owner: str) -> None:
        """A training commitment naming the dataset, in a task whose purpose is TRAINING."""
        actor, dataset_id = self.choose(actor, pick, owner)
        who = self.addresses[actor]
        if who in self.task_committed:
            self.next_task_round()
        expected: Refusal | None = None
        d = self.datasets.get(dataset_id)
        if who not in self.trainers:
            expected = NOT_TRAINER
        elif d is None or d.owner != who:
            expected = NOT_OWNED
        elif d.status is not DatasetStatus.ACTIVE or PURPOSES[0] not in d.purposes:
            expected = PURPOSE_REFUSED
        call = self.task.as_(self.accounts[actor]).commit_update
        if self.attempt("commit_update", expected, call, self.task_round, h(f"u-{who}"), 10, dataset_id=dataset_id):
            self.task_committed.add(who)

    @rule(member=st.integers(0, 3))
    def train_on_own_dataset(self, member: int) -> None:
        """A trainer registers a dataset that allows training and commits an update naming it: the path an honest
        member takes, drawn often enough that every run exercises a commitment the registry allows."""
        who = self.addresses[member]
        usable = [
            i
            for i in self.owned[who]
            if self.datasets[i].status is DatasetStatus.ACTIVE and PURPOSES[0] in self.datasets[i].purposes
        ]
        if not usable:
            before = len(self.datasets)
            self.register_dataset(member, h(f"own-{member}"), h("schema"), None, [PURPOSES[0]], 303, True)
            if len(self.datasets) == before:
                return  # refused: a revoked member (the model checked the refusal)
            usable = [len(self.datasets)]
        self.use_dataset(member, usable[0], "random")

    def next_task_round(self) -> None:
        # The task needs more commitments than there are members: closing after the deadline always
        # aborts, so the next round opens and every member may commit again.
        self.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
        admin = self.task.as_(self.ledger.admin)
        admin.close_commits(self.task_round)
        self.task_round = admin.open_round()
        self.task_committed.clear()

    @rule(member=st.integers(0, 3))
    def revoke_member(self, member: int) -> None:
        target = self.addresses[member]
        if target in self.revoked or len(self.revoked) >= MAX_REVOKED:
            return
        self.ledger.consortium.as_(self.ledger.admin).propose_revoke(target)
        self.revoked[target] = self.chain.block_number
        self.active.discard(target)
        self.trainers.discard(target)
        self.actions["member revoked"] += 1

    # -- invariants ---------------------------------------------------------------

    def check_dataset(self, dataset_id: int) -> None:
        """One dataset's record, listing and consent views against the model."""
        reg = self.registry
        d = self.datasets[dataset_id]
        info = reg.dataset(dataset_id)
        assert info.owner == d.owner
        assert info.status is d.status
        assert (info.commitment, info.rows) == (d.commitment, d.rows)
        assert (info.schema_hash, info.classification_hash, info.policy_hash) == (
            d.schema_hash,
            d.classification_hash,
            d.policy_hash,
        )
        assert info.registered_at == d.registered_at
        assert info.erasures == len(d.erased)
        # A revoked dataset lists no purpose, and allows none.
        assert list(info.purposes) == (d.purposes if d.status is DatasetStatus.ACTIVE else [])
        assert reg.allows(dataset_id, bytes.fromhex(PURPOSES[0][2:])) is (
            d.status is DatasetStatus.ACTIVE and PURPOSES[0] in d.purposes
        )
        # Write-once fields never change; a revocation is never undone.
        once = (info.owner, info.schema_hash, info.classification_hash, info.policy_hash, info.registered_at)
        assert self.written.setdefault(dataset_id, once) == once, f"dataset {dataset_id} rewrote its record"
        if info.status is DatasetStatus.REVOKED:
            self.revoked_seen.add(dataset_id)
        assert dataset_id not in self.revoked_seen or info.status is DatasetStatus.REVOKED, "revocation undone"
        assert reg.datasets_of(d.owner) == self.owned[d.owner]

    @invariant()
    def chain_matches_model(self) -> None:
        # Each step reads back what it acted on (eth_calls are what a step costs); teardown reads back
        # everything, so a change to a dataset no call named still fails the example.
        reg = self.registry
        assert reg.dataset_count == len(self.datasets)
        for dataset_id in sorted(self.touched):
            if dataset_id in self.datasets:
                self.check_dataset(dataset_id)
        for dataset_id, subject in self.touched_subjects:
            d = self.datasets.get(dataset_id)
            assert reg.is_erased(dataset_id, subject) is (d is not None and subject in d.erased)
            if d is not None and subject in d.erased:
                self.erased_seen.add((dataset_id, subject))
        unknown = len(self.datasets) + 1
        with pytest.raises(InvalidArgument) as refused:
            reg.dataset(unknown)
        assert refused.value.reason == UNKNOWN[1]
        assert reg.owner_of(unknown) == "0x" + "00" * 20
        assert not reg.allows(unknown, bytes.fromhex(PURPOSES[0][2:]))
        self.touched.clear()
        self.touched_subjects.clear()

    def check_everything(self) -> None:
        reg = self.registry
        for dataset_id in self.datasets:
            self.check_dataset(dataset_id)
            d = self.datasets[dataset_id]
            for p in PURPOSES[1:]:
                assert reg.allows(dataset_id, bytes.fromhex(p[2:])) is (
                    d.status is DatasetStatus.ACTIVE and p in d.purposes
                )
            for subject in SUBJECTS:
                assert reg.is_erased(dataset_id, subject) is (subject in d.erased)
        for who, ids in self.owned.items():
            assert reg.datasets_of(who) == ids
        for dataset_id, subject in self.erased_seen:
            assert reg.is_erased(dataset_id, subject), "an erasure record disappeared"
        assert not reg.allows(0, bytes.fromhex(PURPOSES[0][2:]))

    @invariant()
    def only_active_owners_act(self) -> None:
        events = self.registry.events(from_block=self.events_from)
        for e in self.ledger.consortium.events(from_block=self.events_from):
            if isinstance(e, MemberRevoked):
                assert self.revoked.get(e.member) == e.block_number
        self.events_from = self.chain.block_number + 1
        for e in events:
            assert isinstance(e, DatasetRegistered | DatasetUpdated | PurposesChanged | SubjectErased | DatasetRevoked)
            sender = self.chain.w3.eth.get_transaction(e.tx_hash)["from"]
            assert sender == self.datasets[e.dataset_id].owner, f"{sender} acted on another's dataset: {e}"
            assert sender in self.addresses[:5], f"an outsider acted: {e}"
            if sender in self.revoked:
                assert e.block_number < self.revoked[sender], f"revoked {sender} acted: {e}"
            if isinstance(e, DatasetUpdated | PurposesChanged | DatasetRevoked):
                # Nothing but erasures touches a dataset after its revocation (the revocation is its last change).
                assert e.dataset_id not in self.revoked_at, f"a revoked dataset changed: {e}"
            if isinstance(e, DatasetRevoked):
                self.revoked_at[e.dataset_id] = e.block_number


def test_registry_machine_invariants(own_ledger: Ledger) -> None:
    ledger = own_ledger
    registry = DataRegistryClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address)
    params = replace(
        DEFAULT_PARAMS,
        min_commitments=128,  # rounds never reach it: they abort, and a new one opens, whenever needed
        data_registry=registry.address,
        purpose=PURPOSES[0],
    )
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    run_machine(
        lambda: RegistryMachine(ledger, registry, task),
        max_examples=20,
        reached=(
            "register_dataset ok",
            "update_commitment ok",
            "set_purposes ok",
            "record_erasure ok",
            "revoke_dataset ok",
            "commit_update ok",
            "commit_update refused",
        ),
    )
