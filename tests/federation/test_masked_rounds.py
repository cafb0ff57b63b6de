"""Secure rounds with masked checks on the ledger, end to end: OPEN -> VALIDATE (committee) -> AGGREGATE.

Members share their updates to a committee of three drawn by the contract; each committee member runs its
MPyC party as its own OS process and posts the outcome on chain; the contract aggregates the set the
majority posted. A member whose update is outside the bound, and one whose shares do not reconstruct, are
rejected on chain (and flagged with the reason) and the round finalizes with the others, on exactly their
FedAvg; a committee member that stops answering aborts the round with a named reason, is named on chain,
and the next round runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("mpyc")

from fedledger.api.rounds import read_rounds  # noqa: E402
from fedledger.audit import verify_task  # noqa: E402
from fedledger.audit.masked import check_masked_finalized  # noqa: E402
from fedledger.chain import Phase  # noqa: E402
from fedledger.chain.events import RoundAborted, RoundFinalized, UpdateCommitted, UpdateFlagged  # noqa: E402
from fedledger.chain.masked_events import CheckAbortPosted, CheckerSilent, ChecksAccepted  # noqa: E402
from fedledger.chain.task import RoundInfo  # noqa: E402
from fedledger.exceptions import BadInput, ConfigError  # noqa: E402
from fedledger.federation import MemberNode, Simulation, TaskConfig  # noqa: E402
from fedledger.federation.masked_node import MaskedRounds  # noqa: E402
from fedledger.federation.masked_round import (  # noqa: E402
    check_params,
    clip_center,
    committee_keys,
    flatten,
    masked_aggregate,
    read_outcome,
)
from fedledger.federation.setup import SimulatedConsortium  # noqa: E402
from fedledger.learning import decode_model  # noqa: E402
from fedledger.learning.update import Tensors  # noqa: E402
from fedledger.privacy.masked_checks import CheckParams, seal_shares, split_shares, to_fixed  # noqa: E402
from fedledger.privacy.masked_clipping import clip_levels, clipped_sums  # noqa: E402
from fedledger.privacy.masked_committee import CheckOutcome  # noqa: E402
from fedledger.privacy.masked_shares import from_words, to_words  # noqa: E402
from fedledger.privacy.masked_sketch import project_exact  # noqa: E402
from helpers.federation import plaintext_fedavg_hash  # noqa: E402
from helpers.masked import masked_consortium  # noqa: E402


def _mode(node: MemberNode) -> MaskedRounds:
    mode = node.engine.mode
    assert isinstance(mode, MaskedRounds)
    return mode


class Scaled(MemberNode):
    """Shares its honest update scaled 20x: far outside the L2 bound (the task's clip norm)."""

    def __init__(self, base: MemberNode) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]:
        update, meta, n, epsilon = super().local_update(info)
        scaled = {k: (v.view(np.int64) * 20).view(np.uint64) for k, v in update.items()}
        return scaled, meta, n, epsilon


class SignFlipped(MemberNode):
    """Shares its honest update negated: within the norm bound, against where every member's data pulls."""

    def __init__(self, base: MemberNode) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)

    def local_update(self, info: RoundInfo) -> tuple[Tensors, dict[str, str], int, float | None]:
        update, meta, n, epsilon = super().local_update(info)
        flipped = {k: (-v.view(np.int64)).view(np.uint64) for k, v in update.items()}
        return flipped, meta, n, epsilon


class Inconsistent(MemberNode):
    """Commits, in place of its honest bundle, one whose shares for committee member 2 are off by one: they do
    not lie on one polynomial (the committee names it and flags its update)."""

    def __init__(self, base: MemberNode) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)

    def commit(self, r: int, update_hash: str, n: int, epsilon: float | None, **extra: object) -> None:
        header = json.loads(self.store.get(update_hash).partition(b"\n")[0])
        params = CheckParams.from_dict(header["params"])
        shares = split_shares(np.zeros(params.length, np.int64), params)
        row = shares.rows[2 - shares.threshold]
        bumped = (int(from_words(row[17:18])[0]) + 1) % params.modulus
        row[17] = to_words(np.array([bumped], dtype=object), row.shape[1])[0]
        _, keys = committee_keys(self.task, r)
        bundle = seal_shares(
            shares,
            params,
            member=self.account.address,
            examples=header["examples"],
            context=bytes.fromhex(header["context"]),
            committee_keys=keys,
        )
        super().commit(r, self.store.put(bundle), n, epsilon, **extra)


