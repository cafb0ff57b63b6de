"""``fedledger batch`` end to end: the relay in its own process, trainers submitting through the CLI.

The relay (the founder, an aggregator) serves from a separate ``fedledger batch relay`` process holding the
embedded chain; each trainer's ``batch submit`` needs only its key, the relay's URL and the contract's domain, so it
runs while the relay holds the chain. The posted batch is then checked leaf by leaf, a trainer whose leaf is there
sends no dispute, and the batch cannot be finalized inside its window.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from eth_account import Account

from conftest import h
from fedledger.localnet import fedledger_command
from helpers.cli import PASSWORD, cli_refused, fedledger

TASK = Account.from_key(h("cli-batches-task")).address


def test_trainers_submit_through_the_cli_and_the_relay_posts_one_root(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    init = fedledger("init", "-w", ws, "--light-kdf", "--org", "Founder", "--json").json()
    address = {}
    for name, roles in (("t0", "trainer"), ("t1", "trainer"), ("v0", "validator")):
        address[name] = fedledger("key", "new", name, "-w", ws, "--json").json()["address"]
        assert fedledger("member", "add", address[name], "--org", name, "--roles", roles, "-w", ws).code == 0
    contract = fedledger("batch", "deploy", "--window", "60", "-w", ws, "--json").json()["contract"]

    relay = subprocess.Popen(
        [
            *fedledger_command(), "batch", "relay", "-w", str(ws), "--contract", contract, "--task", TASK,
            "--round", "1", "--expect", "2", "--wait", "120", "--json",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FEDLEDGER_PASSWORD": PASSWORD, "COLUMNS": "200"},
    )  # fmt: skip
    try:
        assert relay.stdout is not None
        first = relay.stdout.readline()
        assert first.startswith("listening "), first + relay.stderr.read() if relay.stderr else first
        url = first.split()[1]

        def submit(name: str, examples: int) -> list[str]:
            return [
                "batch", "submit", "-w", str(ws), "--as", name, "--contract", contract, "--task", TASK,
                "--round", "1", "--relay", url, "--relay-address", init["address"], "--chain-id", str(init["chain_id"]),
                "--update-hash", h(f"update-{name}"), "--examples", str(examples),
                "--evidence", str(tmp_path / f"{name}.json"),
            ]  # fmt: skip

        assert "is not a trainer" in cli_refused(*submit("v0", 3), code=2)
        for i, name in enumerate(("t0", "t1")):
            record = fedledger(*submit(name, 10 + i), "--json").json()
            assert record["signed"]["member"] == address[name]
        out, err = relay.communicate(timeout=120)
    finally:
        relay.kill() if relay.poll() is None else None
    assert relay.returncode == 0, err
    posted = json.loads(out)
    assert (posted["batch_id"], posted["count"]) == (1, 2)

    batch = ["--contract", contract, "-w", ws]
    checked = fedledger("batch", "check", "1", *batch, "--json").json()
    assert (checked["status"], checked["leaves"], checked["problems"]) == ("pending", 2, [])
    evidence = tmp_path / "t0.json"
    assert fedledger("batch", "dispute", "1", *batch, "--as", "t0", "--evidence", evidence, "--json").json() == {
        "batch_id": 1,
        "disputed": False,
        "tx_hash": None,
    }
    answered = fedledger("batch", "answer", "1", *batch, "--json").json()
    assert (answered["answered"], answered["open_disputes"]) == (0, 0)
    assert "batches: challenge window open" in cli_refused("batch", "finalize", "1", *batch, code=7)
