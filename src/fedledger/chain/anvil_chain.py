"""The embedded chain on anvil: a native EVM in a child process, persisted as a log of signed transactions.

An alternative engine for :meth:`fedledger.chain.Chain.embedded`, chosen with ``FEDLEDGER_EMBEDDED_ENGINE=anvil``
when a chain folder is created (a folder keeps the engine it was created with). The default engine runs py-evm in
process; this one hands execution to anvil (Rust revm) on a loopback port that only this process is told.

Persistence is a SQLite log of every mined block's time and signed transactions, written before a sender gets its
transaction's hash: opening the folder starts a fresh anvil with the chain's id and genesis time and replays the log,
block by block at the logged times, so every past state is in the node again (reads at a block, as the audit does)
and the chain, its hashes included, is the same. anvil's own ``--state`` dumps were measured and rejected
(``benchmarks/anvil_embedded.py``): with past states kept they rewrite the whole history every interval, without
them reads at a past block fail after a restart, and either way a crash loses the blocks since the last dump.
The price is an opening that replays the whole log.

As on the py-evm engine, one process holds the folder (a file lock), and a transaction that would revert is refused
unmined, with its reason: it is run once as a call on the pending block (same time, same state) before it is sent.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from eth.vm.forks import PragueVM
from eth_account import Account
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider
from web3.types import RPCEndpoint, RPCResponse

from fedledger.chain.devnode import anvil_binary, free_port, wait_for_node
from fedledger.chain.embedded import FAUCET_BALANCE, FAUCET_KEY, GAS_LIMIT, hold_chain_folder, new_chain_id
from fedledger.exceptions import ChainError

__all__ = ["LOG_FILE", "AnvilChainProvider"]

LOG_FILE = "anvil-chain.sqlite"
"""The file in a chain folder that marks it as an anvil-engine chain and holds its log."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocks (number INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS transactions (number INTEGER NOT NULL, position INTEGER NOT NULL, raw BLOB NOT NULL,"
    " PRIMARY KEY (number, position))",
)


