"""Serve the embedded chain over JSON-RPC, so several processes can share it.

The embedded chain (:class:`~fedledger.chain.embedded.EmbeddedChainProvider`) is
held by one process at a time through a file lock. :func:`serve_chain` opens it
once and answers the Ethereum JSON-RPC 2.0 methods web3's ``HTTPProvider`` uses
(single and batch requests) on a loopback HTTP port, so every member's process
connects with ``Chain.rpc(url)`` as it would to anvil or geth.

Wire format. The provider answers in eth-tester's Python shapes (snake_case keys,
integers); requests go through web3's own eth-tester request formatters and
results through its result formatters, then integers become ``0x`` quantities and
bytes ``0x`` data, as a node sends them.

Errors. A revert comes back as geth and anvil send it: code 3, message
``execution reverted: <reason>`` and the revert data in ``data``, so web3 raises
``ContractLogicError`` and :func:`~fedledger.chain.reverts.clean_revert_reason`
yields the contract's string. Any other failure is code -32000 with its message;
unknown methods are -32601, malformed JSON -32700, malformed requests -32600.
No request stops the server.

Time. A background thread mines an empty block whenever ``block_time`` seconds
pass without one, so deadlines compared with ``block.timestamp`` pass even when
nobody transacts. A transaction is mined as soon as it arrives while its block
can be dated at most a second past the wall clock; faster than that (block
timestamps must rise by a second a block), transactions share the pending block
until the clock catches up, so block time keeps to the wall clock under load and
deadlines pass in seconds, not in transactions. ``eth_sendRawTransaction``
answers once the transaction is mined; one that would revert is refused with its
reason, as it would have reverted in that block.

Clients that hang up before their answer (a killed node) cost one log line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from eth_abi import abi
from eth_tester.exceptions import TransactionFailed as TesterTransactionFailed
from eth_utils import to_hex
from web3.providers.eth_tester.middleware import (
    request_formatters,
    result_formatters,
    transaction_result_formatter,
    transaction_result_remapper,
)
from web3.types import RPCEndpoint

from fedledger import __version__
from fedledger.chain.connection import embedded_engine
from fedledger.chain.embedded import FAUCET_KEY, MAX_LEAD_SECONDS, EmbeddedChainProvider
from fedledger.chain.reverts import ERROR_SELECTOR, bytes_literal, decode_error_string
from fedledger.exceptions import ChainError
from fedledger.store.safejson import loads_bounded

__all__ = ["ESTIMATE_GAS", "ChainServer", "serve_chain"]

log = logging.getLogger(__name__)

# What eth_estimateGas answers after one successful dry run. py-evm's own estimate
# binary-searches the gas limit (about 14 EVM runs per estimate); a generous fixed
# limit costs nothing, since a transaction is charged only the gas it uses, and
# one dry run still reports a revert before anything is sent. 30 M stays under the
# chain's 60 M block gas limit even with the client's margin (6/5 + 25k, see
# Chain._with_gas_margin); the sender's balance must cover limit x max fee (about
# 0.1 ether at dev-chain fees), which funded members always do.
ESTIMATE_GAS = 30_000_000

# JSON-RPC 2.0 error codes, and geth's code for a revert.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
SERVER_ERROR = -32000
REVERT = 3

_REVERTED = "execution reverted"
_MAX_BODY = 64 * 1024 * 1024
MAX_REQUEST_DEPTH = 32  # a batch of calls with nested parameters needs a handful of levels
_FAUCET_ADDRESS = FAUCET_KEY.public_key.to_checksum_address()


class _ServedMethodError(Exception):
    """A JSON-RPC error with its code, raised by the dispatcher."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class ChainServer:
    """The embedded chain in ``directory``, answering JSON-RPC on ``host:port``.

    Built by :func:`serve_chain`, already serving. ``url`` is where clients
    connect; :meth:`close` (or leaving the ``with`` block) stops the server and
    the block timer, closes the chain and releases its lock. :meth:`run_forever`
    blocks until SIGINT or SIGTERM, then closes.
    """

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8545,
        block_time: float = 1.0,
        lock_timeout: float = 30.0,
    ) -> None:
        if not block_time > 0:
            raise ChainError(f"block time must be a positive number of seconds, not {block_time!r}")
        self.directory = Path(directory)
        if embedded_engine(self.directory) != "py-evm":
            raise ChainError(
                f"the chain in {self.directory} runs on the anvil engine, which this server cannot open: "
                "members in other processes need a py-evm chain folder (or an anvil node of their own)"
            )
        self.block_time = float(block_time)
        self.provider = EmbeddedChainProvider(self.directory, lock_timeout=lock_timeout)
        # Clients then send without a dry run (see Chain.rpc), and block time keeps to the wall clock however busy
        # the chain is.
        self.provider.keep_to_wall_clock(MAX_LEAD_SECONDS)
        try:
            self._httpd = _Server((host, port), _Handler, self)
        except OSError as exc:
            self.provider.close()
            raise ChainError(f"cannot listen on {host}:{port}: {exc}") from exc
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self._stop = threading.Event()
        self._closed = False
        self._close_lock = threading.Lock()
        self._last_block = (-1, 0.0)  # (head number, monotonic time it was first seen)
        self._threads = [
            threading.Thread(target=self._httpd.serve_forever, name="fedledger-rpc", daemon=True),
            threading.Thread(target=self._mine_when_idle, name="fedledger-blocks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def chain_id(self) -> int:
        """The served chain's own id (drawn at its genesis)."""
        return self.provider.chain_id

    @property
    def closed(self) -> bool:
        return self._closed

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Stop serving, stop the block timer, close the chain and release its lock."""
        with self._close_lock:
            if self._closed:
                return
            self._stop.set()
            self._httpd.shutdown()
            self._httpd.close_connections()
            self._httpd.server_close()
            for thread in self._threads:
                thread.join(timeout=10)
            # Takes the provider's lock: a request in flight finishes (and commits) first.
            with self.provider.lock:
                self._closed = True
                self.provider.close()

    def __enter__(self) -> ChainServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_forever(self, *, on_signal: Callable[[int], None] | None = None) -> None:
        """Block until SIGINT or SIGTERM (or :meth:`close` from another thread), then close.

        Signal handlers can only be installed from the main thread; elsewhere this
        just waits for :meth:`close`.
        """
        previous: dict[signal.Signals, Any] = {}

        def stop(signum: int, frame: FrameType | None) -> None:
            if on_signal is not None:
                on_signal(signum)
            self._stop.set()

        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                previous[signum] = signal.signal(signum, stop)
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            self.close()

    # -- block timer -------------------------------------------------------------

    def _mine_when_idle(self) -> None:
        """Mine an empty block whenever ``block_time`` passes without one.

        A new block is dated max(now, parent + 1 s). With a block time under a
        second the timer waits until the wall clock has passed the head's
        timestamp, so idle blocks never run the chain's clock ahead; when the
        chain is already ahead (``evm_increaseTime``) it
        still mines one block a second, so chain time keeps moving at wall speed.
        """
        tick = min(self.block_time, 0.25) / 2
        while not self._stop.wait(tick):
            try:
                self._maybe_mine()
            except Exception:  # noqa: BLE001 - the timer must survive a failed block
                log.exception("idle block failed")

    def _maybe_mine(self) -> None:
        with self.provider.lock:  # the same lock every request takes: nothing interleaves
            if self._closed:
                return
            head = self.provider.backend.chain.get_canonical_head()
            now = time.monotonic()
            if head.block_number != self._last_block[0]:
                self._last_block = (head.block_number, now)
                return
            idle = now - self._last_block[1]
            behind_wall = time.time() >= head.timestamp + 1
            if idle >= self.block_time and (behind_wall or idle >= 1.0):
                self.provider.make_request(RPCEndpoint("evm_mine"), [])
                self._last_block = (head.block_number + 1, now)

    # -- JSON-RPC ----------------------------------------------------------------

    def handle_body(self, body: bytes) -> Any:
        """The JSON-RPC answer to one HTTP body (None: nothing to send back)."""
        try:
            # Bounded: a body nested 100,000 levels deep overflowed the C stack in json.loads and killed the
            # server (anyone who reaches the port could stop the chain).
            request = loads_bounded(body, what="JSON-RPC request", max_bytes=_MAX_BODY, max_depth=MAX_REQUEST_DEPTH)
        except (ValueError, UnicodeDecodeError) as exc:
            return _error(None, PARSE_ERROR, f"parse error: {exc}")
        if isinstance(request, list):
            if not request:
                return _error(None, INVALID_REQUEST, "invalid request: empty batch")
            answers = [self.handle_request(item) for item in request]
            return [a for a in answers if a is not None] or None
        return self.handle_request(request)

    def handle_request(self, request: Any) -> dict[str, Any] | None:
        """The JSON-RPC answer to one request object (None for a notification)."""
        if not isinstance(request, dict):
            return _error(None, INVALID_REQUEST, "invalid request: expected a JSON object")
        request_id = request.get("id")
        method = request.get("method")
        params = request.get("params", [])
        if not isinstance(method, str):
            return _error(request_id, INVALID_REQUEST, "invalid request: no method")
        if params is None:
            params = []
        try:
            if not isinstance(params, list):
                raise _ServedMethodError(INVALID_PARAMS, f"{method}: params must be an array")
            result = self._dispatch(method, params)
        except _ServedMethodError as exc:
            answer = _error(request_id, exc.code, exc.message, exc.data)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an answer
            answer = _error_for(request_id, method, exc)
        else:
            answer = {"jsonrpc": "2.0", "id": request_id, "result": result}
        return answer if "id" in request else None

    def _dispatch(self, method: str, params: list[Any]) -> Any:
        if self._closed:
            raise _ServedMethodError(SERVER_ERROR, "the chain server is shutting down")
        if method == "eth_estimateGas":
            # One dry run, with eth_call's semantics (a revert answers as a revert), then a
            # fixed limit: see ESTIMATE_GAS.
            self._call(RPCEndpoint("eth_call"), [params[0] if params else {}, *(params[1:2] or ["latest"])])
            return to_hex(ESTIMATE_GAS)
        if method == "evm_increaseTime":
            seconds = _quantity(params[0] if params else None, what="evm_increaseTime seconds")
            self.provider.advance_time(seconds)
            return to_hex(seconds)
        if method == "net_version":
            return str(self.chain_id)
        if method == "eth_chainId":
            return to_hex(self.chain_id)
        if method == "web3_clientVersion":
            return f"fedledger-chain/{__version__}/{self._call(RPCEndpoint(method), [])}"
        return _wire(self._call(RPCEndpoint(method), params), method)

    def _call(self, method: RPCEndpoint, params: list[Any]) -> Any:
        if method in ("eth_call", "eth_estimateGas") and params and isinstance(params[0], dict):
            # eth-tester needs a sender and charges the call's gas to it: as web3's in-process
            # provider does, a call that names none comes from the faucet.
            params = [{"from": _FAUCET_ADDRESS, **params[0]}, *params[1:]]
        formatter = request_formatters.get(method)
        if formatter is not None:
            params = formatter(params)
        response = self.provider.make_request(method, params)
        if "error" in response:
            error = response["error"]
            if isinstance(error, dict):
                raise _ServedMethodError(int(error.get("code", SERVER_ERROR)), str(error.get("message", "")))
            raise _ServedMethodError(SERVER_ERROR, str(error))
        result = response.get("result")
        if result_formatters is not None and method in result_formatters:
            result = result_formatters[method](result)
        return result


def serve_chain(
    directory: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 8545,
    block_time: float = 1.0,
    lock_timeout: float = 30.0,
) -> ChainServer:
    """Open the embedded chain in ``directory`` (created if missing) and serve it on ``host:port``.

    ``port=0`` picks a free port (read it back from ``.url``). Returns the running
    server; use it as a context manager, or call ``close()``. Raises
    :class:`~fedledger.exceptions.ChainBusy` when another process holds the chain.
    """
    return ChainServer(Path(directory), host=host, port=port, block_time=block_time, lock_timeout=lock_timeout)


# -- wire format -------------------------------------------------------------------


def _wire(value: Any, method: str) -> Any:
    """A provider result as a node sends it: quantities and data as 0x hex."""
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash") and isinstance(value, dict):
        transactions = value.get("transactions")
        if isinstance(transactions, list):
            value = {
                **value,
                "transactions": [
                    transaction_result_formatter(transaction_result_remapper(tx)) if isinstance(tx, dict) else tx
                    for tx in transactions
                ],
            }
    return _encode(value)


def _encode(value: Any, key: str = "") -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        if key == "logsBloom":
            return "0x" + value.to_bytes(256, "big").hex()
        return hex(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return "0x" + bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): _encode(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return str(value)


def _quantity(value: Any, *, what: str) -> int:
    try:
        number = int(value, 16) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise _ServedMethodError(INVALID_PARAMS, f"{what}: expected an integer, got {value!r}") from None
    if number < 0:
        raise _ServedMethodError(INVALID_PARAMS, f"{what}: expected a non-negative integer, got {number}")
    return number


def _error(request_id: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def _error_for(request_id: Any, method: str, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, TesterTransactionFailed):
        message, data = _revert(exc)
        return _error(request_id, REVERT, message, data)
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "nonce" in lowered and "expected" in lowered and "nonce too" not in lowered:
        # py-evm: "Invalid transaction nonce: Expected 3, but got 2"; clients look for geth's wording.
        text = f"nonce too low: {text}" if _nonce_too_low(text) else f"nonce too high: {text}"
    if isinstance(exc, IndexError | KeyError | TypeError) and method:
        return _error(request_id, INVALID_PARAMS, f"{method}: invalid params: {text}")
    return _error(request_id, SERVER_ERROR, text)


def _nonce_too_low(text: str) -> bool:
    numbers = [int(word.strip(",.")) for word in text.replace(",", " ").split() if word.strip(",.").isdigit()]
    return len(numbers) >= 2 and numbers[1] < numbers[0]


def _revert(exc: BaseException) -> tuple[str, str]:
    """(message, data) of a revert, as geth sends them.

    web3's eth-tester layer raises ``TransactionFailed("execution reverted: <reason>")``
    with the reason already decoded from ``Error(string)``; the data is that
    encoding again. A revert without a string reason (py-evm names the raw bytes)
    keeps those bytes as its data.
    """
    text = str(exc.args[0]) if exc.args else ""
    reason = text[len(_REVERTED) :].lstrip(":").strip() if text.startswith(_REVERTED) else text.strip()
    raw = bytes_literal(reason)
    if raw is not None:
        decoded = decode_error_string(raw)
        if decoded is None:  # not a well-formed Error(string): keep the bytes
            return _REVERTED, "0x" + raw.hex()
        return f"{_REVERTED}: {decoded}", "0x" + raw.hex()
    if not reason:
        return _REVERTED, "0x"
    data = ERROR_SELECTOR + abi.encode(["string"], [reason])
    return f"{_REVERTED}: {reason}", "0x" + data.hex()


# -- HTTP --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default backlog of 5 reset connections when a score of nodes connected at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], chain: ChainServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.chain = chain
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def track(self, connection: socket.socket, *, open_: bool) -> None:
        with self._connections_lock:
            if open_:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-request (a node killed while it waits) is routine: the answer has nowhere
        # to go, and a traceback would bury the log's real failures.
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            log.info("client %s hung up before its answer (%s)", _peer(client_address), type(error).__name__)
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """End kept-alive client connections, so their handler threads finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: web3's session reuses its connection
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: without this, Nagle's algorithm holds the body
        # for the client's delayed ACK (about 40 ms a request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection, open_=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, open_=False)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > _MAX_BODY:
            self._send(413 if length > _MAX_BODY else 400, _error(None, INVALID_REQUEST, "bad Content-Length"))
            self.close_connection = True
            return
        body = self.rfile.read(length)
        try:
            answer = self.server.chain.handle_body(body)
        except Exception as exc:  # noqa: BLE001 - last resort: the server keeps serving
            log.exception("JSON-RPC request failed")
            answer = _error(None, SERVER_ERROR, f"internal error: {exc}")
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802
        self._send(405, _error(None, INVALID_REQUEST, "JSON-RPC over HTTP POST only"))

    def _send(self, status: int, answer: Any) -> None:
        payload = b"" if answer is None else json.dumps(answer, separators=(",", ":")).encode()
        self.send_response(status if answer is not None or status != 200 else 204)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s %s", self.address_string(), format % args)
