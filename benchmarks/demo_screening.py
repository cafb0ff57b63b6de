"""How the default ``fedledger demo``'s validators score every update, round by round, under one scoring rule or
several: the malicious hospital's committee median against the honest hospitals', and who was rejected.

    PYTHONPATH=src nice python benchmarks/demo_screening.py --scorings relative,relative-loss --seeds 7,7,7,1,2 \
        --json screening.json --out screening.md

Each run is ``run_demo(seed=s, dp_epsilon=8, scoring=rule)`` (``fedledger demo --seed s --scoring rule``): validated
rounds, the few-silos profile, record-level DP-SGD at epsilon 8 with fresh OS noise on every run, so repeated seeds
are distinct runs. A score is the median of the validators' centred scores of an update, what the contract compares
with the acceptance threshold (4500). ``--dp-epsilon 0`` runs the same demo without DP. ``--consensus`` also records
each update's cosine with the coordinate-wise median of the round's other updates (a consensus-direction screen's
measurement, ``benchmarks/results/demo_record_dp.md``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fedledger.chain.task import contract_median
from fedledger.demo import run_demo
from fedledger.exceptions import UpdateRejected
from fedledger.federation.node import MemberNode
from fedledger.federation.rules import check_update
from fedledger.learning import build_model
from fedledger.learning.aggregation._apply import apply_update
from fedledger.learning.scoring import (
    MAX_SCORE,
    accuracy_bps,
    at_median_norm,
    centered_on_round,
    loss_change_score,
    relative_score,
    validation_loss,
)

THRESHOLD = 4500
"""The acceptance threshold both rules get by default (``DEFAULT_THRESHOLDS``)."""

RAW: list[dict[str, Any]] = []
"""With ``--raw``: every validator's accuracy and loss before and after each other update, at the median norm."""

CONSENSUS: dict[int, dict[str, dict[str, float]]] = {}
"""With ``--consensus``: per round, each update's (member's) cosine with the coordinate-wise median of the round's
other updates, ``lifted`` to the round's median norm as the node scores them and ``raw`` as committed."""


def _as_floats(update: Any) -> npt.NDArray[np.float64]:
    """A fixed-point update as one float vector (tensors in name order)."""
    parts = [np.asarray(update.tensors[k]).view(np.int64).astype(np.float64).ravel() for k in sorted(update.tensors)]
    vector: npt.NDArray[np.float64] = np.concatenate(parts) / 2 ** (update.fixed_frac_bits or 0)
    return vector


def leave_one_out_cosines(vectors: list[npt.NDArray[np.float64]]) -> list[float]:
    """Each vector's cosine with the coordinate-wise median of the others (0.0 against a zero median)."""
    matrix = np.stack(vectors)
    out = []
    for i in range(len(vectors)):
        median = np.median(np.delete(matrix, i, axis=0), axis=0)
        norms = float(np.linalg.norm(matrix[i]) * np.linalg.norm(median))
        out.append(float(matrix[i] @ median) / norms if norms else 0.0)
    return out


def _measure_consensus(node: MemberNode, info: Any) -> None:
    """The round's leave-one-out-median cosines, once per round (every validator sees the same updates)."""
    if info.round_id in CONSENSUS:
        return
    global_params, _ = node.global_model(info.global_model)
    spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
    decoded = {}
    for update in node.closed_updates(info.round_id):
        try:
            decoded[update.member] = check_update(node.store, node.config, spec, update)
        except UpdateRejected:
            continue
    if len(decoded) < 3:
        return
    lifted = at_median_norm(list(decoded.values()))
    CONSENSUS[info.round_id] = {
        "lifted": dict(zip(decoded, leave_one_out_cosines([_as_floats(u) for u in lifted]), strict=True)),
        "raw": dict(zip(decoded, leave_one_out_cosines([_as_floats(u) for u in decoded.values()]), strict=True)),
    }


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
                # Whether the step mostly scales the model's weights up (> 0) or down (< 0).
                "cosine_with_model": _cosine(scaled.tensors, global_params, scaled.fixed_frac_bits or 0),
            }
        )


def _cosine(update: Mapping[str, npt.NDArray[Any]], params: Mapping[str, npt.NDArray[Any]], frac_bits: int) -> float:
    """Cosine of a fixed-point update with the model's parameters (both flattened in name order)."""
    names = sorted(params)
    u = np.concatenate([np.asarray(update[k]).view(np.int64).astype(np.float64).ravel() for k in names]) / 2**frac_bits
    p = np.concatenate([np.asarray(params[k], dtype=np.float64).ravel() for k in names])
    norms = float(np.linalg.norm(u) * np.linalg.norm(p))
    return float(u @ p) / norms if norms else 0.0


def _instrument(*, raw: bool, consensus: bool) -> None:
    original = MemberNode.score

    def score(self: MemberNode, info: Any) -> None:
        if raw:
            _measure_raw(self, info)
        if consensus:
            _measure_consensus(self, info)
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
        "malicious_addresses": [m["address"] for m in data["members"] if m["malicious"]],
        "cpu_seconds": round(time.process_time() - started, 1),
    }


