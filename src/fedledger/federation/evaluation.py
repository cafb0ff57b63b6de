"""Federated evaluation: each member scores a round's global model on its own holdout data, stores its
metrics as a blob and posts the blob's hash on the task's Bulletin; anyone pools the posted metrics.

A member's report is canonical JSON (:class:`MetricsReport`, format ``fedledger-metrics/1``)::

    {"format": "fedledger-metrics/1", "task": "0x..", "round": 3, "model_hash": "0x..", "member": "0x..",
     "metrics": {"n": .., "accuracy": .., "f1": .., "log_loss": .., "roc_auc": .., "pr_auc": .., "n_classes": ..,
                 "f1_average": "binary", "confusion": [[..]], "log_loss_sum": .., "members": 1},
     "score_histogram": {"bins": 200, "range": [0.0, 1.0], "classes": [1], "negative": [[..]], "positive": [[..]]}}

It holds counts only (see :mod:`fedledger.learning.metrics`): no row of the member's data. It is posted under
topic ``metrics`` (:data:`fedledger.chain.bulletin.METRICS_TOPIC`) of the Bulletin named by the task config's
``evaluation_board``, once per member and round; the board refuses a second post.

- :func:`post_round_metrics` is what a member node calls after each finalized round.
- :func:`round_metrics` is what anyone calls to read a round's metrics: every post's blob is fetched (the
  store verifies it against its hash) and checked against the post and the chain; a blob that is unavailable,
  malformed or about another task, round, model or member is reported in ``invalid``, not pooled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy.typing as npt
from eth_account.signers.local import LocalAccount

from fedledger.chain.bulletin import METRICS_TOPIC, BulletinClient
from fedledger.chain.encoding import as_address
from fedledger.chain.events import Posted
from fedledger.chain.task import TrainingTaskClient
from fedledger.exceptions import BadInput, ConfigError, FedLedgerError, InvalidState, StoreError, UpdateRejected
from fedledger.federation.config import TaskConfig
from fedledger.learning.metrics import Metrics, evaluate_model, pool_metrics
from fedledger.learning.model_blob import canonical_json, decode_model
from fedledger.store import BlobStore
from fedledger.store.safejson import loads_bounded

__all__ = [
    "METRICS_FORMAT",
    "MetricsReport",
    "RoundMetrics",
    "evaluate_round",
    "model_for_round",
    "post_metrics_report",
    "post_round_metrics",
    "round_metrics",
    "task_bulletin",
    "task_config",
]

METRICS_FORMAT = "fedledger-metrics/1"
_REPORT_KEYS = {"format", "task", "round", "model_hash", "member", "metrics", "score_histogram"}


@dataclass(frozen=True)
class MetricsReport:
    """One member's metrics of one round's global model (addresses checksummed, hashes 0x-hex)."""

    task: str
    round_id: int
    model_hash: str
    member: str
    metrics: Metrics

    def to_json(self) -> dict[str, Any]:
        return {
            "format": METRICS_FORMAT,
            "task": self.task,
            "round": self.round_id,
            "model_hash": self.model_hash,
            "member": self.member,
            "metrics": self.metrics.to_json(),
            "score_histogram": self.metrics.histogram.to_json(),
        }

    def to_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, no whitespace): one report, one blob hash."""
        return canonical_json(self.to_json()).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> MetricsReport:
        """Parse and check a report blob; :class:`BadInput` naming what is wrong."""
        try:
            body = loads_bounded(data, what="metrics report")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadInput(f"metrics report is not JSON: {exc}") from exc
        if not isinstance(body, dict) or body.get("format") != METRICS_FORMAT:
            raise BadInput(f"not a {METRICS_FORMAT} report")
        if set(body) != _REPORT_KEYS:
            raise BadInput(f"metrics report fields {sorted(body)} are not {sorted(_REPORT_KEYS)}")
        round_id = body["round"]
        if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
            raise BadInput(f"metrics report: malformed round {round_id!r}")
        model_hash = body["model_hash"]
        if not isinstance(model_hash, str) or len(model_hash) != 66 or not model_hash.startswith("0x"):
            raise BadInput(f"metrics report: malformed model hash {model_hash!r}")
        return cls(
            task=as_address(body["task"], what="report task"),
            round_id=round_id,
            model_hash=model_hash.lower(),
            member=as_address(body["member"], what="report member"),
            metrics=Metrics.from_json(body["metrics"], body["score_histogram"]),
        )


