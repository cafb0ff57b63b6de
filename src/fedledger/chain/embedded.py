"""The embedded chain: py-evm in process, its database in SQLite on disk.

py-evm keeps headers, blocks, receipts and the state trie in a key-value
database and ships only an in-memory one. :class:`SqliteKV` gives it a disk one,
so a restart (or a second process, one at a time) opens the chain at its
canonical head in constant time: nothing is replayed from genesis.

Writes go into one SQLite transaction that is committed after each request that
changed the chain (each mined block), so the file always holds a whole block.
An exclusive file lock next to the database keeps a second process from writing
the same chain at once; it waits for the lock and then fails with
:class:`ChainBusy` naming the holder.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.exceptions import TransactionNotFound as EvmTransactionNotFound
from eth.vm.forks import PragueVM
from eth_keys import keys
from eth_tester import EthereumTester
from eth_tester.backends.pyevm.main import PyEVMBackend, get_default_genesis_params
from eth_tester.backends.pyevm.serializers import serialize_transaction, serialize_transaction_receipt
from eth_tester.exceptions import TransactionFailed as TesterTransactionFailed
from eth_tester.exceptions import TransactionNotFound
from eth_typing import Hash32
from eth_utils import to_wei
from filelock import FileLock, Timeout
from hexbytes import HexBytes
from web3.providers.eth_tester import EthereumTesterProvider
from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return
from web3.types import RPCEndpoint, RPCResponse

from fedledger.chain.reverts import decode_error_string
from fedledger.exceptions import ChainBusy, ChainError

__all__ = [
    "EMBEDDED_CHAIN_ID",
    "MAX_SAFE_CHAIN_ID",
    "MIN_RANDOM_CHAIN_ID",
    "EmbeddedChainProvider",
    "PersistentPyEVMBackend",
    "SqliteKV",
    "new_chain_id",
]

# The id of every embedded chain created before each got its own (eth-tester's fixed value); such a
# chain has no id stored and keeps this one, so its past transactions stay valid.
EMBEDDED_CHAIN_ID = 131277322940537
# A new chain draws its id at random: transactions signed for one chain (EIP-155 binds the signature to
# the id) are then refused by every other. Ids below 2**32 are left to public networks; above
# MAX_SAFE_CHAIN_ID (MetaMask's limit) a signature's v value, 2 * id + 36, overflows JavaScript integers.
MIN_RANDOM_CHAIN_ID = 2**32
MAX_SAFE_CHAIN_ID = 4_503_599_627_370_476
# The embedded chain's faucet: a throwaway dev key whose only job is to pay
# members' gas on a private in-process chain. It has no value anywhere else.
FAUCET_KEY = keys.PrivateKey(b"\x01" * 32)
FAUCET_BALANCE = to_wei(10**9, "ether")
GAS_LIMIT = 60_000_000

# How far past the wall clock a served chain may date a block. Block timestamps must rise by at least a second
# per block (py-evm, like every Ethereum client, refuses a block not later than its parent), so a chain that mined
# each transaction in its own block ran a second ahead per transaction under load, and deadlines in block time
# passed early. A served chain instead lets transactions that arrive faster than that share the pending block.
MAX_LEAD_SECONDS = 1.0
# The longest a transaction waits in the pending block for the wall clock: when the chain is ahead for another
# reason (time moved forward before the clock was tracked, or the wall clock stepped back), blocks still come at
# one a second, the chain's clock moving at wall speed, instead of stalling until the wall clock catches up.
MAX_HOLD_SECONDS = 1.0

# JSON-RPC methods after which the chain may have changed and must be committed.
_WRITING_METHODS = frozenset({"eth_sendTransaction", "evm_mine", "evm_increaseTime", "evm_revert"})
# Methods that act on the pending block as a whole: a served chain first mines the transactions it holds there.
_FLUSHING_METHODS = frozenset({"evm_snapshot", "evm_revert", "evm_increaseTime", "eth_sendTransaction"})


def use_c_keccak() -> bool:
    """Hash with the C Keccak (``safe-pysha3``) when it is installed; whether it is.

    Every trie node, account, storage slot and ABI selector is a Keccak hash, a few hundred per transaction.
    eth-hash picks its first installed backend, pycryptodome, whose Python wrapper costs about 8x the C one per
    hash; eth-tester's py-evm extra installs ``safe-pysha3`` on CPython for this reason. The digests are the
    same, so the swap changes nothing but time: it replaces the hasher eth-hash itself keeps after its first run.
    """
    try:
        from eth_hash.backends import pysha3
    except ImportError:
        return False
    from eth_hash.auto import keccak

    keccak.hasher = pysha3.backend.keccak256  # type: ignore[assignment]  # mypy reads the bound method as unbound
    return True


use_c_keccak()


class SqliteKV(BaseDB):
    """A py-evm key-value database in one SQLite table.

    Writes wait in memory until :meth:`commit` sends them to SQLite in one transaction (a mined block is a few
    hundred trie nodes: one statement batch, not a statement each); :meth:`rollback` drops them. Reads look at those
    writes first, then at a bounded cache of what was read or committed, then at SQLite: each transaction walks the
    state trie from its root through mostly the same nodes as the one before. One process writes the file at a time
    (:class:`EmbeddedChainProvider` holds its lock), so the cache never goes stale.
    """

    CACHE_ENTRIES = 100_000
    """Values kept in memory, the oldest dropped first. A value averages about 230 bytes, so the cache holds some
    35 MB at most with keys and Python's overhead; a benchmark chain after 20 rounds has about 13,000 in all."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # One connection shared by the threads of this process; callers serialize.
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        self._pending: dict[bytes, bytes | None] = {}  # uncommitted writes; None: a deletion
        self._cache: dict[bytes, bytes] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._pending:
            value = self._pending[key]
            if value is None:
                raise KeyError(key)
            return value
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        row = self._conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value = bytes(row[0])
        self._remember(key, value)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[bytes(key)] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[bytes(key)] = None

    def _exists(self, key: bytes) -> bool:
        if key in self._pending:
            return self._pending[key] is not None
        if key in self._cache:
            return True
        return self._conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._cache) >= self.CACHE_ENTRIES:
            del self._cache[next(iter(self._cache))]
        self._cache[key] = value

    def commit(self) -> None:
        """Write the pending changes to the file, in one transaction."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        conn = self._conn
        conn.execute("BEGIN")
        try:
            conn.executemany(
                "INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", [(k, v) for k, v in pending.items() if v is not None]
            )
            conn.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k, v in pending.items() if v is None])
        except BaseException:
            conn.execute("ROLLBACK")
            self._pending = {**pending, **self._pending}  # still pending: nothing reached the file
            raise
        conn.execute("COMMIT")
        for key, value in pending.items():
            if value is None:
                self._cache.pop(key, None)
            else:
                self._remember(key, value)

    def rollback(self) -> None:
        """Drop the changes made since the last :meth:`commit`."""
        self._pending = {}

    def close(self) -> None:
        try:
            self.commit()
        finally:
            self._conn.close()


def new_chain_id() -> int:
    """A random chain id for a new chain, in [MIN_RANDOM_CHAIN_ID, MAX_SAFE_CHAIN_ID]."""
    while True:
        chain_id = MIN_RANDOM_CHAIN_ID + secrets.randbelow(MAX_SAFE_CHAIN_ID - MIN_RANDOM_CHAIN_ID + 1)
        if chain_id != EMBEDDED_CHAIN_ID:
            return chain_id


class _TesterChain(MiningChain):
    """Post-merge chain, as eth-tester's own, with a fixed gas limit; :func:`_chain_class` gives it its id."""

    chain_id = EMBEDDED_CHAIN_ID
    vm_configuration = ((0, PragueVM),)  # type: ignore[assignment]

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> Any:
        return self.get_vm().get_transaction_builder()


