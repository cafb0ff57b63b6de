"""``fedledger demo``: a whole consortium of hospitals training on real data, on the ledger.

scikit-learn's breast cancer diagnosis data is split across hospitals non-IID
(Dirichlet over labels); each hospital's share is written to its own CSV and
loaded back from it, as a user loads theirs. Every hospital is a member with its
own encrypted key; one of them turns malicious and sends sign-flipped, scaled
updates. Rounds run on the embedded chain with validators scoring every update,
the contract deriving the accepted set, and a quorum of aggregators agreeing on a
bit-identical model; the summary says, round by round, how each malicious hospital
was kept out (rejected by the validators, or left out by its trainer reputation).
With ``secure_aggregation`` the rounds run Bonawitz et al.'s secure aggregation
instead: nobody sees an individual update, so nobody can score one either, and the
summary says that the malicious hospital was not screened.
The summary compares the final model with centralized training on the pooled data
and closes with an independent audit.

Each hospital's CSV also carries its patients' direct identifiers (synthetic, from
Faker with a fixed seed: name, e-mail, social security number), as an export from a
records system would. Before training, each hospital runs the local privacy pipeline:
the column classifier scans the file, the columns it classifies as identifiers are
dropped, and the protected table is registered in the DataRegistry (salted Merkle
root of its rows, schema, classification and policy hashes, purposes including the
task's). Every commitment names that dataset, and the contract checks it is the
committer's and allows the task's purpose. With ``dp_epsilon`` the task runs
differential privacy under that budget, in ``dp_mode``: "auto" is the profile's
(record-level DP-SGD for the demo's few silos, so validators still score every
update; client-level DP-FedAvg for a consortium), and the summary reports each
hospital's declared spend.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fedledger.attacks import CoalitionMember
from fedledger.audit import verify_task
from fedledger.chain.task import RoundInfo, TrainingTaskClient
from fedledger.data.classify.model import ColumnClassifier
from fedledger.data.classify.scan import scan_table
from fedledger.data.lawful_basis import LawfulBasis
from fedledger.data.registration import RegisteredDataset, Registrations, register_table
from fedledger.demo_masked import UnclippedMember, masked_round_details, masked_screening_summary
from fedledger.demo_masked_options import check_masked_choices
from fedledger.demo_rewards import demo_incentives, incentives_summary
from fedledger.demo_summary import kept_out, privacy_summary, round_summary, screening_summary, secure_round_summary
from fedledger.exceptions import BadInput, ConfigError
from fedledger.federation import LocalData, MemberNode, NodeEvent, Simulation, TaskConfig
from fedledger.federation.masked_round import check_params
from fedledger.federation.masked_settings import MASKED_REFERENCES
from fedledger.federation.modes import AUTO, DpMode
from fedledger.federation.profiles import PROFILES
from fedledger.federation.setup import attacking_members, create_consortium
from fedledger.identity.private import open_private, restrict
from fedledger.learning import (
    Dataset,
    FeatureStats,
    Standardizer,
    breast_cancer_hospitals,
    build_model,
    decode_model,
    load_csv_dataset,
    train_val_split,
)
from fedledger.store import BlobStore
from fedledger.workspace import ChainSpec, Workspace

if TYPE_CHECKING:
    from fedledger.chain.registry import DataRegistryClient

__all__ = ["DEMO_PURPOSE", "IDENTIFIER_COLUMNS", "DemoResult", "add_patient_identifiers", "run_demo"]

DEMO_PURPOSE = "model-training:breast-cancer-diagnosis"
# The purposes the hospitals' patients consented to; the task's is among them.
DEMO_DATASET_PURPOSES = (DEMO_PURPOSE, "research:oncology")
# Health data for research under the patients' explicit consent (GDPR Art. 6(1)(a) and 9(2)(a)).
DEMO_LAWFUL_BASIS = LawfulBasis("consent", "explicit-consent", "until the patient withdraws consent")
IDENTIFIER_COLUMNS = ("patient_name", "email", "ssn")
"""Synthetic direct identifiers added to each hospital's CSV (what the pipeline must drop)."""
_ETA0 = 0.05  # scikit-learn SGD's step per example
_RECORD_DP_ETA0 = _ETA0 / 4  # under record-level DP-SGD (see _task_config)


