"""How the default ``fedledger demo``'s validators score every update, round by round, under one scoring rule or
several: the malicious hospital's committee median against the honest hospitals', and who was rejected.

    PYTHONPATH=src nice python benchmarks/demo_screening.py --scorings relative,relative-loss --seeds 7,7,7,1,2 \
        --json screening.json --out screening.md

Each run is ``run_demo(seed=s, dp_epsilon=8, scoring=rule)`` (``fedledger demo --seed s --scoring rule``): validated
rounds, the few-silos profile, record-level DP-SGD at epsilon 8 with fresh OS noise on every run, so repeated seeds
are distinct runs. A score is the median of the validators' centred scores of an update, what the contract compares
with the acceptance threshold (4500). ``--dp-epsilon 0`` runs the same demo without DP.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

from fedledger.demo import run_demo
from fedledger.exceptions import UpdateRejected
from fedledger.federation.node import MemberNode
from fedledger.federation.rules import check_update
from fedledger.learning import build_model
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.scoring import accuracy_bps, at_median_norm, validation_loss

RAW: list[dict[str, Any]] = []
"""With ``--raw``: every validator's accuracy and loss before and after each other update, at the median norm."""


def _measure_raw(node: MemberNode, info: Any) -> None:
    """What a validator of the few-silos profile measures before scoring: each other update of the round, lifted to
    the round's median norm, applied to the global model, on the validator's validation split."""
    global_params, _ = node.global_model(info.global_model)
    spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
    decoded = {}
    for update in node.closed_updates(info.round_id):
        try:
            decoded[update.index] = (update.member, check_update(node.store, node.config, spec, update))
        except UpdateRejected:
            continue
    lifted = at_median_norm([d for _, d in decoded.values()])
    X_val, y_val = node.validation_split()
    model = build_model(node.config.model)
    model.set_params(global_params)
    acc_before = accuracy_bps(model.predict(X_val), y_val)
    loss_before = validation_loss(model, global_params, X_val, y_val)
    for (member, _), scaled in zip(decoded.values(), lifted, strict=True):
        if member.lower() == node.address.lower():
            continue
        candidate = apply_update(global_params, scaled.tensors, frac_bits=scaled.fixed_frac_bits or 0)
        model.set_params(candidate)
        RAW.append(
            {
                "round": info.round_id,
                "validator": node.address,
                "member": member,
                "acc_before": acc_before,
                "acc_after": accuracy_bps(model.predict(X_val), y_val),
                "loss_before": loss_before,
                "loss_after": validation_loss(model, candidate, X_val, y_val),
            }
        )


def _instrument() -> None:
    original = MemberNode.score

    def score(self: MemberNode, info: Any) -> None:
        _measure_raw(self, info)
        original(self, info)

    MemberNode.score = score  # type: ignore[method-assign]


def _run(seed: int, rounds: int, scoring: str, dp_epsilon: float | None) -> dict[str, Any]:
    started = time.process_time()
    data = run_demo(seed=seed, rounds=rounds, dp_epsilon=dp_epsilon, scoring=scoring).to_json()
    malicious = {m["name"] for m in data["members"] if m["malicious"]}
    honest = {m["name"] for m in data["members"] if not m["malicious"]}
    per_round = []
    for row in data["rounds"]:
        scores = row["scores"]
        rejected = {rej["member"] for rej in row["rejected"]}
        attacker = [scores[name] for name in sorted(malicious) if scores.get(name) is not None]
        honest_scores = [scores[name] for name in sorted(honest) if scores.get(name) is not None]
        per_round.append(
            {
                "round": row["round"],
                "accuracy": row["accuracy"],
                "attacker_scores": attacker,
                "attacker_accepted": bool(malicious & set(row["accepted"])),
                "attacker_left_out": not attacker,
                "honest_scores": honest_scores,
                "honest_rejected": sorted(rejected & honest),
            }
        )
    return {
        "seed": seed,
        "scoring": scoring,
        "dp_epsilon": dp_epsilon,
        "final_accuracy": data["final_accuracy"],
        "centralized_accuracy": data["centralized_accuracy"],
        "max_epsilon": data["privacy"].get("max_epsilon"),
        "rounds": per_round,
        "cpu_seconds": round(time.process_time() - started, 1),
    }


