"""Secure rounds with masked checks (OPEN -> VALIDATE -> AGGREGATE): a mode of the round engine.

Like :class:`~fedledger.federation.secure_node.SecureRounds`, :class:`MaskedRounds` is a table of phase rules
that :class:`~fedledger.federation.engine.RoundEngine` runs (see :mod:`fedledger.federation.masked_round` for
what each party derives):

- **OPEN**: a trainer shares its update to the round's check committee and commits the bundle's hash;
- **VALIDATE**: a committee member starts its MPyC party process on every committed bundle
  (:func:`fedledger.privacy.masked_party.start_party`), polls it on later steps (the step counts as work while
  it runs, so a simulation does not move the clock past the phase), then posts the outcome, or the abort
  record naming the committee members that stopped answering, and flags each rejected update with its reason;
  a member with an MPC endpoint setting (:mod:`fedledger.federation.mpc_endpoint`) publishes its endpoint
  when it first shares an update or sits on a committee, and runs its party at the committee's published hosts,
  over pinned TLS;
- **AGGREGATE**: an aggregator turns the majority outcome's revealed sum into the next model and proposes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedledger.chain.bulletin import BulletinClient
from fedledger.chain.consortium import Role
from fedledger.chain.task import MemberView, Phase, RoundInfo, TrainingTaskClient, UpdateInfo
from fedledger.exceptions import AggregationError, BadInput, FedLedgerError, MpcEndpointError, TrainingRefused
from fedledger.federation.engine import EventSink, PhaseRule
from fedledger.federation.evaluation import task_bulletin
from fedledger.federation.masked_round import (
    ABORT_FORMAT,
    accepted_mask_of,
    check_params,
    clip_center,
    committee_keys,
    flatten,
    masked_aggregate,
    masked_context,
    outcome_blob,
    read_bundles,
    read_outcome,
    reference_update,
)
from fedledger.federation.mpc_endpoint import (
    Endpoint,
    MpcSetting,
    committee_endpoints,
    party_addresses,
    publish_endpoint,
    seat_pins,
    tls_key,
)
from fedledger.federation.secure import identity_key
from fedledger.federation.secure_node import SecureMember
from fedledger.identity.private import write_private
from fedledger.privacy.masked_checks import CheckParams, share_update
from fedledger.privacy.masked_committee import CheckOutcome
from fedledger.privacy.masked_party import collect_result, start_party, write_job
from fedledger.privacy.masked_tls import write_mpyc_tls

__all__ = ["MaskedRounds", "MaskedView", "party_base_port"]

log = logging.getLogger("fedledger.node")

_PORT_LOW, _PORT_SPAN = 20_000, 40_000
_KILL_GRACE = 30.0  # seconds past its own timeout before a party process that did not exit is killed


def party_base_port(context: bytes, committee: int) -> int:
    """The base port of the round's MPyC parties (party i listens on base + i): the same at every committee
    member, and a different one each round, derived from the round context."""
    offset = int.from_bytes(hashlib.sha256(b"fedledger/masked-port/1" + context).digest()[:4], "big")
    return _PORT_LOW + offset % (_PORT_SPAN - committee)


@dataclass(frozen=True)
class MaskedView:
    """A member's view of the round plus, in its masked checks, its seat and the committee's posts."""

    view: MemberView
    on_committee: bool = False
    posted: bool = False
    num_posted: int = 0
    size: int = 0


@dataclass
class _PartyRun:
    """This member's MPyC party of one round, running."""

    folder: Path
    job: Path
    index: int
    committee: list[str]
    proc: subprocess.Popen[bytes]
    params: CheckParams
    updates: list[UpdateInfo]
    deadline: float


