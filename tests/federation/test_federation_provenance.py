"""Provenance and privacy in federated rounds: a node refuses a purpose its dataset does not
allow, stops at its privacy budget, declares its spend; the audit checks lineage and spends."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conftest import hospital_datas
from fedledger.attacks import Coalition, CountInflation
from fedledger.audit import verify_task
from fedledger.chain import TrainingTaskClient
from fedledger.chain.events import UpdateCommitted, UpdateFlagged
from fedledger.chain.registry import purpose_id
from fedledger.exceptions import ConfigError, PrivacyBudgetExceeded, PurposeNotAllowed, RegisteredRowsExceeded
from fedledger.federation import Honest, NodeEvent, Simulation, TaskConfig
from fedledger.federation.config import DEFAULT_THRESHOLDS
from fedledger.federation.rules import aggregate_round, registered_rows
from fedledger.federation.setup import SimulatedConsortium, create_consortium
from fedledger.learning import SCORING_RULES, build_model, encode_model
from fedledger.privacy.accounting import SampledGaussian, compute_epsilon, epsilon_to_micro
from fedledger.workspace import Workspace

PURPOSE = "model-training:breast-cancer-diagnosis"
MODEL = {"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1}


def _consortium(
    tmp_path: Path, config: TaskConfig, n: int = 3, purposes: list[list[str]] | None = None
) -> tuple[Workspace, SimulatedConsortium, list[NodeEvent]]:
    """``n`` members; member k registers a dataset allowing ``purposes[k]`` (default: the task's)."""
    events: list[NodeEvent] = []
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    sim = create_consortium(ws, config=config, datas=hospital_datas(tmp_path, n), password="pw", on_event=events.append)
    assert sim.registry is not None
    for k, node in enumerate(sim.nodes):
        node.dataset_id = sim.registry.as_(node.account).register_dataset(
            commitment=b"\x01" * 31 + bytes([k + 1]),
            schema_hash=b"\x02" * 32,
            classification_hash=b"\x03" * 32,
            policy_hash=b"\x04" * 32,
            purposes=(purposes or [[PURPOSE]] * n)[k],
            rows=len(node.data.y_train) if node.data is not None else 1,
        )
    return ws, sim, events


def _config(**overrides: object) -> TaskConfig:
    settings: dict[str, object] = {
        "model": MODEL,
        "rounds": 1,
        "local_epochs": 2,
        "min_commitments": 2,
        "proposal_quorum": 2,
        "clip_norm": 5.0,
        "purpose": PURPOSE,
        **overrides,
    }
    return TaskConfig(**settings)  # type: ignore[arg-type]


def test_node_refuses_a_task_its_dataset_does_not_allow(tmp_path: Path) -> None:
    ws, sim, events = _consortium(tmp_path, _config(), purposes=[[PURPOSE], [PURPOSE], ["marketing", "research"]])
    with ws:
        refusing = sim.nodes[2]
        with pytest.raises(PurposeNotAllowed, match="does not allow the purpose 'model-training:breast-cancer"):
            refusing.require_purpose()
        Simulation(sim.task, sim.nodes).run()
        assert isinstance(refusing.refusals[1], PurposeNotAllowed)
        refusals = [e for e in events if e.action == "refuse"]
        assert [(e.node, e.round_id, e.details["error"]) for e in refusals] == [(refusing.name, 1, "PurposeNotAllowed")]
        committers = {e.member for e in sim.task.events() if isinstance(e, UpdateCommitted)}
        assert committers == {sim.nodes[0].account.address, sim.nodes[1].account.address}
        assert sim.task.round(1).phase.name == "FINALIZED"  # the others went on without it
        updates = sim.task.updates(1)
        assert sorted(u.dataset_id for u in updates) == [sim.nodes[0].dataset_id, sim.nodes[1].dataset_id]
        assert verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store).ok


def test_node_without_a_registered_dataset_refuses(tmp_path: Path) -> None:
    ws, sim, _ = _consortium(tmp_path, _config())
    with ws:
        sim.nodes[0].dataset_id = None
        with pytest.raises(PurposeNotAllowed, match="has no registered dataset"):
            sim.nodes[0].require_purpose()


