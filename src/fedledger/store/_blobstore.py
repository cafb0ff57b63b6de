"""Content-addressed blob store: a blob's id is the sha256 hex of its bytes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec

from fedledger.exceptions import BlobNotFound, IntegrityError, StoreError

__all__ = ["DEFAULT_MAX_BLOB_BYTES", "BlobStore", "blob_id_of", "check_blob_id"]

DEFAULT_MAX_BLOB_BYTES = 64 * 1024 * 1024

_ID_RE = re.compile(r"[0-9a-f]{64}")
# Object stores replace an object in one PUT, so a partial blob is never visible there.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})


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
    ``storage_options`` go to the fsspec filesystem (credentials, endpoints).
    """

    def __init__(
        self,
        url_or_path: str | os.PathLike[str],
        *,
        max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
        **storage_options: Any,
    ) -> None:
        if max_blob_bytes <= 0:
            raise StoreError(f"max_blob_bytes must be positive, got {max_blob_bytes}")
        self.max_blob_bytes = max_blob_bytes
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
        self.url = target
        try:
            fs, root = fsspec.core.url_to_fs(target, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open blob store {target!r}: {exc}") from exc
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

    def _check_size(self, size: int, blob_id: str | None) -> None:
        if size > self.max_blob_bytes:
            what = f"blob {blob_id}" if blob_id else "blob"
            raise StoreError(f"{what} is {size} bytes, over the store limit of {self.max_blob_bytes} bytes")

    def put(self, data: bytes) -> str:
        """Store ``data`` and return its sha256 hex id; storing the same bytes twice is a no-op."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StoreError(f"put expects bytes, got {type(data).__name__}")
        data = bytes(data)
        self._check_size(len(data), None)
        blob_id = blob_id_of(data)
        try:
            if self._local_root is not None:
                self._put_local(blob_id, data)
            else:
                self._put_fs(blob_id, data)
        except OSError as exc:
            raise StoreError(f"cannot write blob {blob_id} to {self.url}: {exc}") from exc
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

    def get(self, blob_id: str) -> bytes:
        """The blob's bytes, verified against its id (:class:`IntegrityError` if they differ)."""
        check_blob_id(blob_id)
        try:
            if self._local_root is not None:
                path = self.path_of(blob_id)
                try:
                    size = path.stat().st_size
                except FileNotFoundError:
                    raise BlobNotFound(f"blob {blob_id} not found in {self.url}") from None
                self._check_size(size, blob_id)
                with path.open("rb") as fh:
                    # Read one byte past the limit so a file that grew after stat() is still caught.
                    data = fh.read(self.max_blob_bytes + 1)
            else:
                key = self._key(blob_id)
                try:
                    size = self._fs.size(key)
                except FileNotFoundError:
                    raise BlobNotFound(f"blob {blob_id} not found in {self.url}") from None
                self._check_size(int(size), blob_id)
                data = self._fs.cat_file(key)
        except FileNotFoundError:
            raise BlobNotFound(f"blob {blob_id} not found in {self.url}") from None
        except OSError as exc:
            raise StoreError(f"cannot read blob {blob_id} from {self.url}: {exc}") from exc
        self._check_size(len(data), blob_id)
        actual = blob_id_of(data)
        if actual != blob_id:
            raise IntegrityError(f"blob {blob_id} in {self.url} is corrupt: its bytes hash to {actual}")
        return data

    def has(self, blob_id: str) -> bool:
        """Whether a blob with this id is stored (existence only; :meth:`get` verifies content)."""
        check_blob_id(blob_id)
        try:
            if self._local_root is not None:
                return self.path_of(blob_id).is_file()
            return bool(self._fs.exists(self._key(blob_id)))
        except OSError as exc:
            raise StoreError(f"cannot query blob {blob_id} in {self.url}: {exc}") from exc

    __contains__ = has

    def delete(self, blob_id: str) -> bool:
        """Remove a blob; True if it was there, False if it already was not (deletion is idempotent)."""
        check_blob_id(blob_id)
        try:
            if self._local_root is not None:
                path = self.path_of(blob_id)
                try:
                    path.unlink()
                except FileNotFoundError:
                    return False
                return True
            key = self._key(blob_id)
            if not self._fs.exists(key):
                return False
            self._fs.rm_file(key)
            return True
        except OSError as exc:
            raise StoreError(f"cannot delete blob {blob_id} from {self.url}: {exc}") from exc

    def ids(self) -> Iterator[str]:
        """Ids of all stored blobs, sorted (temp files and stray names are skipped)."""
        try:
            if self._local_root is not None:
                names = [p.name for p in self._local_root.glob("??/*") if p.is_file()]
            else:
                names = [str(p).rsplit("/", 1)[-1] for p in self._fs.find(self._root) if not str(p).endswith(".tmp")]
        except FileNotFoundError:
            return iter(())
        except OSError as exc:
            raise StoreError(f"cannot list blobs in {self.url}: {exc}") from exc
        return iter(sorted(n for n in names if _ID_RE.fullmatch(n)))
