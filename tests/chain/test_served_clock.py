"""The served chain's clock under load, its refusals of late transactions, and clients that hang up.

A consortium and its tasks are set up in process on the embedded chain (fast), then the same chain folder is
served with ``serve_chain`` and used over JSON-RPC as member nodes use it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import struct
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from conftest import DEFAULT_PARAMS, MEMBER_ROLES, h
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.chain.server import ChainServer, serve_chain
from fedledger.chain.task import TrainingTaskClient
from fedledger.exceptions import DeadlinePassed

FAUCET = Account.from_key(FAUCET_KEY.to_bytes())
FILLERS = 20  # more transactions than the commit phase has seconds
COMMIT_SECONDS = 10


@dataclasses.dataclass
class Setup:
    members: list[LocalAccount]
    fillers: list[LocalAccount]
    short_task: str  # a 10 s commit phase
    long_task: str  # a 600 s one


def _set_up(directory: Path) -> Setup:
    accounts = [Account.from_key(h(f"served-clock-{i}")) for i in range(5 + FILLERS)]
    admin, members, fillers = accounts[0], accounts[1:5], accounts[5:]
    with Chain.embedded(directory) as chain:
        for account in accounts:
            chain.transfer(FAUCET, account.address, 10**21)
        consortium = ConsortiumClient.deploy(chain, admin, org="Founder", roles=Role.ADMIN)
        for i, member in enumerate(members):
            consortium.propose_admit(member.address, org=f"Hospital-{i}", roles=MEMBER_ROLES)
        short = dataclasses.replace(DEFAULT_PARAMS, commit_duration=COMMIT_SECONDS)
        short_task = TrainingTaskClient.deploy(chain, admin, consortium.address, short).address
        long_task = TrainingTaskClient.deploy(chain, admin, consortium.address, DEFAULT_PARAMS).address
    return Setup(members, fillers, short_task, long_task)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ChainServer, Setup]]:
    setup = _set_up(tmp_path)
    # No idle blocks during a test: its blocks are the transactions' own.
    with serve_chain(tmp_path, port=0, block_time=60) as server:
        yield server, setup


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls in threads started together; their results (or exceptions) in order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_a_burst_of_transactions_keeps_block_time_to_the_wall_clock(served: tuple[ChainServer, Setup]) -> None:
    server, setup = served
    chains = [Chain.rpc(server.url) for _ in range(FILLERS)]
    task = TrainingTaskClient(chains[0], setup.short_task, setup.members[0])
    round_id = task.open_round()
    deadline = task.round(round_id).commit_deadline
    started_chain, started_wall = chains[0].timestamp(), time.time()
    # More transactions than the phase has seconds, from as many senders, sent within a second or two.
    sent = _at_once(
        [
            lambda c=c, a=a: c.transfer(a, FAUCET.address, 1)  # type: ignore[misc]
            for c, a in zip(chains, setup.fillers, strict=True)
        ]
    )
    assert not [r for r in sent if isinstance(r, Exception)], sent
    # Every commitment sent within the phase's wall time is accepted.
    committed = _at_once(
        [
            lambda i=i, m=m: TrainingTaskClient(chains[i], setup.short_task, m).commit_update(  # type: ignore[misc]
                round_id, h(f"update-{i}"), 10
            )
            for i, m in enumerate(setup.members)
        ]
    )
    elapsed = time.time() - started_wall
    assert elapsed < COMMIT_SECONDS - 2, "too slow a machine for this test's premise"
    assert not [r for r in committed if isinstance(r, Exception)], committed
    assert task.round(round_id).num_updates == len(setup.members)
    # Block time moved with the wall clock, not a second per transaction.
    moved = chains[0].timestamp() - started_chain
    assert moved <= elapsed + 2, (moved, elapsed)
    assert chains[0].timestamp() <= deadline


def test_a_late_commitment_is_refused_with_the_deadline_as_its_reason(served: tuple[ChainServer, Setup]) -> None:
    server, setup = served
    chain = Chain.rpc(server.url)
    member = setup.members[0]
    task = TrainingTaskClient(chain, setup.long_task, member)
    round_id = task.open_round()
    deadline = task.round(round_id).commit_deadline
    provider = server.provider
    with provider.lock:
        # The head dated exactly at the deadline (time travel mines a second short of its pending block's date
        # plus the seconds): the next block, the commitment's, is a second past it, while a call on the latest
        # block would still be within it.
        provider.backend.refresh_pending_timestamp()
        provider.advance_time(deadline + 1 - provider.backend.chain.header.timestamp)
    assert chain.timestamp() == deadline
    nonce = chain.w3.eth.get_transaction_count(member.address)
    with pytest.raises(DeadlinePassed) as info:
        task.commit_update(round_id, h("late"), 10)
    assert info.value.reason == "task: commit deadline passed"
    assert chain.w3.eth.get_transaction_count(member.address) == nonce  # refused, not mined


def test_a_client_that_hangs_up_mid_request_leaves_no_traceback(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fedledger.chain.server")
    with serve_chain(tmp_path, port=0, block_time=60) as server:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
        request = (
            f"POST / HTTP/1.1\r\nHost: {server.host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        for _ in range(3):
            # The chain is busy (its lock held) while the client sends, then hangs up with a reset: the answer
            # has nowhere to go.
            with server.provider.lock:
                client = socket.create_connection((server.host, server.port))
                client.sendall(request)
                time.sleep(0.3)  # the server has read the request and waits for the chain
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                time.sleep(0.1)
            time.sleep(0.3)  # the server writes its answer to the closed connection
        # The server goes on serving.
        answer = urllib.request.urlopen(  # noqa: S310 - loopback
            urllib.request.Request(server.url, data=body, headers={"Content-Type": "application/json"}), timeout=10
        )
        assert json.loads(answer.read())["result"].startswith("0x")
    err = capfd.readouterr().err
    assert "Traceback" not in err, err
    notes = [r for r in caplog.records if "hung up" in r.getMessage()]
    assert 1 <= len(notes) <= 3
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in notes)
