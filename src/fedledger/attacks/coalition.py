"""Running an attack inside member nodes: the coalition of malicious members and its per-member adapters.

A simulation with ``K`` malicious members builds one :class:`Coalition` and gives
member ``i`` the behaviour ``coalition.member(i)``. Each
:class:`CoalitionMember` implements the node's ``Behavior`` protocol
(``local_params(trained, global_params, round_id)``) plus three optional hooks:

``join(address=..., train=..., score=...)``
    called once by the node: the member's on-chain address (lying validators need
    it), a function ``train(global_params, round_id) -> params`` that reproduces
    its honest local training, and ``score(global_params, delta, round_id) -> int``,
    the score it would give a delta as a validator (score-aware attacks need it).
    Collusive attacks (ALIE, IPM, Fang, sybils) call the
    other colluders' ``train`` so that the first of them to commit already knows
    every colluder's benign delta (the coalition's full knowledge); a member that
    never joined contributes only once it commits itself (partial knowledge).
``poison_data(X, y, num_classes=...)``
    the member's training data after data poisoning (apply once, before training).
``scores(honest_scores, update_owners, committees=...)``
    what the member submits when it validates (``committees[i]``: the validators scoring update ``i``).

Randomness comes from ``seed`` and the round (and member) only, so a simulation
replays bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from fedledger.attacks._base import Array, Attack, AttackContext, Scores
from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.params import Params, params_delta

__all__ = ["Coalition", "CoalitionMember", "Trainer"]

Trainer = Callable[[Params, int], Params]
"""``train(global_params, round_id) -> locally trained params``: a member's honest training, replayable."""

SelfScorer = Callable[[Params, Params, int], int]
"""``score(global_params, delta, round_id) -> score``: what a member would score a delta as a validator."""

# Separate random streams per use, so adding data poisoning never shifts the crafting draws.
_CRAFT, _DATA = 0, 1


@dataclass
class _RoundState:
    round_id: int
    benign: dict[int, Params]
    crafted: list[Params] | None = None


