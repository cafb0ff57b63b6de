"""One client over two chain backends: the embedded chain, or any JSON-RPC node.

Both are reached through web3, and transactions are always signed here with the
member's own key (never node-managed accounts), so the code path is the same on
the embedded chain, anvil, geth or Besu.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import requests
from eth_account.signers.local import LocalAccount
from eth_tester.exceptions import TransactionFailed as TesterTransactionFailed
from eth_utils import to_checksum_address
from eth_utils.exceptions import ValidationError as EvmValidationError
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3Exception
from web3.types import BlockIdentifier, RPCEndpoint, RPCResponse, TxParams, TxReceipt

from fedledger.chain.compiler import compile_contract
from fedledger.chain.events import LedgerEvent, decode_logs
from fedledger.chain.reverts import clean_revert_reason, revert_error
from fedledger.exceptions import ChainError, TransactionFailed

if TYPE_CHECKING:
    from fedledger.chain.embedded import EmbeddedChainProvider

__all__ = ["Chain", "TxResult"]

# The embedded chain's provider raises eth-tester's error where a node answers
# with a JSON-RPC error that web3 turns into ContractLogicError.
_REVERTS = (ContractLogicError, TesterTransactionFailed)
_NONCE_ERRORS = ("nonce too low", "already known", "replacement transaction underpriced", "nonce too high")
_FEE_ERRORS = ("less than block base fee", "max fee per gas less than", "fee cap less than")
FEE_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class TxResult:
    """What a mined transaction returned."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: TxReceipt


