"""Federated rounds over the ledger: demo, faults, bad updates, restarts, and the audit."""

from __future__ import annotations

import json
import math
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from eth_account import Account
from typer.testing import CliRunner

from conftest import hospital_datas
from fedledger.audit import verify_task
from fedledger.chain import ZERO_HASH, ConsortiumClient, Role, TrainingTaskClient
from fedledger.chain.events import AggregateProposed, RoundFinalized, UpdateCommitted, UpdateFlagged
from fedledger.chain.registry import purpose_id
from fedledger.chain.task import ZERO_ADDRESS, Phase
from fedledger.cli import app
from fedledger.demo import run_demo
from fedledger.exceptions import ConfigError
from fedledger.federation import Honest, MemberNode, NodeEvent, Simulation, TaskConfig
from fedledger.federation.config import DEFAULT_CLIP_TO_MEDIAN_NORM
from fedledger.federation.rules import aggregate_round, previous_global_params
from fedledger.federation.setup import create_consortium
from fedledger.learning import UpdatePipeline, decode_model, encode_model
from fedledger.store import DEFAULT_MAX_BLOB_BYTES, BlobStore, encode_tensors
from fedledger.workspace import Workspace

runner = CliRunner()


# -- the demo, end to end ---------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("demo") / "ws"
    result = run_demo(workspace=root, members=4, rounds=3, seed=3)
    return root, result.to_json()


def test_demo_trains_rejects_the_attacker_and_verifies(demo: tuple[Path, dict]) -> None:
    _, data = demo
    assert data["verification"]["ok"], data["verification"]
    assert len(data["per_round_accuracy"]) == 3
    assert data["final_accuracy"] > 0.9
    assert abs(data["final_accuracy"] - data["centralized_accuracy"]) < 0.05
    attacker = next(m["name"] for m in data["members"] if m["malicious"])
    rejected = Counter((r["round"], r["member"]) for r in data["rejected"])
    assert all(rejected[(r, attacker)] == 1 for r in (1, 2, 3)), data["rejected"]
    assert all(r["member"] == attacker for r in data["rejected"])  # no honest hospital lost
    assert all("below the" in r["reason"] for r in data["rejected"])
    # A handful of hospitals that all train every round: the few-silos profile's robustness settings.
    setup = data["setup"]
    assert (setup["profile"], setup["rule"], setup["clip_to_median_norm"], setup["min_mean_score"]) == (
        "few-silos",
        "median",
        True,
        4_700,
    )
    assert setup["max_rejection"] == 0
    assert setup["cap_examples_to_median"] is True
    assert setup["score_at_median_norm"] is True  # validators scored short updates at the round's median norm
    assert setup["center_scores"] is True  # and centred their scores on their round median


def test_a_score_aware_attacker_tunes_its_update_to_pass_where_sign_flipping_is_rejected(tmp_path: Path) -> None:
    # The same hospital and the same sign flip as the demo's attacker, toned down by its own scoring until it
    # expects to pass: its node scores candidate updates as it would validate them, and the validators accept.
    data = run_demo(workspace=tmp_path / "ws", members=4, rounds=3, seed=3, attack="score-aware").to_json()
    assert data["verification"]["ok"], data["verification"]
    attacker = next(m["name"] for m in data["members"] if m["malicious"])
    assert data["setup"]["attack"] == "score-aware"
    rejected_rounds = {r["round"] for r in data["rejected"] if r["member"] == attacker}
    assert len(rejected_rounds) < 3, data["rejected"]  # sign flipping alone is rejected in all three rounds


