"""Attacks on federated learning, to red-team a consortium's own setup.

Each attack is a small deterministic class with up to three hooks (see
:class:`Attack`): data poisoning before local training, crafting the deltas the
malicious members submit, and the scores malicious validators submit. A
chain-less simulator calls the hooks directly; member nodes run an attack through
a :class:`Coalition`, whose :class:`CoalitionMember` s implement the node's
``Behavior`` protocol. :func:`make_attack` builds one by registry name.

A simulator round with malicious clients ``bad`` (their honest deltas in ``deltas``)::

    attack = make_attack("alie")                      # or parse_attack("fang-trim:mode=std")
    X, y = attack.poison_data(X, y, rng=rng, num_classes=C)   # once per malicious client
    ctx = AttackContext(global_params, round_id, num_malicious=len(bad), rng=rng,
                        num_workers=n_clients, clip_norm=clip)
    crafted = attack.craft([deltas[c] for c in bad], ctx)      # crafted[i] replaces deltas[bad[i]]
    scores = attack.scores(honest_scores, update_owners, malicious_members)  # a malicious validator
"""

from fedledger.attacks._base import Array, Attack, AttackContext, Compose, NoAttack, Scores
from fedledger.attacks.alie import ALIE, alie_z_max
from fedledger.attacks.backdoor import Backdoor, PixelTrigger, backdoor_success_rate
from fedledger.attacks.coalition import Coalition, CoalitionMember, Trainer
from fedledger.attacks.fang import FangKrum, FangTrim, krum_choice
from fedledger.attacks.ipm import IPM
from fedledger.attacks.label_flip import LabelFlip
from fedledger.attacks.registry import ATTACKS, attack_params, make_attack, parse_attack
from fedledger.attacks.score_aware import ScoreAware
from fedledger.attacks.simple import CountInflation, FreeRider, FreeRiderNoise, GaussianNoise, Scaling, SignFlip, Sybil
from fedledger.attacks.validators import LyingValidators

__all__ = [
    "ALIE",
    "Array",
    "ATTACKS",
    "IPM",
    "Attack",
    "AttackContext",
    "Backdoor",
    "Coalition",
    "CoalitionMember",
    "Compose",
    "CountInflation",
    "FangKrum",
    "FangTrim",
    "FreeRider",
    "FreeRiderNoise",
    "GaussianNoise",
    "LabelFlip",
    "LyingValidators",
    "NoAttack",
    "PixelTrigger",
    "Scaling",
    "Scores",
    "SignFlip",
    "ScoreAware",
    "Sybil",
    "Trainer",
    "alie_z_max",
    "attack_params",
    "backdoor_success_rate",
    "krum_choice",
    "make_attack",
    "parse_attack",
]
