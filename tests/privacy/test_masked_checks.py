"""Validity checks on secret-shared updates: a 3-member MPyC committee run as three OS processes."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mpyc")

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from fedledger.exceptions import BadInput, ConfigError  # noqa: E402
from fedledger.privacy.masked_checks import (  # noqa: E402
    CheckParams,
    MalformedShares,
    open_share,
    plain_decision,
    quantize_reference,
    seal_shares,
    share_update,
    split_shares,
    to_fixed,
)
from fedledger.privacy.masked_committee import CheckOutcome, recheck_transcript, sketch_decision  # noqa: E402
from fedledger.privacy.masked_party import (  # noqa: E402
    collect_result,
    free_base_port,
    launch_committee,
    start_party,
    write_job,
)
from fedledger.privacy.masked_shares import SEED_BYTES, DealtShares, from_words, to_words  # noqa: E402
from helpers.masked import sealed_bundles  # noqa: E402

D = 1000
PARAMS = CheckParams(length=D, norm_bound=1.0, min_cosine=0.2)
CONTEXT = bytes(range(32))
EXAMPLES = {
    "honest-a": 30,
    "honest-b": 20,
    "edge": 12,
    "scaled": 25,
    "flipped": 10,
    "wide": 5,
    "inconsistent": 7,
    "reseeded": 6,
    "garbled": 8,
}


def _bump(shares: DealtShares, party: int, index: int) -> None:
    """Add one to committee member ``party``'s share of coordinate ``index`` (an explicit share vector)."""
    row = shares.rows[party - shares.threshold]
    value = (int(from_words(row[index : index + 1])[0]) + 1) % PARAMS.modulus
    row[index] = to_words(np.array([value], dtype=object), row.shape[1])[0]


def _updates() -> tuple[np.ndarray[Any, Any], dict[str, np.ndarray[Any, Any]]]:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=D)
    direction = reference / np.linalg.norm(reference)

    def honest(norm: float) -> np.ndarray[Any, Any]:
        noise = rng.normal(size=D)
        return direction * norm + noise / np.linalg.norm(noise) * 0.3 * norm

    edge = honest(1.0)
    return reference, {
        "honest-a": honest(0.6),
        "honest-b": honest(0.9),
        "edge": edge / np.linalg.norm(edge) * 0.99,  # an honest update just inside the bound
        "scaled": honest(0.6) * 5.0,  # same direction, norm 3.1 > 1
        "flipped": -honest(0.6),  # within the norm bound, opposite direction
    }


