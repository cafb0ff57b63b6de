"""Time per call of every aggregation rule in the registry.

Updates are Gaussian deltas around a shared direction (std 0.01) in 16-bit
fixed point, every fifth one replaced by a 10x sign-flipped copy so the robust
rules do real work; the time includes validating and stacking the updates.
Prints one row per rule: median seconds per call over the repeats and the ratio
to FedAvg measured in the same run.

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/aggregation_rules.py --updates 100 --params 100000

On a machine shared with other jobs, pin BLAS to one thread: a multi-threaded
BLAS that cannot get its cores spins and makes the Gram-based rules several
times slower.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from fedledger.learning import FixedPoint
from fedledger.learning.aggregation import AGGREGATION_RULES, aggregate


def make_updates(
    n: int, d: int, frac_bits: int, seed: int
) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    codec = FixedPoint(frac_bits)
    direction = rng.normal(0.0, 0.01, d)
    updates = []
    for k in range(n):
        delta = direction + rng.normal(0.0, 0.01, d)
        if k % 5 == 0:
            delta = -10.0 * delta
        updates.append({"w": codec.encode(delta[: d // 2]), "b": codec.encode(delta[d // 2 :])})
    reference = direction + rng.normal(0.0, 0.01, d)
    return updates, {"w": codec.encode(reference[: d // 2]), "b": codec.encode(reference[d // 2 :])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frac-bits", type=int, default=16)
    parser.add_argument("--rules", nargs="*", default=sorted(AGGREGATION_RULES))
    args = parser.parse_args()
    updates, reference = make_updates(args.updates, args.params, args.frac_bits, seed=0)
    counts = [100 + k for k in range(args.updates)]
    timings: dict[str, float] = {}
    for name in ["fedavg", *[r for r in args.rules if r != "fedavg"]]:
        spec = AGGREGATION_RULES[name]
        samples = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            aggregate(
                name,
                updates,
                counts,
                frac_bits=args.frac_bits,
                reference=reference if spec.needs_reference else None,
            )
            samples.append(time.perf_counter() - start)
        timings[name] = statistics.median(samples)
    print(f"{args.updates} updates x {args.params} params, median of {args.repeats} calls")
    print(f"{'rule':<20}{'s/call':>10}{'x fedavg':>10}")
    for name, seconds in timings.items():
        print(f"{name:<20}{seconds:>10.3f}{seconds / timings['fedavg']:>10.1f}")


if __name__ == "__main__":
    main()
