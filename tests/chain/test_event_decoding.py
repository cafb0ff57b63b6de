"""Logs decode into typed records with eth-abi alone, from web3's receipts and from raw JSON-RPC answers alike."""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi.abi import default_codec
from eth_utils import event_abi_to_log_topic, to_checksum_address

from fedledger.chain.compiler import compile_contract
from fedledger.chain.events import Posted, PurposesChanged, decode_logs
from fedledger.exceptions import EventDecodeError

BULLETIN = "0x" + "ab" * 20
POSTER, TASK = "0x" + "12" * 20, "0x" + "34" * 20
TOPIC, BLOB = b"\x05" * 32, b"\x06" * 32
TX = b"\x11" * 32


def _event_abi(contract: str, name: str) -> Any:
    return next(e for e in compile_contract(contract).abi if e["type"] == "event" and e["name"] == name)


def _log(topics: list[bytes], data: bytes, *, hexed: bool = False) -> dict[str, Any]:
    """A log as web3 formats a receipt's (bytes), or as a node sends it over JSON-RPC (0x-hex)."""

    def form(value: bytes) -> bytes | str:
        return "0x" + value.hex() if hexed else value

    return {
        "address": BULLETIN,
        "topics": [form(t) for t in topics],
        "data": form(data),
        "blockNumber": 7,
        "transactionHash": form(TX),
        "logIndex": 3,
    }


def _posted_log(*, hexed: bool = False, drop_topic: bool = False) -> dict[str, Any]:
    abi = _event_abi("Bulletin", "Posted")
    topics = [
        event_abi_to_log_topic(abi),
        default_codec.encode(["address"], [TASK]),
        default_codec.encode(["uint256"], [9]),
        TOPIC,
    ]
    if drop_topic:
        topics.pop()
    return _log(topics, default_codec.encode(["address", "bytes32"], [POSTER, BLOB]), hexed=hexed)


@pytest.mark.parametrize("hexed", [False, True], ids=["receipt", "json-rpc"])
def test_indexed_and_data_fields_decode_into_a_record(hexed: bool) -> None:
    (record,) = decode_logs("Bulletin", [_posted_log(hexed=hexed)], default_codec)
    assert record == Posted(
        contract=to_checksum_address(BULLETIN),
        block_number=7,
        tx_hash="0x" + TX.hex(),
        log_index=3,
        poster=to_checksum_address(POSTER),
        task=to_checksum_address(TASK),
        round_id=9,
        topic="0x" + TOPIC.hex(),
        blob_hash="0x" + BLOB.hex(),
    )


def test_arrays_decode_as_tuples() -> None:
    abi = _event_abi("DataRegistry", "PurposesChanged")
    old, new = [b"\x01" * 32], [b"\x02" * 32, b"\x03" * 32]
    data = default_codec.encode(["bytes32[]", "bytes32[]"], [old, new])
    (record,) = decode_logs(
        "DataRegistry",
        [_log([event_abi_to_log_topic(abi), default_codec.encode(["uint256"], [4])], data)],
        default_codec,
    )
    assert isinstance(record, PurposesChanged)
    assert record.dataset_id == 4
    assert record.old_purposes == ("0x" + "01" * 32,)
    assert record.purposes == ("0x" + "02" * 32, "0x" + "03" * 32)


def test_logs_of_other_events_are_skipped() -> None:
    anonymous = _log([], b"")
    foreign = _log([b"\x99" * 32], b"")
    assert decode_logs("Bulletin", [anonymous, foreign], default_codec) == []


def test_a_log_that_does_not_match_its_event_is_refused() -> None:
    with pytest.raises(EventDecodeError, match="Posted: 2 indexed topics, its ABI has 3"):
        decode_logs("Bulletin", [_posted_log(drop_topic=True)], default_codec)
