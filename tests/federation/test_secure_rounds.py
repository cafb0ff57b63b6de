"""Secure-aggregation rounds on the ledger, end to end: KEYS -> SHARES -> OPEN -> UNMASK -> AGGREGATE.

Members drive the phases with :mod:`fedledger.privacy.secagg`; messages live in the
store, hashes on chain. The finalized model must equal the plaintext FedAvg of the
same updates bit for bit, survive a dropout after key sharing, abort cleanly when
too many drop, resume after a node restart, and pass (or fail, when tampered)
``audit verify``.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import hospital_datas
from fedledger.audit import verify_task
from fedledger.chain import Phase
from fedledger.chain.events import RoundAborted, SharesRevealed, UpdateCommitted, UpdateFlagged
from fedledger.federation import MemberNode, Simulation, TaskConfig
from fedledger.federation.setup import SimulatedConsortium, create_consortium
from fedledger.privacy.dp import SystemNoise
from fedledger.privacy.secagg import MaskedInput
from fedledger.store import BlobStore
from fedledger.workspace import Workspace
from helpers.federation import plaintext_fedavg_hash


def _setup(tmp_path: Path, n: int = 4, rounds: int = 1, **overrides: Any) -> tuple[Workspace, SimulatedConsortium]:
    datas = hospital_datas(tmp_path, n)
    settings: dict[str, Any] = {"min_commitments": 2, "proposal_quorum": 2, "clip_norm": 5.0, **overrides}
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=rounds,
        local_epochs=1,
        secure_aggregation=True,
        **settings,
    )
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    return ws, create_consortium(ws, config=config, datas=datas, password="pw")


def _committers(sim: SimulatedConsortium, round_id: int) -> list[str]:
    return [u.member for u in sim.task.updates(round_id)]


class DropsAfter(MemberNode):
    """A member whose process dies once its round reaches ``phase`` (it stops acting)."""

    def __init__(self, base: MemberNode, round_id: int, phase: Phase) -> None:
        super().__init__(
            name=base.name, account=base.account, task=base.task, store=base.store, data=base.data, state_dir=None
        )
        self.round_id, self.phase = round_id, phase

    def step(self) -> bool:
        info = self.task.round(self.task.current_round) if self.task.current_round else None
        if info is not None and info.round_id == self.round_id and info.phase is self.phase:
            return False
        return super().step()


class WrongShapeMasked(MemberNode):
    """Commits a masked input whose tensors have the wrong shape (after honestly sharing its keys)."""

    def __init__(self, base: MemberNode) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)

    def commit(self, r: int, update_hash: str, n: int, epsilon: float | None, **extra: Any) -> None:
        honest = MaskedInput.from_bytes(self.store.get(update_hash))
        bad = dataclasses.replace(
            honest, tensors={"coef": np.zeros((3, 3), np.uint64), "intercept": np.zeros(1, np.uint64)}
        )
        super().commit(r, self.store.put(bad.to_bytes()), n, epsilon, **extra)


# -- the happy path ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two secure rounds of four members, run to the end; the workspace folder (closed)."""
    tmp = tmp_path_factory.mktemp("secure")
    ws, sim = _setup(tmp, rounds=2)
    with ws:
        Simulation(sim.task, sim.nodes).run()
        history = sim.task.model_history()
        assert sorted(history) == [1, 2]
        for r in (1, 2):
            members = _committers(sim, r)
            assert len(members) == 4
            # The unmasked model is exactly plaintext FedAvg of the same updates.
            assert history[r] == plaintext_fedavg_hash(sim, r, members)
    return ws.root


def test_secure_rounds_equal_plaintext_fedavg_bit_for_bit_and_verify(finished: Path) -> None:
    with Workspace.load(finished) as ws:
        task, store = ws.task(), BlobStore(ws.root / ws.config.store)
        events = task.events()
        reveals = Counter(e.round_id for e in events if isinstance(e, SharesRevealed))
        assert reveals == {1: 4, 2: 4}
        # Only masked updates were ever committed: no plaintext update blob exists.
        for e in events:
            if isinstance(e, UpdateCommitted):
                assert b"secagg_context" in store.get(e.update_hash.removeprefix("0x"))[:4096]
        report = verify_task(ws.chain, ws.config.consortium, task.address, store)
        assert report.ok, report.to_json()
        assert report.models_checked == 2
    # Round secrets are deleted once rounds close (forward secrecy of the published messages).
    assert not list((finished / "secagg").rglob("*.secagg"))


def _tampered_copy(finished: Path, tmp_path: Path, event_type: type, field: str) -> tuple[Path, str, str]:
    root = tmp_path / "ws"
    shutil.copytree(finished, root)
    with Workspace.load(root) as ws:
        event = next(e for e in ws.task().events() if isinstance(e, event_type) and e.round_id == 2)
        blob_hash = getattr(event, field)
        path = BlobStore(ws.root / ws.config.store).path_of(blob_hash.removeprefix("0x"))
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x01  # one bit of one share / one masked coordinate
    path.write_bytes(bytes(data))
    return root, blob_hash, event.member


