"""The IoT-intrusion worked example end to end, through its own `run` script: edge gateways, each its own OS
processes through the ``fedledger`` command only, each aggregating its simulated devices' updates by secure
aggregation, on NSL-KDD records split by attack family, with KDDTest+ as the test set. A small size (four gateways
of 50 devices, 500 records per gateway, two rounds) keeps it short; the README quotes the 20 x 500 run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA

RUN = REPO / "examples" / "iot-intrusion" / "run"
KDD = SHARED_DATA / "nsl-kdd"
GATEWAYS = {"Gateway DoS": "dos", "Gateway Probe": "probe", "Gateway R2L": "r2l", "Gateway U2R": "u2r"}
ROUNDS = 2
DEVICES = 50

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not KDD.is_dir(), reason=f"the NSL-KDD data set is not in {KDD}"),
]


def families() -> dict[str, str]:
    text = (KDD / "Attack Types.csv").read_text()  # CR line endings
    return dict(line.split(",") for line in text.splitlines() if line.strip())


def test_gateways_of_devices_split_by_attack_family_train_evaluate_and_audit(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the example's model is torch-mlp (the torch extra)")
    done = subprocess.run(
        [sys.executable, str(RUN), "--rows-per-gateway", "500", "--rounds", str(ROUNDS)]
        + ["--gateways", "4", "--devices", str(DEVICES), "--device-dropout", "0.04"]
        + ["--workdir", str(tmp_path), "--json"],
        capture_output=True,
        text=True,
        timeout=900,
    )
    logs = {p.name: p.read_text()[-2000:] for p in tmp_path.glob("*.node.log")}
    assert done.returncode == 0, (done.stderr[-3000:], logs)
    summary = json.loads(done.stdout)

    assert summary["rounds_finalized"] == ROUNDS and summary["rounds_aborted"] == 0
    assert summary["audit_verified"], summary["audit"]
    # Every gateway ran a device round in every round, two of its 50 devices offline each time (recovered), and
    # the audit re-derived every gateway's committed update from its devices' messages.
    assert summary["device_rounds"]["count"] == len(GATEWAYS) * ROUNDS
    assert summary["device_rounds"]["survivors"] == len(GATEWAYS) * ROUNDS * (DEVICES - 2)
    assert summary["audit_gateway_updates"] == len(GATEWAYS) * ROUNDS
    assert summary["node_exit_codes"] == {name: 0 for name in GATEWAYS}
    assert summary["test_set"] == {"file": "KDDTest+.txt", "rows": 22544, "normal": 9711, "attacks": 12833}
    # Non-IID by attack family: each gateway holds normal traffic and the attacks of its own family, nothing else.
    family = families()
    for name, slug in GATEWAYS.items():
        rows = (tmp_path / "data" / f"KDDTrain+.gateway-{slug}.csv").read_text().splitlines()
        assert len(rows) == summary["gateways"][name]["rows"] == 500
        assert {family[r.split(",")[-2]] for r in rows} <= {"normal", slug}
    # Chance is 0.57 (every record called an attack); a trained detector ranks attacks well above normal traffic.
    assert summary["final_accuracy"] > 0.65 and summary["final_metrics"]["roc_auc"] > 0.8
    assert summary["centralized_accuracy"] > 0.65
