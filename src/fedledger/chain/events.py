"""Typed records of the contracts' events, decoded from chain logs.

Every record carries where it happened (contract, block, transaction, log index)
and the event's own fields; bytes32 values are 0x-prefixed hex strings and
addresses are checksummed, so a record is JSON-ready through :meth:`to_json`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, cast

from eth_abi.codec import ABICodec
from eth_abi.grammar import parse as parse_abi_type
from eth_typing import ABIEvent
from eth_utils import event_abi_to_log_topic, to_bytes, to_checksum_address
from eth_utils.abi import collapse_if_tuple

from fedledger.chain.batch_events import BATCH_EVENTS
from fedledger.chain.compiler import compile_contract
from fedledger.chain.event_record import LedgerEvent
from fedledger.chain.governance_events import GOVERNANCE_EVENTS
from fedledger.chain.incentive_events import INCENTIVE_EVENTS
from fedledger.chain.masked_events import MASKED_EVENTS
from fedledger.exceptions import EventDecodeError

__all__ = [
    "AggregateProposed",
    "CommitsClosed",
    "DatasetRegistered",
    "DatasetRevoked",
    "DatasetUpdated",
    "EVENT_TYPES",
    "KeysAdvertised",
    "KeysClosed",
    "LedgerEvent",
    "MemberAdmitted",
    "MemberRevoked",
    "MetadataUpdated",
    "Posted",
    "ProposalApproved",
    "ProposalCancelled",
    "ProposalCreated",
    "PurposesChanged",
    "RolesChanged",
    "RoundAborted",
    "RoundFinalized",
    "ReputationCleared",
    "RoundOpened",
    "ScoresSubmitted",
    "SharesClosed",
    "SharesPosted",
    "SharesRevealed",
    "SubjectErased",
    "TrainersListed",
    "ThresholdChanged",
    "TrainerDistrusted",
    "UnmaskClosed",
    "ValidatorDistrusted",
    "UpdateCommitted",
    "UpdateFlagged",
    "ValidationClosed",
    "decode_logs",
]


# -- Consortium ---------------------------------------------------------------


@dataclass(frozen=True)
class MemberAdmitted(LedgerEvent):
    member: str
    org: str
    roles: int
    proposal_id: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class RolesChanged(LedgerEvent):
    member: str
    old_roles: int
    new_roles: int
    proposal_id: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class MemberRevoked(LedgerEvent):
    member: str
    proposal_id: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class ThresholdChanged(LedgerEvent):
    old_threshold: int
    new_threshold: int
    proposal_id: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class MetadataUpdated(LedgerEvent):
    member: str
    cert_fingerprint: str
    kx_public_key: str
    store_uri: str
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class ProposalCreated(LedgerEvent):
    proposal_id: int
    kind: int
    target: str
    proposer: str
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class ProposalApproved(LedgerEvent):
    proposal_id: int
    admin: str
    approvals: int
    source: ClassVar[str] = "Consortium"


@dataclass(frozen=True)
class ProposalCancelled(LedgerEvent):
    proposal_id: int
    admin: str
    source: ClassVar[str] = "Consortium"


# -- TrainingTask -------------------------------------------------------------


@dataclass(frozen=True)
class RoundOpened(LedgerEvent):
    round_id: int
    global_model: str
    commit_deadline: int
    opener: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class UpdateCommitted(LedgerEvent):
    round_id: int
    member: str
    update_hash: str
    num_examples: int
    index: int
    dataset_id: int  # DataRegistry dataset the update was trained on (0: none declared)
    epsilon_micro: int  # the member's cumulative privacy spend after this update
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class CommitsClosed(LedgerEvent):
    round_id: int
    num_updates: int
    validate_deadline: int
    committee_seed: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ScoresSubmitted(LedgerEvent):
    round_id: int
    validator: str
    indices: tuple[int, ...]  # the updates scored, increasing; every other update: abstention
    scores: tuple[int, ...]
    source: ClassVar[str] = "TrainingTask"

    def score_for(self, index: int) -> int | None:
        """This validator's score for update ``index``; None when it abstained."""
        for i, score in zip(self.indices, self.scores, strict=True):
            if i == index:
                return score
        return None


