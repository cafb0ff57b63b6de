"""Sign-in for the API: EIP-4361 ("Sign-In with Ethereum") messages signed with a member's key, server nonces,
session tokens, and an auditor token fixed when the server starts.

The flow, as a member's CLI does it (``fedledger serve login``) or any EIP-4361 wallet:

1. ``GET /api/v1/auth/nonce``: the server issues a one-time nonce (valid a few minutes) and says which domain, URI
   and chain id the message must name.
2. The client writes the message (:func:`siwe_message`) for its address and signs it with ``personal_sign``
   (EIP-191, eth-account's ``encode_defunct``).
3. ``POST /api/v1/auth/login``: the server parses the message (:func:`parse_siwe_message`), checks its domain,
   URI, chain id, times and nonce (used once), recovers the signer (eth-account's ``Account.recover_message``) and
   compares it with the message's address; the route then checks the address is an active consortium member and
   hands out a session token (:class:`Sessions`).

Tokens come from :mod:`secrets` and live only in this process's memory: restarting the server signs everyone out.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_keys.exceptions import BadSignature
from eth_utils import is_checksum_address
from eth_utils.exceptions import ValidationError

from fedledger.exceptions import BadInput

__all__ = [
    "AUDITOR_TOKEN_ENV",
    "CLOCK_SKEW_SECONDS",
    "MIN_AUDITOR_TOKEN_CHARS",
    "NONCE_SECONDS",
    "SESSION_SECONDS",
    "SIGN_IN_STATEMENT",
    "AuditorToken",
    "Identity",
    "NonceBook",
    "Sessions",
    "SiweMessage",
    "parse_siwe_message",
    "issued_window",
    "recover_signer",
    "siwe_message",
]

AUDITOR_TOKEN_ENV = "FEDLEDGER_AUDITOR_TOKEN"
MIN_AUDITOR_TOKEN_CHARS = 32  # a token people type or paste; anything shorter is guessable
NONCE_SECONDS = 300
CLOCK_SKEW_SECONDS = 60  # a signer's clock may run this far ahead of the server's
SESSION_SECONDS = 8 * 3600
SIGN_IN_STATEMENT = "Sign in to the fedledger dashboard to read the consortium's ledger."
_MAX_MESSAGE_CHARS = 2048
_HEADER = " wants you to sign in with your Ethereum account:"
_FIELDS = ("URI", "Version", "Chain ID", "Nonce", "Issued At", "Expiration Time")


@dataclass(frozen=True)
class SiweMessage:
    """The fields of an EIP-4361 message that this server writes and checks."""

    domain: str
    address: str
    statement: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: datetime
    expiration_time: datetime


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def siwe_message(
    *, domain: str, address: str, uri: str, chain_id: int, nonce: str, issued_at: datetime, expiration_time: datetime
) -> str:
    """The EIP-4361 message text for these fields (what the member signs)."""
    return (
        f"{domain}{_HEADER}\n{address}\n\n{SIGN_IN_STATEMENT}\n\n"
        f"URI: {uri}\nVersion: 1\nChain ID: {chain_id}\nNonce: {nonce}\n"
        f"Issued At: {_iso(issued_at)}\nExpiration Time: {_iso(expiration_time)}"
    )


def _timestamp(text: str, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"sign-in message: {field} is not an RFC 3339 time: {text!r}") from None
    if moment.tzinfo is None:
        raise BadInput(f"sign-in message: {field} has no time zone")
    return moment


def parse_siwe_message(text: str) -> SiweMessage:
    """Parse a message in exactly the shape :func:`siwe_message` writes; :class:`BadInput` naming what is wrong."""
    if len(text) > _MAX_MESSAGE_CHARS:
        raise BadInput("sign-in message: too long")
    lines = text.split("\n")
    if len(lines) != 11 or not lines[0].endswith(_HEADER) or lines[2] or lines[4]:
        raise BadInput("sign-in message: not an EIP-4361 message in the expected layout")
    domain, address, statement = lines[0][: -len(_HEADER)], lines[1], lines[3]
    if not domain or not is_checksum_address(address):
        raise BadInput("sign-in message: the domain is empty or the address is not a checksummed address")
    values: dict[str, str] = {}
    for name, line in zip(_FIELDS, lines[5:], strict=True):
        prefix = f"{name}: "
        if not line.startswith(prefix):
            raise BadInput(f"sign-in message: expected {name!r} on its line")
        values[name] = line[len(prefix) :]
    if statement != SIGN_IN_STATEMENT or values["Version"] != "1":
        raise BadInput("sign-in message: unknown statement or version")
    if not values["Chain ID"].isdigit() or not re.fullmatch(r"[A-Za-z0-9]{8,64}", values["Nonce"]):
        raise BadInput("sign-in message: malformed chain id or nonce")
    return SiweMessage(
        domain=domain,
        address=address,
        statement=statement,
        uri=values["URI"],
        chain_id=int(values["Chain ID"]),
        nonce=values["Nonce"],
        issued_at=_timestamp(values["Issued At"], "Issued At"),
        expiration_time=_timestamp(values["Expiration Time"], "Expiration Time"),
    )


def recover_signer(text: str, signature: str) -> str:
    """The address whose key signed ``text`` (EIP-191 personal message); :class:`BadInput` for a malformed
    signature."""
    if not re.fullmatch(r"0x[0-9a-fA-F]{130}", signature):
        raise BadInput("malformed signature: expected 65 bytes as 0x-hex")
    try:
        return str(Account.recover_message(encode_defunct(text=text), signature=signature))
    except (ValueError, TypeError, IndexError, ValidationError, BadSignature) as exc:
        raise BadInput(f"malformed signature: {exc}") from exc


@dataclass(frozen=True)
class _Nonce:
    domain: str
    expires: float


class NonceBook:
    """Nonces this server issued, each good once and for :data:`NONCE_SECONDS`."""

    def __init__(self, ttl: float = NONCE_SECONDS, *, limit: int = 10_000) -> None:
        self._ttl = ttl
        self._limit = limit
        self._nonces: dict[str, _Nonce] = {}
        self._lock = threading.Lock()

    def issue(self, domain: str) -> tuple[str, float]:
        """A fresh nonce for a message to ``domain``, and when it expires (Unix time)."""
        now = time.time()
        with self._lock:
            self._nonces = {k: v for k, v in self._nonces.items() if v.expires > now}
            if len(self._nonces) >= self._limit:  # a flood of unused nonces: drop the oldest
                oldest = min(self._nonces, key=lambda k: self._nonces[k].expires)
                del self._nonces[oldest]
            nonce = secrets.token_hex(16)
            self._nonces[nonce] = _Nonce(domain, now + self._ttl)
            return nonce, now + self._ttl

    def consume(self, nonce: str, domain: str) -> None:
        """Use up ``nonce``; :class:`BadInput` when this server did not issue it for ``domain``, or it expired or
        was used."""
        with self._lock:
            entry = self._nonces.pop(nonce, None)
        if entry is None or entry.expires <= time.time():
            raise BadInput("sign-in message: unknown, expired or already used nonce")
        if entry.domain != domain:
            raise BadInput(f"sign-in message: the nonce was issued for {entry.domain}, not {domain}")


@dataclass(frozen=True)
class Identity:
    """Who a request acts as: a consortium member (by address) or the auditor."""

    kind: str  # "member" | "auditor"
    address: str | None
    expires_at: float | None


class Sessions:
    """Session tokens handed out at sign-in, each valid for :data:`SESSION_SECONDS`."""

    def __init__(self, ttl: float = SESSION_SECONDS) -> None:
        self._ttl = ttl
        self._sessions: dict[str, Identity] = {}
        self._lock = threading.Lock()

    def open(self, address: str) -> tuple[str, Identity]:
        token = secrets.token_urlsafe(32)
        identity = Identity("member", address, time.time() + self._ttl)
        with self._lock:
            self._sessions[_digest(token)] = identity
        return token, identity

    def get(self, token: str) -> Identity | None:
        """The identity of a live session, or None."""
        key = _digest(token)
        with self._lock:
            identity = self._sessions.get(key)
            if identity is not None and identity.expires_at is not None and identity.expires_at <= time.time():
                del self._sessions[key]
                return None
        return identity

    def close(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(token), None)


def _digest(token: str) -> str:
    """Tokens are kept by their SHA-256 only, so a memory dump or a log of the table does not leak them."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuditorToken:
    """The auditor's token, fixed at server start (read from a file or ``FEDLEDGER_AUDITOR_TOKEN``)."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if len(token) < MIN_AUDITOR_TOKEN_CHARS:
            raise BadInput(f"the auditor token must be at least {MIN_AUDITOR_TOKEN_CHARS} characters")
        self._digest = _digest(token)

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(_digest(token), self._digest)


def issued_window(now: datetime | None = None) -> tuple[datetime, datetime]:
    """(issued at, expiration time) for a new sign-in message: valid for the nonce's lifetime."""
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    return start, start + timedelta(seconds=NONCE_SECONDS)