class Chain:
    """A connection to a ledger: deploy, transact with local keys, read, time.

    Use :meth:`embedded` or :meth:`rpc` to open one.
    """

    def __init__(self, w3: Web3, *, kind: str, location: str, provider: Any = None) -> None:
        self.w3 = w3
        self.kind = kind
        self.location = location
        self._provider = provider
        self._nonce_locks: dict[str, threading.Lock] = {}
        self._next_nonce: dict[str, int] = {}
        self._guard = threading.Lock()
        self._fee_cache: tuple[float, dict[str, int]] | None = None
        # py-evm's gas estimation re-runs a call ~14 times (binary search); on the
        # embedded chain a generous fixed limit is enough, since only the gas
        # actually used is charged.
        self.fixed_gas = 30_000_000 if kind == "embedded" else 0
        # Whether to dry-run a transaction (with the fixed limit) before sending it, so a revert costs nothing and
        # changes nothing. The embedded chain, in process or served, refuses a reverting transaction itself (it never
        # mines it), so its clients skip the dry run, which would be a second full EVM run of every transaction.
        self.dry_run = kind != "embedded"

    @property
    def embedded_provider(self) -> EmbeddedChainProvider | None:
        """The in-process chain behind an embedded connection (its state database, for scans no RPC can do);
        ``None`` for a JSON-RPC node."""
        from fedledger.chain.embedded import EmbeddedChainProvider  # py-evm loads only for embedded chains

        return self._provider if isinstance(self._provider, EmbeddedChainProvider) else None

    # -- opening -------------------------------------------------------------

    @classmethod
    def embedded(cls, directory: Path, *, lock_timeout: float = 30.0) -> Chain:
        """Open (or create) the persistent embedded chain stored in ``directory``, on the engine it was created
        with (:func:`embedded_engine`)."""
        directory = Path(directory)
        provider: Any
        if embedded_engine(directory) == "anvil":
            from fedledger.chain.anvil_chain import AnvilChainProvider

            provider = AnvilChainProvider(directory, lock_timeout=lock_timeout)
        else:
            from fedledger.chain.embedded import EmbeddedChainProvider

            provider = EmbeddedChainProvider(directory, lock_timeout=lock_timeout)
        return cls(Web3(provider), kind="embedded", location=str(directory), provider=provider)

    @classmethod
    def rpc(cls, url: str, *, timeout: float = 30.0) -> Chain:
        """Connect to an Ethereum JSON-RPC node (http://, https://, ws:// is not supported)."""
        if not url.startswith(("http://", "https://")):
            raise ChainError(f"unsupported RPC URL {url!r}: expected http:// or https://")
        # A node's chain id and version never change while connected: web3 asks for the chain id before every
        # call and transaction, which doubled the requests a node sends.
        provider = _NodeProvider(
            url,
            request_kwargs={"timeout": timeout},
            cache_allowed_requests=True,
            cacheable_requests={
                RPCEndpoint("eth_chainId"),
                RPCEndpoint("net_version"),
                RPCEndpoint("web3_clientVersion"),
            },
        )
        w3 = Web3(provider)
        try:
            w3.eth.chain_id  # noqa: B018 - fail now, with a clear error, if unreachable
        except ChainError:
            raise
        except Exception as exc:
            raise ChainError(f"cannot reach Ethereum node at {url}: {exc}") from exc
        chain = cls(w3, kind="rpc", location=url)
        if _served_fedledger_chain(w3):
            chain.fixed_gas, chain.dry_run = SERVED_GAS_LIMIT, False
        return chain

    def close(self) -> None:
        if self._provider is not None:
            self._provider.close()
            self._provider = None

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------

    @property
    def chain_id(self) -> int:
        return int(self.w3.eth.chain_id)

    @property
    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def timestamp(self, block: BlockIdentifier = "latest") -> int:
        return int(self.w3.eth.get_block(block)["timestamp"])

    def balance(self, address: str) -> int:
        return int(self.w3.eth.get_balance(to_checksum_address(address)))

    def contract(self, name: str, address: str) -> Contract:
        return self.w3.eth.contract(address=to_checksum_address(address), abi=compile_contract(name).abi)

    def call(self, fn: ContractFunction, *, block: BlockIdentifier = "latest") -> Any:
        """Run a view function, mapping reverts to typed errors."""
        try:
            return fn.call(block_identifier=block)
        except _REVERTS as exc:
            raise revert_error(clean_revert_reason(exc), function=fn.fn_name) from exc

    def events(
        self, contract_name: str, address: str, *, from_block: int = 0, to_block: BlockIdentifier = "latest"
    ) -> list[LedgerEvent]:
        """Typed events of one contract, in chain order."""
        logs = self.w3.eth.get_logs(
            {"address": to_checksum_address(address), "fromBlock": from_block, "toBlock": to_block}
        )
        return decode_logs(contract_name, list(logs), self.w3.codec)

    # -- writing -------------------------------------------------------------

    def transact(self, account: LocalAccount, fn: ContractFunction, *, value: int = 0) -> TxResult:
        """Sign ``fn`` with ``account``'s key, send it, and wait until it is mined.

        A revert is caught before anything is mined (a node's gas estimation runs it first; the embedded chain,
        in process or served, runs it once in the pending block and drops it there), so a refused call costs
        nothing and changes nothing; it raises a typed :class:`ContractRevert`.
        """

        def build(tx: dict[str, Any]) -> dict[str, Any]:
            if self.fixed_gas:
                if self.dry_run:
                    fn.call(cast(TxParams, {"from": tx["from"], "value": value}))
                tx["gas"] = self.fixed_gas
            return self._with_gas_margin(dict(fn.build_transaction(cast(TxParams, tx))))

        return self._send(account, build, label=fn.fn_name, value=value)

    def deploy(self, account: LocalAccount, name: str, *args: Any) -> tuple[str, TxResult]:
        """Deploy a shipped contract; returns its address and the receipt."""
        compiled = compile_contract(name)
        return self.deploy_code(account, compiled.abi, compiled.bytecode, *args, label=f"deploy {name}")

    def deploy_code(
        self, account: LocalAccount, abi: list[dict[str, Any]], bytecode: str, *args: Any, label: str
    ) -> tuple[str, TxResult]:
        """Deploy any compiled contract (e.g. a token a task's rewards are paid in); returns its address and the
        receipt."""
        factory = self.w3.eth.contract(abi=abi, bytecode=bytecode)

        def build(tx: dict[str, Any]) -> dict[str, Any]:
            if self.fixed_gas:
                tx["gas"] = self.fixed_gas
            built = dict(factory.constructor(*args).build_transaction(tx))
            if self.fixed_gas and self.dry_run:
                # Dry-run the constructor, as transact does, so a refused deploy is never mined.
                self.w3.eth.call({"from": tx["from"], "data": built["data"], "value": tx["value"]})
            return self._with_gas_margin(built)

        result = self._send(account, build, label=label)
        address = result.receipt["contractAddress"]
        if not address:
            raise TransactionFailed(f"{label} produced no contract address")
        return to_checksum_address(address), result

    def transfer(self, account: LocalAccount, to: str, value: int) -> TxResult:
        """Send plain ether (used to fund member accounts on dev chains)."""
        return self._send(
            account,
            lambda tx: {**tx, "to": to_checksum_address(to), "value": value, "gas": 21_000},
            label="transfer",
        )

    def _send(
        self,
        account: LocalAccount,
        build: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        label: str,
        value: int = 0,
        attempts: int = 5,
    ) -> TxResult:
        sender = account.address
        with self._guard:
            lock = self._nonce_locks.setdefault(sender, threading.Lock())
        with lock:
            for attempt in range(attempts):
                nonce = self._nonce_for(sender)
                try:
                    tx = build({"from": sender, "nonce": nonce, "value": value, **self._fees()})
                except _REVERTS as exc:
                    raise revert_error(clean_revert_reason(exc), function=label) from exc
                except (ValueError, Web3Exception) as exc:
                    raise self._node_error(exc, label) from exc
                except EvmValidationError as exc:
                    # py-evm refuses the dry run itself, e.g. when the sender cannot pay for gas.
                    raise ChainError(f"{label}: the chain refused a transaction from {sender}: {exc}") from exc
                signed = account.sign_transaction(tx)
                try:
                    tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
                except TesterTransactionFailed as exc:  # the embedded chain refused it unmined: no nonce used
                    raise revert_error(clean_revert_reason(exc), function=label) from exc
                except EvmValidationError as exc:
                    # py-evm refuses the transaction itself, e.g. when the sender cannot pay for gas.
                    raise ChainError(f"{label}: the chain refused a transaction from {sender}: {exc}") from exc
                except (ValueError, Web3Exception) as exc:
                    if any(marker in str(exc).lower() for marker in _NONCE_ERRORS) and attempt + 1 < attempts:
                        # Another sender used this key's nonce: re-read it from the node and retry.
                        self._next_nonce.pop(sender, None)
                        continue
                    if any(marker in str(exc).lower() for marker in _FEE_ERRORS) and attempt + 1 < attempts:
                        self._fee_cache = None  # the base fee rose past the cached cap: read it again
                        continue
                    raise self._node_error(exc, label) from exc
                self._next_nonce[sender] = nonce + 1
                return self._wait(HexBytes(tx_hash), tx, label)
        raise TransactionFailed(f"{label}: gave up after {attempts} nonce conflicts")

    def _with_gas_margin(self, tx: dict[str, Any]) -> dict[str, Any]:
        # A node estimates against the latest block: an SSTORE that is a no-op there (e.g. writing
        # block.number into a slot already holding it) is priced near zero but costs up to 20k gas
        # once mined in the next block. Only the gas actually used is charged, so a margin is free.
        if not self.fixed_gas:
            tx["gas"] = int(tx["gas"]) * 6 // 5 + 25_000
        return tx

    def _fees(self) -> dict[str, int]:
        # EIP-1559 fees with room for the base fee to double before inclusion. The base fee moves at most 12.5 % a
        # block, so fees read a moment ago still have that room: reading them for every transaction was one of
        # its five requests. A transaction the node refuses for its fee is retried with fresh ones.
        now = time.monotonic()
        if self._fee_cache is not None and now - self._fee_cache[0] < FEE_TTL_SECONDS:
            return self._fee_cache[1]
        base_fee = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        priority = 10**9
        fees = {"chainId": self.chain_id, "maxPriorityFeePerGas": priority, "maxFeePerGas": 2 * base_fee + priority}
        self._fee_cache = (now, fees)
        return fees

    def _nonce_for(self, sender: str) -> int:
        # This process's own count once it has sent from the key; a conflict with another sender of the same key
        # (a nonce error) drops it and the next attempt reads the node's.
        if sender in self._next_nonce:
            return self._next_nonce[sender]
        return int(self.w3.eth.get_transaction_count(to_checksum_address(sender), "pending"))

    def _wait(self, tx_hash: HexBytes, tx: dict[str, Any], label: str) -> TxResult:
        try:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.01)
        except TimeExhausted as exc:
            raise TransactionFailed(f"{label}: transaction {tx_hash.to_0x_hex()} not mined in 120 s") from exc
        if receipt["status"] != 1:
            raise self._failure_reason(tx, receipt, label)
        return TxResult(tx_hash.to_0x_hex(), int(receipt["blockNumber"]), int(receipt["gasUsed"]), receipt)

    def _failure_reason(self, tx: dict[str, Any], receipt: TxReceipt, label: str) -> Exception:
        """Why a mined transaction failed: replay it as a call on the parent state."""
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=int(receipt["blockNumber"]) - 1)  # type: ignore[arg-type]
        except _REVERTS as exc:
            return revert_error(clean_revert_reason(exc), function=label)
        except Exception:  # noqa: BLE001 - the replay is best effort
            pass
        return TransactionFailed(f"{label}: transaction {receipt['transactionHash'].to_0x_hex()} failed")

    @staticmethod
    def _node_error(exc: Exception, label: str) -> Exception:
        # web3 keeps the node's JSON-RPC answer on the exception: its error message is what the node said.
        response = getattr(exc, "rpc_response", None)
        error = response.get("error") if isinstance(response, dict) else None
        message = str(error["message"]) if isinstance(error, dict) and "message" in error else str(exc)
        if "revert" in message.lower():
            return revert_error(clean_revert_reason(message), function=label)
        return ChainError(f"{label}: the node refused the transaction: {message}")

    # -- time and snapshots (dev chains only) --------------------------------

    def advance_time(self, seconds: int) -> None:
        """Move block time forward by ``seconds`` (embedded chain, anvil, hardhat)."""
        if self._provider is not None:
            self._provider.advance_time(seconds)
            return
        try:
            self.w3.provider.make_request("evm_increaseTime", [int(seconds)])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
        except Exception as exc:
            raise ChainError(f"this node cannot move time forward: {exc}") from exc

    def snapshot(self) -> Any:
        """Take a state snapshot (dev chains only)."""
        if self._provider is not None:
            return self._provider.take_snapshot()
        return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert(self, snapshot_id: Any) -> None:
        """Return to a snapshot taken with :meth:`snapshot`."""
        self._next_nonce.clear()
        self._fee_cache = None
        if self._provider is not None:
            self._provider.revert_to_snapshot(snapshot_id)
            return
        self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]


