"""The batched-commitments benchmark at small sizes: a round is two transactions whatever its leaf count, the
root's gas does not grow with it, and only the proof-carrying challenges grow, one level at a time. The benchmark
itself is ``benchmarks/batched_commitments.py``; it also runs a validated task's commit phase both ways."""

from __future__ import annotations

import sys

from conftest import BENCHMARKS

sys.path.insert(0, str(BENCHMARKS))
import batched_commitments  # noqa: E402


def test_a_round_costs_two_transactions_and_only_proofs_grow_with_the_leaves() -> None:
    result = batched_commitments.run((2, 8), (3,))
    small, large = result["rows"]
    assert (small["round_txs_batched"], large["round_txs_batched"]) == (2, 2)
    assert (small["round_txs_per_member"], large["round_txs_per_member"]) == (2, 8)
    assert (small["proof_length"], large["proof_length"]) == (1, 3)
    for fixed in ("post_batch", "finalize", "challenge_missing"):
        assert abs(small["gas"][fixed] - large["gas"][fixed]) < 100, fixed
    for proved in ("challenge_forged", "challenge_duplicate", "answer_missing"):
        assert small["gas"][proved] < large["gas"][proved] < small["gas"][proved] + 2 * 3_000, proved
    assert large["commit_gas_per_member_total"] == 8 * result["commit_update_gas"]
    assert "| 8 | 3 | 2 | 8 |" in batched_commitments.render(result)
    # A validated round's commit phase: three transactions batched (root, one delivery, close), one per trainer and
    # the close directly; every trainer's update is on the task either way (the benchmark checks it).
    (phase,) = result["rounds"]
    assert (phase["direct"]["txs"], phase["batched"]["txs"]) == (4, 3)
