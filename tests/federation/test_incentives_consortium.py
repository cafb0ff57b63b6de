"""A consortium with incentives, run as its members run it: every node stakes, measures and posts contributions,
settles rounds and slashes on its own, beside the rounds (``fedledger.federation.incentive_duties``).

Each run is a few rounds of breast-cancer hospitals on the embedded chain; the pool pays in native currency.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import hospital_datas
from fedledger.chain import IncentivesClient, Phase
from fedledger.exceptions import NotAuthorized
from fedledger.federation import Honest, LocalData, MemberNode, NodeEvent, Simulation, TaskConfig
from fedledger.federation.rules import check_update
from fedledger.federation.setup import SimulatedConsortium, attacking_members, create_consortium
from fedledger.identity.keystore import Keystore
from fedledger.learning import Params
from fedledger.workspace import Workspace

REWARD = 10**18
POOL = 10 * REWARD
STAKE = 10**16
INCENTIVES: dict[str, Any] = {
    "reward_per_round": REWARD,
    "trainer_stake": STAKE,
    "validator_stake": STAKE,
    "trainer_slash_bps": 1_000,
}


@dataclass
class Run:
    sim: SimulatedConsortium
    incentives: IncentivesClient
    events: list[NodeEvent]
    ws: Workspace

    def earned(self) -> list[int]:
        return [self.incentives.earned(node.address) for node in self.sim.nodes]

    def rewards(self) -> list[int]:
        """Every member's credits, claimed or not, from the contract's events."""
        credited = [0] * len(self.sim.nodes)
        index = {node.address.lower(): k for k, node in enumerate(self.sim.nodes)}
        for credit in self.incentives.records().credits:
            credited[index[credit.member.lower()]] += credit.amount
        return credited


def _config(rounds: int, **overrides: Any) -> TaskConfig:
    settings: dict[str, Any] = {
        "min_commitments": 2,
        "proposal_quorum": 2,
        "clip_norm": 5.0,
        "profile": "few-silos",
        "scoring": "relative",
        **INCENTIVES,
        **overrides,
    }
    return TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=rounds,
        local_epochs=2,
        **settings,
    )


def _run(
    root: Path,
    datas: Sequence[LocalData],
    behaviors: Sequence[Any],
    *,
    rounds: int,
    before: Callable[[SimulatedConsortium], None] | None = None,
    **overrides: Any,
) -> Run:
    events: list[NodeEvent] = []
    ws = Workspace.create(root, scrypt_n=2**14)
    sim = create_consortium(
        ws,
        config=_config(rounds, **overrides),
        datas=list(datas),
        password="pw",
        behaviors=list(behaviors),
        on_event=events.append,
        reward_pool=POOL,
    )
    incentives = sim.nodes[0].incentives
    assert incentives is not None
    if before is not None:
        before(sim)
    Simulation(sim.task, sim.nodes).run()
    return Run(sim, incentives.incentives, events, ws)


@contextlib.contextmanager
def _same_keys() -> Iterator[None]:
    """Every workspace derives a member's key from its name: two runs have the same members, who train the same
    updates (training is seeded by the member's address)."""
    create = Keystore.create

    def derived(self: Keystore, name: str, password: str, *, private_key: bytes | None = None) -> Any:
        return create(self, name, password, private_key=private_key or hashlib.sha256(name.encode()).digest())

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Keystore, "create", derived)
        yield


# -- a consortium with a free rider and an attacker --------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    """Three honest hospitals, a free rider (Hospital 4) and a sign-flipping attacker (Hospital 5), two rounds."""
    tmp = tmp_path_factory.mktemp("mixed")
    datas = hospital_datas(tmp, 5)
    config = _config(2)
    members, behaviors = attacking_members(datas, config, "sign-flip", 1, seed=1)
    riders, rider_behaviors = attacking_members(members[:4], config, "free-rider", 1, seed=1)
    members[:4], behaviors[:4] = riders, rider_behaviors
    run = _run(tmp / "ws", members, behaviors, rounds=2)
    yield run
    run.ws.close()


def test_every_accepted_honest_member_earns_and_the_free_rider_and_the_attacker_earn_nothing(mixed: Run) -> None:
    task, nodes = mixed.sim.task, mixed.sim.nodes
    earned = mixed.earned()
    honest = [k for k, node in enumerate(nodes) if isinstance(node.behavior, Honest)]
    assert honest == [0, 1, 2]
    accepted = {u.member for r in (1, 2) for i, u in enumerate(task.updates(r)) if task.round(r).accepted_mask >> i & 1}
    assert {nodes[k].address for k in honest} <= accepted  # every honest hospital was accepted at least once
    assert all(earned[k] > 0 for k in honest), earned
    assert earned[3] == 0 and earned[4] == 0, earned
    assert all(task.round(r).phase is Phase.FINALIZED and mixed.incentives.settled(r) for r in (1, 2))


