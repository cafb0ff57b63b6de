"""Checking and converting values before they go to a contract."""

from __future__ import annotations

import re

from eth_utils import is_address, keccak, to_checksum_address

from fedledger.exceptions import BadInput

__all__ = ["ZERO_HASH", "as_address", "as_bytes32", "hex32", "name_id"]

# Canonical names of on-chain ids (purposes, bulletin topics): lower-case ASCII, so one name has one spelling.
_CANONICAL_NAME = re.compile(r"[a-z0-9][a-z0-9._:/-]{0,127}")

ZERO_HASH = "0x" + "00" * 32


def as_address(value: str, *, what: str = "address") -> str:
    """A checksummed address, or :class:`BadInput` naming the bad value."""
    if not isinstance(value, str) or not is_address(value):
        raise BadInput(f"malformed {what}: {value!r} is not a 20-byte hex address")
    return to_checksum_address(value)


def as_bytes32(value: str | bytes, *, what: str = "hash") -> bytes:
    """32 bytes from raw bytes or (0x-)hex; :class:`BadInput` otherwise."""
    if isinstance(value, bytes):
        raw = value
    elif isinstance(value, str):
        text = value[2:] if value.startswith(("0x", "0X")) else value
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise BadInput(f"malformed {what}: {value!r} is not hex") from None
    else:
        raise BadInput(f"malformed {what}: expected hex string or bytes, got {type(value).__name__}")
    if len(raw) != 32:
        raise BadInput(f"malformed {what}: expected 32 bytes, got {len(raw)}")
    return raw


def hex32(value: bytes) -> str:
    """0x-prefixed hex of a bytes32 value."""
    return "0x" + bytes(value).hex()


def name_id(value: str | bytes, *, what: str, example: str) -> bytes:
    """The on-chain id of a canonical name: keccak256 of the name, or the 32-byte id itself when given one."""
    if isinstance(value, bytes):
        if len(value) != 32 or value == bytes(32):
            raise BadInput(f"malformed {what} id: expected 32 non-zero bytes, got {value!r}")
        return value
    if not isinstance(value, str) or _CANONICAL_NAME.fullmatch(value) is None:
        raise BadInput(
            f"malformed {what} name {value!r}: expected 1-128 characters of a-z 0-9 . _ : / - "
            f"starting with a letter or digit (e.g. {example!r})"
        )
    return keccak(text=value)