@dataclass(frozen=True)
class RoundMetrics(Mapping[str, Metrics]):
    """A round's posted metrics: ``result[member_address]`` and ``result["pooled"]`` (present when any member's
    report is valid), as a read-only mapping; ``invalid`` maps a poster to why its report was not pooled."""

    task: str
    round_id: int
    model_hash: str
    members: dict[str, Metrics]
    pooled: Metrics | None
    invalid: dict[str, str] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)  # poster -> posted blob hash (valid or not)

    def _as_dict(self) -> dict[str, Metrics]:
        return {**self.members, **({"pooled": self.pooled} if self.pooled is not None else {})}

    def __getitem__(self, key: str) -> Metrics:
        return self._as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())

    def to_json(self) -> dict[str, Any]:
        """Stable keys: round, model_hash, members (address -> metrics), pooled, invalid (address -> reason)."""
        return {
            "round": self.round_id,
            "model_hash": self.model_hash,
            "members": {m: {**metrics.to_json(), "blob": self.blobs.get(m)} for m, metrics in self.members.items()},
            "pooled": self.pooled.to_json() if self.pooled is not None else None,
            "invalid": {m: {"reason": reason, "blob": self.blobs.get(m)} for m, reason in self.invalid.items()},
        }


def task_config(task: TrainingTaskClient, store: BlobStore) -> TaskConfig:
    """The task's config, fetched by the hash the chain holds (the store verifies the bytes)."""
    config_hash = task.params().config_hash
    try:
        return TaskConfig.from_bytes(store.get(config_hash.removeprefix("0x")))
    except StoreError as exc:
        raise ConfigError(f"task config {config_hash} is not in the store: {exc}") from exc


def task_bulletin(task: TrainingTaskClient, store: BlobStore, account: LocalAccount | None = None) -> BulletinClient:
    """The Bulletin the task config names (``evaluation_board``); :class:`ConfigError` when it names none."""
    board = task_config(task, store).evaluation_board
    if not board:
        raise ConfigError(f"task {task.address} has no evaluation board in its config (evaluation_board)")
    return BulletinClient(task.chain, board, account)


def model_for_round(task: TrainingTaskClient, round_id: int) -> str:
    """The global model a round produced (0x-hex): round 0 is the initial model; a later round must be finalized
    (``InvalidState`` "task: round not finalized" otherwise)."""
    if isinstance(round_id, bool) or not isinstance(round_id, int) or round_id < 0:
        raise BadInput(f"malformed round id {round_id!r}")
    return task.params().initial_model if round_id == 0 else task.model_at(round_id)


def evaluate_round(
    task: TrainingTaskClient,
    store: BlobStore,
    member: str,
    round_id: int,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
) -> MetricsReport:
    """``member``'s report of round ``round_id``'s global model on (X, y); nothing is stored or posted."""
    model_hash = model_for_round(task, round_id)
    model = decode_model(store.get(model_hash.removeprefix("0x")))
    metrics = evaluate_model(model.params, X, y, spec=model.spec)
    return MetricsReport(task.address, round_id, model_hash, as_address(member, what="member"), metrics)


def post_metrics_report(bulletin: BulletinClient, store: BlobStore, report: MetricsReport) -> tuple[str, bool]:
    """Store ``report`` and post its hash as ``bulletin``'s account (which must be the report's member).

    Returns (the posted blob hash as 0x-hex, whether this call posted it): when the member already posted for
    the round, nothing is sent and the hash already on the board is returned.
    """
    if bulletin.account is None or bulletin.account.address != report.member:
        raise BadInput("post the report as its member: bulletin.as_(account) with the report's member account")
    existing = bulletin.posted(report.task, report.round_id, METRICS_TOPIC, report.member)
    if existing is not None:
        return existing, False
    blob_hash = "0x" + store.put(report.to_bytes())
    try:
        bulletin.post(report.task, report.round_id, METRICS_TOPIC, blob_hash)
    except InvalidState as exc:
        # Another process of the same member posted in between: the board keeps the first post.
        if exc.reason != "bulletin: already posted":
            raise
        posted = bulletin.posted(report.task, report.round_id, METRICS_TOPIC, report.member)
        if posted is None:  # refused as already posted, yet nothing is on the board: the refusal stands
            raise
        return posted, False
    return blob_hash, True


