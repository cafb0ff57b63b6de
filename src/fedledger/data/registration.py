"""Datasets on the ledger: register a protected table, check a purpose, erase a subject, trace lineage.

The pieces between the vault (:mod:`fedledger.data.vault`) and the DataRegistry contract
(:class:`fedledger.chain.registry.DataRegistryClient`):

* :func:`register_table` commits to a protected table (private values already replaced by vault
  references) with a salted RFC 9162 Merkle root, and registers it with its schema, classification,
  policy and purposes of processing; the salt and the subjects' vault pseudonyms stay in a local
  manifest (:class:`Registrations`), never on chain. With a :class:`~fedledger.data.lawful_basis.LawfulBasis` the
  policy document records the GDPR grounds of the processing; with a store, the classification and policy
  documents are published there under their SHA-256, the very hashes the chain holds, so an auditor's report
  (:mod:`fedledger.reports`) reads them back. With the data's declared goal
  (:class:`~fedledger.data.goal.Goal`) it also checks purpose and minimization (the goal's purpose is
  registered, and the table holds no column the purpose does not need) and records the goal's SHA-256.
* :func:`check_purpose` is the purpose-limitation gate (GDPR Art. 5(1)(b)) a member node runs before
  training for a task: it refuses a dataset that does not allow the task's purpose.
* :func:`erase_subject` destroys a subject's data key in the vault and records the erasure, under a
  keyed hash bound to each dataset, on the ledger for every dataset the subject was part of.
* :func:`build_lineage` / :func:`round_lineage` follow a finalized model back to its accepted updates
  and to the datasets they were trained on.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from web3.types import BlockIdentifier

from fedledger.chain.encoding import as_address, hex32
from fedledger.chain.registry import DataRegistryClient, DatasetInfo, Purpose, purpose_id, purpose_ids
from fedledger.chain.task import Phase, TrainingTaskClient, UpdateInfo
from fedledger.data.commitment import MerkleTree, canonical_document, document_hash, schema_hash
from fedledger.data.goal import Goal
from fedledger.data.lawful_basis import POLICY_KEY, LawfulBasis
from fedledger.data.vault import REFERENCE_PREFIX, ErasedSubject, ErasureReceipt, UnknownSubject, Vault
from fedledger.exceptions import BadInput, ConfigError, InvalidState, PurposeNotAllowed
from fedledger.identity.private import write_private
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_shallow

__all__ = [
    "DatasetLineage",
    "ErasureOutcome",
    "ModelLineage",
    "PurposeNotAllowed",
    "RegisteredDataset",
    "Registrations",
    "UpdateLineage",
    "build_lineage",
    "check_purpose",
    "erase_subject",
    "register_table",
    "round_lineage",
]


@dataclass(frozen=True)
class RegisteredDataset:
    """What the owner keeps about one registration (the salt is secret: it guards the root)."""

    registry: str
    dataset_id: int
    commitment: str
    schema_hash: str
    classification_hash: str
    policy_hash: str
    rows: int
    purposes: tuple[str, ...]
    salt: str
    subjects: tuple[str, ...] = field(default=(), repr=False)  # vault pseudonyms, not subject ids
    goal_hash: str = ""  # SHA-256 of the declared goal (fedledger.data.goal), when registered with one
    recipe_hash: str = ""  # the preparation recipe's hash (Recipe.hash), when registered with one

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["purposes"] = list(self.purposes)
        data["subjects"] = list(self.subjects)
        return data


class Registrations:
    """The owner's local manifest of its registrations (a JSON file beside the vault)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = loads_shallow(self.path.read_text(), what=str(self.path))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise ConfigError(f"{self.path}: not a registrations file: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: not a registrations file")
        return data

    @staticmethod
    def _key(registry: str, dataset_id: int) -> str:
        return f"{registry.lower()}:{dataset_id}"

    def add(self, registered: RegisteredDataset) -> None:
        data = self._load()
        data[self._key(registered.registry, registered.dataset_id)] = registered.to_json()
        # It holds each registration's Merkle salt, which guards the committed root: owner-only, written atomically.
        write_private(self.path, json.dumps(data, indent=1, sort_keys=True))

    def get(self, registry: str, dataset_id: int) -> RegisteredDataset | None:
        entry = self._load().get(self._key(registry, dataset_id))
        return None if entry is None else _registered_from_json(entry)

    def all(self, registry: str | None = None) -> list[RegisteredDataset]:
        entries = [_registered_from_json(e) for e in self._load().values()]
        return [e for e in entries if registry is None or e.registry.lower() == registry.lower()]

    def containing(self, registry: str, subject_ref: str) -> list[int]:
        """Ids of this registry's datasets that hold the subject with vault pseudonym ``subject_ref``."""
        return sorted(e.dataset_id for e in self.all(registry) if subject_ref in e.subjects)


