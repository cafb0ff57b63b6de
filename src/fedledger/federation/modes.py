"""The closed sets of names a task config chooses from: profiles, scoring and aggregation rules, server
optimizers and differential-privacy modes.

Each is a :class:`enum.StrEnum`, so a member is the very string the canonical config JSON holds and compares
equal to it: code that reads ``config.scoring == "trust"`` and the config hash both see the same value.
:func:`parse_choice` turns a string into a member, or refuses it with a :class:`ConfigError` that names the
field, the value and what is allowed. Tests check the scoring, aggregation and optimizer enums against the
registries in :mod:`fedledger.learning`, which hold the implementations.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from fedledger.exceptions import ConfigError
from fedledger.learning.aggregation import AGGREGATION_RULES

__all__ = [
    "AUTO",
    "AggregationRule",
    "DpMode",
    "ProfileName",
    "Scoring",
    "ServerOptimizer",
    "ledger_rules",
    "parse_choice",
]

AUTO = "auto"
"""The value of ``scoring``, ``aggregation`` and ``dp_mode`` that asks for the profile's choice (resolved at
construction, so a committed config always names the rule and mode it uses)."""


class ProfileName(StrEnum):
    """Which kind of federation a task's robustness defaults are chosen for (:mod:`.profiles`)."""

    CONSORTIUM = "consortium"
    """Dozens of members or more, a sample of them training each round, validator committees."""
    FEW_SILOS = "few-silos"
    """A handful of members that all train and validate every round."""


class Scoring(StrEnum):
    """How a validator scores an update (:data:`fedledger.learning.SCORING_RULES`), 0..10000 with 5000 neutral."""

    TRUST = "trust"
    """5000 + 5000 x the cosine of the update with the validator's own update on its validation data."""
    RELATIVE = "relative"
    """The change in the validator's accuracy that the update causes, centred on 5000."""
    RELATIVE_ACCURACY = "relative-accuracy"
    """The same rule as ``relative`` under a second name, which committed configs may use."""
    RELATIVE_LOSS = "relative-loss"
    """The change in the validator's validation loss (cross-entropy) that the update causes, in basis points of a
    know-nothing model's loss, centred on 5000."""
    ACCURACY = "accuracy"
    """The validator's accuracy of the model after the update."""


class AggregationRule(StrEnum):
    """The aggregation rules a ledger task can use: :func:`ledger_rules`, as enum members."""

    BULYAN = "bulyan"
    CENTERED_CLIPPING = "centered-clipping"
    FEDAVG = "fedavg"
    FLTRUST_MEDIAN = "fltrust-median"
    FOOLSGOLD = "foolsgold"
    KRUM = "krum"
    MEDIAN = "median"
    MULTI_KRUM = "multi-krum"
    NORM_BOUNDING = "norm-bounding"
    TRIMMED_MEAN = "trimmed-mean"


class ServerOptimizer(StrEnum):
    """The server-side step applied to a round's aggregate (Reddi et al., ICLR 2021)."""

    NONE = "none"
    """The aggregate is the step."""
    FEDADAM = "fedadam"
    FEDYOGI = "fedyogi"
    FEDADAGRAD = "fedadagrad"


class DpMode(StrEnum):
    """Where differential-privacy noise is added (:mod:`fedledger.federation.privacy`)."""

    CLIENT = "client"
    """DP-FedAvg: each update clipped and noised by its member (any model)."""
    SAMPLE = "sample"
    """DP-SGD inside local training: record-level (Opacus for torch models, numpy for sklearn-sgd)."""


def ledger_rules() -> list[str]:
    """The aggregation rules a ledger task can use: every registered rule that needs no trusted
    reference update (FLTrust's server update has no trusted source among mutually distrusting
    members; the on-chain validator committees play that part). ``fltrust-median`` is FLTrust with
    the coordinate-wise median of the accepted updates as its reference, so it is one of them."""
    return sorted(name for name, spec in AGGREGATION_RULES.items() if not spec.needs_reference)


Choice = TypeVar("Choice", bound=StrEnum)


def parse_choice(choice: type[Choice], value: object, *, field: str, what: str) -> Choice:
    """``value`` as a member of ``choice``; otherwise a :class:`ConfigError` naming ``field`` (described as
    ``what``), the value and the allowed values."""
    if isinstance(value, str):
        try:
            return choice(value)
        except ValueError:
            pass
    allowed = ", ".join(member.value for member in choice)
    raise ConfigError(f"task config: unknown {what} {value!r} (field {field!r}); known: {allowed}")
