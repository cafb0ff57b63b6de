"""`fedledger chain serve`: the embedded chain as a JSON-RPC endpoint shared by several processes.

The server runs in process (``serve_chain``) and as a real ``fedledger chain serve``
subprocess; clients are ``Chain.rpc``, one of them in a second OS process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from typer.testing import CliRunner

from conftest import REPO, refused
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.devnode import ANVIL_DEV_KEY, anvil_binary, anvil_node
from fedledger.chain.embedded import EMBEDDED_CHAIN_ID, FAUCET_KEY, MAX_SAFE_CHAIN_ID, MIN_RANDOM_CHAIN_ID
from fedledger.chain.server import ESTIMATE_GAS, ChainServer, serve_chain
from fedledger.cli.chain import chain_directory
from fedledger.exceptions import ChainBusy, ConfigError, InvalidArgument, NotAuthorized
from fedledger.workspace import ChainSpec, Workspace

FAUCET = Account.from_key(FAUCET_KEY.to_bytes())
ETHER = 10**18

# A member in a second OS process: found its own consortium and rotate its metadata a few times.
CHILD = """
import sys
from eth_account import Account
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
chain = Chain.rpc(sys.argv[1])
account = Account.from_key(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # start with the parent, so both send at once
client = ConsortiumClient.deploy(chain, account, org="child", roles=Role.ADMIN)
print("deployed", flush=True)
sys.stdin.readline()  # both deployed (compiling took either a different time): now send together
for i in range(8):
    client.update_metadata(cert_fingerprint=b"\\x01" * 32, kx_public_key=b"\\x02" * 32, store_uri=f"child-{i}")
print(client.address)
"""


def rpc(url: str, body: bytes | str) -> Any:
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def call(url: str, method: str, *params: Any) -> Any:
    return rpc(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}))


def funded(chain: Chain, value: int = 10 * ETHER) -> LocalAccount:
    account: LocalAccount = Account.create()
    chain.transfer(FAUCET, account.address, value)
    return account


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainServer]:
    with serve_chain(tmp_path_factory.mktemp("served-chain"), port=0, block_time=0.5) as srv:
        yield srv


def test_clients_in_two_processes_deploy_and_transact_at_once(server: ChainServer) -> None:
    chain = Chain.rpc(server.url)
    assert chain.chain_id == server.chain_id != EMBEDDED_CHAIN_ID  # its own, drawn at genesis
    here, there = funded(chain), funded(chain)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, server.url, there.key.hex()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        mine = ConsortiumClient.deploy(chain, here, org="parent", roles=Role.ADMIN)
        assert child.stdout.readline().strip() == "deployed"
        child.stdin.write("go\n")
        child.stdin.flush()
        for i in range(8):
            mine.update_metadata(cert_fingerprint=b"\x03" * 32, kx_public_key=b"\x04" * 32, store_uri=f"parent-{i}")
        out, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert child.returncode == 0, err
    theirs = ConsortiumClient(chain, out.strip().splitlines()[-1])
    assert theirs.member(there.address).org == "child"
    assert theirs.member(there.address).store_uri == "child-7"
    assert mine.member(here.address).store_uri == "parent-7"
    assert chain.w3.eth.get_transaction_count(here.address) == 9
    assert chain.w3.eth.get_transaction_count(there.address) == 9
    # The two senders' transactions interleave in the chain's blocks (sharing blocks when they arrive together).
    blocks = [
        chain.w3.eth.get_block(n, full_transactions=True)
        for n in range(max(0, chain.block_number - 20), chain.block_number + 1)
    ]
    senders = [tx["from"] for b in blocks for tx in b["transactions"] if tx["from"] in (here.address, there.address)]
    switches = sum(1 for a, b in zip(senders, senders[1:], strict=False) if a != b)
    assert switches >= 2, senders


def test_reverts_arrive_as_typed_errors_with_the_contracts_message(server: ChainServer) -> None:
    chain = Chain.rpc(server.url)
    founder, outsider = funded(chain), funded(chain)
    client = ConsortiumClient.deploy(chain, founder, org="A", roles=Role.ADMIN)

    # A refused deploy (eth_estimateGas) and a refused transaction: nothing mined, no nonce spent.
    def unchanged() -> tuple[int, int]:
        return chain.block_number, chain.w3.eth.get_transaction_count(outsider.address)

    refused(
        unchanged, NotAuthorized, "consortium: founder must be an admin",
        ConsortiumClient.deploy, chain, outsider, org="X", roles=Role.TRAINER,
    )  # fmt: skip
    refused(
        unchanged, NotAuthorized, "consortium: caller is not an active member",
        ConsortiumClient(chain, client.address, outsider).update_metadata,
        cert_fingerprint=b"\x01" * 32, kx_public_key=b"\x02" * 32, store_uri="",
    )  # fmt: skip
    assert chain.w3.eth.get_transaction_count(outsider.address) == 0
    # A reverting view call (eth_call).
    refused(
        unchanged, InvalidArgument, "consortium: index out of range", chain.call, client.contract.functions.member_at(7)
    )
    # On the wire: geth's shape, code 3 and the Error(string) data.
    data = client.contract.functions.member_at(7)._encode_transaction_data()
    answer = call(server.url, "eth_call", {"to": client.address, "data": data}, "latest")
    assert answer["error"]["code"] == 3
    assert answer["error"]["message"] == "execution reverted: consortium: index out of range"
    assert answer["error"]["data"].startswith("0x08c379a0")


def test_estimate_gas_is_one_dry_run_and_a_fixed_limit(server: ChainServer) -> None:
    answer = call(server.url, "eth_estimateGas", {"from": FAUCET.address, "to": FAUCET.address, "value": "0x1"})
    assert answer == {"jsonrpc": "2.0", "id": 1, "result": hex(ESTIMATE_GAS)}


def test_blocks_advance_while_idle(tmp_path: Path) -> None:
    with serve_chain(tmp_path, port=0, block_time=0.5) as srv:
        chain = Chain.rpc(srv.url)
        block, timestamp = chain.block_number, chain.timestamp()
        time.sleep(2.5)
        assert chain.block_number >= block + 2
        assert chain.timestamp() >= timestamp + 2
        # Idle blocks never run the chain's clock ahead of the wall clock.
        assert chain.timestamp() <= time.time() + 1


def test_time_travel_and_snapshots(server: ChainServer) -> None:
    chain = Chain.rpc(server.url)
    before = chain.timestamp()
    chain.advance_time(3600)
    assert chain.timestamp() >= before + 3600
    snapshot = chain.snapshot()
    account = funded(chain, ETHER)
    assert chain.balance(account.address) == ETHER
    chain.revert(snapshot)
    assert chain.balance(account.address) == 0


def test_bad_requests_get_json_rpc_errors_and_the_server_keeps_serving(server: ChainServer) -> None:
    url = server.url
    assert rpc(url, b"{not json")["error"]["code"] == -32700
    assert rpc(url, b"\xff\xfe")["error"]["code"] == -32700
    deep = rpc(url, b"[" * 100_000)  # once a SIGSEGV in json.loads that stopped the chain for everyone
    assert deep["error"]["code"] == -32700 and "nested" in deep["error"]["message"]
    unknown = rpc(url, '{"jsonrpc":"2.0","id":"x","method":"eth_noSuchThing","params":[]}')
    assert (unknown["id"], unknown["error"]["code"]) == ("x", -32601)
    assert rpc(url, '{"jsonrpc":"2.0","id":2,"params":[]}')["error"]["code"] == -32600
    assert rpc(url, "[]")["error"]["code"] == -32600
    assert call(url, "eth_getBalance")["error"]["code"] in (-32602, -32000)
    assert call(url, "eth_sendRawTransaction", "0x1234")["error"]["code"] == -32000
    batch = rpc(
        url,
        json.dumps(
            [
                {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                {"jsonrpc": "2.0", "id": 2, "method": "nope", "params": []},
                7,
                {"jsonrpc": "2.0", "id": 3, "method": "net_version"},
            ]
        ),
    )
    assert batch[0] == {"jsonrpc": "2.0", "id": 1, "result": hex(server.chain_id)}
    assert batch[1]["error"]["code"] == -32601
    assert batch[2]["error"]["code"] == -32600
    assert batch[3]["result"] == str(server.chain_id)
    assert Chain.rpc(url).block_number >= 0


def _start_cli(directory: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    fedledger = Path(sys.executable).with_name("fedledger")
    command = (
        [str(fedledger)] if fedledger.exists() else [sys.executable, "-c", "from fedledger.cli import main; main()"]
    )
    proc = subprocess.Popen(
        [*command, "chain", "serve", "--dir", str(directory), "--port", "0", "--block-time", "0.5", "--json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"fedledger chain serve did not start: {proc.communicate(timeout=10)[1]}")
    return proc, json.loads(line)


def test_cli_serves_a_chain_that_persists_and_holds_its_lock(tmp_path: Path) -> None:
    directory = tmp_path / "chain"  # created by the command
    proc, info = _start_cli(directory)
    try:
        assert MIN_RANDOM_CHAIN_ID <= info["chain_id"] <= MAX_SAFE_CHAIN_ID
        chain_id = info["chain_id"]
        assert info["url"].startswith("http://127.0.0.1:")
        chain = Chain.rpc(info["url"])
        founder = funded(chain)
        client = ConsortiumClient.deploy(chain, founder, org="Persisted", roles=Role.ADMIN)
        # While it serves, nobody else opens the chain.
        with pytest.raises(ChainBusy, match="in use by another process"):
            serve_chain(directory, port=0, lock_timeout=0.2)
        with pytest.raises(ChainBusy):
            Chain.embedded(directory, lock_timeout=0.2)
        block = chain.block_number
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()
    # Served again (in process this time): the contract and its state are still there.
    with serve_chain(directory, port=0) as again:
        chain = Chain.rpc(again.url)
        assert chain.chain_id == again.chain_id == chain_id  # stored with the chain, not drawn again
        assert chain.block_number >= block
        restored = ConsortiumClient(chain, client.address)
        assert restored.member(founder.address).org == "Persisted"
        assert restored.threshold == 1
    # And a SIGINT (Ctrl-C) stops the command cleanly too.
    proc, info = _start_cli(directory)
    try:
        assert ConsortiumClient(Chain.rpc(info["url"]), client.address).member(founder.address).org == "Persisted"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        proc.kill()


def test_server_releases_the_chain_on_close(tmp_path: Path) -> None:
    srv = serve_chain(tmp_path, port=0)
    url = srv.url
    Chain.rpc(url).block_number  # noqa: B018 - a kept-alive connection the close must end
    srv.close()
    srv.close()  # idempotent
    with Chain.embedded(tmp_path, lock_timeout=0.2) as chain:
        assert chain.block_number >= 0
    with pytest.raises(OSError):
        rpc(url, '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}')


def test_workspace_chain_directory(tmp_path: Path) -> None:
    embedded = Workspace.create(tmp_path / "embedded")
    assert chain_directory(embedded.root, None) == embedded.root / "chain"
    assert chain_directory(embedded.root, tmp_path / "elsewhere") == tmp_path / "elsewhere"
    remote = Workspace.create(tmp_path / "remote", chain=ChainSpec(kind="rpc", url="http://127.0.0.1:9"))
    with pytest.raises(ConfigError, match="no embedded chain to serve"):
        chain_directory(remote.root, None)
    from fedledger.cli.app import app

    result = CliRunner().invoke(app, ["chain", "serve", "-w", str(remote.root), "--port", "0"])
    assert result.exit_code == ConfigError.exit_code
    assert "no embedded chain to serve" in result.output


def test_anvil_interval_mining_advances_blocks_while_idle() -> None:
    binary = anvil_binary(REPO)
    if binary is None:
        pytest.skip("anvil not installed: run `npm ci` (pinned @foundry-rs/anvil-linux-amd64) or set FEDLEDGER_ANVIL")
    with anvil_node(binary, block_time=1) as url:
        chain = Chain.rpc(url)
        block = chain.block_number
        time.sleep(2.2)
        assert chain.block_number >= block + 2
        # Transactions are still mined at once, not at the next interval.
        started = time.monotonic()
        chain.transfer(Account.from_key(ANVIL_DEV_KEY), Account.create().address, 1)
        assert time.monotonic() - started < 0.9
