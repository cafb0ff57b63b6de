"""Checking a rule's parameters, with errors that name the rule and the parameter."""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction

import numpy as np

from fedledger.exceptions import AggregationError

# The rule modules' shared toolkit, not the package's API: no __all__, and nothing here is re-exported.


def resolve_params(rule: str, defaults: Mapping[str, object], given: Mapping[str, object] | None) -> dict[str, object]:
    """The defaults overridden by ``given``; an unknown parameter name is an error."""
    params = dict(defaults)
    for key, value in (given or {}).items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            raise AggregationError(f"rule {rule!r} has no parameter {key!r} (parameters: {known})")
        params[key] = value
    return params


def count_param(rule: str, name: str, value: object, *, minimum: int = 0) -> int:
    """An integer parameter ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise AggregationError(f"rule {rule!r}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _as_fraction(rule: str, name: str, value: object) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | Fraction | np.integer | np.floating):
        raise AggregationError(f"rule {rule!r}: {name} must be a number, got {value!r}")
    if isinstance(value, float | np.floating) and not math.isfinite(float(value)):
        raise AggregationError(f"rule {rule!r}: {name} must be finite, got {value!r}")
    # Fraction(float) is the float's exact binary value: the same on every machine.
    return (
        Fraction(value)
        if isinstance(value, Fraction)
        else Fraction(float(value) if isinstance(value, float | np.floating) else int(value))
    )


def positive_real(rule: str, name: str, value: object) -> Fraction:
    """A finite number ``> 0``, exactly as a Fraction."""
    result = _as_fraction(rule, name, value)
    if result <= 0:
        raise AggregationError(f"rule {rule!r}: {name} must be positive, got {value!r}")
    return result


def bounded_fraction(rule: str, name: str, value: object, *, upper: Fraction) -> Fraction:
    """A number in ``[0, upper)``, exactly as a Fraction."""
    result = _as_fraction(rule, name, value)
    if not 0 <= result < upper:
        raise AggregationError(f"rule {rule!r}: {name} must be in [0, {upper}), got {value!r}")
    return result
