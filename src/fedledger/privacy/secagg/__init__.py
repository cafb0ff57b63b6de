"""Secure aggregation (Bonawitz et al., CCS 2017; SecAgg+ graph of Bell et al., CCS 2020) over Z_{2^64}.

The aggregator learns only the example-weighted sum of the members' fixed-point
updates, and still gets it when up to ``group - threshold`` members of each group
drop out. Every step is a pure function of messages with deterministic bytes, so
the caller stores them as blobs and commits their hashes; :func:`verify_aggregate`
lets an auditor recompute the aggregate from those messages alone. See
``docs/privacy.md`` for the protocol, the key arrangement and what robustness
checks still apply to masked updates.
"""

from __future__ import annotations

from ._config import RoundConfig, threshold_for
from ._keys import pairwise_seed, public_key
from ._messages import KeyAdvert, MaskedInput, RevealedShare, ShareBundle, ShareReveal, UnmaskRequest
from ._prg import mask_from_seed
from ._protocol import (
    AggregateResult,
    MemberIdentity,
    MemberSecrets,
    NotEnoughShares,
    SecAggAggregator,
    SecAggError,
    SecAggMember,
    recompute_aggregate,
    recover_sum,
    verify_aggregate,
)

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
