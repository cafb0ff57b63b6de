"""Search a whole ledger for personal values: the test that nothing personal went on chain.

:func:`scan_chain_for_values` reads, for every block in range, everything a transaction can leave
on chain and anyone can read back:

* **calldata** of every transaction (constructor arguments included): every value a contract can
  store verbatim arrives this way, and calldata stays in the chain's history forever;
* **event logs**: topics and data of every log of every receipt;
* **storage**: every slot value of every contract, read from the chain's own state:

  - embedded chain: the py-evm state trie at every block is walked, every account with storage and
    every leaf of its storage trie (complete: each slot at each block boundary; the embedded chain
    mines one block per transaction, so this is per transaction);
  - JSON-RPC node (anvil, geth, reth): ``debug_traceTransaction`` with the ``prestateTracer`` in
    diff mode gives every slot every transaction changed, with its new value, internal calls
    included (the node must expose the ``debug`` namespace; anvil does).

  Neither sees a value written and overwritten again inside one transaction; it is still in that
  transaction's calldata. A 32-byte storage word is matched against the value's first 32 bytes
  (strings are stored from a word boundary), so a value sitting mid-string across two words is
  found in calldata and logs, not in storage.

A value is looked for as its UTF-8 bytes and as the ASCII hex of those bytes (lower case), as a
substring of each field's bytes. Values shorter than :data:`MIN_VALUE_BYTES` are refused: they
would match by chance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import rlp
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from fedledger.chain.connection import Chain
from fedledger.exceptions import BadInput, ChainError

__all__ = ["MIN_VALUE_BYTES", "Finding", "scan_chain_for_values"]

MIN_VALUE_BYTES = 4


@dataclass(frozen=True)
class Finding:
    """One occurrence of a searched value on chain."""

    value: str
    encoding: str  # "utf-8" | "hex"
    where: str  # "calldata" | "log" | "storage"
    block_number: int
    address: str  # contract (log, storage) or recipient (calldata; "" for a deployment)
    tx_hash: str = ""  # "" for storage read from the embedded chain's state
    detail: str = ""  # log index, or storage slot (hashed slot key on the embedded chain)


@dataclass(frozen=True)
class _Needle:
    value: str
    encoding: str
    data: bytes


def _needles(values: Iterable[str]) -> list[_Needle]:
    needles = []
    for value in dict.fromkeys(values):
        if not isinstance(value, str):
            raise BadInput(f"values to scan for must be strings, got {type(value).__name__}")
        raw = value.encode("utf-8")
        if len(raw) < MIN_VALUE_BYTES:
            raise BadInput(f"value {value!r} is shorter than {MIN_VALUE_BYTES} bytes: it would match by chance")
        needles.append(_Needle(value, "utf-8", raw))
        needles.append(_Needle(value, "hex", raw.hex().encode("ascii")))
    return needles


def _search(needles: Sequence[_Needle], haystack: bytes, *, word: bool = False, **where: Any) -> Iterator[Finding]:
    for needle in needles:
        data = needle.data[:32] if word else needle.data
        if data in haystack:
            yield Finding(value=needle.value, encoding=needle.encoding, **where)


def scan_chain_for_values(
    chain: Chain, values: Iterable[str], *, from_block: int = 0, to_block: int | None = None
) -> list[Finding]:
    """Every occurrence of ``values`` in calldata, logs and storage of blocks ``from_block``..``to_block``."""
    needles = _needles(values)
    last = chain.block_number if to_block is None else int(to_block)
    findings: list[Finding] = []
    w3 = chain.w3
    seen_roots: set[bytes] = set()
    known: dict[bytes, str] = {}  # keccak(address) -> address, to name accounts found in the state trie
    for number in range(int(from_block), last + 1):
        block = w3.eth.get_block(number, full_transactions=True)
        for tx in block["transactions"]:
            if isinstance(tx, bytes | HexBytes):
                raise ChainError(f"block {number}: the node returned transaction hashes, not the transactions")
            tx_hash = HexBytes(tx["hash"]).to_0x_hex()
            to = to_checksum_address(tx["to"]) if tx.get("to") else ""
            findings += _search(
                needles, _calldata(tx), where="calldata", block_number=number, address=to, tx_hash=tx_hash
            )
            receipt = w3.eth.get_transaction_receipt(tx["hash"])
            for address in (to, receipt.get("contractAddress")):
                if address:
                    known[keccak(hexstr=address)] = to_checksum_address(address)
            for log in receipt["logs"]:
                haystack = b"".join(bytes(t) for t in log["topics"]) + bytes(log["data"])
                findings += _search(
                    needles,
                    haystack,
                    where="log",
                    block_number=number,
                    address=to_checksum_address(log["address"]),
                    tx_hash=tx_hash,
                    detail=f"log {int(log['logIndex'])}",
                )
            if chain.embedded_provider is None:  # a node (or the embedded chain's anvil engine): trace the writes
                findings += _scan_traced_storage(chain, needles, tx_hash, number)
        if chain.embedded_provider is not None:
            findings += _scan_embedded_storage(chain, needles, number, seen_roots, known)
    return findings


def _calldata(tx: Any) -> bytes:
    # Nodes name it "input"; eth-tester (the embedded chain) names it "data".
    for key in ("input", "data"):
        if key in tx:
            return bytes(HexBytes(tx[key]))
    raise ChainError(f"transaction {HexBytes(tx['hash']).to_0x_hex()} has no calldata field")


def _scan_traced_storage(chain: Chain, needles: Sequence[_Needle], tx_hash: str, number: int) -> list[Finding]:
    options = {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}}
    response = chain.w3.provider.make_request("debug_traceTransaction", [tx_hash, options])  # type: ignore[arg-type]
    if "error" in response or "result" not in response:
        raise ChainError(
            f"cannot read the storage written by {tx_hash}: the node does not answer debug_traceTransaction "
            f"with the prestateTracer ({response.get('error')}); storage coverage needs the debug API"
        )
    findings: list[Finding] = []
    for address, account in (response["result"].get("post") or {}).items():
        for slot, value in (account.get("storage") or {}).items():
            findings += _search(
                needles,
                bytes(HexBytes(value)).rjust(32, b"\0"),
                word=True,
                where="storage",
                block_number=number,
                address=to_checksum_address(address),
                tx_hash=tx_hash,
                detail=f"slot {slot}",
            )
    return findings


def _scan_embedded_storage(
    chain: Chain, needles: Sequence[_Needle], number: int, seen: set[bytes], known: dict[bytes, str]
) -> list[Finding]:
    from eth.rlp.accounts import Account
    from eth_typing import BlockNumber
    from trie.hexary import HexaryTrie
    from trie.iter import NodeIterator

    provider = chain.embedded_provider  # the embedded chain's own state database: no RPC reaches storage tries
    if provider is None:  # pragma: no cover - kind says embedded
        raise ChainError("the embedded chain's state is not reachable")
    evm = provider.backend.chain
    db = evm.chaindb.db
    header = evm.get_canonical_block_header_by_number(BlockNumber(number))
    findings: list[Finding] = []
    for address_hash, encoded in NodeIterator(HexaryTrie(db, header.state_root)).items():
        account = rlp.decode(encoded, sedes=Account)
        root = account.storage_root
        if root in seen or root == HexaryTrie.BLANK_NODE_HASH:
            continue
        seen.add(root)  # the same root holds the same slots: read each storage state once
        for slot_hash, value in NodeIterator(HexaryTrie(db, root)).items():
            findings += _search(
                needles,
                rlp.decode(value).rjust(32, b"\0"),
                word=True,
                where="storage",
                block_number=number,
                address=known.get(bytes(address_hash), f"account hash 0x{bytes(address_hash).hex()}"),
                detail=f"slot hash 0x{bytes(slot_hash).hex()}",
            )
    return findings
