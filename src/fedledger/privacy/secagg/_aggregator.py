"""The aggregator's side of a round, the unmasking of the survivors' sum, and the audit that recomputes it
from the published messages alone."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedledger.exceptions import AggregationError, BadInput, NotEnoughShares, SecAggError, VerificationFailed

from . import _keys
from ._config import RoundConfig
from ._masking import Layout, apply_pair_mask, flatten, layout_of, unflatten
from ._messages import KeyAdvert, MaskedInput, ShareBundle, ShareReveal, UnmaskRequest
from ._prg import U64Array, mask_from_seed


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
            apply_pair_mask(acc, seed, member=peer, peer=dropped, sign=-1)
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
        layout = layout_of(masked.tensors)
        if self._layout is None:
            self._layout, self._frac_bits = layout, masked.frac_bits
        if masked.frac_bits != self._frac_bits:
            raise BadInput(
                f"masked input of {masked.member!r} has frac_bits {masked.frac_bits}, expected {self._frac_bits}"
            )
        flat = flatten(masked.tensors, self._layout, what=f"masked input of {masked.member!r}")
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
        if self._sum is None or self._layout is None or self._frac_bits is None:
            raise AggregationError("no masked inputs arrived; nothing to aggregate")
        flat = recover_sum(self.config, self._adverts, self._sum, request, list(self._reveals.values()))
        return AggregateResult(
            weighted_sum=unflatten(flat, self._layout),
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
    layout = layout_of(inputs[0].tensors)
    acc = np.zeros(sum(math.prod(s) for _, s in layout), dtype=np.uint64)
    for m in inputs:
        acc += flatten(m.tensors, layout, what=f"masked input of {m.member!r}")
    flat = recover_sum(config, by_member, acc, request, list(reveals))
    return AggregateResult(
        weighted_sum=unflatten(flat, layout),
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
