"""Chain layer: Vyper contracts, their compilation, and typed clients over the
embedded chain or any Ethereum JSON-RPC node."""

from fedledger.chain.batches import BatchStatus, CommitmentBatchesClient
from fedledger.chain.bulletin import METRICS_TOPIC, BulletinClient, topic_id
from fedledger.chain.compiler import CONTRACT_NAMES, CompiledContract, compile_contract, contract_source
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.consortium import ConsortiumClient, Member, MemberStatus, Proposal, ProposalKind, Role
from fedledger.chain.encoding import ZERO_HASH, as_address, as_bytes32
from fedledger.chain.events import EVENT_TYPES, LedgerEvent
from fedledger.chain.incentives import IncentiveParams, IncentiveRecords, IncentivesClient, IncentiveTotals
from fedledger.chain.registry import DataRegistryClient, DatasetInfo, DatasetStatus, purpose_id
from fedledger.chain.task import (
    SCORE_SCALE,
    Phase,
    RoundInfo,
    TaskKind,
    TaskParams,
    TrainingTaskClient,
    UpdateInfo,
    indices_of,
    mask_of,
)

__all__ = [
    "CONTRACT_NAMES",
    "EVENT_TYPES",
    "METRICS_TOPIC",
    "SCORE_SCALE",
    "ZERO_HASH",
    "BatchStatus",
    "BulletinClient",
    "Chain",
    "CommitmentBatchesClient",
    "CompiledContract",
    "ConsortiumClient",
    "DataRegistryClient",
    "DatasetInfo",
    "DatasetStatus",
    "IncentiveParams",
    "IncentiveRecords",
    "IncentiveTotals",
    "IncentivesClient",
    "LedgerEvent",
    "Member",
    "MemberStatus",
    "Phase",
    "Proposal",
    "ProposalKind",
    "Role",
    "RoundInfo",
    "TaskKind",
    "TaskParams",
    "TrainingTaskClient",
    "TxResult",
    "UpdateInfo",
    "as_address",
    "as_bytes32",
    "compile_contract",
    "contract_source",
    "indices_of",
    "mask_of",
    "purpose_id",
    "topic_id",
]