@dataclass
class DemoResult:
    workspace: str
    members: list[dict[str, Any]]
    setup: dict[str, Any] = field(default_factory=dict)  # attack, malicious, rule, committee, secure aggregation
    rounds: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)  # per hospital: registration, dropped columns
    privacy: dict[str, Any] = field(default_factory=dict)  # budget, delta, noise and each member's declared spend
    final_accuracy: float = 0.0
    centralized_accuracy: float = 0.0
    verification: dict[str, Any] = field(default_factory=dict)
    # Whether every malicious hospital was kept out of every round's model (_screening_summary)
    screening: dict[str, Any] = field(default_factory=dict)
    # What the task paid each member by measured contribution (fedledger.demo_rewards.incentives_summary)
    incentives: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "members": self.members,
            "setup": self.setup,
            "datasets": self.datasets,
            "privacy": self.privacy,
            "final_accuracy": round(self.final_accuracy, 4),
            "centralized_accuracy": round(self.centralized_accuracy, 4),
            "per_round_accuracy": [r["accuracy"] for r in self.rounds],
            "rounds": self.rounds,
            "rejected": [{"round": r["round"], **rej} for r in self.rounds for rej in r["rejected"]],
            "verification": self.verification,
            "screening": self.screening,
            "incentives": self.incentives,
            "seconds": round(self.seconds, 2),
        }


def run_demo(
    *,
    workspace: Path | None = None,
    members: int = 5,
    rounds: int = 8,
    attack: str = "sign-flip",
    malicious: int = 1,
    rule: str = "auto",
    committee: int = 0,
    scoring: str = "relative",
    seed: int = 7,
    dp_epsilon: float | None = None,
    secure_aggregation: bool = False,
    profile: str = "few-silos",
    free_riders: int = 0,
    dp_mode: str = AUTO,
    masked_checks: bool = False,
    masked_min_cosine: float | None = None,
    unclipped: int = 0,
    masked_reference: str = "committee",
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_event: Callable[[NodeEvent], None] | None = None,
) -> DemoResult:
    """Run the demo consortium; returns what the summary shows. Validated rounds unless ``secure_aggregation``;
    ``fedledger demo`` adds a DP budget (epsilon 8) by default, spent in the profile's ``dp_mode`` (record-level for
    the few silos). In validated rounds the task pays rewards by measured contribution
    (:mod:`fedledger.demo_rewards`); ``free_riders`` hospitals (before the malicious ones) submit the global model
    back and train nothing. With ``masked_checks`` (secure rounds only, MPyC installed) a committee of aggregators
    checks every masked update's norm (and, with ``masked_min_cosine``, its direction against ``masked_reference``:
    the committee members' own reference updates, or the previous round's global update) on secret shares;
    ``unclipped`` hospitals (before the free riders) skip clipping and boost their update
    (:mod:`fedledger.demo_masked`)."""
    check_masked_choices(masked_checks=masked_checks, secure_aggregation=secure_aggregation, unclipped=unclipped)
    if masked_reference not in MASKED_REFERENCES:
        raise ConfigError(f"--masked-reference must be one of {', '.join(MASKED_REFERENCES)}, got {masked_reference!r}")
    if members < 3:
        raise ConfigError(f"the demo needs at least 3 hospitals, got --members {members}")
    if not 0 <= malicious < members / 2:
        raise ConfigError(
            f"malicious hospitals must be fewer than half the consortium: --malicious {malicious} of {members}"
        )
    if free_riders < 0 or unclipped < 0 or members - malicious - free_riders - unclipped < 2:
        raise ConfigError(
            f"the demo needs at least 2 honest hospitals: --free-riders {free_riders}, --unclipped {unclipped} and "
            f"--malicious {malicious} of {members}"
        )
    started = time.perf_counter()
    root = Path(workspace) if workspace else Path(tempfile.mkdtemp(prefix="fedledger-demo-"))
    ws = Workspace.create(root, chain=ChainSpec(), scrypt_n=2**14)
    try:
        setup = _Setup(
            members,
            rounds,
            attack,
            malicious,
            rule,
            committee,
            seed,
            dp_epsilon,
            secure_aggregation,
            scoring,
            profile,
            free_riders,
            dp_mode,
            masked_checks,
            masked_min_cosine,
            unclipped,
            masked_reference,
        )
        return _run(ws, setup, on_round, on_event, started)
    finally:
        ws.close()


