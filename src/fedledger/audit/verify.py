"""Independent verification of a task from chain events and the store alone.

Re-derives, without trusting any node's word:
- the task config and every model and update blob match the hashes committed for them;
- every committer, scorer and proposer was an active member with the right role of the
  trusted consortium at the moment it acted (from the consortium's own events);
- each round started from the previous round's finalized model;
- each accepted set follows from the validators' scores by the contract's rule;
- each finalized model equals the aggregate of its round's accepted updates,
  recomputed here bit for bit with the same rules the aggregators use (with a server
  optimizer, its step from the state stored in the round's starting model blob; the
  recomputed blob holds the new state, so the hash comparison checks the state too);
- lineage (tasks with a purpose): the task checks datasets in a DataRegistry of the trusted
  consortium for the purpose its config names, and each committed update's dataset was
  registered by its committer and allowed that purpose when the update was committed
  (replayed from the registry's own events, to the log index);
- privacy (tasks with a budget): each member's declared cumulative spends never decrease,
  stay within the budget, and are not below what dp-accounting composes for the rounds it
  committed under the task's mechanism.
- for secure-aggregation rounds, every key advert, share bundle, masked input and
  share reveal matches its committed hash, and the finalized model is the one the
  published messages unmask to (``secagg.recompute_aggregate``: the sum of the
  committed masked inputs, masks removed with the revealed shares).
- governance: every vote that paused, resumed or changed the task, or released one of its models, met the
  approval threshold of admins in force, and did exactly what was voted (:mod:`fedledger.audit.governance`);
- for a gateway's update (hierarchical federation), its devices' secure aggregate re-derived from the
  manifest the update names (:mod:`fedledger.audit.hierarchy`).
- payouts (tasks with incentives): every credit, claim and slash re-derived from the posted
  contributions and the pool's books (:mod:`fedledger.audit.incentives`, which says what it trusts).
- batched commitments (when given the CommitmentBatches contract): every leaf of every batch posted for
  the task, rebuilt from its blob and checked by the contract's rules (:mod:`fedledger.audit.batches`).

A committed blob that is over the store's size limit or malformed is named in the report's ``refused``
list (the rules leave such an update out, so it is no discrepancy by itself) and the audit goes on: it
never stops at one blob, and gives its verdict on everything else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from fedledger.audit.batches import BatchAudit, audit_batches
from fedledger.audit.discrepancy import Discrepancy
from fedledger.audit.governance import audit_governance
from fedledger.audit.hierarchy import check_gateway_update
from fedledger.audit.history import DatasetHistory, RoleHistory
from fedledger.audit.incentives import PayoutAudit, audit_payouts
from fedledger.audit.masked import check_masked_bundle, check_masked_finalized
from fedledger.chain.connection import Chain
from fedledger.chain.consortium import ConsortiumClient, Role
from fedledger.chain.events import (
    AggregateProposed,
    KeysAdvertised,
    LedgerEvent,
    RoundFinalized,
    RoundOpened,
    ScoresSubmitted,
    SharesPosted,
    SharesRevealed,
    UpdateCommitted,
    ValidationClosed,
)
from fedledger.chain.registry import DataRegistryClient
from fedledger.chain.task import ZERO_ADDRESS, TrainingTaskClient, UpdateInfo, indices_of
from fedledger.exceptions import (
    BadInput,
    BlobNotFound,
    ConfigError,
    FedLedgerError,
    IntegrityError,
    StoreError,
    UpdateRejected,
)
from fedledger.federation.config import TaskConfig
from fedledger.federation.rules import accepted_mask, aggregate_round, previous_global_params, registered_rows
from fedledger.federation.secure import load_round, round_context, secure_aggregate_round
from fedledger.learning import ModelBlob, decode_model
from fedledger.privacy.accounting import PrivacyAccount, epsilon_to_micro
from fedledger.privacy.secagg import KeyAdvert, ShareBundle, ShareReveal, verify_aggregate
from fedledger.store import BlobStore, BlobTooLarge, decode_tensors

__all__ = ["Discrepancy", "VerificationReport", "verify_task"]


@dataclass
class VerificationReport:
    task: str
    consortium: str
    rounds_checked: int = 0
    updates_checked: int = 0
    models_checked: int = 0
    votes_checked: int = 0
    """Consortium votes on the task (calls and model releases) whose approvals were re-derived."""
    gateway_updates_checked: int = 0
    """Gateways' updates re-derived from their devices' committed messages (:mod:`fedledger.audit.hierarchy`)."""
    discrepancies: list[Discrepancy] = field(default_factory=list)
    refused: list[Discrepancy] = field(default_factory=list)
    """Committed blobs that are oversized or malformed: named, and left out as the rules leave them out."""
    payouts: PayoutAudit | None = None
    """The payout audit, for a task with incentives (its discrepancies are among the report's too)."""
    batches: BatchAudit | None = None
    """The audit of the task's batched commitments, when a batch contract was given (discrepancies included)."""

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "task": self.task,
            "consortium": self.consortium,
            "rounds_checked": self.rounds_checked,
            "updates_checked": self.updates_checked,
            "models_checked": self.models_checked,
            "votes_checked": self.votes_checked,
            "gateway_updates_checked": self.gateway_updates_checked,
            "first_discrepancy": str(self.discrepancies[0]) if self.discrepancies else None,
            "discrepancies": [asdict(d) | {"text": str(d)} for d in self.discrepancies],
            "refused": [asdict(d) | {"text": str(d)} for d in self.refused],
            "payouts": self.payouts.to_json() if self.payouts is not None else None,
            "batches": self.batches.to_json() if self.batches is not None else None,
        }


