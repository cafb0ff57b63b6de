"""Every embedded chain has its own chain id, so a transaction signed for one is refused by every other.

The id is drawn at genesis and stored in the chain's database; a chain created before ids were stored
keeps eth-tester's fixed id. Served chains report their own id, and a workspace on one still finds
its faucet: it asks the node what it is (``web3_clientVersion``) instead of comparing ids.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3.exceptions import Web3RPCError

from fedledger.chain import Chain
from fedledger.chain.embedded import (
    EMBEDDED_CHAIN_ID,
    FAUCET_KEY,
    MAX_SAFE_CHAIN_ID,
    MIN_RANDOM_CHAIN_ID,
    new_chain_id,
)
from fedledger.chain.server import serve_chain
from fedledger.exceptions import ChainError
from fedledger.workspace import ChainSpec, Workspace

FAUCET: LocalAccount = Account.from_key(FAUCET_KEY.to_bytes())


def _transfer(chain_id: int, nonce: int, *, protected: bool = True) -> bytes:
    tx = {"to": "0x" + "22" * 20, "value": 1, "gas": 21_000, "gasPrice": 10**10, "nonce": nonce}
    if protected:
        tx["chainId"] = chain_id
    return bytes(FAUCET.sign_transaction(tx).raw_transaction)


def test_new_chain_ids_are_random_and_in_the_eip155_safe_range() -> None:
    ids = {new_chain_id() for _ in range(200)}
    assert len(ids) == 200 and EMBEDDED_CHAIN_ID not in ids
    assert all(MIN_RANDOM_CHAIN_ID <= i <= MAX_SAFE_CHAIN_ID for i in ids)
    assert MAX_SAFE_CHAIN_ID * 2 + 36 < 2**53  # a v value JavaScript numbers hold exactly


def test_two_fresh_workspaces_have_different_chain_ids_and_refuse_each_others_transactions(tmp_path: Path) -> None:
    with Workspace.create(tmp_path / "a", scrypt_n=2**4) as a, Workspace.create(tmp_path / "b", scrypt_n=2**4) as b:
        id_a, id_b = a.chain.chain_id, b.chain.chain_id
        assert id_a != id_b
        assert EMBEDDED_CHAIN_ID not in (id_a, id_b)
        member = Account.create()
        assert a.fund(member.address) and b.fund(member.address)  # each finds its faucet, whatever its id
        # Replay protection: the faucet's next transaction on A, signed for A, is refused by B.
        nonce_a = a.chain.w3.eth.get_transaction_count(FAUCET.address)
        nonce_b = b.chain.w3.eth.get_transaction_count(FAUCET.address)
        assert nonce_a == nonce_b
        signed_for_a = _transfer(id_a, nonce_a)
        with pytest.raises(Web3RPCError, match=f"signed for chain {id_a}, not {id_b}"):
            b.chain.w3.eth.send_raw_transaction(signed_for_a)
        with pytest.raises(Web3RPCError, match="replay-protected"):
            b.chain.w3.eth.send_raw_transaction(_transfer(id_b, nonce_b, protected=False))
        assert b.chain.w3.eth.get_transaction_count(FAUCET.address) == nonce_b  # nothing ran on B
        a.chain.w3.eth.send_raw_transaction(signed_for_a)  # and on A it is valid
        assert a.chain.w3.eth.get_transaction_count(FAUCET.address) == nonce_a + 1


def test_the_id_is_stored_with_the_chain_and_a_chain_without_one_keeps_the_old_id(tmp_path: Path) -> None:
    chain = Chain.embedded(tmp_path / "new")
    chain_id = chain.chain_id
    chain.close()
    reopened = Chain.embedded(tmp_path / "new")
    assert reopened.chain_id == chain_id
    reopened.close()
    # A chain created before ids were stored: its database holds no id.
    Chain.embedded(tmp_path / "old").close()
    with sqlite3.connect(tmp_path / "old" / "chain.sqlite") as db:
        assert db.execute("DELETE FROM kv WHERE k = ?", (b"fedledger:chain-id",)).rowcount == 1
    old = Chain.embedded(tmp_path / "old")
    try:
        assert old.chain_id == EMBEDDED_CHAIN_ID
        old.transfer(FAUCET, Account.create().address, 1)  # transactions signed for the old id still run
    finally:
        old.close()


def test_a_workspace_on_a_served_chain_finds_its_faucet_by_asking_the_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with serve_chain(tmp_path / "served", port=0) as server:
        ws = Workspace.create(tmp_path / "ws", chain=ChainSpec(kind="rpc", url=server.url), scrypt_n=2**4)
        with ws:
            assert ws.chain.chain_id == server.chain_id != EMBEDDED_CHAIN_ID
            assert ws.faucet() is not None and ws.faucet().address == FAUCET.address
            member = Account.create()
            assert ws.fund(member.address)
            assert ws.chain.balance(member.address) > 0
            # A node that is neither ours nor anvil gets no faucet.
            monkeypatch.setattr(type(ws.chain.w3), "client_version", property(lambda _: "Geth/v1.14.0"))
            assert ws.faucet() is None
        # A transaction signed for the served chain is refused by a fresh one.
        other = Chain.embedded(tmp_path / "other")
        try:
            with pytest.raises((Web3RPCError, ChainError), match="invalid chain id"):
                other.w3.eth.send_raw_transaction(_transfer(server.chain_id, 0))
        finally:
            other.close()
