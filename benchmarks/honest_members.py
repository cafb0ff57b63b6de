"""Honest but different: how often each profile's defaults shut out honest members, with nobody attacking.

Every member is honest; their data differ the way real consortia's do. For each data setting, model kind and
profile, a whole consortium runs its task in process through fedledger's own code (``create_consortium``,
``MemberNode``, ``Simulation``) on the embedded chain, with the profile's defaults for everything the robustness
settings leave unset, and the chain's events are counted afterwards:

- **distrusted**: the share of members that the contract left out of a round at least once (``TrainerDistrusted``
  or ``ValidatorDistrusted``);
- **rejected**: the share of scored updates that validation rejected (not in ``ValidationClosed``'s accepted set);
- rounds aborted, and the final model's accuracy on held-out rows next to training on the pooled rows.

Data settings (real data from ``../shared/data``, prepared with the worked examples' recipes):

- ``heart``: the four UCI heart-disease hospitals, each its own raw file (Switzerland: 93 % with disease);
- ``nsl-kdd-gateways``: NSL-KDD's KDDTrain+ dealt to four gateways by attack family (the IoT example's split);
- ``dirichlet-0.1``, ``dirichlet-0.5``: a sample of KDDTrain+ split over ten members by label, Dirichlet(alpha).

    python benchmarks/honest_members.py                      # every setting x model x profile, 10 rounds
    python benchmarks/honest_members.py --settings heart --models sklearn-logreg --profiles few-silos
    python benchmarks/honest_members.py --json honest.json --markdown honest.md

The targets (issue: honest but different is not malicious) are 0 honest members distrusted and at most 5 % of
honest updates rejected; the script exits 1 when a cell misses one.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fedledger.chain.events import (
    RoundAborted,
    RoundFinalized,
    ScoresSubmitted,
    TrainerDistrusted,
    UpdateCommitted,
    ValidationClosed,
    ValidatorDistrusted,
)
from fedledger.data.prepare import PreparedData, Recipe, prepare
from fedledger.federation import LocalData, Simulation, TaskConfig
from fedledger.federation.setup import attacking_members, create_consortium
from fedledger.learning import build_model
from fedledger.learning.data import dirichlet_partition, train_val_split
from fedledger.localnet import HEART_DISEASE_FILES
from fedledger.workspace import ChainSpec, Workspace

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
HEART_FILES = HEART_DISEASE_FILES
NSL_FAMILIES = {"dos": "DoS", "probe": "Probe", "r2l": "R2L", "u2r": "U2R"}
SETTINGS = ("heart", "nsl-kdd-gateways", "dirichlet-0.1", "dirichlet-0.5")
MODELS = ("sklearn-logreg", "torch-mlp")
PROFILES = ("few-silos", "consortium")
MAX_DISTRUSTED = 0.0
MAX_REJECTED = 0.05
VAL_FRACTION = 0.2  # what `fedledger node` keeps for validation by default
TEST_FRACTION = 0.2  # held out of each member's rows for the final accuracy


@dataclass
class Members:
    """One data setting: each member's training and validation rows, and held-out test rows."""

    name: str
    names: list[str]
    datas: list[LocalData]
    X_test: np.ndarray
    y_test: np.ndarray
    n_features: int

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "member": name,
                "rows": int(len(d.y_train) + len(d.y_val)),
                "positive_share": round(float(np.mean(np.concatenate([d.y_train, d.y_val]))), 3),
            }
            for name, d in zip(self.names, self.datas, strict=True)
        ]


@dataclass
class Cell:
    setting: str
    model: str
    profile: str
    seed: int
    members: int
    rounds: int
    scoring: str
    threshold: int
    attack: str = "none"
    malicious: list[str] = field(default_factory=list)
    distrusted: list[str] = field(default_factory=list)
    """Honest members the contract left out at least once; ``attackers_distrusted`` likewise the malicious ones."""
    attackers_distrusted: list[str] = field(default_factory=list)
    malicious_scored: int = 0
    malicious_accepted: int = 0
    scored_updates: int = 0
    rejected_updates: int = 0
    rejected_by_member: dict[str, int] = field(default_factory=dict)
    scored_by_member: dict[str, int] = field(default_factory=dict)
    rounds_finalized: int = 0
    rounds_aborted: int = 0
    abort_reasons: list[str] = field(default_factory=list)
    final_accuracy: float | None = None
    pooled_accuracy: float | None = None
    seconds: float = 0.0

    @property
    def honest_members(self) -> int:
        return self.members - len(self.malicious)

    @property
    def distrusted_share(self) -> float:
        return len(self.distrusted) / self.honest_members

    @property
    def rejected_share(self) -> float:
        return self.rejected_updates / self.scored_updates if self.scored_updates else 0.0

    @property
    def meets_targets(self) -> bool:
        return self.distrusted_share <= MAX_DISTRUSTED and self.rejected_share <= MAX_REJECTED

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "distrusted_share": self.distrusted_share,
            "rejected_share": self.rejected_share,
            "meets_targets": self.meets_targets,
        }


