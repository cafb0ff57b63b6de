"""Typed client for the Bulletin contract: the consortium's auditable noticeboard.

An active member posts the hash of a blob (kept in the content-addressed store) under a
task, a round and a topic, once per (task, round, topic, poster). Topics are named by short
canonical strings (``metrics``) and stored on chain as the keccak256 of the name
(:func:`topic_id`), as purposes are in the DataRegistry. The first topic is
:data:`METRICS_TOPIC`: each member's evaluation of a round's global model
(:mod:`fedledger.federation.evaluation`).
"""

from __future__ import annotations

from eth_account.signers.local import LocalAccount

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.encoding import ZERO_HASH, as_address, as_bytes32, hex32, name_id
from fedledger.chain.events import Posted
from fedledger.exceptions import BadInput

__all__ = ["METRICS_TOPIC", "BulletinClient", "Topic", "topic_id"]

METRICS_TOPIC = "metrics"

# A topic given by its canonical name, or by its 32-byte id.
Topic = str | bytes


def topic_id(topic: Topic) -> bytes:
    """The on-chain id of a topic: keccak256 of its canonical name (or the 32-byte id itself)."""
    return name_id(topic, what="topic", example="metrics")


class BulletinClient(ContractClient):
    """The Bulletin contract at ``address``, acting as ``account`` for writes."""

    NAME = "Bulletin"

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str) -> BulletinClient:
        """Create the bulletin of ``consortium`` (anyone may deploy one; only its active members post)."""
        address, _ = chain.deploy(account, cls.NAME, as_address(consortium, what="consortium address"))
        return cls(chain, address, account)

    @property
    def consortium_address(self) -> str:
        return str(self.chain.call(self.contract.functions.consortium()))

    def post(self, task: str, round_id: int, topic: Topic, blob_hash: str | bytes) -> TxResult:
        """Post ``blob_hash`` under (task, round, topic) as this client's account (once; a member only)."""
        return self._send(
            self.contract.functions.post(
                as_address(task, what="task address"),
                _uint(round_id, "round id"),
                topic_id(topic),
                as_bytes32(blob_hash, what="blob hash"),
            )
        )

    def posted(self, task: str, round_id: int, topic: Topic, poster: str) -> str | None:
        """The blob hash ``poster`` posted under (task, round, topic) as 0x-hex; None when it posted none."""
        raw = self.chain.call(
            self.contract.functions.posted(
                as_address(task, what="task address"),
                _uint(round_id, "round id"),
                topic_id(topic),
                as_address(poster, what="poster address"),
            )
        )
        value = hex32(raw)
        return None if value == ZERO_HASH else value

    def posts(
        self, task: str, round_id: int | None = None, topic: Topic | None = None, *, from_block: int = 0
    ) -> list[Posted]:
        """The posts about ``task`` (optionally one round and one topic), in chain order."""
        task_address = as_address(task, what="task address")
        wanted_topic = hex32(topic_id(topic)) if topic is not None else None
        if round_id is not None:
            _uint(round_id, "round id")
        return [
            event
            for event in self.events(from_block=from_block)
            if isinstance(event, Posted)
            and event.task == task_address
            and (round_id is None or event.round_id == round_id)
            and (wanted_topic is None or event.topic == wanted_topic)
        ]


def _uint(value: int, what: str) -> int:
    """A uint256 argument; :class:`BadInput` otherwise (nothing is sent)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
    return value