class SilentOnCommittee(MemberNode):
    """Stops acting in one round's masked checks when it is the committee's first party (it never starts its
    MPyC party), and acts normally otherwise."""

    def __init__(self, base: MemberNode, round_id: int) -> None:
        super().__init__(name=base.name, account=base.account, task=base.task, store=base.store, data=base.data)
        self.round_id = round_id

    def step(self) -> bool:
        r = self.task.current_round
        validating = r == self.round_id and self.task.round(r).phase is Phase.VALIDATE
        if validating and self.task.check_committee(r)[0] == self.account.address:
            return False
        return super().step()


def test_an_out_of_bound_update_is_rejected_on_chain_and_the_round_finalizes_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, sim = masked_consortium(tmp_path, rounds=1)
    with ws:
        hostile, inconsistent = sim.nodes[1].account.address, sim.nodes[2].account.address
        sim.nodes[1] = Scaled(sim.nodes[1])
        sim.nodes[2] = Inconsistent(sim.nodes[2])
        Simulation(sim.task, sim.nodes).run()
        info = sim.task.round(1)
        assert info.phase is Phase.FINALIZED
        updates = sim.task.updates(1)
        index = {u.member: u.index for u in updates}
        honest = sorted(u.member for u in updates if u.member not in (hostile, inconsistent))
        assert info.accepted == sorted(index[m] for m in honest)
        events = sim.task.events()
        accepted = [e for e in events if isinstance(e, ChecksAccepted)]
        assert [(e.round_id, e.num_accepted) for e in accepted] == [(1, 2)]
        assert sim.task.accepted_outcome(1) == accepted[0].outcome_hash
        # Both are rejected on chain and flagged by the committee with the reason.
        flags = {e.reason for e in events if isinstance(e, UpdateFlagged) and e.index == index[hostile]}
        assert flags == {"masked checks: failed the norm or direction check"}
        flags = {e.reason for e in events if isinstance(e, UpdateFlagged) and e.index == index[inconsistent]}
        assert flags == {"masked checks: shares do not reconstruct (not on one polynomial of the sharing degree)"}
        # The model is exactly the FedAvg of the two honest updates (the revealed sum, divided).
        assert info.model_hash == plaintext_fedavg_hash(sim, 1, honest)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report
        (row,) = read_rounds(sim.task, [1], {})  # what the dashboard shows: screened, with the committee's reasons
        assert row["screened"] and row["decided"]
        reasons = {v["member"]: v["reason"] for v in row["verdicts"]}
        assert reasons[hostile] == "masked checks: failed the norm or direction check"
        _forged_outcome_is_caught(sim, inconsistent, monkeypatch)