class Coalition:
    """The ``num_malicious`` members running ``attack`` together."""

    def __init__(
        self,
        attack: Attack,
        *,
        num_malicious: int,
        num_workers: int | None = None,
        clip_norm: float | None = None,
        score_floor: int | None = None,
        scores_at_median_norm: bool = False,
        seed: int = 0,
    ) -> None:
        """``score_floor``: the lowest committee median members can draw without consequence (the task's
        acceptance threshold, or its ``min_mean_score`` where higher), what score-aware attacks aim above;
        ``scores_at_median_norm``: the task's validators score short updates at the round's median norm."""
        if num_malicious < 1:
            raise ConfigError(f"a coalition needs at least 1 member, got {num_malicious}")
        if num_workers is not None and num_workers < num_malicious:
            raise ConfigError(f"num_workers ({num_workers}) is below num_malicious ({num_malicious})")
        self.attack = attack
        self.num_malicious = num_malicious
        self.num_workers = num_workers
        self.clip_norm = clip_norm
        self.score_floor = score_floor
        self.scores_at_median_norm = scores_at_median_norm
        self.seed = seed
        self._members = [CoalitionMember(self, i) for i in range(num_malicious)]
        self._addresses: dict[int, str] = {}
        self._trainers: dict[int, Trainer] = {}
        self._scorers: dict[int, SelfScorer] = {}
        self._round: _RoundState | None = None

    def member(self, index: int) -> CoalitionMember:
        """Member ``index``'s behaviour (give it to that member's node)."""
        if not 0 <= index < self.num_malicious:
            raise BadInput(f"coalition member {index} out of range [0, {self.num_malicious})")
        return self._members[index]

    @property
    def members(self) -> list[CoalitionMember]:
        return list(self._members)

    @property
    def addresses(self) -> list[str]:
        """Addresses of the members that joined, in member order."""
        return [self._addresses[i] for i in sorted(self._addresses)]

    def join(self, index: int, *, address: str, train: Trainer | None = None, score: SelfScorer | None = None) -> None:
        self.member(index)  # range check
        self._addresses[index] = address
        if train is not None:
            self._trainers[index] = train
        if score is not None:
            self._scorers[index] = score

    def rng(self, purpose: int, *keys: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, purpose, *keys])

    def context(self, global_params: Params, round_id: int, num_malicious: int, *keys: int) -> AttackContext:
        return AttackContext(
            global_params=global_params,
            round_id=round_id,
            num_malicious=num_malicious,
            rng=self.rng(_CRAFT, round_id, *keys),
            num_workers=self.num_workers,
            clip_norm=self.clip_norm,
            score=self._expected_score(global_params, round_id) if self._scorers else None,
            score_floor=self.score_floor,
            scores_at_median_norm=self.scores_at_median_norm,
        )

    def _expected_score(self, global_params: Params, round_id: int) -> Callable[[Params], int]:
        """The median of the joined members' own scores of a delta: a committee of colluders."""
        scorers = [self._scorers[i] for i in sorted(self._scorers)]

        def score(delta: Params) -> int:
            return int(np.median([s(global_params, delta, round_id) for s in scorers]))

        return score

    def poison_data(self, index: int, X: Array, y: Array, *, num_classes: int | None = None) -> tuple[Array, Array]:
        self.member(index)
        return self.attack.poison_data(X, y, rng=self.rng(_DATA, index), num_classes=num_classes)

    def crafted_delta(self, index: int, benign: Params | None, global_params: Params, round_id: int) -> Params:
        """What member ``index`` submits in ``round_id`` given its own ``benign`` delta (None if it did not train)."""
        self.member(index)
        attack = self.attack
        if not attack.crafts_updates:
            if benign is None:
                raise BadInput(f"{attack.name} submits honest updates: member {index} must train")
            return benign
        if not attack.collusive:
            known = [benign] if benign is not None and attack.needs_training else []
            return attack.craft(known, self.context(global_params, round_id, 1, index))[0]
        state = self._round
        if state is None or state.round_id != round_id:
            state = self._round = _RoundState(round_id, {})
        if benign is not None:
            state.benign[index] = benign
        if state.crafted is None:
            if attack.needs_training:
                for other, train in sorted(self._trainers.items()):
                    if other not in state.benign:
                        state.benign[other] = params_delta(train(global_params, round_id), global_params)
            known = [state.benign[i] for i in sorted(state.benign)] if attack.needs_training else []
            state.crafted = attack.craft(known, self.context(global_params, round_id, self.num_malicious))
        return state.crafted[index]

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        *,
        committees: Sequence[Collection[str]] | None = None,
    ) -> Scores:
        if self.attack.lies_in_scores and not self._addresses:
            raise ConfigError(f"{self.attack.name}: no coalition member joined with its address")
        return self.attack.scores(honest_scores, update_owners, self.addresses, committees=committees)


class CoalitionMember:
    """One malicious member's behaviour: the node's ``Behavior`` protocol plus the coalition hooks."""

    def __init__(self, coalition: Coalition, index: int) -> None:
        self.coalition = coalition
        self.index = index
        self.name = coalition.attack.name

    @property
    def needs_training(self) -> bool:
        """False when the attack ignores the trained model (free-riders): the node may skip training."""
        return self.coalition.attack.needs_training or not self.coalition.attack.crafts_updates

    def join(self, *, address: str, train: Trainer | None = None, score: SelfScorer | None = None) -> None:
        self.coalition.join(self.index, address=address, train=train, score=score)

    def poison_data(self, X: Array, y: Array, *, num_classes: int | None = None) -> tuple[Array, Array]:
        return self.coalition.poison_data(self.index, X, y, num_classes=num_classes)

    def local_params(self, trained: Params, global_params: Params, round_id: int) -> Params:
        """The params this member submits (``global + crafted delta``), from its honestly ``trained`` ones."""
        benign = params_delta(trained, global_params) if self.needs_training else None
        crafted = self.coalition.crafted_delta(self.index, benign, global_params, round_id)
        return {
            k: (np.asarray(global_params[k], np.float64) + np.asarray(crafted[k], np.float64)).astype(np.float32)
            for k in sorted(global_params)
        }

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        *,
        committees: Sequence[Collection[str]] | None = None,
    ) -> Scores:
        return self.coalition.scores(honest_scores, update_owners, committees=committees)

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        """The example count this member declares for its update."""
        return self.coalition.attack.claimed_examples(num_examples, max_examples=max_examples)
