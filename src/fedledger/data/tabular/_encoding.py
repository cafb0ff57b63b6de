"""Which text encoding a table file is in: byte-order marks, strict UTF-8, then charset-normalizer with a
Western code-page rule (the rules are described in the package docstring)."""

from __future__ import annotations

import codecs
from pathlib import Path

from fedledger.exceptions import BadInput

_CHUNK_BYTES = 1 << 20
# Bytes around the first invalid UTF-8 byte that charset-normalizer looks at (with the file's first bytes).
_DETECT_BYTES = 256 * 1024
_MIN_DETECT_BYTES = 16
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Scripts (Unicode block names, as charset-normalizer reports them) that rule out a Western code page.
_NON_LATIN_SCRIPTS = (
    "Cyrillic",
    "Greek",
    "Arabic",
    "Hebrew",
    "CJK",
    "Hangul",
    "Hiragana",
    "Katakana",
    "Thai",
    "Devanagari",
    "Armenian",
    "Georgian",
)
# Bytes that Windows-1252 leaves undefined: a file holding them is not cp1252, so read it as Latin-1.
_CP1252_UNDEFINED_BYTES = tuple(bytes([b]) for b in b"\x81\x8d\x8f\x90\x9d")


def _bom_encoding(head: bytes) -> str | None:
    return next((encoding for bom, encoding in _BOMS if head.startswith(bom)), None)


def _legacy_encoding(sample: bytes, *, cp1252_undefined: bool) -> str:
    """The encoding of bytes that are neither UTF-8 nor marked by a BOM.

    Statistical detection cannot tell the Western 8-bit code pages apart on short tables (it calls a Latin-1 file
    with a few accents cp775 or cp1250), so only a multi-byte or non-Latin-script verdict of charset-normalizer is
    taken as is; Latin-script text is cp1252, the usual spreadsheet export and a superset of Latin-1's printable
    characters, or Latin-1 when the bytes hold one that cp1252 leaves undefined. Below
    :data:`_MIN_DETECT_BYTES` non-ASCII bytes there is too little text to tell scripts apart (charset-normalizer
    calls "José" Farsi in cp1006), so such a sample gets the Western default too.
    """
    from charset_normalizer import from_bytes
    from charset_normalizer.utils import is_multi_byte_encoding

    western = "latin-1" if cp1252_undefined else "cp1252"
    if sum(byte >= 0x80 for byte in sample) < _MIN_DETECT_BYTES:
        return western
    best = from_bytes(sample).best()
    if best is None:
        return western
    found = codecs.lookup(best.encoding).name
    # A delimited file in UTF-16/32 is full of NUL bytes (handled before this); without them such a verdict is
    # charset-normalizer over-fitting a few accented bytes.
    if found.startswith(("utf-16", "utf-32")):
        return western
    if is_multi_byte_encoding(best.encoding) or any(s in a for a in best.alphabets for s in _NON_LATIN_SCRIPTS):
        return found
    return western


def decode_bytes(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """(text, encoding) for a whole raw file's bytes.

    Byte-order marks first (UTF-8, UTF-16 and UTF-32, BOM removed); then strict UTF-8 (which covers ASCII); then
    ``charset-normalizer`` with the Western code-page rule of :func:`_legacy_encoding`. Pass ``encoding`` to skip
    detection. Files too large to hold in memory go through :func:`detect_source`, which applies the same rules
    while streaming.
    """
    if encoding:
        try:
            return data.decode(encoding), codecs.lookup(encoding).name
        except (LookupError, UnicodeDecodeError) as exc:
            raise BadInput(f"cannot decode as {encoding}: {exc}") from exc
    bom = _bom_encoding(data)
    if bom is not None:
        try:
            return data.decode(bom), bom
        except UnicodeDecodeError as exc:
            raise BadInput(f"starts with a {bom} byte-order mark but is not {bom}: {exc}") from exc
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = _legacy_encoding(data, cp1252_undefined=_has_cp1252_undefined(data))
    try:
        return data.decode(found), found
    except UnicodeDecodeError as exc:
        raise BadInput(f"detected as {found} but not decodable as it: {exc}") from exc


def detect_encoding(path: Path, head: bytes) -> tuple[str, str]:
    """(encoding, note) of a CSV file whose first bytes are ``head`` (see the module docstring)."""
    bom = _bom_encoding(head)
    if bom in ("utf-16", "utf-32"):
        _check_decodes(path, bom)
        return bom, ""
    if bom is None and b"\x00" in head:
        # UTF-16/32 text without a BOM is full of NUL bytes; so is every binary format.
        from charset_normalizer import from_bytes

        best = from_bytes(head).best()
        wide = None if best is None else codecs.lookup(best.encoding).name
        if wide is None or not wide.startswith(("utf-16", "utf-32")):
            raise BadInput(f"{path}: unknown format: binary content that is neither CSV nor Parquet")
        _check_decodes(path, wide)
        return wide, f"no byte-order mark; detected as {wide} by charset-normalizer"
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    newlines = 0
    saw_multibyte = False
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad_at = offset + exc.start
                line = newlines + chunk.count(b"\n", 0, exc.start) + 1
                saw_multibyte = saw_multibyte or any(b >= 0xC2 for b in chunk[: exc.start])
                around = chunk[max(0, exc.start - _DETECT_BYTES // 2) : exc.start + _DETECT_BYTES // 2]
                sample = around if offset == 0 and exc.start < _DETECT_BYTES // 2 else head + around
                undefined_in_cp1252 = _has_cp1252_undefined(chunk)
                while not undefined_in_cp1252 and (more := fh.read(_CHUNK_BYTES)):
                    undefined_in_cp1252 = _has_cp1252_undefined(more)
                found = _legacy_encoding(sample, cp1252_undefined=undefined_in_cp1252)
                mixed = " (mixed encodings: valid UTF-8 text appears before it)" if saw_multibyte else ""
                return found, (
                    f"not valid UTF-8 (byte {bad_at}, line {line}){mixed}; decoded as {found}, "
                    "so some characters may be wrong"
                )
            saw_multibyte = saw_multibyte or max(chunk, default=0) >= 0x80
            newlines += chunk.count(b"\n")
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1252", "the file ends inside a UTF-8 character (truncated?); decoded as cp1252"
    return bom or "utf-8", ""


def _check_decodes(path: Path, encoding: str) -> None:
    """Decode the whole file (streaming) so that a broken UTF-16/32 file fails before any row is read."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_CHUNK_BYTES):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise BadInput(f"{path}: not valid {encoding} at byte {offset + exc.start}: {exc.reason}") from exc


def _has_cp1252_undefined(chunk: bytes) -> bool:
    return any(chunk.find(byte) >= 0 for byte in _CP1252_UNDEFINED_BYTES)