def test_node_stops_at_its_budget_and_declares_its_spend(tmp_path: Path) -> None:
    sigma, delta = 2.0, 1e-5
    two = compute_epsilon([SampledGaussian(sigma, 1.0, 2)], delta=delta)
    three = compute_epsilon([SampledGaussian(sigma, 1.0, 3)], delta=delta)
    budget = (two + three) / 2  # room for two rounds, not three
    config = _config(rounds=3, dp_epsilon=budget, dp_delta=delta, dp_noise_multiplier=sigma, min_commitments=2)
    ws, sim, events = _consortium(tmp_path, config)
    with ws:
        Simulation(sim.task, sim.nodes).run()
        for node in sim.nodes:
            assert isinstance(node.refusals.get(3), PrivacyBudgetExceeded), node.refusals
            assert 1 not in node.refusals and 2 not in node.refusals
            assert sim.task.privacy_spent(node.account.address) == epsilon_to_micro(two)
        assert sim.task.round(3).phase.name == "ABORTED" and sim.task.updates(3) == []
        declared = [
            (e.round_id, e.epsilon_micro)
            for e in sim.task.events()
            if isinstance(e, UpdateCommitted) and e.member == sim.nodes[0].account.address
        ]
        one = compute_epsilon([SampledGaussian(sigma, 1.0, 1)], delta=delta)
        assert declared == [(1, epsilon_to_micro(one)), (2, epsilon_to_micro(two))]
        commits = [e for e in events if e.action == "commit"]
        assert all(e.details["epsilon"] <= budget for e in commits)
        # Noisy updates exceed clip_norm but not the noise-widened bound: none was flagged for its norm.
        flags = [e for e in sim.task.events() if isinstance(e, UpdateFlagged)]
        assert not [f for f in flags if "L2 norm" in f.reason], flags
        report = verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store)
        assert report.ok, report.discrepancies


class _Overclaims(Honest):
    """A member that declares ``claim`` examples, whatever the checks admit (hand-rolled count inflation)."""

    name = "overclaims"

    def __init__(self, claim: int) -> None:
        self.claim = claim

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        return self.claim


def _register_rows(sim: SimulatedConsortium, k: int, rows: int) -> None:
    """Member ``k`` commits to a new version of its dataset with ``rows`` rows."""
    node = sim.nodes[k]
    assert sim.registry is not None and node.dataset_id is not None
    sim.registry.as_(node.account).update_commitment(node.dataset_id, commitment=b"\x09" * 32, rows=rows)


def test_an_update_declaring_more_examples_than_its_dataset_registered_is_left_out(tmp_path: Path) -> None:
    ws, sim, events = _consortium(tmp_path, _config())
    with ws:
        liar = sim.nodes[2]
        assert liar.data is not None
        rows = len(liar.data.y_train)
        liar.behavior = _Overclaims(10**6)
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase.name == "FINALIZED"  # the others went on without it
        updates = sim.task.updates(1)
        lie = next(u for u in updates if u.member == liar.account.address)
        assert lie.num_examples == 10**6
        reason = f"commitment declares 1000000 examples, its dataset {liar.dataset_id} registered {rows} rows"
        flags = [e for e in sim.task.events() if isinstance(e, UpdateFlagged) and e.index == lie.index]
        assert flags and all(f.reason == reason for f in flags), flags  # every validator scored it 0 and said why
        assert lie.index not in sim.task.round(1).accepted
        # Aggregators and auditors apply the same bound, read from the chain: had the validators let the
        # update through, it would still be left out, and the others' weights kept.
        by_rows = registered_rows(sim.task, updates)
        assert by_rows[lie.index] == rows and len(by_rows) == 3
        first = sim.nodes[0]
        global_params, spec = first.global_model(sim.task.round(1).global_model)
        result = aggregate_round(
            sim.store, first.config, global_params, spec, updates, [0, 1, 2], round_id=1, rows=by_rows
        )
        assert result.excluded == {lie.index: reason} and sorted(result.included) == sorted({0, 1, 2} - {lie.index})
        assert verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store).ok


def test_count_inflation_is_held_to_the_rows_its_dataset_registered(tmp_path: Path) -> None:
    """The attack claims the most the checks admit: with a data registry, its dataset's rows, not ``max_examples``;
    the bound is read at each commitment's block, so a later registration does not reach back."""
    ws, sim, _ = _consortium(tmp_path, _config())
    with ws:
        inflating = sim.nodes[1]
        assert inflating.data is not None
        n = len(inflating.data.y_train)
        _register_rows(sim, 1, n + 40)  # e.g. rows it keeps out of training
        inflating.behavior = Coalition(CountInflation(), num_malicious=1).member(0)
        Simulation(sim.task, sim.nodes).run()
        updates = sim.task.updates(1)
        claimed = {u.member: u.num_examples for u in updates}
        assert claimed[inflating.account.address] == n + 40 < sim.nodes[0].config.max_examples
        _register_rows(sim, 1, 10**6)
        index = next(u.index for u in updates if u.member == inflating.account.address)
        assert registered_rows(sim.task, updates)[index] == n + 40
        assert sim.task.round(1).phase.name == "FINALIZED"
        assert verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store).ok


