"""Server-side adaptive optimizers (Reddi et al., ICLR 2021): formulas, determinism, config, and federations.

The formulas are checked against a plain float64 reference written here; the federation runs check that the
chain's models are that reference applied to the rounds' aggregates, that the state travels in the model blobs,
and that the audit re-derives them (and refuses a model finalized without the optimizer).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import hospital_datas
from fedledger.audit import verify_task
from fedledger.exceptions import ConfigError
from fedledger.federation import MemberNode, Simulation, TaskConfig
from fedledger.federation.config import CONFIG_FORMAT
from fedledger.federation.rules import aggregate_round, check_update, previous_global_params
from fedledger.federation.setup import create_consortium
from fedledger.learning import FixedPoint, apply_update, decode_model, encode_model, fedavg
from fedledger.learning.aggregation import (
    OPTIMIZER_DEFAULTS,
    OptimizerState,
    apply_server_optimizer,
    server_step,
)
from fedledger.workspace import Workspace

MODEL = {"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1}


# -- a straightforward reference --------------------------------------------------------------


def reference_step(
    name: str, d: np.ndarray, m: np.ndarray, v: np.ndarray, hp: dict[str, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reddi et al., Algorithm 2, as written in the paper (float64): (step, m_t, v_t)."""
    b1, lr, tau = hp["beta1"], hp["server_lr"], hp["tau"]
    m = b1 * m + (1 - b1) * d
    if name == "fedadagrad":
        v = v + d * d
    elif name == "fedyogi":
        v = v - (1 - hp["beta2"]) * (d * d) * np.sign(v - d * d)
    else:
        v = hp["beta2"] * v + (1 - hp["beta2"]) * (d * d)
    # The one departure from the paper: subnormal moments are exactly zero, whatever the CPU's flush-to-zero mode
    # (test_subnormal_moments_are_flushed_to_zero).
    tiny = np.finfo(np.float64).tiny
    m, v = np.where(np.abs(m) < tiny, 0.0, m), np.where(np.abs(v) < tiny, 0.0, v)
    return lr * m / (np.sqrt(v) + tau), m, v


