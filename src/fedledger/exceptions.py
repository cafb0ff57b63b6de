"""Every error fedledger raises on purpose, in one tree.

Library errors are mapped at the boundary (``raise X(...) from exc``) so callers
catch ours, never web3's or py-evm's. Contract reverts become the subclass of
:class:`ContractRevert` that :data:`fedledger.chain.reverts.REVERT_CLASSES` gives
the contract's revert string, and keep that string in ``.reason``.

    FedLedgerError
    ├── ConfigError                  workspace / config file missing or invalid
    ├── BadInput                     a malformed value given to the client (address, hash...)
    │   ├── UnknownSubject           the vault holds nothing for a data subject
    │   ├── ErasedSubject            the data subject was erased (crypto-shredded)
    │   └── MpcEndpointError         a check-committee member's published MPC endpoint is missing or malformed
    ├── KeystoreError                keystore unreadable, wrong password
    ├── ChainError                   chain unreachable, node or backend failure
    │   ├── ChainBusy                the embedded chain is held by another process
    │   ├── EventDecodeError         a log does not match the contract event its topic names
    │   └── TransactionFailed        mined but failed without a reason, or not mined
    ├── ContractRevert               the contract refused a call (has .reason); also any reason not in the table
    │   ├── NotAuthorized            caller lacks the role / membership / admin right, not its dataset
    │   ├── InvalidState             wrong round, wrong phase, already done
    │   ├── DeadlinePassed           a phase deadline is over
    │   ├── InvalidArgument          zero hash, out-of-range value, bad address, decreasing spend
    │   ├── PurposeRefused           (also a PurposeNotAllowed) the task refused the dataset's purpose
    │   └── PrivacyBudgetRefused     (also a PrivacyBudgetExceeded) the task refused the declared spend
    ├── StoreError                   content-addressed store failure
    │   ├── BlobNotFound
    │   └── IntegrityError           bytes do not match their hash
    ├── UpdateRejected               an update blob failed validation (has .reason)
    ├── AggregationError             aggregate cannot be computed
    │   └── SecAggError              a secure-aggregation step cannot proceed
    │       └── NotEnoughShares      too many dropouts to unmask (has .missing)
    ├── VerificationFailed           audit found a discrepancy (has .discrepancy)
    ├── RoundsAborted                a task ended with aborted rounds (has .rounds)
    └── TrainingRefused              a member node refuses to train in a round (nothing trained or sent)
        ├── PurposeNotAllowed        a dataset's consent does not cover a task's purpose
        ├── PrivacyBudgetExceeded    training once more would overrun a member's privacy budget
        └── RegisteredRowsExceeded   a member trains on more rows than its dataset registered

CLI exit codes come from the class (see :func:`exit_code_for`).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "AggregationError",
    "BadInput",
    "BlobNotFound",
    "ChainBusy",
    "ChainError",
    "ConfigError",
    "ContractRevert",
    "DeadlinePassed",
    "FedLedgerError",
    "IntegrityError",
    "InvalidArgument",
    "InvalidState",
    "KeystoreError",
    "NotAuthorized",
    "NotEnoughShares",
    "SecAggError",
    "StoreError",
    "TransactionFailed",
    "UpdateRejected",
    "VerificationFailed",
    "RoundsAborted",
    "PrivacyBudgetExceeded",
    "PrivacyBudgetRefused",
    "PurposeNotAllowed",
    "PurposeRefused",
    "RegisteredRowsExceeded",
    "TrainingRefused",
    "UnknownSubject",
    "ErasedSubject",
    "EventDecodeError",
    "MpcEndpointError",
    "exit_code_for",
]


class FedLedgerError(Exception):
    """Root of every error fedledger raises on purpose."""

    exit_code = 1


class ConfigError(FedLedgerError):
    exit_code = 2


class BadInput(FedLedgerError):
    """A malformed value was given to the client; nothing was sent."""

    exit_code = 2


class KeystoreError(FedLedgerError):
    exit_code = 3


class ChainError(FedLedgerError):
    exit_code = 4


class ChainBusy(ChainError):
    pass


class TransactionFailed(ChainError):
    pass


class EventDecodeError(ChainError):
    """A log does not match the contract event its topic names (wrong topics, or fields this client does not know)."""


class ContractRevert(FedLedgerError):
    """The contract refused the call; ``reason`` is its revert string."""

    exit_code = 5

    def __init__(self, reason: str, *, function: str | None = None) -> None:
        self.reason = reason
        self.function = function
        where = f" in {function}" if function else ""
        said = reason or "the contract reverted without a reason"
        # Not super(): the revert variants of domain errors (PurposeRefused...) have other __init__s next in line.
        Exception.__init__(self, f"{said}{where}")


class NotAuthorized(ContractRevert):
    exit_code = 6


class InvalidState(ContractRevert):
    exit_code = 7


class DeadlinePassed(InvalidState):
    exit_code = 8


class InvalidArgument(ContractRevert):
    exit_code = 9


class StoreError(FedLedgerError):
    exit_code = 10


class BlobNotFound(StoreError):
    pass


class IntegrityError(StoreError):
    pass


class UpdateRejected(FedLedgerError):
    """An update blob failed validation; ``reason`` says why."""

    exit_code = 11

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class AggregationError(FedLedgerError):
    exit_code = 12


class SecAggError(AggregationError):
    """A secure-aggregation step cannot proceed (protocol misuse or an inconsistent view)."""


class NotEnoughShares(SecAggError):
    """Fewer than ``threshold`` shares for some members: the sum cannot be unmasked yet.

    ``missing`` maps each such member to (shares held, shares needed). Nothing is
    consumed: add the missing reveals (late survivors) and call again, or rerun
    the round with the members that are still there.
    """

    def __init__(self, missing: Mapping[str, tuple[int, int]], kind: str) -> None:
        self.missing = dict(missing)
        listed = ", ".join(f"{m} ({have} of {need})" for m, (have, need) in sorted(self.missing.items()))
        super().__init__(
            f"cannot unmask the aggregate: not enough {kind} shares revealed for {len(self.missing)} member(s): "
            f"{listed}. Too many members dropped out for threshold {next(iter(self.missing.values()))[1]}; "
            "nothing was lost: add reveals from more survivors and retry, or rerun the round"
        )


class VerificationFailed(FedLedgerError):
    exit_code = 13

    def __init__(self, discrepancy: str) -> None:
        self.discrepancy = discrepancy
        super().__init__(discrepancy)


class RoundsAborted(FedLedgerError):
    """A task's rounds ended, some of them aborted: its model moved on fewer times than configured."""

    exit_code = 17

    def __init__(self, message: str, *, rounds: list[int]) -> None:
        self.rounds = rounds
        super().__init__(message)


