"""A workspace: one organization's view of a federation, in one folder.

Layout (default ``./.fedledger``)::

    config.json     chain backend, contract addresses, this member's key name, and where its masked-check
                    committee party is reached from other machines (``mpc_host``, ``mpc_ports``; empty host:
                    the committee runs on one host)
    chain/          the embedded chain's database (embedded backend only)
    keys/           encrypted keystore v3 files
    store/          content-addressed blobs (or ``store`` in config.json names a shared URL: s3://...)
    vault/          encrypted private values and wrapped per-subject keys (fedledger.data.vault)

Nothing here is secret but the keystores and the vault, which are encrypted.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3Exception

from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import TrainingTaskClient
from fedledger.exceptions import ConfigError, KeystoreError
from fedledger.identity.keystore import MAX_SCRYPT_N, STANDARD_SCRYPT_N, Keystore
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_shallow

__all__ = ["DEFAULT_WORKSPACE", "FAUCET_KEY_ENV", "ChainSpec", "Workspace", "WorkspaceConfig"]

DEFAULT_WORKSPACE = Path(".fedledger")
CONFIG_VERSION = 1
# A funded key (hex) used to pay new members' gas on development networks.
FAUCET_KEY_ENV = "FEDLEDGER_FAUCET_KEY"
MEMBER_FUNDING_WEI = 10**20  # 100 ETH on dev chains: ample for thousands of rounds
# Chain ids whose faucet key is public knowledge, so a workspace on them may pay gas without being told a key:
# the embedded chain (also when served over JSON-RPC by `fedledger chain serve`) and anvil's default dev chain.
ANVIL_CHAIN_ID = 31337
SERVED_CHAIN_CLIENT_PREFIX = "fedledger-chain/"  # web3_clientVersion of `fedledger chain serve`
# Seconds to wait for an embedded chain held by another process before ChainBusy.
LOCK_TIMEOUT_ENV = "FEDLEDGER_LOCK_TIMEOUT"
DEFAULT_LOCK_TIMEOUT = 30.0


def _lock_timeout() -> float:
    value = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_LOCK_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ConfigError(f"{LOCK_TIMEOUT_ENV}={value!r}: expected a number of seconds >= 0")
    return seconds


@dataclass
class ChainSpec:
    kind: str = "embedded"  # "embedded" | "rpc"
    url: str = ""

    def validate(self) -> None:
        if self.kind not in ("embedded", "rpc"):
            raise ConfigError(f"unknown chain kind {self.kind!r}: expected 'embedded' or 'rpc'")
        if self.kind == "rpc" and not self.url:
            raise ConfigError("an rpc chain needs a url")


@dataclass
class WorkspaceConfig:
    chain: ChainSpec = field(default_factory=ChainSpec)
    consortium: str = ""
    tasks: dict[str, str] = field(default_factory=dict)  # name -> address
    data_registry: str = ""
    key: str = "admin"
    store: str = "store"
    scrypt_n: int = STANDARD_SCRYPT_N
    # Where other check-committee members reach this member's MPC party (fedledger.federation.mpc_endpoint):
    # a host (IP address or DNS name) and a port range "LOW-HIGH"; empty host: the committee runs on one host.
    mpc_host: str = ""
    mpc_ports: str = ""
    version: int = CONFIG_VERSION

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, *, source: Path) -> WorkspaceConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object")
        if data.get("version") != CONFIG_VERSION:
            raise ConfigError(f"{source}: unsupported config version {data.get('version')!r}")
        try:
            chain = ChainSpec(**data.get("chain", {}))
            chain.validate()
            return cls(
                chain=chain,
                consortium=str(data.get("consortium", "")),
                tasks={str(k): str(v) for k, v in dict(data.get("tasks", {})).items()},
                data_registry=str(data.get("data_registry", "")),
                key=str(data.get("key", "admin")),
                store=str(data.get("store", "store")),
                scrypt_n=_scrypt_n(data.get("scrypt_n", STANDARD_SCRYPT_N), source),
                mpc_host=str(data.get("mpc_host", "")),
                mpc_ports=str(data.get("mpc_ports", "")),
            )
        except (TypeError, ValueError, OverflowError) as exc:
            raise ConfigError(f"{source}: invalid config: {exc}") from exc


def _scrypt_n(value: Any, source: Path) -> int:
    """The workspace's scrypt work factor: an integer power of two from 2 to :data:`MAX_SCRYPT_N` (scrypt needs a
    power of two, and a larger one would make every key take minutes and gigabytes to open)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= MAX_SCRYPT_N or value & (value - 1):
        raise ConfigError(f"{source}: scrypt_n must be a power of two from 2 to {MAX_SCRYPT_N}, got {value!r}")
    return value