def _split_member(prepared: PreparedData, seed: int) -> tuple[LocalData, np.ndarray, np.ndarray]:
    """A member's rows as training and validation splits, with a test share held out for the final accuracy."""
    X_rest, y_rest, X_test, y_test = train_val_split(prepared.X, prepared.y, val_fraction=TEST_FRACTION, seed=seed)
    X_tr, y_tr, X_val, y_val = train_val_split(X_rest, y_rest, val_fraction=VAL_FRACTION, seed=seed + 1)
    return LocalData(X_tr, y_tr, X_val, y_val), X_test, y_test


def _with_pooled_stats(recipe: Recipe, tables: Sequence[Any]) -> Recipe:
    """The recipe with the statistics the members' masked sum would give: the sum of their local vectors."""
    if not recipe.missing_stats():
        return recipe
    return recipe.with_stats(sum(np.asarray(recipe.local_stats(t), dtype=np.float64) for t in tables))


def _members(name: str, names: list[str], parts: Sequence[PreparedData], seed: int) -> Members:
    splits = [_split_member(p, seed + 17 * k) for k, p in enumerate(parts)]
    return Members(
        name,
        names,
        [s[0] for s in splits],
        np.concatenate([s[1] for s in splits]),
        np.concatenate([s[2] for s in splits]),
        parts[0].X.shape[1],
    )


def heart_members(seed: int) -> Members:
    recipe = Recipe.load(REPO / "examples" / "heart-disease" / "recipe.toml")
    paths = [DATA / "heart-disease" / f for f in HEART_FILES.values()]
    recipe = _with_pooled_stats(recipe, paths)
    return _members("heart", list(HEART_FILES), [prepare(recipe, p) for p in paths], seed)


def _nsl_rows(rows: int, seed: int) -> tuple[list[list[str]], dict[str, str]]:
    """A seeded sample of KDDTrain+ records, and each attack's family from ``Attack Types.csv``."""
    with open(DATA / "nsl-kdd" / "KDDTrain+.txt", newline="") as f:
        records = list(csv.reader(f))
    rng = np.random.default_rng(seed)
    sample = [records[i] for i in np.sort(rng.choice(len(records), size=min(rows, len(records)), replace=False))]
    families = {}
    for line in (DATA / "nsl-kdd" / "Attack Types.csv").read_text().splitlines():
        if line.strip():
            attack, family = (part.strip() for part in line.split(","))
            families[attack] = NSL_FAMILIES.get(family, family)
    return sample, families


def _nsl_prepared(groups: Sequence[list[list[str]]]) -> list[PreparedData]:
    import pandas as pd

    recipe = Recipe.load(REPO / "examples" / "iot-intrusion" / "recipe.toml")
    frames = [pd.DataFrame(g, columns=list(recipe.columns)) for g in groups]
    recipe = _with_pooled_stats(recipe, frames)
    return [prepare(recipe, f) for f in frames]


def nsl_gateway_members(seed: int, rows_per_gateway: int = 2000) -> Members:
    """Normal traffic dealt to four gateways in turn, every attack to the gateway of its family."""
    records, families = _nsl_rows(8 * rows_per_gateway, seed)
    gateways: dict[str, list[list[str]]] = {family: [] for family in NSL_FAMILIES.values()}
    order = list(gateways)
    turn = 0
    for row in records:
        family = families.get(row[41], "normal")
        if family == "normal":
            family, turn = order[turn % len(order)], turn + 1
        if len(gateways[family]) < rows_per_gateway:
            gateways[family].append(row)
    return _members("nsl-kdd-gateways", [f"{g} gateway" for g in order], _nsl_prepared(list(gateways.values())), seed)


