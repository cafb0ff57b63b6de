"""What every typed contract client shares: its address, an optional signing account, events."""

from __future__ import annotations

from typing import Any, ClassVar, Self

from eth_account.signers.local import LocalAccount
from web3.types import BlockIdentifier

from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import as_address
from fedledger.chain.events import LedgerEvent
from fedledger.exceptions import BadInput

__all__ = ["ContractClient"]


class ContractClient:
    """A shipped contract at ``address``, acting as ``account`` for writes."""

    NAME: ClassVar[str]

    def __init__(self, chain: Chain, address: str, account: LocalAccount | None = None) -> None:
        self.chain = chain
        self.address = as_address(address, what=f"{self.NAME} address")
        self.account = account
        self.contract = chain.contract(self.NAME, self.address)

    def as_(self, account: LocalAccount) -> Self:
        """The same contract, acting as another member."""
        return type(self)(self.chain, self.address, account)

    def events(self, *, from_block: int = 0, to_block: BlockIdentifier = "latest") -> list[LedgerEvent]:
        """This contract's typed events, in chain order."""
        return self.chain.events(self.NAME, self.address, from_block=from_block, to_block=to_block)

    def _send(self, fn: Any) -> TxResult:
        if self.account is None:
            raise BadInput("this client has no account to sign with; use .as_(account)")
        return self.chain.transact(self.account, fn)
