"""CKKS aggregation: the key holder decrypts the example-weighted average of encrypted updates, and only the sum."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tenseal")

from fedledger.exceptions import AggregationError, BadInput  # noqa: E402
from fedledger.privacy.he import CKKSKeyHolder, EncryptedUpdate, encrypt_update, sum_encrypted  # noqa: E402


@pytest.fixture(scope="module")
def holder() -> CKKSKeyHolder:
    return CKKSKeyHolder()


def test_encrypted_sum_decrypts_to_fedavg(holder: CKKSKeyHolder) -> None:
    rng = np.random.default_rng(0)
    # 5000 values: two CKKS chunks of 4096 slots, the second one partial.
    updates = [{"w": rng.normal(size=(50, 90)).astype(np.float32), "b": rng.normal(size=500)} for _ in range(4)]
    counts = [3, 10, 1, 250]
    public = holder.public_context
    encrypted = [
        EncryptedUpdate.from_bytes(encrypt_update(public, u, num_examples=n).to_bytes())
        for u, n in zip(updates, counts, strict=True)
    ]
    assert all(len(e.chunks) == 2 for e in encrypted)
    total = sum_encrypted(public, encrypted)
    assert total.num_examples == sum(counts)
    average = holder.decrypt_average(EncryptedUpdate.from_bytes(total.to_bytes()))
    for name in ("w", "b"):
        want = sum(n * u[name].astype(np.float64) for u, n in zip(updates, counts, strict=True)) / sum(counts)
        assert average[name].shape == want.shape
        np.testing.assert_allclose(average[name], want, atol=1e-5)
    # The encrypted sum is exact ring arithmetic: anyone recomputes the same ciphertext bytes.
    assert sum_encrypted(public, encrypted).to_bytes() == total.to_bytes()


def test_public_context_cannot_decrypt(holder: CKKSKeyHolder) -> None:
    import tenseal as ts

    public = ts.context_from(holder.public_context)
    assert not public.is_private()
    enc = encrypt_update(holder.public_context, {"w": np.ones(3)}, num_examples=1)
    with pytest.raises(ValueError, match="secret_key"):
        ts.ckks_vector_from(public, enc.chunks[0]).decrypt()


def test_bad_inputs(holder: CKKSKeyHolder) -> None:
    with pytest.raises(BadInput, match="NaN or Inf"):
        encrypt_update(holder.public_context, {"w": np.array([np.nan])}, num_examples=1)
    with pytest.raises(BadInput, match="num_examples"):
        encrypt_update(holder.public_context, {"w": np.ones(2)}, num_examples=0)
    with pytest.raises(BadInput, match="not an encrypted update|malformed encrypted update"):
        EncryptedUpdate.from_bytes(b"\x05\x00\x00\x00hello")
    a = encrypt_update(holder.public_context, {"w": np.ones(2)}, num_examples=1)
    b = encrypt_update(holder.public_context, {"v": np.ones(2)}, num_examples=1)
    with pytest.raises(AggregationError, match="layout"):
        sum_encrypted(holder.public_context, [a, b])
    with pytest.raises(AggregationError, match="no encrypted updates"):
        sum_encrypted(holder.public_context, [])
