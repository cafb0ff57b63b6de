"""The committee's side of the masked checks: one MPyC session that screens every member's shared update.

Each committee member runs :func:`run_checks` in its own MPyC runtime (``m`` parties,
threshold ``t = (m - 1) // 2``, honest majority) with its shares of every member's
update (:func:`fedledger.privacy.masked_checks.open_share`). The session:

1. exchanges, per member, whether every committee member could open its shares, and
   one fresh 32-byte contribution per committee member; the projections' seed is the
   hash of the round context, the contributions and the committed bundle hashes
   (:func:`~fedledger.privacy.masked_sketch.derive_seed`), so it was unknown when the
   members committed;
2. computes, locally on the shares, the ``k`` projections ``y_j = <a_j, x>`` and the
   inner product with the public reference (exact vectorised linear algebra, no
   communication), and opens each committee member's share of ``rho = c . y + z`` for
   public random ``c`` and the member's secret blinding value ``z``: for an honest
   member ``rho`` is uniformly random, and the ``m`` shares lie on one polynomial of
   degree ``t``; if they do not, the member dealt shares that do not reconstruct and is
   named (an inconsistency in ``x`` survives the projections with probability ``2^-k``);
3. converts the ``k + 1`` values per member to a larger MPyC ``SecInt`` (MPyC's
   statistical conversion), squares and sums the projections, and compares: norm
   ``S <= T``, and with a public reference ``dot >= 0`` and ``D k dot^2 >= 2 N |ref|^2 S``;
   with the committee's own references (``params.reference == "committee"``) each committee
   member instead inputs its projected reference privately and the direction is a strict
   majority of their votes (:mod:`fedledger.privacy.masked_reference`); reveals one bit per
   member;
4. reveals the example-weighted sum of the updates that passed, or with ``params.clip_radius`` the sums of
   centered clipping around a public center (:mod:`fedledger.privacy.masked_clipping`).

All sharing, multiplication, conversion, comparison and opening is MPyC's (Shamir over a
prime field; its conversions and comparisons are statistically secure with its default
security parameter); this module only composes them.

Trust: MPyC protects against a passive (honest-but-curious) minority of the committee.
A committee member that deviates (sends wrong shares of ``rho`` or of the comparisons)
can make a check fail or pass wrongly; members, in contrast, may deviate arbitrarily.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import ConfigError
from fedledger.privacy.masked_checks import CheckParams, CommitteeAbort, MalformedShares, ObjectArray, OpenedShare
from fedledger.privacy.masked_clipping import clip_and_sum
from fedledger.privacy.masked_reference import committee_pass_bits, project_reference, project_update, square_norms
from fedledger.privacy.masked_shares import centred_int64, interpolate, pack_words, unpack_words, weighted_sum
from fedledger.privacy.masked_sketch import derive_seed, project, project_exact

__all__ = ["CheckOutcome", "derive_challenge", "recheck_transcript", "run_checks", "sketch_decision"]

_CONSISTENCY = b"fedledger/masked-checks/consistency/1"
_CONTRIBUTION_BYTES = 32


@dataclass
class CheckOutcome:
    """What the committee reveals: who passed, who was rejected and why, and the sum of the passing updates."""

    passed: list[str]
    rejected: dict[str, str]
    weighted_sum: npt.NDArray[np.int64]  # sum of examples * fixed-point update over ``passed`` (with clipping,
    # sum of examples * clip level * update)
    total_examples: int
    bytes_sent: int = 0
    clip_weight: int | None = None  # with clipping: sum of examples * clip level over ``passed``
    # What the committee opened on the way, for an auditor: the round context, every committee member's seed
    # contribution, the bundle hashes the seed binds, the seed, and per member each committee member's share
    # of the blinded combination rho (or its complaint).
    transcript: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        doc = {
            "passed": self.passed,
            "rejected": self.rejected,
            "weighted_sum": self.weighted_sum.tolist(),
            "total_examples": self.total_examples,
            "bytes_sent": self.bytes_sent,
            "transcript": self.transcript,
        }
        if self.clip_weight is not None:
            doc["clip_weight"] = self.clip_weight
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> CheckOutcome:
        return cls(
            passed=list(doc["passed"]),
            rejected=dict(doc["rejected"]),
            weighted_sum=np.array(doc["weighted_sum"], dtype=np.int64),
            total_examples=int(doc["total_examples"]),
            bytes_sent=int(doc.get("bytes_sent", 0)),
            transcript=dict(doc.get("transcript", {})),
            clip_weight=None if doc.get("clip_weight") is None else int(doc["clip_weight"]),
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


@dataclass
class _Round:
    """One party's working state between the steps of :func:`run_checks`."""

    params: CheckParams
    context: bytes
    members: list[str]
    rejected: dict[str, str] = field(default_factory=dict)
    transcript: dict[str, Any] = field(default_factory=dict)