@pytest.fixture(scope="module")
def committee(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    reference, updates = _updates()
    keys, publics, bundles = sealed_bundles(PARAMS, updates, EXAMPLES, CONTEXT)
    # A wrap-around attempt: two coordinates of (p + 1) / 2, i.e. "1/2" modulo p. Every +-1 projection of it is
    # small, so only projections with entries in {-1, 0, 1} (at least one half of them leaving the window) catch it.
    wide = to_fixed(updates["honest-a"], PARAMS).astype(object)
    wide[5] = wide[6] = (PARAMS.modulus + 1) // 2
    bundles["wide"] = seal_shares(
        split_shares(wide, PARAMS), PARAMS, member="wide", examples=5, context=CONTEXT, committee_keys=publics
    )
    # A member whose shares for committee member 2 are off by one: they do not lie on one polynomial.
    shares = split_shares(to_fixed(updates["honest-b"], PARAMS), PARAMS)
    _bump(shares, 2, 17)
    bundles["inconsistent"] = seal_shares(
        shares, PARAMS, member="inconsistent", examples=7, context=CONTEXT, committee_keys=publics
    )
    # A member that sends committee member 0 another seed than the one its other shares were interpolated from.
    shares = split_shares(to_fixed(updates["honest-b"], PARAMS), PARAMS)
    reseeded = DealtShares((os.urandom(SEED_BYTES),) + shares.seeds[1:], shares.rows)
    bundles["reseeded"] = seal_shares(
        reseeded, PARAMS, member="reseeded", examples=6, context=CONTEXT, committee_keys=publics
    )
    # A member whose ciphertext for committee member 2 is corrupted in the store.
    garbled = bytearray(
        share_update(updates["honest-a"], PARAMS, member="garbled", examples=8, context=CONTEXT, committee_keys=publics)
    )
    garbled[-10] ^= 0xFF  # inside the last ciphertext (committee member 2's)
    bundles["garbled"] = bytes(garbled)

    def job(name: str, timeout: float) -> Path:
        return write_job(
            tmp_path_factory.mktemp(name),
            PARAMS,
            context=CONTEXT,
            bundles=bundles,
            reference=reference,
            keys=keys,
            timeout=timeout,
        )

    # Two committees at once, so their timeouts overlap: one whose member 2 never starts, and one whose member 2
    # stops (SIGSTOP) right after connecting, in the middle of the session.
    never, stalled = job("never", 15.0), job("stalled", 15.0)
    base = free_base_port(2 * PARAMS.committee)
    never_procs = {i: start_party(never, i, base) for i in (0, 1)}
    stalled_procs = {i: start_party(stalled, i, base + PARAMS.committee) for i in range(PARAMS.committee)}
    stopped = stalled_procs[2]
    assert stopped.stdout is not None
    while (line := stopped.stdout.readline()) and line.strip() != b"connected":
        pass
    os.kill(stopped.pid, signal.SIGSTOP)
    aborted = [collect_result(never, i, never_procs[i], 120) for i in (0, 1)]
    stalled_results = [collect_result(stalled, i, stalled_procs[i], 120) for i in (0, 1)]
    stopped.kill()
    stopped.wait()
    # The next attempt with every committee member present runs to the end.
    results = launch_committee(job("full", 120.0), wait=300)
    return {
        "aborted": aborted,
        "stalled": stalled_results,
        "connected_line": line,
        "results": results,
        "updates": updates,
        "reference": reference,
        "bundles": bundles,
        "keys": keys,
    }


def test_every_committee_member_reveals_the_same_outcome(committee: dict[str, Any]) -> None:
    results = committee["results"]
    assert [r["status"] for r in results] == ["ok"] * PARAMS.committee, results
    outcomes = [{k: v for k, v in r["outcome"].items() if k in ("passed", "rejected", "weighted_sum")} for r in results]
    assert outcomes[1:] == outcomes[:1] * (PARAMS.committee - 1)


def test_honest_updates_pass_and_bad_ones_fail(committee: dict[str, Any]) -> None:
    outcome = committee["results"][0]["outcome"]
    assert outcome["passed"] == ["edge", "honest-a", "honest-b"]
    assert outcome["rejected"]["scaled"] == "failed the norm or direction check"
    assert outcome["rejected"]["flipped"] == "failed the norm or direction check"
    # The committee's bits are exactly its rule computed in clear from the round's seed, and here (updates well
    # inside or outside the bound) the exact norm and cosine rule too; the committee computes neither in clear.
    reference = quantize_reference(committee["reference"], PARAMS)
    seed = bytes.fromhex(outcome["transcript"]["seed"])
    for member, update in committee["updates"].items():
        fixed = to_fixed(update, PARAMS)
        assert sketch_decision(fixed, PARAMS, reference, seed) == (member in outcome["passed"]), member
        assert plain_decision(fixed, PARAMS, reference) == (member in outcome["passed"]), member


def test_a_wrap_around_attempt_is_rejected(committee: dict[str, Any]) -> None:
    outcome = committee["results"][0]["outcome"]
    assert outcome["rejected"]["wide"] == "failed the norm or direction check"


def test_each_bad_check_fails_for_its_own_reason() -> None:
    reference, updates = _updates()
    ref = quantize_reference(reference, PARAMS)
    loose_norm = CheckParams(length=D, norm_bound=100.0, min_cosine=0.2)
    no_direction = CheckParams(length=D, norm_bound=1.0, min_cosine=None)
    assert plain_decision(
        to_fixed(updates["scaled"], loose_norm), loose_norm, quantize_reference(reference, loose_norm)
    )
    assert not plain_decision(to_fixed(updates["scaled"], PARAMS), PARAMS, ref)
    assert plain_decision(to_fixed(updates["flipped"], no_direction), no_direction, None)
    assert not plain_decision(to_fixed(updates["flipped"], PARAMS), PARAMS, ref)


def test_revealed_aggregate_is_the_weighted_sum_of_passing_updates(committee: dict[str, Any]) -> None:
    outcome = committee["results"][0]["outcome"]
    updates = committee["updates"]
    expected = sum(EXAMPLES[m] * to_fixed(updates[m], PARAMS) for m in ("edge", "honest-a", "honest-b"))
    assert np.array_equal(np.array(outcome["weighted_sum"], dtype=np.int64), expected)
    assert outcome["total_examples"] == EXAMPLES["edge"] + EXAMPLES["honest-a"] + EXAMPLES["honest-b"]
    mean = np.array(outcome["weighted_sum"]) / outcome["total_examples"] / 2**PARAMS.frac_bits
    plain_mean = (12 * updates["edge"] + 30 * updates["honest-a"] + 20 * updates["honest-b"]) / 62
    assert np.max(np.abs(mean - plain_mean)) <= 2**-PARAMS.frac_bits


def test_inconsistent_and_garbled_shares_name_the_member(committee: dict[str, Any]) -> None:
    rejected = committee["results"][0]["outcome"]["rejected"]
    assert rejected["inconsistent"] == "shares do not reconstruct (not on one polynomial of the sharing degree)"
    assert rejected["reseeded"] == "shares do not reconstruct (not on one polynomial of the sharing degree)"
    assert rejected["garbled"] == "malformed shares (committee member 2: shares for committee member 2 do not decrypt)"


def test_an_auditor_rechecks_the_share_verdicts_from_the_transcript(committee: dict[str, Any]) -> None:
    outcome = CheckOutcome.from_dict(committee["results"][0]["outcome"])
    assert recheck_transcript(outcome, PARAMS) == []
    # A committee that passed the member with inconsistent shares, or chose its projections after the fact, is caught.
    forged = CheckOutcome.from_dict(committee["results"][0]["outcome"])
    del forged.rejected["inconsistent"]
    forged.passed.append("inconsistent")
    forged.transcript["seed"] = "00" * 32
    problems = recheck_transcript(forged, PARAMS)
    assert len(problems) == 2
    assert problems[0].startswith("seed does not follow")
    assert problems[1].startswith("inconsistent: consistency shares do not support the verdict 'passed'")


@pytest.mark.parametrize("case", ["aborted", "stalled"])
def test_a_silent_committee_member_aborts_the_checks_by_name(committee: dict[str, Any], case: str) -> None:
    if case == "stalled":
        assert committee["connected_line"].strip() == b"connected"  # it stopped mid-session, not before
    for result in committee[case]:
        assert result["status"] == "aborted"
        assert result["parties"] == [2]
        assert "committee member(s) 2 stopped answering" in result["reason"]
        assert "no result was published" in result["reason"]


def _one_bundle(**changes: Any) -> tuple[bytes, X25519PrivateKey]:
    key = X25519PrivateKey.generate()
    publics = [key.public_key().public_bytes_raw()] + [
        X25519PrivateKey.generate().public_key().public_bytes_raw() for _ in range(2)
    ]
    args: dict[str, Any] = {"member": "m", "examples": 3, "context": CONTEXT, "committee_keys": publics}
    args.update(changes)
    return share_update(np.zeros(D), PARAMS, **args), key


def _open(bundle: bytes, key: X25519PrivateKey, **changes: Any) -> Any:
    args: dict[str, Any] = {"member": "m", "context": CONTEXT, "party": 0, "private_key": key}
    args.update(changes)
    return open_share(bundle, PARAMS, **args)


def test_open_share_reads_back_what_the_member_shared() -> None:
    bundle, key = _one_bundle()
    opened = _open(bundle, key)
    assert opened.examples == 3 and len(opened.shares) == PARAMS.shared_length
    # Each committee member reads exactly its share vector: the seeded one its seed's expansion, the others theirs.
    shares = split_shares(np.arange(-D // 2, D // 2, dtype=np.int64), PARAMS)
    publics = [key.public_key().public_bytes_raw()] * PARAMS.committee
    bundle = seal_shares(shares, PARAMS, member="m", examples=1, context=CONTEXT, committee_keys=publics)
    for party in range(PARAMS.committee):
        opened = _open(bundle, key, party=party)
        assert np.array_equal(opened.shares, shares.party_words(party, PARAMS.modulus)), party
    sizes = json.loads(bundle.partition(b"\n")[0])["sizes"]
    assert sizes[0] == SEED_BYTES + 28  # nonce and tag around the seed
    assert sizes[1] == sizes[2] == PARAMS.shared_length * PARAMS.wire_bytes + 28


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b[: b.index(b"\n")], "no header line"),
        (lambda b: b"{not json\n" + b, "header is not JSON"),
        (lambda b: b[:-1], "sizes do not add up"),
        (lambda b: b[:-5] + bytes(x ^ 1 for x in b[-5:]), None),  # party 2's ciphertext: party 0 still opens
        (lambda b: b.replace(b'"examples":3', b'"examples":-3'), "not a positive integer"),
        (lambda b: b.replace(b'"member":"m"', b'"member":"x"'), "another member or round"),
    ],
)
def test_malformed_bundles_are_named_rejections(mutate: Any, reason: str | None) -> None:
    bundle, key = _one_bundle()
    bad = mutate(bundle)
    if reason is None:
        _open(bad, key)
        return
    with pytest.raises(MalformedShares, match=reason) as info:
        _open(bad, key)
    assert info.value.member == "m"


