"""Capping the example counts members declare at the round's median, before any rule.

FedAvg (McMahan et al., AISTATS 2017) weights each update by the number of examples its member trained on, and
that number is whatever the member declares: nobody can count another organization's rows. A member that declares
the task's ``max_examples`` outweighs everyone else together; with its update accepted, the aggregate is its update
(an accepted free rider that claims ten million examples freezes the model: the aggregate is its zero update).
Validators cannot see this: they score an update's effect on their data, not the weight it will get.

So every declared count is capped at the **upper median** of the counts committed in the round (all commitments,
accepted or not, so the cap does not move with the validators' verdicts): ``min(n_i, C)`` with ``C`` the
``n // 2``-th smallest of the ``n`` committed counts. While fewer than half of the members inflate, ``C`` is at
most some honest member's count, so no member outweighs the median member; members at or below ``C`` keep their
weights exactly. It is a function of chain data (the counts are in the commitments), so every aggregator applies
the same cap.

Rules that ignore example counts (median, trimmed mean, Krum's choice, Bulyan, FLTrust, centered clipping,
FoolsGold) are unchanged by it; FedAvg, norm bounding and Multi-Krum's average read the capped counts.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["cap_example_counts", "median_example_cap"]


def median_example_cap(committed: Sequence[int]) -> int:
    """The cap: the upper median (the ``n // 2``-th smallest) of the round's committed example counts."""
    if not committed:
        raise ValueError("no committed example counts to take the median of")
    return sorted(int(n) for n in committed)[len(committed) // 2]


def cap_example_counts(counts: Sequence[int], cap: int) -> list[int]:
    """``min(n, cap)`` for each count (a count of at most ``cap`` is kept exactly)."""
    if cap < 1:
        raise ValueError(f"an example cap must be positive, got {cap}")
    return [min(int(n), cap) for n in counts]
