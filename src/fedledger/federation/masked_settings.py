"""The masked-check settings of a secure task (``masked_checks`` and its parameters in the task config).

Under secure aggregation with ``masked_checks`` on, each member shares its update to a committee of
``masked_committee`` aggregators, drawn by the contract each round, that checks it on secret shares
(:mod:`fedledger.privacy.masked_committee`): its L2 norm against ``masked_norm_bound`` (None: the task's update
norm bound, the clip norm plus the DP noise bound) and, with ``masked_min_cosine``, its direction against a
reference: ``masked_reference`` ``"committee"`` (each committee member's own reference update, trained on its own
validation data from the round's model and kept private; the update passes when a strict majority of them agree) or
``"previous"`` (the previous round's global update, public). Only the pass/fail bit per update and the sum of the
passing updates are revealed. With ``masked_clip_levels`` above 0 the committee clips every passing update around
the previous round's global update to ``masked_clip_radius`` (None: half the clip norm, validated centered
clipping's radius) with clip factors in steps of ``1 / masked_clip_levels`` before summing
(:mod:`fedledger.privacy.masked_clipping`), and reveals the example-weighted sum of the clip levels as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedledger.exceptions import ConfigError

__all__ = ["MASKED_REFERENCES", "MASKED_UNSET", "MAX_CHECK_COMMITTEE", "MAX_CLIP_LEVELS", "MaskedCheckSettings"]

MAX_CHECK_COMMITTEE = 15  # masked_outcomes.MAX_CHECKERS
MAX_CLIP_LEVELS = 256  # CheckParams.clip_levels
MASKED_REFERENCES = ("committee", "previous")
"""What the direction check compares with: each committee member's own private reference, or the previous
round's global update."""
MASKED_UNSET: dict[str, object] = {
    "masked_checks": False,
    "masked_committee": 3,
    "masked_norm_bound": None,
    "masked_min_cosine": None,
    # A config committed before the setting existed compared with the previous aggregate: it loads as "previous"
    # (config.from_bytes) and, left out of the canonical bytes at that value, keeps its hash.
    "masked_reference": "previous",
    "masked_clip_levels": 0,
    "masked_clip_radius": None,
}
"""The masked-check fields' values at which the task config's canonical bytes leave them out (so configs without
masked checks keep their hash)."""


@dataclass(frozen=True)
class MaskedCheckSettings:
    """Whether secure rounds screen masked updates, with which committee size, bound, minimum cosine and reference."""

    enabled: bool
    committee: int
    norm_bound: float | None
    min_cosine: float | None
    reference: str = "committee"
    clip_levels: int = 0
    clip_radius: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigError(f"task config: masked_checks must be true or false, got {self.enabled!r}")
        committee = self.committee
        if isinstance(committee, bool) or not isinstance(committee, int):
            raise ConfigError(f"task config: masked_committee must be an integer, got {committee!r}")
        if not (3 <= committee <= MAX_CHECK_COMMITTEE and committee % 2 == 1):
            raise ConfigError(
                f"task config: masked_committee must be odd and within 3..{MAX_CHECK_COMMITTEE} (an honest majority "
                f"of 2t + 1 members), got {committee}"
            )
        bound = self.norm_bound
        if bound is not None and not (isinstance(bound, int | float) and math.isfinite(bound) and bound > 0):
            raise ConfigError(f"task config: masked_norm_bound must be positive, got {bound!r}")
        cosine = self.min_cosine
        if cosine is not None and not (isinstance(cosine, int | float) and 0.0 <= cosine < 1.0):
            raise ConfigError(f"task config: masked_min_cosine must be within [0, 1), got {cosine!r}")
        if not (isinstance(self.reference, str) and self.reference in MASKED_REFERENCES):
            raise ConfigError(
                f"task config: masked_reference must be one of {', '.join(MASKED_REFERENCES)}, got {self.reference!r}"
            )
        levels = self.clip_levels
        if isinstance(levels, bool) or not isinstance(levels, int) or not 0 <= levels <= MAX_CLIP_LEVELS:
            raise ConfigError(f"task config: masked_clip_levels must be within 0..{MAX_CLIP_LEVELS}, got {levels!r}")
        if levels and not self.enabled:
            raise ConfigError("task config: masked_clip_levels clips in the masked checks, so it needs masked_checks")
        radius = self.clip_radius
        if radius is not None and not (isinstance(radius, int | float) and math.isfinite(radius) and radius > 0):
            raise ConfigError(f"task config: masked_clip_radius must be positive, got {radius!r}")
