"""The direction check against the committee's own references: every committee member's private reference update.

With ``CheckParams.reference == "committee"`` each committee member brings its own reference update: local
training from the round's starting model on its own validation data, minus that model (FLTrust's server update,
the reference validated rounds score trust with: :func:`fedledger.learning.scoring.reference_update`). One public
reference, such as the previous round's aggregate, is steered by whatever the attackers got into it and fits
non-IID members poorly; each committee member's reference is its own data's pull, and an update must agree with a
majority of them.

A committee member's reference never leaves it in clear. It quantizes it as a public reference is quantized
(:func:`~fedledger.privacy.masked_checks.quantize_reference`), projects it with the round's ``k`` projections
(drawn after every bundle was committed), rescales the ``k``-vector ``r`` to L2 norm ``2^16`` and inputs it to the
MPC as its private input. For every member's projected update ``y`` and every committee member ``j``:

    vote_j = (y . r_j >= 0) and D (y . r_j)^2 >= N |y|^2 |r_j|^2      (cos(y, r_j) >= tau, tau^2 <= N / D)

and the update passes when its norm passes (``|y|^2 <= T``) and a strict majority of the ``m`` votes is yes. Only
that bit is revealed, not the votes. Random projections preserve inner products and norms up to the sketch's
distortion (:mod:`fedledger.privacy.masked_sketch`), so ``cos(y, r_j)`` estimates the cosine of the update and
the reference; the rule is the sketch's, and :func:`committee_decision` computes exactly it in clear.

Rescaling the projected reference bounds every MPC input independently of the model size (a cosine does not
depend on scale). A committee member with no reference direction (a zero update) inputs zeros, which vote yes: it
has nothing to object with. The audit cannot re-check the votes (the references are private): it trusts the
committee's honest majority, whose references decide (``docs/masked-checks.md``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.exceptions import BadInput, ConfigError
from fedledger.privacy.masked_checks import CheckParams, ObjectArray
from fedledger.privacy.masked_sketch import project_exact, projection_chunks

__all__ = [
    "PROJECTED_REFERENCE_NORM",
    "committee_decision",
    "committee_pass_bits",
    "project_reference",
    "project_update",
    "square_norms",
]

PROJECTED_REFERENCE_NORM = 2**16


def project_update(fixed: npt.NDArray[np.int64], params: CheckParams, seed: bytes) -> list[int]:
    """The ``k`` projections ``y_j = <a_j, x>`` of a fixed-point update for a round's ``seed``, exactly (reads it)."""
    x = np.asarray(fixed, dtype=np.int64)
    y = np.zeros(params.projections, dtype=object)
    for start, block in projection_chunks(seed, params.projections, x.size):
        y = y + block.astype(np.int64).T.astype(object) @ x[start : start + block.shape[0]].astype(object)
    return [int(v) for v in y]


def project_reference(reference: ObjectArray | None, seed: bytes, params: CheckParams) -> list[int]:
    """A committee member's MPC input: its quantized reference projected with the round's ``k`` projections,
    rescaled to L2 norm :data:`PROJECTED_REFERENCE_NORM` and rounded; zeros when it has no direction."""
    k = params.projections
    if reference is None:
        return [0] * k
    ref = np.asarray(reference, dtype=np.int64)
    if ref.size != params.length:
        raise BadInput(f"reference has {ref.size} values, the update {params.length}")
    total = project_exact(ref, seed, k)
    norm2 = sum(int(v) * int(v) for v in total)
    if norm2 == 0:
        return [0] * k
    scale = PROJECTED_REFERENCE_NORM / math.sqrt(norm2)  # correctly rounded: the same at every party
    return [int(v) for v in np.rint(total * scale)]


def _projected_bound(params: CheckParams) -> int:
    """Bound on the L2 norm of a projected, rescaled reference (its norm plus the rounding of ``k`` entries)."""
    return PROJECTED_REFERENCE_NORM + math.isqrt(params.projections) + 1


