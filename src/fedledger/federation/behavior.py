"""The points at which a member's behaviour may differ from the protocol: typed middleware around an honest node.

Like Flower's client mods, a :class:`Behavior` sits between the round engine and the honest member's work. At
each point the node hands it what the honest member would do, and uses what it returns:

``attach(member)``
    once, when the node starts: the member's public handle (:class:`MemberHandle`: its address, its replayable
    honest training, its validator's scoring), what a coalition needs to know about its members;
``local_params(train, global_params, round_id)``
    the params the member submits; ``train()`` runs the honest local training (a free-rider never calls it);
``claimed_examples(num_examples, max_examples=...)``
    the example count it declares for an update trained on ``num_examples``;
``scores(honest_scores, update_owners, committees)``
    the scores it submits as a validator; ``committees()`` reads, on demand, the validators scoring each update;
``proposal(model_blob, round_id)``
    the next model it proposes as an aggregator, given the one the rules give (a cheating aggregator's point).

:class:`Honest` is the protocol at every point; a behaviour overrides only what it changes. The honest node
calls every point of its behaviour and knows nothing of attacks (``fedledger.attacks.CoalitionMember`` is the
behaviour that runs an attack).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from fedledger.learning import DecodedUpdate, Params

__all__ = ["Behavior", "Committees", "Honest", "MemberHandle", "Scorer"]

Scorer = Callable[[DecodedUpdate], int]
"""A validator's score of one decoded update, on its own validation data."""

Committees = Callable[[], Sequence[Collection[str]]]
"""Reads the validators scoring each of a round's updates (``committees()[i]``: those scoring update ``i``)."""


class MemberHandle(Protocol):
    """What a behaviour may use of the member it wraps: public, honest operations only."""

    @property
    def address(self) -> str: ...

    def train(self, global_params: Params, round_id: int) -> Params:
        """The member's honest local training from ``global_params`` in ``round_id`` (seeded: replayable)."""
        ...

    def scorer(self, global_params: Params, round_id: int) -> Scorer:
        """How this member, as a validator of ``round_id``, scores an update to ``global_params``."""
        ...


class Behavior(Protocol):
    """How a member acts at each point where it may deviate from the protocol (see the module docstring)."""

    @property
    def name(self) -> str: ...

    def attach(self, member: MemberHandle) -> None: ...

    def local_params(self, train: Callable[[], Params], global_params: Params, round_id: int) -> Params: ...

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int: ...

    def scores(
        self, honest_scores: Sequence[int | None], update_owners: Sequence[str], committees: Committees
    ) -> list[int | None]: ...

    def proposal(self, model_blob: bytes, round_id: int) -> bytes: ...


class Honest:
    """The protocol, at every point: trains, declares what it trained on, submits its honest scores, proposes the
    model the rules give."""

    name = "honest"

    def attach(self, member: MemberHandle) -> None:
        """An honest member needs nothing of itself beyond what the node already does."""

    def local_params(self, train: Callable[[], Params], global_params: Params, round_id: int) -> Params:
        return train()

    def claimed_examples(self, num_examples: int, *, max_examples: int) -> int:
        return num_examples

    def scores(
        self, honest_scores: Sequence[int | None], update_owners: Sequence[str], committees: Committees
    ) -> list[int | None]:
        return list(honest_scores)

    def proposal(self, model_blob: bytes, round_id: int) -> bytes:
        return model_blob
