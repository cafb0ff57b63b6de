"""Lying validators: colluding validators vouch for their own side and sink everyone else.

Acceptance is the median over validators of each update's scores
(:func:`fedledger.chain.task.contract_median`), so lying validators move an
update's median only once they are a large enough share of its scorers. This is
the collusion the median rule is meant to withstand; see Shayan, Fung, Yoon,
Beschastnikh, "Biscotti: A Blockchain System for Private and Secure Federated
Learning", IEEE TPDS 2021, and Li, Chen, Luo, et al., "A Blockchain-Based
Decentralized Federated Learning Framework with Committee Consensus", IEEE
Network 2021, for the committee-collusion threat in ledger-coordinated FL.

The ``adaptive`` liar answers validator reputation (``fedledger.chain.reputation``), which
distrusts validators whose scores keep landing on the other side of the outcome: committees
are public once commits close, so colluders score honestly wherever they are a minority of an
update's scorers and lie only where they hold a strict majority, which decides the median.
Their scores then never go against an outcome, while the honest validators outvoted in those
committees' scores do.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import ClassVar

from fedledger.attacks._base import Attack, Scores
from fedledger.exceptions import BadInput, ConfigError
from fedledger.learning.scoring import MAX_SCORE

__all__ = ["LyingValidators"]


@dataclass(frozen=True)
class LyingValidators(Attack):
    """Scores ``high`` for the colluders' updates and ``low`` for every other one (abstentions kept).

    ``adaptive``: lie only on updates whose scorers (``committees[i]``) are more than half colluders,
    and submit the honest score elsewhere.
    """

    name: ClassVar[str] = "lying-validators"
    lies_in_scores: ClassVar[bool] = True

    high: int = MAX_SCORE
    low: int = 0
    adaptive: bool = False

    def __post_init__(self) -> None:
        for label, value in (("high", self.high), ("low", self.low)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SCORE:
                raise ConfigError(f"{label} must be an integer score in [0, {MAX_SCORE}], got {value!r}")
        if not isinstance(self.adaptive, bool):
            raise ConfigError(f"adaptive must be true or false, got {self.adaptive!r}")

    def scores(
        self,
        honest_scores: Sequence[int | None],
        update_owners: Sequence[str],
        malicious_members: Collection[str],
        *,
        committees: Sequence[Collection[str]] | None = None,
    ) -> Scores:
        if len(honest_scores) != len(update_owners):
            raise BadInput(f"{len(honest_scores)} scores but {len(update_owners)} update owners")
        colluders = {m.lower() for m in malicious_members}
        lie = [True] * len(update_owners)
        if self.adaptive:
            if committees is None or len(committees) != len(update_owners):
                n, got = len(update_owners), "none" if committees is None else len(committees)
                raise BadInput(f"adaptive lying needs each update's committee: {n} updates, {got} given")
            lie = [2 * sum(v.lower() in colluders for v in committee) > len(committee) for committee in committees]

        def lie_about(owner: str) -> int:
            return self.high if owner.lower() in colluders else self.low

        return [
            None if score is None else lie_about(owner) if lies else score
            for score, owner, lies in zip(honest_scores, update_owners, lie, strict=True)
        ]