def verify_task(
    chain: Chain, consortium_address: str, task_address: str, store: BlobStore, *, batches: str | None = None
) -> VerificationReport:
    """Check one task against the trusted consortium (and its batched commitments on the CommitmentBatches
    contract ``batches``: by default the task's own, for a task deployed with one); never raises for a
    discrepancy."""
    task = TrainingTaskClient(chain, task_address)
    consortium = ConsortiumClient(chain, consortium_address)
    report = VerificationReport(task=task.address, consortium=consortium.address)

    def fail(message: str, *, round_id: int | None = None, member: str | None = None, h: str | None = None) -> None:
        report.discrepancies.append(Discrepancy(round_id, member, h, message))

    def refuse(message: str, *, round_id: int | None = None, member: str | None = None, h: str | None = None) -> None:
        report.refused.append(Discrepancy(round_id, member, h, message))

    if task.consortium_address != consortium.address:
        fail(f"task is governed by {task.consortium_address}, not the trusted consortium {consortium.address}")
    # One block for every read: the rounds and the payouts are audited against the same history.
    block = chain.block_number
    events = task.events(to_block=block)
    # The consortium's history, read once: the roles every action is checked against, and the votes.
    consortium_events = consortium.events(to_block=block)
    roles = RoleHistory(consortium_events)
    config = _verify_rounds(chain, consortium, task, store, events, roles, report, fail, refuse)
    if config is not None:
        report.votes_checked = audit_governance(
            consortium_events, task.address, events, config, task.params().param_bounds, roles.had_role, fail
        )
    if task.params().stake_gate != ZERO_ADDRESS:
        report.payouts = audit_payouts(chain, task, events, block=block)
        report.discrepancies.extend(report.payouts.discrepancies)
    if batches is None and task.params().commitment_batches != ZERO_ADDRESS:
        batches = task.params().commitment_batches  # a batched task's rounds start from its batches
    if batches is not None:
        report.batches = audit_batches(
            chain,
            consortium,
            batches,
            task.address,
            store,
            block=block,
            task_events=events,
            privacy_budget=task.params().privacy_budget,
        )
        report.discrepancies.extend(report.batches.discrepancies)
    return report


