"""``fedledger report gdpr``: records of processing (GDPR Art. 30) and erasures (Art. 17), from the ledger.

Each registered dataset is a processing activity of its owner (the controller): its purposes are the registry's
(named where a published document or a task config names them: the chain holds only their keccak256), the
categories of data come from its column classification, its lawful basis, retention and protection from its policy
document, both read from the store under the hashes the registry holds, so a document that does not match is not
in the store. Recipients are the organizations that received what was derived from it (the validators, aggregators
and auditors of the tasks that took its updates), and the security measures are the tasks' own (differential
privacy, secure aggregation, validated acceptance). Erasures are the registry's ``SubjectErased`` records: a keyed
hash of the subject per dataset, never the subject.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedledger.chain.consortium import Role
from fedledger.chain.events import DatasetRevoked, PurposesChanged, SubjectErased, UpdateCommitted
from fedledger.chain.registry import DatasetInfo, purpose_id
from fedledger.data.lawful_basis import POLICY_KEY, LawfulBasis
from fedledger.exceptions import BadInput
from fedledger.reports.document import Report, Section, Table, utc
from fedledger.reports.snapshot import LedgerSnapshot, TaskView

__all__ = ["CATEGORIES", "gdpr_report", "task_measures"]

CATEGORIES = ("identifier", "quasi-identifier", "sensitive", "other")
RECIPIENT_ROLES = Role.VALIDATOR | Role.AGGREGATOR | Role.AUDITOR


def gdpr_report(snapshot: LedgerSnapshot) -> Report:
    names = _purpose_names(snapshot)
    sections = [_controllers(snapshot)]
    sections += [_dataset_section(snapshot, info, names) for info in snapshot.datasets]
    if not snapshot.datasets:
        sections.append(Section("Datasets", ["No dataset was registered in the data registry by this block."]))
    sections.append(_erasures(snapshot))
    sections.append(_consent_changes(snapshot, names))
    sections += [_activity(view, names) for view in snapshot.tasks]
    return Report(
        kind="gdpr",
        title="Records of processing activities (GDPR Art. 30) and erasures (Art. 17)",
        args={},
        provenance=snapshot.provenance(),
        sections=sections,
    )


def _controllers(snapshot: LedgerSnapshot) -> Section:
    rows = [
        [m.org, m.address, ", ".join(m.roles.names()), m.status.name.lower(), str(m.admitted_at)]
        for m in snapshot.members
    ]
    return Section(
        "Controllers: the consortium's organizations (Art. 30(1)(a))",
        [
            "Each dataset's owner is the controller of its processing; the organizations below act together under "
            "the consortium contract's rules, admitted by its admins' votes."
        ],
        [Table(rows, ["Organization", "Address", "Roles", "Status", "Admitted at block"])],
    )


def _purpose_names(snapshot: LedgerSnapshot) -> dict[str, str]:
    """Purpose id (0x-hex) -> name, for every name a task config or a registration document gives (each name is
    checked by hashing it, so a wrong name cannot stand in for an id)."""
    candidates = [view.config.purpose for view in snapshot.tasks if view.config is not None and view.config.purpose]
    for info in snapshot.datasets:
        policy = snapshot.document(info.policy_hash)
        entry = policy.get(POLICY_KEY) if isinstance(policy, Mapping) else None
        if isinstance(entry, Mapping) and isinstance(entry.get("purposes"), list):
            candidates += [p for p in entry["purposes"] if isinstance(p, str)]
    names = {}
    for name in candidates:
        try:
            names["0x" + purpose_id(name).hex()] = name
        except BadInput:
            continue
    return names


def _purpose_text(purpose: str, names: Mapping[str, str]) -> str:
    return f"{names[purpose]} ({purpose})" if purpose in names else f"{purpose} (name not published)"


def _dataset_section(snapshot: LedgerSnapshot, info: DatasetInfo, names: Mapping[str, str]) -> Section:
    policy = snapshot.document(info.policy_hash)
    classification = snapshot.document(info.classification_hash)
    try:
        basis = LawfulBasis.from_policy(policy)
        basis_text = basis.describe() if basis is not None else "not recorded in the registration's policy"
    except BadInput as exc:
        basis, basis_text = None, f"malformed record: {exc}"
    users = [view for view in snapshot.tasks if _updates_on(view, info.dataset_id)]
    rows = [
        ["Controller (owner)", f"{snapshot.org(info.owner)} ({info.owner})"],
        ["Status", info.status.name.lower()],
        ["Registered at block", f"{info.registered_at} ({utc(snapshot.timestamp(info.registered_at))})"],
        ["Rows committed", str(info.rows)],
        ["Purposes (Art. 30(1)(b))", "\n".join(_purpose_text(p, names) for p in info.purposes)],
        ["Lawful basis (Art. 6, 9)", basis_text],
        ["Categories of data (Art. 30(1)(c))", _categories(classification, info.classification_hash)],
        ["Recipients (Art. 30(1)(d))", _recipients(snapshot, info, users)],
        ["Retention (Art. 30(1)(f))", basis.retention if basis is not None and basis.retention else "not recorded"],
        ["Security measures (Art. 30(1)(g))", _measures(policy, info, users)],
        ["Erasures recorded", str(info.erasures)],
        ["Row commitment (salted Merkle root)", info.commitment],
        ["Classification hash", info.classification_hash],
        ["Policy hash", info.policy_hash],
    ]
    return Section(f"Dataset {info.dataset_id}: {snapshot.org(info.owner)}", [], [Table(rows)])


def _updates_on(view: TaskView, dataset_id: int) -> list[UpdateCommitted]:
    return [e for e in view.events if isinstance(e, UpdateCommitted) and e.dataset_id == dataset_id]


def _categories(classification: Any, digest: str) -> str:
    if classification is None:
        return f"classification not published to the store (its hash on chain: {digest})"
    labels: dict[str, str] = {}
    if isinstance(classification, Mapping) and isinstance(classification.get("columns"), list):
        for column in classification["columns"]:
            if isinstance(column, Mapping) and isinstance(column.get("name"), str):
                labels[column["name"]] = str(column.get("label") or column.get("class") or "other")
    elif isinstance(classification, Mapping):
        for name, value in classification.items():
            label = value.get("class") or value.get("label") if isinstance(value, Mapping) else value
            labels[str(name)] = str(label or "other")
    lines = []
    for category in CATEGORIES:
        columns = sorted(c for c, label in labels.items() if (label if label in CATEGORIES else "other") == category)
        lines.append(f"{category}: {', '.join(columns) if columns else 'none'}")
    return "\n".join(lines)


def _recipients(snapshot: LedgerSnapshot, info: DatasetInfo, users: list[TaskView]) -> str:
    if not users:
        return "none: no task has taken an update trained on it"
    orgs = sorted(
        {
            f"{m.org} ({', '.join((m.roles & RECIPIENT_ROLES).names())})"
            for m in snapshot.members
            if m.address != info.owner and m.roles & RECIPIENT_ROLES
        }
    )
    tasks = ", ".join(f"'{v.name}'" for v in users)
    return f"model updates trained on it, in task(s) {tasks}, reach: " + ("; ".join(orgs) or "no other member")


def _measures(policy: Any, info: DatasetInfo, users: list[TaskView]) -> str:
    lines = ["rows committed by a salted Merkle root only; no row, value or salt on chain"]
    if isinstance(policy, Mapping):
        applied = {k: v for k, v in sorted(policy.items()) if k != POLICY_KEY}
        lines += [f"policy {k}: {_short(v)}" for k, v in applied.items()]
    else:
        lines.append(f"policy document not published to the store (its hash on chain: {info.policy_hash})")
    for view in users:
        lines += [f"task '{view.name}': {m}" for m in task_measures(view)]
    return "\n".join(lines)


def dp_unit(mode: str) -> str:
    """What a DP mode protects, in the words a data protection officer reads."""
    units = {"sample": "record-level: each data subject's record", "client": "member-level: each member's whole data"}
    return units.get(mode, mode)


def task_measures(view: TaskView) -> list[str]:
    """The protections a task applies to every update, from its config (as committed by hash on chain)."""
    config = view.config
    if config is None:
        return ["config not in the store (its hash is on chain): measures unknown"]
    privacy = config.privacy
    dp = (
        f"differential privacy ({dp_unit(str(privacy.mode))}): budget epsilon "
        f"{privacy.budget_epsilon:g} at delta {privacy.delta:g}"
        if privacy is not None
        else "no differential privacy budget"
    )
    secure = "secure aggregation (no update seen alone)" if config.secagg.enabled else "no secure aggregation"
    screened = (
        "updates unscreened (masked)"
        if config.secagg.enabled
        else f"each update scored by validators, accepted by the contract's rule ({config.robustness.scoring})"
    )
    return [dp, secure, screened, f"updates clipped to L2 norm {config.clip_norm:g}"]


def _short(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "; ".join(f"{k}={_short(v)}" for k, v in sorted(value.items()))
    return str(value)


def _erasures(snapshot: LedgerSnapshot) -> Section:
    erased = [e for e in snapshot.registry_events if isinstance(e, SubjectErased)]
    rows = [
        [
            str(e.dataset_id),
            snapshot.org(snapshot.sender(e)),
            str(e.block_number),
            utc(snapshot.timestamp(e.block_number)),
            f"subject {e.subject_hash}\ntx {e.tx_hash}",
        ]
        for e in erased
    ]
    text = [
        "Each erasure destroyed the subject's data key in its owner's vault, so their values cannot be decrypted "
        "anywhere, and was recorded on the ledger under a hash keyed per dataset: the record proves the erasure "
        f"without naming the subject. {len(erased)} erasure record(s) by this block."
    ]
    return Section(
        "Erasure requests and their records (Art. 17)",
        text,
        [Table(rows, ["Dataset", "Recorded by", "Block", "Time", "Record"])] if rows else [],
    )


def _consent_changes(snapshot: LedgerSnapshot, names: Mapping[str, str]) -> Section:
    rows = []
    for e in snapshot.registry_events:
        if isinstance(e, PurposesChanged):
            change = "purposes now: " + "; ".join(_purpose_text(p, names) for p in e.purposes)
        elif isinstance(e, DatasetRevoked):
            change = "dataset revoked: it allows no purpose"
        else:
            continue
        rows.append([str(e.dataset_id), str(e.block_number), utc(snapshot.timestamp(e.block_number)), change])
    text = [f"{len(rows)} change(s) of purposes (consent given or withdrawn) or revocation(s) by this block."]
    return Section(
        "Changes of purposes and revocations",
        text,
        [Table(rows, ["Dataset", "Block", "Time", "Change"])] if rows else [],
    )


def _activity(view: TaskView, names: Mapping[str, str]) -> Section:
    params = view.client.params()
    commits = [e for e in view.events if isinstance(e, UpdateCommitted)]
    datasets = sorted({e.dataset_id for e in commits if e.dataset_id})
    rows = [
        ["Task contract", view.client.address],
        ["Purpose", _purpose_text(params.purpose, names) if int(params.purpose, 16) else "none declared"],
        ["Data registry checked", params.data_registry],
        ["Updates committed", str(len(commits))],
        ["Datasets used", ", ".join(map(str, datasets)) or "none"],
        ["Measures", "\n".join(task_measures(view))],
    ]
    return Section(f"Processing activity: task '{view.name}'", [], [Table(rows)])
