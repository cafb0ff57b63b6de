"""Preparation statistics agreed by the consortium without pooling rows: a masked sum on the bulletin.

A recipe with ``statistics = "consortium"`` (:mod:`fedledger.data.prepare`) needs means, standard
deviations and most frequent categories over every member's rows. Each member computes its own
sufficient statistics (counts, sums, sums of squares, category counts: :meth:`Recipe.local_stats`,
fixed point) and posts them masked: it adds, modulo 2^64, one pseudo-random mask per other
participant, with the opposite sign at that participant. A pair's mask comes from the X25519
agreement of the two members' registered key-agreement keys (their secure-aggregation identity),
expanded with AES-CTR (:func:`fedledger.privacy.secagg.mask_from_seed`), so the masks cancel in the
sum and nothing else: the bulletin and the store show only uniformly random vectors, and every member
derives the same sum, hence the same statistics, from the same posts.

Participants are the consortium's active trainers when the task was created, listed in the committed
config (``extra["stats_members"]``; ``extra["stats_frac_bits"]`` sets the fixed point). Every one of them must
post: this one-off step has no dropout recovery (Bonawitz et al.'s shares would add it), so a missing
participant is named while the others wait for it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from eth_account.signers.local import LocalAccount

from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.consortium import ConsortiumClient, MemberStatus, Role
from fedledger.chain.task import TrainingTaskClient
from fedledger.data.prepare import Recipe, stats_layout
from fedledger.exceptions import BadInput, ConfigError, StoreError
from fedledger.federation.secure import identity_key

if TYPE_CHECKING:
    import pandas as pd
from fedledger.privacy.secagg import mask_from_seed, pairwise_seed, public_key
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_bounded

__all__ = [
    "STATS_FORMAT",
    "STATS_FRAC_BITS_KEY",
    "STATS_MEMBERS_KEY",
    "STATS_TOPIC",
    "ConsortiumStats",
    "stats_members",
]

log = logging.getLogger("fedledger.node")

STATS_TOPIC = "prepare-stats"
STATS_FORMAT = "fedledger-prepare-stats/1"
STATS_MEMBERS_KEY = "stats_members"
STATS_FRAC_BITS_KEY = "stats_frac_bits"
# Fixed-point fraction bits of the summed statistics: sums of squares grow with the square of the values, and each
# member's entries must stay below 2^62, so few fraction bits (1/256 units) leave room for values in the thousands
# over tens of thousands of rows; a task with tiny-valued columns raises it in extra.stats_frac_bits.
DEFAULT_FRAC_BITS = 8
_CONTEXT = b"fedledger/prepare-stats/"


def stats_members(consortium: ConsortiumClient) -> list[str]:
    """The active trainers of ``consortium`` now, sorted: who a new task's statistics come from."""
    return sorted(m.address for m in consortium.members() if m.status is MemberStatus.ACTIVE and m.roles & Role.TRAINER)


@dataclass(frozen=True)
class StatsProgress:
    posted: list[str]
    missing: list[str]


class ConsortiumStats:
    """One member's view of a task's statistics agreement (``account`` None: read only)."""

    def __init__(
        self,
        task: TrainingTaskClient,
        bulletin: BulletinClient,
        store: BlobStore,
        recipe: Recipe,
        participants: list[str],
        account: LocalAccount | None = None,
        *,
        frac_bits: int = DEFAULT_FRAC_BITS,
    ) -> None:
        if not participants:
            raise ConfigError(
                f"task config: extra.{STATS_MEMBERS_KEY} lists nobody to agree the preparation statistics with"
            )
        self.task = task
        self.bulletin = bulletin
        self.store = store
        self.recipe = recipe
        self.participants = sorted(participants)
        self.account = account
        self.frac_bits = frac_bits
        self._context = _CONTEXT + bytes.fromhex(task.address.removeprefix("0x")) + bytes.fromhex(recipe.hash())

    def progress(self) -> StatsProgress:
        posted = {p.poster for p in self.bulletin.posts(self.task.address, 0, STATS_TOPIC)}
        return StatsProgress(
            [a for a in self.participants if a in posted], [a for a in self.participants if a not in posted]
        )

    def contribute(self, table: Path | pd.DataFrame) -> bool:
        """Post this member's masked statistics once; False when already posted or not a participant."""
        account = self.account
        if account is None or account.address not in self.participants:
            return False
        if self.bulletin.posted(self.task.address, 0, STATS_TOPIC, account.address) is not None:
            return False
        own = np.asarray(self.recipe.local_stats(table, frac_bits=self.frac_bits), dtype=np.int64)
        masked = own.view(np.uint64).copy()
        keys = ConsortiumClient(self.task.chain, self.task.consortium_address)
        identity = identity_key(account)
        for peer in self.participants:
            if peer == account.address:
                continue
            raw = keys.member(peer).kx_public_key
            if int(raw, 16) == 0:
                raise ConfigError(
                    f"participant {peer} has not registered its key-agreement key yet (it does at `fedledger task "
                    "join`): the statistics cannot be masked against it"
                )
            seed = pairwise_seed(
                identity.private_key,
                public_key(bytes.fromhex(raw.removeprefix("0x")), owner=peer),
                peer=peer,
                context=self._context,
            )
            mask = mask_from_seed(seed, len(masked))
            masked = masked + mask if account.address < peer else masked - mask  # uint64: wraps modulo 2^64
        body = {
            "format": STATS_FORMAT,
            "task": self.task.address,
            "member": account.address,
            "recipe": self.recipe.hash(),
            "frac_bits": self.frac_bits,
            "masked": masked.astype("<u8").tobytes().hex(),
        }
        blob_hash = self.store.put(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())
        BulletinClient(self.bulletin.chain, self.bulletin.address, account).post(
            self.task.address, 0, STATS_TOPIC, "0x" + blob_hash
        )
        return True

    def agreed(self) -> Recipe | None:
        """The recipe with the consortium's statistics once every participant posted; None before."""
        posts = {p.poster: p for p in self.bulletin.posts(self.task.address, 0, STATS_TOPIC)}
        if any(a not in posts for a in self.participants):
            return None
        # The constructor refuses an empty participant list, so there is a first vector.
        first, *others = [self._read(address, posts[address].blob_hash) for address in self.participants]
        total = first
        for vector in others:
            total = total + vector
        return self.recipe.with_stats(total.view(np.int64), frac_bits=self.frac_bits)

    def _read(self, member: str, blob_hash: str) -> npt.NDArray[np.uint64]:
        try:
            body = loads_bounded(self.store.get(blob_hash.removeprefix("0x")), what="preparation statistics")
            if (
                body.get("format") != STATS_FORMAT
                or body.get("task") != self.task.address
                or body.get("member") != member
                or body.get("recipe") != self.recipe.hash()
                or body.get("frac_bits") != self.frac_bits
            ):
                raise ValueError("its task, member, recipe or format does not match the post")
            vector = np.frombuffer(bytes.fromhex(body["masked"]), dtype="<u8").astype(np.uint64)
            expected = len(stats_layout(self.recipe))
            if len(vector) != expected:
                raise ValueError(f"{len(vector)} entries, the recipe's statistics have {expected}")
        except (StoreError, ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"the preparation statistics {member} posted ({blob_hash}) are unusable: {exc}") from exc
        return vector
