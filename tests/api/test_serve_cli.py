"""``fedledger serve`` as a user runs it: a real server process over a new workspace, ``fedledger serve login``
signing in with the workspace's key, and ``fedledger serve auditor-token``."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from helpers.cli import PASSWORD, fedledger


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_login_and_read(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    founder = fedledger("init", "-w", ws, "--org", "Clinic", "--light-kdf", "--json").json()
    token_file = tmp_path / "auditor.token"
    made = fedledger("serve", "auditor-token", token_file)
    assert made.code == 0 and stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token_file.read_text().strip()) >= 32
    again = fedledger("serve", "auditor-token", token_file)
    assert again.code != 0 and "exists" in again.message

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FEDLEDGER_PASSWORD": PASSWORD, "PYTHONPATH": os.pathsep.join(sys.path)}
    entry = Path(sys.executable).with_name("fedledger")
    launch = [str(entry)] if entry.exists() else [sys.executable, "-c", "from fedledger.cli import main; main()"]
    command = [*launch, "serve", "-w", str(ws), "--port", str(port)]
    server = subprocess.Popen([*command, "--auditor-token-file", str(token_file)], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"{url}/api/v1/head").status_code == 401  # up, and nothing without a token
                break
            except httpx.TransportError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        session = fedledger("serve", "login", "--url", url, "-w", ws, "--json").json()
        assert session["address"] == founder["address"] and session["org"] == "Clinic"
        token = fedledger("serve", "login", "--url", url, "-w", ws).stdout.strip()
        assert len(token) >= 40 and token != session["token"]
        for bearer in (token, token_file.read_text().strip()):
            members = httpx.get(f"{url}/api/v1/consortium", headers={"Authorization": f"Bearer {bearer}"}).json()
            assert [m["address"] for m in members["members"]] == [founder["address"]]
        # No server at the URL: nothing is signed, and the command says why.
        gone = fedledger("serve", "login", "--url", f"http://127.0.0.1:{_free_port()}", "-w", ws)
        assert gone.code != 0 and "cannot reach" in gone.message
    finally:
        server.terminate()
        server.wait(timeout=30)
