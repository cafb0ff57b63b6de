"""Typed client for the Incentives contract: a task's reward pool, contributions, pull payments, stake and slashing.

One Incentives contract pays for one validated-rounds task. It is deployed first (it does not know the task), the
task is created with ``TaskParams(stake_gate=incentives.address)``, then :meth:`IncentivesClient.bind_task` names
the task. The pool and the stakes are in native currency (``token`` zero) or one ERC-20 token, which a caller
approves with :meth:`IncentivesClient.approve_token` before funding or staking.

Every payout is on the ledger: :meth:`IncentivesClient.records` returns the credits (round, update, contribution,
amount), the settlements, the claims and the slashes, for an audit to re-derive each credit from the posted
contributions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.contract import Contract
from web3.types import BlockIdentifier

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_address
from fedledger.chain.incentive_events import (
    Claimed,
    ContributionsPosted,
    Funded,
    RewardCredited,
    RoundSettled,
    Slashed,
    StakeWithdrawn,
)
from fedledger.chain.task_records import SCORE_SCALE, ZERO_ADDRESS, uint_arg
from fedledger.exceptions import BadInput

__all__ = ["IncentiveParams", "IncentiveRecords", "IncentiveTotals", "IncentivesClient"]

# What the client calls on the pool's token: approving the contract, and reading balances.
_ERC20_ABI: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": "approve",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "spender", "type": "address"}, {"name": "amount", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "balanceOf",
        "stateMutability": "view",
        "inputs": [{"name": "owner", "type": "address"}],
        "outputs": [{"name": "", "type": "uint256"}],
    },
]


@dataclass(frozen=True)
class IncentiveParams:
    """What an Incentives contract is created with (all but the consortium address)."""

    reward_per_round: int  # the most one settled round pays out of the pool
    token: str = ZERO_ADDRESS  # ERC-20 token of the pool and the stakes; zero: native currency
    trainer_stake: int = 0  # stake a trainer deposits before committing (0: none)
    validator_stake: int = 0  # stake a validator deposits before scoring (0: none)
    trainer_slash_bps: int = 0  # basis points of its stake a trainer loses for a clearly harmful update
    validator_slash_bps: int = 0  # basis points of its stake a distrusted validator loses
    contribution_window: int = 3_600  # seconds after a round's aggregation deadline to post contributions
    dispute_window: int = 86_400  # seconds after the task's end before stakes are withdrawn

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def constructor_args(self, consortium: str) -> tuple[Any, ...]:
        """The contract constructor's arguments, in order."""
        for name in ("trainer_slash_bps", "validator_slash_bps"):
            if not 0 <= getattr(self, name) <= SCORE_SCALE:
                raise BadInput(f"{name} must be 0..{SCORE_SCALE} basis points, got {getattr(self, name)}")
        return (
            as_address(consortium, what="consortium address"),
            as_address(self.token, what="token address"),
            uint_arg(self.reward_per_round, "reward per round"),
            uint_arg(self.trainer_stake, "trainer stake"),
            uint_arg(self.validator_stake, "validator stake"),
            self.trainer_slash_bps,
            self.validator_slash_bps,
            uint_arg(self.contribution_window, "contribution window"),
            uint_arg(self.dispute_window, "dispute window"),
        )

    @property
    def native(self) -> bool:
        """Whether the pool and the stakes are in native currency."""
        return int(self.token, 16) == 0


@dataclass(frozen=True)
class IncentiveTotals:
    """The contract's books: allocated <= funded + slashed and paid <= allocated always hold."""

    funded: int
    slashed: int
    allocated: int
    paid: int
    staked: int

    @property
    def pool(self) -> int:
        """Funded plus slashed, not yet allocated to a round."""
        return self.funded + self.slashed - self.allocated

    @property
    def owed(self) -> int:
        """What the contract must be able to pay: earnings not yet claimed, the unallocated pool, and the stakes."""
        return self.funded + self.slashed - self.paid + self.staked


@dataclass(frozen=True)
class IncentiveRecords:
    """The payout ledger of an Incentives contract, from its events, in chain order."""

    funded: list[Funded] = field(default_factory=list)
    posted: list[ContributionsPosted] = field(default_factory=list)
    credits: list[RewardCredited] = field(default_factory=list)
    settlements: list[RoundSettled] = field(default_factory=list)
    claims: list[Claimed] = field(default_factory=list)
    slashes: list[Slashed] = field(default_factory=list)
    withdrawals: list[StakeWithdrawn] = field(default_factory=list)