def _marks(run: dict[str, Any]) -> str:
    """Per round: R the attacker rejected, A accepted, L left out by its trainer reputation."""
    return "".join("L" if r["attacker_left_out"] else "A" if r["attacker_accepted"] else "R" for r in run["rounds"])


def _row(run: dict[str, Any]) -> str:
    attacker = " ".join(str(r["attacker_scores"][0]) if r["attacker_scores"] else "-" for r in run["rounds"])
    lowest_honest = " ".join(str(min(r["honest_scores"])) if r["honest_scores"] else "-" for r in run["rounds"])
    honest_rejections = sum(len(r["honest_rejected"]) for r in run["rounds"])
    return (
        f"| {run['scoring']} | {run['seed']} | {run['final_accuracy']:.4f} | {run['centralized_accuracy']:.4f} | "
        f"{_marks(run)} | {attacker} | {lowest_honest} | {honest_rejections} | {run['max_epsilon'] or '-'} | "
        f"{run['cpu_seconds']} |"
    )


def _summary(runs: list[dict[str, Any]]) -> list[str]:
    lines = []
    for scoring in dict.fromkeys(run["scoring"] for run in runs):
        mine = [run for run in runs if run["scoring"] == scoring]
        accepted = sum(r["attacker_accepted"] for run in mine for r in run["rounds"])
        with_attacker = sum(1 for run in mine if any(r["attacker_accepted"] for r in run["rounds"]))
        honest_rejected = sum(len(r["honest_rejected"]) for run in mine for r in run["rounds"])
        honest_updates = sum(len(r["honest_scores"]) for run in mine for r in run["rounds"])
        attacker_scores = [s for run in mine for r in run["rounds"] for s in r["attacker_scores"]]
        honest_scores = [s for run in mine for r in run["rounds"] for s in r["honest_scores"]]
        accuracies = [run["final_accuracy"] for run in mine]
        lines.append(
            f"* `{scoring}`: {len(mine)} runs; attacker accepted in {accepted} rounds ({with_attacker} runs); honest "
            f"updates rejected {honest_rejected} of {honest_updates}; attacker's scores {min(attacker_scores)} to "
            f"{max(attacker_scores)} (median {statistics.median(attacker_scores):.0f}); honest scores "
            f"{min(honest_scores)} to {max(honest_scores)} (median {statistics.median(honest_scores):.0f}); final "
            f"accuracy {min(accuracies):.4f} to {max(accuracies):.4f}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorings", default="relative")
    parser.add_argument("--seeds", default="7,7,7")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--dp-epsilon", type=float, default=8.0, help="0: no DP")
    parser.add_argument("--json", type=Path, default=None, help="write every run's per-round scores here")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument("--raw", type=Path, default=None, help="write every validator's raw measurements here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the nodes' "left out" warnings; the table says it
    epsilon = args.dp_epsilon or None
    if args.raw is not None:
        _instrument()
    header = [
        "| scoring | seed | final accuracy | centralized | attacker per round | attacker's score per round | "
        "lowest honest score per round | honest rejected | max epsilon | CPU s |",
        "|---|---:|---:|---:|---|---|---|---:|---:|---:|",
    ]
    print(*header, sep="\n", flush=True)
    runs = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for scoring in args.scorings.split(","):
            RAW.clear()
            runs.append(_run(seed, args.rounds, scoring, epsilon))
            if args.raw is not None:
                runs[-1]["raw"] = list(RAW)
            print(_row(runs[-1]), flush=True)
            if args.json is not None:
                args.json.write_text(json.dumps(runs, indent=1))
    text = "\n".join([*header, *(_row(run) for run in runs), "", *_summary(runs)]) + "\n"
    print("", *_summary(runs), sep="\n")
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
