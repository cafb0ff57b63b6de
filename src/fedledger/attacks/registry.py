"""Attacks by name: the registry behind ``--attack NAME`` and benchmark sweeps.

``make_attack("alie")``, ``make_attack("backdoor", target_label=1, boost=5.0)``;
``"sign-flip+lying-validators"`` composes attacks (each parameter goes to every part
that takes it); ``sybil`` and ``score-aware`` take ``inner=`` (a name or an attack) and
pass the parameters they do not know to it. :func:`parse_attack` reads the same from one
string, ``"backdoor:target_label=1,image_shape=(28,28)"``, for command lines.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import Any

from fedledger.attacks._base import Attack, Compose, NoAttack
from fedledger.attacks.alie import ALIE
from fedledger.attacks.backdoor import Backdoor
from fedledger.attacks.fang import FangKrum, FangTrim
from fedledger.attacks.ipm import IPM
from fedledger.attacks.label_flip import LabelFlip
from fedledger.attacks.score_aware import ScoreAware
from fedledger.attacks.simple import CountInflation, FreeRider, FreeRiderNoise, GaussianNoise, Scaling, SignFlip, Sybil
from fedledger.attacks.validators import LyingValidators
from fedledger.exceptions import ConfigError

__all__ = ["ATTACKS", "attack_params", "make_attack", "parse_attack"]

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (
        NoAttack,
        LabelFlip,
        SignFlip,
        Scaling,
        Backdoor,
        GaussianNoise,
        ALIE,
        IPM,
        FangKrum,
        FangTrim,
        FreeRider,
        FreeRiderNoise,
        CountInflation,
        Sybil,
        ScoreAware,
        LyingValidators,
    )
}
"""Every attack class by registry name."""

WRAPPERS: tuple[type[Attack], ...] = (Sybil, ScoreAware)
"""Attacks around an ``inner`` one: parameters they do not take go to it."""


def attack_params(name: str) -> dict[str, Any]:
    """The parameters attack ``name`` takes, with their defaults."""
    cls = _lookup(name)
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def _lookup(name: str) -> type[Attack]:
    try:
        return ATTACKS[name]
    except KeyError:
        raise ConfigError(f"unknown attack {name!r}; known: {', '.join(sorted(ATTACKS))}") from None


def _build(cls: type[Attack], params: dict[str, Any]) -> Attack:
    try:
        return cls(**params)
    except TypeError as exc:  # a value of the wrong type met a comparison in __post_init__
        raise ConfigError(f"bad parameters for attack {cls.name!r} {params}: {exc}") from exc


def make_attack(name: str, **params: Any) -> Attack:
    """The attack registered as ``name`` (``a+b`` composes), built with ``params``; ``ConfigError`` names
    an unknown attack or parameter and any out-of-range value."""
    parts = [part.strip() for part in name.split("+")]
    if len(parts) > 1:
        unused = set(params)
        built = []
        for part in parts:
            accepted = _accepted(part)
            built.append(make_attack(part, **{k: v for k, v in params.items() if k in accepted}))
            unused -= accepted
        if unused:
            raise ConfigError(f"no attack in {name!r} takes parameter(s) {sorted(unused)}")
        return Compose(tuple(built))
    cls = _lookup(name)
    own = attack_params(name)
    if cls in WRAPPERS:
        mine = {k: params.pop(k) for k in list(params) if k in own and k != "inner"}
        inner = params.pop("inner", None)
        if isinstance(inner, str):
            inner = make_attack(inner, **params)
        elif params:
            raise ConfigError(f"{name} passes {sorted(params)} to its inner attack only when inner is a name")
        return _build(cls, mine if inner is None else {**mine, "inner": inner})
    unknown = sorted(set(params) - set(own))
    if unknown:
        takes = ", ".join(sorted(own)) or "no parameters"
        raise ConfigError(f"attack {name!r} has no parameter(s) {unknown}; it takes {takes}")
    return _build(cls, params)


def _accepted(name: str) -> set[str]:
    """Parameter names ``name`` takes (a sybil also takes any registered attack's, for its inner one)."""
    if _lookup(name) in WRAPPERS:
        return set(attack_params(name)) | {p for other in ATTACKS if other != name for p in attack_params(other)}
    return set(attack_params(name))


# Split "k=v,k=v" on commas outside parentheses and brackets.
_PARAM_SPLIT = re.compile(r",(?![^()\[\]]*[)\]])")


def parse_attack(spec: str) -> Attack:
    """An attack from ``"name"`` or ``"name:key=value,key=value"``; values are Python literals
    (``1``, ``0.5``, ``None``, ``(28, 28)``), anything else is a string."""
    name, _, rest = spec.strip().partition(":")
    params: dict[str, Any] = {}
    for item in filter(None, (s.strip() for s in _PARAM_SPLIT.split(rest))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"attack parameter {item!r} in {spec!r} is not key=value")
        try:
            value: Any = ast.literal_eval(raw.strip())
        except (ValueError, SyntaxError):
            value = raw.strip()
        params[key.strip()] = value
    return make_attack(name.strip(), **params)