class Workspace:
    """Open with :meth:`load` (existing) or :meth:`create` (new)."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = Path(root)
        self.config = config
        self.keystore = Keystore(self.root / "keys", scrypt_n=config.scrypt_n)
        self._chain: Chain | None = None
        self._accounts: dict[str, LocalAccount] = {}

    # -- lifecycle -------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @classmethod
    def create(cls, root: Path, *, chain: ChainSpec | None = None, scrypt_n: int = STANDARD_SCRYPT_N) -> Workspace:
        root = Path(root)
        if (root / "config.json").exists():
            raise ConfigError(f"a workspace already exists in {root}")
        spec = chain or ChainSpec()
        spec.validate()
        ws = cls(root, WorkspaceConfig(chain=spec, scrypt_n=scrypt_n))
        root.mkdir(parents=True, exist_ok=True)
        (root / ws.config.store).mkdir(exist_ok=True)
        ws.save()
        return ws

    @classmethod
    def load(cls, root: Path) -> Workspace:
        path = Path(root) / "config.json"
        try:
            data = loads_shallow(path.read_text(), what=str(path))
        except FileNotFoundError:
            raise ConfigError(f"no fedledger workspace in {root} (run `fedledger init` first)") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
        return cls(Path(root), WorkspaceConfig.from_json(data, source=path))

    def save(self) -> None:
        tmp = self.config_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.config.to_json(), indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.config_path)

    def close(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain = None

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- chain and contracts -----------------------------------------------------

    @property
    def chain(self) -> Chain:
        if self._chain is None:
            spec = self.config.chain
            if spec.kind == "embedded":
                self._chain = Chain.embedded(self.root / "chain", lock_timeout=_lock_timeout())
            else:
                self._chain = Chain.rpc(spec.url)
        return self._chain

    def consortium(self, account: LocalAccount | None = None) -> ConsortiumClient:
        if not self.config.consortium:
            raise ConfigError(f"workspace {self.root} has no consortium yet (run `fedledger init`)")
        return ConsortiumClient(self.chain, self.config.consortium, account)

    def task(self, name: str = "default", account: LocalAccount | None = None) -> TrainingTaskClient:
        try:
            address = self.config.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.config.tasks)) or "none"
            raise ConfigError(f"no task named {name!r} in this workspace (known: {known})") from None
        return TrainingTaskClient(self.chain, address, account)

    def store(self) -> BlobStore:
        """The blob store this workspace publishes to and reads from: a URL (shared across members and clouds)
        or a folder relative to the workspace."""
        target = self.config.store
        return BlobStore(target if "://" in target else self.root / target)

    def data_registry(self, account: LocalAccount | None = None) -> DataRegistryClient:
        if not self.config.data_registry:
            raise ConfigError(
                f"workspace {self.root} has no data registry yet "
                "(an admin runs `fedledger data registry deploy`, or `fedledger data registry use ADDRESS`)"
            )
        return DataRegistryClient(self.chain, self.config.data_registry, account)

    # -- keys --------------------------------------------------------------------

    def account(self, name: str | None = None, password: str | None = None) -> LocalAccount:
        """Decrypt a key of this workspace (default: the workspace's own key)."""
        name = name or self.config.key
        if name not in self._accounts:
            self._accounts[name] = self.keystore.load(name, password)
        return self._accounts[name]

    def faucet(self) -> LocalAccount | None:
        """The account that pays new members' gas on dev chains, if any: ``FEDLEDGER_FAUCET_KEY``, else the
        well-known dev key of the embedded chain (in process or served) or of anvil; None on other chains."""
        from fedledger.chain.embedded import FAUCET_KEY

        embedded_key = "0x" + FAUCET_KEY.to_bytes().hex()
        key = embedded_key if self.config.chain.kind == "embedded" else os.environ.get(FAUCET_KEY_ENV)
        if not key:
            key = self._dev_chain_key(embedded_key)
            if key is None:
                return None
        try:
            acct: LocalAccount = Account.from_key(key)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(f"{FAUCET_KEY_ENV} does not hold a valid private key") from exc
        return acct

    def _dev_chain_key(self, embedded_key: str) -> str | None:
        """The faucet key of a dev chain reached over JSON-RPC, or None for any other chain.

        Every embedded chain has its own id, so a served one is known by the node's own name for itself
        (``web3_clientVersion`` starting ``fedledger-chain/``), not by an id; anvil by its fixed dev id.
        """
        from fedledger.chain.devnode import ANVIL_DEV_KEY

        try:
            client = str(self.chain.w3.client_version)
        except (Web3Exception, ValueError, OSError):
            client = ""  # a node that does not say what it is: not one of ours
        if client.startswith(SERVED_CHAIN_CLIENT_PREFIX):
            return embedded_key
        if self.chain.chain_id == ANVIL_CHAIN_ID:
            return ANVIL_DEV_KEY
        return None

    def fund(self, address: str, minimum: int = MEMBER_FUNDING_WEI // 10) -> bool:
        """Top up ``address`` from the faucet when below ``minimum``; False when no faucet."""
        faucet = self.faucet()
        if faucet is None:
            return False
        if self.chain.balance(address) < minimum:
            self.chain.transfer(faucet, address, MEMBER_FUNDING_WEI)
        return True
