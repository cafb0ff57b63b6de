"""Typed client for the task contracts: rounds, commitments, scores, proposals.

A task runs one kind of round, so it is deployed as one of two contracts built from the same modules:
``TrainingTask`` (validated rounds: validators score updates, with committees and reputation) or
``SecureTrainingTask`` (secure-aggregation rounds). :meth:`TrainingTaskClient.deploy` picks the contract from
the task's parameters, and a client finds the kind of the task at its address on first use; a method the kind
does not have raises :class:`~fedledger.exceptions.BadInput` naming the method and the kind, with nothing sent.

A commitment carries its provenance: the DataRegistry dataset the update was trained on and
the member's cumulative privacy spend in micro-epsilon (see :mod:`fedledger.privacy.accounting`);
the contract checks them when the task was created with a registry and a budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract
from web3.types import BlockIdentifier

from fedledger.chain.client import ContractClient
from fedledger.chain.connection import Chain, TxResult
from fedledger.chain.consortium import ConsortiumClient
from fedledger.chain.encoding import as_address, as_bytes32, hex32
from fedledger.chain.events import LedgerEvent, RoundFinalized, decode_logs
from fedledger.chain.governance import param_bounds_of
from fedledger.chain.masked_task import MaskedCheckCalls
from fedledger.chain.task_records import (
    AUTO_COMMITTEE_ABOVE,
    AUTO_COMMITTEE_SIZE,
    SCORE_SCALE,
    ZERO_ADDRESS,
    MemberView,
    Phase,
    RoundInfo,
    SecureMessages,
    SecurePeer,
    SecureRoundInfo,
    SecureView,
    TaskKind,
    TaskParams,
    TrainerStanding,
    UpdateInfo,
    ValidatorStanding,
    committee_indices,
    contract_median,
    deciding_score,
    hash_or_none,
    indices_of,
    mask_of,
    round_committee_size,
    seat_indices,
    secure_messages_from,
    uint_arg,
)
from fedledger.exceptions import BadInput, InvalidState

ACCEPTED_WORD_BITS = 256
"""Bits of one word of a round's accepted set: the round record holds the first word (``accepted_of``, all)."""
MAX_PEERS = 128
"""The most members one neighbourhood view of a secure task names (``MAX_PEERS`` in ``secure_phases.vy``)."""

__all__ = [
    "AUTO_COMMITTEE_ABOVE",
    "AUTO_COMMITTEE_SIZE",
    "SCORE_SCALE",
    "ZERO_ADDRESS",
    "MemberView",
    "Phase",
    "RoundInfo",
    "SecureMessages",
    "SecurePeer",
    "SecureRoundInfo",
    "SecureView",
    "TaskKind",
    "TaskParams",
    "TrainingTaskClient",
    "UpdateInfo",
    "TrainerStanding",
    "ValidatorStanding",
    "committee_indices",
    "contract_median",
    "deciding_score",
    "mask_of",
    "indices_of",
    "round_committee_size",
    "seat_indices",
]


