"""Validity checks on secret-shared updates: the member's side and the shared parameters.

Under secure aggregation nobody may read one member's update, yet a poisoned
update should still be screened. Here each member Shamir-shares its fixed-point
update ``x`` (``length`` field elements and one blinding value) to a committee of
``m`` aggregators (MPyC's honest-majority setting, threshold ``t = (m - 1) // 2``), with
seed-compressed shares: the first ``t`` committee members receive a 32-byte seed that expands
into their share vector, the others explicit share vectors interpolated with MPyC
(:mod:`fedledger.privacy.masked_shares`, which states why this is as private as fresh shares);
the committee checks every update on the shares
(:mod:`fedledger.privacy.masked_committee`) and reveals only one pass/fail bit per
update and the example-weighted sum of the updates that passed.

The checks are probabilistic, on ``k`` random projections ``y_j = <a_j, x>`` drawn after
every bundle was committed (:mod:`fedledger.privacy.masked_sketch`):

- **norm**: ``S = sum_j y_j^2 <= T`` with ``T = q B^2 / 2`` (``B`` the L2 bound in
  fixed-point units, ``q`` the chi-square-type threshold of
  :func:`~fedledger.privacy.masked_sketch.chi2_threshold`). An update within the bound
  fails with probability at most 2^-40; one at ``g`` times the bound passes with the
  probability :meth:`CheckParams.guarantees` states. The same comparison catches
  wrap-around: a coordinate outside ``[-2W, 2W]`` (``W^2 > T``) pushes some projection
  out of ``[-W, W]``, hence ``S`` over ``T``, except with probability ``2^-k``.
- **direction**: ``cos(x, ref) >= tau`` for a public reference ``ref`` (e.g. the
  previous round's global update), without a square root, with ``|x|^2`` estimated by
  ``2 S / k``: ``x . ref >= 0`` and ``D k (x . ref)^2 >= 2 N |ref|^2 S`` where
  ``tau^2 <= N / D``; or, with ``reference = "committee"``, against every committee
  member's own private reference, a strict majority deciding
  (:mod:`fedledger.privacy.masked_reference`).

A member's bundle carries one AES-256-GCM ciphertext per committee member (its seed, or its
share vector at ``ceil(bits / 8)`` bytes per element) under a
key from X25519 (the member's fresh key, the committee member's key-agreement key)
and HKDF bound to the round context, the member and the party index. The bundle's
sha256 is what the member commits, like an update hash, so that what each committee
member received is fixed by the commitment (the round flow on chain is
:mod:`fedledger.federation.masked_node`; see ``docs/masked-checks.md``).

:func:`plain_decision` computes the exact rule in clear (the norm and cosine the checks
estimate); :func:`~fedledger.privacy.masked_committee.sketch_decision` computes the
committee's own rule in clear from a round's seed. Both are references for tests, not
something any party runs on real data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fedledger.exceptions import BadInput, ConfigError, SecAggError
from fedledger.learning.fixedpoint import FixedPoint
from fedledger.privacy.masked_shares import (
    SEED_BYTES,
    DealtShares,
    below_modulus,
    deal,
    expand_seed,
    field_limbs,
    pack_words,
    unpack_words,
)
from fedledger.privacy.masked_sketch import FAIL_LOG2, chi2_threshold, direction_band, false_accept

__all__ = [
    "BUNDLE_FORMAT",
    "CheckParams",
    "CommitteeAbort",
    "DealtShares",
    "MalformedShares",
    "ObjectArray",
    "OpenedShare",
    "open_share",
    "plain_decision",
    "quantize_reference",
    "seal_shares",
    "share_update",
    "split_shares",
    "to_fixed",
]

BUNDLE_FORMAT = "fedledger-masked-shares/2"
_KEY_LABEL = b"fedledger/masked-checks/share-key/1"
_NONCE_BYTES = 12
_REFERENCE_NORM_BITS = 16  # the reference is rescaled to L2 norm 2^16: only its direction matters
_TAU_DENOMINATOR = 2**20
_MAX_TOTAL_EXAMPLES = 2**32 - 1  # the committee weighs shares by example counts in 32-bit words
_MAX_MEMBERS = 2**15  # members per round the committee's 64-bit word sums allow
_MPYC_SEC_PARAM = 30  # MPyC's default statistical security parameter (its -K option)

ObjectArray = npt.NDArray[np.object_]  # numpy arrays of Python ints (field elements)


def _import_mpyc() -> None:
    """Import MPyC's field and sharing modules without its import-time effects on this process.

    ``import mpyc`` parses ``sys.argv`` as MPyC options (a host's ``-W error`` would abort it), configures the
    root logger and, where uvloop is installed, replaces the process's asyncio event-loop policy. A member or a
    test process only needs MPyC's arithmetic, so it imports with neutral arguments, without uvloop, and
    restores the logger and the environment afterwards. (Committee processes import MPyC's runtime normally.)
    """
    if "mpyc" in sys.modules:
        return
    root = logging.getLogger()
    saved_level, saved_handlers, saved_argv = root.level, list(root.handlers), sys.argv
    saved_env = {name: os.environ.get(name) for name in ("MPYC_NOUVLOOP", "MPYC_MAXWORKERS")}
    os.environ["MPYC_NOUVLOOP"] = "1"
    sys.argv = [saved_argv[0] if saved_argv else "fedledger", "--no-log"]
    try:
        import mpyc.finfields
        import mpyc.thresha  # noqa: F401 - loaded here so later imports find it in sys.modules
    finally:
        sys.argv = saved_argv
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class MalformedShares(BadInput):
    """A member's shares cannot be used: undecryptable, malformed, or not consistent across the committee.

    ``member`` is the member at fault; ``reason`` says what was found.
    """

    def __init__(self, member: str, reason: str) -> None:
        super().__init__(f"member {member!r}: {reason}")
        self.member = member
        self.reason = reason


class CommitteeAbort(SecAggError):
    """The committee could not finish the checks; ``parties`` are the committee members that stopped answering."""

    def __init__(self, reason: str, parties: tuple[int, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.parties = parties


@dataclass(frozen=True)
class CheckParams:
    """The public parameters of the masked checks of one round (the same for members and committee).

    ``min_cosine`` ``None`` disables the direction check (e.g. in the first round, with no reference);
    ``projections`` is ``k``, the number of random projections (a multiple of 4); ``reference`` says what the
    direction is checked against: ``"previous"``, one public reference every committee member holds, or
    ``"committee"``, each committee member's own private reference (:mod:`fedledger.privacy.masked_reference`).
    ``clip_radius`` (``None``: off, the plain sum) has the committee clip every passing update around a public
    center to that L2 radius, with clip factors in steps of ``1 / clip_levels``
    (:mod:`fedledger.privacy.masked_clipping`).
    """

    length: int
    norm_bound: float
    min_cosine: float | None = None
    frac_bits: int = 16
    committee: int = 3
    projections: int = 256
    reference: str = "previous"
    clip_radius: float | None = None
    clip_levels: int = 16

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ConfigError(f"masked checks need at least one parameter, got {self.length}")
        if not (math.isfinite(self.norm_bound) and self.norm_bound > 0):
            raise ConfigError(f"norm bound must be positive and finite, got {self.norm_bound}")
        if self.min_cosine is not None and not 0.0 <= self.min_cosine < 1.0:
            raise ConfigError(f"minimum cosine must be in [0, 1), got {self.min_cosine}")
        if self.committee < 3:
            raise ConfigError(f"an honest-majority committee needs at least 3 members, got {self.committee}")
        if self.projections < 64 or self.projections % 4:
            raise ConfigError(f"projections must be a multiple of 4 and at least 64, got {self.projections}")
        if self.reference not in ("previous", "committee"):
            raise ConfigError(f"the reference must be 'previous' or 'committee', got {self.reference!r}")
        if self.clip_radius is not None and not (math.isfinite(self.clip_radius) and self.clip_radius > 0):
            raise ConfigError(f"clip radius must be positive and finite, got {self.clip_radius}")
        if not 1 <= self.clip_levels <= 256:
            raise ConfigError(f"clip levels must be in 1..256, got {self.clip_levels}")
        FixedPoint(self.frac_bits)  # validates frac_bits

    @property
    def threshold(self) -> int:
        """The Shamir degree: any ``threshold`` committee members together learn nothing."""
        return int((self.committee - 1) // 2)

    @property
    def bound_units(self) -> int:
        """The L2 bound in fixed-point units, rounded down."""
        return int(math.floor(self.norm_bound * 2**self.frac_bits))

    @cached_property
    def chi2_q(self) -> float:
        return chi2_threshold(self.projections)

    @cached_property
    def norm_threshold(self) -> int:
        """``T``: the committee accepts the norm when ``sum_j y_j^2 <= T`` (``E sum = k |x|^2 / 2``)."""
        return int(math.ceil(self.chi2_q * self.bound_units**2 / 2))

    @property
    def clip_radius_units(self) -> int:
        """The clip radius in fixed-point units, rounded down (0 without clipping)."""
        return int(math.floor((self.clip_radius or 0.0) * 2**self.frac_bits))

    @property
    def coordinate_bound(self) -> int:
        """``2W`` with ``W^2 > T``: an update with a coordinate beyond it passes with probability at most ``2^-k``."""
        return 2 * (math.isqrt(self.norm_threshold) + 1)

    @property
    def cosine_ratio(self) -> tuple[int, int]:
        """``(N, D)`` with ``N / D >= tau^2``, rounded up so the check is never looser than asked."""
        tau = self.min_cosine or 0.0
        return math.ceil(tau * tau * _TAU_DENOMINATOR), _TAU_DENOMINATOR

    @property
    def shared_length(self) -> int:
        """Field elements each committee member receives per update: the update and one blinding value."""
        return self.length + 1

    @property
    def reference_bound(self) -> int:
        """Bound on the L2 norm of the quantized reference (norm ``2^16`` plus rounding)."""
        return int(2**_REFERENCE_NORM_BITS + math.isqrt(self.length) + 1)

    @cached_property
    def small_bits(self) -> int:
        """``l`` of the shares' ``SecInt``: every value the committee converts, for any update it may accept.

        Projections of an update within the bound are at most ``sqrt(d) B``; the inner product with the
        reference at most ``4 B |ref|`` for any update that passes the norm check (beyond ``4 B`` it passes with
        probability below ``false_accept(4)``).
        """
        projections = (math.isqrt(self.length) + 1) * self.bound_units
        dot = 4 * self.bound_units * self.reference_bound
        return int(max(projections, dot).bit_length()) + 1

    @cached_property
    def modulus(self) -> int:
        """The prime of the shares: room for MPyC's statistical conversion of ``small_bits`` values and for the sums.

        Members and committee must agree on it without an MPyC runtime, so it is MPyC's ``find_prime_root``
        at a bit length fixed by the parameters.
        """
        _import_mpyc()  # mpyc is the optional extra "mpc"; import it only when used
        from mpyc import finfields

        wide = self.coordinate_bound
        weight = self.clip_levels if self.clip_radius is not None else 1  # clipping weighs by n_i l_i, l_i <= L
        bits = max(
            self.small_bits + _MPYC_SEC_PARAM + 3,  # MPyC's conversion masks with l + k bits, without wrapping
            (self.length * wide).bit_length() + 2,  # projections of an update within the coordinate range
            (_MAX_TOTAL_EXAMPLES * _MAX_MEMBERS * weight * wide).bit_length() + 2,  # the revealed weighted sum
        )
        prime, _, _ = finfields.find_prime_root(bits, n=2)
        return int(prime)

    @cached_property
    def big_bits(self) -> int:
        """``l`` of the committee's comparison ``SecInt``: exact for ``S`` even when converted values wrapped."""
        return int((self.projections * 4 * self.modulus**2).bit_length()) + 2

    @cached_property
    def direction_bits(self) -> int:
        """Bits of ``D k dot^2 - 2 N |ref|^2 S`` for an update that passed the norm check."""
        _, denominator = self.cosine_ratio
        left = denominator * self.projections * 2 ** (2 * self.small_bits)
        right = 2 * denominator * self.reference_bound**2 * self.norm_threshold
        return int(max(left, right).bit_length()) + 2

    def field(self) -> Any:
        """MPyC's prime field of the shares."""
        _import_mpyc()
        from mpyc import finfields

        return finfields.GF(self.modulus)

    @property
    def element_bytes(self) -> int:
        """Bytes per field element in memory: whole 32-bit words, the form the committee's linear algebra reads."""
        return 4 * ((self.modulus.bit_length() + 31) // 32)

    @property
    def wire_bytes(self) -> int:
        """Bytes per field element of an explicit share vector on the wire: the modulus's bit length, in bytes."""
        return (self.modulus.bit_length() + 7) // 8

    def guarantees(self) -> dict[str, float]:
        """The checks' error probabilities (upper bounds) for these parameters; see ``docs/masked-checks.md``."""
        k, q = self.projections, self.chi2_q
        low, high = direction_band(k, q)
        return {
            "false_reject_within_bound": 2.0**-FAIL_LOG2,
            "false_accept_at_1.5x": false_accept(k, q, 1.5),
            "false_accept_at_2x": false_accept(k, q, 2.0),
            "false_accept_at_3x": false_accept(k, q, 3.0),
            "false_accept_at_4x": false_accept(k, q, 4.0),
            "wrap_around_accept": 2.0**-k,
            "norm_estimate_low": low,
            "norm_estimate_high": high,
        }

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "length": self.length,
            "norm_bound": self.norm_bound,
            "min_cosine": self.min_cosine,
            "frac_bits": self.frac_bits,
            "committee": self.committee,
            "projections": self.projections,
        }
        if self.reference != "previous":  # bundles and outcomes of public-reference rounds keep their bytes
            doc["reference"] = self.reference
        if self.clip_radius is not None:  # likewise rounds that sum without clipping
            doc.update(clip_radius=self.clip_radius, clip_levels=self.clip_levels)
        return doc

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> CheckParams:
        return cls(**doc)


def quantize_reference(reference: npt.ArrayLike | None, params: CheckParams) -> ObjectArray | None:
    """The public reference direction as integers of L2 norm about ``2^16``; ``None`` when there is none."""
    if reference is None or params.min_cosine is None:
        return None
    ref = np.asarray(reference, dtype=np.float64).ravel()
    if ref.size != params.length:
        raise BadInput(f"reference has {ref.size} values, the update {params.length}")
    norm = float(np.linalg.norm(ref))
    if not math.isfinite(norm) or norm == 0.0:
        return None  # no direction to compare with: the direction check is skipped, as in the first round
    quantized = np.rint(ref / norm * 2**_REFERENCE_NORM_BITS).astype(np.int64)
    return np.asarray(quantized.astype(object), dtype=object)  # Python ints: the committee squares and sums them


def to_fixed(update: npt.ArrayLike, params: CheckParams) -> npt.NDArray[np.int64]:
    """Float update -> signed fixed-point integers, exactly as the project's codec encodes them."""
    flat = np.asarray(update, dtype=np.float64).ravel()
    if flat.size != params.length:
        raise BadInput(f"update has {flat.size} values, the round {params.length}")
    encoded: npt.NDArray[np.int64] = FixedPoint(params.frac_bits).encode(flat).view(np.int64)
    return encoded


def plain_decision(fixed: npt.NDArray[np.int64], params: CheckParams, reference: ObjectArray | None) -> bool:
    """The exact rule the checks estimate, in clear: ``|x| <= bound`` and ``cos(x, ref) >= tau`` (reads the update)."""
    x = [int(v) for v in fixed]
    norm2 = sum(v * v for v in x)
    if norm2 > params.bound_units**2:
        return False
    if reference is None:
        return True
    dot = sum(v * int(r) for v, r in zip(x, reference, strict=True))
    ref2 = sum(int(r) * int(r) for r in reference)
    numerator, denominator = params.cosine_ratio
    return dot >= 0 and denominator * dot * dot >= numerator * ref2 * norm2


def _pair_key(shared_secret: bytes, *, context: bytes, member: str, party: int) -> bytes:
    info = _KEY_LABEL + context + member.encode() + party.to_bytes(2, "big")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared_secret)


def _aad(context: bytes, member: str, party: int) -> bytes:
    return context + member.encode() + b"/" + str(party).encode()


def split_shares(values: npt.NDArray[Any], params: CheckParams) -> DealtShares:
    """Seed-compressed Shamir shares (degree ``threshold``) of ``values`` (signed) and one random blinding value.

    Committee member ``j`` holds the polynomial's value at ``j + 1`` (MPyC's convention): the first ``threshold``
    as the expansion of a seed, the others as explicit share vectors (:mod:`fedledger.privacy.masked_shares`).
    ``values`` are int64, or Python ints of any size (e.g. a test's out-of-range coordinates), reduced modulo ``p``.
    """
    field = params.field()  # imports MPyC
    flat = np.asarray(values)
    if flat.ndim != 1:
        raise BadInput(f"shares are dealt for a flat vector, got shape {flat.shape}")
    blinding = int.from_bytes(os.urandom(params.element_bytes + 16), "little") % params.modulus
    secrets = np.concatenate(
        [field_limbs(flat, params.modulus), field_limbs(np.array([blinding], object), params.modulus)], axis=1
    )
    return deal(secrets, field, params.threshold, params.committee)


def share_update(
    update: npt.ArrayLike,
    params: CheckParams,
    *,
    member: str,
    examples: int,
    context: bytes,
    committee_keys: list[bytes],
) -> bytes:
    """A member's share bundle for its (float) update: commit its sha256 and store its bytes.

    ``committee_keys`` are the committee members' X25519 key-agreement public keys, in party order.
    """
    if len(committee_keys) != params.committee:
        raise BadInput(f"{len(committee_keys)} committee keys for a committee of {params.committee}")
    return seal_shares(
        split_shares(to_fixed(update, params), params),
        params,
        member=member,
        examples=examples,
        context=context,
        committee_keys=committee_keys,
    )


def seal_shares(
    shares: DealtShares,
    params: CheckParams,
    *,
    member: str,
    examples: int,
    context: bytes,
    committee_keys: list[bytes],
) -> bytes:
    """Encrypt each committee member's seed or share vector to its key and frame the bundle (header, ciphertexts)."""
    if shares.threshold != params.threshold or shares.committee != params.committee:
        raise BadInput(f"shares dealt for {shares.committee} parties with {shares.threshold} seeds, not these params")
    ephemeral = X25519PrivateKey.generate()
    ciphertexts = []
    for party, raw_key in enumerate(committee_keys):
        try:
            secret = ephemeral.exchange(X25519PublicKey.from_public_bytes(raw_key))
        except ValueError as exc:
            raise BadInput(f"committee member {party}'s key-agreement key is invalid: {exc}") from exc
        key = _pair_key(secret, context=context, member=member, party=party)
        nonce = os.urandom(_NONCE_BYTES)
        if party < shares.threshold:
            plaintext = shares.seeds[party]
        else:
            plaintext = pack_words(shares.rows[party - shares.threshold], params.wire_bytes)
        ciphertexts.append(nonce + AESGCM(key).encrypt(nonce, plaintext, _aad(context, member, party)))
    header = {
        "format": BUNDLE_FORMAT,
        "context": context.hex(),
        "member": member,
        "examples": examples,
        "params": params.to_dict(),
        "ephemeral": ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex(),
        "sizes": [len(c) for c in ciphertexts],
    }
    return json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n" + b"".join(ciphertexts)


@dataclass(frozen=True)
class OpenedShare:
    """One committee member's view of one member's bundle after :func:`open_share`."""

    member: str
    examples: int
    bundle_hash: bytes
    # this party's share of each coordinate, then of the blinding value: (shared_length, words) little-endian
    # 32-bit words of each field element, the form the committee's exact float64 linear algebra reads
    shares: npt.NDArray[np.uint32]


def _parse_header(bundle: bytes, member: str) -> tuple[dict[str, Any], bytes]:
    head, sep, body = bundle.partition(b"\n")
    if not sep or len(head) > 4096:
        raise MalformedShares(member, "share bundle has no header line")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise MalformedShares(member, f"share bundle header is not JSON: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT:
        raise MalformedShares(member, "not a masked-check share bundle")
    return header, body


def open_share(
    bundle: bytes,
    params: CheckParams,
    *,
    member: str,
    context: bytes,
    party: int,
    private_key: X25519PrivateKey,
) -> OpenedShare:
    """Decrypt and check committee member ``party``'s shares in ``member``'s bundle.

    Raises :class:`MalformedShares` naming the member for anything that does not decrypt, does not
    match the round, or is not ``shared_length`` field elements below the modulus.
    """
    header, body = _parse_header(bundle, member)
    if header.get("member") != member or header.get("context") != context.hex():
        raise MalformedShares(member, "share bundle is for another member or round")
    if header.get("params") != params.to_dict():
        raise MalformedShares(member, "share bundle was made for other check parameters")
    examples, sizes = header.get("examples"), header.get("sizes")
    if isinstance(examples, bool) or not isinstance(examples, int) or not 0 < examples <= _MAX_TOTAL_EXAMPLES:
        raise MalformedShares(member, f"example count {examples!r} is not a positive integer")
    if not (isinstance(sizes, list) and len(sizes) == params.committee and all(isinstance(s, int) for s in sizes)):
        raise MalformedShares(member, "share bundle does not hold one ciphertext per committee member")
    if sum(sizes) != len(body) or min(sizes) < 0:
        raise MalformedShares(member, "share bundle ciphertext sizes do not add up")
    start = sum(sizes[:party])
    blob = body[start : start + sizes[party]]
    try:
        peer = X25519PublicKey.from_public_bytes(bytes.fromhex(str(header.get("ephemeral"))))
        key = _pair_key(private_key.exchange(peer), context=context, member=member, party=party)
        plaintext = AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _aad(context, member, party))
    except (ValueError, InvalidTag) as exc:
        raise MalformedShares(member, f"shares for committee member {party} do not decrypt") from exc
    return OpenedShare(
        member, examples, hashlib.sha256(bundle).digest(), _party_words(plaintext, params, member, party)
    )


def _party_words(plaintext: bytes, params: CheckParams, member: str, party: int) -> npt.NDArray[np.uint32]:
    """A committee member's share vector from its plaintext: the expansion of its seed, or its packed elements."""
    seeded = party < params.threshold
    expected = SEED_BYTES if seeded else params.shared_length * params.wire_bytes
    if len(plaintext) != expected:
        raise MalformedShares(member, f"shares for committee member {party} have the wrong length")
    if seeded:
        return expand_seed(plaintext, params.shared_length, params.modulus)
    words = unpack_words(plaintext, params.shared_length, params.element_bytes // 4, params.wire_bytes)
    if not below_modulus(words, params.modulus).all():
        raise MalformedShares(member, f"a share for committee member {party} is not a field element")
    return words
