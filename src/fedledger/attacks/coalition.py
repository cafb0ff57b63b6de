"""Running an attack inside member nodes: the coalition of malicious members and its per-member middleware.

A simulation with ``K`` malicious members builds one :class:`Coalition` and gives
member ``i`` the behaviour ``coalition.member(i)``. Each :class:`CoalitionMember`
implements the node's ``fedledger.federation.behavior.Behavior`` protocol, wrapping
the honest member at every point an attack can intervene:

``attach(member)``
    called once by the node with the member's public handle: its on-chain address
    (lying validators need it), ``member.train(global_params, round_id)``, which
    reproduces its honest local training, and ``member.scorer(global_params, round_id)``,
    how it scores an update as a validator (score-aware attacks need it).
    Collusive attacks (ALIE, IPM, Fang, sybils) call the
    other colluders' training so that the first of them to commit already knows
    every colluder's benign delta (the coalition's full knowledge); a member that
    never joined contributes only once it commits itself (partial knowledge).
``local_params(train, global_params, round_id)``
    the params the member submits: ``global + crafted delta``, from the honest
    training ``train()`` (not run when the attack ignores it: free-riders).
``claimed_examples(n, max_examples=...)``
    the example count it declares.
``scores(honest_scores, update_owners, committees)``
    what the member submits when it validates (``committees()[i]``: the validators scoring update ``i``).
``proposal(model_blob, round_id)``
    the model it proposes as an aggregator: the honest one (the attacks here poison updates and scores).

``poison_data(X, y, num_classes=...)`` gives the member's training data after data
poisoning (apply once, before training). Randomness comes from ``seed`` and the
round (and member) only, so a simulation replays bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fedledger.attacks._base import Array, Attack, AttackContext, Scores
from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning import DecodedUpdate, UpdatePipeline
from fedledger.learning.params import Params, params_delta

__all__ = ["Coalition", "CoalitionMember", "Trainer"]

Trainer = Callable[[Params, int], Params]
"""``train(global_params, round_id) -> locally trained params``: a member's honest training, replayable."""

SelfScorer = Callable[[Params, Params, int], int]
"""``score(global_params, delta, round_id) -> score``: what a member would score a delta as a validator."""


class Member(Protocol):
    """The public handle of the honest member a :class:`CoalitionMember` wraps (the node's ``MemberHandle``)."""

    @property
    def address(self) -> str: ...

    def train(self, global_params: Params, round_id: int) -> Params: ...

    def scorer(self, global_params: Params, round_id: int) -> Callable[[DecodedUpdate], int]: ...


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
        frac_bits: int | None = None,
        seed: int = 0,
    ) -> None:
        """``frac_bits``: the task's fixed-point precision, with ``clip_norm`` the update pipeline members score
        candidate deltas through (score-aware attacks); ``score_floor``: the lowest committee median members can
        draw without consequence (the task's acceptance threshold, or its ``min_mean_score`` where higher), what
        score-aware attacks aim above;
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
        self.frac_bits = frac_bits
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
    """One malicious member's behaviour: middleware around its honest node (the node's ``Behavior`` protocol)."""

    def __init__(self, coalition: Coalition, index: int) -> None:
        self.coalition = coalition
        self.index = index
        self.name = coalition.attack.name
        self._scorer: tuple[int, Callable[[DecodedUpdate], int]] | None = None

    @property
    def needs_training(self) -> bool:
        """False when the attack ignores the trained model (free-riders): the honest training is not run."""
        return self.coalition.attack.needs_training or not self.coalition.attack.crafts_updates

    def attach(self, member: Member) -> None:
        """Join the coalition with the wrapped member's address, its honest training and its own scoring."""
        self.join(address=member.address, train=member.train, score=self._self_scorer(member))

    def join(self, *, address: str, train: Trainer | None = None, score: SelfScorer | None = None) -> None:
        self.coalition.join(self.index, address=address, train=train, score=score)

    def _self_scorer(self, member: Member) -> SelfScorer | None:
        """The score ``member`` would give ``global_params + delta`` as a validator of the round, on its own
        validation data: the delta through the task's update pipeline, then the member's scoring (its ``trust``
        reference trained once per round). None when the coalition does not know the task's pipeline."""
        clip_norm, frac_bits = self.coalition.clip_norm, self.coalition.frac_bits
        if clip_norm is None or frac_bits is None:
            return None
        pipeline = UpdatePipeline.default(max_norm=clip_norm, frac_bits=frac_bits)

        def score(global_params: Params, delta: Params, round_id: int) -> int:
            local = {k: (global_params[k].astype(np.float64) + delta[k]).astype(np.float32) for k in global_params}
            tensors, meta = pipeline.transform(local, global_params, num_examples=1)
            if self._scorer is None or self._scorer[0] != round_id:
                self._scorer = (round_id, member.scorer(global_params, round_id))
            return self._scorer[1](DecodedUpdate(tensors, 1, "fixed64", frac_bits, meta))

        return score

    def poison_data(self, X: Array, y: Array, *, num_classes: int | None = None) -> tuple[Array, Array]:
        return self.coalition.poison_data(self.index, X, y, num_classes=num_classes)

    def local_params(self, train: Callable[[], Params], global_params: Params, round_id: int) -> Params:
        """The params this member submits (``global + crafted delta``), from its honest training ``train()``."""
        benign = params_delta(train(), global_params) if self.needs_training else None
        crafted = self.coalition.crafted_delta(self.index, benign, global_params, round_id)
        return {
            k: (np.asarray(global_params[k], np.float64) + np.asarray(crafted[k], np.float64)).astype(np.float32)
            for k in sorted(global_params)
        }

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        committees: Callable[[], Sequence[Collection[str]]] | None = None,
    ) -> Scores:
        """The scores this member submits, its attack seeing the honest ones and the round's committees."""
        return self.coalition.scores(
            honest_scores, update_owners, committees=committees() if committees is not None else None
        )

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        """The example count this member declares for its update."""
        return self.coalition.attack.claimed_examples(num_examples, max_examples=max_examples)

    def proposal(self, model_blob: bytes, round_id: int) -> bytes:
        """The next model this member proposes when it aggregates: the one the rules give."""
        return model_blob
