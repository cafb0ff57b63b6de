"""The default ``fedledger demo`` (validated rounds, record-level DP-SGD at epsilon 8) against the same demo without
DP, over several seeds: final accuracy, each round's verdict on the malicious hospital, the largest spend.

    PYTHONPATH=src nice python benchmarks/demo_record_dp.py --seeds 7,1,2,3,4 --out benchmarks/results/demo_record_dp.md

The private run is ``run_demo(seed=s, dp_epsilon=8)`` (what ``fedledger demo --seed s`` runs); the baseline is
``run_demo(seed=s)`` (``fedledger demo --seed s --dp-epsilon 0``). DP noise is fresh on every run.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from fedledger.demo import run_demo


def _run(seed: int, rounds: int, dp_epsilon: float | None) -> dict[str, Any]:
    started = time.process_time()
    data = run_demo(seed=seed, rounds=rounds, dp_epsilon=dp_epsilon).to_json()
    data["cpu_seconds"] = time.process_time() - started
    return data


def _attacker_rounds(data: dict[str, Any]) -> str:
    """Per round, how the malicious hospital was kept out (R rejected, L left out by reputation, A accepted)."""
    marks = {"rejected": "R", "accepted": "A", "no update": "-"}
    out = []
    for row in data["screening"]["rounds"]:
        outcomes = [v for k, v in row.items() if k != "round"]
        out.append("".join(marks.get(o, "L") for o in outcomes))
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="7,1,2,3,4")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the nodes' "left out" warnings; the table says it
    rows = [
        "| seed | DP | final accuracy | centralized | attacker per round | kept out every round | max epsilon | "
        "sigma (by hospital) | CPU s |",
        "|---:|---|---:|---:|---|---|---:|---|---:|",
    ]
    gaps = []
    for seed in (int(s) for s in args.seeds.split(",")):
        private, plain = _run(seed, args.rounds, 8.0), _run(seed, args.rounds, None)
        gaps.append(plain["final_accuracy"] - private["final_accuracy"])
        for label, data in (("record-level, epsilon 8", private), ("none", plain)):
            privacy = data["privacy"]
            sigmas = [m["noise_multiplier"] for m in privacy["members"] if "noise_multiplier" in m]
            rows.append(
                f"| {seed} | {label} | {data['final_accuracy']:.4f} | {data['centralized_accuracy']:.4f} | "
                f"{_attacker_rounds(data)} | {data['screening']['attackers_kept_out_every_round']} | "
                f"{privacy.get('max_epsilon') or '-'} | "
                f"{', '.join(f'{s:.3f}' for s in sigmas) or '-'} | {data['cpu_seconds']:.1f} |"
            )
        print(rows[-2], rows[-1], sep="\n", flush=True)
    rows.append("")
    rows.append(f"Accuracy lost to DP (non-private minus private), per seed: {', '.join(f'{g:+.4f}' for g in gaps)}")
    text = "\n".join(rows) + "\n"
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