def _verify_rounds(
    chain: Chain,
    consortium: ConsortiumClient,
    task: TrainingTaskClient,
    store: BlobStore,
    events: list[LedgerEvent],
    roles: RoleHistory,
    report: VerificationReport,
    fail: Any,
    refuse: Any,
) -> TaskConfig | None:
    """The config, lineage, privacy and every round's blobs and models, from the task's events; returns the
    committed config (None when it is unavailable, a discrepancy already)."""
    params = task.params()
    try:
        config = TaskConfig.from_bytes(store.get(params.config_hash.removeprefix("0x")))
    except (StoreError, ConfigError) as exc:
        fail(f"task config unavailable or invalid: {exc}", h=params.config_hash)
        return None
    datasets = _lineage_source(chain, consortium, params.data_registry, params.purpose, config, fail)
    privacy = config.privacy
    if privacy is not None and params.privacy_budget != privacy.budget_micro:
        fail(f"task contract budget {params.privacy_budget} micro-epsilon, its config says {privacy.budget_micro}")
    replay = _Replay(task, store, config, roles, datasets, report, fail, refuse)
    for event in events:
        replay.apply(event)
    return config


class _Replay:
    """A task's events replayed in order, each checked against the rules and what came before it."""

    def __init__(
        self,
        task: TrainingTaskClient,
        store: BlobStore,
        config: TaskConfig,
        roles: RoleHistory,
        datasets: DatasetHistory | None,
        report: VerificationReport,
        fail: Any,
        refuse: Any,
    ) -> None:
        self.task, self.store, self.config, self.roles, self.datasets = task, store, config, roles, datasets
        self.report, self.fail, self.refuse = report, fail, refuse
        self.params = task.params()
        self.accounts: dict[str, PrivacyAccount] = {}
        self.declared: dict[str, int] = {}
        self.commits: dict[int, list[UpdateCommitted]] = defaultdict(list)
        self.scores: dict[int, list[ScoresSubmitted]] = defaultdict(list)
        self.expected_global = self.params.initial_model
        self.opened: dict[int, str] = {}

    def apply(self, e: LedgerEvent) -> None:
        at = (e.block_number, e.log_index)
        if isinstance(e, RoundOpened):
            self.opened[e.round_id] = e.global_model
            if e.global_model != self.expected_global:
                self.fail(
                    f"round opened on {e.global_model}, the last finalized model is {self.expected_global}",
                    round_id=e.round_id,
                    h=e.global_model,
                )
        elif isinstance(e, UpdateCommitted):
            self._committed(e, at)
        elif isinstance(e, KeysAdvertised | SharesPosted | SharesRevealed):
            _check_secure_message(self.store, self.roles, e, at, self.fail, self.refuse)
        elif isinstance(e, ScoresSubmitted):
            self.scores[e.round_id].append(e)
            if not self.roles.had_role(e.validator, Role.VALIDATOR, at):
                self.fail(
                    f"scorer was not an active validator at block {e.block_number}",
                    round_id=e.round_id,
                    member=e.validator,
                )
        elif isinstance(e, ValidationClosed):
            derived = _accepted_mask(
                self.commits[e.round_id],
                self.scores[e.round_id],
                self.params.acceptance_threshold,
                self.params.min_approvals,
            )
            if derived != e.accepted_mask:
                self.fail(
                    f"accepted set {indices_of(e.accepted_mask)} does not follow from the scores "
                    f"(expected {indices_of(derived)})",
                    round_id=e.round_id,
                )
        elif isinstance(e, AggregateProposed):
            if not self.roles.had_role(e.aggregator, Role.AGGREGATOR, at):
                self.fail(
                    f"proposer was not an active aggregator at block {e.block_number}",
                    round_id=e.round_id,
                    member=e.aggregator,
                    h=e.model_hash,
                )
        elif isinstance(e, RoundFinalized):
            self._finalized(e)

    def _committed(self, e: UpdateCommitted, at: tuple[int, int]) -> None:
        self.report.updates_checked += 1
        self.commits[e.round_id].append(e)
        if not self.roles.had_role(e.member, Role.TRAINER, at):
            self.fail(
                f"committer was not an active trainer of the consortium at block {e.block_number}",
                round_id=e.round_id,
                member=e.member,
                h=e.update_hash,
            )
        config, privacy = self.config, self.config.privacy
        if self.datasets is not None and config.purpose_id is not None:
            _check_lineage(self.datasets, config.purpose, config.purpose_id, e, self.fail)
        if privacy is not None:
            account = self.accounts.setdefault(e.member, privacy.account(e.member))
            composed = account.record(e.round_id, privacy.mechanism(num_examples=e.num_examples))
            _check_spend(e, composed, self.declared.get(e.member, 0), self.params.privacy_budget, self.fail)
            self.declared[e.member] = max(self.declared.get(e.member, 0), e.epsilon_micro)
        if self.config.masked.enabled:
            check_masked_bundle(self.store, e, self.fail, self.refuse)
        elif _check_update_blob(self.store, self.task.address, e, self.fail, self.refuse):
            self.report.gateway_updates_checked += 1

    def _finalized(self, e: RoundFinalized) -> None:
        self.report.rounds_checked += 1
        self.expected_global = e.model_hash
        commits, opened = self.commits[e.round_id], self.opened.get(e.round_id)
        if self.config.masked.enabled:
            start = _round_start_model(self.store, e, opened, self.fail)
            if start is not None:
                check_masked_finalized(self.store, self.config, self.task, e, start, commits, self.fail)
        elif self.params.secagg_threshold:
            _check_secure_finalized(self.store, self.config, self.task, e, opened, commits, self.fail)
        else:
            _check_finalized(self.store, self.config, self.task, e, opened, commits, self.fail, self.refuse)
        self.report.models_checked += 1


