"""Contribution methods against the exact Shapley value of retraining: rank agreement, cost, who gets paid.

Two settings, real data from ``../shared/data`` (the loaders of ``honest_members.py``):

- ``heart``: the four UCI heart-disease hospitals, all honest;
- ``dirichlet``: a sample of NSL-KDD's KDDTrain+ split over ten members by label, Dirichlet(0.5), where member 8 is
  a **free rider** (sends a zero delta, declares its rows), member 9 is **noisy** (half its training labels replaced
  by uniformly random ones: it trains honestly on bad labels) and member 10 an **attacker** (trains honestly, then
  sends the sign-flipped delta).

Each setting runs one federation: scikit-learn logistic regression, FedAvg by declared rows, every member a trainer
and a validator. Each round, validation scores every update with the project's ``relative`` rule (threshold 4500,
the median of the other members' scores) and the round aggregates the accepted updates only. Every member, as a
validator, measures every update of the round on its own validation split with each method (``--metric``, by default
the class-balanced negative log-loss), and
an update's round contribution is the **median** of the validators' basis points (what the contract takes) or, for
comparison, their **mean**. Two payouts are reported: **raw** (the method over every update of the round) and
**accepted** (over the accepted updates only; rejected ones get 0).

Ground truth: the exact Shapley value of the members when **each coalition retrains the federation from scratch**
(same rounds, seeds and local training; FedAvg of the coalition's updates, no validation) and is valued by the final
model's accuracy on held-out test rows (20 % of every member's rows); the empty coalition is the initial model.
With ten members that is 1,024 federations; a member's local training from a given model is computed once and shared
by every coalition that reaches it (all first rounds start from the same model). ``--truth`` reuses the retrained
values of an earlier ``--json`` file (they depend only on the data, seeds and rounds).

Columns: Spearman of the members' summed round contributions with the ground truth; the cost of a round with the
method as a multiple of the round without it, both timed in this run: against a **bare round** (the members' local
training and validation scoring in process) and against a **fedledger round** (the same members, model and rounds
run by fedledger's nodes on the embedded chain); the free rider's and the attacker's share of the pool. Last, the
sybil check: Cleveland's rows dealt at random to two identities, its combined share against its share whole.

    nice python benchmarks/contribution.py                 # both settings, 3 rounds
    nice python benchmarks/contribution.py --settings heart --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from honest_members import Members, dirichlet_members, heart_members
from scipy.stats import spearmanr

from fedledger.federation import Simulation, TaskConfig
from fedledger.federation.rules import verdict
from fedledger.federation.setup import create_consortium
from fedledger.incentives import (
    CONTRIBUTION_METHODS,
    ContributionMethod,
    ContributionSettings,
    RoundGame,
    ValueMetric,
    coalition_value,
    delta_matrix,
    round_seed,
    validation_metric,
)
from fedledger.learning import Params, build_model, params_delta
from fedledger.learning.scoring import relative_score
from fedledger.workspace import ChainSpec, Workspace

THRESHOLD = 4_500  # the relative rule's default acceptance threshold
FREE_RIDER, NOISY, ATTACKER = "member 8", "member 9", "member 10"
METHODS = tuple(ContributionMethod)
ACROSS = ("median", "mean")


@dataclass
class Federation:
    """One setting's members, model and behaviours."""

    members: Members
    spec: dict[str, Any]
    behaviours: dict[str, str]
    rounds: int
    seed: int
    metric: ValueMetric = ValueMetric.BALANCED_NEG_LOG_LOSS
    _trained: dict[tuple[int, int, bytes], Params] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return self.members.names

    def initial(self) -> Params:
        return build_model(self.spec).get_params()

    def deltas(self, global_params: Params, who: Sequence[int], round_id: int) -> list[Params]:
        """The round's updates of members ``who``: honest local training, then each behaviour."""
        out = []
        for k in who:
            name = self.names[k]
            behaviour = self.behaviours.get(name, "honest")
            if behaviour == "free-rider":
                out.append({n: np.zeros_like(v) for n, v in global_params.items()})
                continue
            delta = self._train(k, global_params, round_id)
            out.append({n: -v for n, v in delta.items()} if behaviour == "attacker" else delta)
        return out

    def _train(self, k: int, global_params: Params, round_id: int) -> Params:
        """Member ``k``'s honest delta, trained once per starting model: every coalition's first round starts from
        the same initial model, so the retraining of 2^n coalitions shares it."""
        key = (k, round_id, hashlib.sha256(b"".join(v.tobytes() for _, v in sorted(global_params.items()))).digest())
        if key not in self._trained:
            data = self.members.datas[k]
            model = build_model(self.spec)
            model.set_params(global_params)
            model.fit(data.X_train, data.y_train, epochs=1, seed=self.seed * 1000 + round_id * 37 + k)
            self._trained[key] = params_delta(model.get_params(), global_params)
        return self._trained[key]

    def weights(self, who: Sequence[int]) -> list[int]:
        return [len(self.members.datas[k].y_train) for k in who]


