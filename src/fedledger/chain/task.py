"""Typed client for the TrainingTask contract: rounds, commitments, scores, proposals.

A commitment carries its provenance: the DataRegistry dataset the update was trained on and
the member's cumulative privacy spend in micro-epsilon (see :mod:`fedledger.privacy.accounting`);
the contract checks them when the task was created with a registry and a budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.types import BlockIdentifier

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.consortium import ConsortiumClient
from fedledger.chain.encoding import ZERO_HASH, as_address, as_bytes32, hex32
from fedledger.chain.events import RoundFinalized, decode_logs
from fedledger.chain.reputation import trainer_distrusted
from fedledger.exceptions import BadInput, InvalidState

__all__ = [
    "SCORE_SCALE",
    "ZERO_ADDRESS",
    "MemberView",
    "Phase",
    "RoundInfo",
    "SecureMessages",
    "SecureRoundInfo",
    "SecureView",
    "TaskParams",
    "TrainingTaskClient",
    "UpdateInfo",
    "TrainerStanding",
    "ValidatorStanding",
    "contract_median",
    "mask_of",
    "indices_of",
]

SCORE_SCALE = 10_000
ZERO_ADDRESS = "0x" + "00" * 20


class Phase(IntEnum):
    NONE = 0
    OPEN = 1
    VALIDATE = 2
    AGGREGATE = 3
    FINALIZED = 4
    ABORTED = 5
    # Secure-aggregation rounds only: KEYS -> SHARES -> OPEN -> UNMASK -> AGGREGATE.
    KEYS = 6
    SHARES = 7
    UNMASK = 8


def mask_of(indices: Sequence[int]) -> int:
    """The accepted-set bitmask (bit i = update i)."""
    mask = 0
    for i in indices:
        mask |= 1 << int(i)
    return mask


def contract_median(values: Sequence[int]) -> int:
    """The TrainingTask contract's median of scores: the middle value, or the floor of the two
    middle values' mean (for auditors and reports that re-derive acceptance off chain)."""
    if not values:
        raise ValueError("median of no scores")
    xs, n = sorted(values), len(values)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) // 2


def indices_of(mask: int) -> list[int]:
    return [i for i in range(mask.bit_length()) if mask >> i & 1]


@dataclass(frozen=True)
class TaskParams:
    """What a task is created with (all but the consortium address)."""

    config_hash: str
    initial_model: str
    min_commitments: int = 2
    commit_duration: int = 600
    validate_duration: int = 600
    aggregate_duration: int = 600
    acceptance_threshold: int = 5_000
    proposal_quorum: int = 1
    max_rounds: int = 0
    committee_size: int = 0  # validators per update; 0: every validator scores every update
    data_registry: str = ZERO_ADDRESS  # DataRegistry checking each commitment's dataset; zero: no checks
    purpose: str = ZERO_HASH  # keccak256 of the purpose name (fedledger.chain.registry.purpose_id), 0x-hex
    privacy_budget: int = 0  # micro-epsilon a member may declare in total; 0: no DP
    secagg_threshold: int = 0  # > 0: secure-aggregation rounds with at least this threshold; 0: plain rounds
    # Validator reputation (fedledger.chain.reputation): basis points of scores against the outcome above which a
    # validator is left out of later rounds, after at least reputation_warmup scores; 0: no reputation.
    max_disagreement: int = 0
    reputation_warmup: int = 0
    # Trainer reputation: basis points of a trainer's scored updates rejected above which later rounds leave it
    # out, after at least reputation_warmup scored updates (0: off); likewise below a mean committee median of
    # min_mean_score (0: off).
    max_rejection: int = 0
    min_mean_score: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def constructor_args(self, consortium: str) -> tuple[Any, ...]:
        """The TrainingTask constructor's arguments, in order."""
        return (
            as_address(consortium, what="consortium address"),
            as_bytes32(self.config_hash, what="config hash"),
            as_bytes32(self.initial_model, what="initial model hash"),
            self.min_commitments,
            self.commit_duration,
            self.validate_duration,
            self.aggregate_duration,
            self.acceptance_threshold,
            self.proposal_quorum,
            self.max_rounds,
            self.committee_size,
            as_address(self.data_registry, what="data registry address"),
            as_bytes32(self.purpose, what="purpose id"),
            _uint(self.privacy_budget, "privacy budget"),
            _uint(self.secagg_threshold, "secagg threshold"),
            _uint(self.max_disagreement, "max disagreement"),
            _uint(self.reputation_warmup, "reputation warmup"),
            _uint(self.max_rejection, "max rejection"),
            _uint(self.min_mean_score, "min mean score"),
        )


