"""Shared fixtures: the same tests run on the embedded chain and on a real anvil node.

Chain-backed fixtures are parametrized over the two backends; the anvil one is
marked ``anvil`` and skipped with its reason when no anvil binary is found
(`.ci/run` installs the pinned npm package into ``node_modules``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from fedledger.chain import Chain, ConsortiumClient, Role, TaskParams, TrainingTaskClient
from fedledger.chain.devnode import ANVIL_DEV_KEY, anvil_binary, anvil_node
from fedledger.chain.embedded import FAUCET_KEY

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
# The shared data sets live beside the checkout (``../shared/data``); tests that need them skip when absent.
SHARED_DATA = REPO.parent / "shared" / "data"

# Property tests draw the same examples on every run, so CI passes or fails on the code, not on the draw; nothing
# saved from an earlier run is replayed. `HYPOTHESIS_PROFILE=explore` searches with fresh random examples instead,
# to hunt for new counterexamples locally.
settings.register_profile("ci", derandomize=True, database=None)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
MEMBER_ROLES = Role.TRAINER | Role.VALIDATOR | Role.AGGREGATOR
N_ACCOUNTS = 8


@pytest.fixture(scope="session")
def anvil_url() -> Iterator[str]:
    binary = anvil_binary(REPO)
    if binary is None:
        pytest.skip("anvil not installed: run `npm ci` (pinned @foundry-rs/anvil-linux-amd64) or set FEDLEDGER_ANVIL")
    with anvil_node(binary) as url:
        yield url


@pytest.fixture(scope="session", params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Chain, LocalAccount]]:
    """(chain, faucet account) for each backend, once per session."""
    if request.param == "embedded":
        chain = Chain.embedded(tmp_path_factory.mktemp("embedded-chain"))
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
    else:
        chain = Chain.rpc(request.getfixturevalue("anvil_url"))
        faucet = Account.from_key(ANVIL_DEV_KEY)
    try:
        yield chain, faucet
    finally:
        chain.close()


@dataclass
class Ledger:
    """A consortium with an admin and members, and a task, on one backend."""

    chain: Chain
    admin: LocalAccount
    members: list[LocalAccount]  # trainer + validator + aggregator each
    outsider: LocalAccount  # funded, never admitted
    consortium: ConsortiumClient
    task: TrainingTaskClient
    params: TaskParams

    def member_task(self, i: int) -> TrainingTaskClient:
        return self.task.as_(self.members[i])


def h(text: str) -> str:
    """A deterministic 32-byte hash for tests."""
    import hashlib

    return "0x" + hashlib.sha256(text.encode()).hexdigest()


DEFAULT_PARAMS = TaskParams(
    config_hash=h("config"),
    initial_model=h("model-0"),
    min_commitments=2,
    commit_duration=600,
    validate_duration=600,
    aggregate_duration=600,
    acceptance_threshold=5000,
    proposal_quorum=2,
    max_rounds=0,
)


@pytest.fixture(scope="session")
def deployed(backend: tuple[Chain, LocalAccount]) -> Ledger:
    return deploy_ledger(*backend)


@pytest.fixture
def own_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A ledger on an embedded chain of its own. For the state machines: their draws follow what the chain answers,
    so on a chain shared with whatever ran before on the worker, the sequences they explore (and so their coverage
    checks) would depend on the test order."""
    chain = Chain.embedded(tmp_path / "own-chain")
    try:
        yield deploy_ledger(chain, Account.from_key(FAUCET_KEY.to_bytes()))
    finally:
        chain.close()


def deploy_ledger(chain: Chain, faucet: LocalAccount) -> Ledger:
    """Fund the test accounts, found a consortium with four members, and deploy a task with the default params."""
    accounts = [Account.from_key(h(f"fedledger-test-account-{i}-{chain.kind}")) for i in range(N_ACCOUNTS)]
    for account in accounts:
        chain.transfer(faucet, account.address, 10**21)
    admin, members, outsider = accounts[0], accounts[1:5], accounts[5]
    consortium = ConsortiumClient.deploy(chain, admin, org="Founder", roles=Role.ADMIN)
    for i, member in enumerate(members):
        consortium.propose_admit(member.address, org=f"Hospital-{i}", roles=MEMBER_ROLES)
    task = TrainingTaskClient.deploy(chain, admin, consortium.address, DEFAULT_PARAMS)
    return Ledger(chain, admin, members, outsider, consortium, task, DEFAULT_PARAMS)


@pytest.fixture
def ledger(deployed: Ledger) -> Iterator[Ledger]:
    """The deployed ledger, returned to its deployed state after each test."""
    snapshot = deployed.chain.snapshot()
    try:
        yield deployed
    finally:
        deployed.chain.revert(snapshot)