@pytest.mark.parametrize(
    ("event_type", "field", "message"),
    [
        (UpdateCommitted, "update_hash", "update blob does not match its committed hash"),
        (SharesRevealed, "reveal_hash", "share reveal blob does not match its committed hash"),
    ],
    ids=["masked input", "reveal"],
)
def test_audit_names_a_tampered_secure_message(
    finished: Path, tmp_path: Path, event_type: type, field: str, message: str
) -> None:
    root, blob_hash, member = _tampered_copy(finished, tmp_path, event_type, field)
    with Workspace.load(root) as ws:
        report = verify_task(ws.chain, ws.config.consortium, ws.task().address, BlobStore(ws.root / ws.config.store))
    assert not report.ok
    first = report.discrepancies[0]
    assert (first.round_id, first.member, first.hash, first.message) == (2, member, blob_hash, message)


def test_audit_cannot_unmask_when_too_many_reveals_were_tampered(finished: Path, tmp_path: Path) -> None:
    """One bad reveal is tolerated (3 of 4 reach the threshold); two leave the model unprovable, and the
    report says why after naming each tampered blob."""
    root = tmp_path / "ws"
    shutil.copytree(finished, root)
    with Workspace.load(root) as ws:
        store, task = BlobStore(ws.root / ws.config.store), ws.task()
        reveals = [e for e in task.events() if isinstance(e, SharesRevealed) and e.round_id == 1][:2]
        for e in reveals:
            path = store.path_of(e.reveal_hash.removeprefix("0x"))
            path.write_bytes(path.read_bytes().replace(b'"holder"', b'"holder" '))
        report = verify_task(ws.chain, ws.config.consortium, task.address, store)
    messages = [(d.round_id, d.member, d.message) for d in report.discrepancies]
    assert messages[:2] == [(1, e.member, "share reveal blob does not match its committed hash") for e in reveals]
    assert messages[2][0] == 1 and messages[2][2].startswith("cannot unmask the aggregate from the published messages")
    assert "not enough self-mask seed shares" in messages[2][2]


# -- dropouts and restarts --------------------------------------------------------------------


def test_a_dropout_and_a_malformed_input_are_recovered_and_a_restarted_node_finishes_its_round(
    tmp_path: Path,
) -> None:
    ws, sim = _setup(tmp_path, n=5, rounds=1)  # threshold 3 of 5
    with ws:
        dropped, malformed = sim.nodes[3], sim.nodes[2]
        sim.nodes[3] = DropsAfter(dropped, 1, Phase.OPEN)  # advertised and shared, then died
        sim.nodes[2] = WrongShapeMasked(malformed)  # shared, then committed a malformed masked input
        first = sim.nodes[0]
        while not (sim.task.current_round and sim.task.has_committed(1, first.account.address)):
            for node in sim.nodes:
                node.step()
        # Node 0's process dies after committing its masked input; a new one starts from chain and workspace.
        secrets_dir = ws.root / "secagg" / "hospital-1"
        stored = list(secrets_dir.glob("*.secagg"))
        assert len(stored) == 1 and b"self_mask_seed" not in stored[0].read_bytes()  # encrypted on disk
        sim.nodes[0] = MemberNode(
            name=first.name,
            account=first.account,
            task=sim.task,
            store=sim.store,
            data=first.data,
            state_dir=secrets_dir,
        )
        Simulation(sim.task, sim.nodes).run()
        info = sim.task.round(1)
        assert info.phase is Phase.FINALIZED
        committers = _committers(sim, 1)
        assert dropped.account.address not in committers and len(committers) == 4
        survivors = [m for m in committers if m != malformed.account.address]
        assert info.model_hash == plaintext_fedavg_hash(sim, 1, survivors)
        events = sim.task.events()
        bad_index = sim.task.commit_index(1, malformed.account.address)
        flags = [e.reason for e in events if isinstance(e, UpdateFlagged) and e.index == bad_index]
        assert flags and all(f.startswith("dropped: masked input tensors") for f in flags), flags
        reveals = [e.member for e in events if isinstance(e, SharesRevealed)]
        assert sorted(reveals) == sorted(survivors)  # the restarted node revealed, once
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok


def test_the_aggregate_norm_check_is_exact_and_catches_an_unclipped_member() -> None:
    from fedledger.federation.secure import aggregate_norm_ok
    from fedledger.learning import FixedPoint

    codec = FixedPoint(24)
    within = {"w": codec.encode(np.full(100, 0.5 - 1e-6))}  # norm 5 - 1e-5 <= clip 5
    beyond = {"w": codec.encode(np.full(100, 0.5 + 1e-3))}  # norm 5.01: one member skipped clipping
    assert aggregate_norm_ok(within, clip_norm=5.0, frac_bits=24)
    assert not aggregate_norm_ok(beyond, clip_norm=5.0, frac_bits=24)
    negative = {"w": codec.encode(np.full(100, -0.5 - 1e-3))}  # signs read as two's complement
    assert not aggregate_norm_ok(negative, clip_norm=5.0, frac_bits=24)


