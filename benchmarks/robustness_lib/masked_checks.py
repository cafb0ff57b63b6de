"""The masked validity checks' decision, as the simulated rounds of the robustness grid apply it.

Under secure aggregation with ``masked_checks`` the committee's MPC reveals one bit per update: L2 norm within the
bound and, with a minimum cosine, direction within it against the previous round's global update
(:mod:`fedledger.privacy.masked_committee`). The grid needs thousands of member-rounds, so it computes that bit in
clear with :func:`fedledger.privacy.masked_checks.plain_decision`, the function the MPC is tested equal to
(``tests/privacy/test_masked_checks.py``), on the same fixed-point update and the same parameters a node uses
(:func:`fedledger.federation.masked_round.masked_bound`). What the grid measures is the rule's robustness; the MPC's
cost and trust are another matter (``docs/masked-checks.md``). With ``--masked-reference committee`` the direction
votes are each seat's trust score against its own reference instead (``simulation._committee_reference_bits``), on
exact cosines where the MPC votes on the projections' estimate of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fedledger.federation.masked_round import flatten, masked_bound
from fedledger.privacy.masked_checks import CheckParams, plain_decision, quantize_reference

__all__ = ["masked_decisions"]


def masked_decisions(
    updates: Sequence[Mapping[str, np.ndarray[Any, Any]]],
    previous_aggregate: Mapping[str, np.ndarray[Any, Any]] | None,
    *,
    clip_norm: float,
    min_cosine: float | None,
    frac_bits: int,
) -> list[bool]:
    """Each fixed-point update's pass bit: within the task's norm bound and, from the second round, within the
    minimum cosine of the previous round's aggregate."""
    if not updates:
        return []
    length = sum(int(np.asarray(a).size) for a in updates[0].values())
    params = CheckParams(
        length=length,
        norm_bound=masked_bound(clip_norm, length, frac_bits),
        min_cosine=min_cosine,
        frac_bits=frac_bits,
    )
    reference = None
    if previous_aggregate is not None:
        reference = quantize_reference(flatten(previous_aggregate, frac_bits), params)
    return [
        plain_decision(
            np.asarray([v for k in sorted(u) for v in np.asarray(u[k]).view(np.int64).ravel()]), params, reference
        )
        for u in updates
    ]