@dataclass(frozen=True)
class UpdateFlagged(LedgerEvent):
    round_id: int
    index: int
    reporter: str
    reason: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ValidationClosed(LedgerEvent):
    round_id: int
    accepted_mask: int
    num_accepted: int
    aggregate_deadline: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class AggregateProposed(LedgerEvent):
    round_id: int
    aggregator: str
    model_hash: str
    accepted_mask: int
    votes: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class RoundFinalized(LedgerEvent):
    round_id: int
    model_hash: str
    num_accepted: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class RoundAborted(LedgerEvent):
    round_id: int
    reason: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ValidatorDistrusted(LedgerEvent):
    """A validator left out of round ``round_id``'s validators by its reputation record."""

    round_id: int
    validator: str
    scored: int
    disagreed: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class TrainerDistrusted(LedgerEvent):
    """A trainer left out of round ``round_id`` by its reputation record (logged when the round opens; its
    commitments are refused in that round)."""

    round_id: int
    trainer: str
    scored: int
    rejected: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class ReputationCleared(LedgerEvent):
    validator: str
    admin: str
    scored: int
    disagreed: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class TrainersListed(LedgerEvent):
    round_id: int
    members: tuple[str, ...]
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class KeysAdvertised(LedgerEvent):
    round_id: int
    member: str
    advert_hash: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class KeysClosed(LedgerEvent):
    round_id: int
    num_adverts: int
    shares_deadline: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class SharesPosted(LedgerEvent):
    round_id: int
    member: str
    bundle_hash: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class SharesClosed(LedgerEvent):
    round_id: int
    num_bundles: int
    commit_deadline: int
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class SharesRevealed(LedgerEvent):
    round_id: int
    member: str
    reveal_hash: str
    source: ClassVar[str] = "TrainingTask"


@dataclass(frozen=True)
class UnmaskClosed(LedgerEvent):
    round_id: int
    num_reveals: int
    accepted_mask: int
    aggregate_deadline: int
    source: ClassVar[str] = "TrainingTask"


# -- DataRegistry -------------------------------------------------------------


@dataclass(frozen=True)
class DatasetRegistered(LedgerEvent):
    dataset_id: int
    owner: str
    commitment: str
    schema_hash: str
    classification_hash: str
    policy_hash: str
    purposes: tuple[str, ...]
    rows: int
    source: ClassVar[str] = "DataRegistry"


@dataclass(frozen=True)
class DatasetUpdated(LedgerEvent):
    dataset_id: int
    old_commitment: str
    commitment: str
    rows: int
    source: ClassVar[str] = "DataRegistry"


@dataclass(frozen=True)
class PurposesChanged(LedgerEvent):
    dataset_id: int
    old_purposes: tuple[str, ...]
    purposes: tuple[str, ...]
    source: ClassVar[str] = "DataRegistry"


@dataclass(frozen=True)
class SubjectErased(LedgerEvent):
    dataset_id: int
    subject_hash: str
    erasures: int
    source: ClassVar[str] = "DataRegistry"


@dataclass(frozen=True)
class DatasetRevoked(LedgerEvent):
    dataset_id: int
    owner: str
    source: ClassVar[str] = "DataRegistry"


# -- Bulletin -----------------------------------------------------------------


@dataclass(frozen=True)
class Posted(LedgerEvent):
    poster: str
    task: str
    round_id: int
    topic: str
    blob_hash: str
    source: ClassVar[str] = "Bulletin"


EVENT_TYPES: dict[str, type[LedgerEvent]] = {
    cls.__name__: cls
    for cls in (
        MemberAdmitted,
        RolesChanged,
        MemberRevoked,
        ThresholdChanged,
        MetadataUpdated,
        ProposalCreated,
        ProposalApproved,
        ProposalCancelled,
        RoundOpened,
        UpdateCommitted,
        CommitsClosed,
        ScoresSubmitted,
        UpdateFlagged,
        ValidationClosed,
        AggregateProposed,
        RoundFinalized,
        RoundAborted,
        ValidatorDistrusted,
        TrainerDistrusted,
        ReputationCleared,
        TrainersListed,
        KeysAdvertised,
        KeysClosed,
        SharesPosted,
        SharesClosed,
        SharesRevealed,
        UnmaskClosed,
        DatasetRegistered,
        DatasetUpdated,
        PurposesChanged,
        SubjectErased,
        DatasetRevoked,
        Posted,
        *INCENTIVE_EVENTS,
        *GOVERNANCE_EVENTS,
        *BATCH_EVENTS,
        *MASKED_EVENTS,
    )
}


