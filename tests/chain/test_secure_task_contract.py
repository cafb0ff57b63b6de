"""TrainingTask's secure-aggregation phases: KEYS -> SHARES -> OPEN -> UNMASK -> AGGREGATE.

Each step's success, and its refusals (wrong phase, twice, without the previous
step, outsider, past the deadline) with the contract's exact revert string and the
chain unmoved; too few members at any step aborts the round with its reason and the
next round opens on the same model. The happy path also runs on anvil when present.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import pytest

from conftest import DEFAULT_PARAMS, MEMBER_ROLES, Ledger, h, refused
from fedledger.chain import Phase, TaskParams, TrainingTaskClient
from fedledger.chain.events import (
    KeysAdvertised,
    KeysClosed,
    RoundAborted,
    RoundFinalized,
    SharesClosed,
    SharesPosted,
    SharesRevealed,
    UnmaskClosed,
)
from fedledger.chain.task import RoundInfo, SecureMessages, SecureRoundInfo, TaskKind
from fedledger.exceptions import BadInput, DeadlinePassed, InvalidArgument, InvalidState, NotAuthorized

SECURE_PARAMS = replace(DEFAULT_PARAMS, secagg_threshold=2)
ZERO32 = "0x" + "00" * 32


@dataclass(frozen=True)
class SecureState:
    block: int
    round: RoundInfo
    secure: SecureRoundInfo
    messages: tuple[SecureMessages, ...]


@pytest.fixture
def secure(ledger: Ledger) -> Iterator[Ledger]:
    """The deployed ledger with a secure task in place of the plain one."""
    task = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, SECURE_PARAMS)
    yield replace(ledger, task=task, params=SECURE_PARAMS)


def embedded_only(ledger: Ledger) -> None:
    if ledger.chain.kind != "embedded":
        pytest.skip("refusals run on the embedded chain only (anvil covers the happy path)")


def state_of(ledger: Ledger) -> SecureState:
    r = max(ledger.task.current_round, 1)
    return SecureState(
        ledger.chain.block_number,
        ledger.task.round(r),
        ledger.task.secure_round(r),
        tuple(ledger.task.secure_messages(r)),
    )


def t(ledger: Ledger, i: int) -> TrainingTaskClient:
    return ledger.task.as_(ledger.members[i])


def _advertise(ledger: Ledger, who: range) -> int:
    r = ledger.task.current_round
    for i in who:
        t(ledger, i).post_key_advert(r, h(f"advert-{r}-{i}"))
    return r


def _to_shares(ledger: Ledger, who: range = range(4)) -> int:
    r = t(ledger, 0).open_round()
    _advertise(ledger, who)
    if len(who) < len(ledger.members):
        ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    assert t(ledger, 0).close_keys(r) is Phase.SHARES
    return r


def _to_open(ledger: Ledger, who: range = range(4)) -> int:
    r = _to_shares(ledger, who)
    for i in who:
        t(ledger, i).post_share_bundle(r, h(f"bundle-{r}-{i}"))
    assert t(ledger, 0).close_shares(r) is Phase.OPEN
    return r


def _to_unmask(ledger: Ledger, who: range = range(4)) -> int:
    r = _to_open(ledger, who)
    for i in who:
        t(ledger, i).commit_update(r, h(f"masked-{r}-{i}"), 10 + i)
    assert t(ledger, 0).close_commits(r) is Phase.UNMASK
    return r


# -- the happy path (both backends) -----------------------------------------------------------


def test_a_secure_round_runs_every_phase_to_finalized(secure: Ledger) -> None:
    ledger = secure
    r = t(ledger, 0).open_round()
    info = ledger.task.round(r)
    assert info.phase is Phase.KEYS
    s = ledger.task.secure_round(r)
    assert (s.threshold, s.num_members) == (3, 4)  # raised to a strict majority of the 4 trainers
    view = ledger.task.secure_view(ledger.members[0].address)
    assert view.listed and not view.advertised and view.view.round is not None
    _advertise(ledger, range(4))
    assert t(ledger, 1).close_keys(r) is Phase.SHARES
    for i in range(4):
        t(ledger, i).post_share_bundle(r, h(f"bundle-{r}-{i}"))
    assert t(ledger, 2).close_shares(r) is Phase.OPEN
    for i in range(4):
        t(ledger, i).commit_update(r, h(f"masked-{r}-{i}"), 10 + i)
    assert t(ledger, 3).close_commits(r) is Phase.UNMASK
    for i in range(4):
        t(ledger, i).submit_reveal(r, h(f"reveal-{r}-{i}"))
    view = ledger.task.secure_view(ledger.members[3].address)
    assert view.advertised and view.shared and view.revealed and view.view.committed
    assert t(ledger, 0).close_unmask(r) is Phase.AGGREGATE
    info = ledger.task.round(r)
    assert info.accepted == [0, 1, 2, 3]
    assert not t(ledger, 0).propose_aggregate(r, h("model-1"), info.accepted_mask)
    assert t(ledger, 1).propose_aggregate(r, h("model-1"), info.accepted_mask)
    assert ledger.task.model_at(r) == h("model-1")
    messages = ledger.task.secure_messages(r)
    assert [m.member for m in messages] == [m.address for m in ledger.members]
    assert messages[2] == SecureMessages(
        ledger.members[2].address, h(f"advert-{r}-2"), h(f"bundle-{r}-2"), h(f"reveal-{r}-2")
    )
    names = [type(e).__name__ for e in ledger.task.events()]
    for cls in (KeysAdvertised, KeysClosed, SharesPosted, SharesClosed, SharesRevealed, UnmaskClosed, RoundFinalized):
        assert cls.__name__ in names


# -- refusals (embedded) ---------------------------------------------------------------------


def test_keys_refusals(secure: Ledger) -> None:
    embedded_only(secure)
    ledger = secure
    refused(lambda: state_of(ledger), InvalidState, "task: wrong round", t(ledger, 0).post_key_advert, 1, h("a"))
    r = t(ledger, 0).open_round()
    outsider = ledger.task.as_(ledger.outsider)
    refused(
        lambda: state_of(ledger), NotAuthorized, "task: caller is not a trainer", outsider.post_key_advert, r, h("a")
    )
    refused(
        lambda: state_of(ledger), InvalidArgument, "task: zero hash", t(ledger, 0).post_key_advert, r, "0x" + "00" * 32
    )
    t(ledger, 0).post_key_advert(r, h("a"))
    refused(
        lambda: state_of(ledger), InvalidState, "task: keys already advertised", t(ledger, 0).post_key_advert, r, h("b")
    )
    refused(lambda: state_of(ledger), InvalidState, "task: key phase still running", t(ledger, 0).close_keys, r)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: round not in share distribution",
        t(ledger, 1).post_share_bundle,
        r,
        h("s"),
    )
    refused(lambda: state_of(ledger), InvalidState, "task: round not open", t(ledger, 1).commit_update, r, h("m"), 5)
    ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    refused(
        lambda: state_of(ledger), DeadlinePassed, "task: key deadline passed", t(ledger, 1).post_key_advert, r, h("a1")
    )


def test_a_round_lists_the_trainers_without_a_break_since_before_it_opened(secure: Ledger) -> None:
    """Listed for a round: a trainer now that has been one without a break since a block before the opening. One
    admitted, or given the role again, after the opening is not listed; one revoked mid-round cannot advertise;
    one that keeps the trainer role through a role change stays listed."""
    embedded_only(secure)
    ledger, consortium = secure, secure.consortium
    everyone = [m.address for m in ledger.members]
    key = h("kx-0")
    consortium.as_(ledger.members[0]).update_metadata(cert_fingerprint=h("cert-0"), kx_public_key=key, store_uri="")
    r = t(ledger, 0).open_round()
    opened = ledger.task.secure_round(r).opened_block
    assert ledger.task.secure_listed(r, block=opened) == everyone == consortium.trainers_before(opened)
    late = ledger.outsider.address
    consortium.propose_admit(late, org="Late", roles="trainer")
    consortium.propose_roles(everyone[1], "validator")
    consortium.propose_roles(everyone[1], MEMBER_ROLES)  # a trainer again, after the opening
    consortium.propose_revoke(everyone[2])
    consortium.propose_roles(everyone[3], "trainer")  # keeps training through the change
    # A trainer admitted in a round's opening block is not listed: only blocks after it list it.
    since = consortium.trainer_since(late)
    assert [x.listed for x in consortium.trainer_listings([late], since)] == [False]
    assert late not in consortium.trainers_before(since) and late in consortium.trainers_before(since + 1)
    listings = consortium.trainer_listings([*everyone, late], opened)
    assert [x.listed for x in listings] == [True, False, False, True, False]
    assert [ledger.task.secure_view(a).listed for a in [*everyone, late]] == [True, False, False, True, False]
    assert (listings[0].kx_public_key, listings[1].kx_public_key) == (key, ZERO32)
    # The round's keys are read at its opening block, where all four were listed.
    assert ledger.task.secure_keys_of(r, everyone[:2], block=opened) == {everyone[0]: key, everyone[1]: ZERO32}
    for who in (ledger.task.as_(ledger.outsider), t(ledger, 1)):
        refused(
            lambda: state_of(ledger),
            InvalidState,
            "task: trainer not listed for this round",
            who.post_key_advert,
            r,
            h("late"),
        )
    refused(
        lambda: state_of(ledger),
        NotAuthorized,
        "task: caller is not a trainer",
        t(ledger, 2).post_key_advert,
        r,
        h("a"),
    )
    t(ledger, 3).post_key_advert(r, h("a3"))
    assert ledger.task.secure_view(everyone[3]).advertised


def test_shares_refusals(secure: Ledger) -> None:
    embedded_only(secure)
    ledger = secure
    r = _to_shares(ledger, range(3))  # member 3 never advertised; the deadline closed the key phase
    refused(
        lambda: state_of(ledger), InvalidState, "task: keys not advertised", t(ledger, 3).post_share_bundle, r, h("s3")
    )
    t(ledger, 0).post_share_bundle(r, h("s0"))
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: shares already posted",
        t(ledger, 0).post_share_bundle,
        r,
        h("s0b"),
    )
    refused(lambda: state_of(ledger), InvalidState, "task: share phase still running", t(ledger, 0).close_shares, r)
    refused(
        lambda: state_of(ledger), InvalidState, "task: round not in unmasking", t(ledger, 0).submit_reveal, r, h("x")
    )


def test_commit_and_unmask_refusals(secure: Ledger) -> None:
    embedded_only(secure)
    ledger = secure
    r = _to_shares(ledger)
    for i in range(3):  # member 3 advertised but never shares
        t(ledger, i).post_share_bundle(r, h(f"s{i}"))
    ledger.chain.advance_time(DEFAULT_PARAMS.commit_duration + 1)
    assert t(ledger, 0).close_shares(r) is Phase.OPEN
    refused(
        lambda: state_of(ledger), InvalidState, "task: shares not posted", t(ledger, 3).commit_update, r, h("m3"), 5
    )
    refused(
        lambda: state_of(ledger), InvalidState, "task: round not in unmasking", t(ledger, 0).submit_reveal, r, h("x")
    )
    for i in range(3):
        t(ledger, i).commit_update(r, h(f"m{i}"), 5)
    assert t(ledger, 0).close_commits(r) is Phase.UNMASK  # early: every member that shared committed
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: no masked input committed",
        t(ledger, 3).submit_reveal,
        r,
        h("x3"),
    )
    # Nothing is scored in a secure round: its contract has no submit_scores, and the client says so, sending nothing.
    block = ledger.chain.block_number
    with pytest.raises(BadInput, match="submit_scores needs a validated-round task; .* runs secure rounds"):
        t(ledger, 0).submit_scores(r, [None, 5000, 5000])
    assert ledger.chain.block_number == block
    t(ledger, 0).submit_reveal(r, h("x0"))
    refused(
        lambda: state_of(ledger), InvalidState, "task: shares already revealed", t(ledger, 0).submit_reveal, r, h("x0b")
    )
    refused(lambda: state_of(ledger), InvalidState, "task: unmask phase still running", t(ledger, 0).close_unmask, r)
    refused(
        lambda: state_of(ledger),
        InvalidState,
        "task: round not in aggregation",
        t(ledger, 0).propose_aggregate,
        r,
        h("m"),
        7,
    )
    ledger.chain.advance_time(DEFAULT_PARAMS.validate_duration + 1)
    refused(
        lambda: state_of(ledger), DeadlinePassed, "task: unmask deadline passed", t(ledger, 1).submit_reveal, r, h("x1")
    )


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        ("keys", "too few key adverts for the secagg threshold"),
        ("shares", "too few share bundles for the secagg threshold"),
        ("commits", "too few masked inputs for the secagg threshold"),
        ("unmask", "too few reveals for the secagg threshold"),
    ],
)
def test_too_few_members_for_the_threshold_abort_the_round(secure: Ledger, step: str, reason: str) -> None:
    embedded_only(secure)
    ledger = secure
    few, wait = range(2), DEFAULT_PARAMS.commit_duration + 1  # 2 of 4: below the threshold 3
    if step == "keys":
        r = t(ledger, 0).open_round()
        _advertise(ledger, few)
        ledger.chain.advance_time(wait)
        t(ledger, 0).close_keys(r)
    elif step == "shares":
        r = _to_shares(ledger)
        for i in few:
            t(ledger, i).post_share_bundle(r, h(f"s{i}"))
        ledger.chain.advance_time(wait)
        t(ledger, 0).close_shares(r)
    elif step == "commits":
        r = _to_open(ledger)
        for i in few:
            t(ledger, i).commit_update(r, h(f"m{i}"), 5)
        ledger.chain.advance_time(wait)
        t(ledger, 0).close_commits(r)
    else:
        r = _to_unmask(ledger)
        for i in few:
            t(ledger, i).submit_reveal(r, h(f"x{i}"))
        ledger.chain.advance_time(DEFAULT_PARAMS.validate_duration + 1)
        t(ledger, 0).close_unmask(r)
    assert ledger.task.round(r).phase is Phase.ABORTED
    aborted = [e for e in ledger.task.events() if isinstance(e, RoundAborted)]
    assert aborted[-1].reason == reason
    # Nothing lost: the next round opens on the same model and runs.
    nxt = t(ledger, 0).open_round()
    assert ledger.task.round(nxt).global_model == ledger.task.round(r).global_model == DEFAULT_PARAMS.initial_model
    assert ledger.task.round(nxt).phase is Phase.KEYS


def test_secure_task_constructor_refusals(ledger: Ledger) -> None:
    embedded_only(ledger)
    with pytest.raises(InvalidArgument, match="task: secagg threshold out of range"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(SECURE_PARAMS, secagg_threshold=1025)
        )
    # A secure task's committee is the masked-check committee: an odd honest-majority size (3..15) or none.
    with pytest.raises(InvalidArgument, match="task: check committee size out of range"):
        TrainingTaskClient.deploy(
            ledger.chain, ledger.admin, ledger.consortium.address, replace(SECURE_PARAMS, committee_size=2)
        )
    plain = TaskParams(**{**DEFAULT_PARAMS.to_json()})
    assert TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, plain).params() == plain


def test_a_secure_task_is_its_own_contract(ledger: Ledger) -> None:
    """Deployment picks SecureTrainingTask from the parameters; a fresh client finds the kind from the chain, reads
    the parameters back as given, and names the task's kind when asked for a method it does not have."""
    params = replace(SECURE_PARAMS, reputation_warmup=5)
    deployed = TrainingTaskClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address, params)
    assert deployed.kind is TaskKind.SECURE
    fresh = TrainingTaskClient(ledger.chain, deployed.address)
    assert fresh.kind is TaskKind.SECURE and fresh.params() == params
    assert ledger.chain.call(fresh.contract.functions.secagg_threshold()) == params.secagg_threshold
    block = ledger.chain.block_number
    for method, args in (("submit_scores", (1, [5000])), ("close_validation", (1,)), ("scorers_of", (1,))):
        with pytest.raises(BadInput, match=f"{method} needs a validated-round task; .* runs secure rounds"):
            getattr(fresh.as_(ledger.members[0]), method)(*args)
    with pytest.raises(BadInput, match="reputation_of needs a validated-round task"):
        fresh.reputation_of(ledger.members[0].address)
    assert ledger.chain.block_number == block  # nothing was sent