def _complaints(opened: Mapping[str, OpenedShare | MalformedShares], members: list[str]) -> list[str]:
    return [item.reason if isinstance(item, MalformedShares) else "" for item in (opened[m] for m in members)]


def _rho_shares(params: CheckParams, seed: bytes, projections: list[list[int]], items: list[OpenedShare]) -> list[int]:
    """This party's share of ``rho = c . y + z`` per member: ``c`` public from the seed, ``z`` the blinding value."""
    p = params.modulus
    out = []
    for sketch, item in zip(projections, items, strict=True):
        challenge = derive_challenge(_CONSISTENCY, seed, item.member.encode(), len(sketch), params)
        blinding = sum(int(w) << (32 * i) for i, w in enumerate(item.shares[-1]))
        out.append((int(np.dot(challenge, np.array(sketch, dtype=object))) + blinding) % p)
    return out


def _consistent(params: CheckParams, state: _Round, candidates: list[str], views: list[list[int]]) -> list[str]:
    field_ = params.field()
    kept = []
    for index, member in enumerate(candidates):
        points = [(party + 1, int(view[index])) for party, view in enumerate(views)]
        state.transcript["consistency"][member] = [["", y] for _, y in points]
        if _on_one_polynomial(points, params.threshold, field_):
            kept.append(member)
        else:
            state.rejected[member] = "shares do not reconstruct (not on one polynomial of the sharing degree)"
    return kept


async def run_checks(
    mpc: Any,
    params: CheckParams,
    context: bytes,
    opened: Mapping[str, OpenedShare | MalformedShares],
    reference: ObjectArray | None,
    center: npt.NDArray[np.int64] | None = None,
) -> CheckOutcome:
    """Screen every member in ``opened`` (this party's shares, or why they could not be opened) with the committee.

    ``mpc`` is a started MPyC runtime with ``params.committee`` parties; every party calls this with the same
    members, parameters and context, and with the same public reference, or with ``params.reference ==
    "committee"`` its own quantized reference (its private input). With ``params.clip_radius``, ``center`` is
    the public fixed-point center of the clipping (``None``: zero), the same at every party. Returns the same
    :class:`CheckOutcome` at every party.
    """
    state = _Round(params, context, sorted(opened))
    contribution = os.urandom(_CONTRIBUTION_BYTES).hex()
    first = await mpc.transfer([contribution, _complaints(opened, state.members)])
    contributions = [str(view[0]) for view in first]
    candidates = []
    state.transcript.update(context=context.hex(), contributions=contributions, consistency={}, bundle_hashes={})
    for index, member in enumerate(state.members):
        reasons = [f"committee member {party}: {view[1][index]}" for party, view in enumerate(first) if view[1][index]]
        if reasons:
            state.rejected[member] = "malformed shares (" + "; ".join(reasons) + ")"
            state.transcript["consistency"][member] = [[view[1][index], 0] for view in first]
        else:
            candidates.append(member)
    items = [opened[m] for m in candidates]
    shares = [item.shares for item in items if isinstance(item, OpenedShare)]  # every candidate opened everywhere
    hashes = {item.member: item.bundle_hash for item in items if isinstance(item, OpenedShare)}
    state.transcript["bundle_hashes"] = {m: h.hex() for m, h in hashes.items()}
    seed = derive_seed(context, contributions, hashes)
    state.transcript["seed"] = seed.hex()
    private = params.reference == "committee" and params.min_cosine is not None
    public = None if (private or reference is None) else np.asarray(reference, dtype=np.int64)  # |entries| <= 2^16
    k = params.projections
    rows = project([s[:-1] for s in shares], seed, k, params.modulus, public)  # k projections, then <ref, x>
    opened_items = [item for item in items if isinstance(item, OpenedShare)]
    views = await mpc.transfer(_rho_shares(params, seed, [row[:k] for row in rows], opened_items))
    kept = _consistent(params, state, candidates, views)
    keep = [candidates.index(m) for m in kept]
    own = project_reference(reference, seed, params) if private else None
    bits, y = await _decide(mpc, params, [rows[i] for i in keep], public, own) if keep else ([], None)
    passed = []
    for member, bit in zip(kept, bits, strict=True):
        if int(bit) == 1:
            passed.append(member)
        else:
            state.rejected[member] = "failed the norm or direction check"
    chosen = [shares[candidates.index(m)] for m in passed]
    examples = [item.examples for item in opened_items if item.member in passed]
    passing_y = y[[kept.index(m) for m in passed]] if passed and y is not None else None
    weighted_sum, clip_weight = await _reveal(mpc, params, seed, passing_y, chosen, examples, center)
    sent = sum(peer.protocol.nbytes_sent for peer in mpc.parties if peer.pid != mpc.pid and peer.protocol)
    return CheckOutcome(
        passed=passed,
        rejected=state.rejected,
        weighted_sum=weighted_sum,
        total_examples=sum(examples),
        bytes_sent=sent,
        transcript=state.transcript,
        clip_weight=clip_weight,
    )


