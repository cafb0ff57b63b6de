"""``fedledger report model``: a model card for one model version of a task, from the ledger.

A version is a round whose model the task finalized (0: the initial model), as ``fedledger models list`` shows.
The card names what made it: the rounds up to it and their accepted updates, the organizations that contributed
them and the datasets they were trained on, the task's purpose, its differential privacy (the budget and each
member's cumulative spend as declared to, and capped by, the contract), its robustness rules, the metrics members
posted for it on the task's evaluation board, and what the independent audit finds in those rounds.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fedledger.audit import verify_task
from fedledger.chain.bulletin import METRICS_TOPIC, BulletinClient
from fedledger.chain.events import RoundAborted, RoundFinalized, UpdateCommitted
from fedledger.chain.registry import purpose_id
from fedledger.chain.task import TaskKind
from fedledger.exceptions import BadInput, FedLedgerError, StoreError
from fedledger.federation.evaluation import MetricsReport
from fedledger.learning.metrics import Metrics, pool_metrics
from fedledger.privacy.accounting import micro_to_epsilon
from fedledger.reports.document import Report, Section, Table, utc
from fedledger.reports.gdpr import dp_unit, task_measures
from fedledger.reports.snapshot import LedgerSnapshot, TaskView

__all__ = ["model_card", "model_versions"]


def model_versions(view: TaskView) -> dict[int, RoundFinalized | None]:
    """Version -> the event that finalized it (None for the initial model, version 0)."""
    versions: dict[int, RoundFinalized | None] = {0: None}
    versions.update({e.round_id: e for e in view.events if isinstance(e, RoundFinalized)})
    return versions


def model_card(snapshot: LedgerSnapshot, *, task: str = "default", version: int | None = None) -> Report:
    """The card of ``task``'s model ``version`` (default: the latest finalized by the snapshot's block);
    :class:`BadInput` for a version the task has not finalized by then."""
    view = snapshot.task(task)
    versions = model_versions(view)
    if version is None:
        version = max(versions)
    if isinstance(version, bool) or not isinstance(version, int) or version not in versions:
        known = ", ".join(map(str, sorted(versions)))
        raise BadInput(
            f"task '{task}' has no model version {version!r} at block {snapshot.block} "
            f"(versions: {known}; `fedledger models list` shows them)"
        )
    commits = [e for e in view.events if isinstance(e, UpdateCommitted) and e.round_id <= version]
    accepted = _accepted(snapshot, view, commits, version)
    sections = [
        _model_section(snapshot, view, version, versions[version]),
        _rounds_section(snapshot, view, version),
        _contributors(snapshot, accepted),
        _data_section(snapshot, view, accepted),
        _privacy_section(snapshot, view, commits),
        _robustness_section(view),
        _evaluation_section(snapshot, view, version),
        _audit_section(snapshot, view, version),
    ]
    return Report(
        kind="model",
        title=f"Model card: task '{task}', model version {version}",
        args={"task": task, "version": version},
        provenance=snapshot.provenance(),
        sections=sections,
    )


def _accepted(
    snapshot: LedgerSnapshot, view: TaskView, commits: list[UpdateCommitted], version: int
) -> list[UpdateCommitted]:
    masks = {r: view.client.round(r, block=snapshot.block).accepted_mask for r in range(1, version + 1)}
    finalized = {e.round_id for e in view.events if isinstance(e, RoundFinalized)}
    return [c for c in commits if c.round_id in finalized and masks[c.round_id] >> c.index & 1]


def _model_section(snapshot: LedgerSnapshot, view: TaskView, version: int, event: RoundFinalized | None) -> Section:
    params = view.client.params()
    kind = str(view.config.model.get("kind", "unknown")) if view.config is not None else "config not in the store"
    rows = [
        ["Task contract", view.client.address],
        ["Version", f"{version} ({'the initial model' if event is None else f'finalized in round {version}'})"],
        ["Model hash (SHA-256 of its blob)", params.initial_model if event is None else event.model_hash],
        ["Model kind", kind],
        ["Task config hash", params.config_hash],
    ]
    if event is not None:
        when = f"{event.block_number} ({utc(snapshot.timestamp(event.block_number))})"
        rows += [["Finalized at block", when], ["Finalizing transaction", event.tx_hash]]
    return Section("Model", [], [Table(rows)])


def _rounds_section(snapshot: LedgerSnapshot, view: TaskView, version: int) -> Section:
    finalized = {e.round_id: e for e in view.events if isinstance(e, RoundFinalized)}
    aborted = {e.round_id: e for e in view.events if isinstance(e, RoundAborted)}
    counts: dict[int, int] = defaultdict(int)
    for e in view.events:
        if isinstance(e, UpdateCommitted):
            counts[e.round_id] += 1
    rows = []
    for r in range(1, version + 1):
        if r in finalized:
            outcome = f"finalized at block {finalized[r].block_number}, {finalized[r].num_accepted} accepted"
        elif r in aborted:
            outcome = f"aborted at block {aborted[r].block_number}: {aborted[r].reason}"
        else:
            outcome = "not finished"
        rows.append([str(r), str(counts[r]), outcome])
    text = [f"{len(rows)} training round(s) led to this version."] if rows else ["The initial model: no training."]
    return Section("Training rounds", text, [Table(rows, ["Round", "Updates committed", "Outcome"])] if rows else [])


def _contributors(snapshot: LedgerSnapshot, accepted: list[UpdateCommitted]) -> Section:
    by_member: dict[str, list[UpdateCommitted]] = defaultdict(list)
    for update in accepted:
        by_member[update.member].append(update)
    rows = [
        [
            snapshot.org(member),
            member,
            str(len(updates)),
            str(sum(u.num_examples for u in updates)),
            ", ".join(str(d) for d in sorted({u.dataset_id for u in updates if u.dataset_id})) or "none declared",
        ]
        for member, updates in sorted(by_member.items(), key=lambda item: (snapshot.org(item[0]), item[0]))
    ]
    return Section(
        "Contributors by organization",
        [f"{len(accepted)} accepted update(s) went into this version."],
        [Table(rows, ["Organization", "Address", "Accepted updates", "Examples", "Datasets"])] if rows else [],
    )


def _data_section(snapshot: LedgerSnapshot, view: TaskView, accepted: list[UpdateCommitted]) -> Section:
    params = view.client.params()
    name = view.config.purpose if view.config is not None else ""
    named = bool(name) and "0x" + purpose_id(name).hex() == params.purpose
    purpose = f"{name} ({params.purpose})" if named else params.purpose
    infos = {d.dataset_id: d for d in snapshot.datasets}
    rows = [["Task purpose", purpose if int(params.purpose, 16) else "none declared"]]
    for dataset_id in sorted({u.dataset_id for u in accepted if u.dataset_id}):
        info = infos.get(dataset_id)
        if info is None:
            rows.append([f"Dataset {dataset_id}", "not in the data registry"])
            continue
        allows = params.purpose in info.purposes
        rows.append(
            [
                f"Dataset {dataset_id}",
                f"{snapshot.org(info.owner)}, {info.rows} rows, {len(info.purposes)} purpose(s), "
                f"{'allows' if allows else 'does NOT allow'} the task's purpose, {info.erasures} erasure(s)",
            ]
        )
    return Section("Data and purposes", [], [Table(rows)])


def _privacy_section(snapshot: LedgerSnapshot, view: TaskView, commits: list[UpdateCommitted]) -> Section:
    config = view.config
    privacy = config.privacy if config is not None else None
    if privacy is None:
        budget = view.client.params().privacy_budget
        text = "none: the task has no privacy budget" if not budget else "the config is not in the store"
        return Section("Differential privacy guarantee", [text])
    rows = [
        [
            "Mechanism",
            f"{dp_unit(str(privacy.mode))} (noise multiplier {_g(privacy.noise_multiplier)}, clip norm "
            f"{privacy.clip_norm:g})",
        ],
        ["Budget", f"epsilon {privacy.budget_epsilon:g} at delta {privacy.delta:g} per member over the task"],
    ]
    spent: dict[str, int] = {}
    for commit in commits:
        spent[commit.member] = commit.epsilon_micro  # cumulative: the latest is the member's spend so far
    spend_rows = [
        [snapshot.org(m), m, f"{micro_to_epsilon(micro):.6f}", str(micro)]
        for m, micro in sorted(spent.items(), key=lambda item: (snapshot.org(item[0]), item[0]))
    ]
    return Section(
        "Differential privacy guarantee",
        [
            "Each member's spend is its cumulative epsilon as composed by its accountant (dp-accounting) and "
            "declared with its last update up to this version; the contract refuses a spend over the budget and "
            "the audit recomputes it."
        ],
        [Table(rows), Table(spend_rows, ["Organization", "Address", "Epsilon spent", "Micro-epsilon on chain"])],
    )


def _g(value: float | None) -> str:
    return "calibrated per member" if value is None else f"{value:.6g}"


def _robustness_section(view: TaskView) -> Section:
    params = view.client.params()
    if view.client.kind is TaskKind.SECURE:
        # Masked updates cannot be scored: the rules that remain are the unmasking threshold and the quorum.
        rows = [["Secure aggregation threshold (shares to unmask)", str(params.secagg_threshold)]]
    else:
        rows = [
            ["Acceptance threshold (0-10000)", str(params.acceptance_threshold)],
            ["Validators' approvals needed", str(params.min_approvals) if params.min_approvals else "median rule"],
            ["Committee size", str(params.committee_size) if params.committee_size else "every validator"],
        ]
        if view.config is not None:
            rows += [["Scoring", str(view.config.robustness.scoring)]]
    rows.append(["Aggregation quorum (identical proposals)", str(params.proposal_quorum)])
    if view.config is not None:
        rows += [
            ["Aggregation rule", str(view.config.robustness.aggregation)],
            ["Profile", str(view.config.robustness.profile)],
        ]
    return Section("Robustness settings", task_measures(view), [Table(rows)])


def _evaluation_section(snapshot: LedgerSnapshot, view: TaskView, version: int) -> Section:
    board = view.config.evaluation_board if view.config is not None else ""
    if not board:
        return Section("Evaluation", ["The task has no evaluation board: no metrics were posted."])
    model_hash = view.client.params().initial_model if version == 0 else view.client.model_at(version)
    members: dict[str, Metrics] = {}
    for post in BulletinClient(snapshot.chain, board).posts(view.client.address, version, METRICS_TOPIC):
        if post.block_number > snapshot.block:
            continue
        try:
            report = MetricsReport.from_bytes(snapshot.store.get(post.blob_hash.removeprefix("0x")))
        except (StoreError, FedLedgerError):
            continue  # unavailable or malformed: `fedledger evaluate` names it, the card leaves it out
        if report.member == post.poster and report.model_hash == model_hash and report.round_id == version:
            members[post.poster] = report.metrics
    if not members:
        return Section("Evaluation", [f"No member posted metrics for version {version} by this block."])
    rows = [[snapshot.org(m), m, *_metric_cells(x)] for m, x in sorted(members.items())]
    rows.append(["pooled", f"{len(members)} member(s)", *_metric_cells(pool_metrics(list(members.values())))])
    return Section(
        "Evaluation metrics",
        [
            "Each member scored this version on its own holdout data and posted the counts; the pooled row "
            "combines them."
        ],
        [Table(rows, ["Organization", "Address", "Examples", "Accuracy", "F1", "Log loss", "ROC AUC"])],
    )


def _metric_cells(m: Metrics) -> list[str]:
    auc = f"{m.roc_auc:.4f}" if m.roc_auc is not None else "n/a"
    return [str(m.n), f"{m.accuracy:.4f}", f"{m.f1:.4f}", f"{m.log_loss:.4f}", auc]


def _audit_section(snapshot: LedgerSnapshot, view: TaskView, version: int) -> Section:
    report = verify_task(snapshot.chain, snapshot.consortium.address, view.client.address, snapshot.store)
    relevant = [d for d in report.discrepancies if d.round_id is None or d.round_id <= version]
    refused = [d for d in report.refused if d.round_id is not None and d.round_id <= version]
    if relevant:
        verdict = f"DISPUTED: {len(relevant)} discrepancy(ies) in the rounds up to this version."
    elif version:
        verdict = f"Verified: rounds 1 to {version} re-derived from chain events and blobs with no discrepancy."
    else:
        verdict = "Verified: the task's config matches its hash on chain; the initial model has no round to re-derive."
    status: list[Any] = [verdict]
    status += [f"discrepancy: {d}" for d in relevant]
    status += [f"refused blob (left out by the rules): {d}" for d in refused]
    status.append("Re-run it with `fedledger audit verify --task " + view.name + "`.")
    return Section("Audit status", [str(s) for s in status])
