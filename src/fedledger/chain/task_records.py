"""What the task contracts hold and return, as typed records: rounds, updates, member views, secure-round
state, reputation standings, and the parameters a task is created with.

Both task kinds (``TrainingTask`` for validated rounds, ``SecureTrainingTask`` for secure-aggregation rounds)
share these records; :mod:`fedledger.chain.task` reads them from the chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import Enum, IntEnum
from typing import Any

from fedledger.chain.encoding import ZERO_HASH, as_address, as_bytes32, hex32
from fedledger.exceptions import BadInput

__all__ = [
    "AUTO_COMMITTEE_ABOVE",
    "AUTO_COMMITTEE_SIZE",
    "SCORE_SCALE",
    "ZERO_ADDRESS",
    "MemberView",
    "Phase",
    "RoundInfo",
    "SecureMessages",
    "SecureRoundInfo",
    "SecureView",
    "TaskKind",
    "TaskParams",
    "TrainerStanding",
    "UpdateInfo",
    "GOVERNED_PARAMS",
    "ValidatorStanding",
    "committee_indices",
    "contract_median",
    "governed_param_id",
    "round_committee_size",
    "seat_indices",
    "hash_or_none",
    "indices_of",
    "mask_of",
    "uint_arg",
]

SCORE_SCALE = 10_000
# The settings a consortium vote may change on a running task (modules/governed.vy), by their contract ids. The
# rules that decide acceptance and pay are not among them: each past round stays judged by the rule it announced.
GOVERNED_PARAMS: dict[str, int] = {
    "commit_duration": 1,
    "validate_duration": 2,
    "aggregate_duration": 3,
    "proposal_quorum": 4,
}
ZERO_ADDRESS = "0x" + "00" * 20
AUTO_COMMITTEE_ABOVE = 10
"""A task created with ``committee_size`` 0 draws committees in rounds that open with more validators than this."""
AUTO_COMMITTEE_SIZE = 7
"""Their size: a median that three lying validators of one committee cannot move."""


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


def deciding_score(values: Sequence[int], min_approvals: int) -> int:
    """The score the TrainingTask contract compares with the threshold: the median (``min_approvals`` 0), or the
    ``min_approvals``-th highest score (all of them when fewer were given), so that the update passes exactly when
    that many of its validators scored it at or above the threshold."""
    if not min_approvals:
        return contract_median(values)
    if not values:
        raise ValueError("deciding score of no scores")
    return sorted(values, reverse=True)[min(min_approvals, len(values)) - 1]


def governed_param_id(name: str) -> int:
    """The contract id of a setting a vote may change; :class:`BadInput` naming the known ones otherwise."""
    try:
        return GOVERNED_PARAMS[name]
    except KeyError:
        known = ", ".join(GOVERNED_PARAMS)
        raise BadInput(f"{name!r} is not a setting a vote can change; these are: {known}") from None


def round_committee_size(committee_size: int, validators: int) -> int:
    """The committee size the TrainingTask contract fixes for a round that opens with ``validators`` validators
    (0: every validator scores every other update)."""
    if committee_size == 0 and validators > AUTO_COMMITTEE_ABOVE:
        return AUTO_COMMITTEE_SIZE
    return committee_size


def committee_indices(index: int, num_updates: int, size: int, step: int) -> list[int]:
    """The commit indices whose committers hold update ``index``'s seats, in seat order: ``index + k * step``
    (mod ``num_updates``) for k = 1 .. ``size`` (at most every other update), as the contract draws them."""
    return [(index + k * step) % num_updates for k in range(1, min(size, num_updates - 1) + 1)]


def seat_indices(own_index: int, num_updates: int, size: int, step: int) -> list[int]:
    """The updates the committer at ``own_index`` holds a seat on, increasing: the inverse of
    :func:`committee_indices`."""
    return sorted((own_index - k * step) % num_updates for k in range(1, min(size, num_updates - 1) + 1))


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
    # Validators per update; 0: every validator scores every update in rounds of at most AUTO_COMMITTEE_ABOVE
    # validators, committees of AUTO_COMMITTEE_SIZE in larger ones.
    committee_size: int = 0
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
    # Acceptance by approvals: an update passes when at least min_approvals of its validators score it at or
    # above the threshold, and a validator's record counts only its approvals of rejected updates; 0: by the
    # committee median, every score on the wrong side of the outcome counted.
    min_approvals: int = 0
    # The task's Incentives contract (fedledger.chain.incentives), asked whether a trainer or validator deposited
    # its role's stake; zero: no stake required. Validated rounds only.
    stake_gate: str = ZERO_ADDRESS
    # The settings a consortium vote may change later, each as (name in GOVERNED_PARAMS, low, high); empty: none.
    param_bounds: tuple[tuple[str, int, int], ...] = ()
    # The CommitmentBatches contract whose finalized batches deliver the task's commitments (one root per round,
    # docs/batched-commitments.md); zero: trainers commit one transaction each. Validated rounds only.
    commitment_batches: str = ZERO_ADDRESS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def constructor_args(self, consortium: str) -> tuple[Any, ...]:
        """The task contract constructor's arguments, in order: both kinds take the same, and a validated task
        also the CommitmentBatches contract allowed to deliver its batched commitments."""
        batched = as_address(self.commitment_batches, what="commitment batches address")
        if TaskKind.for_params(self) is TaskKind.SECURE:
            if batched != ZERO_ADDRESS:
                raise BadInput("batched commitments need validated rounds: a secure task commits masked inputs")
            return self._shared_args(consortium)
        return (*self._shared_args(consortium), batched)

    def _shared_args(self, consortium: str) -> tuple[Any, ...]:
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
            uint_arg(self.privacy_budget, "privacy budget"),
            uint_arg(self.secagg_threshold, "secagg threshold"),
            uint_arg(self.max_disagreement, "max disagreement"),
            uint_arg(self.reputation_warmup, "reputation warmup"),
            uint_arg(self.max_rejection, "max rejection"),
            uint_arg(self.min_mean_score, "min mean score"),
            uint_arg(self.min_approvals, "min approvals"),
            as_address(self.stake_gate, what="stake gate address"),
            [
                (governed_param_id(name), uint_arg(low, f"{name} low"), uint_arg(high, f"{name} high"))
                for name, low, high in self.param_bounds
            ],
        )


class TaskKind(Enum):
    """Which task contract runs a task's rounds: one kind per task, chosen from its parameters."""

    VALIDATED = "validated"  # validators score updates; committees and reputation available
    SECURE = "secure"  # secure-aggregation rounds: nobody sees an update, nothing is scored

    @property
    def contract_name(self) -> str:
        """The shipped contract of this kind."""
        return "SecureTrainingTask" if self is TaskKind.SECURE else "TrainingTask"

    @classmethod
    def for_params(cls, params: TaskParams) -> TaskKind:
        """The kind a task with ``params`` is deployed as: secure with a secure-aggregation threshold."""
        return cls.SECURE if params.secagg_threshold > 0 else cls.VALIDATED


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
    deciding scores (committee medians, or by approvals the deciding ones), and whether the task now leaves it out
    of its rounds (:mod:`fedledger.chain.reputation`)."""

    scored: int
    rejected: int
    distrusted: bool
    score_sum: int = 0

    @property
    def mean_score(self) -> float | None:
        """The mean deciding score of its scored updates (None before the first)."""
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
    graph_seed: bytes = b""  # public randomness fixed at the opening (a large round's neighbour graph)

    @classmethod
    def from_raw(cls, raw: Sequence[Any]) -> SecureRoundInfo:
        threshold, members, opened, adverts, bundles, reveals = (int(v) for v in raw[:6])
        return cls(threshold, members, opened, adverts, bundles, reveals, graph_seed=bytes(raw[6]))


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


@dataclass(frozen=True)
class SecurePeer:
    """One member's message hashes in a secure round and its masked input's commitment (None: none)."""

    messages: SecureMessages
    update: UpdateInfo | None


def secure_messages_from(raw: Sequence[Any]) -> SecureMessages:
    """From the contract's ``SecureMessages`` struct, as web3 returns it."""
    return SecureMessages(str(raw[0]), hash_or_none(raw[1]), hash_or_none(raw[2]), hash_or_none(raw[3]))


def hash_or_none(raw: bytes) -> str | None:
    """A 0x-hex hash, or None for the zero hash (a message not posted)."""
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


def uint_arg(value: int, what: str) -> int:
    """A uint256 argument; :class:`BadInput` otherwise (nothing is sent)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
    return value