@dataclass(frozen=True)
class ValidatorStanding:
    """A validator's reputation record in a task: scores counted, how many went against the outcome, and
    whether the task now leaves it out of its rounds (:mod:`fedledger.chain.reputation`)."""

    scored: int
    disagreed: int
    distrusted: bool


@dataclass(frozen=True)
class TrainerStanding:
    """A trainer's record in a task: its updates that were scored, how many were rejected, the sum of their
    committee medians, and whether the task now leaves it out of its rounds (:mod:`fedledger.chain.reputation`)."""

    scored: int
    rejected: int
    distrusted: bool
    score_sum: int = 0

    @property
    def mean_score(self) -> float | None:
        """The mean committee median of its scored updates (None before the first)."""
        return self.score_sum / self.scored if self.scored else None


@dataclass(frozen=True)
class RoundInfo:
    round_id: int
    phase: Phase
    global_model: str
    commit_deadline: int
    validate_deadline: int
    aggregate_deadline: int
    expected_trainers: int
    expected_validators: int
    num_updates: int
    num_scored: int
    accepted_mask: int
    num_accepted: int
    model_hash: str
    committee_seed: str  # 0x-prefixed; zero until commits close (and without committees)

    @classmethod
    def from_raw(cls, round_id: int, raw: Sequence[Any]) -> RoundInfo:
        """From the contract's ``Round`` struct, as web3 returns it."""
        return cls(
            round_id=int(round_id),
            phase=Phase(raw[0]),
            global_model=hex32(raw[1]),
            commit_deadline=raw[2],
            validate_deadline=raw[3],
            aggregate_deadline=raw[4],
            expected_trainers=raw[5],
            expected_validators=raw[6],
            num_updates=raw[7],
            num_scored=raw[8],
            accepted_mask=raw[9],
            num_accepted=raw[10],
            model_hash=hex32(raw[11]),
            committee_seed=hex32(raw[12]),
        )

    @property
    def accepted(self) -> list[int]:
        return indices_of(self.accepted_mask)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["phase"] = self.phase.name.lower()
        data["accepted"] = self.accepted
        return data


@dataclass(frozen=True)
class MemberView:
    """One member's view of the task at a block: what its node polls each step."""

    current_round: int
    round: RoundInfo | None  # None before the first round opens
    roles: int
    committed: bool
    scored: bool
    proposed: bool
    timestamp: int  # the block time it was read at


@dataclass(frozen=True)
class SecureRoundInfo:
    """A secure round's threshold, listed trainers and how many did each step."""

    threshold: int
    num_members: int
    opened_block: int
    num_adverts: int
    num_bundles: int
    num_reveals: int

    @classmethod
    def from_raw(cls, raw: Sequence[Any]) -> SecureRoundInfo:
        return cls(*(int(v) for v in raw))


@dataclass(frozen=True)
class SecureView:
    """A member's view of the current round plus its part in the secure-aggregation steps."""

    view: MemberView
    secure: SecureRoundInfo
    listed: bool
    advertised: bool
    shared: bool
    revealed: bool


@dataclass(frozen=True)
class SecureMessages:
    """One listed trainer's message hashes in a secure round (None: not posted)."""

    member: str
    advert_hash: str | None
    bundle_hash: str | None
    reveal_hash: str | None


def _hash_or_none(raw: bytes) -> str | None:
    value = hex32(raw)
    return None if int(value, 16) == 0 else value


@dataclass(frozen=True)
class UpdateInfo:
    round_id: int
    index: int
    member: str
    update_hash: str
    num_examples: int
    block_number: int
    dataset_id: int = 0  # DataRegistry dataset the update was trained on (0: none declared)
    epsilon_micro: int = 0  # the member's cumulative privacy spend declared with it

    @classmethod
    def from_raw(cls, round_id: int, index: int, raw: Sequence[Any]) -> UpdateInfo:
        """From the contract's ``Update`` struct, as web3 returns it."""
        return cls(int(round_id), int(index), raw[0], hex32(raw[1]), raw[2], raw[3], raw[4], raw[5])


