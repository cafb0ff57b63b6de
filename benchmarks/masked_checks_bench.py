"""The secure round with masked validity checks (:mod:`fedledger.privacy.masked_checks`), for
``secure_aggregation.py --masked-checks``.

Each member Shamir-shares its fixed-point update with seed-compressed shares (committee member 0 gets
a 32-byte AES-CTR seed, the other two share vectors interpolated with MPyC's ``thresha`` coefficients;
:mod:`fedledger.privacy.masked_shares`) and encrypts them to a committee of three (AES-GCM); the
committee runs as three local OS processes (MPyC ``-M 3 -I i``) that check every update on ``k``
random projections (L2 norm, which also catches wrap-around, and cosine with a public reference) and
reveal the pass bits and the weighted sum of the passing updates. Times are CPU seconds (``process_time``):
member = sharing its update; committee = one committee member's whole share
(opening its ciphertexts, the projections and the MPC), the largest of the three. Bytes: what a member
uploads (its share bundle) and what one committee member sends to the others.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

NORM_SLACK = 3.0  # the bound is 3x the expected norm of an N(0, 0.01) update, so honest updates pass
COSINE_FRACTION = 0.5  # each update's cosine with the sum of n independent ones is about 1/sqrt(n): ask half that


def masked_round(
    members: list[str], updates: dict[str, np.ndarray], counts: dict[str, int], params_count: int
) -> dict[str, Any]:
    """Run one masked-check round over ``updates``; return its costs and the error of its mean."""
    from fedledger.privacy.masked_checks import CheckParams, share_update, to_fixed
    from fedledger.privacy.masked_party import launch_committee, write_job

    params = CheckParams(
        length=params_count,
        norm_bound=NORM_SLACK * 0.01 * float(np.sqrt(params_count)),
        min_cosine=COSINE_FRACTION / float(np.sqrt(len(members))),
    )
    keys = [X25519PrivateKey.generate() for _ in range(params.committee)]
    publics = [k.public_key().public_bytes_raw() for k in keys]
    context = os.urandom(32)
    reference = sum(updates[m].astype(np.float64) for m in members)
    bundles, member_cpu = {}, []
    for m in members:
        start = time.process_time()
        bundles[m] = share_update(
            updates[m], params, member=m, examples=counts[m], context=context, committee_keys=publics
        )
        member_cpu.append(time.process_time() - start)
    with tempfile.TemporaryDirectory(prefix="masked-bench-") as tmp:
        job = write_job(
            Path(tmp), params, context=context, bundles=bundles, reference=reference, keys=keys, timeout=3600.0
        )
        wall = time.perf_counter()
        results = launch_committee(job, wait=3600.0)
        wall = time.perf_counter() - wall
    if any(r.get("status") != "ok" for r in results):
        raise SystemExit(f"masked-check committee failed: {results}")
    outcome = results[0]["outcome"]
    passed = outcome["passed"]
    exact = sum(counts[m] * to_fixed(updates[m], params) for m in passed)
    if not np.array_equal(np.array(outcome["weighted_sum"], dtype=np.int64), exact):
        raise SystemExit("masked-check aggregate differs from the plaintext weighted sum of the passing updates")
    total = sum(counts[m] for m in passed)
    mean = np.array(outcome["weighted_sum"], dtype=np.float64) / total / 2**params.frac_bits
    want = sum(counts[m] * updates[m].astype(np.float64) for m in passed) / total
    return {
        "member_s": float(np.mean(member_cpu)),
        "committee_s": max(float(r["outcome"]["cpu_s"]) for r in results),
        "member_bytes": int(np.mean([len(b) for b in bundles.values()])),
        "committee_bytes": max(int(r["outcome"]["bytes_sent"]) for r in results),
        "passed": len(passed),
        "wall_s": wall,
        "max_abs_error": float(np.max(np.abs(mean - want))),
        "projections": params.projections,
        "field_bits": params.modulus.bit_length(),
        "wire_bytes": params.wire_bytes,
    }
