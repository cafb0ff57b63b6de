"""The embedded chain's anvil engine keeps what the py-evm engine promises: the same gas, a revert refused unmined,
one process per folder, and a reopened chain (its log replayed) that answers reads at past blocks as before."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from eth_account import Account

from conftest import REPO
from fedledger.chain import Chain, ConsortiumClient, Role
from fedledger.chain.anvil_chain import LOG_FILE, AnvilChainProvider
from fedledger.chain.connection import ENGINE_ENV, embedded_engine
from fedledger.chain.devnode import anvil_binary
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.exceptions import ChainBusy, ChainError, NotAuthorized

pytestmark = pytest.mark.skipif(anvil_binary(REPO) is None, reason="no anvil binary (npm ci)")

ADMIN = Account.from_key("0x" + "a1" * 32)
OUTSIDER = Account.from_key("0x" + "b2" * 32)


def _deploy_gas(chain: Chain) -> tuple[ConsortiumClient, int]:
    """A consortium deployed by ADMIN (funded from the faucet first), and the gas its deployment used."""
    chain.transfer(Account.from_key(FAUCET_KEY.to_bytes()), ADMIN.address, 10**21)
    consortium = ConsortiumClient.deploy(chain, ADMIN, org="Founder")
    receipt = chain.w3.eth.get_transaction_receipt(chain.w3.eth.get_block("latest")["transactions"][0])
    return consortium, int(receipt["gasUsed"])


def test_same_gas_refused_reverts_single_writer_and_a_replayed_reopening(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENGINE_ENV, "py-evm")
    with Chain.embedded(tmp_path / "py-evm") as chain:
        _, py_evm_gas = _deploy_gas(chain)
    monkeypatch.setenv(ENGINE_ENV, "anvil")
    folder = tmp_path / "chain"
    with Chain.embedded(folder) as chain:
        assert isinstance(chain._provider, AnvilChainProvider)
        consortium, gas = _deploy_gas(chain)
        assert gas == py_evm_gas
        deploy_block = chain.block_number
        chain.transfer(Account.from_key(FAUCET_KEY.to_bytes()), OUTSIDER.address, 10**21)
        consortium.propose_admit(OUTSIDER.address, org="Member", roles=Role.TRAINER)

        # A revert is refused with its reason; nothing is mined and the sender's nonce is not used.
        head, nonce = chain.block_number, chain.w3.eth.get_transaction_count(OUTSIDER.address)
        with pytest.raises(NotAuthorized, match="not an admin"):
            ConsortiumClient(chain, consortium.address, OUTSIDER).propose_threshold(1)
        assert (chain.block_number, chain.w3.eth.get_transaction_count(OUTSIDER.address)) == (head, nonce)

        # One process holds the folder.
        with pytest.raises(ChainBusy):
            Chain.embedded(folder, lock_timeout=0.05)
        chain.advance_time(3600)
        head_hash = chain.w3.eth.get_block("latest")["hash"]
        members_then = len(ConsortiumClient(chain, consortium.address).members(block=deploy_block))
        timestamp = chain.timestamp()

    # The folder keeps its engine whatever the environment says; reopening replays the log to the same chain,
    # past states included.
    monkeypatch.setenv(ENGINE_ENV, "py-evm")
    assert embedded_engine(folder) == "anvil"
    with Chain.embedded(folder) as chain:
        assert chain.w3.eth.get_block("latest")["hash"] == head_hash
        assert chain.timestamp() == timestamp
        assert len(ConsortiumClient(chain, consortium.address).members(block=deploy_block)) == members_then == 1
        assert len(ConsortiumClient(chain, consortium.address).members()) == 2
    rows = sqlite3.connect(folder / LOG_FILE).execute("SELECT count(*) FROM blocks").fetchone()[0]
    assert rows == head + 1  # every mined block is logged (the refused transaction is not), the time jump too


def test_an_unknown_engine_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENGINE_ENV, "pyrevm")
    with pytest.raises(ChainError, match="expected one of py-evm, anvil"):
        Chain.embedded(tmp_path / "chain")


def test_chain_serve_refuses_an_anvil_engine_folder(tmp_path: Path) -> None:
    from fedledger.chain.server import ChainServer

    folder = tmp_path / "chain"
    folder.mkdir()
    (folder / LOG_FILE).touch()  # what marks a folder as the anvil engine's
    with pytest.raises(ChainError, match="runs on the anvil engine"):
        ChainServer(folder, port=0)
    assert not (folder / "chain.sqlite").exists()  # no py-evm database was started beside the log


def test_anvil_stops_when_its_opener_is_killed(tmp_path: Path) -> None:
    opener = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from fedledger.chain import Chain\n"
        "chain = Chain.embedded(Path(sys.argv[1]))\n"
        "print(chain._provider.endpoint_uri, flush=True)\n"
        "time.sleep(120)\n"
    )
    env = {**os.environ, ENGINE_ENV: "anvil"}
    proc = subprocess.Popen([sys.executable, "-c", opener, str(tmp_path / "chain")], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    url = proc.stdout.readline().decode().strip()
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'

    def answers() -> bool:
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=1).read()
            return True
        except OSError:
            return False

    assert answers()
    proc.send_signal(signal.SIGKILL)  # no close(), no atexit
    proc.wait()
    deadline = time.monotonic() + 10
    while answers() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not answers(), "anvil outlived the process that started it"
