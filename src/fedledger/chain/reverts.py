"""Contract reverts, mapped to typed errors by the contracts' own reason strings.

Every ``assert ..., "<reason>"`` in the Vyper contracts has one entry in :data:`REVERT_CLASSES`, keyed by the exact
string, so a refused call raises the :class:`~fedledger.exceptions.ContractRevert` subclass its reason means
(``tests/chain/test_reverts.py`` checks the table against the contracts' sources, both ways). A reason not in the table
(a contract this client does not know, or a revert without a reason, such as an overflow) raises the generic
:class:`~fedledger.exceptions.ContractRevert`, which still carries the reason.

Reasons arrive wrapped differently by each backend: the embedded chain (eth-tester over py-evm), a JSON-RPC node
(anvil, geth, a served fedledger chain) through web3's ``ContractLogicError`` with the ABI-encoded ``Error(string)``
as its data, or the node's JSON-RPC error message for a refused transaction. :func:`clean_revert_reason` unwraps
them all.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from types import MappingProxyType

from eth_abi import abi
from eth_abi.exceptions import DecodingError

from fedledger.exceptions import (
    ContractRevert,
    DeadlinePassed,
    InvalidArgument,
    InvalidState,
    NotAuthorized,
    PrivacyBudgetRefused,
    PurposeRefused,
)

__all__ = [
    "ERROR_SELECTOR",
    "REVERT_CLASSES",
    "bytes_literal",
    "clean_revert_reason",
    "decode_error_string",
    "revert_error",
]

REVERT_CLASSES: Mapping[str, type[ContractRevert]] = MappingProxyType(
    {
        # Consortium.vy
        "consortium: address already known": InvalidState,
        "consortium: already approved": InvalidState,
        "consortium: call refused by its target": InvalidArgument,
        "consortium: caller is not an active member": NotAuthorized,
        "consortium: caller is not an admin": NotAuthorized,
        "consortium: empty organization name": InvalidArgument,
        "consortium: founder must be an admin": NotAuthorized,
        "consortium: index out of range": InvalidArgument,
        "consortium: model already released": InvalidState,
        "consortium: no roles": InvalidArgument,
        "consortium: not an active member": InvalidState,
        "consortium: payload has no function selector": InvalidArgument,
        "consortium: proposal already executed": InvalidState,
        "consortium: proposal cancelled": InvalidState,
        "consortium: target is not a contract": InvalidArgument,
        "consortium: target is not governed by this consortium": InvalidArgument,
        "consortium: threshold above admin count": InvalidArgument,
        "consortium: threshold must be at least 1": InvalidArgument,
        "consortium: too many approvals": InvalidState,
        "consortium: unknown proposal": InvalidState,
        "consortium: unknown role": InvalidArgument,
        "consortium: would leave fewer admins than the threshold": InvalidState,
        "consortium: zero address": InvalidArgument,
        # DataRegistry.vy
        "registry: caller is not an active member": NotAuthorized,
        "registry: caller is not an admin": NotAuthorized,
        "registry: caller is not the dataset owner": NotAuthorized,
        "registry: commitment unchanged": InvalidState,
        "registry: dataset id out of range": InvalidArgument,
        "registry: dataset revoked": InvalidState,
        "registry: duplicate purpose": InvalidArgument,
        "registry: empty purposes": InvalidArgument,
        "registry: purposes unchanged": InvalidState,
        "registry: subject already erased": InvalidState,
        "registry: too many datasets for this owner": InvalidState,
        "registry: zero classification hash": InvalidArgument,
        "registry: zero commitment": InvalidArgument,
        "registry: zero consortium address": InvalidArgument,
        "registry: zero policy hash": InvalidArgument,
        "registry: zero purpose": InvalidArgument,
        "registry: zero rows": InvalidArgument,
        "registry: zero schema hash": InvalidArgument,
        "registry: zero subject hash": InvalidArgument,
        # Bulletin.vy
        "bulletin: already posted": InvalidState,
        "bulletin: not a member": NotAuthorized,
        "bulletin: zero blob hash": InvalidArgument,
        "bulletin: zero consortium address": InvalidArgument,
        "bulletin: zero task address": InvalidArgument,
        "bulletin: zero topic": InvalidArgument,
        # CommitmentBatches.vy
        "batches: already disputed": InvalidState,
        "batches: answer window closed": DeadlinePassed,
        "batches: answer window open": InvalidState,
        "batches: bad member signature": InvalidArgument,
        "batches: batch not finalized": InvalidState,
        "batches: batch not pending": InvalidState,
        "batches: caller is not an aggregator": NotAuthorized,
        "batches: challenge window closed": DeadlinePassed,
        "batches: chunk not aligned": InvalidArgument,
        "batches: challenge window open": InvalidState,
        "batches: commitment for another round": InvalidArgument,
        "batches: dispute answered": InvalidState,
        "batches: disputes awaiting answers": InvalidState,
        "batches: index out of range": InvalidArgument,
        "batches: leaf count out of range": InvalidArgument,
        "batches: leaf is valid": InvalidArgument,
        "batches: leaf not in batch": InvalidArgument,
        "batches: leaves delivered out of order": InvalidState,
        "batches: leaves do not rebuild the root": InvalidArgument,
        "batches: members differ": InvalidArgument,
        "batches: no such dispute": InvalidState,
        "batches: proof length wrong": InvalidArgument,
        "batches: receipt not signed by the relay": InvalidArgument,
        "batches: relay was caught in this round": NotAuthorized,
        "batches: round already has a batch": InvalidState,
        "batches: same position": InvalidArgument,
        "batches: signer is not a trainer": InvalidArgument,
        "batches: unknown batch": InvalidArgument,
        "batches: zero consortium address": InvalidArgument,
        "batches: zero leaves blob": InvalidArgument,
        "batches: zero root": InvalidArgument,
        "batches: zero task address": InvalidArgument,
        "batches: zero window": InvalidArgument,
        # Incentives.vy
        "incentives: a validator accepted the update": InvalidState,
        "incentives: already posted": InvalidState,
        "incentives: caller did not score the round": NotAuthorized,
        "incentives: caller is not a member": NotAuthorized,
        "incentives: caller is not a scorer of the update": NotAuthorized,
        "incentives: caller is not an admin": NotAuthorized,
        "incentives: caller is not the creator": NotAuthorized,
        "incentives: contribution out of range": InvalidArgument,
        "incentives: contribution window closed": DeadlinePassed,
        "incentives: contribution window open": InvalidState,
        "incentives: dispute window open": InvalidState,
        "incentives: end already recorded": InvalidState,
        "incentives: indices and values differ in length": InvalidArgument,
        "incentives: indices not increasing": InvalidArgument,
        "incentives: native value sent to a token pool": InvalidArgument,
        "incentives: no stake": InvalidState,
        "incentives: no task bound": InvalidState,
        "incentives: nothing to claim": InvalidState,
        "incentives: own update": InvalidArgument,
        "incentives: round already settled": InvalidState,
        "incentives: round not finalized": InvalidState,
        "incentives: slash share out of range": InvalidArgument,
        "incentives: task already bound": InvalidState,
        "incentives: task does not name this contract": InvalidArgument,
        "incentives: task ended": InvalidState,
        "incentives: task has no round limit": InvalidState,
        "incentives: task not ended": InvalidState,
        "incentives: task of another consortium": InvalidArgument,
        "incentives: token transfer failed": InvalidState,
        "incentives: unknown update": InvalidArgument,
        "incentives: update accepted": InvalidState,
        "incentives: update already slashed": InvalidState,
        "incentives: update not accepted": InvalidArgument,
        "incentives: update not scored": InvalidState,
        "incentives: validation not closed": InvalidState,
        "incentives: validator already slashed for this record": InvalidState,
        "incentives: validator did not score the round": InvalidArgument,
        "incentives: validator not distrusted": InvalidState,
        "incentives: value differs from amount": InvalidArgument,
        "incentives: zero amount": InvalidArgument,
        "incentives: zero contribution window": InvalidArgument,
        "incentives: zero task address": InvalidArgument,
        # TrainingTask.vy (and the modules it is built from)
        "task: accepted set does not match validation": InvalidArgument,
        "task: accepted set names unknown updates": InvalidArgument,
        "task: aggregation deadline passed": DeadlinePassed,
        "task: aggregation phase still running": InvalidState,
        "task: all rounds done": InvalidState,
        "task: already in that pause state": InvalidState,
        "task: bad parameter bounds": InvalidArgument,
        "task: caller is not on the check committee": NotAuthorized,
        "task: caller is not the consortium": NotAuthorized,
        "task: check committee size out of range": InvalidArgument,
        "task: check deadline passed": DeadlinePassed,
        "task: check phase still running": InvalidState,
        "task: malformed governed call": InvalidArgument,
        "task: not a governed function": InvalidArgument,
        "task: outcome already posted": InvalidState,
        "task: parameter bounded twice": InvalidArgument,
        "task: parameter not mutable": InvalidArgument,
        "task: parameter outside its own bounds": InvalidArgument,
        "task: paused": InvalidState,
        "task: round not in masked checks": InvalidState,
        "task: unknown parameter": InvalidArgument,
        "task: value outside mutable bounds": InvalidArgument,
        "task: already committed": InvalidState,
        "task: already proposed": InvalidState,
        "task: already scored": InvalidState,
        "task: caller is not a member": NotAuthorized,
        "task: caller is not a trainer": NotAuthorized,
        "task: caller is not a validator": NotAuthorized,
        "task: caller is not a validator or aggregator": NotAuthorized,
        "task: caller is not an admin": NotAuthorized,
        "task: caller is not an aggregator": NotAuthorized,
        "task: caller is not an aggregator or admin": NotAuthorized,
        "task: commit deadline passed": DeadlinePassed,
        "task: commit phase still running": InvalidState,
        "task: committee size out of range": InvalidArgument,
        "task: approvals score plain updates only": InvalidState,
        "task: dataset not owned by sender": NotAuthorized,
        "task: empty reason": InvalidArgument,
        "task: indices and scores differ in length": InvalidArgument,
        "task: indices not increasing": InvalidArgument,
        "task: key deadline passed": DeadlinePassed,
        "task: key phase still running": InvalidState,
        "task: keys already advertised": InvalidState,
        "task: keys not advertised": InvalidState,
        "task: max disagreement out of range": InvalidArgument,
        "task: max rejection out of range": InvalidArgument,
        "task: min commitments out of range": InvalidArgument,
        "task: min mean score out of range": InvalidArgument,
        "task: min approvals out of range": InvalidArgument,
        "task: no masked input committed": InvalidState,
        "task: previous round not closed": InvalidState,
        "task: privacy budget exceeded": PrivacyBudgetRefused,
        "task: privacy spend decreased": InvalidArgument,
        "task: purpose not allowed for dataset": PurposeRefused,
        "task: reputation needs scored rounds": InvalidState,
        "task: round full": InvalidState,
        "task: round not finalized": InvalidState,
        "task: round not in aggregation": InvalidState,
        "task: round not in key exchange": InvalidState,
        "task: round not in share distribution": InvalidState,
        "task: round not in unmasking": InvalidState,
        "task: round not in validation": InvalidState,
        "task: round not open": InvalidState,
        "task: score out of range": InvalidArgument,
        "task: secagg threshold out of range": InvalidArgument,
        "task: share deadline passed": DeadlinePassed,
        "task: share phase still running": InvalidState,
        "task: shares already posted": InvalidState,
        "task: shares already revealed": InvalidState,
        "task: shares not posted": InvalidState,
        "task: threshold out of range": InvalidArgument,
        "task: too many validators": InvalidState,
        "task: stake needs scored rounds": InvalidState,
        "task: trainer distrusted": NotAuthorized,
        "task: trainer not staked": NotAuthorized,
        "task: trainer not listed for this round": InvalidState,
        "task: unknown update": InvalidArgument,
        "task: unmask deadline passed": DeadlinePassed,
        "task: unmask phase still running": InvalidState,
        "task: validation deadline passed": DeadlinePassed,
        "task: validation phase still running": InvalidState,
        "task: validator cannot score its own update": InvalidArgument,
        "task: validator distrusted": NotAuthorized,
        "task: validator not staked": NotAuthorized,
        "task: validator not drawn for this round": NotAuthorized,
        "task: validator not in the update's committee": NotAuthorized,
        "task: wrong round": InvalidState,
        "task: zero config hash": InvalidArgument,
        "task: zero duration": InvalidArgument,
        "task: zero examples": InvalidArgument,
        "task: zero hash": InvalidArgument,
        "task: zero model hash": InvalidArgument,
        "task: zero proposal quorum": InvalidArgument,
        "task: zero purpose": InvalidArgument,
    }
)
"""Each contract revert reason -> the error it raises."""

ERROR_SELECTOR = bytes.fromhex("08c379a0")
"""The 4-byte selector of ``Error(string)``, the ABI encoding of a revert reason."""
# How nodes and web3 prefix a reason: geth, anvil and web3 send "execution reverted: <reason>", some anvil versions
# add "revert: " inside it, ganache-style nodes send "revert <reason>". Stripped as often as they nest.
_PREFIXES = ("execution reverted:", "revert:", "revert ")
_BARE = "execution reverted"  # a revert without a reason


def revert_error(reason: str, *, function: str | None = None) -> ContractRevert:
    """The typed error for a contract's revert ``reason`` (already unwrapped by :func:`clean_revert_reason`)."""
    return REVERT_CLASSES.get(reason, ContractRevert)(reason, function=function)