def _read_committed(
    store: BlobStore, kind: str, blob_hash: str, where: dict[str, Any], fail: Any, refuse: Any
) -> bytes | None:
    """A committed blob's bytes, or None after naming why not: missing or not matching its hash is a
    discrepancy (the ledger points at data nobody can check); over the store's size limit is a refusal,
    known from its size alone, without reading it."""
    try:
        return store.get(blob_hash.removeprefix("0x"))
    except BlobTooLarge as exc:
        refuse(f"{kind} blob is oversized: {exc.size} bytes, over the limit of {exc.limit}", h=blob_hash, **where)
    except BlobNotFound:
        fail(f"{kind} blob missing from the store", h=blob_hash, **where)
    except IntegrityError:
        fail(f"{kind} blob does not match its committed hash", h=blob_hash, **where)
    except StoreError as exc:
        fail(f"{kind} blob unreadable: {exc}", h=blob_hash, **where)
    return None


def _check_update_blob(store: BlobStore, task: str, e: UpdateCommitted, fail: Any, refuse: Any) -> bool:
    """An update blob (or a masked input: the same safetensors layout) must be readable and well-formed; a
    gateway's update is checked against its devices' messages too (True when it was a gateway's)."""
    where = {"round_id": e.round_id, "member": e.member}
    data = _read_committed(store, "update", e.update_hash, where, fail, refuse)
    if data is None:
        return False
    try:
        tensors, meta = decode_tensors(data)
    except UpdateRejected as exc:
        refuse(f"update blob is malformed: {exc.reason}", h=e.update_hash, **where)
        return False
    return check_gateway_update(store, task, e, tensors, meta, fail)


def _lineage_source(
    chain: Chain,
    consortium: ConsortiumClient,
    registry_address: str,
    contract_purpose: str,
    config: TaskConfig,
    fail: Any,
) -> DatasetHistory | None:
    """The dataset history to check lineage against, or None (after a discrepancy) when there is none."""
    if not config.purpose:
        if registry_address != ZERO_ADDRESS:
            fail(f"task checks datasets in {registry_address} but its config names no purpose")
        return None
    if config.purpose_id != contract_purpose:
        fail(
            f"task contract checks purpose id {contract_purpose}, its config names {config.purpose!r} "
            f"({config.purpose_id})"
        )
    if registry_address == ZERO_ADDRESS:
        fail(f"task config names purpose {config.purpose!r} but the task checks no data registry")
        return None
    registry = DataRegistryClient(chain, registry_address)
    try:
        governed_by = registry.consortium_address
    except FedLedgerError as exc:
        fail(f"data registry {registry_address} unreadable: {exc}")
        return None
    if governed_by != consortium.address:
        fail(f"data registry {registry_address} is governed by {governed_by}, not the trusted consortium")
    return DatasetHistory(registry.events())


