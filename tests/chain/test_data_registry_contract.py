"""DataRegistry contract: every state-changing function, its success and its refusals, on the
embedded chain and on anvil.

Each refusal asserts the typed error, the contract's exact revert string, and that the chain
did not move. Refusals the client already catches (empty or duplicate purposes, zero ids) are
sent raw as well, so the contract's own check is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from conftest import Ledger, h, refused
from fedledger.chain import Role
from fedledger.chain.encoding import ZERO_HASH, as_bytes32, hex32
from fedledger.chain.events import (
    DatasetRegistered,
    DatasetRevoked,
    DatasetUpdated,
    PurposesChanged,
    SubjectErased,
)
from fedledger.chain.registry import (
    MAX_PURPOSES,
    DataRegistryClient,
    DatasetInfo,
    DatasetStatus,
    purpose_id,
)
from fedledger.exceptions import BadInput, InvalidArgument, InvalidState, NotAuthorized

TRAINING = "model-training:heart-disease"
RESEARCH = "research:cardiology"
MARKETING = "marketing"


# -- fixtures and helpers ----------------------------------------------------------------


@dataclass
class Registry:
    ledger: Ledger
    client: DataRegistryClient  # acting as the admin

    def of(self, account: LocalAccount) -> DataRegistryClient:
        return self.client.as_(account)

    def member(self, i: int) -> DataRegistryClient:
        return self.of(self.ledger.members[i])


@pytest.fixture(scope="session")
def registry_address(deployed: Ledger) -> str:
    return DataRegistryClient.deploy(deployed.chain, deployed.admin, deployed.consortium.address).address


@pytest.fixture
def reg(ledger: Ledger, registry_address: str) -> Registry:
    return Registry(ledger, DataRegistryClient(ledger.chain, registry_address, ledger.admin))


@dataclass(frozen=True)
class RegistryState:
    block: int
    count: int
    datasets: tuple[DatasetInfo, ...]


def state_of(reg: Registry) -> RegistryState:
    """Enough to see any change: no new block means nothing at all was written."""
    count = reg.client.dataset_count
    return RegistryState(
        block=reg.ledger.chain.block_number,
        count=count,
        datasets=tuple(reg.client.dataset(i) for i in range(1, count + 1)),
    )


def fields(tag: str = "a", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "commitment": h(f"rows-{tag}"),
        "schema_hash": h(f"schema-{tag}"),
        "classification_hash": h(f"classification-{tag}"),
        "policy_hash": h(f"policy-{tag}"),
        "purposes": [TRAINING, RESEARCH],
        "rows": 303,
    }
    values.update(overrides)
    return values


def register(reg: Registry, i: int = 0, tag: str = "a", **overrides: Any) -> int:
    return reg.member(i).register_dataset(**fields(tag, **overrides))


def raw(reg: Registry, account: LocalAccount, function: str, *args: Any) -> Any:
    """Send a call the client would refuse, straight to the contract."""
    fn = getattr(reg.client.contract.functions, function)(*args)
    return reg.ledger.chain.transact(account, fn)


def events_since(reg: Registry, block: int) -> list[Any]:
    return reg.client.events(from_block=block + 1)


def revoke_member(reg: Registry, i: int) -> None:
    reg.ledger.consortium.as_(reg.ledger.admin).propose_revoke(reg.ledger.members[i].address)


def pid(name: str) -> str:
    return hex32(purpose_id(name))


# -- deployment ------------------------------------------------------------------------------


def test_deploy_binds_the_consortium(reg: Registry) -> None:
    assert reg.client.consortium_address == reg.ledger.consortium.address
    assert reg.client.dataset_count == 0


def test_deploy_refused_for_non_admin(reg: Registry) -> None:
    chain = reg.ledger.chain
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not an admin",
        DataRegistryClient.deploy,
        chain,
        reg.ledger.members[0],
        reg.ledger.consortium.address,
    )


def test_deploy_refused_for_zero_consortium(reg: Registry) -> None:
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: zero consortium address",
        reg.ledger.chain.deploy,
        reg.ledger.admin,
        "DataRegistry",
        "0x" + "00" * 20,
    )


# -- register_dataset -----------------------------------------------------------------------------


def test_register_dataset(reg: Registry) -> None:
    block = reg.ledger.chain.block_number
    owner = reg.ledger.members[0].address
    first = register(reg, 0, "a")
    second = register(reg, 0, "b", purposes=[TRAINING], rows=7)
    other = register(reg, 1, "c")
    assert (first, second, other) == (1, 2, 3)
    info = reg.client.dataset(first)
    assert info.owner == owner
    assert info.status is DatasetStatus.ACTIVE and info.active
    assert info.commitment == h("rows-a") and info.schema_hash == h("schema-a")
    assert info.classification_hash == h("classification-a") and info.policy_hash == h("policy-a")
    assert info.rows == 303 and info.erasures == 0
    assert info.registered_at > block
    assert info.purposes == (pid(TRAINING), pid(RESEARCH))
    assert reg.client.datasets_of(owner) == [1, 2]
    assert reg.client.datasets_of(reg.ledger.members[1].address) == [3]
    assert reg.client.datasets_of(reg.ledger.outsider.address) == []
    assert reg.client.dataset_count == 3
    (event, *_rest) = events_since(reg, block)
    assert isinstance(event, DatasetRegistered)
    assert (event.dataset_id, event.owner, event.commitment, event.rows) == (1, owner, h("rows-a"), 303)
    assert event.purposes == (pid(TRAINING), pid(RESEARCH))
    assert [type(e) for e in events_since(reg, block)] == [DatasetRegistered] * 3


def test_admin_may_register_as_a_member(reg: Registry) -> None:
    assert reg.client.register_dataset(**fields("admin")) == 1


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("commitment", "registry: zero commitment"),
        ("schema_hash", "registry: zero schema hash"),
        ("classification_hash", "registry: zero classification hash"),
        ("policy_hash", "registry: zero policy hash"),
    ],
)
def test_register_refuses_zero_hashes(reg: Registry, field: str, reason: str) -> None:
    refused(
        lambda: state_of(reg), InvalidArgument, reason, reg.member(0).register_dataset, **fields(**{field: ZERO_HASH})
    )


def test_register_refuses_zero_rows(reg: Registry) -> None:
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: zero rows", reg.member(0).register_dataset, **fields(rows=0)
    )


def test_register_refuses_outsider_and_revoked_member(reg: Registry) -> None:
    reason = "registry: caller is not an active member"
    refused(lambda: state_of(reg), NotAuthorized, reason, reg.of(reg.ledger.outsider).register_dataset, **fields())
    revoke_member(reg, 2)
    refused(lambda: state_of(reg), NotAuthorized, reason, reg.member(2).register_dataset, **fields())


def _raw_register(reg: Registry, purposes: list[bytes]) -> Any:
    f = fields()
    args = [as_bytes32(f[k]) for k in ("commitment", "schema_hash", "classification_hash", "policy_hash")]
    return raw(reg, reg.ledger.members[0], "register_dataset", *args, purposes, 5)


def test_register_refuses_bad_purposes_on_chain(reg: Registry) -> None:
    training = purpose_id(TRAINING)
    refused(lambda: state_of(reg), InvalidArgument, "registry: empty purposes", _raw_register, reg, [])
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: zero purpose", _raw_register, reg, [training, b"\x00" * 32]
    )
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: duplicate purpose", _raw_register, reg, [training, training]
    )


def test_register_refuses_bad_purposes_in_client(reg: Registry) -> None:
    client = reg.member(0)
    for purposes in ([], [TRAINING, TRAINING], ["Model Training"], ["x" * 200], [b"\x00" * 32], TRAINING):
        refused(lambda: state_of(reg), BadInput, None, client.register_dataset, **fields(purposes=purposes))
    too_many = [f"purpose-{i}" for i in range(MAX_PURPOSES + 1)]
    refused(lambda: state_of(reg), BadInput, None, client.register_dataset, **fields(purposes=too_many))
    refused(lambda: state_of(reg), BadInput, None, client.register_dataset, **fields(commitment="0x1234"))
    refused(lambda: state_of(reg), BadInput, None, client.register_dataset, **fields(rows=-1))


def test_register_accepts_the_most_purposes(reg: Registry) -> None:
    names = [f"purpose-{i}" for i in range(MAX_PURPOSES)]
    dataset_id = register(reg, purposes=names)
    assert all(reg.client.allows(dataset_id, n) for n in names)


def test_client_without_account_refuses_to_send(reg: Registry) -> None:
    reader = DataRegistryClient(reg.ledger.chain, reg.client.address)
    refused(lambda: state_of(reg), BadInput, None, reader.register_dataset, **fields())


# -- update_commitment ---------------------------------------------------------------------------


def test_update_commitment(reg: Registry) -> None:
    dataset_id = register(reg)
    block = reg.ledger.chain.block_number
    reg.member(0).update_commitment(dataset_id, commitment=h("rows-a2"), rows=300)
    info = reg.client.dataset(dataset_id)
    assert (info.commitment, info.rows) == (h("rows-a2"), 300)
    assert events_since(reg, block) == [
        DatasetUpdated(
            contract=reg.client.address,
            block_number=reg.ledger.chain.block_number,
            tx_hash=events_since(reg, block)[0].tx_hash,
            log_index=0,
            dataset_id=dataset_id,
            old_commitment=h("rows-a"),
            commitment=h("rows-a2"),
            rows=300,
        )
    ]
    # Same root with a new row count (rows erased from the count only) is a change too.
    reg.member(0).update_commitment(dataset_id, commitment=h("rows-a2"), rows=299)


def test_update_commitment_refusals(reg: Registry) -> None:
    dataset_id = register(reg)
    owner = reg.member(0)
    refused(
        lambda: state_of(reg),
        InvalidState,
        "registry: commitment unchanged",
        owner.update_commitment,
        dataset_id,
        commitment=h("rows-a"),
        rows=303,
    )
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: zero commitment",
        owner.update_commitment,
        dataset_id,
        commitment=ZERO_HASH,
        rows=3,
    )
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: zero rows",
        owner.update_commitment,
        dataset_id,
        commitment=h("x"),
        rows=0,
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not the dataset owner",
        reg.member(1).update_commitment,
        dataset_id,
        commitment=h("x"),
        rows=3,
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not an active member",
        reg.of(reg.ledger.outsider).update_commitment,
        dataset_id,
        commitment=h("x"),
        rows=3,
    )
    for unknown in (0, dataset_id + 1):
        refused(
            lambda: state_of(reg),
            InvalidArgument,
            "registry: dataset id out of range",
            owner.update_commitment,
            unknown,
            commitment=h("x"),
            rows=3,
        )
    owner.revoke_dataset(dataset_id)
    refused(
        lambda: state_of(reg),
        InvalidState,
        "registry: dataset revoked",
        owner.update_commitment,
        dataset_id,
        commitment=h("x"),
        rows=3,
    )


# -- set_purposes --------------------------------------------------------------------------------


def test_set_purposes_withdraws_and_grants_consent(reg: Registry) -> None:
    dataset_id = register(reg)
    assert reg.client.allows(dataset_id, TRAINING) and reg.client.allows(dataset_id, RESEARCH)
    block = reg.ledger.chain.block_number
    reg.member(0).set_purposes(dataset_id, [RESEARCH, MARKETING])
    assert not reg.client.allows(dataset_id, TRAINING)
    assert reg.client.allows(dataset_id, RESEARCH) and reg.client.allows(dataset_id, MARKETING)
    assert reg.client.dataset(dataset_id).purposes == (pid(RESEARCH), pid(MARKETING))
    (event,) = events_since(reg, block)
    assert isinstance(event, PurposesChanged)
    assert event.old_purposes == (pid(TRAINING), pid(RESEARCH))
    assert event.purposes == (pid(RESEARCH), pid(MARKETING))
    # The same purposes in another order are a change of record, and still allowed.
    reg.member(0).set_purposes(dataset_id, [MARKETING, RESEARCH])
    assert reg.client.allows(dataset_id, RESEARCH)


def test_set_purposes_refusals(reg: Registry) -> None:
    dataset_id = register(reg)
    owner = reg.member(0)
    refused(
        lambda: state_of(reg),
        InvalidState,
        "registry: purposes unchanged",
        owner.set_purposes,
        dataset_id,
        [TRAINING, RESEARCH],
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not the dataset owner",
        reg.member(1).set_purposes,
        dataset_id,
        [TRAINING],
    )
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: dataset id out of range", owner.set_purposes, 99, [TRAINING]
    )
    training = purpose_id(TRAINING)
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: empty purposes",
        raw,
        reg,
        reg.ledger.members[0],
        "set_purposes",
        dataset_id,
        [],
    )
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: duplicate purpose",
        raw,
        reg,
        reg.ledger.members[0],
        "set_purposes",
        dataset_id,
        [training, training],
    )
    refused(lambda: state_of(reg), BadInput, None, owner.set_purposes, dataset_id, [])
    revoke_member(reg, 0)
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not an active member",
        owner.set_purposes,
        dataset_id,
        [TRAINING],
    )


def test_set_purposes_refused_on_revoked_dataset(reg: Registry) -> None:
    dataset_id = register(reg)
    reg.member(0).revoke_dataset(dataset_id)
    refused(
        lambda: state_of(reg),
        InvalidState,
        "registry: dataset revoked",
        reg.member(0).set_purposes,
        dataset_id,
        [MARKETING],
    )


# -- record_erasure --------------------------------------------------------------------------------


def test_record_erasure(reg: Registry) -> None:
    dataset_id = register(reg)
    block = reg.ledger.chain.block_number
    reg.member(0).record_erasure(dataset_id, h("subject-1"))
    reg.member(0).record_erasure(dataset_id, h("subject-2"))
    assert reg.client.is_erased(dataset_id, h("subject-1"))
    assert not reg.client.is_erased(dataset_id, h("subject-3"))
    assert reg.client.dataset(dataset_id).erasures == 2
    events = events_since(reg, block)
    assert [(e.dataset_id, e.subject_hash, e.erasures) for e in events if isinstance(e, SubjectErased)] == [
        (dataset_id, h("subject-1"), 1),
        (dataset_id, h("subject-2"), 2),
    ]


def test_record_erasure_on_revoked_dataset(reg: Registry) -> None:
    dataset_id = register(reg)
    reg.member(0).revoke_dataset(dataset_id)
    reg.member(0).record_erasure(dataset_id, h("subject-1"))
    assert reg.client.dataset(dataset_id).erasures == 1


def test_record_erasure_refusals(reg: Registry) -> None:
    dataset_id = register(reg)
    owner = reg.member(0)
    owner.record_erasure(dataset_id, h("subject-1"))
    refused(
        lambda: state_of(reg),
        InvalidState,
        "registry: subject already erased",
        owner.record_erasure,
        dataset_id,
        h("subject-1"),
    )
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: zero subject hash",
        owner.record_erasure,
        dataset_id,
        ZERO_HASH,
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not the dataset owner",
        reg.member(1).record_erasure,
        dataset_id,
        h("subject-2"),
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not an active member",
        reg.of(reg.ledger.outsider).record_erasure,
        dataset_id,
        h("subject-2"),
    )
    refused(
        lambda: state_of(reg),
        InvalidArgument,
        "registry: dataset id out of range",
        owner.record_erasure,
        0,
        h("subject-2"),
    )
    refused(lambda: state_of(reg), BadInput, None, owner.record_erasure, dataset_id, "0xnothex")


# -- revoke_dataset ---------------------------------------------------------------------------------


def test_revoke_dataset(reg: Registry) -> None:
    dataset_id = register(reg)
    block = reg.ledger.chain.block_number
    reg.member(0).revoke_dataset(dataset_id)
    info = reg.client.dataset(dataset_id)
    assert info.status is DatasetStatus.REVOKED and not info.active
    assert info.purposes == () and not info.allows(TRAINING)
    assert not reg.client.allows(dataset_id, TRAINING)
    assert reg.client.datasets_of(reg.ledger.members[0].address) == [dataset_id]
    (event,) = events_since(reg, block)
    assert isinstance(event, DatasetRevoked)
    assert (event.dataset_id, event.owner) == (dataset_id, reg.ledger.members[0].address)


def test_revoke_dataset_refusals(reg: Registry) -> None:
    dataset_id = register(reg)
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not the dataset owner",
        reg.member(1).revoke_dataset,
        dataset_id,
    )
    refused(
        lambda: state_of(reg),
        NotAuthorized,
        "registry: caller is not the dataset owner",
        reg.client.revoke_dataset,
        dataset_id,
    )
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: dataset id out of range", reg.member(0).revoke_dataset, 5
    )
    reg.member(0).revoke_dataset(dataset_id)
    refused(lambda: state_of(reg), InvalidState, "registry: dataset revoked", reg.member(0).revoke_dataset, dataset_id)


# -- views -----------------------------------------------------------------------------------------


def test_views(reg: Registry) -> None:
    dataset_id = register(reg, purposes=[TRAINING])
    assert reg.client.allows(dataset_id, TRAINING)
    assert reg.client.allows(dataset_id, purpose_id(TRAINING))
    assert not reg.client.allows(dataset_id, MARKETING)
    assert not reg.client.allows(dataset_id + 1, TRAINING)  # unknown datasets allow nothing
    refused(
        lambda: state_of(reg), InvalidArgument, "registry: dataset id out of range", reg.client.dataset, dataset_id + 1
    )
    assert reg.client.dataset(dataset_id).allows(TRAINING)
    assert reg.client.owner_of(dataset_id) == reg.ledger.members[0].address
    assert reg.client.owner_of(dataset_id + 1) == "0x" + "00" * 20
    assert reg.client.dataset(dataset_id).to_json()["status"] == "active"
    with pytest.raises(BadInput):
        reg.client.allows(dataset_id, "Not A Purpose")


def test_purpose_ids_are_keccak_of_the_name() -> None:
    from eth_utils import keccak

    assert purpose_id(TRAINING) == keccak(b"model-training:heart-disease")
    assert purpose_id(purpose_id(TRAINING)) == purpose_id(TRAINING)


def test_member_role_does_not_matter_only_membership(reg: Registry) -> None:
    reg.ledger.consortium.as_(reg.ledger.admin).propose_roles(reg.ledger.members[3].address, Role.AUDITOR)
    assert register(reg, 3) == 1
