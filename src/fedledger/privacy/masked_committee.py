"""The committee's side of the masked checks: one MPyC session that screens every member's shared update.

Each committee member runs :func:`run_checks` in its own MPyC runtime (``m`` parties,
threshold ``t = (m - 1) // 2``, honest majority) with its shares of every member's
update (:func:`fedledger.privacy.masked_checks.open_share`). What the session reveals:

1. per member, whether every committee member could open its shares, and each
   committee member's share of ``rho = r . s + z`` for a public random ``r`` and the
   member's secret blinding value ``z``: for an honest member ``rho`` is uniformly
   random (so nothing about the update), and the ``m`` shares lie on one polynomial of
   degree ``t``; if they do not, the member dealt shares that do not reconstruct and
   is named;
2. per member, ``e = sum r'_k b_k (b_k - 1)``: zero for bits, nonzero (except with
   probability ``1/p``) when some shared "bit" is not 0 or 1, which names the member;
3. per member, one bit: norm within the bound and direction within the threshold;
4. the example-weighted sum of the updates that passed.

``r`` and ``r'`` are expanded (SHAKE-256) from the round context and the sha256 of the
member's committed bundle, so they are fixed after the member committed and every
party derives the same ones. All sharing, multiplication, comparison and opening is
MPyC's (Shamir over a prime field; its secure comparisons are statistically secure
with its default security parameter); this module only composes them.

Trust: MPyC protects against a passive (honest-but-curious) minority of the committee.
A committee member that deviates (sends wrong shares of ``rho``, ``e`` or the bits)
can make a check fail or pass wrongly; members, in contrast, may deviate arbitrarily.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.privacy.masked_checks import CheckParams, MalformedShares, ObjectArray, OpenedShare

__all__ = ["CheckOutcome", "derive_challenge", "recheck_transcript", "run_checks"]

_CONSISTENCY = b"fedledger/masked-checks/consistency/1"
_BITS = b"fedledger/masked-checks/bits/1"


@dataclass
class CheckOutcome:
    """What the committee reveals: who passed, who was rejected and why, and the sum of the passing updates."""

    passed: list[str]
    rejected: dict[str, str]
    weighted_sum: npt.NDArray[np.int64]  # sum of examples * fixed-point update over ``passed``
    total_examples: int
    bytes_sent: int = 0
    # What the committee opened on the way, for an auditor: per member, each committee member's share of
    # the blinded combination rho (or its complaint), and the opened bit-check value e.
    transcript: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rejected": self.rejected,
            "weighted_sum": [int(v) for v in self.weighted_sum],
            "total_examples": self.total_examples,
            "bytes_sent": self.bytes_sent,
            "transcript": self.transcript,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CheckOutcome:
        return cls(
            passed=list(doc["passed"]),
            rejected=dict(doc["rejected"]),
            weighted_sum=np.array(doc["weighted_sum"], dtype=np.int64),
            total_examples=int(doc["total_examples"]),
            bytes_sent=int(doc.get("bytes_sent", 0)),
            transcript=dict(doc.get("transcript", {})),
        )


def derive_challenge(label: bytes, context: bytes, bundle_hash: bytes, count: int, params: CheckParams) -> ObjectArray:
    """``count`` public field elements from SHAKE-256 of (label, round context, bundle hash)."""
    width = params.element_bytes + 16  # 128 extra bits make the reduction mod p statistically uniform
    stream = hashlib.shake_256(label + context + bundle_hash).digest(count * width)
    p = params.modulus
    return np.array(
        [int.from_bytes(stream[i : i + width], "little") % p for i in range(0, len(stream), width)], dtype=object
    )


def _on_one_polynomial(points: list[tuple[int, int]], degree: int, field: Any) -> bool:
    """Whether the points ``(x, y)`` lie on one polynomial of the given degree (MPyC's Lagrange recombination)."""
    from mpyc import thresha

    base, rest = points[: degree + 1], points[degree + 1 :]
    if not rest:
        return True
    predicted = thresha.recombine(field, [(x, [field(y)]) for x, y in base], [x for x, _ in rest])
    return all(int(p[0].value) % field.modulus == y for p, (_, y) in zip(predicted, rest, strict=True))


def _local_view(
    params: CheckParams, context: bytes, members: list[str], opened: Mapping[str, OpenedShare | MalformedShares]
) -> list[tuple[str, int]]:
    """This party's verdict per member: ``("", share of rho)`` or ``(reason, 0)``."""
    view = []
    for member in members:
        item = opened[member]
        if isinstance(item, MalformedShares):
            view.append((item.reason, 0))
            continue
        challenge = derive_challenge(_CONSISTENCY, context, item.bundle_hash, params.shared_length - 1, params)
        rho = (int(np.dot(challenge, item.shares[:-1])) + int(item.shares[-1])) % params.modulus
        view.append(("", rho))
    return view


def _consistent_members(
    params: CheckParams, members: list[str], views: list[list[tuple[str, int]]], field: Any, rejected: dict[str, str]
) -> list[str]:
    kept = []
    for index, member in enumerate(members):
        reasons = [f"committee member {party}: {view[index][0]}" for party, view in enumerate(views) if view[index][0]]
        if reasons:
            rejected[member] = "malformed shares (" + "; ".join(reasons) + ")"
            continue
        points = [(party + 1, view[index][1]) for party, view in enumerate(views)]
        if not _on_one_polynomial(points, params.threshold, field):
            rejected[member] = "shares do not reconstruct (not on one polynomial of the sharing degree)"
            continue
        kept.append(member)
    return kept


async def run_checks(
    mpc: Any,
    params: CheckParams,
    context: bytes,
    opened: Mapping[str, OpenedShare | MalformedShares],
    reference: ObjectArray | None,
) -> CheckOutcome:
    """Screen every member in ``opened`` (this party's shares, or why they could not be opened) with the committee.

    ``mpc`` is a started MPyC runtime with ``params.committee`` parties; every party calls this with the same
    members, parameters, context and reference. Returns the same :class:`CheckOutcome` at every party.
    """
    secint = mpc.SecInt(params.value_bits, p=params.modulus)
    fld = secint.field
    p = params.modulus
    members = sorted(opened)
    rejected: dict[str, str] = {}

    views = await mpc.transfer(_local_view(params, context, members, opened))
    candidates = _consistent_members(params, members, views, fld, rejected)
    transcript: dict[str, Any] = {
        "consistency": {m: [[view[i][0], view[i][1]] for view in views] for i, m in enumerate(members)},
        "bit_errors": {},
    }

    # Rebuild each x_k = sum_i 2^i b_ki - 2^(L-1) on the shares (linear, no communication); check the bits.
    powers = np.array([1 << i for i in range(params.bits)], dtype=object)
    coords: dict[str, ObjectArray] = {}
    bit_errors = []
    for member in candidates:
        item = opened[member]
        if not isinstance(item, OpenedShare):  # excluded above; keeps the type checker informed
            continue
        bits = item.shares[:-1]
        coords[member] = (bits.reshape(params.length, params.bits) @ powers - params.offset) % p
        challenge = derive_challenge(_BITS, context, item.bundle_hash, bits.size, params)
        weighted = secint.array(fld.array((challenge * bits) % p))
        shared_bits = secint.array(fld.array(bits))
        linear = int(np.dot(challenge, bits)) % p
        bit_errors.append(weighted @ shared_bits - secint(fld(linear)))
    opened_errors = await mpc.output(bit_errors) if bit_errors else []
    in_range = []
    for member, error in zip(candidates, opened_errors, strict=True):
        transcript["bit_errors"][member] = int(error) % p
        if int(error) != 0:
            rejected[member] = "shared bits are not all 0 or 1 (an update outside the fixed-point range)"
        else:
            in_range.append(member)

    decisions = [_decision(mpc, secint, params, coords[member], reference) for member in in_range]
    bits_out = await mpc.output(decisions) if decisions else []
    passed = []
    for member, bit in zip(in_range, bits_out, strict=True):
        if int(bit) == 1:
            passed.append(member)
        else:
            rejected[member] = "failed the norm or direction check"

    weighted_sum, total = await _sum_passing(mpc, secint, params, passed, coords, opened)
    sent = sum(peer.protocol.nbytes_sent for peer in mpc.parties if peer.pid != mpc.pid and peer.protocol)
    return CheckOutcome(
        passed=passed,
        rejected=rejected,
        weighted_sum=weighted_sum,
        total_examples=total,
        bytes_sent=sent,
        transcript=transcript,
    )


def recheck_transcript(outcome: CheckOutcome, params: CheckParams) -> list[str]:
    """What an auditor can re-derive without any secret: the verdicts on shares, from the opened transcript.

    Returns the disagreements (empty when the published verdicts follow from the transcript): a member
    named for shares that do not reconstruct must have ``rho`` shares off one polynomial of the sharing
    degree, a member named for its bits a nonzero bit-check value, and a passing member neither. The
    pass bits themselves and the sum come from the MPC and rest on the committee's honest majority.
    """
    fld = params.field()
    problems = []
    consistency = outcome.transcript.get("consistency", {})
    bit_errors = outcome.transcript.get("bit_errors", {})
    for member in sorted(set(outcome.passed) | set(outcome.rejected)):
        views = consistency.get(member)
        if views is None or len(views) != params.committee:
            problems.append(f"{member}: no consistency shares from every committee member")
            continue
        complaints = [reason for reason, _ in views if reason]
        reason = outcome.rejected.get(member, "")
        if complaints:
            if not reason.startswith("malformed shares"):
                problems.append(f"{member}: committee complaints {complaints} but verdict {reason or 'passed'!r}")
            continue
        on_polynomial = _on_one_polynomial(
            [(party + 1, int(rho)) for party, (_, rho) in enumerate(views)], params.threshold, fld
        )
        if on_polynomial == reason.startswith("shares do not reconstruct"):
            problems.append(f"{member}: consistency shares do not support the verdict {reason or 'passed'!r}")
            continue
        if not on_polynomial:
            continue
        error = bit_errors.get(member)
        if error is None or (error != 0) != reason.startswith("shared bits"):
            problems.append(f"{member}: bit-check value {error!r} does not support the verdict {reason or 'passed'!r}")
    return problems


def _decision(mpc: Any, secint: Any, params: CheckParams, coords: ObjectArray, reference: ObjectArray | None) -> Any:
    """The secure pass bit of one update: norm within the bound and, with a reference, direction within tau."""
    fld = secint.field
    x = secint.array(fld.array(coords))
    norm2 = x @ x
    ok = norm2 <= params.bound_units**2
    if reference is None:
        return ok
    dot = secint(fld(int(np.dot(reference, coords)) % params.modulus))  # public reference: a local linear map
    ref2 = int(sum(int(r) * int(r) for r in reference))
    numerator, denominator = params.cosine_ratio
    aligned = dot >= 0
    close = denominator * dot * dot - numerator * ref2 * norm2 >= 0
    return ok * aligned * close


async def _sum_passing(
    mpc: Any,
    secint: Any,
    params: CheckParams,
    passed: list[str],
    coords: Mapping[str, ObjectArray],
    opened: Mapping[str, OpenedShare | MalformedShares],
) -> tuple[npt.NDArray[np.int64], int]:
    total = 0
    acc = np.zeros(params.length, dtype=object)
    for member in passed:
        item = opened[member]
        examples = item.examples if isinstance(item, OpenedShare) else 0
        acc = (acc + examples * coords[member]) % params.modulus
        total += examples
    if not passed:
        return np.zeros(params.length, dtype=np.int64), 0
    revealed = await mpc.output(secint.array(secint.field.array(acc)))
    values = np.array([int(v) for v in revealed], dtype=object)
    return values.astype(np.int64), total