def _run_reference(name: str, deltas: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    hp = OPTIMIZER_DEFAULTS[name]
    m = v = np.zeros_like(deltas[0])
    steps = []
    for d in deltas:
        step, m, v = reference_step(name, d, m, v, hp)
        steps.append(step)
    return steps, m, v


RNG = np.random.default_rng(7)
DELTAS = [RNG.normal(0, 0.05, size=(3, 4)).round(6) for _ in range(4)]


@pytest.mark.parametrize("name", sorted(OPTIMIZER_DEFAULTS))
def test_steps_match_the_papers_formulas_over_rounds(name: str) -> None:
    hp = OPTIMIZER_DEFAULTS[name]
    state = OptimizerState.zeros({"w": DELTAS[0]})
    expected_steps, m_ref, v_ref = _run_reference(name, DELTAS)
    for d, expected in zip(DELTAS, expected_steps, strict=True):
        steps, state = server_step(
            name,
            {"w": d},
            state,
            server_lr=hp["server_lr"],
            beta1=hp["beta1"],
            tau=hp["tau"],
            beta2=hp.get("beta2", 0.0),
        )
        np.testing.assert_array_equal(steps["w"], expected)  # same IEEE operations: the same bits
    np.testing.assert_array_equal(state.m["w"], m_ref)
    np.testing.assert_array_equal(state.v["w"], v_ref)


def test_adam_yogi_and_adagrad_differ_as_they_should() -> None:
    final = {name: _run_reference(name, DELTAS) for name in OPTIMIZER_DEFAULTS}
    # Adagrad's v only accumulates: the sum of squares.
    np.testing.assert_allclose(final["fedadagrad"][2], sum(d * d for d in DELTAS), rtol=1e-12)
    # Adam's v decays, Yogi's moves by at most (1 - beta2) d^2 toward d^2: both differ from Adagrad's and each other.
    assert not np.array_equal(final["fedadam"][2], final["fedyogi"][2])
    assert np.all(final["fedadam"][2] < final["fedadagrad"][2])
    # First round, from zero state: Yogi's v_0 = (1 - beta2) d^2 = Adam's v_0; they part afterwards.
    one = {name: _run_reference(name, DELTAS[:1]) for name in ("fedadam", "fedyogi")}
    np.testing.assert_array_equal(one["fedadam"][2], one["fedyogi"][2])
    # Yogi: where v_{t-1} > d_t^2 the second moment shrinks additively, never below zero.
    assert np.all(final["fedyogi"][2] >= 0)


def test_the_step_is_applied_through_fixed_point_like_any_aggregate() -> None:
    codec = FixedPoint(24)
    x = {"w": RNG.normal(size=(3, 4)).astype(np.float32)}
    delta_fixed = {"w": codec.encode(DELTAS[0])}
    params, state = apply_server_optimizer("fedyogi", x, delta_fixed, None, OPTIMIZER_DEFAULTS["fedyogi"], frac_bits=24)
    step, m, v = reference_step(
        "fedyogi", codec.decode(delta_fixed["w"]), 0.0 * DELTAS[0], 0.0 * DELTAS[0], OPTIMIZER_DEFAULTS["fedyogi"]
    )
    expected = apply_update(x, {"w": codec.encode(step)}, frac_bits=24)
    assert params["w"].dtype == np.float32 and params["w"].tobytes() == expected["w"].tobytes()
    np.testing.assert_array_equal(state.m["w"], m)
    np.testing.assert_array_equal(state.v["w"], v)


def test_subnormal_moments_are_flushed_to_zero() -> None:
    tiny = np.finfo(np.float64).tiny
    state = OptimizerState(m={"w": np.array([tiny, 0.0])}, v={"w": np.array([tiny, 0.0])})
    _, new = server_step("fedadam", {"w": np.zeros(2)}, state, server_lr=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    assert new.m["w"].tolist() == [0.0, 0.0] and new.v["w"].tolist() == [0.0, 0.0]


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(sorted(OPTIMIZER_DEFAULTS)),
    delta=arrays(np.int64, (5,), elements=st.integers(-(2**30), 2**30)),
    m=arrays(np.float64, (5,), elements=st.floats(-1, 1, allow_subnormal=False)),
    v=arrays(np.float64, (5,), elements=st.floats(0, 1, allow_subnormal=False)),
)
# The smallest normal second moment decays into the subnormals, which the step flushes to zero.
@example(name="fedadam", delta=np.zeros(5, np.int64), m=np.zeros(5), v=np.full(5, np.finfo(np.float64).tiny))
def test_same_inputs_give_the_same_bytes(name: str, delta: np.ndarray, m: np.ndarray, v: np.ndarray) -> None:
    x = {"w": np.linspace(-1, 1, 5, dtype=np.float32)}
    fixed = {"w": delta.view(np.uint64)}
    state = OptimizerState(m={"w": m}, v={"w": v})
    blobs = []
    for _ in range(2):
        params, new = apply_server_optimizer(name, x, fixed, state, OPTIMIZER_DEFAULTS[name], frac_bits=24)
        blobs.append(encode_model(params, MODEL, metadata={"round": "1"}, optimizer_state=new.to_tensors()))
    assert blobs[0] == blobs[1]
    hp = OPTIMIZER_DEFAULTS[name]
    step, m_ref, v_ref = reference_step(name, FixedPoint(24).decode(fixed["w"]), m, v, hp)
    np.testing.assert_array_equal(new.v["w"], v_ref)
    np.testing.assert_array_equal(new.m["w"], m_ref)


# -- the model blob ---------------------------------------------------------------------------


def test_the_state_lives_in_the_model_blob_and_stays_out_of_the_params() -> None:
    params = {"coef": np.ones((1, 3), np.float32), "intercept": np.zeros(1, np.float32)}
    state = OptimizerState.zeros(params)
    blob = encode_model(params, MODEL, metadata={"round": "2"}, optimizer_state=state.to_tensors())
    decoded = decode_model(blob, expected_spec={"coef": (1, 3), "intercept": (1,)})
    assert sorted(decoded.params) == ["coef", "intercept"]
    assert sorted(decoded.optimizer_state) == ["m/coef", "m/intercept", "v/coef", "v/intercept"]
    assert sorted(decoded.params.optimizer_state) == sorted(decoded.optimizer_state)  # type: ignore[attr-defined]
    # Without state the blob is exactly what it always was.
    plain = encode_model(params, MODEL, metadata={"round": "2"})
    assert plain == encode_model(params, MODEL, metadata={"round": "2"}, optimizer_state={})
    assert b"optimizer" not in plain and decode_model(plain).optimizer_state == {}


# -- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"server_optimizer": "fedsgd"}, "server_optimizer"),
        ({"server_optimizer": "fedadam", "server_optimizer_params": {"lr": 0.1}}, "server_optimizer_params"),
        ({"server_optimizer": "fedadam", "server_optimizer_params": {"beta1": 1.0}}, "beta1"),
        ({"server_optimizer": "fedyogi", "server_optimizer_params": {"beta2": -0.1}}, "beta2"),
        ({"server_optimizer": "fedyogi", "server_optimizer_params": {"tau": 0}}, "tau"),
        ({"server_optimizer": "fedadagrad", "server_optimizer_params": {"server_lr": float("nan")}}, "server_lr"),
        ({"server_optimizer": "fedadagrad", "server_optimizer_params": {"beta2": 0.9}}, "beta2"),
        ({"server_optimizer": "fedadam", "server_optimizer_params": {"tau": "1e-3"}}, "tau"),
        ({"server_optimizer_params": {"tau": 1e-3}}, "server_optimizer_params"),
    ],
)
def test_config_errors_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        TaskConfig(model=MODEL, **overrides)