def test_a_ciphertext_for_another_key_or_round_does_not_open() -> None:
    bundle, key = _one_bundle()
    with pytest.raises(MalformedShares, match="do not decrypt"):
        _open(bundle, X25519PrivateKey.generate())
    header, _, body = bundle.partition(b"\n")
    doc = json.loads(header)
    doc["context"] = os.urandom(32).hex()
    with pytest.raises(MalformedShares, match="do not decrypt"):
        open_share(
            json.dumps(doc).encode() + b"\n" + body,
            PARAMS,
            member="m",
            context=bytes.fromhex(doc["context"]),
            party=0,
            private_key=key,
        )


def test_a_share_outside_the_field_is_named() -> None:
    key = X25519PrivateKey.generate()
    publics = [key.public_key().public_bytes_raw()] * PARAMS.committee
    shares = split_shares(np.zeros(D, dtype=np.int64), PARAMS)
    shares.rows[-1][3] = to_words(np.array([PARAMS.modulus], dtype=object), PARAMS.element_bytes // 4)[0]
    bundle = seal_shares(shares, PARAMS, member="m", examples=1, context=CONTEXT, committee_keys=publics)
    with pytest.raises(MalformedShares, match="not a field element"):  # fits the width, but is not below p
        _open(bundle, key, party=PARAMS.committee - 1)
    short = DealtShares((b"short",), shares.rows)  # a seed of the wrong length for committee member 0
    bundle = seal_shares(short, PARAMS, member="m", examples=1, context=CONTEXT, committee_keys=publics)
    with pytest.raises(MalformedShares, match="wrong length"):
        _open(bundle, key, party=0)


def test_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="honest-majority"):
        CheckParams(length=10, norm_bound=1.0, committee=2)
    with pytest.raises(ConfigError, match="minimum cosine"):
        CheckParams(length=10, norm_bound=1.0, min_cosine=1.0)
    with pytest.raises(BadInput, match="update has 3 values"):
        share_update(np.zeros(3), PARAMS, member="m", examples=1, context=CONTEXT, committee_keys=[b""] * 3)
    with pytest.raises(ConfigError, match="multiple of 4"):
        CheckParams(length=10, norm_bound=1.0, projections=66)
    # Any projection outside the window [-W, W] alone exceeds the norm threshold: the wrap-around argument.
    window = PARAMS.coordinate_bound // 2
    assert window**2 > PARAMS.norm_threshold
    assert quantize_reference(np.zeros(D), PARAMS) is None


def test_bundle_is_what_the_member_commits() -> None:
    bundle, key = _one_bundle()
    assert _open(bundle, key).bundle_hash == hashlib.sha256(bundle).digest()


def test_importing_mpyc_for_a_member_leaves_the_host_process_alone() -> None:
    # MPyC parses sys.argv, configures logging and installs uvloop when imported; a member's process must not
    # notice (a host run with -W error would otherwise exit, and every later asyncio user would get uvloop).
    code = (
        "import asyncio, logging, sys; sys.argv = ['host', '-W', 'error']; "
        "policy = type(asyncio.get_event_loop_policy()); "
        "from fedledger.privacy.masked_checks import CheckParams; CheckParams(length=4, norm_bound=1.0).field(); "
        "assert type(asyncio.get_event_loop_policy()) is policy and not logging.getLogger().handlers; "
        "assert sys.argv == ['host', '-W', 'error']; print('ok')"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "ok", done.stderr