class TrainingTaskClient(MaskedCheckCalls, ContractClient):
    """The task contract at ``address`` (either kind), acting as ``account`` for writes."""

    NAME = "TrainingTask"
    _params: TaskParams | None = None

    def __init__(self, chain: Chain, address: str, account: LocalAccount | None = None) -> None:
        # Not ContractClient's: the ABI depends on the kind, read from the chain on first use.
        self.chain = chain
        self.address = as_address(address, what="task address")
        self.account = account
        self._kind: TaskKind | None = None
        self._contract: Contract | None = None
        self._consortium_client: ConsortiumClient | None = None

    @classmethod
    def deploy(cls, chain: Chain, account: LocalAccount, consortium: str, params: TaskParams) -> TrainingTaskClient:
        """Create a task (``account`` must be a consortium admin), as the contract of its kind."""
        kind = TaskKind.for_params(params)
        address, _ = chain.deploy(account, kind.contract_name, *params.constructor_args(consortium))
        client = cls(chain, address, account)
        client._kind = kind
        client._consortium_client = ConsortiumClient(chain, consortium)
        return client

    def as_(self, account: LocalAccount) -> TrainingTaskClient:
        """The same task, acting as another member (sharing what this client already read of it)."""
        client = type(self)(self.chain, self.address, account)
        client._kind, client._contract, client._params = self._kind, self._contract, self._params
        client._consortium_client = self._consortium_client
        return client

    @property
    def kind(self) -> TaskKind:
        """Which contract runs the task's rounds (read once: a task never changes kind)."""
        if self._kind is None:
            # Both kinds answer secagg_threshold(): 0 for validated rounds.
            probe = self.chain.contract("TrainingTask", self.address).functions.secagg_threshold()
            self._kind = TaskKind.SECURE if int(self.chain.call(probe)) > 0 else TaskKind.VALIDATED
        return self._kind

    @property
    def contract(self) -> Contract:
        """The web3 contract with the ABI of the task's kind."""
        if self._contract is None:
            self._contract = self.chain.contract(self.kind.contract_name, self.address)
        return self._contract

    @contract.setter
    def contract(self, value: Contract) -> None:
        self._contract = value

    def events(self, *, from_block: int = 0, to_block: BlockIdentifier = "latest") -> list[LedgerEvent]:
        """The task's typed events, in chain order."""
        return self.chain.events(self.kind.contract_name, self.address, from_block=from_block, to_block=to_block)

    def _only(self, kind: TaskKind, method: str) -> Any:
        """The contract's functions, once the task is of ``kind``; :class:`BadInput` naming ``method`` otherwise."""
        if self.kind is not kind:
            raise BadInput(
                f"{method} needs a {kind.value}-round task; the task at {self.address} runs {self.kind.value} rounds"
            )
        return self.contract.functions

    def _secure_functions(self, method: str) -> Any:
        return self._only(TaskKind.SECURE, method)

    # -- round protocol ------------------------------------------------------------

    def open_round(self) -> int:
        """Open the next round; returns its id."""
        self._send(self.contract.functions.open_round())
        return self.current_round

    def commit_update(
        self,
        round_id: int,
        update_hash: str | bytes,
        num_examples: int,
        *,
        dataset_id: int = 0,
        epsilon_micro: int = 0,
    ) -> int:
        """Commit this member's update hash, with the dataset it was trained on and its cumulative
        privacy spend in micro-epsilon; returns its index in the round."""
        self._send(
            self.contract.functions.commit_update(
                int(round_id),
                as_bytes32(update_hash, what="update hash"),
                int(num_examples),
                uint_arg(dataset_id, "dataset id"),
                uint_arg(epsilon_micro, "declared micro-epsilon"),
            )
        )
        if self.account is None:  # _send refused already; this tells mypy
            raise BadInput("this client has no account to sign with; use .as_(account)")
        return self.commit_index(round_id, self.account.address)

    def close_commits(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_commits(int(round_id)))
        return self.round(round_id).phase

    def submit_scores(self, round_id: int, scores: Sequence[int | None]) -> TxResult:
        """Scores by update index (commit order), 0..10000; ``None`` abstains (own update,
        updates outside this validator's committee). Only the scored indices go on chain."""
        indices = [i for i, s in enumerate(scores) if s is not None]
        values = [int(scores[i]) for i in indices]  # type: ignore[arg-type]
        return self._send(self._only(TaskKind.VALIDATED, "submit_scores").submit_scores(int(round_id), indices, values))

    def flag_update(self, round_id: int, index: int, reason: str) -> TxResult:
        # Reasons are public on the ledger: keep them technical, never personal data.
        # The contract takes String[128], i.e. at most 128 UTF-8 bytes (not characters).
        reason = reason.encode("utf-8")[:128].decode("utf-8", errors="ignore")
        return self._send(self.contract.functions.flag_update(int(round_id), int(index), reason))

    def close_validation(self, round_id: int) -> Phase:
        self._send(self._only(TaskKind.VALIDATED, "close_validation").close_validation(int(round_id)))
        return self.round(round_id).phase

    def propose_aggregate(self, round_id: int, model_hash: str | bytes, accepted_mask: int) -> bool:
        """Propose the next model; True when this proposal finalized the round (its own transaction emitted the
        round's RoundFinalized: a read of the phase afterwards would also see a later proposal's finalization)."""
        # The contract checks the set's first word (its round record's); the model hash names the rest.
        first_word = int(accepted_mask) & ((1 << ACCEPTED_WORD_BITS) - 1)
        result = self._send(
            self.contract.functions.propose_aggregate(
                int(round_id), as_bytes32(model_hash, what="model hash"), first_word
            )
        )
        logs = [log for log in result.receipt["logs"] if log["address"].lower() == self.address.lower()]
        events = decode_logs(self.kind.contract_name, logs, self.chain.w3.codec)
        return any(isinstance(e, RoundFinalized) and e.round_id == round_id for e in events)

    def close_aggregation(self, round_id: int) -> Phase:
        self._send(self.contract.functions.close_aggregation(int(round_id)))
        return self.round(round_id).phase

    # -- secure-aggregation rounds ----------------------------------------------------

    def post_key_advert(self, round_id: int, advert_hash: str | bytes) -> TxResult:
        """KEYS: commit the hash of this trainer's key advert blob."""
        return self._send(
            self._only(TaskKind.SECURE, "post_key_advert").post_key_advert(
                int(round_id), as_bytes32(advert_hash, what="advert hash")
            )
        )

    def close_keys(self, round_id: int) -> Phase:
        self._send(self._only(TaskKind.SECURE, "close_keys").close_keys(int(round_id)))
        return self.round(round_id).phase

    def post_share_bundle(self, round_id: int, bundle_hash: str | bytes) -> TxResult:
        """SHARES: commit the hash of this trainer's encrypted share bundle blob."""
        return self._send(
            self._only(TaskKind.SECURE, "post_share_bundle").post_share_bundle(
                int(round_id), as_bytes32(bundle_hash, what="bundle hash")
            )
        )

    def close_shares(self, round_id: int) -> Phase:
        self._send(self._only(TaskKind.SECURE, "close_shares").close_shares(int(round_id)))
        return self.round(round_id).phase

    def submit_reveal(self, round_id: int, reveal_hash: str | bytes) -> TxResult:
        """UNMASK: commit the hash of this committer's share reveal blob."""
        return self._send(
            self._only(TaskKind.SECURE, "submit_reveal").submit_reveal(
                int(round_id), as_bytes32(reveal_hash, what="reveal hash")
            )
        )

    def close_unmask(self, round_id: int) -> Phase:
        self._send(self._only(TaskKind.SECURE, "close_unmask").close_unmask(int(round_id)))
        return self.round(round_id).phase

    def secure_round(self, round_id: int) -> SecureRoundInfo:
        f = self._only(TaskKind.SECURE, "secure_round")
        return SecureRoundInfo.from_raw(self.chain.call(f.secure_rounds(int(round_id))))

    def secure_view(self, member: str) -> SecureView:
        """:meth:`member_view` plus ``member``'s secure-aggregation steps in the current round, in one call."""
        raw = self.chain.call(self._only(TaskKind.SECURE, "secure_view").secure_view(as_address(member)))
        return SecureView(
            view=self._member_view_from(raw[0]),
            secure=SecureRoundInfo.from_raw(raw[1]),
            listed=bool(raw[2]),
            advertised=bool(raw[3]),
            shared=bool(raw[4]),
            revealed=bool(raw[5]),
        )

    def secure_messages(self, round_id: int) -> list[SecureMessages]:
        """The trainers listed for a secure round, in listing order, with their message hashes (one call per
        :data:`MAX_PEERS` of them: an aggregator's and the audit's read of the whole round)."""
        listed = self._listed_if_opened(round_id)
        return [peer.messages for chunk in _chunks(listed) for peer in self.secure_peers(round_id, chunk)]

    def secure_listed(self, round_id: int, *, block: int) -> list[str]:
        """The trainers listed for a secure round, in listing order, from the ``TrainersListed`` log of its opening
        ``block`` (``secure_round(r).opened_block``): one read however many were listed."""
        event = self.contract.events.TrainersListed()
        for entry in event.get_logs(from_block=block, to_block=block, argument_filters={"round_id": int(round_id)}):
            return [str(a) for a in entry["args"]["members"]]
        raise InvalidState(f"task: no trainers listed for round {round_id} at block {block}")

    def _listed_if_opened(self, round_id: int) -> list[str]:
        """The trainers a secure round listed; none for a round not opened yet."""
        opened = self.secure_round(round_id).opened_block
        return self.secure_listed(round_id, block=opened) if opened else []

    def secure_keys_of(
        self,
        round_id: int,
        members: Sequence[str],
        *,
        block: BlockIdentifier = "latest",
        opened_block: int | None = None,
    ) -> dict[str, str]:
        """``members`` -> their registered key-agreement key at ``block`` (zero for one the round does not list),
        in one call to the consortium, which keeps both the keys and who a round lists. ``opened_block``: the
        round's (``secure_round(r).opened_block``), read here when not given."""
        self._only(TaskKind.SECURE, "secure_keys_of")
        if opened_block is None:
            opened_block = self.secure_round(round_id).opened_block
        listings = self._consortium().trainer_listings(members, opened_block, block=block)
        return {entry.member: entry.kx_public_key for entry in listings}

    def secure_adverts(self, round_id: int, members: Sequence[str]) -> list[str | None]:
        """The hashes of ``members``' key adverts in a secure round (None where none), in one call."""
        f = self._only(TaskKind.SECURE, "secure_adverts")
        raw = self.chain.call(f.secure_adverts(int(round_id), [as_address(m) for m in members]))
        return [hash_or_none(h) for h in raw]

    def secure_peers(self, round_id: int, members: Sequence[str]) -> list[SecurePeer]:
        """``members``' message hashes and masked-input commitments in a secure round, in one call."""
        f = self._only(TaskKind.SECURE, "secure_peers")
        raw = self.chain.call(f.secure_peers(int(round_id), [as_address(m) for m in members]))
        return [
            SecurePeer(
                secure_messages_from(p[0]),
                UpdateInfo.from_raw(round_id, int(p[1]) - 1, p[2]) if int(p[1]) else None,
            )
            for p in raw
        ]

    def secure_keys(self, round_id: int, *, block: BlockIdentifier = "latest") -> dict[str, str]:
        """The trainers listed for a secure round -> their registered key-agreement key at ``block``
        (listing order; the round uses the keys at its ``opened_block``)."""
        opened = self.secure_round(round_id).opened_block
        if not opened:
            return {}
        return {
            who: key
            for chunk in _chunks(self.secure_listed(round_id, block=opened))
            for who, key in self.secure_keys_of(round_id, chunk, block=block, opened_block=opened).items()
        }

    # -- reads ---------------------------------------------------------------------

    @property
    def current_round(self) -> int:
        return int(self.chain.call(self.contract.functions.current_round()))

    @property
    def latest_model(self) -> str:
        return hex32(self.chain.call(self.contract.functions.latest_model()))

    def params(self) -> TaskParams:
        """The task's constructor parameters (read once per client). A consortium vote can change the settings the
        task declared mutable (durations, quorum); :func:`fedledger.chain.governance.governance_state` reads those
        as they are now."""
        if self._params is None:
            self._params = self._read_params()
        return self._params

    def _read_params(self) -> TaskParams:
        f, call = self.contract.functions, self.chain.call
        validated = self.kind is TaskKind.VALIDATED

        def scored_rule(name: str) -> int:
            # A secure task has no committees and no reputation rules: its constructor refused them.
            return int(call(getattr(f, name)())) if validated else 0

        return TaskParams(
            config_hash=hex32(call(f.config_hash())),
            initial_model=hex32(call(f.initial_model())),
            min_commitments=call(f.min_commitments()),
            commit_duration=call(f.commit_duration()),
            validate_duration=call(f.validate_duration()),
            aggregate_duration=call(f.aggregate_duration()),
            acceptance_threshold=call(f.acceptance_threshold()),
            proposal_quorum=call(f.proposal_quorum()),
            max_rounds=call(f.max_rounds()),
            committee_size=scored_rule("committee_size") if validated else self.check_committee_size(),
            data_registry=str(call(f.data_registry())),
            purpose=hex32(call(f.purpose())),
            privacy_budget=call(f.privacy_budget()),
            secagg_threshold=call(f.secagg_threshold()),
            max_disagreement=scored_rule("max_disagreement"),
            reputation_warmup=call(f.reputation_warmup()),
            max_rejection=scored_rule("max_rejection"),
            min_mean_score=scored_rule("min_mean_score"),
            min_approvals=scored_rule("min_approvals"),
            stake_gate=str(call(f.stake_gate())),
            param_bounds=param_bounds_of(self),
            commitment_batches=str(call(f.commitment_batches())) if validated else ZERO_ADDRESS,
        )

    @property
    def consortium_address(self) -> str:
        return str(self.chain.call(self.contract.functions.consortium()))

    def _consortium(self) -> ConsortiumClient:
        """The task's consortium, read once: a task never changes its consortium."""
        if self._consortium_client is None:
            self._consortium_client = ConsortiumClient(self.chain, self.consortium_address)
        return self._consortium_client

    @property
    def creator(self) -> str:
        """The member that deployed the task: its published store holds the task's config and models."""
        return str(self.chain.call(self.contract.functions.creator()))

    def privacy_spent(self, member: str) -> int:
        """``member``'s latest declared cumulative spend, in micro-epsilon (0 in tasks without a budget)."""
        return int(self.chain.call(self.contract.functions.privacy_spent(as_address(member))))

    def reputation_of(self, validator: str) -> ValidatorStanding:
        """``validator``'s reputation record (all zero in tasks without reputation)."""
        f, address = self._only(TaskKind.VALIDATED, "reputation_of"), as_address(validator)
        return ValidatorStanding(
            scored=int(self.chain.call(f.validator_scored(address))),
            disagreed=int(self.chain.call(f.validator_disagreed(address))),
            distrusted=bool(self.chain.call(f.is_distrusted(address))),
        )

    def trainer_standing(self, trainer: str) -> TrainerStanding:
        """``trainer``'s record and the contract's verdict on it (all zero in tasks without trainer reputation)."""
        f, address = self._only(TaskKind.VALIDATED, "trainer_standing"), as_address(trainer)
        return TrainerStanding(
            scored=int(self.chain.call(f.trainer_scored(address))),
            rejected=int(self.chain.call(f.trainer_rejected(address))),
            distrusted=bool(self.chain.call(f.is_trainer_distrusted(address))),
            score_sum=int(self.chain.call(f.trainer_score_sum(address))),
        )

    def left_out_as_trainer(self, round_id: int, trainer: str) -> bool:
        """Whether trainer reputation left ``trainer`` out of round ``round_id`` when it opened: its commitments are
        refused in that round (``task: trainer distrusted``) and the round does not wait for it."""
        f = self._only(TaskKind.VALIDATED, "left_out_as_trainer")
        return bool(self.chain.call(f.trainer_left_out(int(round_id), as_address(trainer))))

    def clear_reputation(self, validator: str) -> TxResult:
        """Reset a member's records as validator and as trainer (admins only); it takes part again from the next
        round."""
        return self._send(self._only(TaskKind.VALIDATED, "clear_reputation").clear_reputation(as_address(validator)))

    def round(self, round_id: int, *, block: BlockIdentifier = "latest") -> RoundInfo:
        info = RoundInfo.from_raw(round_id, self.chain.call(self.contract.functions.rounds(int(round_id)), block=block))
        return self._whole_accepted_set(info, block)

    def member_view(self, member: str) -> MemberView:
        """The current round and ``member``'s roles and duties in it, in one call (two in the aggregation of a
        round of more than 256 updates, whose accepted set the round record holds only the first word of)."""
        view = self._member_view_from(self.chain.call(self.contract.functions.member_view(as_address(member))))
        if view.round is None or view.round.num_updates <= ACCEPTED_WORD_BITS:
            return view
        return replace(view, round=self._whole_accepted_set(view.round, "latest"))

    def _whole_accepted_set(self, info: RoundInfo, block: BlockIdentifier) -> RoundInfo:
        """``info`` with its whole accepted set: the contract's round record holds its first 256 bits."""
        if info.num_updates <= ACCEPTED_WORD_BITS or not info.accepted_mask:
            return info
        words = self.chain.call(self.contract.functions.accepted_of(info.round_id), block=block)
        mask = sum(int(word) << (ACCEPTED_WORD_BITS * k) for k, word in enumerate(words))
        return replace(info, accepted_mask=mask)

    @staticmethod
    def _member_view_from(raw: Sequence[Any]) -> MemberView:
        current = int(raw[0])
        return MemberView(
            current_round=current,
            round=RoundInfo.from_raw(current, raw[1]) if current else None,
            roles=int(raw[2]),
            committed=bool(raw[3]),
            scored=bool(raw[4]),
            proposed=bool(raw[5]),
            timestamp=int(raw[6]),
        )

    def assignments_of(self, round_id: int, validator: str) -> list[int]:
        """The updates ``validator`` may score in a round (its committee seats, or all but its own)."""
        f = self._only(TaskKind.VALIDATED, "assignments_of")
        return list(self.chain.call(f.assignments_of(int(round_id), as_address(validator))))

    def is_round_validator(self, round_id: int, validator: str) -> bool:
        """Whether ``validator`` may score in the round (false once commits closed without it: not drawn, or
        left out by its reputation)."""
        f = self._only(TaskKind.VALIDATED, "is_round_validator")
        return bool(self.chain.call(f.is_round_validator(int(round_id), as_address(validator))))

    def round_committee(self, round_id: int) -> int:
        """The committee size fixed when the round opened (0: every validator scores every other update)."""
        f = self._only(TaskKind.VALIDATED, "round_committee")
        return int(self.chain.call(f.round_committee(int(round_id))))

    def committee_step(self, round_id: int) -> int:
        """A committee round's seeded step, drawn when its commits closed (0 before, and without committees):
        update ``i``'s committee is the committers at :func:`committee_indices`."""
        f = self._only(TaskKind.VALIDATED, "committee_step")
        return int(self.chain.call(f.committee_step(int(round_id))))

    def committee_of(self, round_id: int, index: int) -> list[str]:
        """The validators drawn to score update ``index`` (committee rounds, once commits closed)."""
        f = self._only(TaskKind.VALIDATED, "committee_of")
        return [str(a) for a in self.chain.call(f.committee_of(int(round_id), int(index)))]

    def scorers_of(self, round_id: int, updates: Sequence[UpdateInfo] | None = None) -> list[list[str]]:
        """For each of the round's updates, the validators that may score it (once commits closed): its
        committee, or without committees every round validator but the update's owner, in admission order. Public
        to all, which is what an adaptive liar (``fedledger.attacks.LyingValidators(adaptive=True)``) exploits.
        ``updates``: the round's updates where the caller already read them (:meth:`updates`)."""
        self._only(TaskKind.VALIDATED, "scorers_of")
        if updates is None:
            updates = self.updates(round_id)
        if self.committee_step(round_id):
            return [self.committee_of(round_id, u.index) for u in updates]
        # Rounds without committees have at most AUTO_COMMITTEE_ABOVE validators (or a task's every validator, by
        # its own choice): read off the consortium's member list rather than by a contract loop over it.
        consortium = ConsortiumClient(self.chain, self.consortium_address)
        listed = consortium.contract.functions
        addresses = [str(self.chain.call(listed.member_at(i))) for i in range(self.chain.call(listed.member_count()))]
        validators = [a for a in addresses if self.is_round_validator(round_id, a)]
        return [[v for v in validators if v != u.member] for u in updates]

    def update(self, round_id: int, index: int) -> UpdateInfo:
        raw = self.chain.call(self.contract.functions.updates(int(round_id), int(index)))
        if int(raw[0], 16) == 0:
            raise BadInput(f"round {round_id} has no update {index}")
        return UpdateInfo.from_raw(round_id, index, raw)

    def updates_at(self, round_id: int, indices: Sequence[int]) -> list[UpdateInfo]:
        """Some updates of a round, by index (at most ``MAX_VALIDATORS``: a validator's seats), in one call."""
        raw = self.chain.call(self.contract.functions.updates_at(int(round_id), [int(i) for i in indices]))
        return [UpdateInfo.from_raw(round_id, int(i), u) for i, u in zip(indices, raw, strict=True)]

    def updates(self, round_id: int) -> list[UpdateInfo]:
        """Every update of a round, in commit order, in one call."""
        raw = self.chain.call(self.contract.functions.updates_of(int(round_id)))
        return [UpdateInfo.from_raw(round_id, i, u) for i, u in enumerate(raw)]

    def commit_index(self, round_id: int, member: str) -> int:
        """Index of ``member``'s update in the round; :class:`InvalidState` when none."""
        slot = int(self.chain.call(self.contract.functions.commit_index(int(round_id), as_address(member))))
        if slot == 0:
            raise InvalidState(f"task: {member} has no commitment in round {round_id}")
        return slot - 1

    def has_committed(self, round_id: int, member: str) -> bool:
        return int(self.chain.call(self.contract.functions.commit_index(int(round_id), as_address(member)))) > 0

    def has_scored(self, round_id: int, validator: str) -> bool:
        f = self._only(TaskKind.VALIDATED, "has_scored")
        return bool(self.chain.call(f.has_scored(int(round_id), as_address(validator))))

    def has_proposed(self, round_id: int, aggregator: str) -> bool:
        return bool(self.chain.call(self.contract.functions.has_proposed(int(round_id), as_address(aggregator))))

    def scores_of(self, round_id: int, index: int) -> list[int]:
        return list(self.chain.call(self._only(TaskKind.VALIDATED, "scores_of").scores_of(int(round_id), int(index))))

    def model_at(self, round_id: int) -> str:
        return hex32(self.chain.call(self.contract.functions.model_at(int(round_id))))

    def model_history(self) -> dict[int, str]:
        """round -> finalized model hash, for every finalized round."""
        history = {}
        for r in range(1, self.current_round + 1):
            info = self.round(r)
            if info.phase is Phase.FINALIZED:
                history[r] = info.model_hash
        return history


def _chunks(members: Sequence[str]) -> list[Sequence[str]]:
    """``members`` in slices a neighbourhood view takes in one call."""
    return [members[i : i + MAX_PEERS] for i in range(0, len(members), MAX_PEERS)]