def test_node_refuses_to_train_on_more_rows_than_its_dataset_registered(tmp_path: Path) -> None:
    ws, sim, events = _consortium(tmp_path, _config())
    with ws:
        grown = sim.nodes[0]
        assert grown.data is not None
        _register_rows(sim, 0, len(grown.data.y_train) - 1)
        Simulation(sim.task, sim.nodes).run()
        refusal = grown.refusals[1]
        assert isinstance(refusal, RegisteredRowsExceeded)
        assert f"registered {len(grown.data.y_train) - 1} rows" in str(refusal)
        refusals = [(e.node, e.details["error"]) for e in events if e.action == "refuse"]
        assert refusals == [(grown.name, "RegisteredRowsExceeded")]
        assert grown.account.address not in {u.member for u in sim.task.updates(1)}
        assert sim.task.round(1).phase.name == "FINALIZED"


def test_secure_aggregation_drops_a_masked_input_declaring_more_than_its_registered_rows(tmp_path: Path) -> None:
    """Nobody sees a masked update, but its commitment's count is public: held to the registered rows, an
    inflated weight is dropped like a dropout, and the others' sum is unmasked and verified."""
    ws, sim, _ = _consortium(tmp_path, _config(secure_aggregation=True))
    with ws:
        liar = sim.nodes[2]
        liar.behavior = _Overclaims(10**6)
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase.name == "FINALIZED"
        lie = next(u for u in sim.task.updates(1) if u.member == liar.account.address)
        flags = [e.reason for e in sim.task.events() if isinstance(e, UpdateFlagged) and e.index == lie.index]
        assert any(
            r.startswith("dropped: commitment declares 1000000 examples") and f"dataset {liar.dataset_id}" in r
            for r in flags
        ), flags
        assert verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store).ok


def test_dp_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="dp_mode 'sample'.*needs a torch model.*got 'sklearn-mlp'"):
        _config(dp_epsilon=4.0, dp_mode="sample", model={**MODEL, "kind": "sklearn-mlp"})
    with pytest.raises(ConfigError, match="dp_mode 'sample'.*'sklearn-sgd' with loss 'hinge'"):
        _config(dp_epsilon=4.0, dp_mode="sample", model={**MODEL, "loss": "hinge"})
    with pytest.raises(ConfigError, match="spends epsilon .* in one round"):
        _config(dp_epsilon=1.0, dp_noise_multiplier=0.2)
    with pytest.raises(ConfigError, match="dp_epsilon must be a positive"):
        _config(dp_epsilon=float("inf"))
    with pytest.raises(ConfigError, match="purpose: malformed purpose name"):
        _config(purpose="Breast Cancer")
    config = _config(dp_epsilon=4.0, rounds=5)
    assert config.privacy is not None and config.privacy.noise_multiplier is not None
    # The calibrated multiplier lets all rounds fit the budget, and not by much.
    spent = compute_epsilon([SampledGaussian(config.privacy.noise_multiplier, 1.0, 5)], delta=1e-5)
    assert 3.9 < spent <= 4.0
    assert config.update_norm_bound(31) > config.clip_norm
    assert TaskConfig.from_bytes(config.to_bytes()) == config
    with pytest.raises(ConfigError, match="deploy it with a data registry"):
        config.chain_params("0x" + "11" * 32)


def _rogue_task(sim: SimulatedConsortium, config: TaskConfig, contract_purpose: str) -> TrainingTaskClient:
    """A task whose contract checks another purpose than the one its config (and members) agreed on."""
    initial = sim.store.put(encode_model(build_model(config.model).get_params(), config.model))
    sim.store.put(config.to_bytes())
    assert sim.registry is not None
    params = replace(
        config.chain_params(initial, data_registry=sim.registry.address),
        purpose="0x" + purpose_id(contract_purpose).hex(),
    )
    return TrainingTaskClient.deploy(sim.task.chain, sim.operator, sim.consortium.address, params)


