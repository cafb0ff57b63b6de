"""``fedledger report hipaa``: audit controls (HIPAA §164.312(b)) from the ledger.

Every transaction to the consortium, its data registry, its tasks and their evaluation boards is an access to or a
contribution of data, recorded by the chain itself: who (the transaction's sender), what (the event), when (its
block and the block's timestamp) and under which role (the consortium role the action needs, checked against the
roles the sender held at that moment, replayed from the consortium's events; a dataset's owner acts as its owner).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.consortium import Role
from fedledger.chain.events import (
    AggregateProposed,
    DatasetRegistered,
    DatasetRevoked,
    DatasetUpdated,
    KeysAdvertised,
    LedgerEvent,
    MemberAdmitted,
    MemberRevoked,
    MetadataUpdated,
    Posted,
    ProposalApproved,
    ProposalCancelled,
    ProposalCreated,
    PurposesChanged,
    RolesChanged,
    RoundFinalized,
    RoundOpened,
    ScoresSubmitted,
    SharesPosted,
    SharesRevealed,
    SubjectErased,
    ThresholdChanged,
    UpdateCommitted,
    UpdateFlagged,
)
from fedledger.reports.document import Report, Section, Table, utc
from fedledger.reports.snapshot import LedgerSnapshot

__all__ = ["Access", "access_log", "hipaa_report"]

OWNER = "dataset owner"


@dataclass(frozen=True)
class Access:
    """One recorded access or contribution."""

    actor: str
    block: int
    role: str
    action: str
    target: str
    event: LedgerEvent


def _describe(event: LedgerEvent, where: str) -> tuple[Role | str | None, str, str] | None:
    """(the role the action needs, what was done, to what) for the events that record an access; None for the
    events a contract emits as a consequence of another (phase closings, tallies)."""
    match event:
        case UpdateCommitted():
            dataset = f", dataset {event.dataset_id}" if event.dataset_id else ""
            return (
                Role.TRAINER,
                "contributed a model update",
                f"{where} round {event.round_id}, update {event.index}, {event.num_examples} examples{dataset}",
            )
        case ScoresSubmitted():
            return Role.VALIDATOR, "scored updates", f"{where} round {event.round_id}, updates {list(event.indices)}"
        case AggregateProposed():
            return Role.AGGREGATOR, "proposed an aggregate", f"{where} round {event.round_id}"
        case UpdateFlagged():
            return None, "flagged an update", f"{where} round {event.round_id}, update {event.index}: {event.reason}"
        case RoundOpened():
            return None, "opened a round", f"{where} round {event.round_id}"
        case RoundFinalized():
            return Role.AGGREGATOR, "finalized a round", f"{where} round {event.round_id}"
        case KeysAdvertised() | SharesPosted() | SharesRevealed():
            return Role.TRAINER, f"secure aggregation: {event.name}", f"{where} round {event.round_id}"
        case Posted():
            return None, "posted evaluation metrics", f"{where} round {event.round_id}"
        case DatasetRegistered():
            return OWNER, "registered a dataset", f"dataset {event.dataset_id}, {event.rows} rows"
        case DatasetUpdated():
            return OWNER, "committed new rows", f"dataset {event.dataset_id}, {event.rows} rows"
        case PurposesChanged():
            return OWNER, "changed purposes (consent)", f"dataset {event.dataset_id}"
        case SubjectErased():
            return OWNER, "recorded a subject's erasure", f"dataset {event.dataset_id}"
        case DatasetRevoked():
            return OWNER, "revoked a dataset", f"dataset {event.dataset_id}"
        case ProposalCreated():
            return Role.ADMIN, "proposed a membership change", f"proposal {event.proposal_id} about {event.target}"
        case ProposalApproved():
            return Role.ADMIN, "approved a proposal", f"proposal {event.proposal_id}"
        case ProposalCancelled():
            return Role.ADMIN, "cancelled a proposal", f"proposal {event.proposal_id}"
        case MemberAdmitted():
            return (
                Role.ADMIN,
                "admitted a member",
                f"{event.org} ({event.member}): {', '.join(Role(event.roles).names())}",
            )
        case RolesChanged():
            return Role.ADMIN, "changed roles", f"{event.member}: {', '.join(Role(event.new_roles).names())}"
        case MemberRevoked():
            return Role.ADMIN, "revoked a member", event.member
        case ThresholdChanged():
            return Role.ADMIN, "changed the approval threshold", f"{event.old_threshold} -> {event.new_threshold}"
        case MetadataUpdated():
            return None, "updated its member metadata", "consortium"
    return None


def access_log(snapshot: LedgerSnapshot) -> list[Access]:
    """Every recorded access up to the snapshot's block, in chain order."""
    sources: list[tuple[str, list[LedgerEvent]]] = [
        ("consortium", snapshot.consortium_events),
        ("data registry", snapshot.registry_events),
    ]
    for view in snapshot.tasks:
        sources.append((f"task '{view.name}'", view.events))
        board = view.config.evaluation_board if view.config is not None else ""
        if board:
            posts = BulletinClient(snapshot.chain, board).events(to_block=snapshot.block)
            sources.append(
                (f"task '{view.name}'", [e for e in posts if isinstance(e, Posted) and e.task == view.client.address])
            )
    log = []
    for where, events in sources:
        for event in events:
            described = _describe(event, where)
            if described is None:
                continue
            needed, action, target = described
            actor = snapshot.sender(event)
            log.append(
                Access(actor, event.block_number, _role_text(snapshot, actor, event, needed), action, target, event)
            )
    return sorted(log, key=lambda a: (a.block, a.event.log_index))


