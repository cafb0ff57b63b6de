"""Hierarchical federation: a gateway's device round (secure aggregation among its devices) and the audit of the
gateway's committed update against its manifest (fedledger.federation.hierarchy, fedledger.audit.hierarchy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedledger.audit.hierarchy import check_gateway_update
from fedledger.chain.events import UpdateCommitted
from fedledger.exceptions import NotEnoughShares
from fedledger.federation.hierarchy import (
    MANIFEST_KEY,
    DeviceFleet,
    DeviceRound,
    DeviceSettings,
    GatewayManifest,
    device_round_config,
    run_device_round,
)
from fedledger.learning.aggregation.fedavg import fedavg, weighted_sum
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import UpdatePipeline
from fedledger.store import BlobStore

TASK = "0x" + "ab" * 20
GATEWAY = "0x" + "cd" * 20
FRAC_BITS = 16
SHAPES = {"w": (3, 4), "b": (4,)}


def fleet_of(devices: int, *, rows: int = 60, neighbours: int | None = 4) -> DeviceFleet:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(rows, 3)), rng.integers(0, 2, size=rows)
    return DeviceFleet(X, y, DeviceSettings(devices=devices, neighbours=neighbours), seed=7)


def device_updates(fleet: DeviceFleet) -> dict[str, tuple[dict[str, Any], int]]:
    """Each device's update as the task's pipeline makes it: a clipped float delta in fixed point."""
    pipeline = UpdatePipeline.default(max_norm=1.0, frac_bits=FRAC_BITS)
    zero = {n: np.zeros(s, dtype=np.float32) for n, s in SHAPES.items()}
    out = {}
    for i, device in enumerate(fleet.ids):
        rng = np.random.default_rng(100 + i)
        local = {n: rng.normal(scale=0.5, size=s).astype(np.float32) for n, s in SHAPES.items()}
        examples = len(fleet.rows[device])
        update, _ = pipeline.transform(local, zero, num_examples=examples)
        out[device] = (update, examples)
    return out


def device_round(
    fleet: DeviceFleet, store: BlobStore, *, round_id: int = 1, offline: frozenset[str] = frozenset()
) -> tuple[DeviceRound, dict[str, tuple[dict[str, Any], int]]]:
    updates = device_updates(fleet)
    config = device_round_config(TASK, GATEWAY, round_id, fleet.ids, fleet.settings, graph_seed=b"model-hash")
    done = run_device_round(
        fleet, config, store, updates.__getitem__, frac_bits=FRAC_BITS, gateway=GATEWAY, task=TASK, offline=offline
    )
    return done, updates


def test_the_gateway_sum_is_its_devices_weighted_sum_bit_for_bit(tmp_path: Path) -> None:
    fleet = fleet_of(12)
    assert sorted(len(r) for r in fleet.rows.values()) == [5] * 12  # each device its own slice of the rows
    assert len(set().union(*(set(r.tolist()) for r in fleet.rows.values()))) == 60
    done, updates = device_round(fleet, BlobStore(tmp_path))
    clear = [updates[d][0] for d in fleet.ids]
    weights = [updates[d][1] for d in fleet.ids]
    expected = weighted_sum(clear, weights)
    assert sorted(done.result.weighted_sum) == sorted(expected)
    for name in expected:
        assert np.array_equal(done.result.weighted_sum[name], expected[name])
    mean = fedavg(clear, weights)
    assert all(np.array_equal(done.mean()[n], mean[n]) for n in mean)
    assert done.result.total_examples == 60 and done.result.dropouts == ()
    # The manifest records every device's masked input by hash, the reveals, and the sum's total.
    assert [d for d, _, _ in done.manifest.inputs] == list(fleet.ids)
    assert len(done.manifest.reveals) == 12 and done.manifest.total_examples == 60
    stored = BlobStore(tmp_path).get(done.manifest_hash)
    assert GatewayManifest.from_bytes(stored).to_bytes() == stored
    decoded = FixedPoint(FRAC_BITS).decode(done.mean()["w"])
    assert np.abs(decoded).max() < 1.0


def test_a_device_dropout_is_recovered_and_named(tmp_path: Path) -> None:
    fleet = fleet_of(12)
    offline = frozenset({fleet.ids[2], fleet.ids[9]})
    done, updates = device_round(fleet, BlobStore(tmp_path), offline=offline)
    assert done.result.dropouts == tuple(sorted(offline)) == done.manifest.request.dropouts
    survivors = [d for d in fleet.ids if d not in offline]
    expected = weighted_sum([updates[d][0] for d in survivors], [updates[d][1] for d in survivors])
    assert all(np.array_equal(done.result.weighted_sum[n], expected[n]) for n in expected)
    assert done.result.total_examples == 50


def test_too_many_dropouts_in_one_group_are_named_not_guessed(tmp_path: Path) -> None:
    fleet = fleet_of(6, neighbours=None)  # one group of six, threshold 5: two dropouts are one too many
    with pytest.raises(NotEnoughShares) as raised:
        device_round(fleet, BlobStore(tmp_path), offline=frozenset(fleet.ids[:2]))
    assert set(raised.value.missing) <= set(fleet.ids) and raised.value.missing


def test_simulated_dropouts_are_seeded_and_sized() -> None:
    fleet = DeviceFleet(np.zeros((40, 2)), np.zeros(40), DeviceSettings(devices=20, dropout=0.1), seed=3)
    assert fleet.offline(5) == fleet.offline(5) and len(fleet.offline(5)) == 2
    assert fleet_of(4).offline(5) == frozenset()


# -- the audit -----------------------------------------------------------------------------------------------------


def commitment(done: DeviceRound, *, round_id: int = 1, examples: int | None = None) -> UpdateCommitted:
    n = done.result.total_examples if examples is None else examples
    return UpdateCommitted(TASK, 10, "0x" + "00" * 32, 0, round_id, GATEWAY, "0x" + "11" * 32, n, 0, 0, 0)


def audit(store: BlobStore, e: UpdateCommitted, tensors: dict[str, Any], meta: dict[str, str]) -> list[str]:
    found: list[str] = []
    checked = check_gateway_update(store, TASK, e, tensors, meta, lambda message, **where: found.append(message))
    assert checked
    return found


def test_the_audit_rederives_an_honest_gateway_update(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done, _ = device_round(fleet_of(12), store)
    meta = {MANIFEST_KEY: done.manifest_hash, "num_examples": str(done.result.total_examples)}
    assert audit(store, commitment(done), done.mean(), meta) == []
    # An update naming no manifest is not a gateway's: nothing to check here.
    assert not check_gateway_update(store, TASK, commitment(done), done.mean(), {}, lambda *a, **k: None)


def test_the_audit_names_a_gateway_whose_update_is_not_its_devices_mean(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done, _ = device_round(fleet_of(12), store)
    meta = {MANIFEST_KEY: done.manifest_hash, "num_examples": str(done.result.total_examples)}
    tampered = dict(done.mean())
    tampered["w"] = tampered["w"].copy()
    tampered["w"][0, 0] += np.uint64(1)
    assert audit(store, commitment(done), tampered, meta) == [
        "gateway aggregate does not match its manifest: tensor 'w' of the committed update is not the devices' "
        "example-weighted mean"
    ]
    inflated = {MANIFEST_KEY: done.manifest_hash, "num_examples": "90"}
    [found] = audit(store, commitment(done, examples=90), done.mean(), inflated)
    assert "the devices trained on 60 examples" in found
    [found] = audit(store, commitment(done, round_id=2), done.mean(), meta)
    assert "the manifest is for task" in found and "round 1" in found


def test_the_audit_names_a_tampered_device_blob_or_manifest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    done, _ = device_round(fleet_of(12), store)
    meta = {MANIFEST_KEY: done.manifest_hash, "num_examples": str(done.result.total_examples)}
    # A masked input rewritten in the store no longer matches the hash the manifest names.
    _, blob_hash, _ = done.manifest.inputs[3]
    path = tmp_path / blob_hash[:2] / blob_hash
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    [found] = audit(store, commitment(done), done.mean(), meta)
    assert "cannot be recomputed from their committed messages" in found and blob_hash in found
    # A manifest that claims another aggregate than its messages unmask to.
    store2 = BlobStore(tmp_path / "other")
    done2, _ = device_round(fleet_of(12), store2)
    forged = GatewayManifest(**{**done2.manifest.__dict__, "aggregate": "ee" * 32})
    meta2 = {MANIFEST_KEY: store2.put(forged.to_bytes()), "num_examples": str(done2.result.total_examples)}
    [found] = audit(store2, commitment(done2), done2.mean(), meta2)
    assert "is not the aggregate the manifest names" in found
    missing = {MANIFEST_KEY: "ff" * 32, "num_examples": "60"}
    [found] = audit(store2, commitment(done2), done2.mean(), missing)
    assert found.startswith("gateway manifest unavailable or malformed")
