"""A task's incentives as its members meet them: the Incentives contract a task is gated by, deployed with it.

The task contract names its Incentives contract as its stake gate (:attr:`TaskParams.stake_gate`), so the chain is
the one record of which contract pays a task: :func:`task_incentives` reads it from there, and a workspace keeps
only the task's address.
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from fedledger.chain.incentives import IncentivesClient
from fedledger.chain.task import TrainingTaskClient
from fedledger.exceptions import ConfigError

__all__ = ["fund_pool", "task_incentives"]


def task_incentives(task: TrainingTaskClient, account: LocalAccount | None = None) -> IncentivesClient | None:
    """The Incentives contract of ``task`` (its stake gate), acting as ``account``; None for a task without."""
    gate = task.params().stake_gate
    if int(gate, 16) == 0:
        return None
    return IncentivesClient(task.chain, gate, account)


def fund_pool(incentives: IncentivesClient, amount: int) -> None:
    """Add ``amount`` to the reward pool from the incentives client's account (approving the token first when the
    pool is an ERC-20's)."""
    if amount <= 0:
        raise ConfigError(f"a reward pool is funded with a positive amount, got {amount}")
    if not incentives.params().native:
        incentives.approve_token(amount)
    incentives.fund(amount)
