"""Secure-aggregation rounds (KEYS -> SHARES -> OPEN -> UNMASK -> AGGREGATE): a mode of the round engine.

Like :class:`~fedledger.federation.engine.ValidatedRounds`, :class:`SecureRounds` is a table of phase rules
that :class:`~fedledger.federation.engine.RoundEngine` runs: each step reads the member's view of the round once
(``secure_view``: the member view plus its secure-aggregation steps) and does the one thing it still owes, or
closes a phase that is due. Messages go to the store as blobs and their hashes to the ledger; which messages
count is derived by :func:`fedledger.federation.secure.load_round`, the same for every member, so all members
answer the same unmask request and all aggregators get the same model.

A member that cannot do a step (a peer's bad advert or bundle, its round secrets lost) stops taking part in
that round: the protocol counts it as a dropout and recovers the sum without it as long as the threshold is met.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from eth_account.signers.local import LocalAccount

from fedledger.chain.consortium import Role
from fedledger.chain.task import MemberView, Phase, RoundInfo, SecureMessages, SecureView, UpdateInfo
from fedledger.exceptions import AggregationError, BadInput, TrainingRefused
from fedledger.federation.behavior import Behavior
from fedledger.federation.config import TaskConfig
from fedledger.federation.engine import EventSink, PhaseRule
from fedledger.federation.ledger import SecureLedger
from fedledger.federation.secure import (
    RoundSecretsStore,
    SecureRoundState,
    identity_key,
    load_round,
    neighbourhood,
    round_context,
    secure_aggregate_round,
)
from fedledger.learning import Params
from fedledger.learning.update import Tensors
from fedledger.privacy.secagg import MemberSecrets, RoundConfig, SecAggMember
from fedledger.store import BlobStore

__all__ = ["SecureMember", "SecureRounds"]

log = logging.getLogger("fedledger.node")


class SecureMember(Protocol):
    """What a secure round needs of the member taking part: its keys, its state and its work."""

    @property
    def name(self) -> str: ...

    @property
    def account(self) -> LocalAccount: ...

    @property
    def trains(self) -> bool: ...

    @property
    def store(self) -> BlobStore: ...

    @property
    def config(self) -> TaskConfig: ...

    @property
    def behavior(self) -> Behavior: ...

    refusals: dict[int, TrainingRefused]

    def global_model(self, model_hash: str) -> tuple[Params, dict[str, Any]]: ...

    def closed_updates(self, round_id: int) -> list[UpdateInfo]: ...

    def closed_rows(self, round_id: int) -> dict[int, int]: ...

    def rows_of(self, updates: list[UpdateInfo]) -> dict[int, int]: ...

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]: ...

    def commit(self, r: int, update_hash: str, n: int, epsilon: float | None, **extra: Any) -> None: ...

    def trust_reference(self, global_params: Params, round_id: int) -> Params: ...


class SecureRounds:
    """One member's part in secure rounds; its round secrets in memory and, with ``state_dir``, on disk."""

    def __init__(self, ledger: SecureLedger, member: SecureMember, emit: EventSink, state_dir: Path | None) -> None:
        self.ledger, self.node, self.emit = ledger, member, emit
        self.identity = identity_key(member.account)
        self.disk = RoundSecretsStore(state_dir, self.identity) if state_dir is not None else None
        self._secrets: dict[int, MemberSecrets] = {}
        self._contexts: dict[int, tuple[RoundConfig, dict[str, bytes]] | None] = {}
        self._gave_up: set[int] = set()
        self._adverts: tuple[int, dict[str, str | None]] | None = None  # round -> its neighbourhood's advert hashes
        self._rules: Mapping[Phase, PhaseRule[SecureView]] = {
            Phase.KEYS: PhaseRule(
                owes=lambda sv, info: self._trainer(sv, info) and not sv.advertised,
                act=self._advertise,
                complete=lambda sv, info: sv.secure.num_adverts >= sv.secure.num_members,
                close=ledger.close_keys,
                close_action="close_keys",
            ),
            Phase.SHARES: PhaseRule(
                owes=lambda sv, info: self._trainer(sv, info) and sv.advertised and not sv.shared,
                act=self._share,
                complete=lambda sv, info: sv.secure.num_bundles >= sv.secure.num_adverts,
                close=ledger.close_shares,
                close_action="close_shares",
            ),
            Phase.OPEN: PhaseRule(
                owes=lambda sv, info: self._trainer(sv, info) and sv.shared and not sv.view.committed,
                act=self._mask_and_commit,
                complete=lambda sv, info: info.num_updates >= info.expected_trainers,
                close=ledger.close_commits,
                close_action="close_commits",
            ),
            Phase.UNMASK: PhaseRule(
                owes=lambda sv, info: self._trainer(sv, info) and sv.view.committed and not sv.revealed,
                act=self._reveal,
                complete=lambda sv, info: sv.secure.num_reveals >= info.num_updates,
                close=ledger.close_unmask,
                close_action="close_unmask",
            ),
            Phase.AGGREGATE: PhaseRule(
                owes=lambda sv, info: (
                    bool(sv.view.roles & Role.AGGREGATOR)
                    and not sv.view.proposed
                    and info.round_id not in self._gave_up
                ),
                act=self._aggregate,
                complete=lambda sv, info: False,  # proposals finalize the round; otherwise it waits for its deadline
                close=ledger.close_aggregation,
                close_action="close_aggregation",
            ),
        }

    # -- the mode's hooks ----------------------------------------------------------------

    def read(self) -> SecureView:
        return self.ledger.secure_view(self.node.account.address)

    def member_view(self, view: SecureView) -> MemberView:
        return view.view

    def rule(self, phase: Phase) -> PhaseRule[SecureView] | None:
        return self._rules.get(phase)

    def round_over(self, view: SecureView) -> None:
        self._forget(before_round=view.view.current_round + 1)

    def _trainer(self, sv: SecureView, info: RoundInfo) -> bool:
        """A listed trainer with data that has not dropped out of the round."""
        return (
            bool(sv.view.roles & Role.TRAINER) and self.node.trains and sv.listed and info.round_id not in self._gave_up
        )

    # -- actions ------------------------------------------------------------------------

    def _advertise(self, info: RoundInfo) -> bool:
        context = self._context(info.round_id)
        if context is None or self.node.account.address not in context[1]:
            self._give_up(info.round_id, "no secure-aggregation seat (no key-agreement key registered)")
            return False
        config, registry = context
        member = SecAggMember(self.identity, config, registry)
        advert = member.advertise()
        self._keep(config, member.secrets())  # before posting: a restart must find the keys the advert names
        advert_hash = "0x" + self.node.store.put(advert.to_bytes())
        self.ledger.post_key_advert(info.round_id, advert_hash)
        self.emit("advertise", info.round_id, advert_hash=advert_hash)
        return True

    def _share(self, info: RoundInfo) -> bool:
        r = info.round_id
        loaded = self._load(r)
        if loaded is None:
            return False
        config, registry, secrets, state = loaded
        try:
            member = SecAggMember.resume(self.identity, config, registry, dataclasses.replace(secrets, own_share=None))
            bundle = member.share_keys(state.adverts.values())
        except (AggregationError, BadInput) as exc:
            self._give_up(r, f"cannot share keys: {exc}")
            return False
        self._keep(config, member.secrets())  # the own share must survive a restart before the bundle is out
        bundle_hash = "0x" + self.node.store.put(bundle.to_bytes())
        self.ledger.post_share_bundle(r, bundle_hash)
        self.emit("share", r, bundle_hash=bundle_hash, adverts=len(state.adverts))
        return True

    def _mask_and_commit(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        if r in node.refusals:
            return False
        loaded = self._load(r, bundles=True)
        if loaded is None:
            return False
        config, registry, secrets, state = loaded
        try:
            update, _, num_examples, epsilon = node.local_update(info)
        except TrainingRefused as exc:
            node.refusals[r] = exc
            self.emit("refuse", r, error=type(exc).__name__, reason=str(exc))
            self._give_up(r, f"refuses to train: {exc}")
            return False
        try:
            member = SecAggMember.resume(self.identity, config, registry, secrets, adverts=state.adverts.values())
            masked = member.mask(
                state.bundles.values(),
                update,
                num_examples=node.config.masking_weight(num_examples),
                frac_bits=node.config.frac_bits,
            )
        except (AggregationError, BadInput) as exc:
            self._give_up(r, f"cannot mask the update: {exc}")
            return False
        node.commit(r, node.store.put(masked.to_bytes()), num_examples, epsilon, masked=True)
        return True

    def _reveal(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        loaded = self._load(r, info=info)
        if loaded is None:
            return False
        config, registry, secrets, state = loaded
        request = state.aggregator.unmask_request()
        if node.account.address not in request.survivors:
            self._give_up(r, f"own masked input was dropped: {state.dropped}")
            return False
        try:
            member = SecAggMember.resume(
                self.identity,
                config,
                registry,
                secrets,
                adverts=state.adverts.values(),
                bundles=state.bundles.values(),
            )
            reveal = member.reveal(request)
        except (AggregationError, BadInput) as exc:
            self._give_up(r, f"cannot reveal shares: {exc}")
            return False
        reveal_hash = "0x" + node.store.put(reveal.to_bytes())
        self.ledger.submit_reveal(r, reveal_hash)
        self._forget(before_round=r + 1)  # its part is done: the secrets must not outlive it
        self.emit("reveal", r, reveal_hash=reveal_hash, survivors=len(request.survivors))
        return True

    def _aggregate(self, info: RoundInfo) -> bool:
        node, r = self.node, info.round_id
        context = self._context(r)
        if context is None:
            self._give_up(r, "round has no secure-aggregation config")
            return False
        global_params, model_spec = node.global_model(info.global_model)
        updates = node.closed_updates(r)
        spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
        try:
            state = load_round(
                node.store,
                node.config,
                context[0],
                self.ledger.secure_messages(r),
                spec=spec,
                updates=updates,
                reveals=True,
                rows=node.closed_rows(r),
            )
            result = secure_aggregate_round(node.store, node.config, global_params, model_spec, state, round_id=r)
        except AggregationError as exc:
            self._give_up(r, f"cannot unmask the aggregate: {exc}")
            return False
        by_member = {u.member: u.index for u in updates}
        for what, reason in result.dropped.items():
            if what.startswith("masked input of "):
                self.ledger.flag_update(r, by_member[what.removeprefix("masked input of ")], f"dropped: {reason}")
        if not result.norm_ok:
            # Some member skipped clipping: refuse to propose; the round aborts at its deadline.
            self._give_up(r, "aggregate update exceeds the update norm bound: some member did not clip")
            return False
        model_hash = "0x" + node.store.put(node.behavior.proposal(result.blob, r))
        finalized = self.ledger.propose_aggregate(r, model_hash, info.accepted_mask)
        self.emit(
            "propose",
            r,
            model_hash=model_hash,
            included=sorted(by_member[m] for m in result.result.survivors),
            dropouts=list(result.result.dropouts),
            finalized=finalized,
        )
        return True

    # -- helpers ------------------------------------------------------------------------

    def _context(self, round_id: int) -> tuple[RoundConfig, dict[str, bytes]] | None:
        if round_id not in self._contexts:
            # Keep only this round's; a large round's context holds only the keys this member needs.
            self._contexts = {round_id: round_context(self.ledger, round_id, member=self.node.account.address)}
        return self._contexts[round_id]

    def _load(
        self, round_id: int, *, bundles: bool = False, info: RoundInfo | None = None
    ) -> tuple[RoundConfig, dict[str, bytes], MemberSecrets, SecureRoundState] | None:
        """The round's config, registry, this member's secrets and the valid messages of its neighbourhood so far:
        adverts; its neighbours' bundles too with ``bundles``; their masked inputs too with ``info``."""
        context = self._context(round_id)
        if context is None:
            self._give_up(round_id, "round has no secure-aggregation config")
            return None
        config, registry = context
        secrets = self._secrets.get(round_id)
        if secrets is None and self.disk is not None:
            secrets = self.disk.load(config)
        if secrets is None:
            self._give_up(round_id, "round secrets lost (no state folder)")
            return None
        self._secrets[round_id] = secrets
        node = self.node
        messages, updates = self._neighbourhood(config, bundles=bundles or info is not None)
        if info is None:
            state = load_round(node.store, node.config, config, messages)
        else:
            global_params, _ = node.global_model(info.global_model)
            spec = {name: tuple(arr.shape) for name, arr in global_params.items()}
            state = load_round(
                node.store,
                node.config,
                config,
                messages,
                spec=spec,
                updates=updates,
                rows=node.rows_of(updates),
            )
        return config, registry, secrets, state

    def _neighbourhood(self, config: RoundConfig, *, bundles: bool) -> tuple[list[SecureMessages], list[UpdateInfo]]:
        """This member's neighbourhood on chain, one call per step: the adverts of its neighbours and theirs (which
        decide whether a neighbour's share bundle addresses the right members), read once, as the key exchange is
        over; with ``bundles``, its group's messages and masked-input commitments (which of them survive: the part
        of the unmask request it answers)."""
        r, me = config.round_id, self.node.account.address
        if self._adverts is None or self._adverts[0] != r:
            window = neighbourhood(config, me)
            self._adverts = (r, dict(zip(window, self.ledger.secure_adverts(r, window), strict=True)))
        adverts = self._adverts[1]
        if not bundles:
            return [SecureMessages(m, h, None, None) for m, h in adverts.items()], []
        peers = {p.messages.member: p for p in self.ledger.secure_peers(r, config.group_of(me))}
        messages = [peers[m].messages if m in peers else SecureMessages(m, h, None, None) for m, h in adverts.items()]
        return messages, [p.update for p in peers.values() if p.update is not None]

    def _keep(self, config: RoundConfig, secrets: MemberSecrets) -> None:
        self._secrets[config.round_id] = secrets
        if self.disk is not None:
            self.disk.save(config, secrets)

    def _forget(self, *, before_round: int) -> None:
        """Round over: its secrets go, from memory and disk (forward secrecy of the published messages)."""
        for r in [r for r in self._secrets if r < before_round]:
            del self._secrets[r]
        if self.disk is not None:
            self.disk.discard(self.ledger.address, before_round=before_round)

    def _give_up(self, round_id: int, reason: str) -> None:
        self._gave_up.add(round_id)
        self._forget(before_round=round_id + 1)
        log.warning("%s: drops out of secure round %d: %s", self.node.name, round_id, reason)
        self.emit("secagg-dropout", round_id, reason=reason)
