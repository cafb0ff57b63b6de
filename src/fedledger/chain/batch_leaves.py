"""Signed commitments of a batched round and the Merkle tree the CommitmentBatches contract checks.

A trainer signs its commitment as EIP-712 typed data (:func:`sign_commitment`, through eth-account's
``encode_typed_data``) under the domain ``fedledger-batches`` / ``1`` bound to the chain id and the batch
contract's address, so a signature counts for one contract on one chain only. The relay answers with a signed
receipt of the leaf (:func:`sign_receipt`, the same domain), the trainer's evidence if the leaf goes missing.

The tree matches the contract exactly: leaves in index order, padded with zero leaves to a power of two; a leaf is
``keccak256(0x00 ++ digest ++ keccak256(signature))`` and an inner node ``keccak256(0x01 ++ left ++ right)``, so no
inner node passes for a leaf and no signature can be swapped under a listed commitment. A proof is the list of
sibling hashes from the leaf up, one per level; its length is fixed by the leaf count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature, ValidationError
from eth_utils import keccak, to_checksum_address

from fedledger.chain.encoding import as_address, as_bytes32, hex32
from fedledger.exceptions import BadInput

__all__ = [
    "DOMAIN_NAME",
    "DOMAIN_VERSION",
    "MAX_DEPTH",
    "BatchDomain",
    "Commitment",
    "MerkleTree",
    "SignedCommitment",
    "commitment_digest",
    "depth_for",
    "leaf_hash",
    "receipt_signer",
    "recover_signer",
    "root_from_proof",
    "sign_commitment",
    "sign_receipt",
]

DOMAIN_NAME = "fedledger-batches"
DOMAIN_VERSION = "1"
MAX_DEPTH = 20
# secp256k1 order / 2: the contract counts a signature with a larger s (its malleable twin, EIP-2) as forged.
_HALF_ORDER = 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0
_EMPTY_LEAF = bytes(32)

_TYPES: dict[str, list[dict[str, str]]] = {
    "EIP712Domain": [
        {"name": "name", "type": "string"},
        {"name": "version", "type": "string"},
        {"name": "chainId", "type": "uint256"},
        {"name": "verifyingContract", "type": "address"},
    ],
    "Commitment": [
        {"name": "task", "type": "address"},
        {"name": "round", "type": "uint256"},
        {"name": "member", "type": "address"},
        {"name": "updateHash", "type": "bytes32"},
        {"name": "numExamples", "type": "uint256"},
        {"name": "datasetId", "type": "uint256"},
        {"name": "epsilonMicro", "type": "uint256"},
    ],
    "Receipt": [{"name": "leaf", "type": "bytes32"}],
}


@dataclass(frozen=True)
class BatchDomain:
    """The EIP-712 domain of one CommitmentBatches contract on one chain."""

    chain_id: int
    contract: str

    def to_typed(self) -> dict[str, Any]:
        return {
            "name": DOMAIN_NAME,
            "version": DOMAIN_VERSION,
            "chainId": self.chain_id,
            "verifyingContract": to_checksum_address(self.contract),
        }


@dataclass(frozen=True)
class Commitment:
    """What a trainer commits to in a batched round (hashes as 0x-hex, addresses checksummed)."""

    task: str
    round_id: int
    member: str
    update_hash: str
    num_examples: int
    dataset_id: int = 0
    epsilon_micro: int = 0  # the trainer's cumulative privacy spend after this update (tasks with a budget)

    @classmethod
    def of(
        cls,
        *,
        task: str,
        round_id: int,
        member: str,
        update_hash: str | bytes,
        num_examples: int,
        dataset_id: int = 0,
        epsilon_micro: int = 0,
    ) -> Commitment:
        """A checked commitment; :class:`BadInput` for a malformed field."""
        fields = (
            ("round id", round_id),
            ("example count", num_examples),
            ("dataset id", dataset_id),
            ("declared micro-epsilon", epsilon_micro),
        )
        for what, value in fields:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
                raise BadInput(f"malformed {what}: expected a non-negative integer, got {value!r}")
        return cls(
            task=as_address(task, what="task address"),
            round_id=round_id,
            member=as_address(member, what="member address"),
            update_hash=hex32(as_bytes32(update_hash, what="update hash")),
            num_examples=num_examples,
            dataset_id=dataset_id,
            epsilon_micro=epsilon_micro,
        )

    def as_tuple(self) -> tuple[str, int, str, bytes, int, int, int]:
        """The contract's ``Commitment`` struct argument."""
        return (
            self.task,
            self.round_id,
            self.member,
            as_bytes32(self.update_hash),
            self.num_examples,
            self.dataset_id,
            self.epsilon_micro,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "round": self.round_id,
            "member": self.member,
            "update_hash": self.update_hash,
            "num_examples": self.num_examples,
            "dataset_id": self.dataset_id,
            "epsilon_micro": self.epsilon_micro,
        }

    @classmethod
    def from_json(cls, data: Any) -> Commitment:
        if not isinstance(data, dict):
            raise BadInput(f"a commitment is a JSON object, got {type(data).__name__}")
        try:
            return cls.of(
                task=data["task"],
                round_id=data["round"],
                member=data["member"],
                update_hash=data["update_hash"],
                num_examples=data["num_examples"],
                dataset_id=data.get("dataset_id", 0),
                epsilon_micro=data.get("epsilon_micro", 0),
            )
        except KeyError as exc:
            raise BadInput(f"a commitment lacks its {exc.args[0]!r} field") from None


