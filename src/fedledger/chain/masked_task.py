"""The masked-check calls of a secure task (``SecureTrainingTask`` with a check committee).

A mixin of :class:`~fedledger.chain.task.TrainingTaskClient`: under masked checks, each trainer commits the hash of
its share bundle (encrypted to the round's committee) as its update hash; the committee drawn at round opening
(:meth:`check_committee`) posts its outcome (:meth:`post_check_outcome`) or, when its checks could not finish, an
abort record (:meth:`post_check_abort`); the set a strict majority posted is the round's accepted set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_bytes32, hex32

__all__ = ["ACCEPTED_WORDS", "MaskedCheckCalls", "accepted_words"]

ACCEPTED_WORDS = 4  # round_core.ACCEPTED_WORDS: 1,024 updates, 256 per word


def accepted_words(mask: int) -> list[int]:
    """An accepted set (bit i = update i) as the contract's words."""
    if mask < 0 or mask >> (256 * ACCEPTED_WORDS):
        raise ValueError(f"accepted set {mask:#x} does not fit {ACCEPTED_WORDS} words")
    return [(mask >> (256 * w)) & ((1 << 256) - 1) for w in range(ACCEPTED_WORDS)]


class MaskedCheckCalls:
    """Calls of the masked-check phase; ``_send`` and ``_only`` are the task client's."""

    # The task client's (annotations only: the mixin must not shadow them in the method order).
    chain: Chain
    _send: Callable[[Any], TxResult]
    _secure_functions: Callable[[str], Any]

    def check_committee_size(self) -> int:
        """The committee size of the task's masked checks; 0 for a secure task without them."""
        return int(self.chain.call(self._secure_functions("check_committee_size").check_committee_size()))

    def check_committee(self, round_id: int, *, block: Any = "latest") -> list[str]:
        """The round's check committee in MPyC party order (party i = entry i)."""
        f = self._secure_functions("check_committee")
        return [str(a) for a in self.chain.call(f.check_committee(int(round_id)), block=block)]

    def check_posts(self, round_id: int) -> list[str | None]:
        """What each committee member posted (the digest of its outcome or abort), in party order; None: nothing."""
        f = self._secure_functions("posted_digest")
        raw = [self.chain.call(f.posted_digest(int(round_id), m)) for m in self.check_committee(round_id)]
        return [None if not any(bytes(d)) else hex32(d) for d in raw]

    def num_check_posts(self, round_id: int) -> int:
        """How many committee members posted an outcome or an abort in the round."""
        return sum(post is not None for post in self.check_posts(round_id))

    def accepted_outcome(self, round_id: int) -> str | None:
        """The outcome blob hash a strict majority of the committee posted; None before one did."""
        raw = self.chain.call(self._secure_functions("accepted_outcome").accepted_outcome(int(round_id)))
        return None if not any(bytes(raw)) else hex32(raw)

    def post_check_outcome(self, round_id: int, accepted_mask: int, outcome_hash: str | bytes) -> TxResult:
        """VALIDATE: post this committee member's outcome: the set that passed and the outcome blob's hash."""
        fn = self._secure_functions("post_check_outcome").post_check_outcome(
            int(round_id), accepted_words(accepted_mask), as_bytes32(outcome_hash, what="outcome hash")
        )
        return self._send(fn)

    def post_check_abort(self, round_id: int, abort_hash: str | bytes) -> TxResult:
        """VALIDATE: post the hash of this committee member's abort record (its checks could not finish)."""
        fn = self._secure_functions("post_check_abort").post_check_abort(
            int(round_id), as_bytes32(abort_hash, what="abort hash")
        )
        return self._send(fn)

    def close_checks(self, round_id: int) -> TxResult:
        """End the masked checks without a majority outcome: the round aborts, the silent members are named."""
        return self._send(self._secure_functions("close_checks").close_checks(int(round_id)))