@dataclass(frozen=True)
class _Setup:
    members: int
    rounds: int
    attack: str
    malicious: int
    rule: str
    committee: int
    seed: int
    dp_epsilon: float | None = None
    secure_aggregation: bool = False
    scoring: str = "relative"
    profile: str = "few-silos"  # a handful of hospitals that all train every round
    free_riders: int = 0
    dp_mode: str = AUTO  # the profile's: record-level DP-SGD for a few silos
    masked_checks: bool = False  # secure rounds only: a committee checks each masked update on secret shares
    masked_min_cosine: float | None = None  # and, when set, its direction against a reference
    unclipped: int = 0  # hospitals (before the free riders) that skip clipping and boost their update
    masked_reference: str = "committee"  # or "previous": the last global update


def add_patient_identifiers(path: Path, *, seed: int) -> dict[str, list[str]]:
    """Add synthetic patients' direct identifiers (Faker, seeded) to the CSV at ``path``, in place,
    as the first columns; returns them by column."""
    from faker import Faker

    table = pd.read_csv(path)
    fake = Faker("en_US")
    fake.seed_instance(seed)
    values = {
        "patient_name": [fake.name() for _ in range(len(table))],
        "email": [fake.email() for _ in range(len(table))],
        "ssn": [fake.ssn() for _ in range(len(table))],
    }
    for position, column in enumerate(IDENTIFIER_COLUMNS):
        table.insert(position, column, values[column])
    with open_private(path, "w", newline="", encoding="utf-8") as fh:  # personal data: owner-only
        table.to_csv(fh, index=False)
    return values


@dataclass(frozen=True)
class _Protected:
    """A hospital's table after the local pipeline: what it trains on and registers."""

    table: pd.DataFrame
    path: Path
    dropped: list[str]
    classification: dict[str, Any]


def _protect(raw: Path, classifier: ColumnClassifier, label_column: str) -> _Protected:
    """Scan ``raw``, drop the columns classified as identifiers and write the protected CSV beside it."""
    report = scan_table(raw, classifier=classifier)
    dropped = [c.name for c in report.columns if c.label == "identifier"]
    table = pd.read_csv(raw).drop(columns=dropped)
    leftover = [c for c in table.columns if c != label_column and not pd.api.types.is_numeric_dtype(table[c])]
    if leftover:
        # A text column the classifier did not call an identifier: never train on it silently.
        raise BadInput(f"{raw}: non-numeric columns {leftover} were not classified as identifiers; label them")
    path = raw.with_name(raw.stem + ".protected.csv")
    with open_private(path, "w", newline="", encoding="utf-8") as fh:  # still rows about patients: owner-only
        table.to_csv(fh, index=False)
    classification = {c.name: {"class": c.label, "confidence": round(c.confidence, 4)} for c in report.columns}
    return _Protected(table, path, dropped, classification)