def _forged_outcome_is_caught(sim: SimulatedConsortium, inconsistent: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The audit re-checks the outcome: one that passes the member whose shares do not reconstruct contradicts
    its own transcript, the accepted set on chain and the committee's posts."""
    events = sim.task.events()
    outcome_hash = sim.task.accepted_outcome(1)
    assert outcome_hash is not None
    doc = json.loads(sim.store.get(outcome_hash.removeprefix("0x")))
    del doc["rejected"][inconsistent]
    doc["passed"] = sorted([*doc["passed"], inconsistent])
    forged = "0x" + sim.store.put(json.dumps(doc, sort_keys=True).encode())
    monkeypatch.setattr(sim.task, "accepted_outcome", lambda r: forged)
    found: list[str] = []
    finalized = next(e for e in events if isinstance(e, RoundFinalized))
    commits = [e for e in events if isinstance(e, UpdateCommitted)]
    start = decode_model(sim.store.get(sim.task.round(1).global_model.removeprefix("0x")))
    check_masked_finalized(
        sim.store, sim.nodes[0].config, sim.task, finalized, start, commits, lambda m, **_: found.append(m)
    )
    assert any(m.startswith(f"masked checks: transcript: {inconsistent}: consistency shares") for m in found), found
    assert "masked checks: the accepted set on chain is not the set that passed in the majority outcome" in found
    assert "masked checks: no strict majority of the check committee posted this outcome" in found


def test_the_committee_references_reject_a_sign_flipped_update_on_chain_and_the_next_round_runs(
    tmp_path: Path,
) -> None:
    # Each committee member checks the direction against its own reference update, trained on its own
    # validation rows from the round's model, in every round including the first (no previous aggregate needed).
    ws, sim = masked_consortium(tmp_path, rounds=2, masked_min_cosine=0.0)
    with ws:
        assert sim.nodes[0].config.masked.reference == "committee"
        flipped = sim.nodes[1].account.address
        sim.nodes[1] = SignFlipped(sim.nodes[1])
        for node in sim.nodes:
            # A loaded test machine can slow the committee's processes; this test is about the decision, not the
            # timeout (the silent-member test pins that).
            _mode(node).check_timeout = 90.0
        Simulation(sim.task, sim.nodes).run()
        events = sim.task.events()
        aborted = [(e.round_id, e.reason) for e in events if isinstance(e, RoundAborted)]
        abort_records = [json.loads(sim.store.get(e.abort_hash.removeprefix("0x"))) for e in events if
                         isinstance(e, CheckAbortPosted)]  # fmt: skip
        for r in (1, 2):
            info = sim.task.round(r)
            assert info.phase is Phase.FINALIZED, (aborted, abort_records)
            index = {u.member: u.index for u in sim.task.updates(r)}
            honest = sorted(m for m in index if m != flipped)
            assert info.accepted == sorted(index[m] for m in honest)
            flags = {e.reason for e in events if isinstance(e, UpdateFlagged) and e.round_id == r}
            assert flags == {"masked checks: failed the norm or direction check"}
            assert info.model_hash == plaintext_fedavg_hash(sim, r, honest)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report


def test_centered_clipping_in_the_checks_clips_a_sign_flipped_update_around_the_last_global_update(
    tmp_path: Path,
) -> None:
    # Without a direction check the sign-flipped update passes the norm bound; the committee clips every passing
    # update around the previous round's global update (zero in round 1) to radius 1.0, so the flipped one, about
    # 1.4 from the center, counts for less than the honest ones in both rounds.
    ws, sim = masked_consortium(tmp_path, rounds=2, masked_clip_levels=16, masked_clip_radius=1.0)
    with ws:
        config = sim.nodes[0].config
        flipped = sim.nodes[1].account.address
        sim.nodes[1] = SignFlipped(sim.nodes[1])
        for node in sim.nodes:
            _mode(node).check_timeout = 90.0  # as above: a loaded machine must not turn this into a timeout test
        Simulation(sim.task, sim.nodes).run()
        nodes = {n.account.address: n for n in sim.nodes}
        for r in (1, 2):
            info = sim.task.round(r)
            assert info.phase is Phase.FINALIZED
            outcome_hash = sim.task.accepted_outcome(r)
            assert outcome_hash is not None
            read = read_outcome(sim.store.get(outcome_hash.removeprefix("0x")))
            members = read.outcome.passed
            assert len(members) == 4 and read.params.clip_radius == 1.0
            # What the MPC revealed is the rule in clear on the replayed updates, the round's projections and center.
            replayed = [nodes[m].local_update(info) for m in members]
            rows = np.stack([to_fixed(flatten(u, config.frac_bits), read.params) for u, _, _, _ in replayed])
            center = clip_center(config, sim.task, sim.store, r)
            assert (center is None) == (r == 1)
            seed, k = bytes.fromhex(read.outcome.transcript["seed"]), read.params.projections
            v = np.zeros(rows.shape[1], dtype=np.int64) if center is None else center
            levels = clip_levels(project_exact(rows, seed, k).tolist(), project_exact(v, seed, k).tolist(), read.params)
            weighted, level_weight = clipped_sums(rows, levels, [n for _, _, n, _ in replayed])
            assert read.outcome.weighted_sum.tolist() == weighted.tolist()
            assert read.outcome.clip_weight == level_weight
            mine = levels[members.index(flipped)]
            assert mine < min(level for m, level in zip(members, levels, strict=True) if m != flipped)
        report = verify_task(ws.chain, ws.config.consortium, sim.task.address, sim.store)
        assert report.ok, report  # the audit re-derives each finalized model from W, M and the center


def test_a_silent_committee_member_aborts_the_round_by_name_and_the_next_round_runs(tmp_path: Path) -> None:
    ws, sim = masked_consortium(tmp_path, rounds=2)
    with ws:
        sim.nodes[:] = [SilentOnCommittee(node, round_id=1) for node in sim.nodes]
        for node in sim.nodes:
            _mode(node).check_timeout = 8.0
        Simulation(sim.task, sim.nodes).run()
        silent = sim.task.check_committee(1)[0]
        events = sim.task.events()
        aborted = [(e.round_id, e.reason) for e in events if isinstance(e, RoundAborted)]
        assert aborted == [(1, "masked checks: no majority outcome from the committee")]
        assert [e.checker for e in events if isinstance(e, CheckerSilent)] == [silent]
        aborts = [e for e in events if isinstance(e, CheckAbortPosted)]
        assert sorted(e.checker for e in aborts) == sorted(sim.task.check_committee(1)[1:])
        records = [json.loads(sim.store.get(e.abort_hash.removeprefix("0x"))) for e in aborts]
        # A party that waited out its timeout names the member that never answered (a party that failed
        # first, when its peer's connection was missing, records its failure instead).
        assert any(r["silent"] == [silent] and "stopped answering" in r["reason"] for r in records)
        assert all(r["silent"] in ([], [silent]) for r in records)
        info = sim.task.round(2)
        assert info.phase is Phase.FINALIZED
        assert info.global_model == sim.task.round(1).global_model
        assert info.model_hash == plaintext_fedavg_hash(sim, 2, [u.member for u in sim.task.updates(2)])


def test_the_masked_check_settings_are_checked_and_recorded_at_deployment() -> None:
    model = {"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}
    plain = TaskConfig(model=model, secure_aggregation=True)
    assert "masked" not in plain.to_bytes().decode()  # a task without the checks hashes as before they existed
    config = TaskConfig(model=model, secure_aggregation=True, masked_checks=True, masked_committee=5)
    assert config.chain_params("0x" + "00" * 32).committee_size == 5
    assert config.hash != plain.hash
    bad: list[tuple[dict[str, Any], str]] = [
        ({"masked_checks": True}, "need secure_aggregation"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_committee": 4}, "must be odd"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_min_cosine": 1.0}, "within \\[0, 1\\)"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_norm_bound": -1.0}, "must be positive"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_reference": "global"}, "masked_reference must be"),
    ]
    for fields, message in bad:
        with pytest.raises(ConfigError, match=message):
            TaskConfig(model=model, **fields)