def _registered_from_json(entry: Mapping[str, Any]) -> RegisteredDataset:
    try:
        return RegisteredDataset(
            **{**entry, "purposes": tuple(entry["purposes"]), "subjects": tuple(entry.get("subjects", ()))}
        )
    except (TypeError, KeyError) as exc:
        raise ConfigError(f"malformed registration entry: {exc}") from exc


def _subjects_of(protected: pd.DataFrame) -> tuple[str, ...]:
    refs: set[str] = set()
    for column in protected.columns:
        series = protected[column]
        if series.dtype == object:
            refs.update(
                v[len(REFERENCE_PREFIX) :] for v in series if isinstance(v, str) and v.startswith(REFERENCE_PREFIX)
            )
    return tuple(sorted(refs))


def register_table(
    registry: DataRegistryClient,
    protected: pd.DataFrame,
    *,
    purposes: Sequence[str],
    classification: Any,
    policy: Any,
    registrations: Registrations | None = None,
    salt: bytes | None = None,
    goal: Goal | None = None,
    recipe_hash: str = "",
    lawful_basis: LawfulBasis | None = None,
    store: BlobStore | None = None,
) -> RegisteredDataset:
    """Register ``protected`` (a table whose private values are vault references) as a dataset
    owned by ``registry``'s account; returns what the owner keeps (also added to ``registrations``).

    ``classification`` and ``policy`` are JSON documents (or raw bytes) committed to by hash. With the
    data's ``goal``, its purpose must be among ``purposes`` and the table must hold only the columns the
    purpose needs (``data protect`` with the goal drops the others); its hash is recorded. ``recipe_hash``: the
    preparation recipe the data is prepared with (committed inside ``policy`` by the caller), kept in the manifest.
    ``lawful_basis``: recorded in the policy document under ``"gdpr"`` with the purposes' names (a policy given as
    raw bytes is wrapped: ``{"policy": {"sha256": ...}, "gdpr": ...}``). ``store``: where the classification and
    policy documents are published (canonical JSON, so their blob ids are the hashes registered).
    """
    if not isinstance(protected, pd.DataFrame) or protected.empty:
        raise BadInput("register_table needs a non-empty table")
    ids = purpose_ids(list(purposes))  # refuse bad purposes before any hashing or sending
    if goal is not None:
        origin = f" (goal {goal.source})" if goal.source else ""
        if goal.purpose not in purposes:
            raise BadInput(
                f"the goal's purpose {goal.purpose!r}{origin} is not among the purposes registered: "
                f"{', '.join(map(repr, purposes))}"
            )
        extra = [str(c) for c in protected.columns if c not in goal.columns]
        if extra:
            raise BadInput(
                f"column(s) {', '.join(map(repr, extra))} are not needed for {goal.purpose!r}{origin}: protect "
                "the table with its goal first (data minimization), then register the protected table"
            )
    if lawful_basis is not None:
        policy = _with_lawful_basis(policy, lawful_basis, purposes)
    salt = secrets.token_bytes(32) if salt is None else salt
    tree = MerkleTree.from_table(protected, salt=salt)
    fields = {
        "commitment": tree.root,
        "schema_hash": schema_hash(protected),
        "classification_hash": document_hash(classification),
        "policy_hash": document_hash(policy),
    }
    if store is not None:
        for document in (classification, policy):
            store.put(document if isinstance(document, bytes) else canonical_document(document))
    dataset_id = registry.register_dataset(**fields, purposes=ids, rows=tree.size)
    registered = RegisteredDataset(
        registry=registry.address,
        dataset_id=dataset_id,
        **{k: hex32(v) for k, v in fields.items()},
        rows=tree.size,
        purposes=tuple(purposes),
        salt=salt.hex(),
        subjects=_subjects_of(protected),
        goal_hash=goal.digest if goal is not None else "",
        recipe_hash=recipe_hash,
    )
    if registrations is not None:
        registrations.add(registered)
    return registered


