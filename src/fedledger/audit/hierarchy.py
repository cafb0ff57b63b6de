"""The audit of a gateway's device round: its committed update against its devices' commitments.

A gateway's update blob names its manifest (:data:`fedledger.federation.hierarchy.MANIFEST_KEY`); the update blob's
hash is the gateway's on-chain commitment, so the manifest is the one the gateway committed to. From the manifest
and the store alone, this re-derives what the gateway must have committed and names the first thing that differs:

- the manifest is for this task, this round and this gateway, and so is its device round's config (the context
  every device message is bound to);
- every surviving device's masked input is in the store under the hash the manifest names (read verified), from
  that device, with the examples the manifest says;
- the sum of those masked inputs, unmasked with the survivors' revealed shares, is recomputed
  (``secagg.recompute_aggregate``): each reconstructed seed must match what its device committed to in its advert,
  so a forged share cannot steer the result;
- that sum's blob hash is the manifest's ``aggregate``, its total examples the manifest's and the commitment's;
- the committed update is that sum's example-weighted mean, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.events import UpdateCommitted
from fedledger.exceptions import AggregationError, BadInput, StoreError, VerificationFailed
from fedledger.federation.hierarchy import MANIFEST_KEY, GatewayManifest, aggregate_blob, masked_inputs
from fedledger.privacy.secagg import recompute_aggregate
from fedledger.store import BlobStore, blob_id_of

__all__ = ["check_gateway_update"]

Fail = Callable[..., None]


def check_gateway_update(
    store: BlobStore,
    task: str,
    e: UpdateCommitted,
    tensors: Mapping[str, npt.NDArray[Any]],
    meta: Mapping[str, str],
    fail: Fail,
) -> bool:
    """Check a committed update that names a gateway manifest; False (and nothing checked) when it names none.
    Every mismatch is reported through ``fail(message, round_id=, member=, h=)``."""
    manifest_hash = meta.get(MANIFEST_KEY)
    if manifest_hash is None:
        return False
    where: dict[str, Any] = {"round_id": e.round_id, "member": e.member}
    try:
        manifest = GatewayManifest.from_bytes(store.get(manifest_hash.removeprefix("0x")))
    except (StoreError, BadInput) as exc:
        fail(f"gateway manifest unavailable or malformed: {exc}", h=manifest_hash, **where)
        return True
    problem = _mismatch(store, task, e, tensors, meta, manifest)
    if problem is not None:
        fail(f"gateway aggregate does not match its manifest: {problem}", h=manifest_hash, **where)
    return True


def _mismatch(
    store: BlobStore,
    task: str,
    e: UpdateCommitted,
    tensors: Mapping[str, npt.NDArray[Any]],
    meta: Mapping[str, str],
    manifest: GatewayManifest,
) -> str | None:
    """The first way the committed update differs from what the manifest derives, or None."""
    bound = (manifest.task.lower(), manifest.round_id, manifest.gateway.lower())
    if bound != (task.lower(), e.round_id, e.member.lower()):
        return f"the manifest is for task {manifest.task}, round {manifest.round_id}, gateway {manifest.gateway}"
    config = manifest.config
    if config.task != f"{task.lower()}/{e.member.lower()}" or config.round_id != e.round_id:
        return f"its device round is bound to {config.task!r} round {config.round_id}, not this gateway's round"
    try:
        inputs = masked_inputs(store, manifest)
        result = recompute_aggregate(config, manifest.adverts, inputs, manifest.request, manifest.reveals)
    except (StoreError, BadInput, AggregationError, VerificationFailed) as exc:
        return f"the devices' sum cannot be recomputed from their committed messages: {exc}"
    if blob_id_of(aggregate_blob(result)) != manifest.aggregate:
        return "the unmasked sum of the devices' masked inputs is not the aggregate the manifest names"
    declared = meta.get("num_examples")
    if not result.total_examples == manifest.total_examples == e.num_examples or declared != str(e.num_examples):
        return (
            f"the devices trained on {result.total_examples} examples, the manifest says {manifest.total_examples}, "
            f"the commitment {e.num_examples}"
        )
    mean = result.average()
    if sorted(tensors) != sorted(mean):
        return f"the update has tensors {sorted(tensors)}, the devices' sum {sorted(mean)}"
    for name in sorted(mean):
        if not np.array_equal(np.asarray(tensors[name]), mean[name]):
            return f"tensor {name!r} of the committed update is not the devices' example-weighted mean"
    return None