def test_dropouts_beyond_the_threshold_abort_the_round_and_the_next_one_runs(tmp_path: Path) -> None:
    ws, sim = _setup(tmp_path, rounds=2)
    with ws:
        # Two of four die after committing, before revealing: 2 reveals < threshold 3.
        sim.nodes[2] = DropsAfter(sim.nodes[2], 1, Phase.UNMASK)
        sim.nodes[3] = DropsAfter(sim.nodes[3], 1, Phase.UNMASK)
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase is Phase.ABORTED
        aborted = [e for e in sim.task.events() if isinstance(e, RoundAborted)]
        assert [(e.round_id, e.reason) for e in aborted] == [(1, "too few reveals for the secagg threshold")]
        # Nothing lost: round 2 starts from the same model, everyone takes part, and it finalizes.
        info = sim.task.round(2)
        assert info.global_model == sim.task.round(1).global_model
        assert info.phase is Phase.FINALIZED
        assert info.model_hash == plaintext_fedavg_hash(sim, 2, _committers(sim, 2))
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok


def test_secure_rounds_with_client_level_dp_finalize_and_declare_the_spend(tmp_path: Path) -> None:
    """DP noise is added before masking; the aggregate norm check allows for it, and spends are declared."""
    ws, sim = _setup(tmp_path, rounds=1, dp_epsilon=8.0, min_commitments=3)
    with ws:
        config = sim.nodes[0].config
        assert config.privacy is not None and config.privacy.noise_multiplier is not None
        # Nobody sees an update: each member adds one of min_commitments noise shares, which only
        # the sum of at least that many (the contract's commitment quorum) brings to sigma * S.
        assert config.dp_noise_shares == 3
        stds: list[float] = []
        for node in sim.nodes:
            node.dp_noise = _RecordingNoise(stds)
        Simulation(sim.task, sim.nodes).run()
        assert sim.task.round(1).phase is Phase.FINALIZED
        expected = config.privacy.noise_multiplier * config.clip_norm / 3**0.5
        assert len(stds) == 4 * 2 and stds == pytest.approx([expected] * 8)  # 4 members x (coef, intercept)
        commits = [e for e in sim.task.events() if isinstance(e, UpdateCommitted)]
        assert len(commits) == 4 and len({c.num_examples for c in commits}) > 1
        assert all(sim.task.privacy_spent(c.member) > 0 for c in commits)
        # Every member's noise must count equally: masked inputs carry weight 1, not the example count.
        for c in commits:
            masked = MaskedInput.from_bytes(sim.store.get(c.update_hash.removeprefix("0x")))
            assert masked.num_examples == 1
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok


class _RecordingNoise:
    """Fresh Gaussian noise that records the std each draw asked for."""

    def __init__(self, stds: list[float]) -> None:
        self.stds = stds

    def normal(self, scale: float, shape: tuple[int, ...]) -> np.ndarray:
        self.stds.append(scale)
        return SystemNoise().normal(scale, shape)


def test_a_large_round_masks_over_a_sparse_graph_and_recovers_a_dropout(tmp_path: Path) -> None:
    """Above ten trainers each member masks with and shares to 2*ceil(log2 n) neighbours only, on a ring shuffled
    by the seed the chain fixed when the round opened; a dropped member's masks are still removed."""
    from fedledger.federation.secure import round_context

    ws, sim = _setup(tmp_path, n=12, rounds=1, min_commitments=7, proposal_quorum=1)
    with ws:
        dropped = sim.nodes[5]
        sim.nodes[5] = DropsAfter(dropped, 1, Phase.OPEN)  # advertised and shared, then died
        Simulation(sim.task, sim.nodes).run()
        info = sim.task.round(1)
        assert info.phase is Phase.FINALIZED
        context = round_context(sim.task, 1)
        assert context is not None
        config = context[0]
        assert len(config.members) == 12 and config.neighbours == 8
        assert config.threshold == 6  # the round's 7 of 12 (a strict majority), scaled to a group of 9
        assert config.graph_seed == sim.task.secure_round(1).graph_seed and any(config.graph_seed)
        me = dropped.account.address
        assert len(config.group_of(me)) == 9  # itself and 8 of the 11 others
        committers = _committers(sim, 1)
        assert me not in committers and len(committers) == 11
        assert info.model_hash == plaintext_fedavg_hash(sim, 1, committers)
        assert verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store).ok


def test_the_graph_degree_grows_with_the_log_of_the_trainers() -> None:
    from fedledger.federation.secure import graph_degree, group_threshold, neighbourhood
    from fedledger.privacy.secagg import RoundConfig

    assert [graph_degree(n) for n in (2, 10, 11, 100, 1000, 1024)] == [None, None, 8, 14, 20, 20]
    assert group_threshold(51, 100, 14) == 8 and group_threshold(90, 100, 14) == 14  # majority; scaled fraction
    members = tuple(f"m{i:03d}" for i in range(100))
    config = RoundConfig(task="t", round_id=1, members=members, threshold=8, neighbours=14, graph_seed=b"seed")
    assert all(len(neighbourhood(config, m)) == 29 for m in members[:5])  # 2k + 1 of the 100 members
