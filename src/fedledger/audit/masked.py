"""The audit of secure rounds with masked checks: what can be re-checked, and what is trusted.

For each finalized round of a task with ``masked_checks``, from chain and store alone:

- every committed share bundle is in the store under its hash and is a bundle of its committer (its header);
- the outcome a strict majority of the round's check committee posted (``accepted_outcome``, and the digests
  each committee member posted, recomputed as the contract does) is in the store, for this task and round,
  screened exactly the committed bundles, with the task's check parameters;
- :func:`~fedledger.privacy.masked_committee.recheck_transcript` re-derives every verdict about shares from
  the published transcript (shares that do not reconstruct, bits that are not bits, and neither for a pass);
- the accepted set on chain is the set of members that passed in that outcome;
- the finalized model is the outcome's revealed sum applied to the round's starting model.

Trusted, not re-checkable without the shares: the pass bits of the norm and direction checks and the revealed sum
come out of the committee's MPC, and rest on an honest majority of the committee behaving honestly
(``docs/masked-checks.md``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from eth_abi.abi import encode
from eth_utils import keccak

from fedledger.chain.events import RoundFinalized, UpdateCommitted
from fedledger.chain.masked_task import accepted_words
from fedledger.chain.task import TrainingTaskClient, UpdateInfo
from fedledger.exceptions import FedLedgerError, StoreError
from fedledger.federation.config import TaskConfig
from fedledger.federation.masked_round import (
    accepted_mask_of,
    check_params,
    clip_center,
    masked_aggregate,
    read_outcome,
)
from fedledger.learning import ModelBlob
from fedledger.privacy.masked_checks import BUNDLE_FORMAT
from fedledger.privacy.masked_committee import recheck_transcript
from fedledger.store import BlobStore

__all__ = ["check_masked_bundle", "check_masked_finalized", "outcome_digest"]


def outcome_digest(accepted_mask: int, outcome_hash: str) -> str:
    """What the contract records for a committee member's outcome: keccak of the ABI-encoded set and hash."""
    encoded = encode(["uint256[4]", "bytes32"], [accepted_words(accepted_mask), bytes.fromhex(outcome_hash[2:])])
    return "0x" + keccak(encoded).hex()


def check_masked_bundle(store: BlobStore, e: UpdateCommitted, fail: Any, refuse: Any) -> None:
    """A committed share bundle is in the store under its hash and names its committer (nothing else about it is
    readable: its shares are encrypted to the committee)."""
    where = {"round_id": e.round_id, "member": e.member, "h": e.update_hash}
    try:
        data = store.get(e.update_hash.removeprefix("0x"))
    except StoreError as exc:
        fail(f"share bundle unavailable: {exc}", **where)
        return
    head = data.partition(b"\n")[0]
    try:
        header = json.loads(head)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != BUNDLE_FORMAT or header.get("member") != e.member:
        refuse("share bundle is malformed (the committee names it as malformed)", **where)


def check_masked_finalized(
    store: BlobStore,
    config: TaskConfig,
    task: TrainingTaskClient,
    event: RoundFinalized,
    start: ModelBlob,
    commits: list[UpdateCommitted],
    fail: Any,
) -> None:
    """Re-check a finalized masked round against its majority outcome (see the module docstring)."""
    r = event.round_id
    outcome_hash = task.accepted_outcome(r)
    if outcome_hash is None:
        fail("masked round finalized without an accepted committee outcome", round_id=r)
        return
    try:
        read = read_outcome(store.get(outcome_hash.removeprefix("0x")))
    except FedLedgerError as exc:
        fail(f"committee outcome unavailable or malformed: {exc}", round_id=r, h=outcome_hash)
        return
    updates = [
        UpdateInfo(r, c.index, c.member, c.update_hash, c.num_examples, c.block_number, c.dataset_id, c.epsilon_micro)
        for c in commits
    ]
    length = sum(int(a.size) for a in start.params.values())
    problems = []
    if (read.task.lower(), read.round_id) != (task.address.lower(), r):
        problems.append(f"the outcome is for task {read.task} round {read.round_id}")
    if read.bundles != {u.member: u.update_hash for u in updates}:
        problems.append("the outcome screened other bundles than the round's commitments")
    if read.params != check_params(config, length):
        problems.append(f"the outcome used check parameters {read.params.to_dict()}, the task's differ")
    problems += [f"transcript: {p}" for p in recheck_transcript(read.outcome, read.params)]
    mask = accepted_mask_of([m for m in read.outcome.passed if m in read.bundles], updates)
    if mask != task.round(r).accepted_mask:
        problems.append("the accepted set on chain is not the set that passed in the majority outcome")
    digest = outcome_digest(mask, outcome_hash)
    committee, posts = task.check_committee(r), task.check_posts(r)
    if 2 * sum(p == digest for p in posts) <= len(committee):
        problems.append("no strict majority of the check committee posted this outcome")
    for p in problems:
        fail(f"masked checks: {p}", round_id=r, h=outcome_hash)
    if problems:
        return
    try:
        center = clip_center(config, task, store, r)  # the previous round's global update, from chain and store
        _, blob = masked_aggregate(config, start.params, start.spec, read.outcome, round_id=r, center=center)
    except FedLedgerError as exc:
        fail(f"cannot apply the revealed sum: {exc}", round_id=r, h=event.model_hash)
        return
    if "0x" + hashlib.sha256(blob).hexdigest() != event.model_hash:
        fail("finalized model is not the committee's revealed sum applied to the round's model", round_id=r)
