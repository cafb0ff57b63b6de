"""Content-addressed blob storage (sha256 ids, verified reads) and tensor serialization.

:mod:`fedledger.store.devserver` starts a local S3-compatible server (SeaweedFS) for tests.
"""

from fedledger.store._blobstore import (
    DEFAULT_ATTEMPTS,
    DEFAULT_BACKOFF_S,
    DEFAULT_MAX_BLOB_BYTES,
    BlobStore,
    BlobTooLarge,
    blob_id_of,
    check_blob_id,
)
from fedledger.store.tensors import SAFETENSORS_DTYPES, decode_tensors, encode_tensors, read_metadata

__all__ = [
    "DEFAULT_ATTEMPTS",
    "DEFAULT_BACKOFF_S",
    "DEFAULT_MAX_BLOB_BYTES",
    "SAFETENSORS_DTYPES",
    "BlobStore",
    "BlobTooLarge",
    "blob_id_of",
    "check_blob_id",
    "decode_tensors",
    "encode_tensors",
    "read_metadata",
]
