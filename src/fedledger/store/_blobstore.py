"""Content-addressed blob store: a blob's id is the sha256 hex of its bytes.

Credentials and endpoints never go in the store URL (it is published on chain). For ``s3://`` stores
(``pip install "fedledger[s3]"``) each member gives its own the standard AWS way, read by botocore:
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` (or ``AWS_PROFILE`` with ``~/.aws/credentials``), and for an
S3-compatible server ``AWS_ENDPOINT_URL_S3`` (or ``AWS_ENDPOINT_URL``, or ``endpoint_url`` in the profile's
``~/.aws/config`` section). Code may pass them as ``storage_options`` (``key``, ``secret``, ``endpoint_url``) instead.

Transient failures (connection refused or reset, timeouts, a server answering 500/503) are retried
``attempts`` times in all, waiting ``backoff`` seconds and doubling each time, with a warning on the
``fedledger.store`` logger; every other failure is a :class:`StoreError` naming the store URL and the cause.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import fsspec

from fedledger.exceptions import BlobNotFound, FedLedgerError, IntegrityError, StoreError

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_BACKOFF_S",
    "DEFAULT_MAX_BLOB_BYTES",
    "BlobStore",
    "BlobTooLarge",
    "blob_id_of",
    "check_blob_id",
]

DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = 0.2

logger = logging.getLogger("fedledger.store")

_T = TypeVar("_T")

# Connection and timeout errors of botocore / aiohttp / urllib3 (matched by name: none of them is a dependency).
_TRANSIENT_ERROR_NAMES = frozenset(
    {
        "EndpointConnectionError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "ConnectionClosedError",
        "ProxyConnectionError",
        "ResponseStreamingError",
        "IncompleteRead",
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ProtocolError",
    }
)
# OSError numbers of a server that is down or busy; s3fs maps HTTP 500 to EREMOTEIO and 503 (SlowDown) to EBUSY.
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.EBUSY,
        errno.EAGAIN,
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        getattr(errno, "EREMOTEIO", 121),
    }
)
_CREDENTIALS_HINT = (
    " (check this member's store credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "
    "or the key and secret storage options)"
)


def _is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying: the store was unreachable, timed out or said it is busy."""
    if isinstance(exc, FileNotFoundError | PermissionError | FileExistsError | IsADirectoryError):
        return False
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS:
        return True
    return any(cls.__name__ in _TRANSIENT_ERROR_NAMES for cls in type(exc).__mro__)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


_ID_RE = re.compile(r"[0-9a-f]{64}")
# Object stores replace an object in one PUT, so a partial blob is never visible there.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})