def _check_lineage(datasets: DatasetHistory, purpose: str, purpose_id: str, e: UpdateCommitted, fail: Any) -> None:
    at = (e.block_number, e.log_index)
    owner = datasets.owner(e.dataset_id, at)
    if owner != e.member:
        whose = "was not registered" if owner is None else f"was registered by {owner}"
        fail(
            f"update names dataset {e.dataset_id}, which {whose} by the committer when it committed",
            round_id=e.round_id,
            member=e.member,
            h=e.update_hash,
        )
    elif not datasets.allowed(e.dataset_id, purpose_id, at):
        fail(
            f"dataset {e.dataset_id} did not allow the purpose {purpose!r} at block {e.block_number}",
            round_id=e.round_id,
            member=e.member,
            h=e.update_hash,
        )


def _check_spend(e: UpdateCommitted, composed: float, previous: int, budget: int, fail: Any) -> None:
    where = {"round_id": e.round_id, "member": e.member, "h": e.update_hash}
    if e.epsilon_micro < previous:
        fail(f"declared spend {e.epsilon_micro} micro-epsilon decreased from {previous}", **where)
    if budget and e.epsilon_micro > budget:
        fail(f"declared spend {e.epsilon_micro} micro-epsilon exceeds the budget {budget}", **where)
    needed = epsilon_to_micro(composed) if composed != float("inf") else None
    if needed is None or e.epsilon_micro < needed:
        fail(
            f"declared spend {e.epsilon_micro} micro-epsilon is below the {needed} its committed rounds compose to",
            **where,
        )


def _accepted_mask(
    commits: list[UpdateCommitted], round_scores: list[ScoresSubmitted], threshold: int, min_approvals: int
) -> int:
    """The accepted set the round's scores give, by the rule the contract and the round engine apply."""
    scores = [[v for v in (s.score_for(i) for s in round_scores) if v is not None] for i in range(len(commits))]
    return accepted_mask(scores, threshold, min_approvals)


def _round_start_model(store: BlobStore, event: RoundFinalized, global_hash: str | None, fail: Any) -> ModelBlob | None:
    """The global model a finalized round started from, or None after reporting why it cannot be had."""
    if global_hash is None:
        fail("finalized without a RoundOpened event", round_id=event.round_id)
        return None
    try:
        return decode_model(store.get(global_hash.removeprefix("0x")))
    except (StoreError, FedLedgerError) as exc:
        fail(f"model blob unavailable or invalid: {exc}", round_id=event.round_id, h=global_hash)
        return None


def _update_info(round_id: int, c: UpdateCommitted) -> UpdateInfo:
    return UpdateInfo(
        round_id, c.index, c.member, c.update_hash, c.num_examples, c.block_number, c.dataset_id, c.epsilon_micro
    )


def _check_finalized(
    store: BlobStore,
    config: TaskConfig,
    task: TrainingTaskClient,
    event: RoundFinalized,
    global_hash: str | None,
    commits: list[UpdateCommitted],
    fail: Any,
    refuse: Any,
) -> None:
    r = event.round_id
    global_blob = _round_start_model(store, event, global_hash, fail)
    if global_blob is None:
        return
    try:
        decode_model(store.get(event.model_hash.removeprefix("0x")))
    except (StoreError, FedLedgerError) as exc:
        fail(f"model blob unavailable or invalid: {exc}", round_id=r, h=event.model_hash)
        return
    info = task.round(r)
    updates = [_update_info(r, c) for c in commits]
    try:
        previous = previous_global_params(task, store, r)
        result = aggregate_round(
            store,
            config,
            global_blob.params,
            global_blob.spec,
            updates,
            info.accepted,
            round_id=r,
            previous_params=previous,
            rows=registered_rows(task, updates),
            optimizer_state=global_blob.optimizer_state,
        )
    except FedLedgerError as exc:
        fail(f"cannot recompute the aggregate: {exc}", round_id=r, h=event.model_hash)
        return
    for index, reason in sorted(result.excluded.items()):
        u = updates[index]
        refuse(f"accepted update left out of the aggregate: {reason}", round_id=r, member=u.member, h=u.update_hash)
    if result.model_hash != event.model_hash:
        fail(
            f"finalized model is not the aggregate of the accepted updates (recomputed {result.model_hash})",
            round_id=r,
            h=event.model_hash,
        )