def dirichlet_members(alpha: float, seed: int, *, members: int = 10, rows: int = 10_000) -> Members:
    records, _ = _nsl_rows(rows, seed)
    labels = np.array([row[41] != "normal" for row in records], dtype=np.int64)
    parts = dirichlet_partition(labels, members, alpha, seed, min_per_class=5)
    groups = [[records[i] for i in part] for part in parts]
    return _members(f"dirichlet-{alpha}", [f"member {k + 1}" for k in range(members)], _nsl_prepared(groups), seed)


def load_setting(setting: str, seed: int) -> Members:
    if setting == "heart":
        return heart_members(seed)
    if setting == "nsl-kdd-gateways":
        return nsl_gateway_members(seed)
    if setting.startswith("dirichlet-"):
        return dirichlet_members(float(setting.removeprefix("dirichlet-")), seed)
    raise SystemExit(f"unknown setting {setting!r}; known: {', '.join(SETTINGS)}")


def model_spec(kind: str, n_features: int, seed: int) -> dict[str, Any]:
    base = {"kind": kind, "n_features": n_features, "n_classes": 2, "seed": seed}
    if kind == "sklearn-logreg":
        return {**base, "C": 1.0, "iters_per_epoch": 5}
    return {**base, "hidden": [64], "optimizer": "adam", "lr": 0.01, "batch_size": 64}