def clean_revert_reason(exc: BaseException | str) -> str:
    """The contract's own revert string from a backend's error, or from a node's error message.

    The ABI-encoded ``Error(string)`` a JSON-RPC node returns is decoded when present, since it is exact whatever
    the node's wording; otherwise the message is unwrapped. A revert without a reason gives ``""``.
    """
    if not isinstance(exc, str):
        decoded = decode_error_string(getattr(exc, "data", None))
        if decoded is not None:
            return decoded
    # web3's ContractLogicError keeps the node's message in .message (its str() also shows the data).
    message = exc if isinstance(exc, str) else str(getattr(exc, "message", None) or exc)
    return _unwrap(message)


def _unwrap(message: str) -> str:
    text = message.strip()
    while True:
        if text == _BARE:
            return ""
        prefix = next((p for p in _PREFIXES if text.startswith(p)), None)
        if prefix is None:
            break
        text = text[len(prefix) :].strip()
    raw = bytes_literal(text)
    if raw is None:
        return text
    # py-evm names revert data it could not decode as a bytes literal: an Error(string) it missed, or none.
    decoded = decode_error_string(raw)
    return decoded if decoded is not None else ""


def decode_error_string(data: object) -> str | None:
    """The reason in ABI-encoded ``Error(string)`` revert data (bytes or 0x-hex), else None."""
    if isinstance(data, str):
        try:
            data = bytes.fromhex(data.removeprefix("0x"))
        except ValueError:
            return None
    if not isinstance(data, bytes) or data[:4] != ERROR_SELECTOR:
        return None
    try:
        return str(abi.decode(["string"], data[4:])[0])
    except DecodingError:
        return None


def bytes_literal(text: str) -> bytes | None:
    """``b'...'`` as py-evm prints raw revert data, else None."""
    if not (text.startswith(("b'", 'b"')) and text.endswith(("'", '"'))):
        return None
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return value if isinstance(value, bytes) else None