def post_round_metrics(
    task: TrainingTaskClient,
    bulletin: BulletinClient,
    store: BlobStore,
    account: LocalAccount,
    round_id: int,
    X: npt.ArrayLike,
    y: npt.ArrayLike,
) -> str:
    """Evaluate round ``round_id``'s global model (the hash the chain holds for it; round 0: the initial model)
    on this member's holdout (X, y), store the report and post its hash on ``bulletin`` as ``account``.

    Idempotent: when ``account`` already posted for the round, returns at once without evaluating or sending.
    Returns the posted blob hash (0x-hex). X must be prepared as for training (the task's standardizer:
    :func:`fedledger.federation.local_data.load_member_table`). Raises ``InvalidState`` ("task: round not finalized")
    for a round that did not finalize, ``InvalidState`` ("bulletin: not a member") for an inactive member.
    """
    board = bulletin.as_(account)
    existing = board.posted(task.address, round_id, METRICS_TOPIC, account.address)
    if existing is not None:
        return existing
    report = evaluate_round(task, store, account.address, round_id, X, y)
    blob_hash, _ = post_metrics_report(board, store, report)
    return blob_hash


def _check_report(report: MetricsReport, post: Posted, model_hash: str, n_classes: int | None) -> str | None:
    """Why ``report`` does not belong to ``post`` (None when it does)."""
    if report.task != post.task:
        return f"report is about task {report.task}, posted for {post.task}"
    if report.round_id != post.round_id:
        return f"report is about round {report.round_id}, posted for round {post.round_id}"
    if report.member != post.poster:
        return f"report is by {report.member}, posted by {post.poster}"
    if report.model_hash != model_hash.lower():
        return f"report evaluated model {report.model_hash}, the round's model is {model_hash}"
    if n_classes is not None and report.metrics.n_classes != n_classes:
        return f"report has {report.metrics.n_classes} classes, the model {n_classes}"
    if report.metrics.members != 1:
        return "a member's report must be of its own data (members = 1)"
    return None


def round_metrics(task: TrainingTaskClient, bulletin: BulletinClient, store: BlobStore, round_id: int) -> RoundMetrics:
    """Every member's posted metrics of round ``round_id`` and their pooled value.

    Each post's blob is fetched (the store checks it against the posted hash) and checked against the post
    (task, round, member) and the chain (the round's model hash); one that fails is listed in ``invalid``
    with its reason and left out of the pool.
    """
    if bulletin.consortium_address != task.consortium_address:
        raise ConfigError(f"bulletin {bulletin.address} belongs to another consortium than task {task.address}")
    model_hash = model_for_round(task, round_id)
    n_classes: int | None
    try:
        n_classes = int(decode_model(store.get(model_hash.removeprefix("0x"))).spec["n_classes"])
    except (FedLedgerError, KeyError, TypeError, ValueError):
        n_classes = None  # the model is unavailable here; reports are still checked against its hash
    members: dict[str, Metrics] = {}
    invalid: dict[str, str] = {}
    blobs: dict[str, str] = {}
    for post in bulletin.posts(task.address, round_id, METRICS_TOPIC):
        blobs[post.poster] = post.blob_hash
        try:
            report = MetricsReport.from_bytes(store.get(post.blob_hash.removeprefix("0x")))
        except StoreError as exc:
            invalid[post.poster] = f"blob unavailable: {exc}"
            continue
        except (BadInput, UpdateRejected) as exc:
            invalid[post.poster] = f"malformed report: {exc}"
            continue
        reason = _check_report(report, post, model_hash, n_classes)
        if reason is not None:
            invalid[post.poster] = reason
        else:
            members[post.poster] = report.metrics
    if n_classes is None and len({m.n_classes for m in members.values()}) > 1:
        for poster in list(members):
            invalid[poster] = "reports disagree on the number of classes"
            del members[poster]
    pooled = pool_metrics(list(members.values())) if members else None
    return RoundMetrics(task.address, round_id, model_hash, members, pooled, invalid, blobs)