def run_cell(
    members: Members,
    model: str,
    profile: str,
    *,
    rounds: int,
    seed: int,
    overrides: dict[str, Any],
    attack: str = "none",
    malicious: int = 0,
) -> Cell:
    started = time.perf_counter()
    n = len(members.datas)
    config = TaskConfig(
        model=model_spec(model, members.n_features, seed),
        profile=profile,
        rounds=rounds,
        local_epochs=1,
        seed=seed,
        min_commitments=max(2, n // 2),
        proposal_quorum=2,
        **overrides,
    )
    with tempfile.TemporaryDirectory(prefix="fedledger-honest-") as tmp:
        ws = Workspace.create(Path(tmp), chain=ChainSpec(), scrypt_n=2**10)
        try:
            datas, behaviors = attacking_members(
                members.datas, config, attack, malicious if attack != "none" else 0, seed=seed
            )
            sim = create_consortium(ws, config=config, datas=datas, behaviors=behaviors, password="honest-members")
            Simulation(sim.task, sim.nodes).run()
            names = {node.account.address.lower(): name for node, name in zip(sim.nodes, members.names, strict=True)}
            cell = _count(sim.task.events(), names, members, model, profile, config, seed)
            cell.attack = attack
            cell.malicious = members.names[len(members.names) - malicious :] if malicious else []
            _split_malicious(cell)
            final = sim.task.round(sim.task.current_round).global_model
            last = [r for r in range(1, rounds + 1) if sim.task.round(r).global_model]
            params, _ = sim.nodes[0].global_model(final if final else sim.task.round(last[-1]).global_model)
            evaluator = build_model(config.model)
            evaluator.set_params(params)
            cell.final_accuracy = round(float(evaluator.evaluate(members.X_test, members.y_test)), 4)
        finally:
            ws.close()
    pooled = build_model(config.model)
    pooled.fit(
        np.concatenate([d.X_train for d in members.datas]),
        np.concatenate([d.y_train for d in members.datas]),
        epochs=rounds * config.local_epochs,
        seed=seed,
    )
    cell.pooled_accuracy = round(float(pooled.evaluate(members.X_test, members.y_test)), 4)
    cell.seconds = round(time.perf_counter() - started, 1)
    return cell


def _split_malicious(cell: Cell) -> None:
    """Move the malicious members' counts out of the honest ones."""
    for name in cell.malicious:
        if name in cell.distrusted:
            cell.distrusted.remove(name)
            cell.attackers_distrusted.append(name)
        rejected = cell.rejected_by_member.pop(name, 0)
        cell.rejected_updates -= rejected
        scored = cell.scored_by_member.pop(name, 0)
        cell.scored_updates -= scored
        cell.malicious_scored += scored
        cell.malicious_accepted += scored - rejected


def _count(
    events: Sequence[Any],
    names: dict[str, str],
    members: Members,
    model: str,
    profile: str,
    config: TaskConfig,
    seed: int,
) -> Cell:
    cell = Cell(
        setting=members.name,
        model=model,
        profile=profile,
        seed=seed,
        members=len(names),
        rounds=config.rounds,
        scoring=config.scoring,
        threshold=config.threshold,
    )
    distrusted: set[str] = set()
    owners: dict[tuple[int, int], str] = {}
    scored: dict[int, set[int]] = {}
    for event in events:
        if isinstance(event, UpdateCommitted):
            owners[(event.round_id, event.index)] = names[event.member.lower()]
        elif isinstance(event, ScoresSubmitted):
            scored.setdefault(event.round_id, set()).update(event.indices)
        elif isinstance(event, TrainerDistrusted):
            distrusted.add(names[event.trainer.lower()])
        elif isinstance(event, ValidatorDistrusted):
            distrusted.add(names[event.validator.lower()])
        elif isinstance(event, ValidationClosed):
            _count_outcomes(cell, owners, event.round_id, scored.get(event.round_id, set()), event.accepted_mask)
        elif isinstance(event, RoundFinalized):
            cell.rounds_finalized += 1
        elif isinstance(event, RoundAborted):
            cell.rounds_aborted += 1
            cell.abort_reasons.append(f"round {event.round_id}: {event.reason}")
            if event.reason == "no update accepted":  # validation closed with every scored update rejected
                _count_outcomes(cell, owners, event.round_id, scored.get(event.round_id, set()), 0)
    cell.distrusted = sorted(distrusted)
    return cell


def _count_outcomes(cell: Cell, owners: dict[tuple[int, int], str], round_id: int, scored: set[int], mask: int) -> None:
    for index in sorted(scored):
        cell.scored_updates += 1
        owner = owners[(round_id, index)]
        cell.scored_by_member[owner] = cell.scored_by_member.get(owner, 0) + 1
        if not mask >> index & 1:
            cell.rejected_updates += 1
            cell.rejected_by_member[owner] = cell.rejected_by_member.get(owner, 0) + 1


def markdown(cells: Sequence[Cell]) -> str:
    lines = [
        "| setting | model | profile | attack | scoring (threshold) | honest distrusted | honest rejected | "
        "attacker accepted | aborted | accuracy (pooled) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        who = f" ({', '.join(c.distrusted)})" if c.distrusted else ""
        attacker = f"{c.malicious_accepted}/{c.malicious_scored}" if c.malicious else "-"
        if c.attackers_distrusted:
            attacker += " (distrusted)"
        lines.append(
            f"| {c.setting} | {c.model} | {c.profile} | {c.attack} | {c.scoring} ({c.threshold}) | "
            f"{len(c.distrusted)}/{c.honest_members}{who} | {c.rejected_updates}/{c.scored_updates} "
            f"({c.rejected_share:.1%}) | {attacker} | {c.rounds_aborted}/{c.rounds} | "
            f"{c.final_accuracy} ({c.pooled_accuracy}) |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--profiles", default=",".join(PROFILES))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument(
        "--attacks", default="none", help="comma-separated attacks (fedledger.attacks syntax), 'none' for honest only"
    )
    parser.add_argument("--malicious", type=int, default=1, help="malicious members when attacking (the last ones)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=JSON", help="override a task setting (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="write every cell as JSON")
    parser.add_argument("--markdown", type=Path, help="write the table as markdown")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"no data sets in {DATA}", file=sys.stderr)
        return 2
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value)
    cells: list[Cell] = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for setting in args.settings.split(","):
            members = load_setting(setting, seed)
            print(f"# {setting}, seed {seed}: {json.dumps(members.describe())}", flush=True)
            for model in args.models.split(","):
                for profile in args.profiles.split(","):
                    for attack in args.attacks.split(","):
                        cell = run_cell(
                            members,
                            model,
                            profile,
                            rounds=args.rounds,
                            seed=seed,
                            overrides=overrides,
                            attack=attack,
                            malicious=args.malicious if attack != "none" else 0,
                        )
                        cells.append(cell)
                        print(markdown([cell]).splitlines()[-1], f"{cell.seconds} s", flush=True)
    table = markdown(cells)
    print()
    print(table)
    if args.json:
        args.json.write_text(json.dumps([c.to_json() for c in cells], indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(table + "\n")
    missed = [c for c in cells if not c.meets_targets]
    print(f"\n{len(cells) - len(missed)} of {len(cells)} cells meet the targets (0 distrusted, <= 5 % rejected)")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
