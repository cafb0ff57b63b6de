"""CPU time per call of every aggregation rule in the registry, beside Flower's function for the same rule.

Updates are Gaussian deltas around a shared direction (std 0.01) in 16-bit
fixed point, every fifth one replaced by a 10x sign-flipped copy so the robust
rules do real work; fedledger's time includes validating and stacking the
updates. Prints one row per rule: median CPU seconds per call over the repeats
and the ratio to FedAvg measured in the same run.

When Flower is installed (the ``bench`` extra, ``flwr==1.42.0``), a second table
times the functions of ``flwr.server.strategy.aggregate`` for the rules Flower has
(``aggregate``, ``aggregate_median``, ``aggregate_trimmed_avg``,
``aggregate_krum``, ``aggregate_bulyan``) on the same updates, decoded to float32
(the dtype Flower clients send; every value here is exact in it; ``--flower-dtype
float64`` for double precision), with the same
parameters (Krum's ``f``, Multi-Krum's ``m`` and example weighting, the trimmed
fraction), and prints both times, their ratio (below 1: fedledger is faster) and
the largest difference between the two results in fixed-point steps (LSB), which
shows both compute the same rule. Flower's Bulyan runs ``n - 2f`` Krum passes,
each over a fresh distance matrix in Python loops; it is left out unless
``--flower-bulyan`` is given (minutes at 100 updates of 1 M parameters).

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python benchmarks/aggregation_rules.py --updates 100 --params 1000000 \
        --rules median trimmed-mean krum multi-krum

On a machine shared with other jobs, pin BLAS to one thread: a multi-threaded
BLAS that cannot get its cores spins and makes the Gram-based rules several
times slower. CPU time (``time.process_time``) rather than wall time keeps the
other jobs' load out of the numbers as far as it can.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.learning import FixedPoint
from fedledger.learning.aggregation import AGGREGATION_RULES, aggregate

Array = npt.NDArray[Any]
FlowerResults = list[tuple[list[Array], int]]


def make_updates(n: int, d: int, frac_bits: int, seed: int) -> tuple[list[dict[str, Array]], dict[str, Array]]:
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


def cpu_seconds(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median CPU seconds of ``repeats`` calls, and the last call's result."""
    samples = []
    result = None
    for _ in range(repeats):
        start = time.process_time()
        result = call()
        samples.append(time.process_time() - start)
    return statistics.median(samples), result


def krum_f(n: int) -> int:
    return (n - 3) // 2  # fedledger's default: the largest f with n > 2f + 2


def flower_calls(n: int, beta: float) -> dict[str, tuple[Callable[[FlowerResults], list[Array]], dict[str, Any]]]:
    """Flower's function for each rule it has, and the fedledger params that make fedledger compute the same rule."""
    from flwr.server.strategy import aggregate as flower

    f = krum_f(n)
    bulyan_f = (n - 3) // 4
    return {
        "fedavg": (flower.aggregate, {}),
        "median": (flower.aggregate_median, {}),
        "trimmed-mean": (lambda r: flower.aggregate_trimmed_avg(r, beta), {"beta": beta}),
        "krum": (lambda r: flower.aggregate_krum(r, f, 0), {"f": f}),
        # Flower's Multi-Krum averages the kept updates weighted by their example counts.
        "multi-krum": (lambda r: flower.aggregate_krum(r, f, n - f), {"f": f, "m": n - f, "weighting": "examples"}),
        # aggregate_bulyan removes the chosen updates from the list it is given: pass a copy.
        "bulyan": (
            lambda r: flower.aggregate_bulyan(list(r), bulyan_f, flower.aggregate_krum, to_keep=0),
            {"f": bulyan_f},
        ),
    }