class AnvilChainProvider(HTTPProvider):
    """A web3 provider over an anvil node this process starts for the chain in ``directory``."""

    def __init__(self, directory: Path, *, lock_timeout: float = 30.0) -> None:
        self.directory = directory
        self._file_lock = hold_chain_folder(directory, lock_timeout, advice="wait for it to finish")
        self.lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._snapshots: dict[int, _Snapshot] = {}
        try:
            self._db = sqlite3.connect(directory / LOG_FILE, isolation_level=None, check_same_thread=False)
            # As the py-evm engine's store: a process crash never loses a committed block, and a commit is not an
            # fsync (a power cut may lose the last blocks, never corrupt the file).
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            for statement in _SCHEMA:
                self._db.execute(statement)
            self.chain_id, self._genesis_time = self._genesis()
            binary = self._binary_path()
            port = free_port()
            session = requests.Session()
            session.trust_env = False  # a loopback node: no proxy settings to read from the environment per request
            super().__init__(
                f"http://127.0.0.1:{port}",
                request_kwargs={"timeout": 120},
                session=session,
                cache_allowed_requests=True,  # the id never changes; web3 asks for it before every call
                cacheable_requests={RPCEndpoint("eth_chainId"), RPCEndpoint("net_version")},
            )
            self._binary, self._port = binary, port
            self._start()
            self._replay(self._logged_blocks())
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------

    def _genesis(self) -> tuple[int, int]:
        rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        if "chain_id" not in rows:
            rows = {"chain_id": str(new_chain_id()), "genesis_time": str(int(time.time()))}
            self._db.executemany("INSERT INTO meta VALUES (?, ?)", list(rows.items()))
        return int(rows["chain_id"]), int(rows["genesis_time"])

    def _binary_path(self) -> str:
        """anvil as found from here (``FEDLEDGER_ANVIL``, ``node_modules`` above the working directory, PATH), else the
        one the chain last ran on: a chain made in a checkout then opens from any directory."""
        found = anvil_binary()
        row = self._db.execute("SELECT value FROM meta WHERE key = 'anvil'").fetchone()
        binary = found or (row[0] if row and os.access(row[0], os.X_OK) else None)
        if binary is None:
            raise ChainError("the anvil engine needs an anvil binary (npm ci, or set FEDLEDGER_ANVIL)")
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('anvil', ?)", (binary,))
        return binary

    def _start(self) -> None:
        binary, port = self._binary, self._port
        args = [binary, "--host", "127.0.0.1", "--port", str(port), "--silent", "--hardfork", "prague"]
        args += ["--chain-id", str(self.chain_id), "--timestamp", str(self._genesis_time)]
        # Blocks are mined on request (evm_mine answers once the block is mined), so the log holds exactly what each
        # block holds; anvil's automining answers a transaction's sender before its block exists.
        args += ["--gas-limit", str(GAS_LIMIT), "--accounts", "1", "--no-mining"]
        # anvil runs under a small shell guard that stops it once this process's end of a pipe closes: on close(),
        # and also when this process dies without closing (a crash, SIGKILL), which would otherwise leave the node
        # running, holding its memory, with nobody to talk to it.
        self._proc = subprocess.Popen(
            ["sh", "-c", _GUARD, "fedledger-anvil-guard", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_node(f"http://127.0.0.1:{port}", self._proc, what=f"anvil at {binary}")
        faucet = Account.from_key(FAUCET_KEY.to_bytes()).address
        self._rpc("anvil_setBalance", [faucet, hex(FAUCET_BALANCE)])

    def _logged_blocks(self, up_to: int | None = None) -> list[tuple[int, list[bytes]]]:
        """The log's blocks (time, signed transactions) from block 1, up to block ``up_to`` (default: all)."""
        last = 2**62 if up_to is None else up_to
        raws: dict[int, list[bytes]] = {}
        query = "SELECT number, raw FROM transactions WHERE number <= ? ORDER BY number, position"
        for number, raw in self._db.execute(query, (last,)):
            raws.setdefault(int(number), []).append(bytes(raw))
        blocks: list[tuple[int, list[bytes]]] = []
        query = "SELECT number, timestamp FROM blocks WHERE number <= ? ORDER BY number"
        for number, timestamp in self._db.execute(query, (last,)).fetchall():
            if number != len(blocks) + 1:
                raise ChainError(f"the chain log in {self.directory} lacks block {len(blocks) + 1}")
            blocks.append((int(timestamp), raws.get(int(number), [])))
        return blocks

    def _replay(self, blocks: list[tuple[int, list[bytes]]]) -> None:
        """Mine every block again, at its logged time, with its logged transactions."""
        self._head, self._head_time = 0, self._genesis_time
        for timestamp, raws in blocks:
            self._mine_at(timestamp, raws)

    def _mine_at(self, timestamp: int, raws: list[bytes]) -> None:
        """Mine one block dated ``timestamp`` holding ``raws``."""
        for raw in raws:
            self._rpc("eth_sendRawTransaction", ["0x" + raw.hex()])
        self._rpc("evm_mine", [timestamp])  # mines one block dated so
        self._head += 1
        self._head_time = timestamp

    # -- requests ----------------------------------------------------------------

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self.lock:
            if method == "eth_sendRawTransaction":
                return self._send(bytes(HexBytes(params[0])))
            if method == "evm_mine":  # a number of empty blocks, as eth-tester's evm_mine takes
                for _ in range(int(params[0]) if params else 1):
                    self._mine_empty(max(int(time.time()), self._head_time + 1))
                return {"jsonrpc": "2.0", "id": 0, "result": "0x0"}
            if method == "eth_getLogs" and _from_block(params) > self._head:
                return {"jsonrpc": "2.0", "id": 0, "result": []}  # a range after the head: nothing yet, as py-evm says
            if method.startswith(("evm_", "anvil_", "hardhat_")):
                # Changes the node outside the log: a reopened chain would differ. Use the provider's own methods.
                return _error(f"{method} is not available on the embedded chain")
            return super().make_request(method, params)

    def _send(self, raw: bytes) -> RPCResponse:
        try:
            tx = PragueVM.get_transaction_builder().decode(raw)  # the decoder the py-evm engine uses
            sender = tx.sender
        except Exception as exc:  # noqa: BLE001 - any undecodable input is refused, with its cause
            return _error(f"invalid transaction: cannot decode it ({type(exc).__name__}: {exc})")
        signed_for = getattr(tx, "chain_id", None)
        if signed_for is None:
            return _error("only replay-protected (EIP-155) transactions are accepted: this one names no chain id")
        if signed_for != self.chain_id:
            return _error(
                f"invalid chain id for signer: the transaction is signed for chain {signed_for}, not {self.chain_id}"
            )
        expected = int(self._rpc("eth_getTransactionCount", [to_checksum_address(sender), "latest"]), 16)
        if tx.nonce != expected:
            # Refused as a node refuses it (the client re-reads the nonce); never left waiting in the pool.
            return _error(f"nonce too {'low' if tx.nonce < expected else 'high'}: {tx.nonce}, expected {expected}")
        timestamp = max(int(time.time()), self._head_time + 1)
        self._rpc("evm_setNextBlockTimestamp", [timestamp])
        call = {"from": to_checksum_address(sender), "data": HexBytes(tx.data).to_0x_hex(), "value": hex(tx.value)}
        call["gas"] = hex(tx.gas)
        if tx.to:
            call["to"] = to_checksum_address(tx.to)
        dry_run = super().make_request(RPCEndpoint("eth_call"), [call, "pending"])
        if "error" in dry_run:
            return dry_run  # refused unmined: anvil's revert answer, with its reason and data
        response = super().make_request(RPCEndpoint("eth_sendRawTransaction"), ["0x" + raw.hex()])
        if "error" in response:
            return response
        self._rpc("evm_mine", [])
        self._log_block(timestamp, [raw])
        return response

    def _log_block(self, timestamp: int, raws: list[bytes]) -> None:
        number = self._head + 1
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("INSERT INTO blocks VALUES (?, ?)", (number, timestamp))
            db.executemany("INSERT INTO transactions VALUES (?, ?, ?)", [(number, i, r) for i, r in enumerate(raws)])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        self._head, self._head_time = number, timestamp

    def _rewrite_log(self, blocks: list[tuple[int, list[bytes]]]) -> None:
        """Make the log hold exactly ``blocks`` (a snapshot's: a revert to an earlier one may have cut it shorter)."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.execute("DELETE FROM transactions")
            db.execute("DELETE FROM blocks")
            db.executemany("INSERT INTO blocks VALUES (?, ?)", [(n, t) for n, (t, _) in enumerate(blocks, 1)])
            rows = [(n, i, raw) for n, (_, raws) in enumerate(blocks, 1) for i, raw in enumerate(raws)]
            db.executemany("INSERT INTO transactions VALUES (?, ?, ?)", rows)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = super().make_request(RPCEndpoint(method), params)
        if "error" in response:
            raise ChainError(f"anvil refused {method}: {response['error']}")
        return response.get("result")

    # -- time and snapshots ------------------------------------------------------

    def advance_time(self, seconds: int) -> None:
        """Move block time forward (mines one block), as the py-evm engine does."""
        with self.lock:
            self._mine_empty(max(int(time.time()), self._head_time + 1) + int(seconds))

    def _mine_empty(self, timestamp: int) -> None:
        self._rpc("evm_mine", [timestamp])  # mines one block dated so
        self._log_block(timestamp, [])

    def take_snapshot(self) -> int:
        with self.lock:
            snapshot_id = len(self._snapshots)
            self._snapshots[snapshot_id] = _Snapshot(str(self._rpc("evm_snapshot", [])), self._logged_blocks())
            return snapshot_id

    def revert_to_snapshot(self, snapshot_id: int) -> None:
        """Return the chain to a snapshot (tests); the log forgets the blocks after it. A snapshot stays valid, as
        the py-evm engine's do: anvil forgets one once reverted to (or past), and the chain is then replayed."""
        with self.lock:
            snapshot = self._snapshots.get(int(snapshot_id))
            if snapshot is None:
                raise ChainError(f"unknown snapshot {snapshot_id!r}")
            head = len(snapshot.blocks)
            reverted = super().make_request(RPCEndpoint("evm_revert"), [snapshot.node_id])
            if reverted.get("result") is not True:  # anvil no longer has it: "Resource not found", or false
                self._close_node()
                self._start()
                self._replay(snapshot.blocks)
            self._rewrite_log(snapshot.blocks)
            self._head, self._head_time = head, snapshot.blocks[-1][0] if snapshot.blocks else self._genesis_time
            snapshot.node_id = str(self._rpc("evm_snapshot", []))

    def close(self) -> None:
        with self.lock:
            self._close_node()
            if getattr(self, "_db", None) is not None:
                self._db.close()
                self._db = None  # type: ignore[assignment]
            if self._file_lock.is_locked:
                self._file_lock.release()

    def _close_node(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()  # the guard stops anvil and exits
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# Runs "$@" (anvil) and stops it when its standard input (this process's pipe) reaches end of file; exits with it.
_GUARD = 'exec 3<&0; "$@" </dev/null & node=$!; (read -r _ <&3; kill "$node" 2>/dev/null) & wait "$node"'


@dataclass
class _Snapshot:
    node_id: str  # anvil's id for it, while anvil has it
    blocks: list[tuple[int, list[bytes]]]  # the log up to it: the chain is replayed from it once anvil has not


def _from_block(params: Any) -> int:
    """The first block of an ``eth_getLogs`` filter (0 when it names none or a tag)."""
    start = params[0].get("fromBlock") if params and isinstance(params[0], dict) else None
    if isinstance(start, int):
        return start
    return int(start, 16) if isinstance(start, str) and start.startswith("0x") else 0


def _error(message: str) -> RPCResponse:
    return {"jsonrpc": "2.0", "id": 0, "error": {"code": -32000, "message": message}}
