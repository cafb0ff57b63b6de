"""Owner-only files and folders, for everything secret or personal that fedledger writes.

Keys, vault files, round secrets, registration files (their Merkle salts) and copies of raw data are
created 0600 in 0700 folders. Modes are set explicitly (``fchmod``/``chmod`` after creation), so the
result does not depend on the process's umask; a file is created with mode 0600 from its first byte,
under a temporary name, then renamed into place, so no reader ever sees it half-written or readable.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE", "open_private", "private_dir", "restrict", "write_private"]

PRIVATE_FILE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` (and any missing parents) as 0700 folders; an existing ``path`` is tightened to 0700.

    Parents that already exist are left as they are: they may be shared (a home or temp folder).
    """
    target = Path(path)
    missing: list[Path] = []
    probe = target
    while not probe.exists():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile: it is tightened below
            os.mkdir(folder, PRIVATE_DIR_MODE)
        os.chmod(folder, PRIVATE_DIR_MODE)
    if not missing:
        if not target.is_dir():
            raise NotADirectoryError(f"{target} exists and is not a folder")
        os.chmod(target, PRIVATE_DIR_MODE)
    return target


def _create_private(path: Path, *, exclusive: bool) -> tuple[int, Path]:
    """An fd open for writing on a new 0600 file: ``path`` itself when ``exclusive``, else a temporary beside it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    target = path if exclusive else path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(target, flags, PRIVATE_FILE_MODE)
    try:
        os.fchmod(fd, PRIVATE_FILE_MODE)  # the umask may have cleared owner bits
    except BaseException:
        os.close(fd)
        target.unlink(missing_ok=True)
        raise
    return fd, target


@contextlib.contextmanager
def open_private(
    path: str | os.PathLike[str], mode: str = "w", *, exclusive: bool = False, **open_kwargs: Any
) -> Iterator[IO[Any]]:
    """Write a private file through a file object (``mode`` "w" or "wb"), in a 0700 folder.

    The file appears at ``path`` only when the block ends without an error (written to a temporary
    name, synced, then renamed over ``path``). With ``exclusive`` it is created at ``path`` directly
    and an existing file is an error (``FileExistsError``), as for a key that must never be overwritten.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"open_private writes new files: mode must be 'w' or 'wb', not {mode!r}")
    target = Path(path)
    private_dir(target.parent)
    fd, written = _create_private(target, exclusive=exclusive)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if written != target:
            os.replace(written, target)
    except BaseException:
        written.unlink(missing_ok=True)
        raise


def write_private(path: str | os.PathLike[str], data: bytes | str, *, exclusive: bool = False) -> Path:
    """Write ``data`` (text as UTF-8) to a 0600 file at ``path`` in a 0700 folder, atomically; see
    :func:`open_private`."""
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    with open_private(path, "wb", exclusive=exclusive) as fh:
        fh.write(payload)
    return Path(path)


def restrict(path: str | os.PathLike[str]) -> Path:
    """Tighten an existing file to 0600 (a folder to 0700): for files another component wrote."""
    target = Path(path)
    mode = PRIVATE_DIR_MODE if stat.S_ISDIR(os.stat(target).st_mode) else PRIVATE_FILE_MODE
    os.chmod(target, mode)
    return target