def time_rules(args: argparse.Namespace, updates: list[dict[str, Array]], reference: dict[str, Array]) -> None:
    counts = [100 + k for k in range(args.updates)]
    timings: dict[str, float] = {}
    for name in ["fedavg", *[r for r in args.rules if r != "fedavg"]]:
        spec = AGGREGATION_RULES[name]
        timings[name], _ = cpu_seconds(
            partial(
                aggregate,
                name,
                updates,
                counts,
                frac_bits=args.frac_bits,
                reference=reference if spec.needs_reference else None,
            ),
            args.repeats,
        )
    print(f"{args.updates} updates x {args.params} params, median CPU s of {args.repeats} calls")
    print(f"{'rule':<20}{'s/call':>10}{'x fedavg':>10}")
    for name, seconds in timings.items():
        print(f"{name:<20}{seconds:>10.3f}{seconds / timings['fedavg']:>10.1f}")


def compare_with_flower(args: argparse.Namespace, updates: list[dict[str, Array]]) -> None:
    try:
        import flwr
    except ImportError:
        print("\nflwr is not installed: no comparison with Flower (pip install 'fedledger[bench]').")
        return
    codec = FixedPoint(args.frac_bits)
    counts = [100 + k for k in range(args.updates)]
    # Flower's layer order does not matter to any of these rules; keep fedledger's sorted-name order.
    layers = [[codec.decode(u[name]) for name in sorted(u)] for u in updates]
    floats = [[layer.astype(args.flower_dtype) for layer in row] for row in layers]
    if not all(
        np.array_equal(a, b) for row, frow in zip(layers, floats, strict=True) for a, b in zip(row, frow, strict=True)
    ):
        print(f"note: some values are not exact in {args.flower_dtype}; Flower sees them rounded")
    results: FlowerResults = list(zip(floats, counts, strict=True))
    calls = flower_calls(args.updates, args.beta)
    wanted = [r for r in args.rules if r in calls and (r != "bulyan" or args.flower_bulyan)]
    print(f"\nagainst Flower {flwr.__version__} ({args.flower_dtype}), same updates,", end=" ")
    print(f"median CPU s of {args.repeats} calls")
    print(f"{'rule':<14}{'fedledger s':>12}{'Flower s':>10}{'ratio':>8}{'max diff LSB':>14}")
    for name in ["fedavg", *[r for r in wanted if r != "fedavg"]]:
        flower_fn, params = calls[name]
        ours_s, ours = cpu_seconds(
            partial(aggregate, name, updates, counts, frac_bits=args.frac_bits, params=params), args.repeats
        )
        theirs_s, theirs = cpu_seconds(partial(flower_fn, results), args.repeats)
        ours_flat = np.concatenate([codec.decode(ours.delta[k]).ravel() for k in sorted(ours.delta)])
        theirs_flat = np.concatenate([np.asarray(t, dtype=np.float64).ravel() for t in theirs])
        diff = float(np.max(np.abs(ours_flat - theirs_flat))) / codec.resolution
        print(f"{name:<14}{ours_s:>12.3f}{theirs_s:>10.3f}{ours_s / theirs_s:>8.2f}{diff:>14.2f}")
    if "bulyan" in args.rules and not args.flower_bulyan:
        print("bulyan: Flower's aggregate_bulyan left out (slow at this size); pass --flower-bulyan to include it")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--params", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frac-bits", type=int, default=16)
    parser.add_argument("--beta", type=float, default=0.1, help="trimmed mean: fraction cut from each side")
    parser.add_argument("--rules", nargs="*", default=sorted(AGGREGATION_RULES))
    parser.add_argument("--no-flower", action="store_true", help="only the table of fedledger's rules")
    parser.add_argument("--only-flower", action="store_true", help="only the comparison with Flower")
    parser.add_argument("--flower-dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--flower-bulyan", action="store_true", help="also time Flower's aggregate_bulyan")
    args = parser.parse_args()
    updates, reference = make_updates(args.updates, args.params, args.frac_bits, seed=0)
    if not args.only_flower:
        time_rules(args, updates, reference)
    if not args.no_flower:
        compare_with_flower(args, updates)


if __name__ == "__main__":
    main()
