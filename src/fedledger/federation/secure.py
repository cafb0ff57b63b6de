"""Secure-aggregation rounds on the ledger: what members and aggregators derive from chain and store.

A task whose config has ``secure_aggregation`` on runs every round as Bonawitz et
al.'s protocol (CCS 2017, see :mod:`fedledger.privacy.secagg`): KEYS -> SHARES ->
OPEN -> UNMASK -> AGGREGATE on the TrainingTask contract. Each message is a blob
in the content-addressed store and only its sha256 goes on chain, so every party
reads the same messages and derives the same round state from them:

- :func:`round_context` fixes the round's :class:`RoundConfig` (task, round, the
  trainers the contract listed when the round opened, their key-agreement keys
  from the consortium registry at that block, the contract's threshold); above
  :data:`SPARSE_ABOVE` trainers it is the SecAgg+ graph of :func:`graph_degree`
  neighbours, shuffled by the seed the contract fixed at the opening, and a
  member reads only its :func:`neighbourhood`'s messages;
- :func:`load_round` checks every posted message deterministically (blob present
  and matching its hash, well formed, from its poster, for this round; masked
  inputs also sized and shaped for the task) and feeds the valid ones, in member
  order, to a :class:`SecAggAggregator`; invalid ones are dropouts. Members use it
  to pick the adverts and bundles they use and the unmask request they answer;
  aggregators and auditors use it to unmask. One function, so they cannot drift.

Identity keys: a member's long-term X25519 key is derived (HKDF-SHA256) from the
Ethereum key in its encrypted keystore, so the keystore stays the single secret a
member holds; its public half is the registry's ``kx_public_key``.

Round secrets (channel key, mask-key seed, self-mask seed, own share) are random,
kept in memory and persisted by :class:`RoundSecretsStore`, AES-GCM encrypted
under a key derived from the identity key and the round context, and deleted once
the round closes. They are *not* derived from the keystore: a derivation would let
anyone who ever steals the key recompute the masks of every past round and, with
the public masked inputs, every past individual update. Persisted secrets die
with the round (forward secrecy), and a node restarted mid-round reloads them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from eth_account.signers.local import LocalAccount

from fedledger.chain.task import SecureMessages, SecureRoundInfo, UpdateInfo
from fedledger.exceptions import AggregationError, BadInput, FedLedgerError
from fedledger.federation.config import TaskConfig
from fedledger.federation.ledger import SecureLedger
from fedledger.federation.rules import check_registered_rows, next_model
from fedledger.identity.private import write_private
from fedledger.learning import Params
from fedledger.privacy.secagg import (
    AggregateResult,
    KeyAdvert,
    MaskedInput,
    MemberIdentity,
    MemberSecrets,
    RoundConfig,
    SecAggAggregator,
    ShareBundle,
    ShareReveal,
)
from fedledger.store import BlobStore

__all__ = [
    "RoundSecretsStore",
    "SecureRoundState",
    "SecureAggregate",
    "aggregate_norm_ok",
    "identity_key",
    "graph_degree",
    "group_threshold",
    "load_round",
    "neighbourhood",
    "round_context",
    "secure_aggregate_round",
]

log = logging.getLogger("fedledger.secure")

_IDENTITY_LABEL = b"fedledger/secagg-identity/1"
_STATE_LABEL = b"fedledger/secagg-round-state/1"
_M = TypeVar("_M")


def identity_key(account: LocalAccount) -> MemberIdentity:
    """The member's long-term X25519 identity key, derived from its keystore's Ethereum key."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_IDENTITY_LABEL).derive(bytes(account.key))
    return MemberIdentity.from_private_bytes(account.address, raw)