async def _convert(mpc: Any, small: Any, big: Any, shares: ObjectArray) -> Any:
    """This party's ``shares`` of ``small`` secure ints as a secure array of type ``big``.

    MPyC's statistical conversion (``Runtime._convert`` for secure integers, with pseudorandom secret sharing), done
    on arrays: open ``x + 2^(l-1) + r`` in the small field for a random ``r`` shared in both fields, subtract ``r``
    in the big one. MPyC's own ``convert`` takes a list and spends most of its time on one object per element.
    """
    if mpc.options.no_prss:
        return mpc.np_fromlist(mpc.convert([small(small.field(v)) for v in shares], big))
    from mpyc import thresha

    m, t, n = len(mpc.parties), mpc.threshold, shares.size
    bits = min(small.bit_length, big.bit_length)
    prfs = mpc.prfs((1 << (mpc.options.sec_param + bits)) // math.comb(m, t) + 1)
    common = mpc._prss_uci()  # one common input for both fields: shares of the same r
    small_r = thresha.np_pseudorandom_share(small.field, m, mpc.pid, prfs, common, n)
    big_r = thresha.np_pseudorandom_share(big.field, m, mpc.pid, prfs, common, n)
    offset = 1 << (bits - 1)
    opened = await mpc.output(small.field.array(shares) + offset + small_r)
    return big.array(big.field.array(opened.value) - big_r) - offset


async def _decide(
    mpc: Any,
    params: CheckParams,
    rows: list[list[int]],
    reference: npt.NDArray[np.int64] | None,
    own: list[int] | None,
) -> tuple[list[int], Any]:
    """The secure pass bit per member from its ``rows`` (``k`` projections, then the inner product with the public
    ``reference`` where there is one): norm ``S <= T`` and, with the public reference or this committee member's
    own projected reference ``own``, direction within tau; and the members' secure projections (``members x k`` in
    the comparison type), which centered clipping reuses."""
    small = mpc.SecInt(params.small_bits, p=params.modulus)
    big = mpc.SecInt(params.big_bits)
    k = params.projections
    width = len(rows[0])
    flat = np.array([v for row in rows for v in row], dtype=object)  # this party's shares
    values = (await _convert(mpc, small, big, flat)).reshape(len(rows), width)
    y = values[:, :k]
    total = square_norms(mpc, y)
    ok = mpc.np_sgn(total - (params.norm_threshold + 1), LT=True)  # 1 exactly when S <= T
    if own is not None:
        ok = committee_pass_bits(mpc, params, big, y, total, ok, own)
    elif reference is not None:
        dot = values[:, k]
        ref2 = int(np.dot(reference, reference))  # below 2^53: the reference has L2 norm about 2^16
        numerator, denominator = params.cosine_ratio
        ok = ok * (1 - mpc.np_sgn(dot, l=params.small_bits, LT=True))  # dot >= 0
        if numerator:  # at a minimum cosine of 0 the sign is the whole check
            gap = denominator * k * dot * dot - 2 * numerator * ref2 * total
            ok = ok * (1 - mpc.np_sgn(gap, l=params.direction_bits, LT=True))
    return [int(v) for v in await mpc.output(ok)], y


async def _reveal(
    mpc: Any,
    params: CheckParams,
    seed: bytes,
    y: Any,
    shares: list[npt.NDArray[np.uint32]],
    examples: list[int],
    center: npt.NDArray[np.int64] | None,
) -> tuple[npt.NDArray[np.int64], int | None]:
    """What the committee opens of the passing members (secure projections ``y``, this party's ``shares``): their
    example-weighted sum, or with clipping the centered-clipping sums ``(W, M)`` around ``center`` (zero if None)."""
    if params.clip_radius is None:
        return await _sum_passing(mpc, params, shares, examples), None
    if not shares:
        return np.zeros(params.length, dtype=np.int64), 0
    v = np.zeros(params.length, dtype=np.int64) if center is None else np.asarray(center, dtype=np.int64)
    if v.shape != (params.length,):
        raise ConfigError(f"the clipping center has {v.size} values, the update {params.length}")
    center_y = project_exact(v, seed, params.projections).tolist()
    return await clip_and_sum(mpc, params, y, center_y, shares, examples)


async def _sum_passing(
    mpc: Any, params: CheckParams, shares: list[npt.NDArray[np.uint32]], examples: list[int]
) -> npt.NDArray[np.int64]:
    """Open the example-weighted sum of the passing members' updates.

    As in MPyC's ``output``, each party interpolates the value at 0 from ``t + 1`` shares, its own among them, and
    receives only the ``t`` others. It uses the shares of ``t + 1`` consecutive parties: at consecutive points
    MPyC's Lagrange coefficients are small integers, which :func:`~fedledger.privacy.masked_shares.interpolate`
    applies to int64 limbs instead of to one Python int per coordinate.
    """
    if not shares:
        return np.zeros(params.length, dtype=np.int64)
    mine = weighted_sum([s[:-1] for s in shares], examples, params.modulus)
    words, size = params.element_bytes // 4, params.wire_bytes
    m, t = params.committee, params.threshold
    windows = {r: range(min(r, m - 1 - t), min(r, m - 1 - t) + t + 1) for r in range(m)}
    graph = {a: [r for r in range(m) if a in windows[r]] for a in range(m)}
    nodes = []
    sent = pack_words(np.ascontiguousarray(mine.T, dtype=np.uint32), size)
    for party, view in zip(windows[mpc.pid], await mpc.transfer(sent, sender_receivers=graph), strict=True):
        if not isinstance(view, bytes) or len(view) != len(sent):
            raise CommitteeAbort(f"committee member {party} sent a share of the sum of the wrong size", (party,))
        nodes.append((party + 1, np.ascontiguousarray(unpack_words(view, params.length, words, size).T, np.int64)))
    return centred_int64(interpolate(params.field(), nodes, [0])[0], params.modulus)


def recheck_transcript(outcome: CheckOutcome, params: CheckParams) -> list[str]:
    """What an auditor can re-derive without any secret: the seed and the verdicts on shares, from the transcript.

    Returns the disagreements (empty when the published verdicts follow from the transcript): the seed must be
    the hash of the context, the contributions and the bundle hashes; a member named for malformed shares must
    have a complaint, one named for shares that do not reconstruct ``rho`` shares off one polynomial of the
    sharing degree, and a member that passed or failed the checks neither. The pass bits themselves and the sum
    come from the MPC and rest on the committee's honest majority.
    """
    fld = params.field()
    problems = []
    doc = outcome.transcript
    hashes = {m: bytes.fromhex(h) for m, h in doc.get("bundle_hashes", {}).items()}
    seed = derive_seed(bytes.fromhex(doc.get("context", "")), doc.get("contributions", []), hashes)
    if seed.hex() != doc.get("seed"):
        problems.append("seed does not follow from the context, the contributions and the bundle hashes")
    consistency = doc.get("consistency", {})
    for member in sorted(set(outcome.passed) | set(outcome.rejected)):
        views = consistency.get(member)
        reason = outcome.rejected.get(member, "")
        if views is None or len(views) != params.committee:
            problems.append(f"{member}: no consistency shares from every committee member")
            continue
        complaints = [r for r, _ in views if r]
        if complaints:
            if not reason.startswith("malformed shares"):
                problems.append(f"{member}: committee complaints {complaints} but verdict {reason or 'passed'!r}")
            continue
        if member not in hashes:
            problems.append(f"{member}: checked without a bundle hash in the seed")
        on_polynomial = _on_one_polynomial(
            [(party + 1, int(rho)) for party, (_, rho) in enumerate(views)], params.threshold, fld
        )
        if on_polynomial == reason.startswith("shares do not reconstruct"):
            problems.append(f"{member}: consistency shares do not support the verdict {reason or 'passed'!r}")
    return problems


def sketch_decision(
    fixed: npt.NDArray[np.int64], params: CheckParams, reference: ObjectArray | None, seed: bytes
) -> bool:
    """The committee's rule in clear for a round's ``seed`` (reads the update: a reference for tests).

    Equals the committee's bit for any update whose coordinates lie within ``params.coordinate_bound``.
    """
    x = np.asarray(fixed, dtype=np.int64)
    k = params.projections
    total = sum(v * v for v in project_update(x, params, seed))
    if total > params.norm_threshold:
        return False
    if reference is None:
        return True
    dot = int(np.dot(reference, x.astype(object)))
    ref2 = int(sum(int(r) * int(r) for r in reference))
    numerator, denominator = params.cosine_ratio
    return dot >= 0 and denominator * k * dot * dot >= 2 * numerator * ref2 * total