def test_cli_demo_defaults_to_validated_rounds_with_record_level_dp_and_screens_the_attacker(tmp_path: Path) -> None:
    """`fedledger demo` as the README runs it (small): validated rounds, record-level DP-SGD within epsilon 8 per
    hospital, the attacker rejected every round, contributions measured, spends on chain."""
    out = runner.invoke(app, ["demo", "-w", str(tmp_path / "ws"), "--members", "3", "--rounds", "2", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    setup = data["setup"]
    assert setup["secure_aggregation"] is False and setup["per_update_validation"] is True
    assert setup["dp_mode"] == "sample"
    privacy = data["privacy"]
    assert privacy["dp"] and privacy["mode"] == "sample" and privacy["unit"] == "record"
    assert privacy["budget_epsilon"] == 8.0 and privacy["delta"] == 1e-5 and privacy["noise_shares"] == 1
    assert [m["member"] for m in privacy["members"]] == ["Hospital 1", "Hospital 2", "Hospital 3"]
    assert all(0 < m["epsilon"] <= 8.0 and m["noise_multiplier"] > 0 for m in privacy["members"])
    assert 0 < privacy["max_epsilon"] <= 8.0
    attacker = next(m["name"] for m in data["members"] if m["malicious"])
    assert {(r["round"], r["member"]) for r in data["rejected"]} == {(1, attacker), (2, attacker)}
    screening = data["screening"]
    assert screening["attackers_kept_out_every_round"] is True
    assert [r[attacker] for r in screening["rounds"]] == ["rejected", "rejected"]
    incentives = data["incentives"]
    assert incentives["measured"] is True
    earned = {m["member"]: m["earned"] for m in incentives["members"]}
    assert earned[attacker] == 0 and sum(earned.values()) == incentives["paid_out"] > 0
    assert data["verification"]["ok"], data["verification"]
    # The same spends, read back from the chain's UpdateCommitted events.
    report = runner.invoke(app, ["privacy", "report", "-w", str(tmp_path / "ws"), "--json"])
    assert report.exit_code == 0, report.output
    body = json.loads(report.stdout)
    assert body["budget_epsilon"] == 8.0 and body["delta"] == 1e-5
    on_chain = {m["member"]: m["epsilon"] for m in body["members"]}
    assert sorted(on_chain.values()) == sorted(m["epsilon"] for m in privacy["members"])
    off = runner.invoke(app, ["demo", "-w", str(tmp_path / "off"), "--dp-epsilon", "-1"])
    assert off.exit_code == 2 and "--dp-epsilon" in off.output


def test_demo_keeps_secure_aggregation_with_client_level_dp_by_flag(tmp_path: Path) -> None:
    """`--secure-aggregation --dp-mode client`: masked updates, each hospital adding a share of the noise, and
    nobody screened."""
    data = run_demo(
        workspace=tmp_path / "ws", members=3, rounds=1, seed=3, dp_epsilon=8.0, dp_mode="client",
        secure_aggregation=True,
    ).to_json()  # fmt: skip
    assert data["setup"]["secure_aggregation"] is True and data["setup"]["per_update_validation"] is False
    privacy = data["privacy"]
    assert privacy["mode"] == "client" and privacy["unit"] == "member" and privacy["noise_shares"] == 2
    assert all(0 < m["epsilon"] <= 8.0 for m in privacy["members"])
    assert data["screening"]["attackers_kept_out_every_round"] is False
    assert data["incentives"]["measured"] is False
    assert data["verification"]["ok"], data["verification"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--members", "2"], "at least 3 hospitals, got --members 2"),
        (["--members", "5", "--malicious", "3"], "fewer than half the consortium: --malicious 3 of 5"),
        (["--profile", "silos"], "unknown profile 'silos'; known: consortium, few-silos"),
        (["--dp-mode", "record"], "unknown DP mode 'record' (--dp-mode); known: auto, client, sample"),
    ],
)
def test_cli_demo_refuses_bad_settings_in_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    out = runner.invoke(app, ["demo", "-w", str(tmp_path / "ws"), *args])
    assert out.exit_code == 2 and message in " ".join(out.output.split()) and "Traceback" not in out.output
    assert not (tmp_path / "ws").exists()  # refused before anything was created


def test_aggregators_agree_bit_for_bit(demo: tuple[Path, dict]) -> None:
    root, _ = demo
    with Workspace.load(root) as ws:
        events = ws.task().events()
    finalized = {e.round_id: e.model_hash for e in events if isinstance(e, RoundFinalized)}
    proposals = [e for e in events if isinstance(e, AggregateProposed)]
    assert len(finalized) == 3
    assert all(p.model_hash == finalized[p.round_id] for p in proposals)
    assert Counter(p.round_id for p in proposals)[1] >= 2  # a quorum, not one aggregator's word


def test_one_commitment_per_member_per_round(demo: tuple[Path, dict]) -> None:
    root, _ = demo
    with Workspace.load(root) as ws:
        commits = [e for e in ws.task().events() if isinstance(e, UpdateCommitted)]
    assert len(commits) == 12
    assert len({(c.round_id, c.member) for c in commits}) == 12


def test_models_list_and_export(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = _copy(demo, tmp_path)
    out = runner.invoke(app, ["models", "list", "-w", str(root), "--json"])
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["round"] for r in rows] == [0, 1, 2, 3]
    target = tmp_path / "model.safetensors"
    assert runner.invoke(app, ["models", "export", str(target), "-w", str(root)]).exit_code == 0
    import hashlib

    assert "0x" + hashlib.sha256(target.read_bytes()).hexdigest() == rows[-1]["model_hash"]
    native = runner.invoke(app, ["models", "export", str(tmp_path / "native"), "-w", str(root), "--format", "native"])
    assert native.exit_code == 0, native.output


# -- the audit ----------------------------------------------------------------------------


def _copy(demo: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict]:
    root, data = demo
    target = tmp_path / "ws"
    shutil.copytree(root, target)
    return target, data


def _verify(root: Path) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", "-w", str(root)])
    return result.exit_code, result.output


def _first_commit(root: Path) -> UpdateCommitted:
    with Workspace.load(root) as ws:
        return next(e for e in ws.task().events() if isinstance(e, UpdateCommitted) and e.round_id == 2)


def test_verify_passes_on_an_untouched_workspace(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = _copy(demo, tmp_path)
    code, output = _verify(root)
    assert code == 0, output
    assert "3 finalized rounds" in output


def test_verify_names_a_tampered_blob(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = _copy(demo, tmp_path)
    commit = _first_commit(root)
    path = BlobStore(root / "store").path_of(commit.update_hash[2:])
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0xFF
    path.write_bytes(bytes(blob))
    code, output = _verify(root)
    assert code == 13
    text = " ".join(output.split())
    assert "round 2" in text and commit.member in text and commit.update_hash in text
    assert "does not match its committed hash" in text


def test_verify_names_a_deleted_blob(demo: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = _copy(demo, tmp_path)
    commit = _first_commit(root)
    assert BlobStore(root / "store").delete(commit.update_hash[2:])
    code, output = _verify(root)
    text = " ".join(output.split())
    assert code == 13
    assert "update blob missing" in text and commit.member in text


def test_verify_catches_a_forged_commitment_from_a_non_member(demo: tuple[Path, dict], tmp_path: Path) -> None:
    """A task governed by a rogue consortium, where an outsider 'commits', fails against the trusted one."""
    root, _ = _copy(demo, tmp_path)
    with Workspace.load(root) as ws:
        outsider = Account.create()
        ws.fund(outsider.address)
        rogue = ConsortiumClient.deploy(ws.chain, outsider, org="Rogue", roles=Role.ADMIN | Role.TRAINER)
        real = ws.task()
        # The rogue task checks no data registry (the real one would refuse the outsider's dataset), and asks for no
        # stake (the real task's Incentives contract would refuse the unstaked outsider).
        unchecked = replace(real.params(), data_registry=ZERO_ADDRESS, purpose=ZERO_HASH, stake_gate=ZERO_ADDRESS)
        forged = TrainingTaskClient.deploy(ws.chain, outsider, rogue.address, unchecked)
        forged.open_round()
        forged.commit_update(1, "0x" + "ab" * 32, 10)
        report = verify_task(ws.chain, ws.config.consortium, forged.address, BlobStore(root / "store"))
    messages = [str(d) for d in report.discrepancies]
    assert not report.ok
    assert "not the trusted consortium" in messages[0]
    assert any("checks no data registry" in m for m in messages)
    assert any(outsider.address in m and "not an active trainer" in m for m in messages)


# -- faults and hostile updates ------------------------------------------------------------


def _small_setup(tmp_path: Path, n: int = 4, rounds: int = 1, **config_overrides: object):
    datas = hospital_datas(tmp_path, n)
    settings = {"min_commitments": 2, "proposal_quorum": 2, "clip_norm": 5.0, **config_overrides}
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=rounds,
        local_epochs=2,
        **settings,  # type: ignore[arg-type]
    )
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    return ws, create_consortium(ws, config=config, datas=datas, password="pw")


def _honest_blob(node: MemberNode, round_id: int) -> bytes:
    info = node.task.round(round_id)
    params, _ = node.global_model(info.global_model)
    return UpdatePipeline.default(max_norm=node.config.clip_norm, frac_bits=node.config.frac_bits).run(
        params, params, num_examples=len(node.data.y_train)
    )


def _wrong_shape(node: MemberNode, r: int) -> bytes:
    return encode_tensors(
        {"coef": np.zeros((3, 3), np.uint64), "intercept": np.zeros(1, np.uint64)},
        {
            "format": "fedledger-update/1",
            "encoding": "fixed64",
            "frac_bits": "24",
            "num_examples": str(len(node.data.y_train)),
        },
    )


def _nan(node: MemberNode, r: int) -> bytes:
    info = node.task.round(r)
    params, _ = node.global_model(info.global_model)
    tensors = {k: np.full(v.shape, np.nan, np.float32) for k, v in params.items()}
    return encode_tensors(
        tensors, {"format": "fedledger-update/1", "encoding": "float32", "num_examples": str(len(node.data.y_train))}
    )


BAD_UPDATES = {
    "wrong shape": (_wrong_shape, "shape"),
    "NaN": (_nan, "NaN"),
    "truncated": (lambda node, r: _honest_blob(node, r)[:-7], "not a safetensors blob"),
    "not safetensors": (lambda node, r: b"\x00garbage" * 10, "not a safetensors blob"),
    "oversized": (lambda node, r: b"\x00" * (node.config.max_update_bytes + 1), "oversized"),
    # Once a SIGSEGV in json.loads for every validator (the C stack overflowed): now a named rejection.
    "deep header": (lambda node, r: (100_000).to_bytes(8, "little") + b"[" * 100_000, "nested 100000 levels deep"),
}


class HostileNode(MemberNode):
    """Commits a crafted blob instead of its trained update."""

    def __init__(self, base: MemberNode, make_blob, *, commit_other_hash: bool = False) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)
        self.make_blob = make_blob
        self.commit_other_hash = commit_other_hash

    def train_and_commit(self, info) -> None:  # type: ignore[no-untyped-def]
        blob = self.make_blob(self, info.round_id)
        blob_id = (
            BlobStore.put(self.store, blob) if len(blob) <= self.store.max_blob_bytes else _raw_put(self.store, blob)
        )
        if self.commit_other_hash:
            blob_id = "cd" * 32  # commits a hash no blob has
        self.task.commit_update(info.round_id, blob_id, len(self.data.y_train))


class _ProposesZeros(Honest):
    """A cheating aggregator, as middleware around an honest node: proposes an all-zero model instead of the
    aggregate the rules give."""

    name = "zero-proposal"

    def proposal(self, model_blob: bytes, round_id: int) -> bytes:
        honest = decode_model(model_blob)
        zeros = {k: np.zeros_like(v) for k, v in honest.params.items()}
        return encode_model(zeros, honest.spec, metadata={"round": str(round_id)})


def test_colluding_aggregators_reaching_the_quorum_finalize_their_model_and_the_audit_names_it(
    tmp_path: Path,
) -> None:
    ws, sim = _small_setup(tmp_path)  # proposal quorum 2: the first two proposals of one model finalize it
    with ws:
        for node in sim.nodes[:2]:
            node.behavior = _ProposesZeros()
        Simulation(sim.task, sim.nodes).run()
        info = sim.task.round(1)
        assert info.phase is Phase.FINALIZED
        final = decode_model(sim.store.get(info.model_hash.removeprefix("0x")))
        assert all(not np.any(v) for v in final.params.values())
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
    assert not report.ok
    assert any("finalized model is not the aggregate" in d.message for d in report.discrepancies), report.to_json()


def _raw_put(store: BlobStore, blob: bytes) -> str:
    import hashlib

    blob_id = hashlib.sha256(blob).hexdigest()
    path = store.path_of(blob_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return blob_id


@pytest.mark.parametrize("kind", [*BAD_UPDATES, "hash mismatch"])
def test_hostile_update_is_rejected_with_its_reason_and_the_round_finalizes(tmp_path: Path, kind: str) -> None:
    overrides = {"max_update_bytes": 4096} if kind == "oversized" else {}
    ws, sim = _small_setup(tmp_path, **overrides)
    with ws:
        if kind == "hash mismatch":
            make, expected = (lambda node, r: _honest_blob(node, r)), "blob unavailable"
        else:
            make, expected = BAD_UPDATES[kind]
        sim.nodes[-1] = HostileNode(sim.nodes[-1], make, commit_other_hash=kind == "hash mismatch")
        Simulation(sim.task, sim.nodes).run()
        info = sim.task.round(1)
        assert info.phase.name == "FINALIZED"
        hostile = sim.nodes[-1].account.address
        bad_index = sim.task.commit_index(1, hostile)
        assert bad_index not in info.accepted
        flags = [e for e in sim.task.events() if isinstance(e, UpdateFlagged) and e.index == bad_index]
        assert flags and all(expected in f.reason for f in flags), [f.reason for f in flags]
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok is (kind != "hash mismatch")
    # The reason is visible to anyone through `fedledger ledger events`.
    out = runner.invoke(app, ["ledger", "events", "-w", str(ws.root), "--json", "--name", "UpdateFlagged"])
    assert out.exit_code == 0, out.output
    assert any(expected in row["reason"] for row in json.loads(out.stdout))


def test_the_audit_names_oversized_and_malformed_blobs_and_still_gives_its_verdict(tmp_path: Path) -> None:
    """A blob over the store's 64 MB limit once stopped `audit verify` (StoreError, exit 10, no verdict)."""
    ws, sim = _small_setup(tmp_path, n=5)
    oversized = b"\x00" * (DEFAULT_MAX_BLOB_BYTES + 1)
    deep = (100_000).to_bytes(8, "little") + b"[" * 100_000
    with ws:
        sim.nodes[-1] = HostileNode(sim.nodes[-1], lambda node, r: oversized)
        sim.nodes[-2] = HostileNode(sim.nodes[-2], lambda node, r: deep)
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase.name == "FINALIZED"
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, ws.store())
        hostile = {sim.nodes[-1].account.address: "oversized", sim.nodes[-2].account.address: "malformed"}
    assert report.ok, report.discrepancies
    assert (report.rounds_checked, report.updates_checked, report.models_checked) == (1, 5, 1)
    named = {d.member: d.message for d in report.refused}
    assert set(named) == set(hostile)
    assert f"update blob is oversized: {len(oversized)} bytes" in named[sim.nodes[-1].account.address]
    assert (
        "update blob is malformed: not a safetensors blob: header is nested 100000 levels deep"
        in named[sim.nodes[-2].account.address]
    )
    out = runner.invoke(app, ["audit", "verify", "-w", str(ws.root)])
    assert out.exit_code == 0, out.output
    assert out.output.count("refused blob:") == 2 and "verified" in out.output
    out = runner.invoke(app, ["audit", "verify", "-w", str(ws.root), "--json"])
    assert out.exit_code == 0, out.output
    body = json.loads(out.stdout)
    assert body["ok"] and {r["member"] for r in body["refused"]} == set(hostile)


def test_a_member_that_dies_mid_task_does_not_stop_the_rounds(tmp_path: Path) -> None:
    ws, sim = _small_setup(tmp_path, rounds=3)
    with ws:
        Simulation(sim.task, sim.nodes, crash_at_round={sim.nodes[2].name: 2}).run()
        history = sim.task.model_history()
        assert sorted(history) == [1, 2, 3]
        assert sim.task.round(2).num_updates == 3
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok


def test_a_restarted_node_resumes_without_committing_twice(tmp_path: Path) -> None:
    ws, sim = _small_setup(tmp_path, rounds=2)
    with ws:
        first = sim.nodes[0]
        sim.nodes[1].step()  # opens round 1
        assert first.step()  # commits
        assert sim.task.has_committed(1, first.account.address)
        # The process dies; a new node for the same member starts from the chain alone.
        restarted = MemberNode(name=first.name, account=first.account, task=sim.task, store=sim.store, data=first.data)
        sim.nodes[0] = restarted
        Simulation(sim.task, sim.nodes).run()
        commits = [e for e in sim.task.events() if isinstance(e, UpdateCommitted)]
        assert Counter((c.round_id, c.member) for c in commits)[(1, first.account.address)] == 1
        assert sorted(sim.task.model_history()) == [1, 2]


def test_a_node_that_loses_the_proposal_race_logs_the_refusal_and_goes_on(tmp_path: Path) -> None:
    ws, sim = _small_setup(tmp_path, rounds=2)
    events: list[NodeEvent] = []
    late = sim.nodes[3]
    late.on_event = events.append
    with ws:
        k = 0  # open, commit, close commits, score, close validation: up to aggregation
        while sim.task.current_round == 0 or sim.task.round(1).phase is not Phase.AGGREGATE:
            sim.nodes[k % len(sim.nodes)].step()
            k += 1
        stale = late.task.member_view(late.account.address)  # the late aggregator reads AGGREGATE ...
        assert stale.round is not None and stale.round.phase is Phase.AGGREGATE
        for node in sim.nodes[:2]:  # ... then a quorum of two finalizes the round
            assert node.step()
        assert sim.task.round(1).phase is Phase.FINALIZED
        late.task.member_view = lambda _address: stale  # type: ignore[method-assign]
        assert late.step() is False  # its proposal is refused: no crash, nothing done
        refused = [e for e in events if e.action == "refused"]
        assert refused and refused[0].details["function"] == "propose_aggregate"
        assert "round not in aggregation" in refused[0].details["reason"]
        del late.task.member_view  # reads the chain again
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1, 2]


def test_a_node_that_wakes_after_a_deadline_closes_the_phase_instead_of_acting(tmp_path: Path) -> None:
    """A commitment after the commit deadline is refused by the contract; a node that kept training and retrying it
    held the round open for good. Past the deadline it closes the phase instead, and a round with too few
    commitments is aborted, so the task goes on."""
    ws, sim = _small_setup(tmp_path, rounds=2)
    events: list[NodeEvent] = []
    late = sim.nodes[0]
    late.on_event = events.append
    with ws:
        assert sim.nodes[1].step()  # opens round 1
        ws.chain.advance_time(late.config.commit_duration + 1)  # every member slept through the commit phase
        assert late.step()
        assert [e.action for e in events] == ["close_commits"]  # no training, no refused commitment
        assert sim.task.round(1).phase is Phase.ABORTED and sim.task.round(1).num_updates == 0
        Simulation(sim.task, sim.nodes).run()  # the next round runs as usual
        assert sorted(sim.task.model_history()) == [2]


def test_fedledger_node_acts_for_one_member_from_the_chain_state(tmp_path: Path, monkeypatch) -> None:
    ws, sim = _small_setup(tmp_path)
    root, data_csv = ws.root, tmp_path / "data" / "hospital_1.csv"
    ws.close()
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    args = ["node", "-w", str(root), "--as", "hospital-1", "--data", str(data_csv), "--label", "diagnosis", "--once"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "open_round" in first.output
    second = runner.invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "commit" in second.output
    with Workspace.load(root) as reopened:
        task = reopened.task()
        assert task.current_round == 1
        assert task.has_committed(1, reopened.keystore.address("hospital-1"))
        assert not task.has_committed(1, reopened.keystore.address("hospital-2"))


@pytest.mark.parametrize("name", ["clip_to_median_norm", "lift_to_median_norm"])
def test_scaling_to_the_median_norm_is_what_aggregators_and_the_audit_apply(tmp_path: Path, name: str) -> None:
    # Each setting alone: scaling long updates down (FLAME's clip), or short ones up (the lift).
    other = "lift_to_median_norm" if name == "clip_to_median_norm" else "clip_to_median_norm"
    ws, sim = _small_setup(tmp_path, rounds=2, **{name: True, other: False})
    with ws:
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1, 2]
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok
        # Round 2's finalized model is the scaled aggregate, not the plain one: the setting took effect.
        info = sim.task.round(2)
        start = decode_model(sim.store.get(info.global_model.removeprefix("0x")))
        recompute = {
            clip: aggregate_round(
                sim.store,
                replace(sim.nodes[0].config, **{name: clip}),
                start.params,
                start.spec,
                sim.task.updates(2),
                info.accepted,
                round_id=2,
                previous_params=previous_global_params(sim.task, sim.store, 2),
            ).model_hash
            for clip in (True, False)
        }
        assert recompute[True] == info.model_hash != recompute[False]


def test_a_clip_norm_beyond_fixed_point_or_bad_fractional_bits_is_a_config_error() -> None:
    model = {"kind": "sklearn-logreg", "n_features": 4, "n_classes": 3}
    assert TaskConfig(model=model, clip_norm=2.0**37, frac_bits=24).clip_norm == 2.0**37
    with pytest.raises(ConfigError, match="clip_norm 274877906944.0 does not fit int64 fixed point with 24 "):
        TaskConfig(model=model, clip_norm=2.0**38, frac_bits=24)
    with pytest.raises(ConfigError, match="clip_norm inf does not fit"):
        TaskConfig(model=model, clip_norm=math.inf)
    with pytest.raises(ConfigError, match="clip_norm nan does not fit"):
        TaskConfig(model=model, clip_norm=math.nan)
    for bad in (53, -1, 2.5, True):
        with pytest.raises(ConfigError, match=f"frac_bits must be an integer in \\[0, 52\\], got {bad!r}"):
            TaskConfig(model=model, frac_bits=bad)


@pytest.mark.parametrize(
    ("name", "default"), [("clip_to_median_norm", DEFAULT_CLIP_TO_MEDIAN_NORM), ("lift_to_median_norm", True)]
)
def test_median_norm_scaling_defaults_and_older_configs(name: str, default: bool) -> None:
    model = {"kind": "sklearn-logreg", "n_features": 4, "n_classes": 3}
    assert getattr(TaskConfig(model=model), name) is default
    assert getattr(TaskConfig(model=model, secure_aggregation=True), name) is False
    with pytest.raises(ConfigError, match=f"secure aggregation sees no individual update norm, so {name} must"):
        TaskConfig(model=model, secure_aggregation=True, **{name: True})
    with pytest.raises(ConfigError, match=f"{name} must be true or false, got 'yes'"):
        TaskConfig(model=model, **{name: "yes"})
    # A config committed before the setting existed (no such key) is read as what its aggregators did.
    body = json.loads(TaskConfig(model=model, **{name: True}).to_bytes())
    del body[name]
    assert getattr(TaskConfig.from_bytes(json.dumps(body).encode()), name) is False
    on = TaskConfig(model=model, **{name: True})
    assert TaskConfig.from_bytes(on.to_bytes()) == on


def test_task_create_from_a_config_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    root = tmp_path / "ws"
    assert runner.invoke(app, ["init", "-w", str(root), "--light-kdf"]).exit_code == 0
    config = tmp_path / "task.json"
    config.write_text(json.dumps({"model": {"kind": "sklearn-logreg", "n_features": 4, "n_classes": 3}, "rounds": 2}))
    out = runner.invoke(app, ["task", "create", str(config), "-w", str(root), "--json"])
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    with Workspace.load(root) as ws:
        assert ws.task().params().config_hash == created["config_hash"]
        assert ws.task().params().max_rounds == 2
    config.write_text(json.dumps({"model": {"n_features": 4}}))
    bad = runner.invoke(app, ["task", "create", str(config), "-w", str(root), "--name", "other"])
    assert bad.exit_code == 2 and "needs a 'kind'" in bad.output

    # A task with a purpose checks commitments against the workspace's data registry.
    model = {"kind": "sklearn-logreg", "n_features": 4, "n_classes": 3}
    config.write_text(json.dumps({"model": model, "rounds": 2, "purpose": "model-training:iris"}))
    no_registry = runner.invoke(app, ["task", "create", str(config), "-w", str(root), "--name", "iris"])
    assert no_registry.exit_code == 2 and "registry" in no_registry.output
    deployed = runner.invoke(app, ["data", "registry", "deploy", "-w", str(root), "--json"])
    assert deployed.exit_code == 0, deployed.output
    out = runner.invoke(app, ["task", "create", str(config), "-w", str(root), "--name", "iris"])
    assert out.exit_code == 0, out.output
    with Workspace.load(root) as ws:
        params = ws.task("iris").params()
        assert params.data_registry == ws.config.data_registry != ""
        assert params.purpose == "0x" + purpose_id("model-training:iris").hex()


def test_no_personal_value_of_the_demo_reaches_the_chain(demo: tuple[Path, dict]) -> None:
    """The hospitals' CSVs carry their patients' names, e-mails and SSNs; the local pipeline drops them
    before training and registration, and none of them is anywhere on chain (calldata, events, storage)."""
    import pandas as pd

    from fedledger.data.ledger_privacy import scan_chain_for_values
    from fedledger.demo import IDENTIFIER_COLUMNS

    root, data = demo
    raws = sorted(p for p in (root / "data").glob("hospital_*.csv") if not p.name.endswith(".protected.csv"))
    assert len(raws) == len(data["members"])
    values = sorted({str(v) for raw in raws for c in IDENTIFIER_COLUMNS for v in pd.read_csv(raw)[c]})
    assert len(values) > 300
    assert all(sorted(d["dropped_identifiers"]) == sorted(IDENTIFIER_COLUMNS) for d in data["datasets"])
    control = "Hospital 1"  # an organization name the consortium does put on chain: the scan can see
    with Workspace.load(root) as ws:
        findings = scan_chain_for_values(ws.chain, [*values, control])
    assert findings and {f.value for f in findings} == {control}, [f for f in findings if f.value != control][:5]
