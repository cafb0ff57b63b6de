"""Checking and converting values before they go to a contract."""

from __future__ import annotations

from eth_utils import is_address, to_checksum_address

from fedledger.exceptions import BadInput

__all__ = ["ZERO_HASH", "as_address", "as_bytes32", "hex32"]

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