def _vote(y: Sequence[int], total: int, reference: Sequence[int], params: CheckParams) -> bool:
    dot = sum(a * b for a, b in zip(y, reference, strict=True))
    ref2 = sum(r * r for r in reference)
    numerator, denominator = params.cosine_ratio
    return dot >= 0 and denominator * dot * dot >= numerator * total * ref2


def committee_decision(
    fixed: npt.NDArray[np.int64], params: CheckParams, references: Sequence[ObjectArray | None], seed: bytes
) -> bool:
    """The committee's rule with private references, in clear, for a round's ``seed`` (reads the update and every
    committee member's quantized reference: a reference for tests and for the robustness grid).

    Equals the committee's bit for any update whose coordinates lie within ``params.coordinate_bound``.
    """
    if len(references) != params.committee:
        raise BadInput(f"{len(references)} references for a committee of {params.committee}")
    y = project_update(fixed, params, seed)
    total = sum(v * v for v in y)
    if total > params.norm_threshold:
        return False
    if params.min_cosine is None:
        return True
    votes = sum(_vote(y, total, project_reference(ref, seed, params), params) for ref in references)
    return 2 * votes > params.committee


def _direction_bits(params: CheckParams) -> tuple[int, int]:
    """Bits of ``y . r_j`` and of ``D (y . r_j)^2 - N |y|^2 |r_j|^2`` for an update that passed the norm check."""
    _, denominator = params.cosine_ratio
    bound = _projected_bound(params)
    dot = (math.isqrt(params.norm_threshold) + 1) * bound
    gap = denominator * params.norm_threshold * bound * bound
    return int(dot.bit_length()) + 1, int(gap.bit_length()) + 2


def square_norms(mpc: Any, rows: Any) -> Any:
    """The secure ``|row|^2`` of each row of a secure 2-D array: one inner product per row, which MPyC reshares
    once, where squaring elementwise would reshare every entry."""
    return mpc.np_fromlist([rows[i] @ rows[i] for i in range(rows.shape[0])])


def committee_pass_bits(
    mpc: Any, params: CheckParams, secint: Any, y: Any, total: Any, norm_ok: Any, own: Sequence[int]
) -> Any:
    """The secure pass bits (norm and a strict majority of direction votes) of every member's projections ``y``.

    ``secint`` is the comparison ``SecInt`` of ``y`` (``members x k``), ``total`` the secure ``|y|^2`` and
    ``norm_ok`` the secure norm bits per member; ``own`` is this committee member's projected reference
    (:func:`project_reference`), its private input. The dot products and sums are gated by the norm bit, so every
    compared value lies in the range its comparison assumes even for an update whose projections wrapped.
    """
    dot_bits, gap_bits = _direction_bits(params)
    if gap_bits > params.big_bits:
        raise ConfigError(f"the direction check needs {gap_bits} bits, the comparison type holds {params.big_bits}")
    m = params.committee
    mine = secint.array(secint.field.array(np.array(list(own), dtype=object)))
    references = mpc.np_stack(mpc.input(mine, senders=list(range(m))))  # (m, k): row j known only to member j
    gate = norm_ok.reshape(-1, 1)
    dots = (y @ references.T) * gate  # (members, m)
    numerator, denominator = params.cosine_ratio
    votes = 1 - mpc.np_sgn(dots, l=dot_bits, LT=True)  # y . r_j >= 0
    if numerator:  # at a minimum cosine of 0 the sign is the whole vote
        gap = denominator * dots * dots - numerator * mpc.np_outer(total * norm_ok, square_norms(mpc, references))
        votes = votes * (1 - mpc.np_sgn(gap, l=gap_bits, LT=True))
    votes = mpc.np_sum(votes, axis=1)
    majority = 1 - mpc.np_sgn(votes - (m // 2 + 1), l=m.bit_length() + 2, LT=True)
    return norm_ok * majority
