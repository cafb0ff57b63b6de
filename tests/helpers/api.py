"""The API and dashboard tests' shared pieces: a finished demo workspace with posted metrics and an erasure, sign-in
with a member key, and the app served on a real loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from fastapi import FastAPI

from fedledger.api import siwe_message

PASSWORD = "demo-password"
MEMBER_KEYS = ("hospital-1", "hospital-2", "hospital-3")
AUDITOR_TOKEN = "auditor-token-for-the-tests-0123456789abcdef"
ERASED_SUBJECT = "0x" + "5e" * 32


@dataclass(frozen=True)
class Demo:
    root: Path
    addresses: dict[str, str]  # key name -> address


_built: list[Demo] = []


def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """The demo workspace of this test process, built by the first module that asks (the API and the dashboard
    tests read the same one; none of them changes it for good)."""
    if not _built:
        _built.append(build_demo(tmp_path_factory.mktemp("api") / "demo"))
    return _built[0]


def build_demo(root: Path) -> Demo:
    """``run_demo`` (3 hospitals, the third sign-flipping, 2 validated rounds with DP and rewards), then every
    hospital posts its metrics of rounds 0-2 on its protected table, and hospital 1 records an erasure."""
    import secrets

    import numpy as np

    from fedledger.demo import run_demo
    from fedledger.federation.evaluation import post_round_metrics, task_bulletin, task_config
    from fedledger.federation.local_data import load_member_table
    from fedledger.privacy.dp import SystemNoise
    from fedledger.workspace import Workspace

    noise = np.random.default_rng(0)
    with pytest.MonkeyPatch.context() as patch:
        # The demo's keys get a random password only its process knows; the tests sign in with them.
        patch.setattr(secrets, "token_urlsafe", lambda n=None: PASSWORD)
        # DP noise is drawn fresh from os.urandom; replayable noise makes the demo's outcome (which updates the
        # validators reject) the same on every run.
        patch.setattr(SystemNoise, "normal", lambda self, scale, shape: noise.normal(0.0, scale, size=shape))
        run_demo(workspace=root, members=3, rounds=2, malicious=1, secure_aggregation=False, dp_epsilon=8.0)
    with Workspace.load(root) as ws:
        task, store = ws.task(), ws.store()
        config = task_config(task, store)
        bulletin = task_bulletin(task, store)
        addresses = {}
        for k, name in enumerate(MEMBER_KEYS, start=1):
            account = ws.account(name, PASSWORD)
            addresses[name] = account.address
            table = root / "data" / f"hospital_{k}.protected.csv"
            data = load_member_table(config, table, label="diagnosis", recipe=None)
            for r in (0, 1, 2):
                post_round_metrics(task, bulletin, store, account, r, data.X, data.y)
        registry = ws.data_registry() if ws.config.data_registry else None
        if registry is None:
            from fedledger.chain.registry import DataRegistryClient

            registry = DataRegistryClient(ws.chain, task.params().data_registry)
        first = ws.account("hospital-1", PASSWORD)
        registry.as_(first).record_erasure(registry.datasets_of(first.address)[0], ERASED_SUBJECT)
    return Demo(root, addresses)


def sign_in(client: httpx.Client, account: LocalAccount, **override: Any) -> httpx.Response:
    """Sign in as ``account`` the way `fedledger serve login` does; ``override`` replaces message fields."""
    from datetime import datetime

    fields = client.get("/api/v1/auth/nonce").json()
    values = {
        "domain": fields["domain"],
        "address": account.address,
        "uri": fields["uri"],
        "chain_id": fields["chain_id"],
        "nonce": fields["nonce"],
        "issued_at": datetime.fromisoformat(fields["issued_at"]),
        "expiration_time": datetime.fromisoformat(fields["expiration_time"]),
    }
    signer = override.pop("signer", account)
    values.update(override)
    message = siwe_message(**values)
    signature = signer.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return client.post("/api/v1/auth/login", json={"message": message, "signature": signature})


@contextmanager
def served(app: FastAPI) -> Iterator[str]:
    """``app`` on a loopback port in a background thread; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