def test_the_pool_pays_exactly_what_it_credits_and_claims_pay_out(mixed: Run) -> None:
    incentives, nodes = mixed.incentives, mixed.sim.nodes
    totals = incentives.totals()
    credited = sum(c.amount for c in incentives.records().credits)
    assert credited == totals.allocated == sum(mixed.earned()) > 0
    assert totals.allocated <= 2 * REWARD  # at most the reward per round, per settled round
    assert incentives.pool() == POOL + totals.slashed - credited
    chain = mixed.sim.task.chain
    member = nodes[0]
    owed, before, held = incentives.earned(member.address), chain.balance(member.address), incentives.holdings()
    sent = incentives.as_(member.account).claim()
    fee = sent.gas_used * int(sent.receipt["effectiveGasPrice"])
    assert incentives.earned(member.address) == 0
    assert incentives.holdings() == held - owed
    assert chain.balance(member.address) - before == owed - fee
    assert incentives.records().claims[-1].amount == owed


def test_each_member_staked_before_committing_and_the_attacker_is_slashed(mixed: Run) -> None:
    incentives, nodes = mixed.incentives, mixed.sim.nodes
    stakes = [e for e in mixed.events if e.action == "stake"]
    first_commit: dict[str, int] = {}
    for k, e in enumerate(mixed.events):
        if e.action == "commit":
            first_commit.setdefault(e.node, k)
    for node in nodes:
        staked_at = next(k for k, e in enumerate(mixed.events) if e.action == "stake" and e.node == node.name)
        assert staked_at < first_commit[node.name]
    assert len({e.node for e in stakes}) == 5
    assert all(incentives.slashed_of(node.address) == 0 for node in nodes[:4])
    attacker = nodes[4].address
    slashes = [e for e in mixed.events if e.action == "slash-trainer"]
    assert slashes and all(e.details["member"] == attacker for e in slashes)
    assert incentives.slashed_of(attacker) > 0
    assert incentives.totals().slashed == incentives.slashed_of(attacker)


def test_every_validator_that_scored_posted_its_contributions_once(mixed: Run) -> None:
    task, incentives = mixed.sim.task, mixed.incentives
    for r in (1, 2):
        posts = [e for e in mixed.events if e.action == "contribution" and e.round_id == r]
        assert len(posts) == task.round(r).num_scored == len({e.node for e in posts})
        posters = {e.node for e in posts}
        assert all(incentives.has_posted(r, node.address) == (node.name in posters) for node in mixed.sim.nodes)
    assert not [e for e in mixed.events if e.action == "contribution-missed"]
    settles = [e for e in mixed.events if e.action == "settle"]
    assert sorted(e.round_id for e in settles) == [1, 2]  # one member settled each round


# -- gaming: copies, inflated counts, split identities -----------------------------------------------------------


class CopiesAnUpdate(Honest):
    """Re-submits the update another member committed earlier in the round, as its own."""

    name = "copy"

    def __init__(self) -> None:
        self.victim: MemberNode | None = None

    def local_params(self, train: Callable[[], Params], global_params: Params, round_id: int) -> Params:
        victim = self.victim
        assert victim is not None
        original = next(u for u in victim.task.updates(round_id) if u.member == victim.address)
        spec = {k: tuple(v.shape) for k, v in global_params.items()}
        delta = check_update(victim.store, victim.config, spec, original).to_float()
        return {k: (np.asarray(global_params[k], np.float64) + delta[k]).astype(np.float32) for k in global_params}


def test_a_member_that_resubmits_a_copy_of_another_members_update_earns_nothing(tmp_path: Path) -> None:
    datas = hospital_datas(tmp_path, 4)
    copier = CopiesAnUpdate()

    def aim(sim: SimulatedConsortium) -> None:
        copier.victim = sim.nodes[1]  # steps before the copier: it commits first

    run = _run(tmp_path / "ws", datas, [None, None, None, copier], rounds=1, before=aim)
    task = run.sim.task
    updates = task.updates(1)
    own = {u.member: u.index for u in updates}
    accepted = task.round(1).accepted
    copy_index, original_index = own[run.sim.nodes[3].address], own[run.sim.nodes[1].address]
    assert copy_index in accepted and original_index in accepted  # the copy is a good update: validators pass it
    rewards = run.rewards()
    assert rewards[3] == 0, rewards
    assert rewards[1] > 0  # the original keeps its reward
    assert run.incentives.contribution_of(1, copy_index) == 0
    run.ws.close()


