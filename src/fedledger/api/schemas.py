"""The API's response models: every field the API serves is declared here, so nothing else leaves the server.

Only ledger facts are served: addresses, organization names, roles, hashes, counts, metrics and amounts. No row of
anyone's data, and no personal value: the ledger holds none (``docs/architecture.md``), and the metrics members post
are counts over their holdout data.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = [
    "AuditModel",
    "ConsortiumModel",
    "DatasetModel",
    "DatasetsModel",
    "ErasureModel",
    "HeadModel",
    "IdentityModel",
    "LineageModel",
    "LineageUpdateModel",
    "LoginRequest",
    "LoginResponse",
    "MemberModel",
    "MetricsModel",
    "NonceResponse",
    "PayoutAuditModel",
    "PrivacyModel",
    "ProposalModel",
    "RewardsModel",
    "RoundMetricsModel",
    "RoundModel",
    "TaskHeadModel",
    "TaskMetricsModel",
    "TaskModel",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


# -- sign-in ------------------------------------------------------------------------------------------------------


class NonceResponse(_Model):
    nonce: str
    domain: str
    uri: str
    chain_id: int
    statement: str
    issued_at: str
    expiration_time: str


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str
    signature: str


class IdentityModel(_Model):
    kind: str  # "member" | "auditor"
    address: str | None
    org: str | None
    expires_at: float | None


class LoginResponse(IdentityModel):
    token: str


# -- chain head and consortium ------------------------------------------------------------------------------------


class TaskHeadModel(_Model):
    name: str
    address: str
    current_round: int
    phase: str
    rounds_finalized: int


class HeadModel(_Model):
    chain_id: int
    block: int
    timestamp: int
    tasks: list[TaskHeadModel]


class MemberModel(_Model):
    address: str
    org: str
    roles: list[str]
    status: str
    admitted_at_block: int
    revoked_at_block: int


class ProposalModel(_Model):
    proposal_id: int
    kind: str
    target: str
    roles: list[str]
    threshold: int
    approvals: int
    proposer: str


class ConsortiumModel(_Model):
    address: str
    threshold: int
    admin_count: int
    members: list[MemberModel]
    pending_proposals: list[ProposalModel]


# -- tasks and rounds ---------------------------------------------------------------------------------------------


class TaskModel(_Model):
    name: str
    address: str
    kind: str  # "validated" | "secure"
    rounds: int
    current_round: int
    rounds_finalized: int
    rounds_aborted: int
    aborted: list[int]
    latest_model: str
    done: bool
    chain_time: int
    phase: str
    committed: list[str]
    missing: list[str]
    purpose: str | None
    aggregation: str
    scoring: str
    acceptance_threshold: int
    min_commitments: int
    dp: bool
    privacy_budget_epsilon: float | None
    incentives: bool
    evaluation_board: str | None
    data_registry: str | None


class CommitmentModel(_Model):
    index: int
    member: str
    org: str
    update_hash: str
    num_examples: int
    dataset_id: int
    epsilon: float
    block: int


class ScoreModel(_Model):
    validator: str
    org: str
    index: int
    score: int


class VerdictModel(_Model):
    index: int
    member: str
    org: str
    accepted: bool
    reason: str | None
    deciding_score: int | None


class AggregateProposalModel(_Model):
    aggregator: str
    org: str
    model_hash: str
    accepted: list[int]
    votes: int
    block: int


class RoundModel(_Model):
    round: int
    phase: str
    screened: bool  # validated rounds score each update; secure rounds cannot
    global_model: str
    model_hash: str | None
    commit_deadline: int
    validate_deadline: int
    aggregate_deadline: int
    decided: bool  # the accepted set is fixed (validation or unmasking closed)
    commitments: list[CommitmentModel]
    scores: list[ScoreModel]
    verdicts: list[VerdictModel]
    proposals: list[AggregateProposalModel]
    abort_reason: str | None


# -- metrics --------------------------------------------------------------------------------------------------------


class MetricsModel(_Model):
    n: int
    accuracy: float
    f1: float
    log_loss: float
    roc_auc: float | None
    pr_auc: float | None
    members: int


class MemberMetricsModel(MetricsModel):
    member: str
    org: str


class InvalidReportModel(_Model):
    member: str
    org: str
    reason: str


class RoundMetricsModel(_Model):
    round: int
    model_hash: str
    pooled: MetricsModel | None
    members: list[MemberMetricsModel]
    invalid: list[InvalidReportModel]


class TaskMetricsModel(_Model):
    task: str
    bulletin: str | None
    rounds: list[RoundMetricsModel]


# -- privacy, rewards, lineage, datasets, audit ---------------------------------------------------------------------


class MemberSpendModel(_Model):
    member: str
    org: str
    rounds: list[int]
    epsilon: float
    remaining: float | None
    over_budget: bool


class PrivacyModel(_Model):
    dp: bool
    budget_epsilon: float | None
    delta: float | None
    task_epsilon: float | None
    members: list[MemberSpendModel]


class ContributionModel(_Model):
    round: int
    index: int
    contribution: int
    amount: int


class MemberRewardModel(_Model):
    address: str
    org: str
    contributions: list[ContributionModel]
    earned: int
    claimed: int
    unclaimed: int
    stake: int
    slashed: int


class RewardsModel(_Model):
    incentives: bool
    reason: str | None  # why there are none
    contract: str | None  # the task's Incentives contract
    block: int | None
    currency: str | None
    reward_per_round: int | None
    pool: dict[str, int] | None
    rounds: dict[str, list[int]] | None
    members: list[MemberRewardModel]


class LineageDatasetModel(_Model):
    dataset_id: int
    commitment: str
    rows: int
    allowed: bool


class LineageUpdateModel(_Model):
    index: int
    member: str
    org: str
    update_hash: str
    num_examples: int
    block_number: int
    compliant: bool
    datasets: list[LineageDatasetModel]


class LineageModel(_Model):
    round: int
    model_hash: str
    purpose: str | None
    compliant: bool | None  # None: the task declares no purpose, so no dataset is checked against one
    updates: list[LineageUpdateModel]


class ErasureModel(_Model):
    dataset_id: int
    subject_hash: str  # keyed hash: not the subject's id, and unlinkable without the owner's key
    erasures: int
    block: int
    tx_hash: str


class DatasetModel(_Model):
    registry: str
    dataset_id: int
    owner: str
    org: str
    status: str
    commitment: str
    rows: int
    purposes: list[str]  # the purpose's name where a task of this workspace declares it, else its 0x id
    erasures: int
    registered_at: int


class DatasetsModel(_Model):
    datasets: list[DatasetModel]
    erasures: list[ErasureModel]


class PayoutAuditModel(_Model):
    ok: bool
    rounds_settled: int
    credits_checked: int
    claims_checked: int
    slashes_checked: int
    unsettled_rounds: list[int]
    discrepancies: list[str]


class AuditModel(_Model):
    ok: bool
    block: int
    rounds_checked: int
    updates_checked: int
    models_checked: int
    first_discrepancy: str | None
    discrepancies: list[str]
    refused: list[str]
    payouts: PayoutAuditModel | None