@dataclass(frozen=True)
class SignedCommitment:
    """A commitment with its trainer's 65-byte signature (r ++ s ++ v)."""

    commitment: Commitment
    signature: bytes

    @property
    def signature_hash(self) -> bytes:
        return keccak(self.signature)

    def leaf(self, domain: BatchDomain) -> bytes:
        return leaf_hash(commitment_digest(domain, self.commitment), self.signature_hash)

    def to_json(self) -> dict[str, Any]:
        return {**self.commitment.to_json(), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, data: Any) -> SignedCommitment:
        commitment = Commitment.from_json(data)
        text = data.get("signature")
        if not isinstance(text, str):
            raise BadInput("a signed commitment lacks its 'signature' (0x-hex)")
        try:
            signature = bytes.fromhex(text.removeprefix("0x"))
        except ValueError:
            raise BadInput(f"malformed signature {text!r}: not hex") from None
        return cls(commitment, signature)


def _typed(domain: BatchDomain, primary: str, message: dict[str, Any]) -> SignableMessage:
    types = {name: _TYPES[name] for name in ("EIP712Domain", primary)}
    return encode_typed_data(
        full_message={"types": types, "primaryType": primary, "domain": domain.to_typed(), "message": message}
    )


def _commitment_message(domain: BatchDomain, c: Commitment) -> SignableMessage:
    message = {
        "task": c.task,
        "round": c.round_id,
        "member": c.member,
        "updateHash": as_bytes32(c.update_hash),
        "numExamples": c.num_examples,
        "datasetId": c.dataset_id,
        "epsilonMicro": c.epsilon_micro,
    }
    return _typed(domain, "Commitment", message)


def _digest_of(message: SignableMessage) -> bytes:
    """The EIP-712 digest ``keccak256(0x19 ++ 0x01 ++ domain separator ++ struct hash)`` a signature covers."""
    return keccak(b"\x19" + message.version + message.header + message.body)


def commitment_digest(domain: BatchDomain, commitment: Commitment) -> bytes:
    """The digest a trainer signs for ``commitment`` (what the contract's ``commitment_digest`` returns)."""
    return _digest_of(_commitment_message(domain, commitment))


def leaf_hash(digest: bytes, signature_hash: bytes) -> bytes:
    """A tree leaf: ``keccak256(0x00 ++ digest ++ keccak256(signature))``."""
    return keccak(b"\x00" + digest + signature_hash)


