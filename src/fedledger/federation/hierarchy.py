"""Hierarchical federation: a gateway member aggregates its own devices' updates by secure aggregation.

An edge gateway is a consortium member like any other and commits one update per round. Behind it sit many small
devices (sensors, home routers) that each train on their own few records. They never join the chain: each round
the gateway runs one secure-aggregation round among its devices (:mod:`fedledger.privacy.secagg`, Bonawitz et al.
CCS 2017 over the SecAgg+ neighbour graph of Bell et al. CCS 2020), with the gateway as the aggregator. It learns
only the example-weighted sum of its devices' fixed-point updates, divides it by the devices' total examples (the
same floor division as FedAvg) and commits that mean, weighted by the total, as its own update.

What makes the device step auditable is the :class:`GatewayManifest`, a blob in the store:

- the device round's public config (devices, threshold, neighbour graph), bound to task, gateway and round;
- every device's key advert, and every surviving device's masked input by its blob hash (each masked input is a
  blob of its own: the device's commitment);
- the unmask request (survivors and dropouts) and every survivor's share reveal: what the protocol reveals;
- the hash of the unmasked weighted sum and the total examples it covers.

The gateway's update blob names the manifest's hash in its metadata (:data:`MANIFEST_KEY`), and the update blob's
hash is what the gateway commits on chain, so the manifest is bound to the commitment with no change to the task
contract. An auditor (:mod:`fedledger.audit.hierarchy`) recomputes the sum from the masked inputs and the revealed
shares alone (``secagg.recompute_aggregate``) and checks the committed update against it bit for bit.

Devices here are simulated inside the gateway's process; each keeps its identity key, its own slice of the
gateway's rows, and its round secrets in its own :class:`~fedledger.privacy.secagg.SecAggMember`.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput, ConfigError
from fedledger.privacy.secagg import (
    AggregateResult,
    KeyAdvert,
    MaskedInput,
    MemberIdentity,
    RoundConfig,
    SecAggAggregator,
    SecAggMember,
    ShareReveal,
    UnmaskRequest,
    threshold_for,
)
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_bounded
from fedledger.store.tensors import encode_tensors

__all__ = [
    "AGGREGATE_FORMAT",
    "MANIFEST_FORMAT",
    "MANIFEST_KEY",
    "DeviceFleet",
    "DeviceRound",
    "DeviceSettings",
    "GatewayManifest",
    "aggregate_blob",
    "device_round_config",
    "device_seed",
    "masked_inputs",
    "run_device_round",
]

MANIFEST_KEY = "gateway_manifest"
"""The update blob's metadata key naming the hash of the gateway's manifest for that update."""
MANIFEST_FORMAT = "fedledger-gateway-manifest/1"
AGGREGATE_FORMAT = "fedledger-gateway-aggregate/1"

U64Tensors = dict[str, npt.NDArray[np.uint64]]


@dataclass(frozen=True)
class DeviceSettings:
    """How a gateway's devices take part: how many, the secure-aggregation graph, and how each trains.

    ``neighbours``: the SecAgg+ degree (each device masks with and shares secrets with this many others; ``None``
    for the complete graph). Bell et al. take it of order log n; its cost per device grows with it, its privacy
    against colluding devices too. ``dropout_tolerance``: the fraction of a device's group that may drop out of a
    round with the sum still recovered (it sets the Shamir threshold). ``epochs`` and ``batch_size``: a device's
    local training, the task's model and optimizer on its own rows (``batch_size`` None: the task's). ``dropout``:
    the fraction of devices simulated to go offline in each round after sharing their keys, before sending their
    masked input (the case the protocol recovers from).
    """

    devices: int
    neighbours: int | None = 8
    dropout_tolerance: float = 0.3
    epochs: int = 5
    batch_size: int | None = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.devices < 2:
            raise ConfigError(f"a gateway needs at least 2 devices for secure aggregation, got {self.devices}")
        if self.epochs < 1:
            raise ConfigError(f"device epochs must be at least 1, got {self.epochs}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"device batch size must be positive, got {self.batch_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"device dropout must be in [0, 1), got {self.dropout}")


class DeviceFleet:
    """A gateway's devices: ids, identity keys (their public halves are the gateway's device registry) and each
    device's own slice of the gateway's training rows (a seeded shuffle, dealt out evenly)."""

    def __init__(self, X: npt.NDArray[Any], y: npt.NDArray[Any], settings: DeviceSettings, *, seed: int) -> None:
        if len(y) < settings.devices:
            raise ConfigError(f"{len(y)} training rows cannot give each of {settings.devices} devices one")
        self.settings = settings
        order = np.random.default_rng(seed).permutation(len(y))
        width = len(str(settings.devices - 1))
        self.ids = tuple(f"device-{i:0{width}d}" for i in range(settings.devices))
        self.rows = {d: rows for d, rows in zip(self.ids, np.array_split(order, settings.devices), strict=True)}
        self._X, self._y = X, y
        self.identities = {d: MemberIdentity.generate(d) for d in self.ids}
        self.registry = {d: identity.public_bytes for d, identity in self.identities.items()}

    def data(self, device: str) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
        rows = self.rows[device]
        return self._X[rows], self._y[rows]

    def offline(self, round_seed: int) -> frozenset[str]:
        """The devices simulated to drop out of a round (after sharing keys), seeded by the round."""
        count = math.floor(self.settings.dropout * len(self.ids))
        if count == 0:
            return frozenset()
        picked = np.random.default_rng(round_seed).choice(len(self.ids), size=count, replace=False)
        return frozenset(self.ids[int(i)] for i in picked)


def device_round_config(
    task: str, gateway: str, round_id: int, devices: Collection[str], settings: DeviceSettings, graph_seed: bytes
) -> RoundConfig:
    """The device round's public config: bound to (task, gateway, round) through its ``task`` field, so its
    messages are useless in any other gateway's or round's aggregate."""
    n = len(devices)
    k = settings.neighbours
    group = n if k is None or k >= n - 1 else k + 1
    return RoundConfig(
        task=f"{task.lower()}/{gateway.lower()}",
        round_id=round_id,
        members=tuple(devices),
        threshold=threshold_for(group, settings.dropout_tolerance),
        neighbours=k,
        graph_seed=graph_seed,
    )


def aggregate_blob(result: AggregateResult) -> bytes:
    """The unmasked weighted sum as a blob (deterministic bytes): the manifest names its hash."""
    meta = {
        "format": AGGREGATE_FORMAT,
        "total_examples": str(result.total_examples),
        "frac_bits": str(result.frac_bits),
    }
    return encode_tensors(result.weighted_sum, meta)


@dataclass(frozen=True)
class GatewayManifest:
    """The record of one gateway's device round (see the module docstring); canonical JSON bytes."""

    task: str
    round_id: int
    gateway: str
    config: RoundConfig
    adverts: tuple[KeyAdvert, ...]
    inputs: tuple[tuple[str, str, int], ...]
    """(device, masked-input blob hash, examples) for every surviving device, sorted by device."""
    request: UnmaskRequest
    reveals: tuple[ShareReveal, ...]
    aggregate: str
    """sha256 of :func:`aggregate_blob` of the unmasked sum."""
    total_examples: int

    def to_bytes(self) -> bytes:
        doc = {
            "format": MANIFEST_FORMAT,
            "task": self.task,
            "round_id": self.round_id,
            "gateway": self.gateway,
            "config": self.config.to_bytes().decode(),
            "adverts": [a.to_bytes().decode() for a in self.adverts],
            "inputs": [list(i) for i in self.inputs],
            "request": self.request.to_bytes().decode(),
            "reveals": [r.to_bytes().decode() for r in self.reveals],
            "aggregate": self.aggregate,
            "total_examples": self.total_examples,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> GatewayManifest:
        """Parse and check every field; :class:`BadInput` names what is wrong."""
        doc = loads_bounded(data, what="gateway manifest")
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise BadInput(f"not a gateway manifest (expected format {MANIFEST_FORMAT!r})")
        try:
            inputs = tuple((str(d), str(h), int(n)) for d, h, n in doc["inputs"])
            manifest = cls(
                task=str(doc["task"]),
                round_id=int(doc["round_id"]),
                gateway=str(doc["gateway"]),
                config=RoundConfig.from_bytes(str(doc["config"]).encode()),
                adverts=tuple(KeyAdvert.from_bytes(str(a).encode()) for a in doc["adverts"]),
                inputs=inputs,
                request=UnmaskRequest.from_bytes(str(doc["request"]).encode()),
                reveals=tuple(ShareReveal.from_bytes(str(r).encode()) for r in doc["reveals"]),
                aggregate=str(doc["aggregate"]),
                total_examples=int(doc["total_examples"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"malformed gateway manifest: {type(exc).__name__}: {exc}") from exc
        return manifest


@dataclass(frozen=True)
class DeviceRound:
    """A finished device round: the unmasked sum, and the stored manifest (and its hash) that records it."""

    result: AggregateResult
    manifest: GatewayManifest
    manifest_hash: str

    def mean(self) -> U64Tensors:
        """The gateway's update: the devices' example-weighted mean in fixed point (FedAvg's floor division)."""
        return self.result.average()


def run_device_round(
    fleet: DeviceFleet,
    config: RoundConfig,
    store: BlobStore,
    local_update: Callable[[str], tuple[Mapping[str, npt.NDArray[Any]], int]],
    *,
    frac_bits: int,
    gateway: str,
    task: str,
    offline: Collection[str] = (),
) -> DeviceRound:
    """One secure-aggregation round among ``fleet``'s devices with the gateway as the aggregator.

    ``local_update(device)`` trains one device and returns its fixed-point update and example count. Devices in
    ``offline`` advertise and share their keys, then drop out before masking: the survivors' reveals remove their
    dangling masks. Each masked input is stored as its own blob; the manifest is stored last. Raises
    :class:`~fedledger.exceptions.NotEnoughShares` (naming the devices) when too many of a group dropped.
    """
    members = {d: SecAggMember(fleet.identities[d], config, fleet.registry) for d in config.members}
    aggregator = SecAggAggregator(config)
    for d in config.members:
        aggregator.add_advert(members[d].advertise())
    adverts = {a.member: a for a in aggregator.adverts}
    for d in config.members:
        aggregator.add_bundle(members[d].share_keys(adverts[p] for p in config.neighbours_of(d)))
    bundles = {b.sender: b for b in aggregator.bundles}
    inputs: list[tuple[str, str, int]] = []
    for d in config.members:
        if d in offline:
            continue
        update, examples = local_update(d)
        peers = [bundles[p] for p in config.neighbours_of(d) if p in bundles]
        masked = members[d].mask(peers, update, num_examples=examples, frac_bits=frac_bits)
        inputs.append((d, store.put(masked.to_bytes()), examples))
        aggregator.add_masked_input(masked)
    request = aggregator.unmask_request()
    reveals = []
    for d in request.survivors:
        reveal = members[d].reveal(request)
        aggregator.add_reveal(reveal)
        reveals.append(reveal)
    result = aggregator.finish()
    manifest = GatewayManifest(
        task=task,
        round_id=config.round_id,
        gateway=gateway,
        config=config,
        adverts=aggregator.adverts,
        inputs=tuple(sorted(inputs)),
        request=request,
        reveals=tuple(reveals),
        aggregate=store.put(aggregate_blob(result)),
        total_examples=result.total_examples,
    )
    return DeviceRound(result, manifest, store.put(manifest.to_bytes()))


def device_seed(task_seed: int, gateway: str, round_id: int, device: str) -> int:
    """Per gateway, round and device, reproducible: a device's training can be replayed."""
    digest = hashlib.sha256(f"{task_seed}:{gateway}:{round_id}:{device}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def masked_inputs(store: BlobStore, manifest: GatewayManifest) -> list[MaskedInput]:
    """The surviving devices' masked inputs, read from the store by the hashes the manifest names (each read is
    verified against its hash); :class:`BadInput` when one is not the device's or declares other examples."""
    out = []
    for device, blob_hash, examples in manifest.inputs:
        masked = MaskedInput.from_bytes(store.get(blob_hash))
        if masked.member != device or masked.num_examples != examples:
            raise BadInput(
                f"masked input {blob_hash} is {masked.member!r}'s with {masked.num_examples} examples, the manifest "
                f"names {device!r} with {examples}"
            )
        out.append(masked)
    return out