def _consensus_row(run: dict[str, Any]) -> str:
    """Per round: the attacker's leave-one-out-median cosine (lifted) and the lowest honest one."""
    attacker = {a.lower() for a in run["malicious_addresses"]}
    cells_attacker, cells_honest = [], []
    for r in run["rounds"]:
        cosines = run["consensus"].get(str(r["round"]), {}).get("lifted", {})
        mine = [c for m, c in cosines.items() if m.lower() in attacker]
        honest = [c for m, c in cosines.items() if m.lower() not in attacker]
        cells_attacker.append(f"{mine[0]:+.3f}" if mine else "-")
        cells_honest.append(f"{min(honest):+.3f}" if honest else "-")
    return f"| {run['seed']} | {_marks(run)} | {' '.join(cells_attacker)} | {' '.join(cells_honest)} |"


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


RULES_OFFLINE = {
    "relative": lambda m: relative_score(m["acc_before"], m["acc_after"]),
    "relative-loss": lambda m: loss_change_score(m["loss_before"], m["loss_after"], n_classes=2),
}
"""The rules :func:`_both_rules` re-scores the recorded measurements with (the demo's task has two classes)."""


def _both_rules(runs: list[dict[str, Any]]) -> list[str]:
    """Every recorded update scored offline under each rule of :data:`RULES_OFFLINE`: each validator's scores of a
    round centred as its node centres them, then the committee median. The attacker is the member whose round-1
    update raised the validators' losses most (the sign flipper at the clip bound)."""
    lines = []
    for name, rule in RULES_OFFLINE.items():
        accepted, rejected, honest, lowest = [], 0, 0, MAX_SCORE
        for run in (run for run in runs if "raw" in run):
            first = [m for m in run["raw"] if m["round"] == 1]
            attacker = max(
                {m["member"] for m in first}, key=lambda a: sum(m["loss_after"] for m in first if m["member"] == a)
            )
            for r in sorted({m["round"] for m in run["raw"]}):
                by_validator: dict[str, dict[str, int]] = {}
                for m in run["raw"]:
                    if m["round"] == r:
                        by_validator.setdefault(m["validator"], {})[m["member"]] = rule(m)
                centred: dict[str, list[int]] = {}
                for scores in by_validator.values():
                    for member, score in zip(scores, centered_on_round(list(scores.values())), strict=True):
                        centred.setdefault(member, []).append(score)
                medians = {member: contract_median(scores) for member, scores in centred.items()}
                if medians.get(attacker, 0) >= THRESHOLD:
                    accepted.append(f"{run['scoring']} seed {run['seed']} round {r} ({medians[attacker]})")
                others = [score for member, score in medians.items() if member != attacker]
                rejected += sum(score < THRESHOLD for score in others)
                honest, lowest = honest + len(others), min([lowest, *others])
        lines.append(
            f"* offline `{name}`: attacker accepted in {len(accepted)} rounds ({'; '.join(accepted) or 'none'}); "
            f"honest rejected {rejected} of {honest}; lowest honest {lowest}"
        )
    return lines


def _load(path: Path) -> list[dict[str, Any]]:
    """Runs written by ``--json`` (gzipped when the name ends in .gz)."""
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
        runs: list[dict[str, Any]] = json.load(fh)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scorings", default="relative")
    parser.add_argument("--seeds", default="7,7,7")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--dp-epsilon", type=float, default=8.0, help="0: no DP")
    parser.add_argument("--json", type=Path, default=None, help="write every run's per-round scores here")
    parser.add_argument("--rescore", type=Path, nargs="*", default=[], help="only re-score these --raw --json files")
    parser.add_argument("--out", type=Path, default=None, help="write the markdown table here")
    parser.add_argument(
        "--raw",
        action="store_true",
        help="also record every validator's accuracy and loss before and after each other update (in --json)",
    )
    parser.add_argument(
        "--consensus",
        action="store_true",
        help="also record each update's cosine with the median of the round's other updates (in --json)",
    )
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the nodes' "left out" warnings; the table says it
    if args.rescore:
        print(*_both_rules([run for path in args.rescore for run in _load(path)]), sep="\n")
        return
    epsilon = args.dp_epsilon or None
    if args.raw or args.consensus:
        _instrument(raw=args.raw, consensus=args.consensus)
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
            CONSENSUS.clear()
            runs.append(_run(seed, args.rounds, scoring, epsilon))
            if args.raw:
                runs[-1]["raw"] = list(RAW)
            print(_row(runs[-1]), flush=True)
            if args.consensus:
                runs[-1]["consensus"] = {str(r): c for r, c in CONSENSUS.items()}
                print(_consensus_row(runs[-1]), flush=True)
            if args.json is not None:
                args.json.write_text(json.dumps(runs, indent=1))
    offline = _both_rules(runs) if args.raw else []
    text = "\n".join([*header, *(_row(run) for run in runs), "", *_summary(runs), *offline]) + "\n"
    print("", *_summary(runs), *offline, sep="\n")
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