class RoundSecretsStore:
    """A member's round secrets on disk, encrypted, one file per task and round; deleted when the round ends."""

    def __init__(self, directory: Path, identity: MemberIdentity) -> None:
        self.directory = Path(directory)
        self._identity = identity

    def _path(self, config: RoundConfig) -> Path:
        return self.directory / f"{config.task.lower()}-{config.round_id}.secagg"

    def _aead(self, config: RoundConfig) -> AESGCM:
        ikm = self._identity.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_STATE_LABEL + config.context).derive(ikm)
        return AESGCM(key)

    def save(self, config: RoundConfig, secrets: MemberSecrets) -> None:
        nonce = os.urandom(12)
        data = nonce + self._aead(config).encrypt(nonce, secrets.to_bytes(), config.context)
        # 0600 in a 0700 folder, renamed into place: a crash leaves the old or the new secrets, never half of them.
        write_private(self._path(config), data)

    def load(self, config: RoundConfig) -> MemberSecrets | None:
        path = self._path(config)
        if not path.exists():
            return None
        data = path.read_bytes()
        try:
            plain = self._aead(config).decrypt(data[:12], data[12:], config.context)
        except InvalidTag:
            raise BadInput(f"round secrets {path} do not decrypt under this member's key") from None
        return MemberSecrets.from_bytes(plain)

    def discard(self, task: str, *, before_round: int) -> None:
        """Delete the secrets of every round of ``task`` before ``before_round`` (closed rounds)."""
        if not self.directory.exists():
            return
        prefix = f"{task.lower()}-"
        for path in self.directory.glob(f"{prefix}*.secagg"):
            round_part = path.stem[len(prefix) :]
            if round_part.isdigit() and int(round_part) < before_round:
                path.unlink(missing_ok=True)


SPARSE_ABOVE = 10
"""Secure rounds of more listed trainers mask over a sparse SecAgg+ graph; smaller ones over the complete graph."""


def graph_degree(listed: int) -> int | None:
    """Neighbours of each member in a round of ``listed`` trainers; None for the complete graph.

    Above :data:`SPARSE_ABOVE` trainers: ``2 * ceil(log2 n)`` (even, as the ring needs), the O(log n) degree with
    which Bell et al. (CCS 2020) keep SecAgg's privacy and dropout recovery with high probability, so a member's
    work and reads grow with log n instead of n.
    """
    if listed <= SPARSE_ABOVE:
        return None
    degree = 2 * math.ceil(math.log2(listed))
    return degree if degree < listed - 1 else None


