"""Secure-aggregation rounds on the ledger, end to end: KEYS -> SHARES -> OPEN -> UNMASK -> AGGREGATE.

Members drive the phases with :mod:`fedledger.privacy.secagg`; messages live in the
store, hashes on chain. The finalized model must equal the plaintext FedAvg of the
same updates bit for bit, survive a dropout after key sharing, abort cleanly when
too many drop, resume after a node restart, and pass (or fail, when tampered)
``audit verify``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from fedledger.audit import verify_task
from fedledger.chain import Phase
from fedledger.chain.events import RoundAborted, SharesRevealed, UpdateCommitted
from fedledger.federation import LocalData, MemberNode, Simulation, TaskConfig
from fedledger.federation.setup import SimulatedConsortium, create_consortium
from fedledger.learning import (
    apply_update,
    breast_cancer_hospitals,
    decode_model,
    encode_model,
    fedavg,
    load_csv_dataset,
    train_val_split,
)
from fedledger.learning.data import FeatureStats, Standardizer
from fedledger.workspace import Workspace


def _setup(tmp_path: Path, n: int = 4, rounds: int = 1, **overrides: Any) -> tuple[Workspace, SimulatedConsortium]:
    split = breast_cancer_hospitals(tmp_path / "data", n_hospitals=n, alpha=1.0, seed=5)
    local = [load_csv_dataset(p, split.label_column) for p in split.hospitals]
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(d.X) for d in local))
    datas = []
    for k, d in enumerate(local):
        X_tr, y_tr, X_val, y_val = train_val_split(scaler.transform(d.X), d.y, val_fraction=0.25, seed=k)
        datas.append(LocalData(X_tr, y_tr, X_val, y_val))
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


def _plaintext_fedavg(sim: SimulatedConsortium, round_id: int, members: list[str]) -> str:
    """The model hash plaintext FedAvg gives for the same members' updates (training is seeded: replayable)."""
    info = sim.task.round(round_id)
    nodes = {n.account.address: n for n in sim.nodes}
    first = nodes[members[0]]
    global_params, spec = first.global_model(info.global_model)
    updates, weights = [], []
    for m in sorted(members):
        update, _, n = nodes[m]._local_update(info)
        updates.append(update)
        weights.append(n)
    params = apply_update(global_params, fedavg(updates, weights), frac_bits=first.config.frac_bits)
    blob = encode_model(params, spec, metadata={"round": str(round_id)})
    return "0x" + hashlib.sha256(blob).hexdigest()


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


# -- the happy path ------------------------------------------------------------------------


def test_secure_rounds_equal_plaintext_fedavg_bit_for_bit_and_verify(tmp_path: Path) -> None:
    ws, sim = _setup(tmp_path, rounds=2)
    with ws:
        Simulation(sim.task, sim.nodes).run()
        history = sim.task.model_history()
        assert sorted(history) == [1, 2]
        for r in (1, 2):
            members = _committers(sim, r)
            assert len(members) == 4
            assert history[r] == _plaintext_fedavg(sim, r, members)
        events = sim.task.events()
        reveals = Counter(e.round_id for e in events if isinstance(e, SharesRevealed))
        assert reveals == {1: 4, 2: 4}
        # Nothing on chain but hashes; no plaintext update in the store: every committed blob is masked.
        for e in events:
            if isinstance(e, UpdateCommitted):
                assert b"secagg" in sim.store.get(e.update_hash.removeprefix("0x"))[:2048]
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report.to_json()
        assert report.models_checked == 2
        # Round secrets are deleted once rounds close (forward secrecy of the published messages).
        assert not list((ws.root / "secagg").rglob("*.secagg"))