_HEAD_KEY = b"fedledger:genesis-done"
_CHAIN_ID_KEY = b"fedledger:chain-id"


def _chain_class(chain_id: int) -> type[_TesterChain]:
    # py-evm reads the id from the chain class (from_genesis is a classmethod): one subclass per id.
    return type("_TesterChain", (_TesterChain,), {"chain_id": chain_id})


class PersistentPyEVMBackend(PyEVMBackend):  # type: ignore[misc]
    """eth-tester's py-evm backend over a :class:`SqliteKV` file.

    On first open the genesis block is written (the faucet funded) and the chain's id drawn
    (:func:`new_chain_id`) and stored with it; afterwards the chain is opened at its stored
    canonical head, with its stored id (:data:`EMBEDDED_CHAIN_ID` for a chain older than stored ids).
    """

    def __init__(self, db: SqliteKV) -> None:
        self.kv = db
        base_db = AtomicDB(db)
        self.account_keys = [FAUCET_KEY]
        if _HEAD_KEY in db:
            self.chain_id = int(db[_CHAIN_ID_KEY].decode("ascii")) if _CHAIN_ID_KEY in db else EMBEDDED_CHAIN_ID
            self.chain = _chain_class(self.chain_id)(base_db)
        else:
            self.chain_id = new_chain_id()
            params = get_default_genesis_params({"gas_limit": GAS_LIMIT, "timestamp": int(time.time())})
            state = {
                FAUCET_KEY.public_key.to_canonical_address(): {
                    "balance": FAUCET_BALANCE,
                    "nonce": 0,
                    "code": b"",
                    "storage": {},
                }
            }
            chain_class = _chain_class(self.chain_id)
            self.chain = chain_class.from_genesis(base_db, params, state)  # type: ignore[arg-type, assignment]
            db[_CHAIN_ID_KEY] = str(self.chain_id).encode("ascii")
            db[_HEAD_KEY] = b"1"
            db.commit()
        self.refresh_pending_timestamp()

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise ChainError("the embedded chain is persistent; delete its workspace to start over")

    # eth-tester finds a transaction by scanning every block from the head back, so reading the
    # receipts behind a contract's events costs O(blocks) each and an audit grows quadratically with
    # the chain. py-evm keeps a hash -> (block, index) lookup for canonical transactions: use it.

    def _locate(self, transaction_hash: bytes) -> tuple[Any, Any, int]:
        try:
            number, index = self.chain.chaindb.get_transaction_index(Hash32(transaction_hash))
        except EvmTransactionNotFound:  # pending, or unknown
            pending = self.chain.get_block()
            for index, transaction in enumerate(pending.transactions):
                if transaction.hash == transaction_hash:
                    return pending, transaction, index
            raise TransactionNotFound(
                f"No transaction found for transaction hash: 0x{transaction_hash.hex()}"
            ) from None
        block = self.chain.get_canonical_block_by_number(number)
        return block, block.transactions[index], index

    def get_transaction_by_hash(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        return serialize_transaction(block, transaction, index, is_pending)

    def get_transaction_receipt(self, transaction_hash: bytes) -> Any:
        block, transaction, index = self._locate(transaction_hash)
        is_pending = block.number == self.chain.get_block().number
        receipts = block.get_receipts(self.chain.chaindb)
        return serialize_transaction_receipt(block, receipts, transaction, index, is_pending, self.chain.get_vm())

    time_offset = 0.0
    """Seconds the chain's clock is ahead of the wall clock on purpose (``evm_increaseTime`` on a served chain)."""

    def refresh_pending_timestamp(self) -> None:
        """Date the pending block now, so block time follows the wall clock.

        py-evm dates a pending block when the previous one is mined; a transaction
        sent minutes later would otherwise carry a stale timestamp. A block that
        already holds transactions keeps its date: they ran with it.
        """
        chain = self.chain
        if chain.header.gas_used:  # every transaction uses gas: the block holds some
            return
        parent = chain.get_canonical_head()
        # Never move back: time_travel may already have dated the block ahead.
        timestamp = max(int(time.time() + self.time_offset), parent.timestamp + 1, chain.header.timestamp)
        chain.header = chain.header.copy(timestamp=timestamp)

    def send_raw_transaction(self, raw_transaction: bytes) -> Any:
        self.refresh_pending_timestamp()
        return super().send_raw_transaction(raw_transaction)

    def mine_blocks(self, num_blocks: int = 1, coinbase: Any = None) -> Any:
        self.refresh_pending_timestamp()
        if coinbase is None:
            return super().mine_blocks(num_blocks)
        return super().mine_blocks(num_blocks, coinbase)


class EmbeddedChainProvider(EthereumTesterProvider):
    """A web3 provider over a persistent embedded chain in ``directory``.

    Thread-safe: requests are serialized, and every request that may have changed
    the chain is committed to disk before it returns.
    """

    def __init__(self, directory: Path, *, lock_timeout: float = 30.0) -> None:
        self.directory = directory
        self._file_lock = hold_chain_folder(
            directory, lock_timeout, advice="wait for it to finish, or serve the chain over JSON-RPC for concurrent use"
        )
        try:
            self.kv = SqliteKV(directory / "chain.sqlite")
            self.backend = PersistentPyEVMBackend(self.kv)
        except Exception:
            self._file_lock.release()
            raise
        # Every request holds it; a server holds it too to run several steps (mine, close) with nothing between.
        self.lock = threading.RLock()
        self._mined = threading.Condition(self.lock)  # notified whenever a block is mined
        self._held_since: float | None = None  # when the pending block got its first held transaction
        self._blocks = 0  # counts the changes of head (blocks mined, reverts): a held transaction waits for one
        self._closed = False
        self._call_cache: dict[str, RPCResponse] = {}
        self.tester = EthereumTester(self.backend)
        # web3's tester endpoints answer eth-tester's fixed id; this chain answers its own.
        endpoints = {name: dict(methods) for name, methods in API_ENDPOINTS.items()}
        endpoints["eth"]["chainId"] = static_return(self.chain_id)
        endpoints["net"]["version"] = static_return(str(self.chain_id))
        super().__init__(self.tester, api_endpoints=endpoints)

    @property
    def chain_id(self) -> int:
        """This chain's EIP-155 id, drawn at genesis and stored in its database."""
        return int(self.backend.chain_id)

    # A raw transaction that reverts is refused instead of mined, in process as when served: the chain runs it once
    # in the pending block, keeps it when it succeeds, and otherwise drops it and answers with the revert. A client
    # then need not dry-run every transaction first (a second full EVM run of each), and the revert it meets is the
    # one the mined block would meet (same timestamp, same state), not the previous block's.

    max_lead: float | None = None
    """How many seconds past the wall clock a block may be dated (:data:`MAX_LEAD_SECONDS` on a served chain).
    A transaction that would need a later block waits in the pending block, with any others that arrive meanwhile,
    until the wall clock catches up (at most :data:`MAX_HOLD_SECONDS`); its sender's ``eth_sendRawTransaction``
    answers once it is mined. None: each transaction is mined at once in its own block, dated a second after its
    parent when need be (the in-process chain, whose simulations move time themselves)."""

    def keep_to_wall_clock(self, max_lead: float = MAX_LEAD_SECONDS) -> None:
        """Date no block more than ``max_lead`` s past the wall clock (see :attr:`max_lead`). A chain already ahead
        (time moved forward before) keeps that lead: it cannot go back."""
        with self.lock:
            self.max_lead = float(max_lead)
            head = self.backend.chain.get_canonical_head()
            self.backend.time_offset = max(0.0, head.timestamp - time.time())

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        if method == "eth_sendRawTransaction":
            transaction, refusal = self._decode_for_this_chain(params)
            if refusal is not None:
                return {"jsonrpc": "2.0", "id": 0, "error": {"code": -32000, "message": refusal}}
            with self.lock:
                return self._send_unless_reverted(transaction)
        with self.lock:
            if method in _FLUSHING_METHODS:
                self._mine_held()
            # A view call's answer only changes when the chain does: nodes polling the same
            # round state between two blocks are served from memory, not the EVM.
            key = _cacheable(method, params)
            if key is not None and key in self._call_cache:
                return self._call_cache[key]
            try:
                response = super().make_request(method, params)
            except BaseException:
                if method in _WRITING_METHODS:
                    self._call_cache.clear()
                    self.kv.rollback()
                raise
            if method in _WRITING_METHODS:
                self._call_cache.clear()
                self.kv.commit()
                self._head_moved()
            elif key is not None and "error" not in response:
                self._call_cache[key] = response
            return response

    def _decode_for_this_chain(self, params: Any) -> tuple[Any, str | None]:
        """A raw transaction decoded, and why it is refused for its chain id (None when it is signed for this chain).

        py-evm executes a signed transaction whatever chain id it names, so the check is here: one signed
        for another chain (or for none, replayable anywhere) is refused as geth refuses it.
        """
        try:
            raw = bytes(HexBytes(params[0]))
            transaction = self.backend.chain.get_transaction_builder().decode(raw)
        except Exception as exc:  # noqa: BLE001 - any undecodable input is refused, with its cause
            return None, f"invalid transaction: cannot decode it ({type(exc).__name__}: {exc})"
        signed_for = getattr(transaction, "chain_id", None)
        if signed_for is None:
            return None, "only replay-protected (EIP-155) transactions are accepted: this one names no chain id"
        if signed_for != self.chain_id:
            return None, (
                f"invalid chain id for signer: the transaction is signed for chain {signed_for}, not {self.chain_id}"
            )
        return transaction, None

    def advance_time(self, seconds: int) -> None:
        """Move block time forward (mines one block), for tests and simulations."""
        with self.lock:
            self._mine_held()
            backend = self.backend
            backend.refresh_pending_timestamp()
            target = backend.chain.header.timestamp + int(seconds)
            self._call_cache.clear()
            self.tester.time_travel(target)
            self.kv.commit()
            if self.max_lead is not None:
                # The skip is deliberate: later blocks follow the wall clock from the new time on.
                head = backend.chain.get_canonical_head()
                backend.time_offset = max(backend.time_offset, head.timestamp - time.time())
            self._head_moved()

    def _send_unless_reverted(self, transaction: Any) -> RPCResponse:
        """Run a signed transaction in the pending block; refuse it with its revert, or answer its hash once mined.

        It runs with the timestamp and state its block is mined with, so a revert is the one a mined transaction
        would meet (a deadline check among them) and its reason comes from that same run.
        """
        while True:
            header = self.backend.chain.header
            if not header.gas_used or header.gas_used + transaction.gas <= header.gas_limit:
                break
            self._wait_for_block()  # the held block is full: take the next
        backend = self.backend
        backend.refresh_pending_timestamp()
        chain = backend.chain
        before = chain.header
        try:
            _, _, computation = chain.apply_transaction(transaction)
        except BaseException:
            chain.header = before
            self.kv.rollback()
            raise
        if computation.is_error:
            chain.header = before  # the pending block as it was: other held transactions stay in it
            self.kv.rollback()
            raise TesterTransactionFailed(_failure_message(computation.error))
        self.kv.commit()
        if self._held_since is None:
            self._held_since = time.monotonic()
        self._wait_for_block()
        return {"jsonrpc": "2.0", "id": 0, "result": "0x" + bytes(transaction.hash).hex()}

    def _head_moved(self) -> None:
        self._blocks += 1
        self._mined.notify_all()

    def _wait_for_block(self) -> None:
        """Hold the lock's caller until the pending block is mined, mining it once it is due."""
        blocks = self._blocks
        while not self._closed and self._blocks == blocks and self.backend.chain.header.gas_used:
            due_in = self._held_due_in()
            if due_in <= 0:
                self._mine_held()
            else:
                self._mined.wait(due_in)  # releases the lock: others add to the block meanwhile

    def _held_due_in(self) -> float:
        if self.max_lead is None:
            return 0.0
        backend = self.backend
        ahead = backend.chain.header.timestamp - (time.time() + backend.time_offset)
        held = time.monotonic() - (self._held_since if self._held_since is not None else time.monotonic())
        return min(ahead - self.max_lead, MAX_HOLD_SECONDS - held)

    def _mine_held(self) -> None:
        """Mine the pending block if it holds transactions (lock held)."""
        if not self.backend.chain.header.gas_used:
            self._held_since = None
            return
        self._call_cache.clear()
        try:
            if _watched(self.tester):
                self.tester.mine_blocks()  # feeds the new block and its logs to the filters
            else:
                self.backend.mine_blocks()  # no filter: skip re-reading and formatting the block just mined
        except BaseException:
            self.kv.rollback()
            raise
        self.kv.commit()
        self._held_since = None
        self._head_moved()

    def take_snapshot(self) -> int:
        with self.lock:
            self._mine_held()
            return int(self.tester.take_snapshot())

    def revert_to_snapshot(self, snapshot_id: int) -> None:
        """Return the chain to a snapshot (tests); history after it is abandoned."""
        with self.lock:
            self._mine_held()
            self._call_cache.clear()
            self.tester.revert_to_snapshot(snapshot_id)
            self.kv.commit()
            self._head_moved()

    def close(self) -> None:
        with self.lock:
            if self._closed:
                return
            try:
                self._mine_held()  # their senders were promised a block
            finally:
                self._closed = True
                self._head_moved()
                self.kv.close()
                self._file_lock.release()


def _failure_message(error: BaseException) -> str:
    """A failed transaction's error as eth-tester words a failed call's: the reason of an ``Error(string)`` revert,
    else py-evm's own text (the raw revert data as a bytes literal)."""
    decoded = decode_error_string(error.args[0] if error.args else b"")
    return decoded if decoded is not None else str(error)


def _watched(tester: EthereumTester) -> bool:
    """Whether a client installed a block or log filter (``eth_newFilter``), which eth-tester feeds as it mines."""
    return bool(getattr(tester, "_block_filters", True) or getattr(tester, "_log_filters", True))


def _cacheable(method: str, params: Any) -> str | None:
    """A cache key for an ``eth_call`` on the latest block, else None."""
    if method != "eth_call" or len(params) < 2 or params[1] not in ("latest", None):
        return None
    return json.dumps(params[0], sort_keys=True, default=str)


def hold_chain_folder(directory: Path, lock_timeout: float, *, advice: str) -> FileLock:
    """Take the single-writer lock of a chain folder (created if missing) and record this process as its holder;
    a held lock is :class:`ChainBusy` naming the holder and what to do (``advice``)."""
    directory.mkdir(parents=True, exist_ok=True)
    file_lock = FileLock(str(directory / "chain.lock"))
    try:
        file_lock.acquire(timeout=lock_timeout)
    except Timeout as exc:
        raise ChainBusy(
            f"the embedded chain in {directory} is in use by another process{_read_holder(directory)}; {advice}"
        ) from exc
    (directory / "chain.holder").write_text(str(os.getpid()))
    return file_lock


def _read_holder(directory: Path) -> str:
    try:
        return f" (pid {int((directory / 'chain.holder').read_text())})"
    except (OSError, ValueError):
        return ""