def group_threshold(round_threshold: int, listed: int, degree: int) -> int:
    """The threshold inside each member's group (itself and its ``degree`` neighbours): the round's threshold
    scaled to the group, so a group tolerates the same fraction of dropouts as the round, and at least a strict
    majority of the group (secrecy needs it)."""
    group = degree + 1
    scaled = -(-round_threshold * group // listed)  # ceil without floats
    return max(group // 2 + 1, min(group, scaled))


def round_context(
    task: SecureLedger, round_id: int, *, member: str | None = None
) -> tuple[RoundConfig, dict[str, bytes]] | None:
    """The round's config and the members' identity keys; None when it cannot be secure (it will abort).

    Up to :data:`SPARSE_ABOVE` listed trainers: the complete graph over the listed trainers with a key-agreement
    key, and every member's key. Above: the sparse graph over every listed trainer, shuffled by the round's
    on-chain ``graph_seed``, and only the keys ``member`` needs (its group's; none without ``member``).
    """
    secure = task.secure_round(round_id)
    degree = graph_degree(secure.num_members)
    if degree is None:
        return _complete_context(task, round_id, secure)
    config = RoundConfig(
        task=task.address,
        round_id=int(round_id),
        members=tuple(task.secure_listed(round_id, block=secure.opened_block)),
        threshold=group_threshold(secure.threshold, secure.num_members, degree),
        neighbours=degree,
        graph_seed=secure.graph_seed,
    )
    registry: dict[str, bytes] = {}
    if member is not None and member in config.members:
        # Keys as registered when the round opened: a later rotation cannot change this round's context.
        keys = task.secure_keys_of(
            round_id, config.group_of(member), block=secure.opened_block, opened_block=secure.opened_block
        )
        registry = {m: bytes.fromhex(key.removeprefix("0x")) for m, key in keys.items() if int(key, 16)}
    return config, registry


def _complete_context(
    task: SecureLedger, round_id: int, secure: SecureRoundInfo
) -> tuple[RoundConfig, dict[str, bytes]] | None:
    # Keys as registered when the round opened: a later rotation cannot change this round's context.
    keys = task.secure_keys(round_id, block=secure.opened_block)
    registry = {member: bytes.fromhex(key.removeprefix("0x")) for member, key in keys.items() if int(key, 16)}
    members = tuple(registry)
    if len(members) < 2:
        return None
    threshold = min(secure.threshold, len(members))
    if 2 * threshold <= len(members):
        threshold = len(members) // 2 + 1
    config = RoundConfig(task=task.address, round_id=int(round_id), members=members, threshold=threshold)
    return config, registry


def neighbourhood(config: RoundConfig, member: str) -> tuple[str, ...]:
    """``member``, its neighbours and theirs, sorted: whose messages it must read to judge, as every aggregator
    does, which of its neighbours' adverts and share bundles are valid (a bundle must address exactly the
    sender's neighbours that advertised). The whole round on the complete graph."""
    near = set(config.group_of(member))
    for peer in config.neighbours_of(member):
        near.update(config.neighbours_of(peer))
    return tuple(sorted(near))


@dataclass
class SecureRoundState:
    """The round's valid messages, loaded into an aggregator, and why the others were dropped."""

    config: RoundConfig
    aggregator: SecAggAggregator
    adverts: dict[str, KeyAdvert]
    bundles: dict[str, ShareBundle]
    inputs: list[MaskedInput] = field(default_factory=list)  # the masked inputs in the sum, by member
    reveals: list[ShareReveal] = field(default_factory=list)  # the survivors' reveals accepted
    dropped: dict[str, str] = field(default_factory=dict)  # "<kind> of <member>" -> reason


def _fetch(store: BlobStore, blob_hash: str, parse: Callable[[bytes], _M], *, max_bytes: int) -> _M:
    data = store.get(blob_hash.removeprefix("0x"))  # verifies the bytes against the hash
    if len(data) > max_bytes:
        raise BadInput(f"{len(data)} bytes, limit {max_bytes}")
    return parse(data)


def load_round(
    store: BlobStore,
    config: TaskConfig,
    round_config: RoundConfig,
    messages: Sequence[SecureMessages],
    *,
    spec: Mapping[str, tuple[int, ...]] | None = None,
    updates: Sequence[UpdateInfo] | None = None,
    reveals: bool = False,
    rows: Mapping[int, int] | None = None,
) -> SecureRoundState:
    """Load the round's posted messages, each checked, into an aggregator: adverts and bundles, then, when
    ``updates`` (the round's commitments) and the model ``spec`` are given, the masked inputs, and with
    ``reveals`` the share reveals. A message that fails a check is dropped (its sender counts as a dropout).
    ``rows``: :func:`fedledger.federation.rules.registered_rows` of the round; a masked input whose commitment
    declares more examples than its dataset registered is dropped, which caps example counts even though
    nobody sees the update itself."""
    rows = rows or {}
    aggregator = SecAggAggregator(round_config)
    state = SecureRoundState(round_config, aggregator, {}, {})
    members = set(round_config.members)
    limit = config.max_update_bytes
    ctx = round_config.context
    for m in messages:
        if m.member not in members or m.advert_hash is None:
            continue
        try:
            advert = _fetch(store, m.advert_hash, KeyAdvert.from_bytes, max_bytes=limit)
            if advert.member != m.member:
                raise BadInput(f"advert names {advert.member}")
            aggregator.add_advert(advert)
            state.adverts[m.member] = advert
        except (FedLedgerError, ValueError) as exc:
            state.dropped[f"advert of {m.member}"] = str(exc)
    for m in messages:
        if m.member not in state.adverts or m.bundle_hash is None:
            continue
        try:
            bundle = _fetch(store, m.bundle_hash, ShareBundle.from_bytes, max_bytes=limit)
            if bundle.sender != m.member:
                raise BadInput(f"bundle names {bundle.sender}")
            aggregator.add_bundle(bundle)
            state.bundles[m.member] = bundle
        except (FedLedgerError, ValueError) as exc:
            state.dropped[f"shares of {m.member}"] = str(exc)
    if updates is None or spec is None:
        return state
    for u in sorted(updates, key=lambda u: u.member):
        try:
            masked = _fetch(store, u.update_hash, MaskedInput.from_bytes, max_bytes=limit)
            _check_masked(masked, u, config, spec, ctx, rows=rows.get(u.index))
            aggregator.add_masked_input(masked)
            state.inputs.append(masked)
        except (FedLedgerError, ValueError) as exc:
            state.dropped[f"masked input of {u.member}"] = str(exc)
    if not reveals:
        return state
    if not state.inputs:
        raise AggregationError(f"round {round_config.round_id}: no usable masked input")
    survivors = set(aggregator.unmask_request().survivors)
    for m in messages:
        if m.reveal_hash is None or m.member not in survivors:
            continue
        try:
            reveal = _fetch(store, m.reveal_hash, ShareReveal.from_bytes, max_bytes=limit)
            if reveal.holder != m.member:
                raise BadInput(f"reveal names {reveal.holder}")
            aggregator.add_reveal(reveal)
            state.reveals.append(reveal)
        except (FedLedgerError, ValueError) as exc:
            state.dropped[f"reveal of {m.member}"] = str(exc)
    return state


def _check_masked(
    masked: MaskedInput,
    update: UpdateInfo,
    config: TaskConfig,
    spec: Mapping[str, tuple[int, ...]],
    ctx: bytes,
    *,
    rows: int | None = None,
) -> None:
    """What can still be checked on a masked update: who, which round, how many examples, shape, encoding."""
    check_registered_rows(update, rows)
    if masked.member != update.member:
        raise BadInput(f"masked input names {masked.member}, committed by {update.member}")
    if masked.context != ctx:
        raise BadInput("masked input is for another round")
    weight = config.masking_weight(update.num_examples)
    if masked.num_examples != weight:
        raise BadInput(f"masked input has weight {masked.num_examples}, the commitment implies {weight}")
    if masked.num_examples > config.max_examples:
        raise BadInput(f"masked input claims {masked.num_examples} examples, the task allows {config.max_examples}")
    if masked.frac_bits != config.frac_bits:
        raise BadInput(f"masked input has frac_bits {masked.frac_bits}, the task uses {config.frac_bits}")
    layout = {name: tuple(np.shape(arr)) for name, arr in masked.tensors.items()}
    if layout != dict(spec):
        raise BadInput(f"masked input tensors {sorted(layout.items())} do not match the model {sorted(spec.items())}")


def aggregate_norm_ok(delta: Mapping[str, npt.NDArray[np.uint64]], *, clip_norm: float, frac_bits: int) -> bool:
    """Whether the averaged update is within the clip bound, in exact integer arithmetic (same answer everywhere).

    Honest members clip their update to ``clip_norm`` before masking (under client-level
    DP the caller passes the clip bound plus the noise bound), so their weighted mean is
    within it too (convexity of the ball); the slack allows one unit of fixed-point
    rounding per coordinate (encoding and the floor division).
    """
    squares = 0
    size = 0
    for name in sorted(delta):
        values = np.asarray(delta[name]).view(np.int64).ravel()
        squares += sum(int(v) * int(v) for v in values.tolist())
        size += values.size
    bound = int(np.ceil(clip_norm * 2**frac_bits)) + 2 * (int(np.sqrt(size)) + 1)
    return squares <= bound * bound


@dataclass(frozen=True)
class SecureAggregate:
    params: Params
    blob: bytes
    model_hash: str  # 0x-prefixed sha256 of ``blob``
    result: AggregateResult
    dropped: dict[str, str]
    norm_ok: bool


def secure_aggregate_round(
    store: BlobStore,
    config: TaskConfig,
    global_params: Params,
    model_spec: dict[str, object],
    state: SecureRoundState,
    *,
    round_id: int,
    optimizer_state: Mapping[str, npt.NDArray[np.float64]] | None = None,
) -> SecureAggregate:
    """Unmask the sum of the round's masked inputs, divide by the total example count and apply it:
    the FedAvg of the surviving updates, bit for bit (``NotEnoughShares`` when too few reveals). With a
    server optimizer that FedAvg is its pseudo-gradient (:func:`~fedledger.federation.rules.next_model`;
    ``optimizer_state`` as there: by default what ``global_params`` decoded from the global model carries)."""
    result = state.aggregator.finish()
    delta = result.average()
    params, blob = next_model(
        config, global_params, model_spec, delta, round_id=round_id, optimizer_state=optimizer_state
    )
    return SecureAggregate(
        params=params,
        blob=blob,
        model_hash="0x" + hashlib.sha256(blob).hexdigest(),
        result=result,
        dropped=dict(state.dropped),
        # The clip bound, plus the high-probability bound on client-level DP noise when the task has DP.
        norm_ok=aggregate_norm_ok(
            delta, clip_norm=config.update_norm_bound(sum(a.size for a in delta.values())), frac_bits=config.frac_bits
        ),
    )
