"""TrainingTask provenance: commitments name their dataset (checked against the DataRegistry:
owned by the committer, allowing the task's purpose) and declare the committer's cumulative
privacy spend (never decreasing, never above the task's budget).

Every refusal asserts the typed error, the exact revert string and that the chain did not move.
Embedded backend for all of them; one test runs the new paths on anvil as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest

from conftest import DEFAULT_PARAMS, Ledger, h, refused
from fedledger.chain import Phase, TrainingTaskClient
from fedledger.chain.encoding import hex32
from fedledger.chain.events import UpdateCommitted
from fedledger.chain.registry import DataRegistryClient, purpose_id
from fedledger.chain.task import ZERO_ADDRESS
from fedledger.exceptions import (
    BadInput,
    InvalidArgument,
    NotAuthorized,
    PrivacyBudgetExceeded,
    PrivacyBudgetRefused,
    PurposeNotAllowed,
    PurposeRefused,
    exit_code_for,
)

PURPOSE = "model-training:breast-cancer-diagnosis"
BUDGET = 4_000_000  # micro-epsilon: epsilon 4


@dataclass
class Provenance:
    ledger: Ledger
    registry: DataRegistryClient
    task: TrainingTaskClient
    own: list[int]  # member i's dataset, allowing PURPOSE
    other_purpose: int  # member 0's dataset allowing only another purpose
    revoked: int  # member 1's revoked dataset (it allowed PURPOSE)

    def member(self, i: int) -> TrainingTaskClient:
        return self.task.as_(self.ledger.members[i])


def _register(registry: DataRegistryClient, purposes: list[str], tag: str) -> int:
    return registry.register_dataset(
        commitment=h(f"rows-{tag}"),
        schema_hash=h("schema"),
        classification_hash=h("classification"),
        policy_hash=h("policy"),
        purposes=purposes,
        rows=100,
    )


@pytest.fixture(scope="module")
def deployed_provenance(deployed: Ledger) -> Provenance:
    """A registry with datasets and a task checking them, deployed once per backend (before any snapshot)."""
    chain, admin = deployed.chain, deployed.admin
    registry = DataRegistryClient.deploy(chain, admin, deployed.consortium.address)
    own = [_register(registry.as_(m), [PURPOSE, "research"], f"own-{i}") for i, m in enumerate(deployed.members)]
    other = _register(registry.as_(deployed.members[0]), ["marketing"], "other")
    revoked = _register(registry.as_(deployed.members[1]), [PURPOSE], "revoked")
    registry.as_(deployed.members[1]).revoke_dataset(revoked)
    params = replace(
        DEFAULT_PARAMS, data_registry=registry.address, purpose=hex32(purpose_id(PURPOSE)), privacy_budget=BUDGET
    )
    task = TrainingTaskClient.deploy(chain, admin, deployed.consortium.address, params)
    return Provenance(deployed, registry, task, own, other, revoked)


@pytest.fixture
def prov(deployed_provenance: Provenance, request: pytest.FixtureRequest) -> Iterator[Provenance]:
    chain = deployed_provenance.ledger.chain
    # The anvil backend's parameter carries the `anvil` mark for every test; the function's own mark picks one.
    own_marks = {m.name for m in getattr(request.function, "pytestmark", [])}
    if chain.kind != "embedded" and "anvil" not in own_marks:
        pytest.skip("embedded backend only: test_provenance_on_every_backend covers anvil")
    snapshot = chain.snapshot()
    try:
        yield deployed_provenance
    finally:
        chain.revert(snapshot)


def state_of(p: Provenance) -> tuple[Any, ...]:
    task, members = p.task, p.ledger.members
    current = task.current_round
    return (
        p.ledger.chain.block_number,
        current,
        task.round(current),
        task.updates(current),
        [task.privacy_spent(m.address) for m in members],
    )


def commit_refused(
    p: Provenance,
    member: int,
    r: int,
    dataset_id: int,
    error: type[Exception],
    reason: str,
    *,
    epsilon_micro: int = 1,
    update: str = "u",
    examples: int = 10,
) -> Any:
    """``member`` commits an update for ``dataset_id`` in round ``r``: refused with ``error`` and ``reason``, nothing
    changed."""
    return refused(
        lambda: state_of(p),
        error,
        reason,
        p.member(member).commit_update,
        r,
        h(update),
        examples,
        dataset_id=dataset_id,
        epsilon_micro=epsilon_micro,
    )


# -- constructor ----------------------------------------------------------------------


def test_task_params_round_trip(prov: Provenance) -> None:
    params = prov.task.params()
    assert params.data_registry == prov.registry.address
    assert params.purpose == hex32(purpose_id(PURPOSE))
    assert params.privacy_budget == BUDGET
    # A task created without them keeps the old behaviour: zero registry, purpose and budget.
    plain = prov.ledger.task.params()
    assert (plain.data_registry, plain.privacy_budget) == (ZERO_ADDRESS, 0)


def test_registry_without_purpose_refused(prov: Provenance) -> None:
    ledger = prov.ledger
    block = ledger.chain.block_number
    params = replace(DEFAULT_PARAMS, data_registry=prov.registry.address)
    with pytest.raises(InvalidArgument) as info:
        TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    assert info.value.reason == "task: zero purpose"
    assert ledger.chain.block_number == block


def test_malformed_provenance_arguments_are_bad_input(prov: Provenance) -> None:
    ledger = prov.ledger
    with pytest.raises(BadInput, match="malformed data registry address"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, data_registry="0x12")
        )
    with pytest.raises(BadInput, match="malformed privacy budget"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(DEFAULT_PARAMS, privacy_budget=-1)
        )
    r = prov.member(0).open_round()
    before = state_of(prov)
    with pytest.raises(BadInput, match="malformed dataset id"):
        prov.member(0).commit_update(r, h("u"), 10, dataset_id=-1, epsilon_micro=1)
    with pytest.raises(BadInput, match="malformed declared micro-epsilon"):
        prov.member(0).commit_update(r, h("u"), 10, dataset_id=prov.own[0], epsilon_micro=2**256)
    assert state_of(prov) == before


# -- commit_update ---------------------------------------------------------------------


def test_commit_records_dataset_and_spend(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    block = prov.ledger.chain.block_number
    assert prov.member(2).commit_update(r, h("a"), 120, dataset_id=prov.own[2], epsilon_micro=1_250_000) == 0
    assert prov.member(0).commit_update(r, h("b"), 80, dataset_id=prov.own[0], epsilon_micro=BUDGET) == 1
    updates = prov.task.updates(r)
    assert [(u.member, u.dataset_id, u.epsilon_micro) for u in updates] == [
        (prov.ledger.members[2].address, prov.own[2], 1_250_000),
        (prov.ledger.members[0].address, prov.own[0], BUDGET),
    ]
    assert updates == [prov.task.update(r, i) for i in range(2)]
    assert prov.task.privacy_spent(prov.ledger.members[2].address) == 1_250_000
    assert prov.task.privacy_spent(prov.ledger.members[0].address) == BUDGET  # exactly the budget fits
    assert prov.task.privacy_spent(prov.ledger.members[1].address) == 0
    events = [e for e in prov.task.events(from_block=block + 1) if isinstance(e, UpdateCommitted)]
    assert [(e.member, e.dataset_id, e.epsilon_micro, e.index) for e in events] == [
        (prov.ledger.members[2].address, prov.own[2], 1_250_000, 0),
        (prov.ledger.members[0].address, prov.own[0], BUDGET, 1),
    ]


def test_commit_with_another_members_dataset_refused(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    exc = commit_refused(prov, 0, r, prov.own[1], NotAuthorized, "task: dataset not owned by sender")
    assert exit_code_for(exc) == NotAuthorized.exit_code


@pytest.mark.parametrize("dataset_id", [0, 999])
def test_commit_with_unknown_dataset_refused(prov: Provenance, dataset_id: int) -> None:
    r = prov.member(0).open_round()
    commit_refused(prov, 0, r, dataset_id, NotAuthorized, "task: dataset not owned by sender")


def test_commit_for_a_purpose_the_dataset_does_not_allow_refused(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    exc = commit_refused(prov, 0, r, prov.other_purpose, PurposeRefused, "task: purpose not allowed for dataset")
    assert isinstance(exc, PurposeNotAllowed)
    assert exit_code_for(exc) == 14


def test_commit_with_a_revoked_dataset_refused(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    commit_refused(prov, 1, r, prov.revoked, PurposeRefused, "task: purpose not allowed for dataset")


def test_purpose_withdrawn_mid_task_refuses_the_next_commitment(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    prov.registry.as_(prov.ledger.members[3]).set_purposes(prov.own[3], ["research"])
    commit_refused(prov, 3, r, prov.own[3], PurposeRefused, "task: purpose not allowed for dataset")


def test_declared_spend_above_budget_refused(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    exc = commit_refused(
        prov, 0, r, prov.own[0], PrivacyBudgetRefused, "task: privacy budget exceeded", epsilon_micro=BUDGET + 1
    )
    assert isinstance(exc, PrivacyBudgetExceeded)
    assert exc.member is None and exit_code_for(exc) == 15


def _abort_round(p: Provenance, r: int) -> None:
    """Too few commitments: the round aborts once its commit deadline passed."""
    p.ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    assert p.member(0).close_commits(r) is Phase.ABORTED


def test_decreasing_spend_refused_equal_spend_accepted(prov: Provenance) -> None:
    r = prov.member(0).open_round()
    prov.member(0).commit_update(r, h("r1"), 10, dataset_id=prov.own[0], epsilon_micro=500_000)
    _abort_round(prov, r)
    r2 = prov.member(0).open_round()
    commit_refused(
        prov, 0, r2, prov.own[0], InvalidArgument, "task: privacy spend decreased", epsilon_micro=499_999, update="r2"
    )
    # Another member's spend is its own: it may declare less.
    prov.member(1).commit_update(r2, h("r2-m1"), 10, dataset_id=prov.own[1], epsilon_micro=1)
    # A round without new noise (e.g. no DP on the member's side this round) declares the same spend.
    prov.member(0).commit_update(r2, h("r2"), 10, dataset_id=prov.own[0], epsilon_micro=500_000)
    assert prov.task.privacy_spent(prov.ledger.members[0].address) == 500_000


def test_existing_checks_come_first(prov: Provenance) -> None:
    """A commitment that was already refused for an old reason keeps that reason."""
    r = prov.member(0).open_round()
    commit_refused(
        prov, 0, r, prov.other_purpose, InvalidArgument, "task: zero examples", epsilon_micro=BUDGET + 1, examples=0
    )
    refused(
        lambda: state_of(prov),
        NotAuthorized,
        "task: caller is not a trainer",
        prov.task.as_(prov.ledger.outsider).commit_update,
        r,
        h("u"),
        1,
        dataset_id=prov.own[0],
        epsilon_micro=1,
    )


def test_task_without_registry_or_budget_records_declarations_unchecked(prov: Provenance) -> None:
    ledger = prov.ledger
    r = ledger.task.as_(ledger.members[0]).open_round()
    ledger.task.as_(ledger.members[0]).commit_update(r, h("x"), 5, dataset_id=12345, epsilon_micro=10**12)
    (update,) = ledger.task.updates(r)
    assert (update.dataset_id, update.epsilon_micro) == (12345, 10**12)
    assert ledger.task.privacy_spent(ledger.members[0].address) == 0  # no budget: nothing tracked


@pytest.mark.anvil
def test_provenance_on_every_backend(prov: Provenance) -> None:
    """The new checks and the success path, on each backend (the only one run on anvil)."""
    r = prov.member(0).open_round()
    commit_refused(prov, 0, r, prov.own[1], NotAuthorized, "task: dataset not owned by sender", examples=1)
    commit_refused(prov, 0, r, prov.other_purpose, PurposeRefused, "task: purpose not allowed for dataset", examples=1)
    commit_refused(
        prov,
        0,
        r,
        prov.own[0],
        PrivacyBudgetRefused,
        "task: privacy budget exceeded",
        epsilon_micro=BUDGET + 1,
        examples=1,
    )
    prov.member(0).commit_update(r, h("u"), 1, dataset_id=prov.own[0], epsilon_micro=7)
    _abort_round(prov, r)
    r2 = prov.member(0).open_round()
    commit_refused(
        prov,
        0,
        r2,
        prov.own[0],
        InvalidArgument,
        "task: privacy spend decreased",
        epsilon_micro=6,
        update="u2",
        examples=1,
    )
    prov.member(0).commit_update(r2, h("u2"), 1, dataset_id=prov.own[0], epsilon_micro=8)
    assert prov.task.privacy_spent(prov.ledger.members[0].address) == 8
