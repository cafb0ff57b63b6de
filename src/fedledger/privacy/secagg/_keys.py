"""Key agreement, key derivation and share encryption, composed from ``cryptography`` primitives.

Nothing here is a new primitive: X25519 (RFC 7748) for key agreement, HKDF-SHA256
(RFC 5869) to turn a shared point into keys bound to the round context and a
purpose label, HMAC-SHA256 to authenticate round keys under identity keys,
AES-256-GCM to encrypt shares, and pycryptodome's Shamir secret sharing over
GF(2^128) for 16-byte secrets.

Why 16-byte seeds: pycryptodome's Shamir shares exactly 16-byte secrets. Both
secrets a member shares are therefore 128-bit seeds: the self-mask seed ``b_i``
(an AES-128 key for the mask PRG) and the mask-key seed from which the member's
X25519 mask key is derived by HKDF. Sharing the seed instead of the 32-byte
X25519 key halves the Shamir work and keeps 128-bit security.
"""

from __future__ import annotations

import hashlib
import os
import struct

from Crypto.Protocol.SecretSharing import Shamir
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.exceptions import BadInput

from ._prg import SEED_BYTES

_NONCE_BYTES = 12
_SHARE_PLAINTEXT = struct.Struct(">H16s16s")  # x coordinate, self-mask seed share, mask-key seed share


def new_seed() -> bytes:
    return os.urandom(SEED_BYTES)


def public_bytes(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key(raw: bytes, *, owner: str) -> X25519PublicKey:
    try:
        return X25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise BadInput(f"X25519 public key of {owner!r} is invalid: {exc}") from exc


def _hkdf(secret: bytes, length: int, label: bytes, context: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label + context).derive(secret)


def _exchange(private: X25519PrivateKey, peer: X25519PublicKey, *, peer_name: str) -> bytes:
    try:
        return private.exchange(peer)
    except ValueError as exc:  # all-zero shared secret: a small-order (malicious) public key
        raise BadInput(f"key agreement with {peer_name!r} failed: {exc}") from exc


def _pair(a: str, b: str) -> bytes:
    lo, hi = sorted((a, b))
    return hashlib.sha256(lo.encode() + b"\x00" + hi.encode()).digest()


def auth_tag(
    identity: X25519PrivateKey,
    peer_identity: X25519PublicKey,
    *,
    sender: str,
    recipient: str,
    context: bytes,
    body: bytes,
) -> bytes:
    """HMAC over ``body`` from ``sender`` to ``recipient``, keyed by their identity keys' agreement.

    The agreement is symmetric, so the recipient recomputes the same tag with its own identity key.
    """
    shared = _exchange(identity, peer_identity, peer_name=f"{sender}->{recipient}")
    direction = hashlib.sha256(sender.encode() + b"\x00" + recipient.encode()).digest()
    mac = hmac.HMAC(_hkdf(shared, 32, b"fedledger-secagg/advert-auth/" + direction, context), hashes.SHA256())
    mac.update(body)
    return mac.finalize()


def self_mask_commitment(seed: bytes, *, member: str, context: bytes) -> bytes:
    """sha256 commitment to a self-mask seed (hiding: the seed has 128 random bits)."""
    return hashlib.sha256(b"fedledger-secagg/self-mask/" + context + member.encode() + b"\x00" + seed).digest()


def mask_key_from_seed(seed: bytes, *, context: bytes) -> X25519PrivateKey:
    """The round's X25519 mask key, derived from a 16-byte shareable seed."""
    return X25519PrivateKey.from_private_bytes(_hkdf(seed, 32, b"fedledger-secagg/mask-key", context))


def pairwise_seed(mask_key: X25519PrivateKey, peer_mask_public: X25519PublicKey, *, peer: str, context: bytes) -> bytes:
    """The PRG seed both ends of a pair derive from their mask keys (symmetric in the two)."""
    return _hkdf(_exchange(mask_key, peer_mask_public, peer_name=peer), SEED_BYTES, b"fedledger-secagg/pair", context)


def _channel(
    channel_key: X25519PrivateKey,
    peer_channel: X25519PublicKey,
    sender: str,
    recipient: str,
    context: bytes,
    peer_name: str,
) -> tuple[AESGCM, bytes]:
    key = _hkdf(_exchange(channel_key, peer_channel, peer_name=peer_name), 32, b"fedledger-secagg/channel", context)
    aad = context + hashlib.sha256(sender.encode() + b"\x00" + recipient.encode()).digest() + _pair(sender, recipient)
    return AESGCM(key), aad


def encrypt_share(
    channel_key: X25519PrivateKey,
    peer_channel: X25519PublicKey,
    *,
    sender: str,
    recipient: str,
    context: bytes,
    x: int,
    self_mask_share: bytes,
    mask_key_share: bytes,
) -> bytes:
    """nonce || AES-GCM(x, shares), bound to (context, sender, recipient)."""
    aead, aad = _channel(channel_key, peer_channel, sender, recipient, context, recipient)
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + aead.encrypt(nonce, _SHARE_PLAINTEXT.pack(x, self_mask_share, mask_key_share), aad)


def decrypt_share(
    channel_key: X25519PrivateKey,
    peer_channel: X25519PublicKey,
    *,
    sender: str,
    recipient: str,
    context: bytes,
    ciphertext: bytes,
) -> tuple[int, bytes, bytes]:
    """(x, self-mask seed share, mask-key seed share); :class:`BadInput` if it does not authenticate."""
    aead, aad = _channel(channel_key, peer_channel, sender, recipient, context, sender)
    try:
        plain = aead.decrypt(ciphertext[:_NONCE_BYTES], ciphertext[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise BadInput(f"share ciphertext from {sender!r} to {recipient!r} does not authenticate") from None
    if len(plain) != _SHARE_PLAINTEXT.size:
        raise BadInput(f"share plaintext from {sender!r} has {len(plain)} bytes, expected {_SHARE_PLAINTEXT.size}")
    x, self_share, key_share = _SHARE_PLAINTEXT.unpack(plain)
    return int(x), bytes(self_share), bytes(key_share)


def split_secret(secret: bytes, *, threshold: int, holders: int) -> list[tuple[int, bytes]]:
    """Shamir shares (x = 1..holders) of a 16-byte secret; any ``threshold`` of them recover it."""
    return [(int(x), bytes(s)) for x, s in Shamir.split(threshold, holders, secret, ssss=False)]


def combine_secret(shares: list[tuple[int, bytes]]) -> bytes:
    """The secret from exactly ``threshold`` Shamir shares (a wrong share silently gives a wrong secret)."""
    return bytes(Shamir.combine(shares, ssss=False))
