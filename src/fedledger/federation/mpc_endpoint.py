"""Where a check-committee member's MPyC party is reached, published on the task's bulletin.

A node whose check-committee party must be reachable from other machines is given a host (``mpc_host`` in the
workspace's ``config.json``, or ``fedledger node --mpc-host``) and a port range (``mpc_ports``, default
:data:`DEFAULT_MPC_PORTS`). When it first shares an update or sits on a check committee in a task with masked
checks, it stores an endpoint record (:func:`endpoint_blob`: task, member, host, port range, and its TLS key with
one certificate per committee seat, :mod:`fedledger.privacy.masked_tls`) and posts the record's sha256 on the
task's Bulletin under round 0 and the topic :data:`ENDPOINT_TOPIC`, once per task. The other committee members
read it there (:func:`committee_endpoints`): nobody keeps a list of addresses out of band, and the bulletin's hash
pins the certificates a party trusts. A committee member whose record is missing or malformed is named
(:class:`~fedledger.exceptions.MpcEndpointError`), and the round's checks abort with that reason.

In a round, the party at seat ``s`` listens on ``low + (offset + s) % span`` of its member's range, ``offset``
derived from the round context (:func:`party_addresses`): it changes every round, and two parties on one machine
with the same range never take the same port.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_account.signers.local import LocalAccount

from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.encoding import as_address
from fedledger.exceptions import BadInput, ConfigError, FedLedgerError, InvalidState, MpcEndpointError
from fedledger.federation.masked_settings import MAX_CHECK_COMMITTEE
from fedledger.privacy.masked_tls import certificate_fingerprint, check_seat_certificates, seat_certificates
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_shallow

__all__ = [
    "DEFAULT_MPC_PORTS",
    "ENDPOINT_FORMAT",
    "ENDPOINT_TOPIC",
    "Endpoint",
    "MpcSetting",
    "committee_endpoints",
    "endpoint_blob",
    "party_addresses",
    "publish_endpoint",
    "read_endpoint",
    "seat_pins",
    "tls_key",
]

ENDPOINT_TOPIC = "mpc-endpoint"
ENDPOINT_FORMAT = "fedledger-mpc-endpoint/1"
DEFAULT_MPC_PORTS = (14000, 14099)
_MAX_ENDPOINT_BYTES = 64 * 1024
_TLS_LABEL = b"fedledger/mpc-tls/1"
_PORT_LABEL = b"fedledger/mpc-port/1"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*")


def _check_host(host: object) -> str:
    """An IP address or a DNS host name; :class:`BadInput` otherwise."""
    if isinstance(host, str):
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            if _HOSTNAME.fullmatch(host) and not host.replace(".", "").isdigit():
                return host.lower()
    raise BadInput(f"malformed MPC host {host!r}: expected an IP address or a DNS name")


def _check_ports(ports: object) -> tuple[int, int]:
    """A port range ``(low, high)`` within 1024..65535 with room for a committee's seats."""
    if isinstance(ports, list | tuple) and len(ports) == 2 and all(type(p) is int for p in ports):
        low, high = int(ports[0]), int(ports[1])
        if low >= 1024 and high <= 65535 and high - low + 1 >= MAX_CHECK_COMMITTEE:
            return low, high
    raise BadInput(
        f"malformed MPC port range {ports!r}: expected [low, high] within 1024..65535, "
        f"at least {MAX_CHECK_COMMITTEE} ports"
    )


@dataclass(frozen=True)
class MpcSetting:
    """This node's own MPC endpoint setting: the host other committee members reach its party at, and the ports
    it listens in (``low`` to ``high``, both included)."""

    host: str
    ports: tuple[int, int] = DEFAULT_MPC_PORTS

    @classmethod
    def parse(cls, host: str, ports: str = "") -> MpcSetting:
        """From the settings' text: ``host`` and ``ports`` as ``LOW-HIGH`` (empty: the default range)."""
        try:
            low_high: tuple[int, int] = DEFAULT_MPC_PORTS
            if ports.strip():
                low, sep, high = ports.strip().partition("-")
                if not sep:
                    raise BadInput(f"malformed MPC port range {ports!r}: expected LOW-HIGH")
                low_high = (int(low), int(high))
            return cls(_check_host(host.strip()), _check_ports(low_high))
        except (BadInput, ValueError) as exc:
            raise ConfigError(f"mpc_host / mpc_ports: {exc}") from exc


@dataclass(frozen=True)
class Endpoint:
    """A committee member's published endpoint: host, port range, TLS public key (hex) and its seat certificates
    (PEM, seat order)."""

    member: str
    host: str
    ports: tuple[int, int]
    tls_public_key: str
    certificates: tuple[str, ...]


