"""Aggregation of CKKS-encrypted updates (the homomorphic-encryption option; needs the ``he`` extra).

Cheon, Kim, Kim, Song, "Homomorphic Encryption for Arithmetic of Approximate
Numbers", ASIACRYPT 2017 (CKKS), through TenSEAL (Benaissa et al., 2021) on
Microsoft SEAL. Each member encrypts ``n_k * delta_k`` (float) under the key
holder's public key, in chunks of ``N/2`` slots; the aggregator adds the
ciphertexts without any key; only the key holder decrypts, and only the sum.

Key arrangement (who can decrypt what):

- The **key holder** (a member or an auditor organization that takes no
  aggregator role) generates the CKKS keys and publishes only the public
  context (:attr:`CKKSKeyHolder.public_context`). It can decrypt any ciphertext
  under that key, so it must never receive individual members' ciphertexts:
  members send them to the aggregator (store access limited accordingly), and
  the key holder receives only the aggregated ciphertext.
- The **aggregator** holds no secret key: it sees ciphertexts only and computes
  their sum, which anyone can recompute bit for bit from the same ciphertexts
  (ciphertext addition is exact modular arithmetic).
- **Limits.** A single key holder colluding with the aggregator (or reading the
  store) sees every individual update; TenSEAL has no threshold decryption, so
  this option trusts one party where masking (:mod:`fedledger.privacy.secagg`)
  trusts a majority. CKKS decryption is approximate (about 2^-20 relative error
  at scale 2^40) and needs the secret key, so an auditor can verify the
  encrypted sum but not its decryption; the decrypted aggregate is what the key
  holder attests to. Dropouts need no recovery: the sum is over whoever sent.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import AggregationError, BadInput, ConfigError
from fedledger.store.safejson import loads_bounded

__all__ = ["CKKSKeyHolder", "CKKSParams", "EncryptedUpdate", "encrypt_update", "sum_encrypted"]

Layout = tuple[tuple[str, tuple[int, ...]], ...]
_FORMAT = "fedledger-ckks-update/1"


def _tenseal() -> Any:
    try:
        import tenseal
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError("the homomorphic-encryption option needs TenSEAL: pip install 'fedledger[he]'") from exc
    return tenseal


@dataclass(frozen=True)
class CKKSParams:
    """CKKS parameters. Additions only need one data prime between the two 60-bit primes.

    With scale ``2^scale_bits`` and a 60-bit first prime, plaintext sums must stay
    below about ``2^(60 - scale_bits - 1)`` in magnitude (2^19 at the defaults).
    """

    poly_modulus_degree: int = 8192
    coeff_mod_bit_sizes: tuple[int, ...] = (60, 40, 60)
    scale_bits: int = 40

    @property
    def slots(self) -> int:
        return self.poly_modulus_degree // 2


def _load_context(public_context: bytes | Any) -> Any:
    ts = _tenseal()
    if isinstance(public_context, bytes | bytearray):
        try:
            return ts.context_from(bytes(public_context))
        except Exception as exc:  # TenSEAL raises bare ValueError/RuntimeError on bad bytes
            raise BadInput(f"not a TenSEAL CKKS context: {exc}") from exc
    return public_context


@dataclass(frozen=True)
class EncryptedUpdate:
    """CKKS ciphertexts of ``num_examples * update`` (flattened in sorted-name order, chunked by slots)."""

    layout: Layout
    num_examples: int
    chunks: tuple[bytes, ...]

    def to_bytes(self) -> bytes:
        header = json.dumps(
            {
                "format": _FORMAT,
                "layout": [[n, list(s)] for n, s in self.layout],
                "num_examples": self.num_examples,
                "chunks": len(self.chunks),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        parts = [struct.pack("<I", len(header)), header]
        for chunk in self.chunks:
            parts += [struct.pack("<Q", len(chunk)), chunk]
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedUpdate:
        try:
            (hlen,) = struct.unpack_from("<I", data, 0)
            doc = loads_bounded(data[4 : 4 + hlen], what="encrypted update header")
            if doc.get("format") != _FORMAT:
                raise BadInput(f"not an encrypted update: format {doc.get('format')!r}")
            offset, chunks = 4 + hlen, []
            for _ in range(int(doc["chunks"])):
                (clen,) = struct.unpack_from("<Q", data, offset)
                if offset + 8 + clen > len(data):
                    raise BadInput("encrypted update is truncated")
                chunks.append(data[offset + 8 : offset + 8 + clen])
                offset += 8 + clen
            if offset != len(data):
                raise BadInput(f"encrypted update has {len(data) - offset} trailing bytes")
            layout = tuple((str(n), tuple(int(d) for d in s)) for n, s in doc["layout"])
            return cls(layout=layout, num_examples=int(doc["num_examples"]), chunks=tuple(chunks))
        except BadInput:
            raise
        except (struct.error, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadInput(f"malformed encrypted update: {exc}") from exc

    @property
    def size(self) -> int:
        return sum(math.prod(s) for _, s in self.layout)


class CKKSKeyHolder:
    """Creates the CKKS keys, publishes the public context, and decrypts aggregated ciphertexts only."""

    def __init__(self, params: CKKSParams | None = None) -> None:
        ts = _tenseal()
        self.params = params or CKKSParams()
        try:
            ctx = ts.context(
                ts.SCHEME_TYPE.CKKS,
                poly_modulus_degree=self.params.poly_modulus_degree,
                coeff_mod_bit_sizes=list(self.params.coeff_mod_bit_sizes),
            )
        except ValueError as exc:
            raise ConfigError(f"invalid CKKS parameters {self.params}: {exc}") from exc
        ctx.global_scale = 2.0**self.params.scale_bits
        self._context = ctx

    @property
    def public_context(self) -> bytes:
        """The context members and the aggregator use: public key only, no secret, relinearization or Galois keys."""
        return bytes(
            self._context.serialize(
                save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
            )
        )

    def decrypt_average(self, aggregate: EncryptedUpdate) -> dict[str, npt.NDArray[np.float64]]:
        """Decrypt an aggregated ciphertext and divide by its example total: the FedAvg delta (approximate)."""
        ts = _tenseal()
        values: list[float] = []
        for chunk in aggregate.chunks:
            try:
                vector = ts.ckks_vector_from(self._context, chunk)
            except Exception as exc:
                raise BadInput(f"aggregate chunk is not a CKKS vector under this key: {exc}") from exc
            values.extend(vector.decrypt())
        flat = np.asarray(values[: aggregate.size], dtype=np.float64) / float(aggregate.num_examples)
        if flat.size != aggregate.size:
            raise BadInput(f"aggregate decrypts to {flat.size} values, its layout needs {aggregate.size}")
        out, offset = {}, 0
        for name, shape in aggregate.layout:
            size = math.prod(shape)
            out[name] = flat[offset : offset + size].reshape(shape)
            offset += size
        return out


def encrypt_update(
    public_context: bytes | Any, update: Mapping[str, npt.ArrayLike], *, num_examples: int
) -> EncryptedUpdate:
    """Encrypt ``num_examples * update`` (float tensors) under the key holder's public context."""
    if isinstance(num_examples, bool) or not isinstance(num_examples, int) or num_examples <= 0:
        raise BadInput(f"num_examples must be a positive integer, got {num_examples!r}")
    ts = _tenseal()
    ctx = _load_context(public_context)
    layout: Layout = tuple((name, tuple(np.shape(update[name]))) for name in sorted(update))
    flat = np.concatenate([np.asarray(update[n], dtype=np.float64).ravel() for n, _ in layout]) * float(num_examples)
    if not np.all(np.isfinite(flat)):
        raise BadInput("cannot encrypt an update containing NaN or Inf")
    # TenSEAL exposes the ring degree only through its SEAL binding; a CKKS vector holds N/2 slots.
    slots = int(ctx.data.seal_context().first_context_data().parms().poly_modulus_degree()) // 2
    chunks = tuple(
        bytes(ts.ckks_vector(ctx, flat[i : i + slots].tolist()).serialize()) for i in range(0, flat.size, slots)
    )
    return EncryptedUpdate(layout=layout, num_examples=num_examples, chunks=chunks)


def sum_encrypted(
    public_context: bytes | Any, updates: Sequence[EncryptedUpdate] | Iterable[EncryptedUpdate]
) -> EncryptedUpdate:
    """Homomorphic sum of encrypted updates (no secret key needed); its ``num_examples`` is the total."""
    ts = _tenseal()
    ctx = _load_context(public_context)
    items = list(updates)
    if not items:
        raise AggregationError("no encrypted updates to aggregate")
    layout = items[0].layout
    for k, item in enumerate(items):
        if item.layout != layout or len(item.chunks) != len(items[0].chunks):
            raise AggregationError(f"encrypted update {k} has layout {item.layout}, expected {layout}")
    sums = []
    for c in range(len(items[0].chunks)):
        try:
            acc = ts.ckks_vector_from(ctx, items[0].chunks[c])
            for item in items[1:]:
                acc.add_(ts.ckks_vector_from(ctx, item.chunks[c]))
        except (ValueError, RuntimeError, TypeError) as exc:
            raise AggregationError(f"cannot add encrypted chunk {c}: {exc}") from exc
        sums.append(bytes(acc.serialize()))
    return EncryptedUpdate(layout=layout, num_examples=sum(i.num_examples for i in items), chunks=tuple(sums))
