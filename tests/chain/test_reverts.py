"""The revert table covers the contracts' reasons exactly, and every backend's wrapping unwraps to the reason.

The reasons are read from the Vyper sources (every ``.vy`` file under the contracts folder, at any depth), so a
reason added, reworded or removed in a contract fails here until ``fedledger.chain.reverts.REVERT_CLASSES`` says
which error it raises.
"""

from __future__ import annotations

import ast
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_abi import abi
from eth_tester.exceptions import TransactionFailed as EthTesterTransactionFailed
from web3.exceptions import ContractLogicError

import fedledger.chain
from fedledger.chain.reverts import ERROR_SELECTOR, REVERT_CLASSES, clean_revert_reason, revert_error
from fedledger.exceptions import (
    ContractRevert,
    DeadlinePassed,
    InvalidArgument,
    InvalidState,
    NotAuthorized,
    PrivacyBudgetExceeded,
    PrivacyBudgetRefused,
    PurposeNotAllowed,
    PurposeRefused,
)

CONTRACTS = Path(fedledger.chain.__file__).parent / "contracts"

# -- reading the reasons out of Vyper sources -----------------------------------------------------------------------


@dataclass
class Reasons:
    found: set[str]
    untraced: list[str]  # asserts whose message is neither a literal nor a parameter fed literals


def _statements(source: str) -> Iterator[list[tokenize.TokenInfo]]:
    """Logical lines (continuations and bracketed line breaks joined), without comments. Vyper is lexically Python."""
    line: list[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if line:
                yield line
            line = []
        elif token.type not in (tokenize.NL, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT):
            line.append(token)


def _top_level_split(tokens: list[tokenize.TokenInfo]) -> list[list[tokenize.TokenInfo]]:
    """``tokens`` split at the commas outside brackets."""
    parts: list[list[tokenize.TokenInfo]] = [[]]
    depth = 0
    for token in tokens:
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        if depth == 0 and token.type == tokenize.OP and token.string == ",":
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _literal(tokens: list[tokenize.TokenInfo]) -> str | None:
    if len(tokens) == 1 and tokens[0].type == tokenize.STRING:
        value = ast.literal_eval(tokens[0].string)
        return value if isinstance(value, str) else None
    return None


def _call_arguments(line: list[tokenize.TokenInfo], function: str) -> Iterator[list[list[tokenize.TokenInfo]]]:
    """The arguments of each ``<x>.<function>(...)`` call in a statement."""
    for i in range(1, len(line) - 1):
        if (line[i - 1].string, line[i].string, line[i + 1].string) != (".", function, "("):
            continue
        depth, j = 0, i + 1
        while True:
            depth += {"(": 1, ")": -1}.get(line[j].string, 0)
            if depth == 0:
                break
            j += 1
        yield _top_level_split(line[i + 2 : j])


def _parameter_names(line: list[tokenize.TokenInfo]) -> list[str]:
    """``def f(a: T, b: U = x) -> R:``: the parameter names, in order."""
    open_at = next(i for i, t in enumerate(line) if t.string == "(")
    depth, close_at = 0, open_at
    for close_at in range(open_at, len(line)):
        depth += {"(": 1, ")": -1}.get(line[close_at].string, 0)
        if depth == 0:
            break
    return [part[0].string for part in _top_level_split(line[open_at + 1 : close_at]) if part]


def revert_reasons(sources: list[str]) -> Reasons:
    """Every reason ``assert <cond>, "<reason>"`` and ``raise "<reason>"`` can revert with in ``sources``.

    An assert whose message is a parameter (``assert ok, message``) is followed to the calls of its function, whose
    literal arguments are its reasons.
    """
    found: set[str] = set()
    untraced: list[str] = []
    forwarded: dict[str, int] = {}  # function -> position of the parameter its assert reverts with
    statements = [line for source in sources for line in _statements(source)]
    function = ""
    parameters: list[str] = []
    for line in statements:
        head = line[0].string
        if head == "def":
            function, parameters = line[1].string, _parameter_names(line)
        elif head == "raise" and len(line) > 1:
            reason = _literal(line[1:])
            if reason is None:
                untraced.append(" ".join(t.string for t in line))
            else:
                found.add(reason)
        elif head == "assert":
            parts = _top_level_split(line[1:])
            message = parts[-1] if len(parts) > 1 else []
            reason = _literal(message)
            if reason is not None:
                found.add(reason)
            elif len(message) == 1 and message[0].string in parameters:
                forwarded[function] = parameters.index(message[0].string)
            else:
                untraced.append(" ".join(t.string for t in line))
    for function, position in forwarded.items():
        calls = [args for line in statements for args in _call_arguments(line, function)]
        if not calls:
            untraced.append(f"{function}: forwards a reason but is never called")
        for args in calls:
            # Vyper internal calls pass self-less positional arguments, so the position carries over.
            reason = _literal(args[position]) if position < len(args) else None
            if reason is None:
                untraced.append(f"{function}({' '.join(t.string for t in args[position])}): not a literal reason")
            else:
                found.add(reason)
    return Reasons(found, untraced)


@pytest.fixture(scope="module")
def contract_reasons() -> Reasons:
    sources = [path.read_text() for path in sorted(CONTRACTS.rglob("*.vy"))]
    assert sources, f"no .vy contracts under {CONTRACTS}"
    return revert_reasons(sources)


# -- the table against the contracts --------------------------------------------------------------------------------


def test_every_assert_in_the_contracts_has_a_readable_reason(contract_reasons: Reasons) -> None:
    assert contract_reasons.untraced == []


def test_every_contract_reason_is_in_the_table(contract_reasons: Reasons) -> None:
    missing = sorted(contract_reasons.found - set(REVERT_CLASSES))
    assert missing == [], "add these reasons to fedledger.chain.reverts.REVERT_CLASSES"


def test_every_table_entry_is_a_contract_reason(contract_reasons: Reasons) -> None:
    stale = sorted(set(REVERT_CLASSES) - contract_reasons.found)
    assert stale == [], "no contract reverts with these any more: remove them from REVERT_CLASSES"


def test_every_contract_contributes_reasons(contract_reasons: Reasons) -> None:
    prefixes = {reason.split(":")[0] for reason in contract_reasons.found}
    assert prefixes == {"consortium", "registry", "bulletin", "task", "incentives", "batches"}
    assert len(contract_reasons.found) > 100


def test_the_reader_finds_every_form_of_reason() -> None:
    source = """
@external
def f(x: uint256, note: String[64]):
    assert x > 0, "c: literal"  # a comment, "c: not a reason"
    assert x < 10 and \\
        x != 3, "c: continued"
    assert (
        x != 4
    ), "c: bracketed"
    self._check(x, 1, "c: forwarded")
    raise "c: raised"


@internal
def _check(x: uint256, y: uint256, message: String[64]):
    assert x != y, message
"""
    reasons = revert_reasons([source])
    assert reasons.found == {"c: literal", "c: continued", "c: bracketed", "c: forwarded", "c: raised"}
    assert reasons.untraced == []


def test_the_reader_reports_what_it_cannot_follow() -> None:
    source = """
@external
def f(x: uint256, note: String[64]):
    assert x > 0
    self._check(x, note)


@internal
def _check(x: uint256, message: String[64]):
    assert x != 0, message
"""
    assert len(revert_reasons([source]).untraced) == 2


# -- the mapping --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "cls"),
    [
        ("task: commit deadline passed", DeadlinePassed),
        ("task: round not open", InvalidState),
        ("task: caller is not a trainer", NotAuthorized),
        ("consortium: founder must be an admin", NotAuthorized),
        ("registry: zero rows", InvalidArgument),
        ("task: purpose not allowed for dataset", PurposeRefused),
        ("task: privacy budget exceeded", PrivacyBudgetRefused),
    ],
)
def test_a_reason_raises_its_class(reason: str, cls: type[ContractRevert]) -> None:
    error = revert_error(reason, function="commit")
    assert type(error) is cls
    assert error.reason == reason
    assert error.function == "commit"
    assert str(error) == f"{reason} in commit"