_MESSAGE_KINDS = {KeysAdvertised: "key advert", SharesPosted: "share bundle", SharesRevealed: "share reveal"}
_MESSAGE_PARSERS: dict[type[LedgerEvent], Callable[[bytes], object]] = {
    KeysAdvertised: KeyAdvert.from_bytes,
    SharesPosted: ShareBundle.from_bytes,
    SharesRevealed: ShareReveal.from_bytes,
}


def _check_secure_message(
    store: BlobStore,
    roles: RoleHistory,
    event: KeysAdvertised | SharesPosted | SharesRevealed,
    at: tuple[int, int],
    fail: Any,
    refuse: Any,
) -> None:
    kind = _MESSAGE_KINDS[type(event)]
    blob_hash = (
        event.advert_hash
        if isinstance(event, KeysAdvertised)
        else event.bundle_hash
        if isinstance(event, SharesPosted)
        else event.reveal_hash
    )
    if not roles.had_role(event.member, Role.TRAINER, at):
        fail(f"{kind} poster was not an active trainer", round_id=event.round_id, member=event.member, h=blob_hash)
    where = {"round_id": event.round_id, "member": event.member}
    data = _read_committed(store, kind, blob_hash, where, fail, refuse)
    if data is None:
        return
    try:
        _MESSAGE_PARSERS[type(event)](data)
    except BadInput as exc:
        refuse(f"{kind} blob is malformed: {exc}", h=blob_hash, **where)


def _check_secure_finalized(
    store: BlobStore,
    config: TaskConfig,
    task: TrainingTaskClient,
    event: RoundFinalized,
    global_hash: str | None,
    commits: list[UpdateCommitted],
    fail: Any,
) -> None:
    """Re-derive a secure round's model from its published messages alone, as an aggregator does."""
    r = event.round_id
    global_blob = _round_start_model(store, event, global_hash, fail)
    if global_blob is None:
        return
    for c in commits:
        try:
            store.get(c.update_hash.removeprefix("0x"))
        except BlobTooLarge:
            continue  # named in the UpdateCommitted pass; the aggregators dropped it too, and so does load_round
        except StoreError:
            # Named in the UpdateCommitted pass; the recomputation below would only echo it.
            return
    context = round_context(task, r)
    if context is None:
        fail("secure round has fewer than two members with key-agreement keys", round_id=r)
        return
    round_config, _ = context
    messages = task.secure_messages(r)
    updates = [_update_info(r, c) for c in commits]
    spec = {name: tuple(arr.shape) for name, arr in global_blob.params.items()}
    try:
        rows = registered_rows(task, updates)
        state = load_round(store, config, round_config, messages, spec=spec, updates=updates, reveals=True, rows=rows)
        result = secure_aggregate_round(
            store,
            config,
            global_blob.params,
            global_blob.spec,
            state,
            round_id=r,
            optimizer_state=global_blob.optimizer_state,
        )
        # And independently of the aggregator object: the published messages alone give the same sum.
        verify_aggregate(
            round_config,
            state.adverts.values(),
            state.inputs,
            state.aggregator.unmask_request(),
            state.reveals,
            result.result,
        )
    except FedLedgerError as exc:
        fail(f"cannot unmask the aggregate from the published messages: {exc}", round_id=r, h=event.model_hash)
        return
    if result.model_hash != event.model_hash:
        fail(
            "finalized model is not what the published masked inputs and reveals unmask to "
            f"(recomputed {result.model_hash}; dropped: {result.dropped or 'none'})",
            round_id=r,
            h=event.model_hash,
        )