def test_config_resolves_defaults_round_trips_and_composes_with_robust_rules_and_secure_aggregation() -> None:
    config = TaskConfig(model=MODEL, server_optimizer="fedyogi", server_optimizer_params={"server_lr": 0.05})
    assert config.server_optimizer_params == {**OPTIMIZER_DEFAULTS["fedyogi"], "server_lr": 0.05}
    assert TaskConfig.from_bytes(config.to_bytes()) == config
    assert TaskConfig.from_bytes(config.to_bytes()).hash == config.hash
    assert TaskConfig(model=MODEL, aggregation="median", server_optimizer="fedadam").aggregation == "median"
    secure = TaskConfig(model=MODEL, secure_aggregation=True, server_optimizer="fedadam")
    assert secure.aggregation == "fedavg" and secure.server_optimizer == "fedadam"


def test_an_old_config_keeps_its_bytes_and_hash() -> None:
    config = TaskConfig(model=MODEL)
    body = json.loads(config.to_bytes())
    assert "server_optimizer" not in body and "server_optimizer_params" not in body
    # A config committed before the settings existed (no such keys) loads and hashes as it did.
    raw = config.to_bytes()
    assert json.loads(raw)["format"] == CONFIG_FORMAT
    loaded = TaskConfig.from_bytes(raw)
    assert loaded.server_optimizer == "none" and loaded.to_bytes() == raw
    assert loaded.hash == hashlib.sha256(raw).hexdigest()


# -- federations ------------------------------------------------------------------------------


def _federation(tmp_path: Path, n: int = 4, rounds: int = 2, **overrides: Any):  # type: ignore[no-untyped-def]
    datas = hospital_datas(tmp_path, n)
    settings_: dict[str, Any] = {"min_commitments": 2, "proposal_quorum": 2, "clip_norm": 5.0, **overrides}
    config = TaskConfig(model=MODEL, rounds=rounds, local_epochs=1, **settings_)
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    return ws, create_consortium(ws, config=config, datas=datas, password="pw")


def _check_chain_against_reference(sim: Any, rounds: int, deltas_of: Any) -> None:
    """Each finalized model is x_t + quantized reference step of that round's aggregate, with the reference state
    stored in its blob."""
    config = sim.nodes[0].config
    name, hp = config.server_optimizer, config.server_optimizer_params
    codec = FixedPoint(config.frac_bits)
    m = v = None
    for r in range(1, rounds + 1):
        info = sim.task.round(r)
        start = decode_model(sim.store.get(info.global_model.removeprefix("0x")))
        final = decode_model(sim.store.get(info.model_hash.removeprefix("0x")))
        delta_fixed = deltas_of(r, info, start)
        expected: dict[str, np.ndarray] = {}
        for k in sorted(delta_fixed):
            d = codec.decode(delta_fixed[k])
            m_k = np.zeros_like(d) if m is None else m[k]
            v_k = np.zeros_like(d) if v is None else v[k]
            step, new_m, new_v = reference_step(name, d, m_k, v_k, hp)
            expected[k] = step
            np.testing.assert_array_equal(final.optimizer_state[f"m/{k}"], new_m)
            np.testing.assert_array_equal(final.optimizer_state[f"v/{k}"], new_v)
        m = {k: final.optimizer_state[f"m/{k}"] for k in delta_fixed}
        v = {k: final.optimizer_state[f"v/{k}"] for k in delta_fixed}
        params = apply_update(
            start.params, {k: codec.encode(s) for k, s in expected.items()}, frac_bits=config.frac_bits
        )
        assert sorted(final.params) == sorted(start.params)
        for k in params:
            assert final.params[k].tobytes() == params[k].tobytes(), (r, k)
        assert final.metadata["server_optimizer"] == name