def _run(
    ws: Workspace,
    setup: _Setup,
    on_round: Callable[[dict[str, Any]], None] | None,
    on_event: Callable[[NodeEvent], None] | None,
    started: float,
) -> DemoResult:
    # Throwaway keys for a throwaway consortium: a random password that only this process knows.
    password = secrets.token_urlsafe(16)
    hospitals = _hospital_data(ws, setup)
    config, model_spec = _task_config(setup, hospitals)
    # What the members train on; the pooled baseline keeps the clean data.
    member_datas, behaviors = _members(hospitals.datas, config, setup)
    pool = setup.rounds * config.incentives.reward_per_round
    sim = create_consortium(
        ws,
        config=config,
        datas=member_datas,
        password=password,
        behaviors=behaviors,
        on_event=on_event,
        reward_pool=pool,
    )
    _unclip(sim.nodes, setup)
    task, store, nodes = sim.task, sim.store, sim.nodes
    if sim.registry is None:
        raise ConfigError("the demo task has a purpose, so its consortium must have a data registry")
    registered = _register_datasets(ws, sim.registry, nodes, hospitals.protected)
    member_rows = _member_rows(nodes, hospitals, behaviors, setup)
    result = DemoResult(workspace=str(ws.root), members=member_rows, setup=_setup_row(setup, config))
    result.datasets = _dataset_rows(nodes, registered, hospitals)
    names: dict[str, str] = {node.account.address: node.name for node in nodes}
    evaluator = build_model(model_spec)
    X_test, y_test = hospitals.X_test, hospitals.y_test

    malicious = [m["address"] for m in member_rows if m["malicious"]]

    def round_closed(info: RoundInfo) -> None:
        if config.secure_aggregation:
            row = secure_round_summary(task, store, info, names, evaluator, X_test, y_test)
            if config.masked.enabled:
                masked = config.masked
                direction = masked.min_cosine is not None
                row["masked"] = masked_round_details(
                    task, info, row, names, direction=direction, committee_reference=masked.reference == "committee"
                )
                row.update(screened=True, accepted=row["masked"]["passed"], rejected=row["masked"]["rejected"])
        else:
            row = round_summary(task, store, info, names, evaluator, X_test, y_test, config.threshold)
            row["malicious_kept_out"] = kept_out(task, info.round_id, row, malicious, names)
        result.rounds.append(row)
        if on_round is not None:
            on_round(row)

    # 4. The rounds, each summarized as it closes.
    Simulation(task, nodes, on_round_closed=round_closed).run()

    # 5. Centralized training on the pooled data, same model (non-private step) and total epochs, for comparison.
    pooled = build_model({**model_spec, "eta0": _ETA0})
    pooled.fit(
        np.concatenate([d.X_train for d in hospitals.datas]),
        np.concatenate([d.y_train for d in hospitals.datas]),
        epochs=config.local_epochs * setup.rounds,
        seed=setup.seed,
    )
    result.centralized_accuracy = float(pooled.evaluate(X_test, y_test))
    result.final_accuracy = result.rounds[-1]["accuracy"] if result.rounds else 0.0
    result.privacy = privacy_summary(config, task, nodes)
    result.incentives = incentives_summary(config, nodes)
    report = verify_task(ws.chain, sim.consortium.address, task.address, store)
    result.verification = report.to_json()
    _screening(result, config, task, store, malicious)
    result.seconds = time.perf_counter() - started
    return result


def _dataset_rows(
    nodes: Sequence[Any], registered: Sequence[RegisteredDataset], hospitals: _Hospitals
) -> list[dict[str, Any]]:
    """Each hospital's registered dataset and the identifier columns its pipeline dropped."""
    return [
        {
            "member": node.name,
            "dataset_id": registered[k].dataset_id,
            "commitment": registered[k].commitment,
            "rows": registered[k].rows,
            "purposes": list(registered[k].purposes),
            "dropped_identifiers": hospitals.protected[k].dropped,
        }
        for k, node in enumerate(nodes)
    ]


def _unclip(nodes: list[MemberNode], setup: _Setup) -> None:
    """The ``unclipped`` hospitals, just before the free riders, skip clipping and boost their updates."""
    first = setup.members - setup.malicious - setup.free_riders - setup.unclipped
    for k in range(first, first + setup.unclipped):
        nodes[k] = UnclippedMember(nodes[k])


def _screening(
    result: DemoResult, config: TaskConfig, task: TrainingTaskClient, store: BlobStore, malicious: list[str]
) -> None:
    """How the attackers fared: kept out by the validators, by the masked checks, or (plain secure rounds) not
    screened at all."""
    if config.masked.enabled:
        result.setup["masked_checks"] = _masked_setup(config, task, store)
        attackers = {m["name"]: m["behavior"] for m in result.members if m["malicious"] or m["unclipped"]}
        result.screening = masked_screening_summary(result.rounds, attackers, result.verification)
    else:
        result.screening = screening_summary(result.rounds, malicious, secure=config.secure_aggregation)


def _member_rows(
    nodes: Sequence[Any], hospitals: _Hospitals, behaviors: Sequence[CoalitionMember | None], setup: _Setup
) -> list[dict[str, Any]]:
    """Who each hospital is in the summary: its examples and behaviour (the malicious ones last, the free riders
    just before them)."""
    honest = setup.members - setup.malicious
    return [
        {
            "name": node.name,
            "address": node.account.address,
            "examples": int(len(hospitals.datas[k].y_train)),
            "malicious": behaviors[k] is not None and k >= honest,
            "free_rider": honest - setup.free_riders <= k < honest,
            "unclipped": isinstance(node, UnclippedMember),
            "behavior": node.behavior_name
            if isinstance(node, UnclippedMember)
            else getattr(behaviors[k], "name", "honest"),
        }
        for k, node in enumerate(nodes)
    ]


