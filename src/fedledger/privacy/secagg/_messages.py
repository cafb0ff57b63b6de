"""The messages of a secure-aggregation round, with deterministic bytes.

Each message serializes to canonical bytes (sorted-key compact JSON with hex
for binary fields; safetensors for masked inputs), so it can be stored as a
content-addressed blob and its sha256 put on chain; parsing validates every
field and raises :class:`~fedledger.exceptions.BadInput` naming what is wrong.

Round by round (Bonawitz et al., CCS 2017, figure 4):

0. :class:`KeyAdvert`     member -> all: round public keys, authenticated by its identity key
1. :class:`ShareBundle`   member -> each neighbour: encrypted Shamir shares of its two seeds
2. :class:`MaskedInput`   member -> aggregator: ``n_i * x_i`` plus masks, mod 2^64
3. :class:`UnmaskRequest` aggregator -> survivors: who survived, who dropped
   :class:`ShareReveal`   survivor -> aggregator: shares of survivors' self-mask seeds and of dropouts' key seeds
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from fedledger.exceptions import BadInput, FedLedgerError, UpdateRejected
from fedledger.learning.update import UPDATE_FORMAT
from fedledger.store.safejson import loads_bounded
from fedledger.store.tensors import decode_tensors, encode_tensors

from ._prg import U64Array

__all__ = ["KeyAdvert", "MaskedInput", "RevealedShare", "ShareBundle", "ShareReveal", "UnmaskRequest"]

_T = TypeVar("_T")
MASKED_TRANSFORM = "secagg"


def _dump(kind: str, doc: Mapping[str, Any]) -> bytes:
    return json.dumps({"format": f"fedledger-secagg-{kind}/1", **doc}, sort_keys=True, separators=(",", ":")).encode()


def _load(kind: str, data: bytes, build: Callable[[dict[str, Any]], _T]) -> _T:
    try:
        doc = loads_bounded(data, what=f"secure-aggregation {kind}")
        if not isinstance(doc, dict):
            raise BadInput(f"secure-aggregation {kind} must be a JSON object")
        want = f"fedledger-secagg-{kind}/1"
        if doc.get("format") != want:
            raise BadInput(f"not a secure-aggregation {kind}: format {doc.get('format')!r}, expected {want!r}")
        return build(doc)
    except FedLedgerError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadInput(f"malformed secure-aggregation {kind}: {type(exc).__name__}: {exc}") from exc


def _hex(doc: Mapping[str, Any], key: str, size: int | None = None) -> bytes:
    raw = bytes.fromhex(doc[key])
    if size is not None and len(raw) != size:
        raise BadInput(f"field {key!r} must be {size} bytes, got {len(raw)}")
    return raw


def _str(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadInput(f"{what} must be a non-empty string, got {value!r}")
    return value


@dataclass(frozen=True)
class KeyAdvert:
    """Round 0: a member's round keys and a commitment to its self-mask seed.

    ``channel_public`` (X25519) encrypts the shares sent to it; ``mask_public``
    (X25519) agrees the pairwise mask seeds. ``tags`` holds, per neighbour, an
    HMAC over :meth:`signed_body` keyed from the two members' long-term
    identity keys (the ones published in the consortium registry), so a
    neighbour knows the round keys really come from that member.
    """

    member: str
    context: bytes
    channel_public: bytes
    mask_public: bytes
    self_mask_commitment: bytes
    tags: tuple[tuple[str, bytes], ...]

    def signed_body(self) -> bytes:
        return _dump(
            "advert-body",
            {
                "member": self.member,
                "context": self.context.hex(),
                "channel_public": self.channel_public.hex(),
                "mask_public": self.mask_public.hex(),
                "self_mask_commitment": self.self_mask_commitment.hex(),
            },
        )

    def tag_for(self, peer: str) -> bytes | None:
        return dict(self.tags).get(peer)

    def to_bytes(self) -> bytes:
        return _dump(
            "advert",
            {
                "member": self.member,
                "context": self.context.hex(),
                "channel_public": self.channel_public.hex(),
                "mask_public": self.mask_public.hex(),
                "self_mask_commitment": self.self_mask_commitment.hex(),
                "tags": [[peer, tag.hex()] for peer, tag in self.tags],
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyAdvert:
        def build(d: dict[str, Any]) -> KeyAdvert:
            tags = tuple((_str(p, "tag peer"), bytes.fromhex(t)) for p, t in d["tags"])
            return cls(
                member=_str(d["member"], "member"),
                context=_hex(d, "context", 32),
                channel_public=_hex(d, "channel_public", 32),
                mask_public=_hex(d, "mask_public", 32),
                self_mask_commitment=_hex(d, "self_mask_commitment", 32),
                tags=tags,
            )

        return _load("advert", data, build)


@dataclass(frozen=True)
class ShareBundle:
    """Round 1: ``sender``'s shares, one AES-GCM ciphertext (nonce || ciphertext) per recipient."""

    sender: str
    context: bytes
    ciphertexts: tuple[tuple[str, bytes], ...]

    def ciphertext_for(self, recipient: str) -> bytes | None:
        return dict(self.ciphertexts).get(recipient)

    def to_bytes(self) -> bytes:
        return _dump(
            "shares",
            {
                "sender": self.sender,
                "context": self.context.hex(),
                "ciphertexts": [[r, c.hex()] for r, c in self.ciphertexts],
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareBundle:
        def build(d: dict[str, Any]) -> ShareBundle:
            cts = tuple((_str(r, "recipient"), bytes.fromhex(c)) for r, c in d["ciphertexts"])
            return cls(sender=_str(d["sender"], "sender"), context=_hex(d, "context", 32), ciphertexts=cts)

        return _load("shares", data, build)


@dataclass(frozen=True)
class MaskedInput:
    """Round 2: ``num_examples * update + masks`` (mod 2^64), as a regular fixed64 update blob.

    The blob is the project's update format (``fedledger-update/1``, uint64
    tensors, same names and shapes as the plain update) with the secure
    aggregation context in its metadata: the same bytes as the plaintext update
    plus a few metadata characters.
    """

    member: str
    context: bytes
    num_examples: int
    frac_bits: int
    tensors: Mapping[str, U64Array]

    def to_bytes(self) -> bytes:
        meta = {
            "format": UPDATE_FORMAT,
            "encoding": "fixed64",
            "frac_bits": str(self.frac_bits),
            "num_examples": str(self.num_examples),
            "transforms": MASKED_TRANSFORM,
            "secagg_member": self.member,
            "secagg_context": self.context.hex(),
        }
        return encode_tensors(dict(self.tensors), meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> MaskedInput:
        try:
            tensors, meta = decode_tensors(data)
        except UpdateRejected as exc:
            raise BadInput(f"masked input is {exc.reason}") from exc
        try:
            if meta.get("format") != UPDATE_FORMAT or meta.get("encoding") != "fixed64":
                raise BadInput("masked input must be a fixed64 update blob")
            if MASKED_TRANSFORM not in meta.get("transforms", "").split(","):
                raise BadInput("update blob is not a secure-aggregation masked input (no 'secagg' transform)")
            num_examples, frac_bits = int(meta["num_examples"]), int(meta["frac_bits"])
            context = bytes.fromhex(meta["secagg_context"])
            member = _str(meta["secagg_member"], "member")
        except KeyError as exc:
            raise BadInput(f"masked input metadata missing: {exc.args[0]}") from exc
        except ValueError as exc:
            raise BadInput(f"malformed masked input metadata: {exc}") from exc
        for name, arr in tensors.items():
            if arr.dtype != np.uint64:
                raise BadInput(f"masked input tensor {name!r} has dtype {arr.dtype}, expected uint64")
        return cls(member=member, context=context, num_examples=num_examples, frac_bits=frac_bits, tensors=tensors)


@dataclass(frozen=True)
class UnmaskRequest:
    """Round 3 question: which members' inputs are in the sum (survivors) and which shared keys but sent none."""

    context: bytes
    survivors: tuple[str, ...]
    dropouts: tuple[str, ...]

    def to_bytes(self) -> bytes:
        return _dump(
            "unmask-request",
            {"context": self.context.hex(), "survivors": list(self.survivors), "dropouts": list(self.dropouts)},
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> UnmaskRequest:
        def build(d: dict[str, Any]) -> UnmaskRequest:
            return cls(
                context=_hex(d, "context", 32),
                survivors=tuple(_str(m, "survivor") for m in d["survivors"]),
                dropouts=tuple(_str(m, "dropout") for m in d["dropouts"]),
            )

        return _load("unmask-request", data, build)


@dataclass(frozen=True)
class RevealedShare:
    """One Shamir share (x coordinate, 16 bytes) of ``owner``'s secret."""

    owner: str
    x: int
    share: bytes


@dataclass(frozen=True)
class ShareReveal:
    """Round 3 answer from ``holder``: self-mask seed shares of survivors, key-seed shares of dropouts."""

    holder: str
    context: bytes
    self_mask_shares: tuple[RevealedShare, ...]
    mask_key_shares: tuple[RevealedShare, ...]

    def to_bytes(self) -> bytes:
        def rows(shares: tuple[RevealedShare, ...]) -> list[list[Any]]:
            return [[s.owner, s.x, s.share.hex()] for s in shares]

        return _dump(
            "reveal",
            {
                "holder": self.holder,
                "context": self.context.hex(),
                "self_mask_shares": rows(self.self_mask_shares),
                "mask_key_shares": rows(self.mask_key_shares),
            },
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> ShareReveal:
        def shares(rows: Any) -> tuple[RevealedShare, ...]:
            out = []
            for owner, x, share in rows:
                if isinstance(x, bool) or not isinstance(x, int) or x < 1:
                    raise BadInput(f"share x coordinate must be a positive integer, got {x!r}")
                raw = bytes.fromhex(share)
                if len(raw) != 16:
                    raise BadInput(f"shares are 16 bytes, got {len(raw)}")
                out.append(RevealedShare(_str(owner, "share owner"), x, raw))
            return tuple(out)

        def build(d: dict[str, Any]) -> ShareReveal:
            return cls(
                holder=_str(d["holder"], "holder"),
                context=_hex(d, "context", 32),
                self_mask_shares=shares(d["self_mask_shares"]),
                mask_key_shares=shares(d["mask_key_shares"]),
            )

        return _load("reveal", data, build)
