"""A local anvil node for integration tests and benchmarks.

anvil comes from the pinned npm package ``@foundry-rs/anvil-linux-amd64``
(``npm ci`` puts it in ``node_modules/.bin``); ``FEDLEDGER_ANVIL`` or ``PATH``
may point elsewhere. The node listens on 127.0.0.1 only and automines (one block
per transaction); with ``block_time`` it also mines a block every ``block_time``
seconds (anvil's interval mining), so deadlines pass while nobody transacts.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedledger.exceptions import ChainError

__all__ = ["ANVIL_DEV_KEY", "anvil_binary", "anvil_node", "free_port", "wait_for_node"]

# anvil's first well-known development account, funded by anvil itself: dev chains only.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def anvil_binary(search_from: Path | None = None) -> str | None:
    """The anvil executable: ``$FEDLEDGER_ANVIL``, ``node_modules/.bin/anvil`` above ``search_from``, or PATH."""
    candidates = [os.environ.get("FEDLEDGER_ANVIL")]
    start = (search_from or Path.cwd()).resolve()
    candidates += [str(folder / "node_modules" / ".bin" / "anvil") for folder in (start, *start.parents)]
    candidates.append(shutil.which("anvil"))
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def free_port() -> int:
    """A loopback port free now (a node started on it a moment later gets it unless another process races)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_node(url: str, proc: subprocess.Popen[bytes], *, what: str, timeout: float = 20.0) -> None:
    """Wait until the node ``proc`` started answers JSON-RPC at ``url``; kill it and raise if it does not."""
    body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
    deadline = time.monotonic() + timeout
    while True:
        try:
            request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            urllib.request.urlopen(request, timeout=1).read()
            return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                proc.wait()
                raise ChainError(f"{what} did not start on {url}") from None
            time.sleep(0.05)


@contextmanager
def anvil_node(
    binary: str, *, chain_id: int = 31337, startup_timeout: float = 20.0, block_time: float | None = None
) -> Iterator[str]:
    """Start anvil on a free loopback port; yields its URL and stops it on exit.

    ``block_time`` (seconds) turns on interval mining as well: anvil mines a block
    that often even when idle. None keeps automining alone.
    """
    port = free_port()
    args = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--chain-id", str(chain_id)]
    if block_time is not None:
        if not block_time > 0:
            raise ChainError(f"block time must be a positive number of seconds, not {block_time!r}")
        # Mixed mining: a block every block_time seconds, and still one per transaction at once.
        args += ["--block-time", f"{block_time:g}", "--mixed-mining"]
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_node(url, proc, what=f"anvil at {binary}", timeout=startup_timeout)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