def _members(
    datas: Sequence[LocalData], config: TaskConfig, setup: _Setup
) -> tuple[list[LocalData], list[CoalitionMember | None]]:
    """What each hospital trains on and how it behaves: the last ``malicious`` run the attack, the ``free_riders``
    before them send the global model back."""
    member_datas, behaviors = attacking_members(datas, config, setup.attack, setup.malicious, seed=setup.seed)
    if setup.free_riders:
        first = setup.members - setup.malicious
        riders, rider_behaviors = attacking_members(
            member_datas[:first], config, "free-rider", setup.free_riders, seed=setup.seed
        )
        member_datas[:first], behaviors[:first] = riders, rider_behaviors
    return member_datas, behaviors


@dataclass(frozen=True)
class _Hospitals:
    """Every hospital's protected table and the scaled data it trains and validates on, and the test set."""

    protected: list[_Protected]
    datas: list[LocalData]
    scaler: Standardizer
    X_test: npt.NDArray[np.float64]
    y_test: npt.NDArray[np.int64]


def _hospital_data(ws: Workspace, setup: _Setup) -> _Hospitals:
    """1. Each hospital's data, written to its own CSV with its patients' identifiers; the local privacy
    pipeline drops what the classifier calls identifiers, and the hospital trains on what is left."""
    seed = setup.seed
    split = breast_cancer_hospitals(ws.root / "data", n_hospitals=setup.members, alpha=0.8, seed=seed)
    classifier = ColumnClassifier.load()
    protected = []
    for k, raw in enumerate(split.hospitals):
        add_patient_identifiers(raw, seed=seed * 1000 + k)
        protected.append(_protect(raw, classifier, split.label_column))
    local: list[Dataset] = [load_csv_dataset(p.path, split.label_column) for p in protected]
    test = load_csv_dataset(split.test, split.label_column)
    # Feature scaling from per-hospital summary statistics (count, mean, M2), never rows.
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(d.X) for d in local))
    datas = []
    for k, d in enumerate(local):
        X_tr, y_tr, X_val, y_val = train_val_split(scaler.transform(d.X), d.y, val_fraction=0.25, seed=seed + k)
        datas.append(LocalData(X_tr, y_tr, X_val, y_val))
    return _Hospitals(protected, datas, scaler, scaler.transform(test.X), test.y)


