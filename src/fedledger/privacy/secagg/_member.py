"""The member's side of a round: advertise keys, share seeds, mask the update, reveal shares for the
survivors and dropouts the aggregator names."""

from __future__ import annotations

import dataclasses
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from fedledger.exceptions import BadInput, NotEnoughShares, SecAggError
from fedledger.store.safejson import loads_bounded

from . import _keys
from ._config import RoundConfig
from ._masking import apply_pair_mask, flatten, layout_of, unflatten
from ._messages import KeyAdvert, MaskedInput, RevealedShare, ShareBundle, ShareReveal, UnmaskRequest
from ._prg import U64Array, mask_from_seed


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
        # A neighbour with no published identity key cannot authenticate an advert to us: it never takes part,
        # as if it dropped out before the round (its adverts are ignored and it gets none of our shares).
        self._peer_identity = {
            peer: _keys.public_key(registry[peer], owner=peer) for peer in self._neighbours if peer in registry
        }
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
        layout = layout_of(update)
        acc = flatten(update, layout, what="update") * np.uint64(num_examples)
        acc += mask_from_seed(self._self_mask_seed, acc.size)
        for peer in self._share_senders:
            peer_mask = _keys.public_key(self._peer_adverts[peer].mask_public, owner=peer)
            seed = _keys.pairwise_seed(self._mask_key, peer_mask, peer=peer, context=ctx)
            apply_pair_mask(acc, seed, member=self.member, peer=peer, sign=+1)
        return MaskedInput(
            member=self.member,
            context=ctx,
            num_examples=num_examples,
            frac_bits=frac_bits,
            tensors=unflatten(acc, layout),
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