class TrainingTaskClient(ContractClient):
    """The TrainingTask contract at ``address``, acting as ``account`` for writes."""

    NAME = "TrainingTask"
    _params: TaskParams | None = None

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str, params: TaskParams) -> TrainingTaskClient:
        """Create a task (``account`` must be a consortium admin)."""
        address, _ = chain.deploy(account, cls.NAME, *params.constructor_args(consortium))
        return cls(chain, address, account)

    # -- round protocol ------------------------------------------------------------

    def open_round(self) -> int:
        """Open the next round; returns its id."""
        self._send(self.contract.functions.open_round())
        return self.current_round

    def commit_update(
        self,
        round_id: int,
        update_hash: str | bytes,
        num_examples: int,
        *,
        dataset_id: int = 0,
        epsilon_micro: int = 0,
    ) -> int:
        """Commit this member's update hash, with the dataset it was trained on and its cumulative
        privacy spend in micro-epsilon; returns its index in the round."""
        self._send(
            self.contract.functions.commit_update(
                int(round_id),
                as_bytes32(update_hash, what="update hash"),
                int(num_examples),
                _uint(dataset_id, "dataset id"),
                _uint(epsilon_micro, "declared micro-epsilon"),
            )
        )
        assert self.account is not None
        return self.commit_index(round_id, self.account.address)

    def close_commits(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_commits(int(round_id)))
        return self.round(round_id).phase

    def submit_scores(self, round_id: int, scores: Sequence[int | None]) -> TxResult:
        """Scores by update index (commit order), 0..10000; ``None`` abstains (own update,
        updates outside this validator's committee). Only the scored indices go on chain."""
        indices = [i for i, s in enumerate(scores) if s is not None]
        values = [int(scores[i]) for i in indices]  # type: ignore[arg-type]
        return self._send(self.contract.functions.submit_scores(int(round_id), indices, values))

    def flag_update(self, round_id: int, index: int, reason: str) -> TxResult:
        # Reasons are public on the ledger: keep them technical, never personal data.
        # The contract takes String[128], i.e. at most 128 UTF-8 bytes (not characters).
        reason = reason.encode("utf-8")[:128].decode("utf-8", errors="ignore")
        return self._send(self.contract.functions.flag_update(int(round_id), int(index), reason))

    def close_validation(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_validation(int(round_id)))
        return self.round(round_id).phase

    def propose_aggregate(self, round_id: int, model_hash: str | bytes, accepted_mask: int) -> bool:
        """Propose the next model; True when this proposal finalized the round (its own transaction emitted the
        round's RoundFinalized: a read of the phase afterwards would also see a later proposal's finalization)."""
        result = self._send(
            self.contract.functions.propose_aggregate(
                int(round_id), as_bytes32(model_hash, what="model hash"), int(accepted_mask)
            )
        )
        logs = [log for log in result.receipt["logs"] if log["address"].lower() == self.address.lower()]
        events = decode_logs("TrainingTask", logs, self.chain.w3.codec)
        return any(isinstance(e, RoundFinalized) and e.round_id == round_id for e in events)

    def close_aggregation(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_aggregation(int(round_id)))
        return self.round(round_id).phase

    # -- secure-aggregation rounds ----------------------------------------------------

    def post_key_advert(self, round_id: int, advert_hash: str | bytes) -> TxResult:
        """KEYS: commit the hash of this trainer's key advert blob."""
        return self._send(
            self.contract.functions.post_key_advert(int(round_id), as_bytes32(advert_hash, what="advert hash"))
        )

    def close_keys(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_keys(int(round_id)))
        return self.round(round_id).phase

    def post_share_bundle(self, round_id: int, bundle_hash: str | bytes) -> TxResult:
        """SHARES: commit the hash of this trainer's encrypted share bundle blob."""
        return self._send(
            self.contract.functions.post_share_bundle(int(round_id), as_bytes32(bundle_hash, what="bundle hash"))
        )

    def close_shares(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_shares(int(round_id)))
        return self.round(round_id).phase

    def submit_reveal(self, round_id: int, reveal_hash: str | bytes) -> TxResult:
        """UNMASK: commit the hash of this committer's share reveal blob."""
        return self._send(
            self.contract.functions.submit_reveal(int(round_id), as_bytes32(reveal_hash, what="reveal hash"))
        )

    def close_unmask(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_unmask(int(round_id)))
        return self.round(round_id).phase

    def secure_round(self, round_id: int) -> SecureRoundInfo:
        return SecureRoundInfo.from_raw(self.chain.call(self.contract.functions.secure_rounds(int(round_id))))

    def secure_view(self, member: str) -> SecureView:
        """:meth:`member_view` plus ``member``'s secure-aggregation steps in the current round, in one call."""
        raw = self.chain.call(self.contract.functions.secure_view(as_address(member)))
        return SecureView(
            view=self._member_view_from(raw[0]),
            secure=SecureRoundInfo.from_raw(raw[1]),
            listed=bool(raw[2]),
            advertised=bool(raw[3]),
            shared=bool(raw[4]),
            revealed=bool(raw[5]),
        )

    def secure_messages(self, round_id: int) -> list[SecureMessages]:
        """The trainers listed for a secure round, in listing order, with their message hashes."""
        raw = self.chain.call(self.contract.functions.secure_messages(int(round_id)))
        return [SecureMessages(str(m[0]), _hash_or_none(m[1]), _hash_or_none(m[2]), _hash_or_none(m[3])) for m in raw]

    def secure_keys(self, round_id: int, *, block: BlockIdentifier = "latest") -> dict[str, str]:
        """The trainers listed for a secure round -> their registered key-agreement key at ``block``
        (listing order; the round uses the keys at its ``opened_block``)."""
        raw = self.chain.call(self.contract.functions.secure_keys(int(round_id)), block=block)
        return {str(m[0]): hex32(m[1]) for m in raw}

    # -- reads ---------------------------------------------------------------------

    @property
    def current_round(self) -> int:
        return int(self.chain.call(self.contract.functions.current_round()))

    @property
    def latest_model(self) -> str:
        return hex32(self.chain.call(self.contract.functions.latest_model()))

    def params(self) -> TaskParams:
        """The task's constructor parameters (read once per client: the contract never changes them)."""
        if self._params is None:
            self._params = self._read_params()
        return self._params

    def _read_params(self) -> TaskParams:
        f = self.contract.functions
        call = self.chain.call
        return TaskParams(
            config_hash=hex32(call(f.config_hash())),
            initial_model=hex32(call(f.initial_model())),
            min_commitments=call(f.min_commitments()),
            commit_duration=call(f.commit_duration()),
            validate_duration=call(f.validate_duration()),
            aggregate_duration=call(f.aggregate_duration()),
            acceptance_threshold=call(f.acceptance_threshold()),
            proposal_quorum=call(f.proposal_quorum()),
            max_rounds=call(f.max_rounds()),
            committee_size=call(f.committee_size()),
            data_registry=str(call(f.data_registry())),
            purpose=hex32(call(f.purpose())),
            privacy_budget=call(f.privacy_budget()),
            secagg_threshold=call(f.secagg_threshold()),
            max_disagreement=call(f.max_disagreement()),
            reputation_warmup=call(f.reputation_warmup()),
            max_rejection=call(f.max_rejection()),
            min_mean_score=call(f.min_mean_score()),
        )

    @property
    def consortium_address(self) -> str:
        return str(self.chain.call(self.contract.functions.consortium()))

    @property
    def creator(self) -> str:
        """The member that deployed the task: its published store holds the task's config and models."""
        return str(self.chain.call(self.contract.functions.creator()))

    def privacy_spent(self, member: str) -> int:
        """``member``'s latest declared cumulative spend, in micro-epsilon (0 in tasks without a budget)."""
        return int(self.chain.call(self.contract.functions.privacy_spent(as_address(member))))

    def reputation_of(self, validator: str) -> ValidatorStanding:
        """``validator``'s reputation record (all zero in tasks without reputation)."""
        f, address = self.contract.functions, as_address(validator)
        return ValidatorStanding(
            scored=int(self.chain.call(f.validator_scored(address))),
            disagreed=int(self.chain.call(f.validator_disagreed(address))),
            distrusted=bool(self.chain.call(f.is_distrusted(address))),
        )

    def trainer_standing(self, trainer: str) -> TrainerStanding:
        """``trainer``'s record (all zero in tasks without trainer reputation)."""
        f, address, params = self.contract.functions, as_address(trainer), self.params()
        scored = int(self.chain.call(f.trainer_scored(address)))
        rejected = int(self.chain.call(f.trainer_rejected(address)))
        score_sum = int(self.chain.call(f.trainer_score_sum(address)))
        # The contract's own test on its counts (it has no view for it: it is at the EIP-170 size limit).
        distrusted = trainer_distrusted(
            scored,
            rejected,
            score_sum,
            max_rejection=params.max_rejection,
            min_mean_score=params.min_mean_score,
            warmup=params.reputation_warmup,
        )
        return TrainerStanding(scored=scored, rejected=rejected, distrusted=distrusted, score_sum=score_sum)

    def left_out_as_trainer(self, round_id: int, trainer: str) -> bool:
        """Whether trainer reputation left ``trainer`` out of round ``round_id`` when it opened: its commitments are
        refused in that round (``task: trainer distrusted``) and the round does not wait for it."""
        return bool(self.chain.call(self.contract.functions.trainer_left_out(int(round_id), as_address(trainer))))

    def clear_reputation(self, validator: str) -> TxResult:
        """Reset a member's records as validator and as trainer (admins only); it takes part again from the next
        round."""
        return self._send(self.contract.functions.clear_reputation(as_address(validator)))

    def round(self, round_id: int, *, block: BlockIdentifier = "latest") -> RoundInfo:
        return RoundInfo.from_raw(round_id, self.chain.call(self.contract.functions.rounds(int(round_id)), block=block))

    def member_view(self, member: str) -> MemberView:
        """The current round and ``member``'s roles and duties in it, in one call."""
        return self._member_view_from(self.chain.call(self.contract.functions.member_view(as_address(member))))

    @staticmethod
    def _member_view_from(raw: Sequence[Any]) -> MemberView:
        current = int(raw[0])
        return MemberView(
            current_round=current,
            round=RoundInfo.from_raw(current, raw[1]) if current else None,
            roles=int(raw[2]),
            committed=bool(raw[3]),
            scored=bool(raw[4]),
            proposed=bool(raw[5]),
            timestamp=int(raw[6]),
        )

    def assignments_of(self, round_id: int, validator: str) -> list[int]:
        """The updates ``validator`` may score in a round (its committee seats, or all but its own)."""
        return list(self.chain.call(self.contract.functions.assignments_of(int(round_id), as_address(validator))))

    def is_round_validator(self, round_id: int, validator: str) -> bool:
        """Whether ``validator`` may score in the round (false once commits closed without it: not drawn, or
        left out by its reputation)."""
        return bool(self.chain.call(self.contract.functions.is_round_validator(int(round_id), as_address(validator))))

    def committee_of(self, round_id: int, index: int) -> list[str]:
        """The validators drawn to score update ``index`` (committee rounds, once commits closed)."""
        return [str(a) for a in self.chain.call(self.contract.functions.committee_of(int(round_id), int(index)))]

    def scorers_of(self, round_id: int, updates: Sequence[UpdateInfo] | None = None) -> list[list[str]]:
        """For each of the round's updates, the validators that may score it (once commits closed): its
        committee, or without committees every round validator but the update's owner. Public to all, which
        is what an adaptive liar (``fedledger.attacks.LyingValidators(adaptive=True)``) exploits. ``updates``:
        the round's updates where the caller already read them (:meth:`updates`)."""
        if updates is None:
            updates = self.updates(round_id)
        if self.params().committee_size:
            return [self.committee_of(round_id, u.index) for u in updates]
        members = ConsortiumClient(self.chain, self.consortium_address).members()
        validators = [m.address for m in members if self.is_round_validator(round_id, m.address)]
        return [[v for v in validators if v.lower() != u.member.lower()] for u in updates]

    def update(self, round_id: int, index: int) -> UpdateInfo:
        raw = self.chain.call(self.contract.functions.updates(int(round_id), int(index)))
        if int(raw[0], 16) == 0:
            raise BadInput(f"round {round_id} has no update {index}")
        return UpdateInfo.from_raw(round_id, index, raw)

    def updates(self, round_id: int) -> list[UpdateInfo]:
        """Every update of a round, in commit order, in one call."""
        raw = self.chain.call(self.contract.functions.updates_of(int(round_id)))
        return [UpdateInfo.from_raw(round_id, i, u) for i, u in enumerate(raw)]

    def commit_index(self, round_id: int, member: str) -> int:
        """Index of ``member``'s update in the round; :class:`InvalidState` when none."""
        slot = int(self.chain.call(self.contract.functions.commit_index(int(round_id), as_address(member))))
        if slot == 0:
            raise InvalidState(f"task: {member} has no commitment in round {round_id}")
        return slot - 1

    def has_committed(self, round_id: int, member: str) -> bool:
        return int(self.chain.call(self.contract.functions.commit_index(int(round_id), as_address(member)))) > 0

    def has_scored(self, round_id: int, validator: str) -> bool:
        return bool(self.chain.call(self.contract.functions.has_scored(int(round_id), as_address(validator))))

    def has_proposed(self, round_id: int, aggregator: str) -> bool:
        return bool(self.chain.call(self.contract.functions.has_proposed(int(round_id), as_address(aggregator))))

    def scores_of(self, round_id: int, index: int) -> list[int]:
        return list(self.chain.call(self.contract.functions.scores_of(int(round_id), int(index))))

    def model_at(self, round_id: int) -> str:
        return hex32(self.chain.call(self.contract.functions.model_at(int(round_id))))

    def model_history(self) -> dict[int, str]:
        """round -> finalized model hash, for every finalized round."""
        history = {}
        for r in range(1, self.current_round + 1):
            info = self.round(r)
            if info.phase is Phase.FINALIZED:
                history[r] = info.model_hash
        return history


def _uint(value: int, what: str) -> int:
    """A uint256 argument; :class:`BadInput` otherwise (nothing is sent)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
    return value