def test_audit_flags_updates_whose_datasets_did_not_allow_the_agreed_purpose(tmp_path: Path) -> None:
    ws, sim, _ = _consortium(tmp_path, _config(), purposes=[[PURPOSE, "research"], ["research"], ["research"]])
    with ws:
        config = sim.nodes[0].config
        rogue = _rogue_task(sim, config, "research")
        r = rogue.as_(sim.nodes[0].account).open_round()
        for k, node in enumerate(sim.nodes):
            rogue.as_(node.account).commit_update(r, "ab" * 31 + f"{k:02x}", 10, dataset_id=node.dataset_id)
        report = verify_task(ws.chain, sim.consortium.address, rogue.address, sim.store)
        messages = [str(d) for d in report.discrepancies]
        assert any("task contract checks purpose id" in m for m in messages), messages
        lineage = [m for m in messages if "did not allow the purpose" in m]
        assert len(lineage) == 2 and all(sim.nodes[0].account.address not in m for m in lineage), lineage


def test_audit_flags_a_spend_below_what_the_rounds_compose_to(tmp_path: Path) -> None:
    ws, sim, _ = _consortium(tmp_path, _config(dp_epsilon=4.0, rounds=2))
    with ws:
        task = sim.task.as_(sim.nodes[0].account)
        r = task.open_round()
        honest = epsilon_to_micro(compute_epsilon([sim.nodes[0].config.privacy.mechanism(num_examples=1)], delta=1e-5))  # type: ignore[union-attr]
        task.commit_update(r, "ab" * 32, 10, dataset_id=sim.nodes[0].dataset_id, epsilon_micro=honest)
        sim.task.as_(sim.nodes[1].account).commit_update(
            r, "cd" * 32, 10, dataset_id=sim.nodes[1].dataset_id, epsilon_micro=1
        )
        report = verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store)
        spends = [d for d in report.discrepancies if "compose to" in d.message]
        assert [d.member for d in spends] == [sim.nodes[1].account.address], report.discrepancies


def test_sample_level_dp_sgd_round_end_to_end(tmp_path: Path) -> None:
    """dp_mode "sample": members train a torch model with Opacus DP-SGD, declare what dp-accounting gives
    for their Poisson-sampled steps, and the audit recomputes the same spends."""
    model = {"kind": "torch-mlp", "n_features": 30, "n_classes": 2, "hidden": [8], "batch_size": 16, "seed": 1}
    config = _config(
        model=model,
        rounds=2,
        local_epochs=1,
        dp_epsilon=8.0,
        dp_mode="sample",
        dp_max_grad_norm=1.0,
        dp_noise_multiplier=1.0,
        acceptance_threshold=0,  # DP-SGD's fresh noise may cost a round accuracy; validation is not under test here
    )
    assert config.privacy is not None and config.privacy.mode == "sample"
    ws, sim, events = _consortium(tmp_path, config)
    with ws:
        Simulation(sim.task, sim.nodes).run()
        assert [sim.task.round(r).phase.name for r in (1, 2)] == ["FINALIZED", "FINALIZED"]
        assert not any(node.refusals for node in sim.nodes)
        for node in sim.nodes:
            spent = sim.task.privacy_spent(node.account.address) / 1e6
            assert 0 < spent <= 8.0
            commits = [e for e in events if e.action == "commit" and e.node == node.name]
            assert [e.round_id for e in commits] == [1, 2]
            assert commits[0].details["epsilon"] < commits[1].details["epsilon"] == pytest.approx(spent, abs=1e-6)
        report = verify_task(ws.chain, sim.consortium.address, sim.task.address, sim.store)
        assert report.ok, report.discrepancies


def test_scoring_and_threshold_defaults_resolve_from_the_benchmark() -> None:
    """``scoring="auto"`` is trust (cosine) with its threshold; client-level DP without masking hides every
    update's direction under noise, so there it is relative (accuracy change); explicit choices stay."""
    config = _config()
    assert (config.scoring, config.acceptance_threshold) == ("trust", DEFAULT_THRESHOLDS["trust"])
    noisy = _config(dp_epsilon=4.0)
    assert (noisy.scoring, noisy.acceptance_threshold) == ("relative", DEFAULT_THRESHOLDS["relative"])
    torch_model = {"kind": "torch-mlp", "n_features": 30, "n_classes": 2, "hidden": [8], "seed": 1}
    assert _config(dp_epsilon=4.0, dp_mode="sample", model=torch_model).scoring == "trust"
    assert _config(scoring="relative", acceptance_threshold=4000).acceptance_threshold == 4000
    assert set(DEFAULT_THRESHOLDS) == set(SCORING_RULES)
    assert TaskConfig.from_bytes(config.to_bytes()) == config  # the committed config names the resolved rule
    with pytest.raises(ConfigError, match="unknown scoring rule 'cosine'"):
        _config(scoring="cosine")
    for bad in (-1, 10_001, True, 5000.5):
        with pytest.raises(ConfigError, match="acceptance_threshold must be"):
            _config(acceptance_threshold=bad)