def refused(
    state: Callable[[], object],
    error: type[Exception],
    reason: str | None,
    call: Callable[..., Any],
    *args: Any,
    **kwargs: Any,
) -> Any:
    """Run ``call(*args, **kwargs)``: it must be refused with exactly ``error``, and ``state()`` (a snapshot of what
    the test cares about, the block number included where a chain is involved) must be the same afterwards.

    A contract's refusal (``error`` a :class:`ContractRevert`) must carry exactly ``reason``, the contract's revert
    string. A client's refusal before anything is sent (``BadInput``) has no revert string: ``reason`` is None, or
    text its message must contain. Returns the exception, for checks of its other fields."""
    from fedledger.exceptions import ContractRevert

    contract = issubclass(error, ContractRevert)
    assert reason is not None or not contract, f"a contract's refusal needs its reason: {error.__name__}"
    before = state()
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    exc = info.value
    assert type(exc) is error, f"{type(exc).__name__} is not {error.__name__}"
    if contract:
        assert isinstance(exc, ContractRevert)
        assert exc.reason == reason
    elif reason is not None:
        assert reason in str(exc), f"{reason!r} not in {str(exc)!r}"
    assert state() == before
    return exc


def hospital_datas(tmp_path: Path, n: int) -> list[Any]:
    """``n`` breast-cancer hospitals (Dirichlet split, seeded) as members' LocalData: each CSV loaded back,
    standardized with the combined statistics, a quarter kept for validation."""
    from fedledger.federation import LocalData
    from fedledger.learning import breast_cancer_hospitals, load_csv_dataset, train_val_split
    from fedledger.learning.data import FeatureStats, Standardizer

    split = breast_cancer_hospitals(tmp_path / "data", n_hospitals=n, alpha=1.0, seed=5)
    local = [load_csv_dataset(p, split.label_column) for p in split.hospitals]
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(d.X) for d in local))
    datas = []
    for k, d in enumerate(local):
        X_tr, y_tr, X_val, y_val = train_val_split(scaler.transform(d.X), d.y, val_fraction=0.25, seed=k)
        datas.append(LocalData(X_tr, y_tr, X_val, y_val))
    return datas


Refusal = tuple[type[Exception], str]
"""What a state machine's model expects of a refused call: its exact error class and reason."""


def attempt_call(
    chain: Chain, actions: Counter[str], name: str, expected: Refusal | None, call: Callable[[], Any]
) -> bool:
    """Run ``call``; it must succeed when ``expected`` is None, else be refused with exactly that error (the revert
    reason too, for a contract's refusal) and leave no block. Counts ``"{name} ok"`` or ``"{name} refused"`` (and
    the reason) in ``actions``; True if it succeeded."""
    from fedledger.exceptions import BadInput, ContractRevert

    block = chain.block_number
    try:
        call()
    except (ContractRevert, BadInput) as exc:
        assert expected is not None, f"{name}: unexpectedly refused: {exc!r}"
        cls, reason = expected
        assert type(exc) is cls, f"{name}: refused with {exc!r}, model expected {cls.__name__}({reason!r})"
        if isinstance(exc, ContractRevert):
            assert exc.reason == reason, f"{name}: refused with {exc.reason!r}, model expected {reason!r}"
        assert chain.block_number == block, f"{name}: a refused call changed the chain"
        actions[f"{name} refused"] += 1
        actions[f"{name} refused: {exc.reason if isinstance(exc, ContractRevert) else exc}"] += 1
        return False
    assert expected is None, f"{name}: succeeded, model expected refusal {expected!r}"
    actions[f"{name} ok"] += 1
    return True


def run_machine(make: Callable[[], Any], *, max_examples: int, reached: Sequence[str]) -> Counter[str]:
    """Run the state machine that ``make`` builds, whose instances count what they did in ``machine.actions``, and
    check that every action in ``reached`` happened at least once: a machine that only ever meets refusals proves
    little. The same examples every run, wherever it runs (derandomized, no saved examples replayed), so those
    checks cannot fail by chance in CI."""
    totals: Counter[str] = Counter()

    def factory() -> Any:
        machine = make()
        machine.actions = totals
        return machine

    run_state_machine_as_test(
        factory,
        settings=settings(
            max_examples=max_examples,
            stateful_step_count=20,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    summary = " ".join(f"{k}={v}" for k, v in sorted(totals.items()))
    print("stateful actions:", summary)
    for action in reached:
        assert totals[action] > 0, f"never {action}: {summary}"
    return totals