def _with_lawful_basis(policy: Any, basis: LawfulBasis, purposes: Sequence[str]) -> dict[str, Any]:
    if not isinstance(policy, Mapping | bytes):
        raise BadInput("a policy recording a lawful basis must be a JSON object or raw bytes")
    body = dict(policy) if isinstance(policy, Mapping) else {"policy": {"sha256": document_hash(policy).hex()}}
    body[POLICY_KEY] = basis.to_json(purposes)
    return body


# -- purpose limitation ---------------------------------------------------------------------------


def check_purpose(
    registry: DataRegistryClient, dataset_id: int, purpose: Purpose, *, block: BlockIdentifier = "latest"
) -> None:
    """Refuse (:class:`PurposeNotAllowed`) to process dataset ``dataset_id`` for ``purpose`` unless
    the registry shows it active and allowing that purpose."""
    if registry.allows(dataset_id, purpose, block=block):
        return
    name = purpose if isinstance(purpose, str) else hex32(purpose)
    if not 1 <= dataset_id <= registry.dataset_count:
        raise PurposeNotAllowed(f"dataset {dataset_id} is not registered in the data registry {registry.address}")
    info = registry.dataset(dataset_id, block=block)
    if not info.active:
        raise PurposeNotAllowed(f"dataset {dataset_id} was revoked by its owner {info.owner}: it allows no purpose")
    raise PurposeNotAllowed(
        f"dataset {dataset_id} does not allow the purpose {name!r} (purpose id {hex32(purpose_id(purpose))}); "
        f"its owner has registered {len(info.purposes)} other purpose(s)"
    )


# -- erasure --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureOutcome:
    receipt: ErasureReceipt
    recorded: tuple[tuple[int, str], ...]  # (dataset id, transaction hash) recorded now
    already_recorded: tuple[int, ...]  # datasets whose erasure record was already on the ledger

    def to_json(self) -> dict[str, Any]:
        return {
            "receipt": self.receipt.to_json(),
            "recorded": [{"dataset_id": d, "tx_hash": tx} for d, tx in self.recorded],
            "already_recorded": list(self.already_recorded),
        }


def erase_subject(
    vault: Vault,
    subject: str,
    *,
    registry: DataRegistryClient | None = None,
    registrations: Registrations | None = None,
    dataset_ids: Sequence[int] | None = None,
) -> ErasureOutcome:
    """Erase ``subject`` from the vault (crypto-shredding) and record it on the ledger.

    The datasets are ``dataset_ids``, else every registration in ``registrations`` holding the
    subject. Everything that can be checked is checked first (ownership, that the subject is
    known), so a refusal changes nothing. A subject erased locally whose ledger records did not all
    go through (e.g. the node was down) is completed on a second call; a subject already erased
    everywhere raises :class:`ErasedSubject`, one the vault never held :class:`UnknownSubject`.
    """
    ref = vault.subject_ref(subject)
    targets: list[int] = []
    if registry is not None:
        if registry.account is None:
            raise BadInput("the registry client has no account to record the erasure with")
        if dataset_ids is not None:
            targets = sorted(set(dataset_ids))
        elif registrations is not None:
            targets = registrations.containing(registry.address, ref)
        owner = as_address(registry.account.address)
        for dataset_id in targets:
            info = registry.dataset(dataset_id)
            if info.owner != owner:
                raise BadInput(f"dataset {dataset_id} is owned by {info.owner}, not by {owner}: it cannot record this")
    hashes = (
        {d: vault.erasure_hash(subject, registry=registry.address, dataset_id=d) for d in targets} if registry else {}
    )
    pending = [d for d in targets if registry is not None and not registry.is_erased(d, hashes[d])]
    if vault.is_erased(subject):
        if not pending:
            raise ErasedSubject("this subject was already erased from the vault and on the ledger")
        receipt = vault.receipt(subject)
    elif vault.has(subject):
        receipt = vault.erase(subject)
    else:
        raise UnknownSubject("the vault holds no values for this subject")
    recorded = []
    if registry is not None:  # pending is empty without a registry
        for dataset_id in pending:
            result = registry.record_erasure(dataset_id, hashes[dataset_id])
            recorded.append((dataset_id, result.tx_hash))
    return ErasureOutcome(
        receipt=receipt,
        recorded=tuple(recorded),
        already_recorded=tuple(d for d in targets if d not in pending),
    )


