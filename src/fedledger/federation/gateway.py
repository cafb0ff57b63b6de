"""An edge gateway's node: a consortium member whose update is the secure aggregate of its own devices' updates.

:class:`GatewayNode` is a :class:`~fedledger.federation.node.MemberNode` in every duty but one: where a member
trains on its rows, the gateway deals its training rows out to its devices, runs one secure-aggregation round
among them (:func:`fedledger.federation.hierarchy.run_device_round`) and commits the devices' example-weighted
mean, weighted by their total examples, with its manifest's hash in the update blob's metadata. It validates,
aggregates and evaluates on its own validation rows as any member does. In a task with secure aggregation the
secure mode masks this same update once more among the gateways; the manifest is then stored but not named in the
committed (masked) blob, so the audit cannot tie it to the commitment (docs/iot-hierarchy.md).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.task import RoundInfo
from fedledger.exceptions import ConfigError, NotEnoughShares, RegisteredRowsExceeded, TrainingRefused
from fedledger.federation.hierarchy import (
    MANIFEST_KEY,
    DeviceFleet,
    DeviceRound,
    DeviceSettings,
    device_round_config,
    device_seed,
    run_device_round,
)
from fedledger.federation.node import MemberNode
from fedledger.learning import build_model
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import ClipTransform, FixedPointEncode, Tensors, UpdatePipeline

__all__ = ["GATEWAY_TRANSFORMS", "GatewayNode"]

log = logging.getLogger("fedledger.node")

GATEWAY_TRANSFORMS = "clip,fixed64,gateway-mean"
"""The update blob's ``transforms``: each device clipped and encoded its delta, the gateway took their mean."""


class GatewayNode(MemberNode):
    """A member node whose update comes from its devices (``devices``: how many, and how they take part)."""

    def __init__(self, *, devices: DeviceSettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.device_settings = devices
        self._fleet: DeviceFleet | None = None

    @property
    def fleet(self) -> DeviceFleet:
        """This gateway's devices, each with its slice of the training rows (dealt once, seeded by the task)."""
        if self._fleet is None:
            data = self._own_data()
            digest = hashlib.sha256(f"{self.config.seed}:{self.address}:devices".encode()).digest()
            seed = int.from_bytes(digest[:4], "big")
            self._fleet = DeviceFleet(data.X_train, data.y_train, self.device_settings, seed=seed)
        return self._fleet

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]:
        """The devices' secure aggregate for this round, as this gateway's update (see the module docstring)."""
        config, r = self.config, info.round_id
        if config.privacy is not None:
            raise ConfigError(
                "a gateway with devices cannot yet run the task's differential privacy: each device would need its "
                "own accounting"
            )
        self.require_purpose()
        fleet = self.fleet
        rows = self.own_registered_rows()
        trained = sum(len(r_) for r_ in fleet.rows.values())
        if rows is not None and trained > rows:
            raise RegisteredRowsExceeded(
                f"{self.name}'s devices would train on {trained} examples, its dataset {self.dataset_id} registered "
                f"{rows} rows"
            )
        global_params, _ = self.global_model(info.global_model)
        started = time.perf_counter()
        offline = fleet.offline(device_seed(config.seed, self.address, r, "offline"))
        train = self._device_trainer(global_params, r)
        graph_seed = bytes.fromhex(info.global_model.removeprefix("0x"))
        try:
            done = self._device_round(r, fleet.ids, train, graph_seed, offline)
        except NotEnoughShares as exc:
            # Too many of one group dropped to unmask: once more with the devices still online, a new context.
            log.warning("%s: device round %d cannot be unmasked (%s); again without the dropouts", self.name, r, exc)
            online = tuple(d for d in fleet.ids if d not in offline)
            try:
                done = self._device_round(r, online, train, graph_seed, frozenset())
            except NotEnoughShares as again:
                raise TrainingRefused(f"too many of {self.name}'s devices dropped out of round {r}: {again}") from again
        limit = config.max_examples if rows is None else min(config.max_examples, rows)
        declared = self.behavior.claimed_examples(done.result.total_examples, max_examples=limit)
        meta = {
            "clip_norm": repr(float(config.clip_norm)),
            "frac_bits": str(config.frac_bits),
            "num_examples": str(declared),
            "transforms": GATEWAY_TRANSFORMS,
            MANIFEST_KEY: done.manifest_hash,
        }
        self.emit(
            "devices",
            r,
            survivors=len(done.result.survivors),
            dropouts=list(done.result.dropouts),
            examples=done.result.total_examples,
            manifest="0x" + done.manifest_hash,
            device_seconds=round(time.perf_counter() - started, 3),
        )
        return dict(done.mean()), meta, declared, None

    def _device_round(
        self,
        round_id: int,
        devices: tuple[str, ...],
        train: Callable[[str], tuple[Tensors, int]],
        graph_seed: bytes,
        offline: frozenset[str],
    ) -> DeviceRound:
        device_config = device_round_config(
            self.task.address, self.address, round_id, devices, self.device_settings, graph_seed
        )
        return run_device_round(
            self.fleet,
            device_config,
            self.store,
            train,
            frac_bits=self.config.frac_bits,
            gateway=self.address,
            task=self.task.address,
            offline=offline,
        )

    def _device_trainer(
        self, global_params: Mapping[str, npt.NDArray[Any]], round_id: int
    ) -> Callable[[str], tuple[Tensors, int]]:
        """How one device trains in ``round_id``: the task's model and optimizer from the global params, on its own
        rows, for the gateway's device epochs, then the task's clip and fixed-point encoding."""
        config, settings, fleet = self.config, self.device_settings, self.fleet
        spec = dict(config.model)
        if settings.batch_size is not None and "batch_size" in spec:
            spec["batch_size"] = settings.batch_size
        model = build_model(spec)
        pipeline = UpdatePipeline([ClipTransform(config.clip_norm), FixedPointEncode(FixedPoint(config.frac_bits))])
        params = {name: np.asarray(value) for name, value in global_params.items()}

        def train(device: str) -> tuple[Tensors, int]:
            X, y = fleet.data(device)
            model.set_params(params)
            model.fit(X, y, epochs=settings.epochs, seed=device_seed(config.seed, self.address, round_id, device))
            update, _ = pipeline.transform(model.get_params(), params, num_examples=len(y))
            return update, len(y)

        return train