def fedavg(global_params: Params, deltas: Sequence[Params], weights: Sequence[int]) -> Params:
    if not deltas:
        return global_params
    total = float(sum(weights))
    return {
        n: (v + sum(w * d[n].astype(np.float64) for d, w in zip(deltas, weights, strict=True)) / total).astype(
            np.float32
        )
        for n, v in global_params.items()
    }


def with_noisy_labels(members: Members, name: str, seed: int) -> None:
    k = members.names.index(name)
    data = members.datas[k]
    rng = np.random.default_rng(seed)
    y = data.y_train.copy()
    noisy = rng.random(len(y)) < 0.5
    y[noisy] = rng.integers(0, 2, int(noisy.sum()))
    members.datas[k] = type(data)(data.X_train, y, data.X_val, data.y_val)


def load(setting: str, rounds: int, seed: int, metric: ValueMetric = ValueMetric.BALANCED_NEG_LOG_LOSS) -> Federation:
    if setting == "heart":
        members = heart_members(seed)
        behaviours: dict[str, str] = {}
    else:
        members = dirichlet_members(0.5, seed, rows=5_000)
        with_noisy_labels(members, NOISY, seed)
        behaviours = {FREE_RIDER: "free-rider", NOISY: "noisy", ATTACKER: "attacker"}
    spec = {"kind": "sklearn-logreg", "n_features": members.n_features, "n_classes": 2, "seed": seed, "C": 1.0,
            "iters_per_epoch": 5}  # fmt: skip
    return Federation(members, spec, behaviours, rounds, seed, metric)


# -- ground truth: exact Shapley by retraining every coalition -------------------------------------------------


def final_accuracy(fed: Federation, coalition: Sequence[int], rounds: int) -> float:
    params = fed.initial()
    for r in range(1, rounds + 1 if coalition else 1):
        params = fedavg(params, fed.deltas(params, coalition, r), fed.weights(coalition))
    model = build_model(fed.spec)
    model.set_params(params)
    return float(model.evaluate(fed.members.X_test, fed.members.y_test))


def retrained_shapley(fed: Federation, rounds: int) -> tuple[list[float], float]:
    """Each member's exact Shapley value of the final accuracy, every coalition retrained; and the seconds taken."""
    started = time.perf_counter()
    n = len(fed.names)
    value = {c: final_accuracy(fed, c, rounds) for size in range(n + 1) for c in itertools.combinations(range(n), size)}
    phi = [0.0] * n
    for i in range(n):
        for c, v in value.items():
            if i in c:
                s = len(c) - 1
                without = tuple(j for j in c if j != i)
                phi[i] += math.factorial(s) * math.factorial(n - s - 1) / math.factorial(n) * (v - value[without])
    return phi, time.perf_counter() - started


# -- the federation with in-round contributions ----------------------------------------------------------------


@dataclass
class Run:
    """What one federation's rounds gave: per method, each member's summed round shares, and the timings."""

    totals: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """method -> "raw/median", "raw/mean", "accepted/median", "accepted/mean" -> each member's summed shares."""
    method_seconds: dict[str, float] = field(default_factory=dict)
    round_seconds: float = 0.0
    rejected: dict[str, int] = field(default_factory=dict)
    final_accuracy: float = 0.0