# -- lineage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetLineage:
    dataset_id: int
    commitment: str
    rows: int
    allowed: bool  # allowed the purpose when the update was committed


@dataclass(frozen=True)
class UpdateLineage:
    index: int
    member: str
    update_hash: str
    num_examples: int
    block_number: int
    datasets: tuple[DatasetLineage, ...]

    @property
    def compliant(self) -> bool:
        """Trained on at least one dataset, each allowing the purpose at commit time."""
        return bool(self.datasets) and all(d.allowed for d in self.datasets)


@dataclass(frozen=True)
class ModelLineage:
    """A finalized model -> its accepted updates -> the datasets behind each."""

    round_id: int
    model_hash: str
    purpose: str
    updates: tuple[UpdateLineage, ...]

    @property
    def compliant(self) -> bool:
        return all(u.compliant for u in self.updates)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["compliant"] = self.compliant
        for entry, update in zip(data["updates"], self.updates, strict=True):
            entry["compliant"] = update.compliant
        return data


def build_lineage(
    round_id: int,
    model_hash: str,
    purpose: str,
    updates: Sequence[UpdateInfo],
    datasets: Mapping[str, Sequence[DatasetInfo]],
    allowed: Mapping[tuple[int, int], bool],
) -> ModelLineage:
    """Lineage from its parts: ``datasets`` maps each committer to the datasets its update used,
    ``allowed[(dataset_id, block)]`` says whether a dataset allowed ``purpose`` at that block."""
    return ModelLineage(
        round_id=round_id,
        model_hash=model_hash,
        purpose=purpose,
        updates=tuple(
            UpdateLineage(
                index=u.index,
                member=u.member,
                update_hash=u.update_hash,
                num_examples=u.num_examples,
                block_number=u.block_number,
                datasets=tuple(
                    DatasetLineage(d.dataset_id, d.commitment, d.rows, allowed[(d.dataset_id, u.block_number)])
                    for d in datasets.get(u.member, ())
                ),
            )
            for u in updates
        ),
    )


def round_lineage(
    task: TrainingTaskClient,
    registry: DataRegistryClient,
    round_id: int,
    *,
    purpose: str,
    dataset_of: Mapping[str, Sequence[int]] | None = None,
) -> ModelLineage:
    """The lineage of round ``round_id``'s finalized model.

    ``dataset_of`` maps a committer to the dataset ids its update references; by default, the
    dataset its commitment names on chain, or (commitments naming none) every dataset the committer
    had registered by its commit block (allowed or not, so a violation shows).
    """
    info = task.round(round_id)
    if info.phase is not Phase.FINALIZED:
        raise InvalidState(f"round {round_id} is {info.phase.name.lower()}, not finalized: it has no model")
    accepted = [u for u in task.updates(round_id) if u.index in set(info.accepted)]
    datasets: dict[str, list[DatasetInfo]] = {}
    allowed: dict[tuple[int, int], bool] = {}
    for update in accepted:
        if dataset_of is not None:
            ids = list(dataset_of.get(update.member, ()))
        elif update.dataset_id:
            ids = [update.dataset_id]
        else:
            ids = registry.datasets_of(update.member, block=update.block_number)
        for dataset_id in ids:
            dataset = registry.dataset(dataset_id, block=update.block_number)
            if dataset.owner != update.member:
                raise BadInput(f"dataset {dataset_id} belongs to {dataset.owner}, not to committer {update.member}")
            datasets.setdefault(update.member, []).append(dataset)
            allowed[(dataset_id, update.block_number)] = registry.allows(dataset_id, purpose, block=update.block_number)
    return build_lineage(round_id, info.model_hash, purpose, accepted, datasets, allowed)