def test_the_direction_check_defaults_to_the_committee_references_and_old_configs_keep_the_previous_aggregate() -> None:
    model = {"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}
    directed = TaskConfig(model=model, secure_aggregation=True, masked_checks=True, masked_min_cosine=0.2)
    assert directed.masked.reference == "committee"
    assert TaskConfig.from_bytes(directed.to_bytes()) == directed
    # A config committed before the setting existed compared with the previous aggregate: it loads so, and its
    # hash (what the chain holds) is unchanged.
    body = json.loads(directed.to_bytes())
    del body["masked_reference"]
    old_bytes = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    old = TaskConfig.from_bytes(old_bytes)
    assert old.masked.reference == "previous"
    assert old.to_bytes() == old_bytes
    plain = TaskConfig(model=model, secure_aggregation=True, masked_checks=True)
    assert plain.masked.reference == "previous" and "masked_reference" not in plain.to_bytes().decode()


def test_centered_clipping_in_the_checks_is_a_task_option_off_by_default() -> None:
    model = {"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}
    plain = TaskConfig(model=model, secure_aggregation=True, masked_checks=True)
    assert "masked_clip" not in plain.to_bytes().decode()  # a task that does not clip hashes as before
    assert check_params(plain, 8).clip_radius is None
    clipping = TaskConfig(
        model=model, secure_aggregation=True, masked_checks=True, masked_clip_levels=16, clip_norm=2.0
    )
    assert TaskConfig.from_bytes(clipping.to_bytes()) == clipping and clipping.hash != plain.hash
    params = check_params(clipping, 8)
    assert (params.clip_radius, params.clip_levels) == (1.0, 16)  # half the clip norm, as validated rounds clip
    radius = TaskConfig(model=model, secure_aggregation=True, masked_checks=True, masked_clip_levels=4,
                        masked_clip_radius=0.3)  # fmt: skip
    assert (check_params(radius, 8).clip_radius, check_params(radius, 8).clip_levels) == (0.3, 4)
    for fields, message in [
        ({"secure_aggregation": True, "masked_clip_levels": 16}, "needs masked_checks"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_clip_levels": 257}, "within 0..256"),
        ({"secure_aggregation": True, "masked_checks": True, "masked_clip_radius": 0.0}, "must be positive"),
    ]:
        with pytest.raises(ConfigError, match=message):
            TaskConfig(model=model, **fields)
    # The aggregator applies the revealed clipping sums around the center: W = sum n_i l_i x_i, M = sum n_i l_i.
    global_params, bits = {"w": np.zeros(4, dtype=np.float32)}, clipping.frac_bits
    center = np.array([4, -8, 0, 2], dtype=np.int64) << bits
    x = np.array([[8, 0, 0, 0], [-40, 0, 0, 0]], dtype=np.int64) << bits
    levels, examples = [16, 4], [3, 1]
    outcome = CheckOutcome(["a", "b"], {}, (x.T @ np.multiply(levels, examples)).astype(np.int64), 4, clip_weight=52)
    spec = {"kind": "sklearn-sgd", "n_features": 3, "n_classes": 2}
    params_out, _ = masked_aggregate(clipping, global_params, spec, outcome, round_id=2, center=center)
    # v + (3 * 1 * (x_a - v) + 1 * 1/4 * (x_b - v)) / 4, in fixed point
    expected = center + (3 * (x[0] - center) + (x[1] - center) // 4) // 4
    assert np.allclose(params_out["w"], expected / 2.0**bits)
    with pytest.raises(BadInput, match="clipping does not match"):
        masked_aggregate(plain, global_params, spec, outcome, round_id=2)
