"""Secure aggregation over the fixed-point ring Z_{2^64}, as pure message-passing steps.

Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal, Seth,
"Practical Secure Aggregation for Privacy-Preserving Machine Learning", CCS 2017;
optionally with the sparse neighbour graph of SecAgg+ (Bell et al., CCS 2020).

Member ``i`` with fixed-point update ``x_i`` (uint64, see
:mod:`fedledger.learning.fixedpoint`) and ``n_i`` examples sends::

    y_i = n_i * x_i + PRG(b_i) + sum_{j in U1, j nbr of i} (+1 if i < j else -1) * PRG(s_ij)   (mod 2^64)

where ``b_i`` is a fresh self-mask seed and ``s_ij`` a seed both ``i`` and ``j``
derive from their round X25519 mask keys. Pairwise masks cancel in the sum over
survivors; the aggregator removes the survivors' self masks (from ``t`` shares
of each ``b_u``) and the dropped members' dangling pairwise masks (from ``t``
shares of each dropout's mask-key seed). A survivor never reveals both kinds of
share for the same member, so no individual ``y_i`` is ever unmasked. The
result is ``sum_u n_u x_u`` mod 2^64 -- exactly what
:func:`fedledger.learning.aggregation.weighted_sum` computes in clear, so dividing
by the published total gives the FedAvg result bit for bit.

The steps never touch the chain or the store: each returns a message whose
bytes the caller stores and commits. Consistency of the survivor sets (which the
paper's malicious-model variant gets from a signature round) comes from the
ledger: everyone reads the same committed adverts, bundles and masked inputs.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fedledger.exceptions import AggregationError, BadInput, NotEnoughShares, SecAggError, VerificationFailed
from fedledger.store.safejson import loads_bounded

from . import _keys
from ._config import RoundConfig
from ._messages import KeyAdvert, MaskedInput, RevealedShare, ShareBundle, ShareReveal, UnmaskRequest
from ._prg import U64Array, mask_from_seed

__all__ = [
    "AggregateResult",
    "MemberIdentity",
    "MemberSecrets",
    "NotEnoughShares",
    "SecAggAggregator",
    "SecAggError",
    "SecAggMember",
    "recompute_aggregate",
    "recover_sum",
    "verify_aggregate",
]

Layout = tuple[tuple[str, tuple[int, ...]], ...]


def _layout_of(tensors: Mapping[str, U64Array]) -> Layout:
    return tuple((name, tuple(np.shape(tensors[name]))) for name in sorted(tensors))


def _flatten(tensors: Mapping[str, U64Array], layout: Layout, *, what: str) -> U64Array:
    if _layout_of(tensors) != layout:
        raise BadInput(f"{what} has tensors {_layout_of(tensors)}, expected {layout}")
    parts = []
    for name, _ in layout:
        arr = np.asarray(tensors[name])
        if arr.dtype != np.uint64:
            raise BadInput(f"{what} tensor {name!r} has dtype {arr.dtype}, expected uint64 (fixed point)")
        parts.append(arr.ravel())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


def _unflatten(flat: U64Array, layout: Layout) -> dict[str, U64Array]:
    out, offset = {}, 0
    for name, shape in layout:
        size = math.prod(shape)
        out[name] = flat[offset : offset + size].reshape(shape).copy()
        offset += size
    return out


def _apply_pair_mask(acc: U64Array, seed: bytes, *, member: str, peer: str, sign: int) -> None:
    """Add ``sign`` times the (member, peer) pairwise mask as ``member`` contributed it (+ if member < peer)."""
    mask = mask_from_seed(seed, acc.size)
    if (member < peer) == (sign > 0):
        acc += mask
    else:
        acc -= mask


@dataclass(frozen=True)
class MemberIdentity:
    """A member's long-term X25519 key; its public half is the registry's ``kx_public_key``."""

    member: str
    private_key: X25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, member: str) -> MemberIdentity:
        return cls(member, X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, member: str, raw: bytes) -> MemberIdentity:
        try:
            return cls(member, X25519PrivateKey.from_private_bytes(raw))
        except ValueError as exc:
            raise BadInput(f"identity key of {member!r} must be 32 raw X25519 bytes: {exc}") from exc

    @property
    def public_bytes(self) -> bytes:
        return _keys.public_bytes(self.private_key)


_SECRETS_FORMAT = "fedledger-secagg-member-secrets/1"


@dataclass(frozen=True)
class MemberSecrets:
    """What a member must keep to resume a round after a restart (store it encrypted, delete it after the round).

    The channel key and the two seeds are drawn once per round; ``own_share`` is
    the member's own Shamir share of its seeds (x, self-mask share, mask-key
    share), known once it has shared its keys. Everything else a resumed member
    needs is in the round's published messages.
    """

    channel_key: bytes = field(repr=False)
    mask_key_seed: bytes = field(repr=False)
    self_mask_seed: bytes = field(repr=False)
    own_share: tuple[int, bytes, bytes] | None = field(default=None, repr=False)

    def to_bytes(self) -> bytes:
        own = None if self.own_share is None else [self.own_share[0], self.own_share[1].hex(), self.own_share[2].hex()]
        doc = {
            "format": _SECRETS_FORMAT,
            "channel_key": self.channel_key.hex(),
            "mask_key_seed": self.mask_key_seed.hex(),
            "self_mask_seed": self.self_mask_seed.hex(),
            "own_share": own,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> MemberSecrets:
        try:
            doc = loads_bounded(data, what="secure-aggregation member secrets")
            if doc.get("format") != _SECRETS_FORMAT:
                raise BadInput(f"not secure-aggregation member secrets (format {doc.get('format')!r})")
            own = doc["own_share"]
            secrets = cls(
                channel_key=bytes.fromhex(doc["channel_key"]),
                mask_key_seed=bytes.fromhex(doc["mask_key_seed"]),
                self_mask_seed=bytes.fromhex(doc["self_mask_seed"]),
                own_share=None if own is None else (int(own[0]), bytes.fromhex(own[1]), bytes.fromhex(own[2])),
            )
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise BadInput(f"malformed secure-aggregation member secrets: {exc}") from exc
        if len(secrets.channel_key) != 32 or len(secrets.mask_key_seed) != 16 or len(secrets.self_mask_seed) != 16:
            raise BadInput("secure-aggregation member secrets have keys or seeds of the wrong length")
        return secrets


class SecAggMember:
    """One member's side of one round. Call :meth:`advertise`, :meth:`share_keys`, :meth:`mask`, :meth:`reveal`.

    ``registry`` maps member ids to their published identity public keys (32
    bytes, the consortium's ``kx_public_key``). Round secrets live only in this
    object (and in :meth:`secrets`, for a caller that must survive a restart);
    drop them after the round (forward secrecy of stored share ciphertexts
    rests on the channel keys being ephemeral). ``secrets`` restores the ones
    drawn before a restart; see :meth:`resume`.
    """

    def __init__(
        self,
        identity: MemberIdentity,
        config: RoundConfig,
        registry: Mapping[str, bytes],
        *,
        secrets: MemberSecrets | None = None,
    ) -> None:
        config.check_member(identity.member)
        self.member = identity.member
        self.config = config
        self._identity = identity
        self._neighbours = config.neighbours_of(self.member)
        self._group = config.group_of(self.member)
        own = registry.get(self.member)
        if own is not None and own != identity.public_bytes:
            raise BadInput(f"identity key of {self.member!r} does not match the one published in the registry")
        self._peer_identity = {}
        for peer in self._neighbours:
            if peer not in registry:
                raise BadInput(f"no identity key published for member {peer!r}")
            self._peer_identity[peer] = _keys.public_key(registry[peer], owner=peer)
        self._stage = "new"
        if secrets is None:
            self._channel_key = X25519PrivateKey.generate()
            self._mask_key_seed = _keys.new_seed()
            self._self_mask_seed = _keys.new_seed()
        else:
            self._channel_key = X25519PrivateKey.from_private_bytes(secrets.channel_key)
            self._mask_key_seed = secrets.mask_key_seed
            self._self_mask_seed = secrets.self_mask_seed
        self._mask_key = _keys.mask_key_from_seed(self._mask_key_seed, context=config.context)
        self._peer_adverts: dict[str, KeyAdvert] = {}
        # Shares this member holds: owner -> (x, self-mask seed share, mask-key seed share).
        self._held: dict[str, tuple[int, bytes, bytes]] = {}
        self._share_senders: tuple[str, ...] = ()
        self._revealed: dict[str, str] = {}

    def secrets(self) -> MemberSecrets:
        """This member's round secrets, to persist (encrypted) so a restarted node can resume the round."""
        channel = self._channel_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return MemberSecrets(channel, self._mask_key_seed, self._self_mask_seed, self._held.get(self.member))

    @classmethod
    def resume(
        cls,
        identity: MemberIdentity,
        config: RoundConfig,
        registry: Mapping[str, bytes],
        secrets: MemberSecrets,
        *,
        adverts: Iterable[KeyAdvert] = (),
        bundles: Iterable[ShareBundle] | None = None,
    ) -> SecAggMember:
        """A member rebuilt after a restart from its persisted ``secrets`` and the round's published messages.

        Without an own share it resumes as having advertised (call :meth:`share_keys`);
        with one, as having shared with the neighbours whose ``adverts`` it used (call
        :meth:`mask`); given the ``bundles`` it masked with, as having masked (call
        :meth:`reveal`). The adverts and bundles must be the ones it used before.
        """
        member = cls(identity, config, registry, secrets=secrets)
        member._stage = "advertised"
        if secrets.own_share is None:
            return member
        member._accept_adverts(adverts)
        member._held[member.member] = secrets.own_share
        member._stage = "shared"
        if bundles is not None:
            member._share_senders = member._accept_bundles(bundles)
            member._stage = "masked"
        return member

    def _advance(self, expected: str, new: str) -> None:
        if self._stage != expected:
            raise SecAggError(
                f"member {self.member!r}: step needs stage {expected!r}, but the round is at {self._stage!r}"
            )
        self._stage = new

    def advertise(self) -> KeyAdvert:
        """Round 0: round public keys plus, for each neighbour, a tag under our shared identity key."""
        self._advance("new", "advertised")
        ctx = self.config.context
        unsigned = KeyAdvert(
            member=self.member,
            context=ctx,
            channel_public=_keys.public_bytes(self._channel_key),
            mask_public=_keys.public_bytes(self._mask_key),
            self_mask_commitment=_keys.self_mask_commitment(self._self_mask_seed, member=self.member, context=ctx),
            tags=(),
        )
        body = unsigned.signed_body()
        tags = tuple(
            (
                peer,
                _keys.auth_tag(
                    self._identity.private_key,
                    self._peer_identity[peer],
                    sender=self.member,
                    recipient=peer,
                    context=ctx,
                    body=body,
                ),
            )
            for peer in self._neighbours
        )
        return dataclasses.replace(unsigned, tags=tags)

    def _check_advert(self, advert: KeyAdvert) -> None:
        if advert.context != self.config.context:
            raise BadInput(f"advert of {advert.member!r} is for another round")
        tag = advert.tag_for(self.member)
        expected = _keys.auth_tag(
            self._identity.private_key,
            self._peer_identity[advert.member],
            sender=advert.member,
            recipient=self.member,
            context=self.config.context,
            body=advert.signed_body(),
        )
        if tag is None or not hmac.compare_digest(tag, expected):
            raise BadInput(f"advert of {advert.member!r} is not authenticated by its registered identity key")

    def _accept_adverts(self, adverts: Iterable[KeyAdvert]) -> None:
        for advert in adverts:
            if advert.member in self._peer_identity:
                self._check_advert(advert)
                self._peer_adverts[advert.member] = advert

    def _accept_bundles(self, bundles: Iterable[ShareBundle]) -> tuple[str, ...]:
        """Decrypt and keep the shares addressed to us; the senders, sorted."""
        ctx = self.config.context
        senders = []
        for bundle in bundles:
            if bundle.sender not in self._peer_adverts:
                continue  # not a neighbour, or it did not advertise: we hold nothing of it
            if bundle.context != ctx:
                raise BadInput(f"share bundle of {bundle.sender!r} is for another round")
            ciphertext = bundle.ciphertext_for(self.member)
            if ciphertext is None:
                raise BadInput(f"share bundle of {bundle.sender!r} has no share for {self.member!r}")
            peer_channel = _keys.public_key(self._peer_adverts[bundle.sender].channel_public, owner=bundle.sender)
            x, self_share, key_share = _keys.decrypt_share(
                self._channel_key,
                peer_channel,
                sender=bundle.sender,
                recipient=self.member,
                context=ctx,
                ciphertext=ciphertext,
            )
            if x != self.config.group_of(bundle.sender).index(self.member) + 1:
                raise BadInput(f"share from {bundle.sender!r} carries x={x}, not {self.member!r}'s coordinate")
            self._held[bundle.sender] = (x, self_share, key_share)
            senders.append(bundle.sender)
        return tuple(sorted(senders))

    def share_keys(self, adverts: Iterable[KeyAdvert]) -> ShareBundle:
        """Round 1: check neighbours' adverts, then send each one its encrypted shares of our two seeds."""
        self._advance("advertised", "shared")
        self._accept_adverts(adverts)
        present = len(self._peer_adverts) + 1
        if present < self.config.threshold:
            self._stage = "advertised"
            raise NotEnoughShares({self.member: (present, self.config.threshold)}, "advertised-key")
        t, holders = self.config.threshold, len(self._group)
        self_shares = _keys.split_secret(self._self_mask_seed, threshold=t, holders=holders)
        key_shares = _keys.split_secret(self._mask_key_seed, threshold=t, holders=holders)
        ctx, ciphertexts = self.config.context, []
        for index, holder in enumerate(self._group):
            x = index + 1
            if holder == self.member:
                self._held[self.member] = (x, self_shares[index][1], key_shares[index][1])
            elif holder in self._peer_adverts:
                peer_channel = _keys.public_key(self._peer_adverts[holder].channel_public, owner=holder)
                ct = _keys.encrypt_share(
                    self._channel_key,
                    peer_channel,
                    sender=self.member,
                    recipient=holder,
                    context=ctx,
                    x=x,
                    self_mask_share=self_shares[index][1],
                    mask_key_share=key_shares[index][1],
                )
                ciphertexts.append((holder, ct))
        return ShareBundle(sender=self.member, context=ctx, ciphertexts=tuple(ciphertexts))

    def mask(
        self, bundles: Iterable[ShareBundle], update: Mapping[str, U64Array], *, num_examples: int, frac_bits: int
    ) -> MaskedInput:
        """Round 2: store the shares sent to us, then mask ``num_examples * update`` with everyone who sent some.

        ``update`` is the pipeline's fixed-point output (uint64 tensors).
        """
        if isinstance(num_examples, bool) or not isinstance(num_examples, int) or not 0 < num_examples < 2**63:
            raise BadInput(f"num_examples must be a positive integer below 2^63, got {num_examples!r}")
        self._advance("shared", "masked")
        ctx = self.config.context
        try:
            senders = self._accept_bundles(bundles)
        except BadInput:
            self._stage = "shared"
            raise
        if len(senders) + 1 < self.config.threshold:
            self._stage = "shared"
            raise NotEnoughShares({self.member: (len(senders) + 1, self.config.threshold)}, "distributed")
        self._share_senders = senders
        layout = _layout_of(update)
        acc = _flatten(update, layout, what="update") * np.uint64(num_examples)
        acc += mask_from_seed(self._self_mask_seed, acc.size)
        for peer in self._share_senders:
            peer_mask = _keys.public_key(self._peer_adverts[peer].mask_public, owner=peer)
            seed = _keys.pairwise_seed(self._mask_key, peer_mask, peer=peer, context=ctx)
            _apply_pair_mask(acc, seed, member=self.member, peer=peer, sign=+1)
        return MaskedInput(
            member=self.member,
            context=ctx,
            num_examples=num_examples,
            frac_bits=frac_bits,
            tensors=_unflatten(acc, layout),
        )

    def reveal(self, request: UnmaskRequest) -> ShareReveal:
        """Round 3: self-mask shares of survivors, mask-key shares of dropouts -- never both for one member."""
        if self._stage not in ("masked", "revealed"):
            raise SecAggError(f"member {self.member!r}: cannot reveal shares at stage {self._stage!r}")
        if request.context != self.config.context:
            raise BadInput("unmask request is for another round")
        survivors, dropouts = set(request.survivors), set(request.dropouts)
        if survivors & dropouts:
            raise BadInput(f"unmask request lists {sorted(survivors & dropouts)} as both survivor and dropout")
        if self.member not in survivors:
            raise SecAggError(f"member {self.member!r} is not among the survivors; it reveals nothing")
        mine = set(self._share_senders)
        if (survivors | dropouts) & set(self._neighbours) != mine:
            raise SecAggError(
                f"unmask request disagrees with {self.member!r}'s view of who shared keys: request covers "
                f"{sorted((survivors | dropouts) & set(self._neighbours))}, shares came from {sorted(mine)}"
            )
        alive = len(survivors & set(self._group))
        if alive < self.config.threshold:
            raise NotEnoughShares({self.member: (alive, self.config.threshold)}, "surviving")
        decision = {m: "self" for m in survivors & set(self._held)} | {m: "key" for m in dropouts & set(self._held)}
        for owner, kind in decision.items():
            if self._revealed.get(owner, kind) != kind:
                raise SecAggError(
                    f"refusing to reveal {owner!r}'s {kind} share after revealing its {self._revealed[owner]} "
                    "share: that would unmask its individual input"
                )
        self._revealed.update(decision)
        self._stage = "revealed"
        self_shares = tuple(
            RevealedShare(o, self._held[o][0], self._held[o][1]) for o in sorted(decision) if decision[o] == "self"
        )
        key_shares = tuple(
            RevealedShare(o, self._held[o][0], self._held[o][2]) for o in sorted(decision) if decision[o] == "key"
        )
        return ShareReveal(
            holder=self.member, context=self.config.context, self_mask_shares=self_shares, mask_key_shares=key_shares
        )


@dataclass(frozen=True)
class AggregateResult:
    """The unmasked example-weighted sum ``sum_u n_u x_u`` (uint64) over the survivors."""

    weighted_sum: dict[str, U64Array]
    total_examples: int
    frac_bits: int
    survivors: tuple[str, ...]
    dropouts: tuple[str, ...]

    def average(self) -> dict[str, U64Array]:
        """FedAvg as fixed point: ``floor(sum / total)`` read as signed, the same division as ``fedavg``."""
        total = np.int64(self.total_examples)
        return {n: np.floor_divide(s.view(np.int64), total).view(np.uint64) for n, s in self.weighted_sum.items()}


def _collect(
    config: RoundConfig, owners: Iterable[str], reveals: Sequence[ShareReveal], *, self_mask: bool, survivors: set[str]
) -> dict[str, list[tuple[int, bytes]]]:
    """Per owner, the valid shares revealed by surviving holders of its group (at most one per holder)."""
    wanted = set(owners)
    got: dict[str, dict[str, tuple[int, bytes]]] = {o: {} for o in wanted}
    for reveal in reveals:
        if reveal.context != config.context:
            raise BadInput(f"reveal of {reveal.holder!r} is for another round")
        if reveal.holder not in survivors:
            continue  # only survivors' reveals count; a dropout must not help unmask
        for s in reveal.self_mask_shares if self_mask else reveal.mask_key_shares:
            if s.owner not in wanted:
                continue
            group = config.group_of(s.owner)
            if reveal.holder not in group or s.x != group.index(reveal.holder) + 1:
                raise BadInput(f"{reveal.holder!r} revealed a share of {s.owner!r} with x={s.x} it cannot hold")
            got[s.owner][reveal.holder] = (s.x, s.share)
    return {o: [got[o][h] for h in sorted(got[o])] for o in wanted}


def recover_sum(
    config: RoundConfig,
    adverts: Mapping[str, KeyAdvert],
    masked_sum: U64Array,
    request: UnmaskRequest,
    reveals: Sequence[ShareReveal],
) -> U64Array:
    """Remove all masks from the flat sum of the survivors' masked inputs (a new array; inputs untouched).

    Raises :class:`NotEnoughShares` before any work if some member lacks ``t``
    shares, and :class:`SecAggError` if a reconstructed seed does not match what
    its owner committed to (a revealed share was wrong).
    """
    if request.context != config.context:
        raise BadInput("unmask request is for another round")
    survivors, dropouts = set(request.survivors), set(request.dropouts)
    t = config.threshold
    self_shares = _collect(config, survivors, reveals, self_mask=True, survivors=survivors)
    key_shares = _collect(config, dropouts, reveals, self_mask=False, survivors=survivors)
    for kind, collected in (("self-mask seed", self_shares), ("mask-key seed", key_shares)):
        missing = {o: (len(s), t) for o, s in collected.items() if len(s) < t}
        if missing:
            raise NotEnoughShares(missing, kind)
    acc = masked_sum.copy()
    for owner in sorted(survivors):
        seed = _keys.combine_secret(self_shares[owner][:t])
        if (
            _keys.self_mask_commitment(seed, member=owner, context=config.context)
            != adverts[owner].self_mask_commitment
        ):
            raise SecAggError(
                f"reconstructed self-mask seed of {owner!r} does not match its commitment: a revealed share is wrong"
            )
        acc -= mask_from_seed(seed, acc.size)
    for dropped in sorted(dropouts):
        mask_key = _keys.mask_key_from_seed(_keys.combine_secret(key_shares[dropped][:t]), context=config.context)
        if _keys.public_bytes(mask_key) != adverts[dropped].mask_public:
            raise SecAggError(
                f"reconstructed mask key of {dropped!r} does not match its advertised public key: "
                "a revealed share is wrong"
            )
        for peer in sorted(survivors & set(config.neighbours_of(dropped))):
            peer_mask = _keys.public_key(adverts[peer].mask_public, owner=peer)
            seed = _keys.pairwise_seed(mask_key, peer_mask, peer=peer, context=config.context)
            # Survivor ``peer`` added its (peer, dropped) mask; take it out again.
            _apply_pair_mask(acc, seed, member=peer, peer=dropped, sign=-1)
    return acc


class SecAggAggregator:
    """The aggregator's side: relays messages, sums masked inputs as they arrive, then unmasks the sum.

    It holds no secret and never sees an individual input in clear; everything
    it receives can be published. A failed :meth:`finish` changes nothing: add
    more reveals and call it again.
    """

    def __init__(self, config: RoundConfig) -> None:
        self.config = config
        self._adverts: dict[str, KeyAdvert] = {}
        self._bundles: dict[str, ShareBundle] = {}
        self._inputs: dict[str, int] = {}  # member -> num_examples
        self._layout: Layout | None = None
        self._frac_bits: int | None = None
        self._sum: U64Array | None = None
        self._request: UnmaskRequest | None = None
        self._reveals: dict[str, ShareReveal] = {}

    def _check(self, member: str, context: bytes, what: str) -> None:
        self.config.check_member(member)
        if context != self.config.context:
            raise BadInput(f"{what} of {member!r} is for another round")

    def add_advert(self, advert: KeyAdvert) -> None:
        self._check(advert.member, advert.context, "advert")
        if advert.member in self._adverts:
            raise BadInput(f"{advert.member!r} already advertised keys this round")
        if self._bundles:
            raise SecAggError("key adverts are closed: shares are already being distributed")
        self._adverts[advert.member] = advert

    @property
    def adverts(self) -> tuple[KeyAdvert, ...]:
        return tuple(self._adverts[m] for m in sorted(self._adverts))

    def add_bundle(self, bundle: ShareBundle) -> None:
        self._check(bundle.sender, bundle.context, "share bundle")
        if bundle.sender not in self._adverts:
            raise BadInput(f"{bundle.sender!r} sent shares without advertising keys")
        if bundle.sender in self._bundles:
            raise BadInput(f"{bundle.sender!r} already sent its shares this round")
        if self._sum is not None:
            raise SecAggError("share distribution is closed: masked inputs are already arriving")
        expected = {p for p in self.config.neighbours_of(bundle.sender) if p in self._adverts}
        recipients = [r for r, _ in bundle.ciphertexts]
        if len(set(recipients)) != len(recipients) or set(recipients) != expected:
            raise BadInput(
                f"share bundle of {bundle.sender!r} addresses {sorted(recipients)}, expected "
                f"its advertised neighbours {sorted(expected)}"
            )
        self._bundles[bundle.sender] = bundle

    @property
    def bundles(self) -> tuple[ShareBundle, ...]:
        return tuple(self._bundles[m] for m in sorted(self._bundles))

    def add_masked_input(self, masked: MaskedInput) -> None:
        """Add one masked input into the running sum (it is not kept; its blob stays in the store)."""
        self._check(masked.member, masked.context, "masked input")
        if self._request is not None:
            raise SecAggError("masked inputs are closed: unmasking has started")
        if masked.member not in self._bundles:
            raise BadInput(f"{masked.member!r} sent a masked input without distributing its shares")
        if masked.member in self._inputs:
            raise BadInput(f"{masked.member!r} already sent its masked input this round")
        if isinstance(masked.num_examples, bool) or not 0 < masked.num_examples < 2**63:
            raise BadInput(f"masked input of {masked.member!r} claims {masked.num_examples} examples")
        layout = _layout_of(masked.tensors)
        if self._layout is None:
            self._layout, self._frac_bits = layout, masked.frac_bits
        if masked.frac_bits != self._frac_bits:
            raise BadInput(
                f"masked input of {masked.member!r} has frac_bits {masked.frac_bits}, expected {self._frac_bits}"
            )
        flat = _flatten(masked.tensors, self._layout, what=f"masked input of {masked.member!r}")
        if self._sum is None:
            self._sum = flat.copy()
        else:
            self._sum += flat
        self._inputs[masked.member] = masked.num_examples

    def unmask_request(self) -> UnmaskRequest:
        """Close the inputs and name survivors (sent an input) and dropouts (shared keys, sent none)."""
        if self._request is None:
            survivors = tuple(sorted(self._inputs))
            if not survivors:
                raise AggregationError("no masked inputs arrived; nothing to aggregate")
            dropouts = tuple(sorted(set(self._bundles) - set(self._inputs)))
            self._request = UnmaskRequest(context=self.config.context, survivors=survivors, dropouts=dropouts)
        return self._request

    def add_reveal(self, reveal: ShareReveal) -> None:
        request = self.unmask_request()
        self._check(reveal.holder, reveal.context, "reveal")
        if reveal.holder not in request.survivors:
            raise BadInput(f"{reveal.holder!r} is not a survivor; its reveal is not accepted")
        if reveal.holder in self._reveals and self._reveals[reveal.holder] != reveal:
            raise BadInput(f"{reveal.holder!r} already revealed different shares this round")
        self._reveals[reveal.holder] = reveal

    def finish(self) -> AggregateResult:
        """Unmask the sum; raises :class:`NotEnoughShares` (state kept) if too many members dropped."""
        request = self.unmask_request()
        assert self._sum is not None and self._layout is not None and self._frac_bits is not None
        flat = recover_sum(self.config, self._adverts, self._sum, request, list(self._reveals.values()))
        return AggregateResult(
            weighted_sum=_unflatten(flat, self._layout),
            total_examples=sum(self._inputs.values()),
            frac_bits=self._frac_bits,
            survivors=request.survivors,
            dropouts=request.dropouts,
        )


def recompute_aggregate(
    config: RoundConfig,
    adverts: Iterable[KeyAdvert],
    masked_inputs: Iterable[MaskedInput],
    request: UnmaskRequest,
    reveals: Iterable[ShareReveal],
) -> AggregateResult:
    """Audit: the aggregate from the published messages alone (what any reader of store and ledger can do)."""
    by_member = {a.member: a for a in adverts}
    inputs = sorted(masked_inputs, key=lambda m: m.member)
    members = [m.member for m in inputs]
    if members != sorted(request.survivors) or len(set(members)) != len(members):
        raise VerificationFailed(
            f"masked inputs come from {members}, but the unmask request names survivors {sorted(request.survivors)}"
        )
    missing = sorted((set(request.survivors) | set(request.dropouts)) - set(by_member))
    if missing:
        raise VerificationFailed(f"no key advert published for {missing}")
    for m in inputs:
        if m.context != config.context:
            raise VerificationFailed(f"masked input of {m.member!r} is for another round")
    layout = _layout_of(inputs[0].tensors)
    acc = np.zeros(sum(math.prod(s) for _, s in layout), dtype=np.uint64)
    for m in inputs:
        acc += _flatten(m.tensors, layout, what=f"masked input of {m.member!r}")
    flat = recover_sum(config, by_member, acc, request, list(reveals))
    return AggregateResult(
        weighted_sum=_unflatten(flat, layout),
        total_examples=sum(m.num_examples for m in inputs),
        frac_bits=inputs[0].frac_bits,
        survivors=request.survivors,
        dropouts=request.dropouts,
    )


def verify_aggregate(
    config: RoundConfig,
    adverts: Iterable[KeyAdvert],
    masked_inputs: Iterable[MaskedInput],
    request: UnmaskRequest,
    reveals: Iterable[ShareReveal],
    claimed: AggregateResult,
) -> None:
    """Raise :class:`VerificationFailed` unless ``claimed`` is exactly the sum of the committed masked inputs."""
    try:
        actual = recompute_aggregate(config, adverts, masked_inputs, request, reveals)
    except (AggregationError, BadInput) as exc:
        raise VerificationFailed(f"secure aggregate cannot be recomputed from the published messages: {exc}") from exc
    if claimed.total_examples != actual.total_examples:
        raise VerificationFailed(
            f"claimed total {claimed.total_examples} examples, the inputs sum to {actual.total_examples}"
        )
    if sorted(claimed.weighted_sum) != sorted(actual.weighted_sum):
        raise VerificationFailed(
            f"claimed aggregate has tensors {sorted(claimed.weighted_sum)}, expected {sorted(actual.weighted_sum)}"
        )
    for name, arr in actual.weighted_sum.items():
        if not np.array_equal(np.asarray(claimed.weighted_sum[name]), arr):
            raise VerificationFailed(f"claimed aggregate tensor {name!r} differs from the sum of the masked inputs")