class _NodeProvider(HTTPProvider):
    """web3's HTTP provider, whose connection failures are :class:`ChainError`: a node that restarts or drops off
    the network is then one error every caller already handles (a member's node retries with backoff), instead of
    a ``requests`` exception that would end the process."""

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        try:
            return super().make_request(method, params)
        except requests.RequestException as exc:
            raise ChainError(f"cannot reach Ethereum node at {self.endpoint_uri} ({method}): {exc}") from exc


ENGINE_ENV = "FEDLEDGER_EMBEDDED_ENGINE"
ENGINES = ("py-evm", "anvil")


def embedded_engine(directory: Path) -> str:
    """The engine of the embedded chain in ``directory``: the one it was created with, else, for a new chain,
    ``$FEDLEDGER_EMBEDDED_ENGINE`` (``py-evm``, the default, or ``anvil``)."""
    from fedledger.chain.anvil_chain import LOG_FILE

    if (directory / LOG_FILE).exists():
        return "anvil"
    if (directory / "chain.sqlite").exists():
        return "py-evm"
    engine = os.environ.get(ENGINE_ENV, "py-evm") or "py-evm"
    if engine not in ENGINES:
        raise ChainError(f"{ENGINE_ENV}={engine!r}: expected one of {', '.join(ENGINES)}")
    return engine


SERVED_GAS_LIMIT = 30_000_000  # only the gas used is charged; the served chain's blocks hold 60 M


def _served_fedledger_chain(w3: Web3) -> bool:
    """Whether the node is ``fedledger chain serve``, which refuses reverting transactions instead of mining them."""
    try:
        return str(w3.client_version).startswith("fedledger-chain/")
    except Exception:  # noqa: BLE001 - a node without web3_clientVersion is simply not ours
        return False
