"""Secure aggregation (Bonawitz et al., CCS 2017; SecAgg+ graph of Bell et al., CCS 2020) over Z_{2^64}.

The aggregator learns only the example-weighted sum of the members' fixed-point
updates, and still gets it when up to ``group - threshold`` members of each group
drop out. Every step is a pure function of messages with deterministic bytes, so
the caller stores them as blobs and commits their hashes; :func:`verify_aggregate`
lets an auditor recompute the aggregate from those messages alone. See
``docs/privacy.md`` for the protocol, the key arrangement and what robustness
checks still apply to masked updates.

The protocol follows Bonawitz, Ivanov, Kreuter, Marcedone, McMahan, Patel, Ramage, Segal, Seth,
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

The package splits it by party: :mod:`._member` (a member's steps), :mod:`._aggregator` (relaying,
summing and unmasking, and the audit's recomputation), over :mod:`._masking` (flat vectors and pairwise masks),
:mod:`._keys`, :mod:`._prg`, :mod:`._messages` and :mod:`._config`.
"""

from __future__ import annotations

from fedledger.exceptions import NotEnoughShares, SecAggError

from ._aggregator import AggregateResult, SecAggAggregator, recompute_aggregate, recover_sum, verify_aggregate
from ._config import RoundConfig, threshold_for
from ._keys import pairwise_seed, public_key
from ._member import MemberIdentity, MemberSecrets, SecAggMember
from ._messages import KeyAdvert, MaskedInput, RevealedShare, ShareBundle, ShareReveal, UnmaskRequest
from ._prg import mask_from_seed

__all__ = [
    "pairwise_seed",
    "public_key",
    "AggregateResult",
    "KeyAdvert",
    "MaskedInput",
    "MemberIdentity",
    "MemberSecrets",
    "NotEnoughShares",
    "RevealedShare",
    "RoundConfig",
    "SecAggAggregator",
    "SecAggError",
    "SecAggMember",
    "ShareBundle",
    "ShareReveal",
    "UnmaskRequest",
    "mask_from_seed",
    "recompute_aggregate",
    "recover_sum",
    "threshold_for",
    "verify_aggregate",
]