class BlobTooLarge(StoreError):
    """A blob is over the size limit: refused before it is read (or written)."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


def blob_id_of(data: bytes) -> str:
    """The id a blob gets: the sha256 hex digest of its bytes."""
    return hashlib.sha256(data).hexdigest()


def check_blob_id(blob_id: str) -> str:
    """Return ``blob_id`` if it is 64 lowercase hex characters, else raise :class:`StoreError`."""
    if not isinstance(blob_id, str) or _ID_RE.fullmatch(blob_id) is None:
        raise StoreError(f"malformed blob id {blob_id!r}: expected 64 lowercase hex characters (sha256)")
    return blob_id


class BlobStore:
    """Blobs stored by sha256 under ``<root>/<id[:2]>/<id>``; every read is verified.

    ``url_or_path`` is a local folder (created if missing) or any fsspec URL
    (``file://``, ``memory://``, ``s3://``, ``gs://``, ``az://``...). Extra
    ``storage_options`` go to the fsspec filesystem (credentials, endpoints); they are
    never part of :attr:`url`, which is what members publish on chain, and a URL that
    carries credentials (``scheme://user:secret@...``) is refused.

    Every operation is tried up to ``attempts`` times while the failure is transient
    (unreachable store, timeout, 500/503), sleeping ``backoff`` seconds, then twice that...
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        attempts: int = DEFAULT_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF_S,
        **storage_options: Any,
    ) -> None:
        if max_blob_bytes <= 0:
            raise StoreError(f"max_blob_bytes must be positive, got {max_blob_bytes}")
        if attempts < 1:
            raise StoreError(f"attempts must be at least 1, got {attempts}")
        if backoff < 0:
            raise StoreError(f"backoff must not be negative, got {backoff}")
        self.max_blob_bytes = max_blob_bytes
        self.attempts = attempts
        self.backoff = backoff
        target = os.fspath(url_or_path)
        self._local_root: Path | None = None
        if "://" not in target:
            self._local_root = Path(target).expanduser().resolve()
            self.url = str(self._local_root)
            try:
                self._local_root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create blob store folder {self._local_root}: {exc}") from exc
            self._fs: Any = None
            self._root = str(self._local_root)
            return
        _refuse_credentials_in(target)
        self.url = target
        try:
            fs, root = fsspec.core.url_to_fs(target, **storage_options)
        except ImportError as exc:
            scheme = target.split("://", 1)[0]
            hint = ' (pip install "fedledger[s3]")' if scheme in {"s3", "s3a"} else ""
            raise StoreError(f"cannot open blob store {target!r}: {exc}{hint}") from exc
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot open blob store {target!r}: {_describe(exc)}") from exc
        self._fs = fs
        self._root = root.rstrip("/")
        protocols = fs.protocol if isinstance(fs.protocol, tuple | list) else (fs.protocol,)
        if "file" in protocols or "local" in protocols:
            # file:// gets the same atomic rename path as a plain folder.
            self._local_root = Path(root)
            self._fs = None
            try:
                self._local_root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create blob store folder {self._local_root}: {exc}") from exc
        self._atomic_put = bool(set(protocols) & _ATOMIC_PUT_PROTOCOLS)

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    # -- retries and errors ----------------------------------------------------

    def _run(self, action: str, op: Callable[[], _T]) -> _T:
        """``op()``, retried while it fails transiently; any other failure becomes a :class:`StoreError`
        saying ``cannot {action} {url}: cause`` (our own errors, BlobNotFound included, pass through)."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                return op()
            except FedLedgerError:
                raise
            except Exception as exc:
                if self._fs is None and not isinstance(exc, OSError):
                    raise  # a local store maps OS errors only, as it always has
                transient = _is_transient(exc)
                if transient and attempt < self.attempts:
                    logger.warning(
                        "blob store %s: cannot %s it (%s); retrying in %.1f s (attempt %d of %d)",
                        self.url,
                        action,
                        _describe(exc),
                        delay,
                        attempt + 1,
                        self.attempts,
                    )
                    time.sleep(delay)
                    delay *= 2
                    continue
                tries = f" after {attempt} attempts" if transient and attempt > 1 else ""
                hint = _CREDENTIALS_HINT if isinstance(exc, PermissionError) and self._fs is not None else ""
                raise StoreError(f"cannot {action} {self.url}{tries}: {_describe(exc)}{hint}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    # -- paths -----------------------------------------------------------------

    def _key(self, blob_id: str) -> str:
        return f"{self._root}/{blob_id[:2]}/{blob_id}"

    def path_of(self, blob_id: str) -> Path:
        """Local file path of a blob (it may not exist); :class:`StoreError` for remote stores."""
        check_blob_id(blob_id)
        if self._local_root is None:
            raise StoreError(f"blob store {self.url} is not local; it has no file paths")
        return self._local_root / blob_id[:2] / blob_id

    # -- operations ------------------------------------------------------------

    def _check_size(self, size: int, blob_id: str | None, limit: int | None = None) -> None:
        limit = self.max_blob_bytes if limit is None else limit
        if size > limit:
            what = f"blob {blob_id}" if blob_id else "blob"
            whose = "store" if limit == self.max_blob_bytes else "reader's"
            raise BlobTooLarge(
                f"{what} is {size} bytes, over the {whose} limit of {limit} bytes", size=size, limit=limit
            )

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex id; storing the same bytes twice is a no-op."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(f"put expects bytes, got {type(data).__name__}")
        data = bytes(data)
        self._check_size(len(data), None)
        blob_id = blob_id_of(data)
        if self._local_root is not None:
            self._run(f"write blob {blob_id} to", lambda: self._put_local(blob_id, data))
        else:
            self._run(f"write blob {blob_id} to", lambda: self._put_fs(blob_id, data))
        return blob_id

    def _put_local(self, blob_id: str, data: bytes) -> None:
        path = self.path_of(blob_id)
        # Same id and same size: same bytes, unless the file was tampered with (then get() says so).
        if path.is_file() and path.stat().st_size == len(data):
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{blob_id[:8]}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _put_fs(self, blob_id: str, data: bytes) -> None:
        key = self._key(blob_id)
        if self._fs.exists(key) and self._fs.size(key) == len(data):
            return
        self._fs.makedirs(key.rsplit("/", 1)[0], exist_ok=True)
        if self._atomic_put:
            self._fs.pipe_file(key, data)
            return
        tmp = f"{key}.{uuid.uuid4().hex}.tmp"
        self._fs.pipe_file(tmp, data)
        self._fs.mv(tmp, key)

    def get(self, blob_id: str, *, max_bytes: int | None = None) -> bytes:
        """The blob's bytes, verified against its id (:class:`IntegrityError` if they differ).

        A blob over the store's ``max_blob_bytes``, or over ``max_bytes`` when that is smaller, is refused
        with :class:`BlobTooLarge` from its size alone, before its bytes are read.
        """
        check_blob_id(blob_id)
        limit = self.max_blob_bytes if max_bytes is None else min(self.max_blob_bytes, max_bytes)
        read = self._read_local if self._local_root is not None else self._read_fs
        data = self._run(f"read blob {blob_id} from", lambda: read(blob_id, limit))
        self._check_size(len(data), blob_id, limit)
        actual = blob_id_of(data)
        if actual != blob_id:
            raise IntegrityError(f"blob {blob_id} in {self.url} is corrupt: its bytes hash to {actual}")
        return data

    def _read_local(self, blob_id: str, limit: int) -> bytes:
        path = self.path_of(blob_id)
        try:
            size = path.stat().st_size
            self._check_size(size, blob_id, limit)
            with path.open("rb") as fh:
                # Read one byte past the limit so a file that grew after stat() is still caught.
                return fh.read(limit + 1)
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id} not found in {self.url}") from None

    def _read_fs(self, blob_id: str, limit: int) -> bytes:
        key = self._key(blob_id)
        try:
            size = int(self._fs.size(key))
            self._check_size(size, blob_id, limit)
            if size == 0:
                return b""  # S3 answers a range request on an empty object with InvalidRange
            # Ask for one byte past the limit: a server that under-reported the size cannot make us read more.
            return bytes(self._fs.cat_file(key, start=0, end=limit + 1))
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id} not found in {self.url}") from None

    def has(self, blob_id: str) -> bool:
        """Whether a blob with this id is stored (existence only; :meth:`get` verifies content)."""
        check_blob_id(blob_id)
        if self._local_root is not None:
            path = self.path_of(blob_id)
            return self._run(f"query blob {blob_id} in", path.is_file)
        key = self._key(blob_id)
        return self._run(f"query blob {blob_id} in", lambda: bool(self._fs.exists(key)))

    __contains__ = has

    def delete(self, blob_id: str) -> bool:
        """Remove a blob; True if it was there, False if it already was not (deletion is idempotent)."""
        check_blob_id(blob_id)
        return self._run(f"delete blob {blob_id} from", lambda: self._delete(blob_id))

    def _delete(self, blob_id: str) -> bool:
        if self._local_root is not None:
            try:
                self.path_of(blob_id).unlink()
            except FileNotFoundError:
                return False
            return True
        key = self._key(blob_id)
        if not self._fs.exists(key):
            return False
        try:
            self._fs.rm_file(key)
        except FileNotFoundError:
            return False
        return True

    def ids(self) -> Iterator[str]:
        """Ids of all stored blobs, sorted (temp files and stray names are skipped)."""
        names = self._run("list blobs in", self._names)
        return iter(sorted(n for n in names if _ID_RE.fullmatch(n)))

    def _names(self) -> list[str]:
        try:
            if self._local_root is not None:
                return [p.name for p in self._local_root.glob("??/*") if p.is_file()]
            return [str(p).rsplit("/", 1)[-1] for p in self._fs.find(self._root) if not str(p).endswith(".tmp")]
        except FileNotFoundError:
            return []


def _refuse_credentials_in(url: str) -> None:
    """A store URL is published on chain: refuse one with ``user[:secret]@`` in it, without repeating it."""
    try:
        parts = urllib.parse.urlsplit(url)
        has_userinfo = parts.username is not None or parts.password is not None
    except ValueError:
        return  # not a URL urllib understands; fsspec will judge it
    if has_userinfo:
        host = parts.netloc.rsplit("@", 1)[-1]
        raise StoreError(
            f"the blob store URL {parts.scheme}://***@{host}{parts.path} carries credentials: a store URL is "
            "published on chain, so give credentials through the environment (AWS_ACCESS_KEY_ID, "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE...) or storage options instead"
        )