def _node(left: bytes, right: bytes) -> bytes:
    return keccak(b"\x01" + left + right)


def sign_commitment(account: LocalAccount, domain: BatchDomain, commitment: Commitment) -> SignedCommitment:
    """``account`` (the trainer named in ``commitment``) signs it; :class:`BadInput` for anyone else."""
    if account.address != commitment.member:
        raise BadInput(f"{account.address} cannot sign a commitment of {commitment.member}")
    signed = account.sign_message(_commitment_message(domain, commitment))
    return SignedCommitment(commitment, bytes(signed.signature))


def _recover(message: SignableMessage, signature: bytes) -> str | None:
    """The signer, by the contract's rules: None for a malformed or malleable signature."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        return None
    s = int.from_bytes(signature[32:64], "big")
    if s == 0 or s > _HALF_ORDER:
        return None
    try:
        return str(Account.recover_message(message, signature=signature))
    except (BadSignature, ValidationError):  # an r off the curve: ecrecover's zero address, a forged signature
        return None


def recover_signer(domain: BatchDomain, signed: SignedCommitment) -> str | None:
    """Who signed ``signed``; None when its signature is malformed or malleable (the contract's zero address)."""
    return _recover(_commitment_message(domain, signed.commitment), signed.signature)


def sign_receipt(relay: LocalAccount, domain: BatchDomain, leaf: bytes) -> bytes:
    """The relay's signed acknowledgement that it received the signed commitment ``leaf``."""
    return bytes(relay.sign_message(_typed(domain, "Receipt", {"leaf": leaf})).signature)


def receipt_signer(domain: BatchDomain, leaf: bytes, receipt: bytes) -> str | None:
    """Who signed the receipt of ``leaf``; None when the receipt is malformed."""
    return _recover(_typed(domain, "Receipt", {"leaf": leaf}), receipt)


def depth_for(count: int) -> int:
    """Levels of a tree of ``count`` leaves (the proof length the contract requires)."""
    if not 1 <= count <= 1 << MAX_DEPTH:
        raise BadInput(f"a batch holds 1 to {1 << MAX_DEPTH} leaves, got {count}")
    return max(count - 1, 0).bit_length()


def root_from_proof(leaf: bytes, index: int, proof: Sequence[bytes]) -> bytes:
    """The root a proof leads to from ``leaf`` at ``index``."""
    node = leaf
    for sibling in proof:
        node = _node(node, sibling) if index % 2 == 0 else _node(sibling, node)
        index >>= 1
    return node


class MerkleTree:
    """The index-ordered tree of a batch's leaves, padded with zero leaves to a power of two."""

    def __init__(self, leaves: Sequence[bytes]) -> None:
        depth = depth_for(len(leaves))
        self.count = len(leaves)
        level = [bytes(leaf) for leaf in leaves] + [_EMPTY_LEAF] * ((1 << depth) - len(leaves))
        self.levels = [level]
        while len(level) > 1:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
            self.levels.append(level)

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def subtree_proof(self, first: int, levels: int) -> list[bytes]:
        """Sibling hashes from the subtree of ``2 ** levels`` leaves starting at ``first`` (a multiple of that size)
        up to the root: what shows a chunk of leaves in the tree."""
        if not (0 <= first < self.count and first % (1 << levels) == 0 and levels < len(self.levels)):
            raise BadInput(f"no aligned subtree of {1 << levels} leaves starts at leaf {first}")
        index, siblings = first >> levels, []
        for level in self.levels[levels:-1]:
            siblings.append(level[index ^ 1])
            index >>= 1
        return siblings

    def proof(self, index: int) -> list[bytes]:
        """Sibling hashes from leaf ``index`` up to the root."""
        if not 0 <= index < self.count:
            raise BadInput(f"leaf index {index} out of range (the batch has {self.count} leaves)")
        siblings = []
        for level in self.levels[:-1]:
            siblings.append(level[index ^ 1])
            index >>= 1
        return siblings
