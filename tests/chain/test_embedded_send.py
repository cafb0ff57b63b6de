"""The embedded chain runs a transaction once: a revert is refused unmined, a success is mined from that same run.

The client sends without a dry run; the chain executes the transaction in its pending block and either keeps that
execution (and mines it) or drops it and answers with the revert. These tests pin what a caller sees either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from fedledger.chain import Chain, ConsortiumClient, Role
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.exceptions import ChainError, NotAuthorized

ADMIN = Account.from_key("0x" + "a1" * 32)
OUTSIDER = Account.from_key("0x" + "b2" * 32)


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    with Chain.embedded(tmp_path / "chain") as chain:
        faucet = Account.from_key(FAUCET_KEY.to_bytes())
        for account in (ADMIN, OUTSIDER):
            chain.transfer(faucet, account.address, 10**21)
        yield chain


def _record_dry_runs(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every call or gas estimate the chain answers from now on (a client's dry run is one of them)."""
    provider = chain.embedded_provider
    if provider is None:
        raise AssertionError("expected an in-process embedded chain")
    dry_runs: list[str] = []
    for name in ("call", "estimate_gas"):
        original = getattr(provider.tester, name)

        def recording(*args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            dry_runs.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(provider.tester, name, recording)
    return dry_runs


def _evm_runs(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every transaction the EVM executes from now on, by hash, dry runs (calls) counted as 'call'."""
    provider = chain.embedded_provider
    if provider is None:
        raise AssertionError("expected an in-process embedded chain")
    runs: list[str] = []
    evm_chain = provider.backend.chain
    apply = evm_chain.apply_transaction

    def counting(transaction: Any) -> Any:
        runs.append("0x" + bytes(transaction.hash).hex())
        return apply(transaction)

    monkeypatch.setattr(evm_chain, "apply_transaction", counting)
    return runs


def test_a_successful_transaction_runs_once_and_is_mined(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    consortium = ConsortiumClient.deploy(chain, ADMIN, org="Founder", roles=Role.ADMIN)
    dry_runs = _record_dry_runs(chain, monkeypatch)
    runs = _evm_runs(chain, monkeypatch)
    head = chain.block_number

    result = chain.transact(ADMIN, consortium.contract.functions.propose_threshold(1))

    assert runs == [result.tx_hash]  # one EVM run: no dry run, no re-execution when mined
    assert dry_runs == []
    assert result.block_number == head + 1 == chain.block_number
    assert result.receipt["status"] == 1


def test_a_revert_is_refused_with_its_reason_and_leaves_no_trace(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    consortium = ConsortiumClient.deploy(chain, ADMIN, org="Founder", roles=Role.ADMIN)
    head = chain.block_number
    nonce = chain.w3.eth.get_transaction_count(OUTSIDER.address)
    balance = chain.balance(OUTSIDER.address)
    runs = _evm_runs(chain, monkeypatch)

    with pytest.raises(NotAuthorized, match="consortium: caller is not an admin") as refused:
        chain.transact(OUTSIDER, consortium.contract.functions.propose_threshold(1))

    assert refused.value.function == "propose_threshold"
    assert len(runs) == 1  # refused from its only run
    assert chain.block_number == head  # nothing mined
    assert chain.w3.eth.get_transaction_count(OUTSIDER.address) == nonce  # no nonce used
    assert chain.balance(OUTSIDER.address) == balance  # no gas paid

    # The key's next transaction goes through with the nonce the refused one did not use.
    outsider_consortium = ConsortiumClient.deploy(chain, OUTSIDER, org="Other", roles=Role.ADMIN)
    assert chain.w3.eth.get_transaction_count(OUTSIDER.address) == nonce + 1
    assert outsider_consortium.threshold == 1


def test_a_refused_deploy_is_not_mined(chain: Chain) -> None:
    head = chain.block_number
    nonce = chain.w3.eth.get_transaction_count(ADMIN.address)
    # A founder without the admin role: the constructor reverts.
    with pytest.raises(NotAuthorized, match="consortium: founder must be an admin"):
        ConsortiumClient.deploy(chain, ADMIN, org="Founder", roles=Role.TRAINER)
    assert chain.block_number == head
    assert chain.w3.eth.get_transaction_count(ADMIN.address) == nonce


def test_a_block_filter_still_sees_each_mined_block(chain: Chain) -> None:
    consortium = ConsortiumClient.deploy(chain, ADMIN, org="Founder", roles=Role.ADMIN)
    blocks = chain.w3.eth.filter("latest")
    result = chain.transact(ADMIN, consortium.contract.functions.propose_threshold(1))
    assert [bytes(h) for h in blocks.get_new_entries()] == [bytes(result.receipt["blockHash"])]


def test_an_unfunded_sender_gets_a_chain_error_and_nothing_is_mined(chain: Chain) -> None:
    poor = Account.from_key("0x" + "c3" * 32)
    consortium = ConsortiumClient.deploy(chain, ADMIN, org="Founder", roles=Role.ADMIN)
    head = chain.block_number
    with pytest.raises(ChainError, match=f"the chain refused a transaction from {poor.address}"):
        chain.transact(poor, consortium.contract.functions.propose_threshold(1))
    assert chain.block_number == head