class SkipsTheOptimizer(MemberNode):
    """An aggregator that applies the rule's aggregate directly, as if the task had no server optimizer."""

    def __init__(self, base: MemberNode) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)

    @property
    def config(self) -> TaskConfig:
        return replace(super().config, server_optimizer="none", server_optimizer_params={})


def test_a_fedyogi_federation_matches_the_reference_and_verifies(tmp_path: Path) -> None:
    rounds = 2
    ws, sim = _federation(
        tmp_path,
        rounds=rounds,
        aggregation="fedavg",
        cap_examples_to_median=False,
        lift_to_median_norm=False,
        server_optimizer="fedyogi",
        server_optimizer_params={"server_lr": 0.05},
    )
    with ws:
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1, 2]
        config = sim.nodes[0].config
        assert config.server_optimizer == "fedyogi"

        def fedavg_of_accepted(r: int, info: Any, start: Any) -> dict[str, np.ndarray]:
            spec = {k: tuple(a.shape) for k, a in start.params.items()}
            updates = sim.task.updates(r)
            decoded = [check_update(sim.store, config, spec, updates[i]) for i in sorted(info.accepted)]
            return fedavg([d.tensors for d in decoded], [d.num_examples for d in decoded])

        _check_chain_against_reference(sim, rounds, fedavg_of_accepted)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report.to_json()
        assert report.models_checked == rounds
        # The state in the starting blob matters: a round-2 recomputation from zero state differs.
        info = sim.task.round(2)
        start = decode_model(sim.store.get(info.global_model.removeprefix("0x")))
        args = (sim.store, config, start.params, start.spec, sim.task.updates(2), info.accepted)
        kept = aggregate_round(*args, round_id=2, previous_params=previous_global_params(sim.task, sim.store, 2))
        assert kept.model_hash == info.model_hash
        zeroed = aggregate_round(*args, round_id=2, optimizer_state=OptimizerState.zeros(start.params).to_tensors())
        assert zeroed.model_hash != info.model_hash


def test_the_audit_refuses_a_model_finalized_without_the_optimizer(tmp_path: Path) -> None:
    ws, sim = _federation(tmp_path, rounds=1, server_optimizer="fedadam")
    with ws:
        # Two colluding aggregators reach the quorum first with the plain rule's model.
        sim.nodes[0] = SkipsTheOptimizer(sim.nodes[0])
        sim.nodes[1] = SkipsTheOptimizer(sim.nodes[1])
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1]
        final = decode_model(sim.store.get(sim.task.round(1).model_hash.removeprefix("0x")))
        assert final.optimizer_state == {}
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
    assert not report.ok
    assert any("finalized model is not the aggregate" in d.message for d in report.discrepancies), report.to_json()


def test_a_secure_fedadam_federation_matches_the_reference_and_verifies(tmp_path: Path) -> None:
    rounds = 2
    ws, sim = _federation(tmp_path, rounds=rounds, secure_aggregation=True, server_optimizer="fedadam")
    with ws:
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1, 2]
        nodes = {n.account.address: n for n in sim.nodes}

        def plaintext_fedavg(r: int, info: Any, start: Any) -> dict[str, np.ndarray]:
            updates, weights = [], []
            for member in sorted(u.member for u in sim.task.updates(r)):
                update, _, n, _ = nodes[member].local_update(info)  # seeded training: replayable
                updates.append(update)
                weights.append(n)
            return fedavg(updates, weights)

        _check_chain_against_reference(sim, rounds, plaintext_fedavg)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report.to_json()
        assert report.models_checked == rounds