def _normalize(value: Any, abi_type: str) -> Any:
    # Arrays first: "bytes32[]" starts with "bytes" too.
    if abi_type.endswith("[]"):
        return tuple(_normalize(v, abi_type[:-2]) for v in value)
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.startswith("bytes"):
        return "0x" + bytes(value).hex()
    return value


def _topic_table(contract_name: str) -> dict[bytes, ABIEvent]:
    return {
        event_abi_to_log_topic(entry): entry
        for entry in cast("list[ABIEvent]", compile_contract(contract_name).abi)
        if entry["type"] == "event"
    }


def _as_bytes(value: Any) -> bytes:
    """Log data or a topic as bytes: web3 gives HexBytes, a raw JSON-RPC answer 0x-hex."""
    return to_bytes(hexstr=value) if isinstance(value, str) else bytes(value)


def _decode_args(codec: ABICodec, abi: ABIEvent, log: Any) -> dict[str, Any]:
    """An event's arguments by name: indexed ones from the log's topics, the rest from its data.

    Topic 0 is the event's signature (the contracts declare no anonymous events). An indexed argument of a dynamic
    type would hold only its hash; the contracts index only value types, and an event that did not is refused.
    """
    inputs = abi.get("inputs", [])
    indexed = [item for item in inputs if item.get("indexed")]
    plain = [item for item in inputs if not item.get("indexed")]
    topics = [_as_bytes(topic) for topic in log["topics"][1:]]
    if len(topics) != len(indexed):
        raise EventDecodeError(f"event {abi['name']}: {len(topics)} indexed topics, its ABI has {len(indexed)}")
    args: dict[str, Any] = {}
    for item, topic in zip(indexed, topics, strict=True):
        if parse_abi_type(collapse_if_tuple(item)).is_dynamic:
            raise EventDecodeError(f"event {abi['name']}: indexed {item['type']} {item['name']} holds only a hash")
        args[item["name"]] = codec.decode([item["type"]], topic)[0]
    values = codec.decode([collapse_if_tuple(item) for item in plain], _as_bytes(log["data"]))
    args.update({item["name"]: value for item, value in zip(plain, values, strict=True)})
    if len(args) != len(inputs):
        raise EventDecodeError(f"event {abi['name']}: its ABI repeats an argument name")
    return args


def decode_logs(contract_name: str, logs: list[Any], codec: ABICodec) -> list[LedgerEvent]:
    """Typed records for the raw ``logs`` of one contract (unknown topics skipped).

    ``codec`` is web3's ABI codec (``w3.codec``). A log whose topic names an event of the contract but whose fields
    do not match it raises :class:`~fedledger.exceptions.EventDecodeError`.
    """
    table = _topic_table(contract_name)
    records: list[LedgerEvent] = []
    for log in logs:
        if not log["topics"]:
            continue
        abi = table.get(_as_bytes(log["topics"][0]))
        if abi is None:
            continue
        cls = EVENT_TYPES[abi["name"]]
        types = {item["name"]: item["type"] for item in abi.get("inputs", [])}
        args = {name: _normalize(value, types[name]) for name, value in _decode_args(codec, abi, log).items()}
        expected = {f.name for f in fields(cls)} - {"contract", "block_number", "tx_hash", "log_index"}
        if expected != set(args):
            raise EventDecodeError(f"event {abi['name']}: the record's fields differ from the contract's ABI")
        records.append(
            cls(
                contract=to_checksum_address(log["address"]),
                block_number=int(log["blockNumber"]),
                tx_hash="0x" + _as_bytes(log["transactionHash"]).hex(),
                log_index=int(log["logIndex"]),
                **args,
            )
        )
    return records
