"""The ``Ledger`` port: the operations a round needs from its coordinator.

The round engine (:mod:`fedledger.federation.engine`) reads the round's state and sends its actions through
this port only. :class:`~fedledger.chain.task.TrainingTaskClient`, the client of the TrainingTask contract,
implements it on chain; :class:`~fedledger.federation.memory_ledger.InMemoryLedger` implements the same rules
in memory, for simulations that need no chain. :class:`SecureLedger` adds the secure-aggregation phases.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from fedledger.chain.task import (
    MemberView,
    Phase,
    RoundInfo,
    SecureMessages,
    SecurePeer,
    SecureRoundInfo,
    SecureView,
    TrainerStanding,
    UpdateInfo,
    ValidatorStanding,
)

__all__ = ["Ledger", "SecureLedger"]


class Ledger(Protocol):
    """A validated round's coordinator: phases, commitments, scores, acceptance, proposals and reputation."""

    @property
    def address(self) -> str: ...

    @property
    def current_round(self) -> int: ...

    def round(self, round_id: int) -> RoundInfo: ...

    def member_view(self, member: str) -> MemberView:
        """Everything a member's step needs about the current round, read at once."""
        ...

    def open_round(self) -> int: ...

    def commit_update(
        self, round_id: int, update_hash: str, num_examples: int, *, dataset_id: int = 0, epsilon_micro: int = 0
    ) -> int:
        """Commit an update blob's hash; the index of the commitment in the round."""
        ...

    def close_commits(self, round_id: int) -> Phase: ...

    def updates(self, round_id: int) -> list[UpdateInfo]: ...

    def assignments_of(self, round_id: int, validator: str) -> list[int]:
        """The updates ``validator`` scores in ``round_id`` (its committee seats)."""
        ...

    def is_round_validator(self, round_id: int, validator: str) -> bool: ...

    def scorers_of(self, round_id: int, updates: Sequence[UpdateInfo] | None = None) -> list[list[str]]: ...

    def submit_scores(self, round_id: int, scores: Sequence[int | None]) -> object: ...

    def flag_update(self, round_id: int, index: int, reason: str) -> object: ...

    def close_validation(self, round_id: int) -> Phase: ...

    def propose_aggregate(self, round_id: int, model_hash: str, accepted_mask: int) -> bool:
        """Propose the round's next model; True when this proposal reached the quorum and finalized the round."""
        ...

    def close_aggregation(self, round_id: int) -> Phase: ...

    def left_out_as_trainer(self, round_id: int, trainer: str) -> bool: ...

    def trainer_standing(self, trainer: str) -> TrainerStanding: ...

    def reputation_of(self, validator: str) -> ValidatorStanding: ...


class SecureLedger(Ledger, Protocol):
    """A secure-aggregation round's coordinator: the key, share and unmask phases around the commitments."""

    def secure_view(self, member: str) -> SecureView: ...

    def post_key_advert(self, round_id: int, advert_hash: str) -> object: ...

    def close_keys(self, round_id: int) -> Phase: ...

    def post_share_bundle(self, round_id: int, bundle_hash: str) -> object: ...

    def close_shares(self, round_id: int) -> Phase: ...

    def submit_reveal(self, round_id: int, reveal_hash: str) -> object: ...

    def close_unmask(self, round_id: int) -> Phase: ...

    def secure_messages(self, round_id: int) -> list[SecureMessages]: ...

    def secure_round(self, round_id: int) -> SecureRoundInfo: ...

    def secure_keys(self, round_id: int, *, block: int) -> dict[str, str]:
        """The listed trainers' key-agreement keys as registered at ``block`` (the round's opening)."""
        ...

    def secure_listed(self, round_id: int, *, block: int) -> list[str]: ...

    def secure_keys_of(
        self, round_id: int, members: Sequence[str], *, block: int, opened_block: int | None = None
    ) -> dict[str, str]:
        """``members``' key-agreement keys as registered at ``block`` (zero for one the round does not list);
        ``opened_block``: the round's opening block, where the caller has read it."""
        ...

    def secure_adverts(self, round_id: int, members: Sequence[str]) -> list[str | None]: ...

    def secure_peers(self, round_id: int, members: Sequence[str]) -> list[SecurePeer]: ...
