"""Privacy accounting: values pinned against dp-accounting and published numbers, budgets, the report and its CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import dp_accounting
import numpy as np
import pytest
import typer
from dp_accounting import pld, rdp
from typer.testing import CliRunner

from fedledger.cli.app import _FedLedgerGroup
from fedledger.cli.privacy import app as privacy_app
from fedledger.exceptions import BadInput, ConfigError
from fedledger.privacy.accounting import (
    PrivacyAccount,
    PrivacyBudgetExceeded,
    PrivacyLedger,
    SampledGaussian,
    SpendRecord,
    budget_to_micro,
    build_privacy_report,
    calibrate_noise_multiplier,
    compute_epsilon,
    dp_fedavg_mechanism,
    dp_sgd_mechanism,
    epsilon_to_micro,
    micro_to_epsilon,
    read_spends,
    within_budget,
    write_spends,
)

DELTA = 1e-5
# Opacus examples/mnist_README.md: sample rate 0.004 (250 steps per epoch), delta 1e-5.
# (sigma, epochs, published epsilon, dp-accounting RDP epsilon with its tighter conversion)
OPACUS_MNIST = [
    (1.1, 60, 2.91, 2.5029),  # 96.78 % accuracy
    (1.3, 15, 1.16, 0.9220),  # 94.63 %
    (0.7, 45, 6.86, 6.0937),  # 97.09 %
]
# The orders Opacus' RDP accountant uses.
OPACUS_ORDERS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def _direct_rdp(sigma: float, q: float, steps: int, delta: float = DELTA) -> float:
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    return float(rdp.RdpAccountant().compose(event).get_epsilon(delta))


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("sigma", "q", "steps"), [(1.1, 0.004, 15_000), (0.8, 0.01, 500), (2.0, 0.1, 37)])
def test_rdp_epsilon_equals_direct_dp_accounting(sigma: float, q: float, steps: int) -> None:
    assert compute_epsilon([SampledGaussian(sigma, q, steps)], delta=DELTA) == _direct_rdp(sigma, q, steps)


def test_pld_epsilon_equals_direct_dp_accounting_and_is_tighter() -> None:
    mech = SampledGaussian(1.1, 0.004, 3000)
    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(0.004, dp_accounting.GaussianDpEvent(1.1)), 3000
    )
    direct = float(pld.PLDAccountant().compose(event).get_epsilon(DELTA))
    ours = compute_epsilon([mech], delta=DELTA, accountant="pld")
    assert ours == direct
    assert ours < compute_epsilon([mech], delta=DELTA, accountant="rdp")


@pytest.mark.parametrize(("sigma", "epochs", "published", "tight"), OPACUS_MNIST)
def test_opacus_mnist_published_epsilons(sigma: float, epochs: int, published: float, tight: float) -> None:
    steps = int(round(epochs / 0.004))
    # dp-accounting's RDP curve, converted with the classic bound Opacus used, reproduces the README's numbers...
    curve = rdp.RdpAccountant(OPACUS_ORDERS).compose(SampledGaussian(sigma, 0.004, steps).dp_event())
    classic = float(np.min(curve._rdp + math.log(1 / DELTA) / (np.asarray(OPACUS_ORDERS) - 1)))
    assert classic == pytest.approx(published, abs=0.005)
    # ...and the epsilon we commit (tighter conversion) is pinned and never above the published bound.
    ours = compute_epsilon([SampledGaussian(sigma, 0.004, steps)], delta=DELTA)
    assert ours == pytest.approx(tight, abs=1e-4)
    assert ours < published


def test_rounds_compose_like_one_long_mechanism() -> None:
    account = PrivacyAccount("m", DELTA)
    for r in range(1, 5):
        account.record(r, SampledGaussian(1.0, 0.02, 100))
    assert account.epsilon == pytest.approx(_direct_rdp(1.0, 0.02, 400), rel=1e-12)
    assert [h.round_id for h in account.history()] == [1, 2, 3, 4]
    assert all(a.epsilon < b.epsilon for a, b in zip(account.history(), account.history()[1:], strict=False))


def test_mechanism_builders_follow_opacus_and_dp_fedavg_conventions() -> None:
    m = dp_sgd_mechanism(noise_multiplier=1.0, num_examples=1000, batch_size=64, epochs=3)
    assert (m.sample_rate, m.steps) == (1 / 16, 48)  # ceil(1000 / 64) = 16 steps per epoch
    f = dp_fedavg_mechanism(noise_multiplier=1.2, members_per_round=10, total_members=100, rounds=5)
    assert (f.noise_multiplier, f.sample_rate, f.steps) == (1.2, 0.1, 5)
    # Every member every round: q = 1, a plain Gaussian mechanism per round.
    every = dp_fedavg_mechanism(noise_multiplier=1.0, members_per_round=4, total_members=4)
    gaussian = float(rdp.RdpAccountant().compose(dp_accounting.GaussianDpEvent(1.0)).get_epsilon(DELTA))
    assert compute_epsilon([every], delta=DELTA) == pytest.approx(gaussian)
    with pytest.raises(BadInput, match="members_per_round"):
        dp_fedavg_mechanism(noise_multiplier=1.0, members_per_round=5, total_members=4)


def test_calibration_hits_the_target_from_below() -> None:
    sigma = calibrate_noise_multiplier(target_epsilon=2.0, delta=DELTA, sample_rate=0.004, steps=15_000)
    eps = compute_epsilon([SampledGaussian(sigma, 0.004, 15_000)], delta=DELTA)
    assert 1.99 < eps <= 2.0
    assert sigma > 1.1  # smaller epsilon than 2.50 needs more noise than Opacus' sigma 1.1


def test_no_noise_is_infinitely_expensive() -> None:
    mech = SampledGaussian(0.0, 0.1, 10)
    assert math.isinf(compute_epsilon([mech], delta=DELTA))
    assert not PrivacyAccount("m", DELTA).can_train(100.0, mech)


@pytest.mark.parametrize(
    "bad",
    [
        lambda: SampledGaussian(-1.0, 0.1, 1),
        lambda: SampledGaussian(1.0, 0.0, 1),
        lambda: SampledGaussian(1.0, 1.5, 1),
        lambda: SampledGaussian(1.0, 0.1, 0),
        lambda: SampledGaussian(math.nan, 0.1, 1),
        lambda: compute_epsilon([], delta=0.0),
        lambda: compute_epsilon([], delta=1.0),
    ],
)
def test_bad_mechanisms_are_rejected(bad: object) -> None:
    with pytest.raises(BadInput):
        bad()  # type: ignore[operator]


def test_unknown_accountant_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown privacy accountant"):
        compute_epsilon([], delta=DELTA, accountant="moments")  # type: ignore[arg-type]


# -- declared spends and budgets ---------------------------------------------------------------------


def test_micro_epsilon_rounds_declarations_up_and_budgets_down() -> None:
    assert epsilon_to_micro(0.1) == 100_000
    assert epsilon_to_micro(0.10000001) == 100_001
    assert epsilon_to_micro(0.0) == 0
    assert budget_to_micro(0.10000099) == 100_000
    assert budget_to_micro(8.0) == 8_000_000
    assert micro_to_epsilon(2_503_000) == 2.503
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(BadInput):
            epsilon_to_micro(bad)
    with pytest.raises(BadInput):
        budget_to_micro(0.0)
    with pytest.raises(BadInput):
        micro_to_epsilon(-1)
    assert within_budget(7.9999999, 8.0) and within_budget(8.0, 8.0)
    assert not within_budget(8.0000001, 8.0)


def test_member_refuses_the_round_that_would_cross_its_budget() -> None:
    per_round = SampledGaussian(1.0, 0.02, 200)
    eps = [compute_epsilon([per_round] * k, delta=DELTA) for k in (1, 2, 3)]
    budget = (eps[1] + eps[2]) / 2  # two rounds fit, the third would not
    account = PrivacyAccount("hospital-a", DELTA)
    trained = 0
    for round_id in range(1, 6):
        if not account.can_train(budget, per_round):
            break
        account.record(round_id, per_round)
        trained += 1
    assert trained == 2
    assert account.epsilon == pytest.approx(eps[1])
    with pytest.raises(PrivacyBudgetExceeded, match="hospital-a would reach epsilon") as info:
        account.require_budget(budget, per_round)
    assert info.value.epsilon_after == pytest.approx(eps[2])


def test_member_exactly_at_its_budget_refuses_to_train() -> None:
    per_round = SampledGaussian(1.0, 0.02, 200)
    account = PrivacyAccount("m", DELTA)
    first = account.epsilon_after(per_round)
    budget = epsilon_to_micro(first) / 1e6  # the budget is exactly the first round's declared spend
    assert account.can_train(budget, per_round)
    account.record(1, per_round)
    assert within_budget(account.epsilon, budget)  # at the budget, not over it
    assert not account.can_train(budget, per_round)


def test_rounds_only_move_forward() -> None:
    account = PrivacyAccount("m", DELTA)
    account.record(2, SampledGaussian(1.0, 0.1, 1))
    with pytest.raises(BadInput, match="round 2 recorded after round 2"):
        account.record(2, SampledGaussian(1.0, 0.1, 1))
    with pytest.raises(BadInput, match="start at 1"):
        PrivacyAccount("n", DELTA).record(0, SampledGaussian(1.0, 0.1, 1))


def test_ledger_round_trips_and_recomputes_epsilons(tmp_path: Path) -> None:
    ledger = PrivacyLedger(DELTA)
    ledger.record("b", 1, SampledGaussian(1.0, 0.01, 300))
    ledger.record("a", 1, SampledGaussian(1.0, 0.01, 300))
    ledger.record("a", 2, SampledGaussian(1.5, 0.02, 300))
    path = ledger.save(tmp_path / "ledger.json")
    loaded = PrivacyLedger.load(path)
    assert loaded.spend_records() == ledger.spend_records()
    assert [r.member for r in loaded.spend_records()] == ["a", "a", "b"]
    # A file stores mechanisms only: editing a stored number changes the recomputed spend, not a claim.
    body = json.loads(path.read_text())
    body["members"]["b"][0]["noise_multiplier"] = 0.5
    path.write_text(json.dumps(body))
    assert PrivacyLedger.load(path).account("b").epsilon > ledger.account("b").epsilon


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not readable JSON"),
        ('{"format": "other"}', "not a spends file"),
        ('{"format": "fedledger-privacy-spends/1", "records": {}}', "'records' must be a list"),
        ('{"format": "fedledger-privacy-spends/1", "records": [{"round": 1, "epsilon": 1}]}', "no member"),
        ('{"format": "fedledger-privacy-spends/1", "records": [{"member": "a", "round": "1", "epsilon": 1}]}', "round"),
        ('{"format": "fedledger-privacy-spends/1", "records": [{"member": "a", "round": 1}]}', "neither epsilon"),
        (
            '{"format": "fedledger-privacy-ledger/1", "delta": 1e-5, "members": {"a": [{"round": 1}]}}',
            "missing 'noise_multiplier'",
        ),
    ],
)
def test_malformed_spend_files_are_rejected(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "spends.json"
    path.write_text(content)
    with pytest.raises(BadInput, match=message):
        read_spends(path)


# -- the report --------------------------------------------------------------------------------------


def _records() -> list[SpendRecord]:
    return [
        SpendRecord("0xaa", 1, 0.8),
        SpendRecord("0xaa", 2, 1.3),
        SpendRecord.from_json({"member": "0xbb", "round": 1, "micro_epsilon": 900_001}),
        SpendRecord("0xcc", 1, 0.5),
        SpendRecord("0xcc", 3, 2.6),
    ]


def test_report_summarizes_spend_per_member_and_task() -> None:
    report = build_privacy_report(_records(), budget_epsilon=2.5, delta=DELTA)
    by_member = {m.member: m for m in report.members}
    assert by_member["0xaa"].rounds == (1, 2) and by_member["0xaa"].epsilon == 1.3
    assert by_member["0xbb"].epsilon == 0.900001
    assert by_member["0xcc"].over_budget and by_member["0xcc"].remaining == 0.0
    assert not by_member["0xaa"].over_budget and by_member["0xaa"].remaining == pytest.approx(1.2)
    assert report.task_epsilon == 2.6
    assert report.to_json()["members"][0]["micro_epsilon"] == 1_300_000


def test_report_rejects_inconsistent_declarations() -> None:
    with pytest.raises(BadInput, match="declared twice in round 1"):
        build_privacy_report([SpendRecord("a", 1, 0.1), SpendRecord("a", 1, 0.2)])
    with pytest.raises(BadInput, match="went down"):
        build_privacy_report([SpendRecord("a", 1, 0.5), SpendRecord("a", 2, 0.2)])
    with pytest.raises(BadInput):
        build_privacy_report([SpendRecord("a", 1, -0.5)])


def _cli(*args: str) -> tuple[int, str, BaseException | None]:
    root = typer.Typer(cls=_FedLedgerGroup)
    root.add_typer(privacy_app, name="privacy")
    result = CliRunner().invoke(root, ["privacy", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output, result.exception


def test_cli_report_from_a_spends_file(tmp_path: Path) -> None:
    path = write_spends(tmp_path / "spends.json", _records(), budget_epsilon=2.5, delta=DELTA)
    code, out, _ = _cli("report", "--from", str(path), "--json")
    assert code == 0
    body = json.loads(out)
    assert body["task_epsilon"] == 2.6 and body["budget_epsilon"] == 2.5
    assert [m["member"] for m in body["members"]] == ["0xaa", "0xbb", "0xcc"]
    code, out, _ = _cli("report", "--from", str(path), "--budget", "3")
    assert code == 0
    assert "0xcc" in out and "over budget" not in out and "task: epsilon 2.6000 of budget 3" in out


def test_cli_report_from_a_saved_ledger(tmp_path: Path) -> None:
    ledger = PrivacyLedger(DELTA)
    ledger.record("hospital-a", 1, SampledGaussian(1.0, 0.05, 100))
    code, out, _ = _cli("report", "--from", str(ledger.save(tmp_path / "l.json")), "--json")
    assert code == 0
    assert json.loads(out)["members"][0]["epsilon"] == pytest.approx(ledger.account("hospital-a").epsilon)


def test_cli_report_errors_name_the_problem(tmp_path: Path) -> None:
    code, _, exc = _cli("report", "--from", str(tmp_path / "missing.json"))
    assert code == BadInput.exit_code and isinstance(exc, SystemExit)
    code, _, _ = _cli("report", "--workspace", str(tmp_path))
    assert code == ConfigError.exit_code
