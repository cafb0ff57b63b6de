"""Secure aggregation: masks cancel exactly, dropouts are recovered up to the threshold, and no further."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.exceptions import AggregationError, BadInput, ConfigError, VerificationFailed
from fedledger.learning.aggregation import fedavg
from fedledger.learning.aggregation.fedavg import weighted_sum
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.learning.update import validate_update
from fedledger.privacy.secagg import (
    AggregateResult,
    KeyAdvert,
    MaskedInput,
    MemberIdentity,
    NotEnoughShares,
    RoundConfig,
    SecAggAggregator,
    SecAggError,
    SecAggMember,
    ShareBundle,
    ShareReveal,
    UnmaskRequest,
    mask_from_seed,
    recover_sum,
    threshold_for,
    verify_aggregate,
)

CODEC = FixedPoint(16)


def _names(n: int) -> list[str]:
    return [f"0xmember{i:03d}" for i in range(n)]


@pytest.fixture(scope="module")
def identities() -> dict[str, MemberIdentity]:
    return {m: MemberIdentity.generate(m) for m in _names(12)}


def _updates(members: list[str], seed: int = 0) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, int]]:
    rng = np.random.default_rng(seed)
    ups = {m: {"w": CODEC.encode(rng.normal(size=(20, 5))), "b": CODEC.encode(rng.normal(size=5))} for m in members}
    return ups, {m: int(rng.integers(1, 500)) for m in members}


@dataclasses.dataclass
class Round:
    config: RoundConfig
    members: dict[str, SecAggMember]
    aggregator: SecAggAggregator
    inputs: dict[str, MaskedInput]


def _run_to_masked(
    identities: dict[str, MemberIdentity],
    config: RoundConfig,
    updates: dict[str, dict[str, np.ndarray]],
    counts: dict[str, int],
    *,
    drop_before_shares: frozenset[str] = frozenset(),
    drop_before_input: frozenset[str] = frozenset(),
) -> Round:
    """Rounds 0-2, every message through its bytes (as through the store)."""
    registry = {m: identities[m].public_bytes for m in config.members}
    members = {m: SecAggMember(identities[m], config, registry) for m in config.members}
    agg = SecAggAggregator(config)
    for member in members.values():
        agg.add_advert(KeyAdvert.from_bytes(member.advertise().to_bytes()))
    for m, member in members.items():
        if m not in drop_before_shares:
            agg.add_bundle(ShareBundle.from_bytes(member.share_keys(agg.adverts).to_bytes()))
    inputs = {}
    for m, member in members.items():
        if m in drop_before_shares or m in drop_before_input:
            continue
        masked = MaskedInput.from_bytes(
            member.mask(agg.bundles, updates[m], num_examples=counts[m], frac_bits=16).to_bytes()
        )
        agg.add_masked_input(masked)
        inputs[m] = masked
    return Round(config, members, agg, inputs)


def _reveal_all(rnd: Round, holders: list[str] | None = None) -> list[ShareReveal]:
    request = UnmaskRequest.from_bytes(rnd.aggregator.unmask_request().to_bytes())
    reveals = []
    for m in holders if holders is not None else request.survivors:
        reveal = ShareReveal.from_bytes(rnd.members[m].reveal(request).to_bytes())
        rnd.aggregator.add_reveal(reveal)
        reveals.append(reveal)
    return reveals


def _expected(
    updates: dict[str, dict[str, np.ndarray]], counts: dict[str, int], who: list[str]
) -> dict[str, np.ndarray]:
    return weighted_sum([updates[m] for m in who], [counts[m] for m in who])


def _assert_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        assert a[k].dtype == np.uint64 and np.array_equal(a[k], b[k]), k


def test_masks_cancel_exactly_and_match_fedavg(identities: dict[str, MemberIdentity]) -> None:
    names = _names(6)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=3, members=tuple(names), threshold=4)
    rnd = _run_to_masked(identities, config, ups, counts)
    # No individual masked input equals its plain weighted update.
    for m in names:
        plain = _expected(ups, counts, [m])
        assert not np.array_equal(rnd.inputs[m].tensors["w"], plain["w"])
    reveals = _reveal_all(rnd)
    result = rnd.aggregator.finish()
    _assert_equal(result.weighted_sum, _expected(ups, counts, names))
    assert result.total_examples == sum(counts.values()) and result.dropouts == ()
    _assert_equal(result.average(), fedavg([ups[m] for m in names], [counts[m] for m in names]))
    # Without dropouts only self-mask shares are revealed.
    assert all(not r.mask_key_shares for r in reveals)
    verify_aggregate(
        config, rnd.aggregator.adverts, rnd.inputs.values(), rnd.aggregator.unmask_request(), reveals, result
    )


def test_recovers_at_the_dropout_threshold(identities: dict[str, MemberIdentity]) -> None:
    names = _names(10)
    ups, counts = _updates(names, seed=1)
    t = threshold_for(10, 0.3)
    assert t == 7
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=t)
    # One member drops before sharing keys (nobody masks with it), two after sharing (their masks dangle).
    rnd = _run_to_masked(
        identities,
        config,
        ups,
        counts,
        drop_before_shares=frozenset(names[:1]),
        drop_before_input=frozenset(names[1:3]),
    )
    request = rnd.aggregator.unmask_request()
    assert request.dropouts == tuple(names[1:3]) and len(request.survivors) == t
    reveals = _reveal_all(rnd)
    assert all({s.owner for s in r.mask_key_shares} == set(names[1:3]) for r in reveals)
    result = rnd.aggregator.finish()
    _assert_equal(result.weighted_sum, _expected(ups, counts, names[3:]))
    verify_aggregate(config, rnd.aggregator.adverts, rnd.inputs.values(), request, reveals, result)


def test_one_dropout_beyond_threshold_fails_clearly_and_can_be_retried(identities: dict[str, MemberIdentity]) -> None:
    names = _names(10)
    ups, counts = _updates(names, seed=2)
    config = RoundConfig(task="task", round_id=4, members=tuple(names), threshold=7)
    rnd = _run_to_masked(identities, config, ups, counts, drop_before_input=frozenset(names[:3]))
    survivors = list(rnd.aggregator.unmask_request().survivors)
    # Seven survivors sent inputs, but one of them goes silent before revealing: 6 < t shares for everyone.
    _reveal_all(rnd, holders=survivors[:-1])
    with pytest.raises(NotEnoughShares, match=r"not enough self-mask seed shares .* \(6 of 7\).*retry") as info:
        rnd.aggregator.finish()
    assert isinstance(info.value, AggregationError)
    assert set(info.value.missing) == set(survivors) and info.value.missing[survivors[0]] == (6, 7)
    # Nothing was lost: the late reveal arrives and the same aggregator finishes.
    _reveal_all(rnd, holders=survivors[-1:])
    _assert_equal(rnd.aggregator.finish().weighted_sum, _expected(ups, counts, survivors))
    # Or the round is rerun (new round id) by the members still there, with the same updates.
    still_there = names[3:]
    rerun = RoundConfig(task="task", round_id=5, members=tuple(still_there), threshold=threshold_for(7, 0.0))
    rnd2 = _run_to_masked(identities, rerun, ups, counts)
    _reveal_all(rnd2)
    _assert_equal(rnd2.aggregator.finish().weighted_sum, _expected(ups, counts, still_there))


def test_too_few_members_left_to_mask_fails_with_clear_error(identities: dict[str, MemberIdentity]) -> None:
    names = _names(5)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=4)
    with pytest.raises(NotEnoughShares, match=r"distributed shares .*\(3 of 4\)"):
        _run_to_masked(identities, config, ups, counts, drop_before_shares=frozenset(names[:2]))


def test_survivor_never_reveals_both_shares_of_one_member(identities: dict[str, MemberIdentity]) -> None:
    names = _names(5)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=3)
    rnd = _run_to_masked(identities, config, ups, counts)
    honest = rnd.aggregator.unmask_request()
    rnd.members[names[0]].reveal(honest)
    # A cheating aggregator now claims names[1] dropped to get its mask-key shares as well.
    lying = UnmaskRequest(honest.context, tuple(m for m in names if m != names[1]), (names[1],))
    with pytest.raises(SecAggError, match="would unmask its individual input"):
        rnd.members[names[0]].reveal(lying)
    with pytest.raises(BadInput, match="both survivor and dropout"):
        rnd.members[names[2]].reveal(UnmaskRequest(honest.context, tuple(names), (names[1],)))


def test_secagg_plus_neighbour_graph(identities: dict[str, MemberIdentity]) -> None:
    names = _names(12)
    ups, counts = _updates(names, seed=4)
    config = RoundConfig(task="task", round_id=2, members=tuple(names), threshold=4, neighbours=4, graph_seed=b"block")
    for m in names:
        nbrs = config.neighbours_of(m)
        assert len(nbrs) == 4 and m not in nbrs
        assert all(m in config.neighbours_of(p) for p in nbrs)  # symmetric
    rnd = _run_to_masked(identities, config, ups, counts, drop_before_input=frozenset(names[:1]))
    # Only neighbours get shares: bundles carry 4 ciphertexts, not 11.
    assert all(len(b.ciphertexts) == 4 for b in rnd.aggregator.bundles)
    reveals = _reveal_all(rnd)
    result = rnd.aggregator.finish()
    _assert_equal(result.weighted_sum, _expected(ups, counts, names[1:]))
    verify_aggregate(
        config, rnd.aggregator.adverts, rnd.inputs.values(), rnd.aggregator.unmask_request(), reveals, result
    )


def test_audit_detects_tampering(identities: dict[str, MemberIdentity]) -> None:
    names = _names(4)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=3)
    rnd = _run_to_masked(identities, config, ups, counts)
    reveals = _reveal_all(rnd)
    result = rnd.aggregator.finish()
    request = rnd.aggregator.unmask_request()
    forged = dict(result.weighted_sum)
    forged["b"] = forged["b"] + np.uint64(1)
    with pytest.raises(VerificationFailed, match="tensor 'b' differs"):
        verify_aggregate(
            config,
            rnd.aggregator.adverts,
            rnd.inputs.values(),
            request,
            reveals,
            dataclasses.replace(result, weighted_sum=forged),
        )
    with pytest.raises(VerificationFailed, match="total"):
        verify_aggregate(
            config,
            rnd.aggregator.adverts,
            rnd.inputs.values(),
            request,
            reveals,
            dataclasses.replace(result, total_examples=result.total_examples + 1),
        )
    # A wrong revealed share is caught by the owner's commitment, not silently summed.
    bad = reveals[0]
    share = bad.self_mask_shares[0]
    bad = dataclasses.replace(
        bad, self_mask_shares=(dataclasses.replace(share, share=bytes(16)),) + bad.self_mask_shares[1:]
    )
    with pytest.raises(VerificationFailed, match="does not match its commitment"):
        verify_aggregate(config, rnd.aggregator.adverts, rnd.inputs.values(), request, [bad, *reveals[1:]], result)
    with pytest.raises(VerificationFailed, match="unmask request names survivors"):
        verify_aggregate(config, rnd.aggregator.adverts, list(rnd.inputs.values())[1:], request, reveals, result)


def test_forged_advert_and_tampered_share_are_rejected(identities: dict[str, MemberIdentity]) -> None:
    names = _names(4)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=3)
    registry = {m: identities[m].public_bytes for m in names}
    members = {m: SecAggMember(identities[m], config, registry) for m in names}
    adverts = [members[m].advertise() for m in names]
    with pytest.raises(BadInput, match="does not match the one published in the registry"):
        SecAggMember(MemberIdentity.generate(names[0]), config, registry)
    # An impostor replaces names[1]'s round keys (e.g. a man in the middle at the aggregator).
    others = {m: k for m, k in registry.items() if m != names[1]}
    impostor = SecAggMember(MemberIdentity.generate(names[1]), config, others).advertise()
    with pytest.raises(BadInput, match="not authenticated by its registered identity key"):
        members[names[0]].share_keys([adverts[0], impostor, *adverts[2:]])
    bundles = [members[m].share_keys(adverts) for m in names[1:]]
    ct = bytearray(bundles[0].ciphertext_for(names[2]) or b"")
    ct[-1] ^= 1
    tampered = dataclasses.replace(
        bundles[0],
        ciphertexts=((names[0], bundles[0].ciphertexts[0][1]), (names[2], bytes(ct)), bundles[0].ciphertexts[2]),
    )
    with pytest.raises(BadInput, match="does not authenticate"):
        members[names[2]].mask([tampered, *bundles[1:]], {"w": CODEC.encode([1.0])}, num_examples=1, frac_bits=16)


def test_messages_from_another_round_are_rejected(identities: dict[str, MemberIdentity]) -> None:
    names = _names(3)
    registry = {m: identities[m].public_bytes for m in names}
    c1 = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=2)
    c2 = RoundConfig(task="task", round_id=2, members=tuple(names), threshold=2)
    advert = SecAggMember(identities[names[0]], c1, registry).advertise()
    with pytest.raises(BadInput, match="another round"):
        SecAggAggregator(c2).add_advert(advert)


def test_bad_config_and_malformed_messages() -> None:
    with pytest.raises(ConfigError, match="strict majority"):
        RoundConfig(task="t", round_id=0, members=("a", "b", "c", "d"), threshold=2)
    with pytest.raises(ConfigError, match="at most 2 dropouts"):
        threshold_for(5, 0.6)
    with pytest.raises(ConfigError, match="even integer"):
        RoundConfig(task="t", round_id=0, members=tuple("abcdefg"), threshold=2, neighbours=3)
    with pytest.raises(ConfigError, match="distinct"):
        RoundConfig(task="t", round_id=0, members=("a", "a", "b"), threshold=2)
    config = RoundConfig(task="t", round_id=0, members=("b", "a", "c"), threshold=2)
    assert RoundConfig.from_bytes(config.to_bytes()) == config and config.members == ("a", "b", "c")
    with pytest.raises(BadInput, match="not a secure-aggregation advert"):
        KeyAdvert.from_bytes(b'{"format": "something-else"}')
    with pytest.raises(BadInput, match="malformed secure-aggregation shares"):
        ShareBundle.from_bytes(b"not json")
    with pytest.raises(BadInput, match="must be 32 bytes"):
        UnmaskRequest.from_bytes(
            b'{"format":"fedledger-secagg-unmask-request/1","context":"00","survivors":[],"dropouts":[]}'
        )
    with pytest.raises(BadInput, match="masked input is not a safetensors blob"):
        MaskedInput.from_bytes(b"\x00" * 4)


def test_masked_input_is_a_valid_update_blob_of_plaintext_size(identities: dict[str, MemberIdentity]) -> None:
    from fedledger.learning.update import encode_update

    names = _names(3)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=2)
    rnd = _run_to_masked(identities, config, ups, counts)
    blob = rnd.inputs[names[0]].to_bytes()
    plain = encode_update(ups[names[0]], {"frac_bits": "16", "num_examples": str(counts[names[0]])})
    assert len(blob) <= len(plain) + 256  # same tensor bytes; only the metadata grows
    decoded = validate_update(blob, {"w": (20, 5), "b": (5,)}, max_bytes=len(blob), frac_bits=16)
    assert decoded.num_examples == counts[names[0]]


# --- property tests on the masking arithmetic -------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=40),
    seeds=st.lists(st.binary(min_size=16, max_size=16), min_size=1, max_size=6),
)
def test_property_masking_is_a_one_time_pad_in_the_ring(values: list[int], seeds: list[bytes]) -> None:
    x = np.array(values, dtype=np.uint64)
    total = np.zeros_like(x)
    for seed in seeds:
        total += mask_from_seed(seed, x.size)
    masked = x + total
    assert np.array_equal(masked - total, x)  # exact inverse mod 2^64, whatever wraps


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(2, 7),
    length=st.integers(0, 50),
    data=st.data(),
)
def test_property_pairwise_masks_cancel_over_any_members(n: int, length: int, data: st.DataObject) -> None:
    from fedledger.privacy.secagg._masking import apply_pair_mask

    names = [f"m{i}" for i in range(n)]
    seeds = {(a, b): data.draw(st.binary(min_size=16, max_size=16)) for a in names for b in names if a < b}
    xs = {
        m: np.array(data.draw(st.lists(st.integers(0, 2**64 - 1), min_size=length, max_size=length)), dtype=np.uint64)
        for m in names
    }
    total = np.zeros(length, dtype=np.uint64)
    for m in names:
        y = xs[m].copy()
        for p in names:
            if p != m:
                apply_pair_mask(y, seeds[tuple(sorted((m, p)))], member=m, peer=p, sign=+1)
        total += y
    assert np.array_equal(total, sum((xs[m] for m in names), np.zeros(length, dtype=np.uint64)))


def test_prg_is_deterministic_and_distinct_per_seed() -> None:
    a, b = mask_from_seed(b"\x01" * 16, 1000), mask_from_seed(b"\x02" * 16, 1000)
    assert np.array_equal(a, mask_from_seed(b"\x01" * 16, 1000)) and not np.array_equal(a, b)
    assert np.array_equal(mask_from_seed(b"\x01" * 16, 10), a[:10])  # prefix-stable stream
    with pytest.raises(ValueError, match="16 bytes"):
        mask_from_seed(b"short", 3)


def test_recover_sum_rejects_shares_a_holder_cannot_have(identities: dict[str, MemberIdentity]) -> None:
    names = _names(4)
    ups, counts = _updates(names)
    config = RoundConfig(task="task", round_id=1, members=tuple(names), threshold=3)
    rnd = _run_to_masked(identities, config, ups, counts)
    reveals = _reveal_all(rnd)
    share = reveals[0].self_mask_shares[0]
    moved = dataclasses.replace(reveals[0], self_mask_shares=(dataclasses.replace(share, x=share.x + 1),))
    flat = np.zeros(105, dtype=np.uint64)
    with pytest.raises(BadInput, match="cannot hold"):
        recover_sum(
            config,
            {a.member: a for a in rnd.aggregator.adverts},
            flat,
            rnd.aggregator.unmask_request(),
            [moved, *reveals[1:]],
        )
    assert isinstance(rnd.aggregator.finish(), AggregateResult)