class MaskedRounds:
    """One member's part in secure rounds with masked checks.

    ``endpoint``: where this member's committee party is reached from other machines (published on the task's
    bulletin); None: every committee party runs on this host, as on one machine."""

    def __init__(
        self, ledger: TrainingTaskClient, member: SecureMember, emit: EventSink, endpoint: MpcSetting | None = None
    ) -> None:
        self.ledger, self.node, self.emit = ledger, member, emit
        self.endpoint = endpoint
        self._published = False
        self._board: BulletinClient | None = None
        self._endpoint_wait: dict[int, float] = {}  # round -> when this member stops waiting for missing endpoints
        self.identity = identity_key(member.account)
        # How long an MPyC party waits for the others before it aborts: well inside the phase, so the abort
        # record still reaches the chain in time.
        self.check_timeout = max(5.0, min(120.0, ledger.params().validate_duration / 4))
        self._runs: dict[int, _PartyRun] = {}
        self._gave_up: set[int] = set()
        self._rules: Mapping[Phase, PhaseRule[MaskedView]] = {
            Phase.OPEN: PhaseRule(
                owes=lambda v, info: (
                    bool(v.view.roles & Role.TRAINER)
                    and member.trains
                    and not v.view.committed
                    and info.round_id not in member.refusals
                    and info.round_id not in self._gave_up
                ),
                act=self._share_and_commit,
                complete=lambda v, info: info.num_updates >= info.expected_trainers,
                close=ledger.close_commits,
                close_action="close_commits",
            ),
            Phase.VALIDATE: PhaseRule(
                owes=lambda v, info: v.on_committee and not v.posted and info.round_id not in self._gave_up,
                act=self._check,
                complete=lambda v, info: v.num_posted >= v.size,
                close=ledger.close_checks,
                close_action="close_checks",
            ),
            Phase.AGGREGATE: PhaseRule(
                owes=lambda v, info: (
                    bool(v.view.roles & Role.AGGREGATOR) and not v.view.proposed and info.round_id not in self._gave_up
                ),
                act=self._aggregate,
                complete=lambda v, info: False,  # proposals finalize the round; otherwise it waits for its deadline
                close=ledger.close_aggregation,
                close_action="close_aggregation",
            ),
        }

    # -- the mode's hooks ----------------------------------------------------------------

    def read(self) -> MaskedView:
        me = self.node.account.address
        view = self.ledger.member_view(me)
        info = view.round
        if info is None or info.phase is not Phase.VALIDATE:
            return MaskedView(view)
        r = info.round_id
        committee = self.ledger.check_committee(r)
        on_committee = me in committee
        return MaskedView(
            view,
            on_committee=on_committee,
            posted=on_committee and self.ledger.check_posts(r)[committee.index(me)] is not None,
            num_posted=self.ledger.num_check_posts(r),
            size=len(committee),
        )

    def member_view(self, view: MaskedView) -> MemberView:
        return view.view

    def rule(self, phase: Phase) -> PhaseRule[MaskedView] | None:
        return self._rules.get(phase)

    def round_over(self, view: MaskedView) -> None:
        for r in [r for r in self._runs if r <= view.view.current_round]:
            self._stop(r)
        self._endpoint_wait = {r: t for r, t in self._endpoint_wait.items() if r > view.view.current_round}

    def _publish_endpoint(self) -> None:
        """Post this member's MPC endpoint on the task's bulletin, once (members with an endpoint setting)."""
        if self.endpoint is None or self._published:
            return
        node = self.node
        publish_endpoint(self._bulletin(), node.store, self.ledger.address, node.account, self.endpoint)
        self._published = True

    def _bulletin(self) -> BulletinClient:
        """The task's bulletin (its config's ``evaluation_board``), where committee members publish endpoints."""
        if self._board is None:
            self._board = task_bulletin(self.ledger, self.node.store)
        return self._board

    # -- OPEN: share and commit ---------------------------------------------------------------

    def _share_and_commit(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        try:
            self._publish_endpoint()  # early, so that the committee finds it when the checks start
        except FedLedgerError as exc:  # sharing does not need it: the committee party retries it
            log.warning("%s: cannot publish its MPC endpoint yet: %s", node.name, exc)
        try:
            update, _, num_examples, epsilon = node.local_update(info)
        except TrainingRefused as exc:
            node.refusals[r] = exc
            self.emit("refuse", r, error=type(exc).__name__, reason=str(exc))
            return False
        try:
            _, keys = committee_keys(self.ledger, r)
            flat = flatten(update, node.config.frac_bits)
            bundle = share_update(
                flat,
                check_params(node.config, flat.size),
                member=node.account.address,
                examples=node.config.masking_weight(num_examples),
                context=masked_context(self.ledger.address, r),
                committee_keys=keys,
            )
        except (FedLedgerError, ImportError) as exc:  # ImportError: MPyC, the `mpc` extra, is not installed
            self._give_up(r, f"cannot share the update with the check committee: {exc}")
            return False
        node.commit(r, node.store.put(bundle), num_examples, epsilon, masked=True)
        return True

    # -- VALIDATE: run this member's party, post the outcome -------------------------------------

    def _check(self, info: RoundInfo) -> bool:
        r = info.round_id
        run = self._runs.get(r)
        if run is None:
            try:
                return self._start(info)
            except (FedLedgerError, OSError, ImportError) as exc:
                self._give_up(r, f"cannot start this member's committee party: {exc}")
                return False
        if run.proc.poll() is None and time.monotonic() < run.deadline:
            time.sleep(0.05)  # the party is working: this step waits a little and counts as work
            return True
        result = collect_result(run.job, run.index, run.proc, wait=1.0)
        try:
            self._post(r, run, result)
        finally:
            self._stop(r)
        return True

    def _start(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        committee, _ = committee_keys(self.ledger, r)
        index = committee.index(node.account.address)
        endpoints: list[Endpoint] | None = None
        if self.endpoint is not None:
            endpoints = self._committee_endpoints(r, index, committee)
            if endpoints is None:
                return True  # waiting for an endpoint, or aborted for one
        updates = node.closed_updates(r)
        global_params, _ = node.global_model(info.global_model)
        params = check_params(node.config, sum(int(a.size) for a in global_params.values()))
        context = masked_context(self.ledger.address, r)
        direction = params.min_cosine is not None
        private = direction and params.reference == "committee"
        reference = reference_update(self.ledger, node.store, r) if direction and not private else None
        # With the committee's references, this member's own (its validation data's pull from the round's model)
        # goes only to its own party, as its private input.
        own = {index: flatten(node.trust_reference(global_params, r), 0)} if private else None
        folder = Path(tempfile.mkdtemp(prefix="fedledger-masked-"))  # 0700: it holds this party's key
        bundles = read_bundles(node.store, updates, params)
        job = write_job(
            folder,
            params,
            context=context,
            bundles=bundles,
            reference=reference,
            keys=[],
            timeout=self.check_timeout,
            own_references=own,
            center=clip_center(node.config, self.ledger, node.store, r),
            parties=party_addresses(endpoints, context) if endpoints else None,
            tls_pins=seat_pins(endpoints) if endpoints else None,
        )
        raw = self.identity.private_key.private_bytes_raw()
        write_private(folder / f"party{index}.key", raw.hex())
        if endpoints:
            trusted = [e.certificates[seat] for seat, e in enumerate(endpoints)]
            tls = write_mpyc_tls(folder / "tls", index, tls_key(node.account), trusted)
            proc = start_party(job, index, tls_folder=tls)
        else:
            proc = start_party(job, index, party_base_port(context, params.committee))
        deadline = time.monotonic() + self.check_timeout + _KILL_GRACE
        self._runs[r] = _PartyRun(folder, job, index, committee, proc, params, updates, deadline)
        self.emit("check-start", r, party=index, members=len(updates))
        return True

    def _committee_endpoints(self, r: int, index: int, committee: list[str]) -> list[Endpoint] | None:
        """The committee's published endpoints; None while one is missing (a member posts its endpoint at its first
        act, which may come after this one), or once this member posted the abort record naming the members whose
        endpoint is still missing after the check timeout, or malformed."""
        self._publish_endpoint()
        try:
            return committee_endpoints(self._bulletin(), self.node.store, self.ledger.address, committee)
        except MpcEndpointError as exc:
            give_up = self._endpoint_wait.setdefault(r, time.monotonic() + self.check_timeout)
            if exc.missing and time.monotonic() < give_up:
                time.sleep(0.05)  # counts as work, like a running party, so a simulation's clock waits too
                return None
            silent = exc.members if exc.missing else []
            self._post_abort(r, index, f"the committee cannot connect: {exc}", silent)
            return None

    def _post(self, r: int, run: _PartyRun, result: Mapping[str, Any]) -> None:
        node, ledger = self.node, self.ledger
        if result.get("status") != "ok":
            parties = [int(p) for p in result.get("parties") or []]
            silent = [run.committee[p] for p in parties if 0 <= p < len(run.committee)]
            reason = str(result.get("reason") or f"committee party failed: {result.get('log', '')!s:.500}")
            self._post_abort(r, run.index, reason, silent)
            return
        outcome = CheckOutcome.from_dict(result["outcome"])
        hashes = {u.member: u.update_hash for u in run.updates}
        outcome_hash = "0x" + node.store.put(outcome_blob(ledger.address, r, run.params, hashes, outcome))
        ledger.post_check_outcome(r, accepted_mask_of(outcome.passed, run.updates), outcome_hash)
        self.emit("check", r, outcome_hash=outcome_hash, passed=len(outcome.passed), rejected=outcome.rejected)
        index = {u.member: u.index for u in run.updates}
        for member, reason in sorted(outcome.rejected.items()):
            ledger.flag_update(r, index[member], f"masked checks: {reason}")

    def _post_abort(self, r: int, index: int, reason: str, silent: list[str]) -> None:
        """Post this committee member's abort record: why its checks could not finish, and who did not answer."""
        node, ledger = self.node, self.ledger
        doc: dict[str, Any] = {"format": ABORT_FORMAT, "task": ledger.address, "round": r, "party": index}
        doc.update(reason=reason, silent=silent)
        abort_hash = "0x" + node.store.put(json.dumps(doc, sort_keys=True).encode())
        ledger.post_check_abort(r, abort_hash)
        self.emit("check-abort", r, abort_hash=abort_hash, reason=reason, silent=silent)

    def _stop(self, r: int) -> None:
        run = self._runs.pop(r, None)
        if run is None:
            return
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.communicate()
        shutil.rmtree(run.folder, ignore_errors=True)  # the key file and the bundles go with the round

    # -- AGGREGATE ------------------------------------------------------------------------------

    def _aggregate(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        try:
            outcome_hash = self.ledger.accepted_outcome(r)
            if outcome_hash is None:
                raise BadInput("no accepted outcome")
            read = read_outcome(node.store.get(outcome_hash.removeprefix("0x")))
            updates = node.closed_updates(r)
            if (read.task.lower(), read.round_id) != (self.ledger.address.lower(), r):
                raise BadInput("the outcome is for another task or round")
            if read.bundles != {u.member: u.update_hash for u in updates}:
                raise BadInput("the outcome screened other bundles than the round's commitments")
            if accepted_mask_of(read.outcome.passed, updates) != info.accepted_mask:
                raise BadInput("the outcome's passing members are not the accepted set")
            global_params, model_spec = node.global_model(info.global_model)
            center = clip_center(node.config, self.ledger, node.store, r)
            _, blob = masked_aggregate(node.config, global_params, model_spec, read.outcome, round_id=r, center=center)
        except (FedLedgerError, AggregationError) as exc:
            self._give_up(r, f"cannot aggregate the checked updates: {exc}")
            return False
        model_hash = "0x" + node.store.put(node.behavior.proposal(blob, r))
        finalized = self.ledger.propose_aggregate(r, model_hash, info.accepted_mask)
        self.emit("propose", r, model_hash=model_hash, included=sorted(read.outcome.passed), finalized=finalized)
        return True

    def _give_up(self, round_id: int, reason: str) -> None:
        self._gave_up.add(round_id)
        log.warning("%s: drops out of masked round %d: %s", self.node.name, round_id, reason)
        self.emit("masked-dropout", round_id, reason=reason)
