"""JSON from untrusted blobs, parsed only after its size and nesting depth are known to be safe.

``json.loads`` recurses once per nesting level in C. An imported dependency raises Python's recursion
limit to 100,000, so a blob of 100,000 ``[`` overflows the C stack and kills the process (SIGSEGV) before
any ``except`` can run. :func:`loads_bounded` therefore measures the depth with a linear scan first
(strings removed by one regular expression, then a running sum over the remaining brackets) and hands
the text to ``json`` only when it is shallow and small enough.

Every refusal is an :class:`UnsafeJSON`, a ``ValueError`` (like ``json.JSONDecodeError``), so decoders
that already turn ``ValueError`` into their own named error keep doing so.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_JSON_BYTES", "UnsafeJSON", "json_depth", "loads_bounded", "loads_shallow"]

DEFAULT_MAX_DEPTH = 32
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024  # the blob store's default limit

# A JSON string: a quote, then runs of ordinary characters and escape pairs, then a quote (unrolled, so linear).
_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S][^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class UnsafeJSON(ValueError):
    """JSON refused before parsing: too large, too deeply nested, not UTF-8, or not strict JSON."""


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text`` (brackets inside strings do not count).

    Never less than what ``json`` would recurse into while parsing ``text``: an unterminated string
    leaves its brackets counted, which can only over-estimate.
    """
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if not brackets:
        return 0
    codes = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int64)
    return int(np.cumsum(steps).max())


def _refuse_constant(name: str) -> Any:
    raise UnsafeJSON(f"{name} is not JSON")


def _unique_keys(what: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                # Two parsers could keep different copies of a repeated key; refuse the ambiguity.
                raise UnsafeJSON(f"{what} repeats the key {key!r}")
            out[key] = value
        return out

    return build


def loads_bounded(
    data: bytes | bytearray | memoryview | str,
    *,
    what: str = "JSON",
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    parse_float: Callable[[str], Any] | None = None,
    parse_int: Callable[[str], Any] | None = None,
) -> Any:
    """Parse untrusted JSON (UTF-8 bytes or text) no larger than ``max_bytes`` and nested at most ``max_depth``
    levels, refusing ``NaN``/``Infinity`` and repeated keys; :class:`UnsafeJSON` names what was wrong."""
    if isinstance(data, str):
        if len(data) > max_bytes:  # characters: a lower bound on its UTF-8 size
            raise UnsafeJSON(f"{what} is {len(data)} characters, over the limit of {max_bytes} bytes")
        text = data
    elif isinstance(data, bytes | bytearray | memoryview):
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if size > max_bytes:
            raise UnsafeJSON(f"{what} is {size} bytes, over the limit of {max_bytes} bytes")
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise UnsafeJSON(f"{what} is not UTF-8: {exc}") from exc
    else:
        raise UnsafeJSON(f"{what} must be bytes or text, got {type(data).__name__}")
    depth = json_depth(text)
    if depth > max_depth:
        raise UnsafeJSON(f"{what} is nested {depth} levels deep, more than the {max_depth} allowed")
    try:
        return json.loads(
            text,
            object_pairs_hook=_unique_keys(what),
            parse_constant=_refuse_constant,
            parse_float=parse_float,
            parse_int=parse_int,
        )
    except UnsafeJSON:
        raise
    except RecursionError as exc:  # unreachable after the depth scan; kept so no parse can escape unnamed
        raise UnsafeJSON(f"{what} is nested too deeply") from exc
    except ValueError as exc:
        raise UnsafeJSON(f"{what} is not valid JSON: {exc}") from exc


def loads_shallow(data: bytes | str, *, what: str = "JSON", max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """``json.loads`` for a local file a command reads, after the depth scan of :func:`loads_bounded`.

    The file's JSON is read exactly as ``json.loads`` reads it (NaN, repeated keys), so files that parsed before
    parse the same; only one nested deeper than ``max_depth`` is refused, as :class:`UnsafeJSON` (a
    ``ValueError``, as a parse error is), instead of overflowing the C stack. Bytes are decoded as ``json`` does.
    """
    text = data if isinstance(data, str) else data.decode(json.detect_encoding(data), "surrogatepass")
    depth = json_depth(text)
    if depth > max_depth:
        raise UnsafeJSON(f"{what} is nested {depth} levels deep, more than the {max_depth} allowed")
    return json.loads(text)