def test_domain_reverts_are_also_the_domain_errors() -> None:
    assert isinstance(revert_error("task: purpose not allowed for dataset"), PurposeNotAllowed)
    budget = revert_error("task: privacy budget exceeded")
    assert isinstance(budget, PrivacyBudgetExceeded)
    assert budget.member is None


@pytest.mark.parametrize(
    "reason",
    [
        "other: something refused",
        "task: commit deadline passed, and more",  # a table entry inside another reason is not that reason
        "caller is not an admin",
    ],
)
def test_an_unknown_reason_is_a_generic_revert_naming_it(reason: str) -> None:
    error = revert_error(reason, function="f")
    assert type(error) is ContractRevert
    assert error.reason == reason
    assert reason in str(error)


def test_a_revert_without_a_reason_says_so() -> None:
    error = revert_error("", function="f")
    assert type(error) is ContractRevert
    assert error.reason == ""
    assert str(error) == "the contract reverted without a reason in f"


# -- the wrappings ----------------------------------------------------------------------------------------------

REASON = "task: caller is not a trainer"
ENCODED = ERROR_SELECTOR + abi.encode(["string"], [REASON])


@pytest.mark.parametrize(
    "wrapped",
    [
        REASON,
        f"  {REASON}\n",
        f"execution reverted: {REASON}",  # geth, anvil, a served fedledger chain (JSON-RPC error message)
        f"execution reverted:{REASON}",
        f"execution reverted: revert: {REASON}",  # anvil's older wording
        f"revert {REASON}",  # ganache-style nodes
        EthTesterTransactionFailed(f"execution reverted: {REASON}"),  # the embedded chain's call and dry run
        EthTesterTransactionFailed(REASON),  # the embedded chain's refused raw transaction
        EthTesterTransactionFailed(repr(ENCODED)),  # py-evm's raw revert data, as a bytes literal
        ContractLogicError(f"execution reverted: {REASON}", data="0x" + ENCODED.hex()),  # web3 over JSON-RPC
        ContractLogicError("execution reverted", data="0x" + ENCODED.hex()),  # the data wins over the wording
    ],
    ids=lambda wrapped: f"{type(wrapped).__name__}:{wrapped!s:.50}",
)
def test_every_wrapping_unwraps_to_the_reason(wrapped: BaseException | str) -> None:
    assert clean_revert_reason(wrapped) == REASON
    assert type(revert_error(clean_revert_reason(wrapped))) is NotAuthorized


@pytest.mark.parametrize(
    "wrapped",
    [
        "execution reverted",
        "execution reverted: ",
        ContractLogicError("execution reverted", data="0x"),
        EthTesterTransactionFailed("b''"),
        EthTesterTransactionFailed("execution reverted: b'\\x01\\x02'"),  # raw data that is no Error(string)
    ],
    ids=lambda wrapped: f"{type(wrapped).__name__}:{wrapped!s:.50}",
)
def test_a_revert_without_a_reason_unwraps_to_nothing(wrapped: BaseException | str) -> None:
    assert clean_revert_reason(wrapped) == ""