def _task_config(setup: _Setup, hospitals: _Hospitals) -> tuple[TaskConfig, dict[str, Any]]:
    """2. The consortium's task and its model; the last ``setup.malicious`` hospitals poison their updates."""
    n_members, seed = setup.members, setup.seed
    n_features = hospitals.X_test.shape[1]
    mode = _dp_mode(setup) if setup.dp_epsilon is not None else None
    client_dp, record_dp = mode == DpMode.CLIENT, mode == DpMode.SAMPLE
    # DP-SGD steps eta0 per example of its expected batch along a noisy mean gradient: a quarter of the plain step
    # keeps the noise each round adds to the model small, and the model still converges in the first round.
    eta0 = _RECORD_DP_ETA0 if record_dp else _ETA0
    model_spec = {"kind": "sklearn-sgd", "n_features": n_features, "n_classes": 2, "eta0": eta0, "seed": seed}
    config = TaskConfig(
        model=model_spec,
        rounds=setup.rounds,
        local_epochs=3,
        seed=seed,
        # Client-level noise scales with the update clip bound: clip tight. Record-level DP-SGD clips each
        # example's gradient instead (dp_max_grad_norm) and its short steps rarely reach 1; validated rounds keep the
        # non-private bound, while under secure aggregation the bound is all that limits an unscreened attacker.
        clip_norm=1.0 if client_dp or (record_dp and setup.secure_aggregation) else 5.0,
        # With client-level DP under secure aggregation each member adds one of min_commitments noise shares: more
        # shares, less noise per member, while one hospital may still drop out (or, malicious, add none).
        min_commitments=max(2, n_members - 1 if client_dp and setup.secure_aggregation else n_members // 2),
        proposal_quorum=min(3, n_members - setup.malicious),
        profile=setup.profile,
        aggregation=setup.rule,
        # Not the task default ("trust"): breast cancer converges in the first round, and from then on honest
        # hospitals' updates are small steps towards their own data, at arbitrary angles to a validator's
        # own (measured: cosines of -0.2 to -0.3 from round 3), so direction-based trust would reject them.
        # Accuracy-based scoring tolerates harmless updates and still rejects the attacker every round.
        scoring=setup.scoring,
        committee_size=setup.committee,
        purpose=DEMO_PURPOSE,
        dp_epsilon=setup.dp_epsilon,
        dp_mode=setup.dp_mode,
        secure_aggregation=setup.secure_aggregation,
        masked_checks=setup.masked_checks,
        masked_min_cosine=setup.masked_min_cosine,
        masked_reference=setup.masked_reference if setup.masked_min_cosine is not None else AUTO,
        extra={"standardizer": hospitals.scaler.to_dict()},
        **demo_incentives(secure_aggregation=setup.secure_aggregation),
    )
    return config, model_spec


def _dp_mode(setup: _Setup) -> str:
    """The DP mode the demo's task will resolve ``setup.dp_mode`` to (the profile's for "auto")."""
    if setup.dp_mode != AUTO:
        return setup.dp_mode
    profile = PROFILES.get(setup.profile)
    if profile is None:
        raise ConfigError(f"unknown profile {setup.profile!r}; known: {', '.join(PROFILES)}")
    return profile.dp_mode


def _register_datasets(
    ws: Workspace, registry: DataRegistryClient, nodes: Sequence[Any], protected: Sequence[_Protected]
) -> list[RegisteredDataset]:
    """3. Each hospital registers its protected table; its node names that dataset in every commitment."""
    registered: list[RegisteredDataset] = []
    for k, node in enumerate(nodes):
        registered.append(
            register_table(
                registry.as_(node.account),
                protected[k].table,
                purposes=list(DEMO_DATASET_PURPOSES),
                classification=protected[k].classification,
                policy={"identifier": "drop", "dropped": protected[k].dropped},
                registrations=Registrations(ws.root / "data" / f"registrations-{k + 1}.json"),
                lawful_basis=DEMO_LAWFUL_BASIS,
                store=ws.store(),  # the documents an auditor's report reads back by their registered hashes
            )
        )
        restrict(ws.root / "data" / f"registrations-{k + 1}.json")  # its Merkle salts open the commitment
        node.dataset_id = registered[-1].dataset_id
    return registered


def _setup_row(setup: _Setup, config: TaskConfig) -> dict[str, Any]:
    return {
        "attack": setup.attack,
        "malicious": setup.malicious,
        "profile": config.profile,
        "rule": config.aggregation,
        "scoring": config.scoring,
        "clip_to_median_norm": config.clip_to_median_norm,
        "lift_to_median_norm": config.lift_to_median_norm,
        "score_at_median_norm": config.score_at_median_norm,
        "center_scores": config.center_scores,
        "cap_examples_to_median": config.cap_examples_to_median,
        "max_rejection": config.max_rejection,
        "min_mean_score": config.min_mean_score,
        "committee": setup.committee,
        "free_riders": setup.free_riders,
        "secure_aggregation": setup.secure_aggregation,
        # Under secure aggregation updates are masked: no validator can score one, so only the masked checks screen.
        "per_update_validation": not setup.secure_aggregation or setup.masked_checks,
        "masked_checks": None,  # its settings once the model's size is known (_masked_setup)
        "unclipped": setup.unclipped,
        "dp_mode": config.dp_mode if setup.dp_epsilon is not None else None,
    }


def _masked_setup(config: TaskConfig, task: TrainingTaskClient, store: BlobStore) -> dict[str, Any]:
    """The masked checks' settings as the committee applied them: committee size, the L2 bound (the task's update
    norm bound unless set, for the model's size), the minimum cosine (None: no direction check) and the reference."""
    start = decode_model(store.get(task.round(1).global_model.removeprefix("0x")))
    length = sum(int(np.size(a)) for a in start.params.values())
    params = check_params(config, length)
    masked = config.masked
    bound = masked.norm_bound if masked.norm_bound is not None else config.update_norm_bound(length)
    return {
        "committee": params.committee,
        "norm_bound": bound,
        "min_cosine": params.min_cosine,
        "reference": params.reference,
        "length": length,
    }