class IncentivesClient(ContractClient):
    """The Incentives contract at ``address``, acting as ``account`` for writes."""

    NAME = "Incentives"

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str, params: IncentiveParams) -> IncentivesClient:
        """Create the incentives of a task to come (``account`` must be a consortium admin)."""
        address, _ = chain.deploy(account, cls.NAME, *params.constructor_args(consortium))
        return cls(chain, address, account)

    # -- writes ------------------------------------------------------------------

    def bind_task(self, task: str) -> TxResult:
        """Name the task these incentives pay for (the creator, once; the task must name this contract)."""
        return self._send(self.contract.functions.bind_task(as_address(task, what="task address")))

    def fund(self, amount: int) -> TxResult:
        """Add ``amount`` to the pool: sent along in native currency, or transferred from approved tokens."""
        return self._send_paying(self.contract.functions.fund(uint_arg(amount, "amount")), amount)

    def deposit_stake(self, amount: int) -> TxResult:
        """Add ``amount`` to this member's stake (native currency sent along, or approved tokens)."""
        return self._send_paying(self.contract.functions.deposit_stake(uint_arg(amount, "amount")), amount)

    def approve_token(self, amount: int) -> TxResult:
        """Let the contract transfer ``amount`` of this account's tokens (before :meth:`fund` or
        :meth:`deposit_stake` on a token pool)."""
        return self._send(self._token().functions.approve(self.address, uint_arg(amount, "amount")))

    def post_contributions(self, round_id: int, contributions: Mapping[int, int]) -> TxResult:
        """This validator's contribution values (0..10000) for accepted updates of a finalized round, by index."""
        indices = sorted(contributions)
        values = [uint_arg(contributions[i], "contribution") for i in indices]
        return self._send(self.contract.functions.post_contributions(round_id, indices, values))

    def settle_round(self, round_id: int) -> TxResult:
        """Credit a finalized round's reward to its accepted updates' committers (anyone, once)."""
        return self._send(self.contract.functions.settle_round(round_id))

    def claim(self) -> TxResult:
        """Pay this member everything it earned and has not claimed."""
        return self._send(self.contract.functions.claim())

    def slash_trainer(self, round_id: int, index: int) -> TxResult:
        """Slash the trainer of a clearly harmful update (rejected, every score below the threshold)."""
        return self._send(self.contract.functions.slash_trainer(round_id, index))

    def slash_validator(self, validator: str, round_id: int) -> TxResult:
        """Slash a validator the task distrusts, naming a round it scored after the round current at its last
        slash (once per distrust episode: a distrusted validator scores again only once an admin cleared it)."""
        address = as_address(validator, what="validator address")
        return self._send(self.contract.functions.slash_validator(address, round_id))

    def mark_ended(self) -> TxResult:
        """Record that the task ended (all its rounds closed); starts the dispute window."""
        return self._send(self.contract.functions.mark_ended())

    def withdraw_stake(self) -> TxResult:
        """Return this member's remaining stake (after the task's end and the dispute window)."""
        return self._send(self.contract.functions.withdraw_stake())

    # -- reads -------------------------------------------------------------------

    def params(self) -> IncentiveParams:
        """The contract's constructor parameters."""
        f, call = self.contract.functions, self.chain.call
        return IncentiveParams(
            reward_per_round=call(f.reward_per_round()),
            token=str(call(f.token())),
            trainer_stake=call(f.trainer_stake()),
            validator_stake=call(f.validator_stake()),
            trainer_slash_bps=call(f.trainer_slash_bps()),
            validator_slash_bps=call(f.validator_slash_bps()),
            contribution_window=call(f.contribution_window()),
            dispute_window=call(f.dispute_window()),
        )

    @property
    def task_address(self) -> str | None:
        """The bound task, None before :meth:`bind_task`."""
        address = str(self.chain.call(self.contract.functions.task()))
        return None if int(address, 16) == 0 else address

    def pool(self, *, block: BlockIdentifier = "latest") -> int:
        """Funded plus slashed, not yet allocated to a round."""
        return int(self.chain.call(self.contract.functions.pool(), block=block))

    def earned(self, member: str) -> int:
        """What ``member`` earned and has not claimed."""
        return int(self.chain.call(self.contract.functions.earned(as_address(member, what="member address"))))

    def stake_of(self, member: str) -> int:
        return int(self.chain.call(self.contract.functions.stake_of(as_address(member, what="member address"))))

    def slashed_of(self, member: str) -> int:
        """How much of ``member``'s stake went to the pool, in total."""
        return int(self.chain.call(self.contract.functions.slashed_of(as_address(member, what="member address"))))

    def is_staked(self, member: str, role: int) -> bool:
        """Whether ``member`` holds the stake ``role`` (a :class:`~fedledger.chain.Role` bit) requires."""
        return bool(self.chain.call(self.contract.functions.is_staked(as_address(member, what="member"), int(role))))

    def contribution_of(self, round_id: int, index: int) -> int:
        """The settled contribution of update ``index`` (the median of its posted values; 0 before settling)."""
        return int(self.chain.call(self.contract.functions.contribution_of(round_id, index)))

    def contributions_posted(self, round_id: int, index: int) -> list[int]:
        """The contribution values posted for an update, in posting order."""
        return [int(v) for v in self.chain.call(self.contract.functions.contributions_posted(round_id, index))]

    def settled(self, round_id: int) -> bool:
        return bool(self.chain.call(self.contract.functions.settled(round_id)))

    def has_posted(self, round_id: int, validator: str) -> bool:
        fn = self.contract.functions.has_posted(round_id, as_address(validator, what="validator address"))
        return bool(self.chain.call(fn))

    @property
    def ended_at(self) -> int | None:
        """When the task's end was recorded (block time), None before."""
        return int(self.chain.call(self.contract.functions.ended_at())) or None

    def totals(self, *, block: BlockIdentifier = "latest") -> IncentiveTotals:
        """The contract's books, read at one block."""
        f, call = self.contract.functions, self.chain.call
        return IncentiveTotals(
            funded=call(f.total_funded(), block=block),
            slashed=call(f.total_slashed(), block=block),
            allocated=call(f.total_allocated(), block=block),
            paid=call(f.total_paid(), block=block),
            staked=call(f.total_staked(), block=block),
        )

    def holdings(self, *, block: BlockIdentifier = "latest") -> int:
        """What the contract holds: its native balance, or its balance of the token."""
        token = str(self.chain.call(self.contract.functions.token(), block=block))
        if int(token, 16) == 0:
            return int(self.chain.w3.eth.get_balance(to_checksum_address(self.address), block_identifier=block))
        return int(self.chain.call(self._token(token).functions.balanceOf(self.address), block=block))

    def records(self, *, from_block: int = 0, to_block: BlockIdentifier = "latest") -> IncentiveRecords:
        """The payout ledger: funding, posted contributions, credits, settlements, claims, slashes, withdrawals."""
        records = IncentiveRecords()
        lists: dict[type, list[Any]] = {
            Funded: records.funded,
            ContributionsPosted: records.posted,
            RewardCredited: records.credits,
            RoundSettled: records.settlements,
            Claimed: records.claims,
            Slashed: records.slashes,
            StakeWithdrawn: records.withdrawals,
        }
        for event in self.events(from_block=from_block, to_block=to_block):
            target = lists.get(type(event))
            if target is not None:
                target.append(event)
        return records

    # -- helpers -----------------------------------------------------------------

    def _token(self, token: str | None = None) -> Contract:
        address = token if token is not None else str(self.chain.call(self.contract.functions.token()))
        if int(address, 16) == 0:
            raise BadInput(f"the incentives at {self.address} are paid in native currency: there is no token")
        return self.chain.w3.eth.contract(address=to_checksum_address(address), abi=_ERC20_ABI)

    def _send_paying(self, fn: Any, amount: int) -> TxResult:
        """Send ``fn`` with ``amount`` attached when the pool is in native currency (tokens move by transferFrom)."""
        if self.account is None:
            raise BadInput("this client has no account to sign with; use .as_(account)")
        native = int(str(self.chain.call(self.contract.functions.token())), 16) == 0
        return self.chain.transact(self.account, fn, value=amount if native else 0)
