"""Set-ups the masked-check tests share: a committee's keys with every member's sealed bundle, and a consortium of
four hospitals running secure rounds with masked checks."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from conftest import hospital_datas
from fedledger.federation.config import TaskConfig
from fedledger.federation.setup import SimulatedConsortium, create_consortium
from fedledger.privacy.masked_checks import CheckParams, share_update
from fedledger.privacy.masked_party import launch_committee, write_job
from fedledger.workspace import Workspace


def sealed_bundles(
    params: CheckParams, updates: Mapping[str, np.ndarray[Any, Any]], examples: Mapping[str, int], context: bytes
) -> tuple[list[X25519PrivateKey], list[bytes], dict[str, bytes]]:
    """Fresh keys for the committee, their public halves, and each member's update shared and sealed to them."""
    keys = [X25519PrivateKey.generate() for _ in range(params.committee)]
    publics = [k.public_key().public_bytes_raw() for k in keys]
    bundles = {
        m: share_update(u, params, member=m, examples=examples[m], context=context, committee_keys=publics)
        for m, u in updates.items()
    }
    return keys, publics, bundles


def run_committee(
    folder: Path,
    params: CheckParams,
    context: bytes,
    keys: list[X25519PrivateKey],
    bundles: dict[str, bytes],
    **job: Any,
) -> list[dict[str, Any]]:
    """Every committee member's result of checking ``bundles``, the committee run as local processes; ``job`` goes
    to :func:`~fedledger.privacy.masked_party.write_job` (reference, own references, center)."""
    job.setdefault("reference", None)
    path = write_job(folder, params, context=context, bundles=bundles, keys=keys, timeout=120.0, **job)
    return launch_committee(path, wait=300)


def masked_consortium(tmp_path: Path, rounds: int, **settings: Any) -> tuple[Workspace, SimulatedConsortium]:
    """Four hospitals (breast cancer) in secure rounds with masked checks; ``settings`` go to the task config."""
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=rounds,
        local_epochs=1,
        secure_aggregation=True,
        masked_checks=True,
        min_commitments=2,
        proposal_quorum=2,
        clip_norm=5.0,
        validate_duration=120,
        **settings,
    )
    ws = Workspace.create(tmp_path / "ws", scrypt_n=2**14)
    return ws, create_consortium(ws, config=config, datas=hospital_datas(tmp_path, 4), password="pw")
