"""The public parameters of one secure-aggregation round, and who shares secrets with whom.

Every message of a round is bound to :attr:`RoundConfig.context`, the sha256 of
the config's canonical bytes, so keys, shares and masks of one round are useless
in any other (no replay across rounds or tasks).

Complete graph (Bonawitz et al., CCS 2017): every member masks with and
secret-shares to every other member; cost per member O(n) masks and O(n) shares.
Sparse graph (SecAgg+, Bell, Bonawitz, Gascón, Lepoint, Raykova, CCS 2020): each
member only pairs with ``neighbours`` others on a ring shuffled by public
randomness (a Harary graph), so member cost is O(k) and the aggregator's
recovery cost O(k) per dropout. Bell et al. show that k = O(log n) neighbours keep
privacy and correctness with high probability against a bounded fraction of
corrupt and dropped members; choosing k for a given risk is the operator's job
(their Table/Theorem give the bounds) and the complete graph remains the default.

The threshold ``t`` applies inside each member's group (itself and its
neighbours): an owner's secrets are recovered from any ``t`` of its group. It
must be a strict majority of the group, so the aggregator can never obtain both
shares sets of one member from an honest majority (Bonawitz et al., section 4).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import cached_property

from fedledger.exceptions import BadInput, ConfigError
from fedledger.store.safejson import loads_bounded

__all__ = ["RoundConfig", "threshold_for"]

_CONFIG_FORMAT = "fedledger-secagg-config/1"
MAX_MEMBERS = 10_000


def threshold_for(group_size: int, dropout_fraction: float) -> int:
    """The threshold that tolerates ``floor(dropout_fraction * group_size)`` dropouts in a group.

    Raises :class:`ConfigError` when that leaves no strict majority (so secrecy could not be kept).
    """
    if group_size < 2:
        raise ConfigError(f"secure aggregation needs a group of at least 2 members, got {group_size}")
    if not 0.0 <= dropout_fraction < 1.0:
        raise ConfigError(f"dropout fraction must be in [0, 1), got {dropout_fraction}")
    threshold = group_size - math.floor(dropout_fraction * group_size)
    if 2 * threshold <= group_size:
        raise ConfigError(
            f"tolerating a dropout fraction of {dropout_fraction} in a group of {group_size} leaves a threshold of "
            f"{threshold}, not a strict majority; at most {(group_size - 1) // 2} dropouts can be tolerated"
        )
    return threshold


@dataclass(frozen=True)
class RoundConfig:
    """Who takes part in a round and how many of a group must survive.

    ``members`` are member ids (e.g. checksummed addresses from the consortium
    registry), kept sorted. ``neighbours`` is the SecAgg+ degree (even) or
    ``None`` for the complete graph. ``graph_seed`` is public randomness (e.g. a
    block hash) that shuffles the SecAgg+ ring so no one picks their neighbours.
    """

    task: str
    round_id: int
    members: tuple[str, ...]
    threshold: int
    neighbours: int | None = None
    graph_seed: bytes = b""
    _position: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        members = tuple(sorted(self.members))
        object.__setattr__(self, "members", members)
        n = len(members)
        if not self.task:
            raise ConfigError("round config needs a task id")
        if isinstance(self.round_id, bool) or not isinstance(self.round_id, int) or self.round_id < 0:
            raise ConfigError(f"round id must be a non-negative integer, got {self.round_id!r}")
        if not 2 <= n <= MAX_MEMBERS:
            raise ConfigError(f"secure aggregation needs 2 to {MAX_MEMBERS} members, got {n}")
        if len(set(members)) != n or any(not isinstance(m, str) or not m for m in members):
            raise ConfigError("member ids must be distinct non-empty strings")
        if self.neighbours is not None:
            k = self.neighbours
            if isinstance(k, bool) or not isinstance(k, int) or k < 2 or k % 2:
                raise ConfigError(f"neighbours must be an even integer >= 2 (or None for all), got {k!r}")
            if k >= n - 1:
                object.__setattr__(self, "neighbours", None)  # as many as the complete graph: same thing
        group = self.group_size
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int):
            raise ConfigError(f"threshold must be an integer, got {self.threshold!r}")
        if not (group < 2 * self.threshold and self.threshold <= group):
            raise ConfigError(
                f"threshold {self.threshold} must be a strict majority of the group size {group} and at most it"
            )
        if not isinstance(self.graph_seed, bytes) or len(self.graph_seed) > 64:
            raise ConfigError("graph seed must be at most 64 bytes")
        object.__setattr__(self, "_position", {m: i for i, m in enumerate(self._ring)})

    @property
    def group_size(self) -> int:
        """Members in each group: one member and its neighbours."""
        return len(self.members) if self.neighbours is None else self.neighbours + 1

    @cached_property
    def _ring(self) -> tuple[str, ...]:
        if self.neighbours is None:
            return self.members
        # Public shuffle: sort by a hash of the seed and the id, which nobody can steer once the seed is fixed.
        return tuple(sorted(self.members, key=lambda m: hashlib.sha256(self.graph_seed + m.encode()).digest()))

    def to_bytes(self) -> bytes:
        """Canonical JSON bytes (the same config gives the same bytes everywhere)."""
        doc = {
            "format": _CONFIG_FORMAT,
            "task": self.task,
            "round_id": self.round_id,
            "members": list(self.members),
            "threshold": self.threshold,
            "neighbours": self.neighbours,
            "graph_seed": self.graph_seed.hex(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> RoundConfig:
        try:
            doc = loads_bounded(data, what="secure-aggregation round config")
            if doc.get("format") != _CONFIG_FORMAT:
                raise BadInput(f"not a secure-aggregation round config (format {doc.get('format')!r})")
            return cls(
                task=str(doc["task"]),
                round_id=doc["round_id"],
                members=tuple(doc["members"]),
                threshold=doc["threshold"],
                neighbours=doc["neighbours"],
                graph_seed=bytes.fromhex(doc["graph_seed"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise BadInput(f"malformed secure-aggregation round config: {exc}") from exc

    @cached_property
    def context(self) -> bytes:
        """32 bytes binding every key, share and mask to this round."""
        return hashlib.sha256(self.to_bytes()).digest()

    def check_member(self, member: str) -> None:
        if member not in self._position:
            raise BadInput(f"{member!r} is not a member of secure-aggregation round {self.round_id}")

    def neighbours_of(self, member: str) -> tuple[str, ...]:
        """The members ``member`` masks with and shares secrets with (sorted, itself excluded)."""
        self.check_member(member)
        if self.neighbours is None:
            return tuple(m for m in self.members if m != member)
        ring, i, half = self._ring, self._position[member], self.neighbours // 2
        return tuple(sorted(ring[(i + off) % len(ring)] for off in range(-half, half + 1) if off != 0))

    def group_of(self, member: str) -> tuple[str, ...]:
        """``member`` and its neighbours, sorted: the holders of its secret shares (share x = index + 1)."""
        return tuple(sorted((member, *self.neighbours_of(member))))