def tls_key(account: LocalAccount) -> Ed25519PrivateKey:
    """The member's TLS key for its committee parties, derived from its keystore's Ethereum key (as its
    key-agreement key is), so a restarted node presents the certificates it published."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_TLS_LABEL).derive(bytes(account.key))
    return Ed25519PrivateKey.from_private_bytes(raw)


def endpoint_blob(task: str, member: str, setting: MpcSetting, key: Ed25519PrivateKey) -> bytes:
    """The canonical endpoint record a member posts for ``task`` (deterministic: the same bytes after a restart)."""
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    doc = {
        "format": ENDPOINT_FORMAT,
        "task": as_address(task, what="task address"),
        "member": as_address(member, what="member"),
        "host": setting.host,
        "ports": list(setting.ports),
        "tls_public_key": public.hex(),
        "tls_certificates": seat_certificates(key, MAX_CHECK_COMMITTEE),
    }
    return json.dumps(doc, sort_keys=True).encode()


def read_endpoint(blob: bytes, *, task: str, member: str) -> Endpoint:
    """Check an endpoint record against the task and member it was posted for; :class:`BadInput` says why not."""
    try:
        doc = loads_shallow(blob, what="MPC endpoint")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"the endpoint record is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != ENDPOINT_FORMAT:
        raise BadInput(f"the endpoint record is not a {ENDPOINT_FORMAT} record")
    if str(doc.get("task", "")).lower() != task.lower() or str(doc.get("member", "")).lower() != member.lower():
        raise BadInput("the endpoint record is for another task or member")
    key = doc.get("tls_public_key")
    if not isinstance(key, str):
        raise BadInput("the endpoint record has no TLS public key")
    certificates = check_seat_certificates(doc.get("tls_certificates"), key, MAX_CHECK_COMMITTEE)
    host, ports = _check_host(doc.get("host")), _check_ports(doc.get("ports"))
    return Endpoint(member, host, ports, key.lower(), tuple(certificates))


def publish_endpoint(
    bulletin: BulletinClient, store: BlobStore, task: str, account: LocalAccount, setting: MpcSetting
) -> str:
    """Post this member's endpoint for ``task`` (once; idempotent) and return the posted record's hash.

    A task's endpoint cannot change (the bulletin keeps a member's first post): a node configured with another
    host or range than it posted gets :class:`ConfigError` saying so. A posted record with this node's host, range
    and key stands, even if its bytes differ (a certificate encoded by another library version)."""
    key = tls_key(account)
    blob = endpoint_blob(task, account.address, setting, key)
    blob_hash = "0x" + hashlib.sha256(blob).hexdigest()
    board = bulletin.as_(account)
    posted = board.posted(task, 0, ENDPOINT_TOPIC, account.address)
    if posted is None:
        store.put(blob)
        try:
            board.post(task, 0, ENDPOINT_TOPIC, blob_hash)
        except InvalidState as exc:  # another process of this member posted in between
            if exc.reason != "bulletin: already posted":
                raise
        posted = board.posted(task, 0, ENDPOINT_TOPIC, account.address) or blob_hash
    if posted.lower() == blob_hash:
        return blob_hash
    try:
        mine = read_endpoint(
            store.get(posted.removeprefix("0x"), max_bytes=_MAX_ENDPOINT_BYTES), task=task, member=account.address
        )
    except FedLedgerError as exc:
        raise ConfigError(
            f"this member's published MPC endpoint for task {task} (record {posted}) is unreadable: {exc}"
        ) from exc
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    if (mine.host, mine.ports, mine.tls_public_key) != (setting.host, setting.ports, public):
        raise ConfigError(
            f"this member already published another MPC endpoint for task {task} ({mine.host}, ports "
            f"{mine.ports[0]}-{mine.ports[1]}); a task's endpoint cannot change: run the node with the host and ports "
            "it published"
        )
    return posted.lower()


def committee_endpoints(
    bulletin: BulletinClient, store: BlobStore, task: str, committee: Sequence[str]
) -> list[Endpoint]:
    """Every committee member's endpoint, in seat order; :class:`MpcEndpointError` names those that published
    none (``missing``) or a malformed one (a record not in the store, or failing :func:`read_endpoint`)."""
    endpoints: list[Endpoint] = []
    missing: list[str] = []
    malformed: dict[str, str] = {}
    for member in committee:
        posted = bulletin.posted(task, 0, ENDPOINT_TOPIC, member)
        if posted is None:
            missing.append(member)
            continue
        try:
            blob = store.get(posted.removeprefix("0x"), max_bytes=_MAX_ENDPOINT_BYTES)
            endpoints.append(read_endpoint(blob, task=task, member=member))
        except FedLedgerError as exc:
            malformed[member] = str(exc)
    if malformed:
        why = "; ".join(f"{m}: {reason}" for m, reason in malformed.items())
        raise MpcEndpointError(f"committee member(s) published a malformed MPC endpoint ({why})", list(malformed))
    if missing:
        raise MpcEndpointError(
            f"committee member(s) {', '.join(missing)} published no MPC endpoint for this task", missing, missing=True
        )
    return endpoints


def party_addresses(endpoints: Sequence[Endpoint], context: bytes) -> list[str]:
    """Each seat's ``host:port`` for the round with ``context`` (MPyC's ``-P`` list, in party order)."""
    offset = int.from_bytes(hashlib.sha256(_PORT_LABEL + context).digest()[:4], "big")
    addresses = []
    for seat, endpoint in enumerate(endpoints):
        low, high = endpoint.ports
        port = low + (offset + seat) % (high - low + 1)
        addresses.append(f"{endpoint.host}:{port}")  # MPyC splits at the last colon: an IPv6 host stays bare
    return addresses


def seat_pins(endpoints: Sequence[Endpoint]) -> list[str]:
    """The certificate each seat must present: the one its member published for that seat."""
    return [certificate_fingerprint(e.certificates[seat]) for seat, e in enumerate(endpoints)]