def accepted_set(fed: Federation, global_params: Params, deltas: Sequence[Params]) -> list[int]:
    """The updates the relative rule accepts: median over the other members of 5000 + their change in accuracy."""
    n, model = len(deltas), build_model(fed.spec)
    before, after = [], []
    for data in fed.members.datas:
        model.set_params(global_params)
        before.append(model.evaluate(data.X_val, data.y_val))
        row = []
        for d in deltas:
            model.set_params({k: global_params[k] + d[k] for k in global_params})
            row.append(model.evaluate(data.X_val, data.y_val))
        after.append(row)
    out = []
    for i in range(n):
        scores = [relative_score(round(before[v] * 10_000), round(after[v][i] * 10_000)) for v in range(n) if v != i]
        if verdict(scores, THRESHOLD).accepted:
            out.append(i)
    return out


def measured(
    fed: Federation, global_params: Params, deltas: Sequence[Params], who: Sequence[int], seed: int
) -> dict[str, dict[str, Any]]:
    """Per method: the median (what the contract takes) and the mean over validators of each member's basis points
    (0 outside ``who``), and the seconds all validators took."""
    n = len(fed.names)
    out = {}
    chosen = [deltas[i] for i in who]
    for method in METHODS:
        started, per_validator = time.perf_counter(), []
        for data in fed.members.datas:
            metric = validation_metric(build_model(fed.spec), data.X_val, data.y_val, fed.metric)
            game = RoundGame(delta_matrix(chosen), coalition_value(global_params, chosen, metric), seed)
            shares = CONTRIBUTION_METHODS[method](game, ContributionSettings()) if chosen else []
            full = [0] * n
            for i, s in zip(who, shares, strict=True):
                full[i] = s
            per_validator.append(full)
        seconds = time.perf_counter() - started
        out[method.value] = {
            "median": [float(np.median([v[i] for v in per_validator])) for i in range(n)],
            "mean": [float(np.mean([v[i] for v in per_validator])) for i in range(n)],
            "seconds": seconds,
        }
    return out


def run_federation(fed: Federation) -> Run:
    n, run = len(fed.names), Run()
    for method in METHODS:
        run.totals[method.value] = {f"{p}/{a}": [0.0] * n for p in ("raw", "accepted") for a in ACROSS}
        run.method_seconds[method.value] = 0.0
    run.rejected = dict.fromkeys(fed.names, 0)
    params = fed.initial()
    for r in range(1, fed.rounds + 1):
        started = time.perf_counter()
        deltas = fed.deltas(params, range(n), r)
        accepted = accepted_set(fed, params, deltas)
        run.round_seconds += time.perf_counter() - started
        seed = round_seed("contribution-benchmark", fed.seed, r)
        for label, who in (("raw", list(range(n))), ("accepted", accepted)):
            for method, got in measured(fed, params, deltas, who, seed).items():
                for across in ACROSS:
                    summed = run.totals[method][f"{label}/{across}"]
                    run.totals[method][f"{label}/{across}"] = [a + b for a, b in zip(summed, got[across], strict=True)]
                if label == "accepted":
                    run.method_seconds[method] += got["seconds"]
        for i in set(range(n)) - set(accepted):
            run.rejected[fed.names[i]] += 1
        started = time.perf_counter()
        params = fedavg(params, [deltas[i] for i in accepted], fed.weights(accepted))
        run.round_seconds += time.perf_counter() - started
    model = build_model(fed.spec)
    model.set_params(params)
    run.final_accuracy = float(model.evaluate(fed.members.X_test, fed.members.y_test))
    return run


# -- the cost of a fedledger round ------------------------------------------------------------------------------