class TrainingRefused(FedLedgerError):
    """A member node refuses to train in a round; it keeps validating and aggregating."""


class PurposeNotAllowed(TrainingRefused):
    """A dataset does not allow the purpose a task would process it for (nothing was trained)."""

    exit_code = 14


class PrivacyBudgetExceeded(TrainingRefused):
    """Training once more would take a member past its privacy budget (nothing was trained or sent).

    ``member``, ``epsilon_after`` and ``budget_epsilon`` are known when a node refuses on its own;
    they are None on :class:`PrivacyBudgetRefused`, where the contract refused the declaration.
    """

    exit_code = 15  # 14 is PurposeNotAllowed

    member: str | None
    epsilon_after: float | None
    budget_epsilon: float | None

    def __init__(self, member: str, *, epsilon_after: float, budget_epsilon: float) -> None:
        self.member = member
        self.epsilon_after = epsilon_after
        self.budget_epsilon = budget_epsilon
        super().__init__(
            f"privacy budget exceeded: {member} would reach epsilon {epsilon_after:.6g} "
            f"after its next round, budget {budget_epsilon:.6g}"
        )


class RegisteredRowsExceeded(TrainingRefused):
    """A member would declare more examples than its dataset registered (nothing was trained or sent):
    aggregators and auditors leave such an update out, so the member must register the new rows first."""

    exit_code = 16


class PurposeRefused(ContractRevert, PurposeNotAllowed):
    """The task contract refused a commitment whose dataset does not allow the task's purpose."""

    exit_code = 14


class PrivacyBudgetRefused(ContractRevert, PrivacyBudgetExceeded):
    """The task contract refused a commitment whose declared spend exceeds the task's budget."""

    exit_code = 15

    def __init__(self, reason: str, *, function: str | None = None) -> None:
        ContractRevert.__init__(self, reason, function=function)
        self.member = self.epsilon_after = self.budget_epsilon = None


class UnknownSubject(BadInput):
    """The vault holds nothing for this data subject."""


class ErasedSubject(BadInput):
    """The data subject was erased: its values are gone for good and no new ones are accepted."""


class MpcEndpointError(BadInput):
    """A check-committee member has published no MPC endpoint for the task, or a malformed one (has ``.members``:
    the members at fault, and ``.missing``: whether only missing ones, which may still be posted)."""

    def __init__(self, message: str, members: list[str], *, missing: bool = False) -> None:
        super().__init__(message)
        self.members = members
        self.missing = missing


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for an exception (1 for anything unexpected)."""
    return exc.exit_code if isinstance(exc, FedLedgerError) else 1
