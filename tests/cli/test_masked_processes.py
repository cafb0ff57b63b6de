"""Masked checks as deployed: four hospitals, each its own ``fedledger node`` process on its own heart-disease file,
one served chain and one store; the round's check committee runs its MPyC parties as further processes.

Every update is shared to the committee the contract drew, the committee's majority outcome sets the accepted set on
chain, the round finalizes, and ``audit verify`` re-checks it (transcript, accepted set, committee posts, model).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, SHARED_DATA
from fedledger.chain import Chain, TrainingTaskClient
from fedledger.chain.masked_events import ChecksAccepted
from fedledger.chain.task import Phase
from fedledger.localnet import HEART_DISEASE_FILES, local_consortium, split_rows

HEART = SHARED_DATA / "heart-disease"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HEART.is_dir(), reason=f"the heart-disease data set is not in {HEART}"),
]
pytest.importorskip("mpyc")


def task_file(tmp_path: Path) -> Path:
    """The worked example's task, one round, with secure aggregation and masked checks."""
    example = (REPO / "examples" / "heart-disease" / "task.toml").read_text()
    text = example.replace("rounds = 20", "rounds = 1").replace(
        'preparation = "recipe.toml"', f'preparation = "{REPO / "examples" / "heart-disease" / "recipe.toml"}"'
    )
    text = text.replace("validate_duration = 30", "validate_duration = 120")
    assert "rounds = 1\n" in text and "validate_duration = 120" in text
    head, model = text.split("[model]", 1)
    head += "secure_aggregation = true\nmasked_checks = true\nclip_norm = 5.0\n"
    path = tmp_path / "task.toml"
    path.write_text(head + "[model]" + model)
    return path


def test_four_node_processes_run_a_round_with_masked_checks_and_the_audit_passes(tmp_path: Path) -> None:
    splits = {
        name: split_rows(HEART / file, tmp_path / "data", test_fraction=1 / 3, seed=42, label=lambda r: r[-1] != "0")
        for name, file in HEART_DISEASE_FILES.items()
    }
    with local_consortium(list(HEART_DISEASE_FILES), task_file(tmp_path), tmp_path / "net") as net:
        for org in net.orgs:
            net.start_node(org, splits[org.name].train)
        codes = net.wait_nodes(timeout=300)
        logs = {o.name: (net.root / f"{o.name.lower().replace(' ', '-')}.node.log").read_text() for o in net.orgs}
        assert codes == {name: 0 for name in HEART_DISEASE_FILES}, {n: log[-3000:] for n, log in logs.items()}
        assert "Traceback" not in "".join(logs.values())
        with Chain.rpc(net.chain_url) as ledger:
            task = TrainingTaskClient(ledger, net.task)
            assert task.round(1).phase is Phase.FINALIZED
            accepted = [e for e in task.events() if isinstance(e, ChecksAccepted)]
            assert [(e.round_id, e.num_accepted) for e in accepted] == [(1, 4)]
            assert task.round(1).accepted == [0, 1, 2, 3]
        done = net.run(net.orgs[0], "audit", "verify", check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "verified: 1 finalized rounds" in done.stdout