def fedledger_round_seconds(fed: Federation) -> float:
    """Wall seconds per round of the real thing on the same members, model and rounds: every member's node on the
    embedded chain, stepped by ``Simulation`` (train, encode, store, commit, score, aggregate, propose), as
    ``honest_members.py`` runs a consortium; setup (keys, deployments) is not timed."""
    config = TaskConfig(model=fed.spec, profile="few-silos", rounds=fed.rounds, local_epochs=1, seed=fed.seed,
                        min_commitments=max(2, len(fed.names) // 2), proposal_quorum=2)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fedledger-contribution-") as tmp:
        ws = Workspace.create(Path(tmp), chain=ChainSpec(), scrypt_n=2**10)
        try:
            sim = create_consortium(ws, config=config, datas=fed.members.datas, password="contribution")
            started = time.perf_counter()
            Simulation(sim.task, sim.nodes).run()
            return (time.perf_counter() - started) / fed.rounds
        finally:
            ws.close()


# -- sybil: one hospital's rows split across two identities ---------------------------------------------------


def split_member(members: Members, name: str, seed: int) -> Members:
    """``members`` with ``name``'s training and validation rows dealt at random to two identities."""
    k = members.names.index(name)
    data, rng = members.datas[k], np.random.default_rng(seed)
    t, v = rng.permutation(len(data.y_train)), rng.permutation(len(data.y_val))
    halves = [
        type(data)(data.X_train[ti], data.y_train[ti], data.X_val[vi], data.y_val[vi])
        for ti, vi in ((t[: len(t) // 2], v[: len(v) // 2]), (t[len(t) // 2 :], v[len(v) // 2 :]))
    ]
    names = [*members.names[:k], f"{name} (a)", f"{name} (b)", *members.names[k + 1 :]]
    datas = [*members.datas[:k], *halves, *members.datas[k + 1 :]]
    return Members(members.name, names, datas, members.X_test, members.y_test, members.n_features)


def sybil(rounds: int, seed: int, splits: int, metric: ValueMetric, member: str = "Cleveland") -> dict[str, Any]:
    """Per method, ``member``'s share of the raw payout (every update measured: acceptance, which differs between
    the two federations, stays out of the comparison) whole, and its two identities' combined share per split."""
    whole = load("heart", rounds, seed, metric)
    shares: dict[str, Any] = {}
    base = run_federation(whole)
    for method in METHODS:
        totals = base.totals[method.value]["raw/median"]
        shares[method.value] = {"whole": share(totals, whole.names, member), "split": []}
    for s in range(splits):
        fed = Federation(split_member(whole.members, member, seed + s), whole.spec, {}, rounds, seed, metric)
        run = run_federation(fed)
        for method in METHODS:
            totals = run.totals[method.value]["raw/median"]
            pair = [share(totals, fed.names, f"{member} ({x})") or 0.0 for x in "ab"]
            shares[method.value]["split"].append(sum(pair))
    return shares


# -- report ----------------------------------------------------------------------------------------------------


def share(totals: Sequence[float], names: Sequence[str], name: str) -> float | None:
    if name not in names or not sum(totals):
        return None
    return totals[list(names).index(name)] / sum(totals)


def rows(
    setting: str, fed: Federation, run: Run, truth: Sequence[float], fedledger_round: float
) -> list[dict[str, Any]]:
    out = []
    for method in METHODS:
        for key, totals in run.totals[method.value].items():
            rho = spearmanr(totals, truth).statistic
            label, across = key.split("/")
            out.append(
                {
                    "setting": setting,
                    "method": method.value,
                    "payout": label,
                    "validators": across,
                    "spearman": None if math.isnan(rho) else round(float(rho), 3),
                    "cost_ratio": round(1 + run.method_seconds[method.value] / run.round_seconds, 3),
                    "cost_ratio_fedledger": round(
                        1 + run.method_seconds[method.value] / fed.rounds / fedledger_round, 3
                    ),
                    "free_rider_share": share(totals, fed.names, FREE_RIDER),
                    "attacker_share": share(totals, fed.names, ATTACKER),
                    "totals": list(totals),
                }
            )
    return out


def markdown(results: Sequence[dict[str, Any]]) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    lines = [
        "| setting | method | payout | validators | Spearman | cost × bare round | cost × fedledger round | free rider "
        "| attacker |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['setting']} | {r['method']} | {r['payout']} | {r['validators']} | {r['spearman']} | "
            f"{r['cost_ratio']:.2f} | "
            f"{r['cost_ratio_fedledger']:.3f} | "
            f"{pct(r['free_rider_share'])} | {pct(r['attacker_share'])} |"
        )
    return "\n".join(lines)


def run_setting(
    setting: str,
    rounds: int,
    coalition_rounds: int,
    seed: int,
    metric: ValueMetric,
    truth_from: dict[str, Any],
    log: Callable[[str], None],
    skip_fedledger: bool = False,
) -> Any:
    fed = load(setting, rounds, seed, metric)
    run = run_federation(fed)
    log(f"{setting}: federation {run.round_seconds:.1f} s of rounds, final accuracy {run.final_accuracy:.4f}")
    reused = truth_from.get(setting)
    if reused and reused["coalition_rounds"] == coalition_rounds and reused["members"] == fed.names:
        truth, seconds = reused["retrained_shapley"], reused["retrain_seconds"]
        log(f"{setting}: retrained Shapley values reused ({seconds:.0f} s when computed)")
    else:
        truth, seconds = retrained_shapley(fed, coalition_rounds)
        log(f"{setting}: {2 ** len(fed.names)} coalitions retrained in {seconds:.0f} s")
    fedledger_round = math.nan if skip_fedledger else fedledger_round_seconds(fed)
    log(f"{setting}: a fedledger round takes {fedledger_round:.2f} s")
    detail = {
        "setting": setting,
        "fedledger_round_seconds": round(fedledger_round, 3),
        "members": fed.names,
        "behaviours": fed.behaviours,
        "rounds": rounds,
        "coalition_rounds": coalition_rounds,
        "retrained_shapley": [round(v, 5) for v in truth],
        "retrain_seconds": round(seconds, 1),
        "rejected_updates": run.rejected,
        "final_accuracy": round(run.final_accuracy, 4),
        "round_seconds": round(run.round_seconds, 3),
        "method_seconds": {k: round(v, 3) for k, v in run.method_seconds.items()},
    }
    return rows(setting, fed, run, truth, fedledger_round), detail


def sybil_markdown(shares: dict[str, Any]) -> str:
    lines = ["| method | Cleveland whole | two identities (per split) | mean change |", "|---|---:|---:|---:|"]
    for method, s in shares.items():
        splits = ", ".join(f"{100 * x:.1f} %" for x in s["split"])
        change = float(np.mean(s["split"])) - (s["whole"] or 0.0)
        lines.append(f"| {method} | {100 * (s['whole'] or 0.0):.1f} % | {splits} | {100 * change:+.1f} points |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--settings", nargs="+", default=["heart", "dirichlet"], choices=["heart", "dirichlet"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--coalition-rounds", type=int, default=None, help="rounds of each retrained coalition")
    parser.add_argument("--sybil-splits", type=int, default=3, help="random splits of Cleveland (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--metric", default=ValueMetric.BALANCED_NEG_LOG_LOSS.value, choices=[m.value for m in ValueMetric]
    )
    parser.add_argument("--no-fedledger", action="store_true", help="skip timing a fedledger round")
    parser.add_argument("--json", help="write every number to this file")
    parser.add_argument("--truth", help="reuse the retrained Shapley values of an earlier --json file")
    args = parser.parse_args(argv)
    truth_from = {}
    if args.truth:
        with open(args.truth) as f:
            truth_from = {d["setting"]: d for d in json.load(f)["settings"]}
    results, details = [], []
    for setting in args.settings:
        table, detail = run_setting(
            setting,
            args.rounds,
            args.coalition_rounds or args.rounds,
            args.seed,
            ValueMetric(args.metric),
            truth_from,
            lambda m: print(m, file=sys.stderr),
            args.no_fedledger,
        )
        results += table
        details.append(detail)
    print(markdown(results))
    for d in details:
        print(f"\n{d['setting']}: {json.dumps({k: v for k, v in d.items() if k != 'setting'})}")
    sybil_shares = (
        sybil(args.rounds, args.seed, args.sybil_splits, ValueMetric(args.metric)) if args.sybil_splits else {}
    )
    if sybil_shares:
        print("\nSybil: Cleveland's rows dealt at random to two identities (share of the raw payout)\n")
        print(sybil_markdown(sybil_shares))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": results, "settings": details, "sybil": sybil_shares}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