def test_inflating_the_declared_example_count_earns_exactly_what_training_honestly_earns(tmp_path: Path) -> None:
    with _same_keys():
        _check_inflation(tmp_path)


def _check_inflation(tmp_path: Path) -> None:
    # Exact Shapley: the inflated update's blob (its declared count is in it) has another hash, so another round
    # seed, and GTG-Shapley's sampled permutations would differ by their Monte-Carlo error alone.
    datas = hospital_datas(tmp_path, 4)
    config = _config(1, contribution_method="exact-shapley")
    honest = _run(tmp_path / "honest", datas, [None] * 4, rounds=1, contribution_method="exact-shapley")
    inflated_datas, behaviors = attacking_members(datas, config, "count-inflation", 1, seed=1)
    inflated = _run(tmp_path / "inflated", inflated_datas, behaviors, rounds=1, contribution_method="exact-shapley")
    assert [n.address for n in inflated.sim.nodes] == [n.address for n in honest.sim.nodes]
    declared = [u.num_examples for u in inflated.sim.task.updates(1)]
    honest_declared = [u.num_examples for u in honest.sim.task.updates(1)]
    assert max(declared) > max(honest_declared)  # the last member did declare more than it trained on
    assert inflated.rewards() == honest.rewards()
    assert inflated.rewards()[3] > 0
    honest.ws.close()
    inflated.ws.close()


def _split(data: LocalData) -> list[LocalData]:
    """One hospital's rows in two halves, training and validation alike."""
    train = np.random.default_rng(0).permutation(len(data.y_train))
    val = np.random.default_rng(1).permutation(len(data.y_val))
    halves = [(train[: len(train) // 2], val[: len(val) // 2]), (train[len(train) // 2 :], val[len(val) // 2 :])]
    return [LocalData(data.X_train[t], data.y_train[t], data.X_val[v], data.y_val[v]) for t, v in halves]


@dataclass
class Sybil:
    whole: Run
    split: Run
    refusals: list[Exception]
    """What the chain answered each identity that tried to commit before staking."""


@pytest.fixture(scope="module")
def sybil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sybil]:
    """The same four hospitals for one round, once whole and once with Hospital 1 split across two identities; in
    the split run each identity first tries to commit with no stake."""
    tmp = tmp_path_factory.mktemp("sybil")
    datas = hospital_datas(tmp, 4)
    refusals: list[Exception] = []

    def commit_unstaked(sim: SimulatedConsortium) -> None:
        r = sim.task.as_(sim.operator).open_round()
        for node in sim.nodes[:2]:
            try:
                sim.task.as_(node.account).commit_update(r, "0x" + "ab" * 32, 10)
            except NotAuthorized as exc:
                refusals.append(exc)

    with _same_keys():
        whole = _run(tmp / "whole", datas, [None] * 4, rounds=1)
        split = _run(tmp / "split", [*_split(datas[0]), *datas[1:]], [None] * 5, rounds=1, before=commit_unstaked)
    yield Sybil(whole, split, refusals)
    whole.ws.close()
    split.ws.close()


@pytest.mark.xfail(
    strict=True,
    reason="Hospital 1 earns 23.3 % of the round's reward whole and 35.8 % as two identities (GTG-Shapley, one "
    "round, four hospitals): an update's value has diminishing returns in data, so each half is paid for the cover "
    "it gives the other, and a method that ignores declared counts cannot tell two honest hospitals from one split "
    "in two (fedledger.incentives.contribution). The defence is the cost of an identity: admission by the "
    "consortium's admins and a stake per identity (the next test).",
)
def test_splitting_a_hospital_across_two_identities_does_not_raise_its_reward(sybil: Sybil) -> None:
    whole, split = sybil.whole.rewards(), sybil.split.rewards()
    assert (split[0] + split[1]) / sum(split) <= whole[0] / sum(whole)


def test_each_identity_of_a_split_hospital_must_stake_before_it_can_commit(sybil: Sybil) -> None:
    incentives, nodes = sybil.split.incentives, sybil.split.sim.nodes
    assert len(sybil.refusals) == 2
    assert all("trainer not staked" in str(exc) for exc in sybil.refusals)
    # Then each node staked on its own: splitting one data set doubles the stake it puts at risk.
    assert [incentives.stake_of(node.address) for node in nodes[:2]] == [STAKE, STAKE]
    committed = {u.member for u in sybil.split.sim.task.updates(1)}
    assert {nodes[0].address, nodes[1].address} <= committed