def _role_text(snapshot: LedgerSnapshot, actor: str, event: LedgerEvent, needed: Role | str | None) -> str:
    held = snapshot.roles_at(actor, event)
    if isinstance(needed, str):
        return needed
    if needed is None:
        return ", ".join(held.names()) or "no role"
    return needed.name.lower() if needed in held else f"{needed.name.lower()} (NOT HELD)"  # type: ignore[union-attr]


def hipaa_report(snapshot: LedgerSnapshot) -> Report:
    log = access_log(snapshot)
    by_actor: dict[str, list[Access]] = defaultdict(list)
    for access in log:
        by_actor[access.actor].append(access)
    roster = [
        [
            m.org,
            m.address,
            ", ".join(m.roles.names()),
            m.status.name.lower(),
            str(m.admitted_at),
            str(m.revoked_at or ""),
        ]
        for m in snapshot.members
    ]
    summary = [
        [
            snapshot.org(actor),
            actor,
            str(len(accesses)),
            str(sum(1 for a in accesses if isinstance(a.event, UpdateCommitted))),
            str(sum(1 for a in accesses if a.role.endswith("(NOT HELD)"))),
        ]
        for actor, accesses in sorted(by_actor.items(), key=lambda item: (snapshot.org(item[0]), item[0]))
    ]
    sections = [
        Section(
            "Scope",
            [
                "Audit controls (45 CFR §164.312(b)): every access to or contribution of data that the consortium's "
                f"contracts recorded up to block {snapshot.block}, {len(log)} in all. Who is the sender of the "
                "transaction, when its block and the block's time, and the role is the one the action needs, checked "
                "against the roles the sender held at that moment ('NOT HELD' marks an action without it)."
            ],
        ),
        Section(
            "Workforce: members and their roles",
            [],
            [Table(roster, ["Organization", "Address", "Roles", "Status", "Admitted", "Revoked"])],
        ),
        Section(
            "Summary by member",
            [],
            [Table(summary, ["Organization", "Address", "Actions", "Updates contributed", "Without the role"])],
        ),
    ]
    for actor, accesses in sorted(by_actor.items(), key=lambda item: (snapshot.org(item[0]), item[0])):
        rows = [[str(a.block), utc(snapshot.timestamp(a.block)), a.role, a.action, a.target] for a in accesses]
        sections.append(
            Section(
                f"Activity of {snapshot.org(actor)} ({actor})",
                [],
                [Table(rows, ["Block", "Time", "Role", "Action", "On"])],
            )
        )
    return Report(
        kind="hipaa",
        title="Audit controls (HIPAA 45 CFR 164.312(b)): who accessed or contributed what, when, under which role",
        args={},
        provenance=snapshot.provenance(),
        sections=sections,
    )
