"""The robustness benchmark's pieces: idx parsing, the FLTrust bias split, FLamby's heart-disease
preprocessing, batched scoring equal to fedledger's scorer, the simulated validation consensus, and
the report's target check. Small synthetic data; the benchmark itself is ``benchmarks/robustness.py``."""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import BENCHMARKS, SHARED_DATA

torch = pytest.importorskip("torch")

sys.path.insert(0, str(BENCHMARKS))

from robustness_lib.data import (  # noqa: E402
    ClientData,
    Federation,
    bias_split,
    find_fashion_mnist,
    heart_disease_federation,
    read_idx,
)
from robustness_lib.models import LocalTrainer, build_model  # noqa: E402
from robustness_lib.report import (  # noqa: E402
    Target,
    acceptance_table,
    check_target,
    lying_majority_probability,
    mean_over_seeds,
    recommend,
    results_table,
)
from robustness_lib.scenario import (  # noqa: E402
    FLSetup,
    RunResult,
    Scenario,
    alignment_with_others,
    committee_scores,
    expected_score,
    trust_committee_scores,
)
from robustness_lib.simulation import run_scenario  # noqa: E402

from fedledger.attacks import Backdoor, Compose, make_attack  # noqa: E402
from fedledger.chain.task import contract_median  # noqa: E402
from fedledger.exceptions import BadInput, ConfigError  # noqa: E402
from fedledger.learning import TorchAdapter, UpdatePipeline, apply_update, validate_update  # noqa: E402
from fedledger.learning.params import Params  # noqa: E402
from fedledger.learning.scoring import SCORING_RULES, score_trust  # noqa: E402

HEART_DIR = SHARED_DATA / "heart-disease"


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_read_idx_roundtrip_and_malformed(tmp_path: Path) -> None:
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    good = tmp_path / "x-idx3-ubyte.gz"
    good.write_bytes(gzip.compress(_idx_bytes(images)))
    np.testing.assert_array_equal(read_idx(good), images)
    bad_magic = tmp_path / "bad.gz"
    bad_magic.write_bytes(gzip.compress(b"\x01\x00\x08\x01" + (3).to_bytes(4, "big") + b"abc"))
    with pytest.raises(BadInput, match="bad magic"):
        read_idx(bad_magic)
    truncated = tmp_path / "short.gz"
    truncated.write_bytes(gzip.compress(_idx_bytes(images)[:-5]))
    with pytest.raises(BadInput, match="bytes follow"):
        read_idx(truncated)
    not_gzip = tmp_path / "plain.gz"
    not_gzip.write_bytes(b"not gzip at all")
    with pytest.raises(BadInput, match="cannot read"):
        read_idx(not_gzip)


def test_find_fashion_mnist_rejects_a_data_dir_without_the_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="lacks the Fashion-MNIST files"):
        find_fashion_mnist(tmp_path, install=False)


def test_bias_split_partitions_and_biases_labels_to_their_group() -> None:
    y = np.random.default_rng(0).integers(0, 10, 40_000)
    parts = bias_split(y, num_clients=100, bias=0.5, num_classes=10, seed=1)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(y)))
    # Group g = clients 10g..10g+9; label g should land there with probability q = 0.5, others (1-q)/9 each.
    own = [np.mean(np.isin(np.flatnonzero(y == g), np.concatenate(parts[10 * g : 10 * g + 10]))) for g in range(10)]
    assert np.allclose(own, 0.5, atol=0.03)
    other = np.mean(np.isin(np.flatnonzero(y == 0), np.concatenate(parts[10:20])))
    assert abs(other - 0.5 / 9) < 0.02
    iid = bias_split(y, num_clients=100, bias=0.1, num_classes=10, seed=1)
    share = np.mean(np.isin(np.flatnonzero(y == 3), np.concatenate(iid[30:40])))
    assert abs(share - 0.1) < 0.02
    with pytest.raises(ConfigError, match="bias"):
        bias_split(y, 100, 1.5, 10, 0)


@pytest.mark.skipif(not HEART_DIR.is_dir(), reason="shared heart-disease data not present")
def test_heart_disease_matches_flamby_split_sizes() -> None:
    federation, pooled = heart_disease_federation(HEART_DIR, val_fraction=0.2, seed=0)
    train_rows = [len(c.y_train) + len(c.y_val) for c in federation.clients]
    assert train_rows == [199, 172, 30, 85]  # FLamby's Fed-Heart-Disease train sizes
    assert federation.test_groups is not None
    assert np.bincount(federation.test_groups).tolist() == [104, 89, 16, 45]
    assert pooled.X_train.shape == (486, 13)
    assert np.allclose(pooled.X_train.mean(axis=0), 0, atol=1e-5)


def _tabular_federation(num_clients: int = 4, seed: int = 0) -> Federation:
    rng = np.random.default_rng(seed)
    w = rng.normal(size=6)

    def sample(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, 6)).astype(np.float32)
        return X, (X @ w > 0).astype(np.int64)

    clients = [ClientData(*sample(80), *sample(40)) for _ in range(num_clients)]
    X_test, y_test = sample(400)
    return Federation("toy", clients, X_test, y_test, 2)


@pytest.mark.parametrize("scoring", ["relative-accuracy", "relative-loss"])
def test_batched_committee_scores_equal_fedledgers_scorer(scoring: str) -> None:
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    global_params = trainer.get_params()
    pipeline = UpdatePipeline.default(max_norm=1.0, frac_bits=24)
    adapter = TorchAdapter(build_model("logreg", num_features=6, seed=1), n_features=6, n_classes=2)
    candidates, decoded = [], []
    for c in range(2):
        client = federation.clients[c]
        local = trainer.train(
            global_params,
            torch.from_numpy(client.X_train),
            torch.from_numpy(client.y_train),
            steps=5,
            batch_size=16,
            lr=0.5,
            rng=np.random.default_rng(c),
        )
        blob = pipeline.run(local, global_params, num_examples=len(client.y_train))
        update = validate_update(blob, {k: v.shape for k, v in global_params.items()}, max_bytes=1 << 20)
        decoded.append(update)
        candidates.append(apply_update(global_params, update.tensors, frac_bits=24))
    committees = [[1, 2, 3], [0, 2, 3]]
    val = [(torch.from_numpy(c.X_val), c.y_val) for c in federation.clients]
    batched = committee_scores(trainer, global_params, candidates, committees, val, scoring=scoring)
    rule = SCORING_RULES[scoring]
    for i, committee in enumerate(committees):
        expected = [
            rule(adapter, global_params, decoded[i], federation.clients[v].X_val, federation.clients[v].y_val)
            for v in committee
        ]
        assert batched[i] == expected


def test_simulated_trust_scores_equal_fedledgers_trust_scorer() -> None:
    """The benchmark's ``trust`` path scores as :func:`fedledger.learning.scoring.score_trust` given the same
    reference update (the validator's own training on its validation data)."""
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    global_params = trainer.get_params()
    pipeline = UpdatePipeline.default(max_norm=1.0, frac_bits=24)
    setup = _setup(local_steps=5, lr=0.5)
    decoded = []
    for c in range(2):
        client = federation.clients[c]
        X, y = torch.from_numpy(client.X_train), torch.from_numpy(client.y_train)
        local = trainer.train(global_params, X, y, steps=5, batch_size=16, lr=0.5, rng=np.random.default_rng(c))
        blob = pipeline.run(local, global_params, num_examples=len(client.y_train))
        decoded.append(validate_update(blob, {k: v.shape for k, v in global_params.items()}, max_bytes=1 << 20))
    committees = [[1, 2, 3], [0, 2, 3]]
    val = [(torch.from_numpy(c.X_val), c.y_val) for c in federation.clients]
    simulated = trust_committee_scores(
        trainer, global_params, [d.tensors for d in decoded], committees, val, setup, [0, 41, 0]
    )
    adapter = TorchAdapter(build_model("logreg", num_features=6, seed=1), n_features=6, n_classes=2)
    for i, committee in enumerate(committees):
        expected = []
        for v in committee:
            X, y = val[v]
            ref_local = trainer.train(
                global_params,
                X,
                torch.from_numpy(y),
                steps=5,
                batch_size=16,
                lr=0.5,
                rng=np.random.default_rng([0, 41, 0, v]),
            )
            reference = {k: ref_local[k].astype(np.float64) - global_params[k] for k in global_params}
            expected.append(score_trust(adapter, global_params, decoded[i], X.numpy(), y, reference=reference))
        assert simulated[i] == expected
    assert len({s for row in simulated for s in row}) > 1  # real, differing scores
    # Liars' honest scores are never read: they train no reference, and the others' scores do not move.
    skipped = trust_committee_scores(
        trainer, global_params, [d.tensors for d in decoded], committees, val, setup, [0, 41, 0], skip={2}
    )
    expected_skipped = [
        [score if v != 2 else None for score, v in zip(row, committee, strict=True)]
        for row, committee in zip(simulated, committees, strict=True)
    ]
    assert skipped == expected_skipped


def test_a_score_aware_attackers_expected_trust_score_trains_its_references_once() -> None:
    """The coalition's expected score (what the score-aware attack bisects on) is the median of its members'
    honest trust scores, and however often the attack calls it, each member trains its reference once."""
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    global_params = trainer.get_params()
    pipeline = UpdatePipeline.default(max_norm=1.0, frac_bits=24)
    setup = _setup(local_steps=5, lr=0.5, scoring="trust")
    val = [(torch.from_numpy(c.X_val), c.y_val) for c in federation.clients]
    colluders = [1, 2, 3]
    calls = []
    train = trainer.train

    def counting_train(*args: Any, **kwargs: Any) -> Params:
        calls.append(1)
        return train(*args, **kwargs)

    trainer.train = counting_train  # type: ignore[method-assign]
    score = expected_score(trainer, global_params, pipeline, setup, val, colluders, 4, [0, 43, 0])
    client = federation.clients[0]
    X, y = torch.from_numpy(client.X_train), torch.from_numpy(client.y_train)
    honest = train(global_params, X, y, steps=5, batch_size=16, lr=0.5, rng=np.random.default_rng(0))
    deltas = [{k: sign * (honest[k] - global_params[k]) for k in global_params} for sign in (1.0, -1.0, 0.5)]
    got = [score(delta) for delta in deltas]
    assert len(calls) == len(colluders)  # three calls, one reference per colluder
    for delta, value in zip(deltas, got, strict=True):
        local = {k: (global_params[k] + delta[k]).astype(np.float32) for k in global_params}
        tensors, _ = pipeline.transform(local, global_params, num_examples=1)
        (row,) = trust_committee_scores(trainer, global_params, [tensors], [colluders], val, setup, [0, 43, 0])
        assert value == contract_median([int(s) for s in row if s is not None])
    assert got[0] > 5000 >= got[1]  # an honest step and its sign flip


def _setup(**overrides: object) -> FLSetup:
    base: dict[str, object] = dict(
        model="logreg",
        rounds=3,
        clients_per_round=4,
        local_steps=3,
        batch_size=16,
        lr=0.5,
        clip_norm=1.0,
        committee_size=3,
    )
    base.update(overrides)
    return FLSetup(**base)  # type: ignore[arg-type]


def _run(scenario: Scenario, setup: FLSetup | None = None) -> RunResult:
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    return run_scenario(
        federation, setup or _setup(), scenario, make_attack(scenario.attack), trainer, trainer.get_params()
    )


def test_attack_free_run_learns_and_accepts_honest_updates() -> None:
    result = _run(Scenario("fedavg", "none", 0.25))
    assert result.test_error < 0.3
    assert result.honest_acceptance == 1.0
    assert not result.rule_errors


def test_on_round_sees_the_global_model_after_every_round_even_when_nothing_is_accepted() -> None:
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    initial = trainer.get_params()

    def rounds_seen(setup: FLSetup) -> list[tuple[int, dict[str, np.ndarray]]]:
        seen: list[tuple[int, dict[str, np.ndarray]]] = []
        scenario = Scenario("fedavg", "none", 0.25)
        run_scenario(
            federation, setup, scenario, make_attack("none"), trainer, initial, on_round=lambda *a: seen.append(a)
        )
        return seen

    trained = rounds_seen(_setup(rounds=3))
    assert [r for r, _ in trained] == [0, 1, 2]
    assert all(any(not np.array_equal(p[k], initial[k]) for k in initial) for _, p in trained)
    rejected = rounds_seen(_setup(rounds=3, acceptance_threshold=10_001))  # no score reaches it
    assert [r for r, _ in rejected] == [0, 1, 2]
    assert all(np.array_equal(p[k], initial[k]) for _, p in rejected for k in initial)


def test_centered_clipping_radius_is_a_setting_of_the_run() -> None:
    # The radius reaches the rule: a tiny one holds the model near its start, the default lets it learn.
    scenario = Scenario("centered-clipping", "none", 0.25)
    default, tight = _run(scenario), _run(scenario, _setup(tau_fraction=0.001))
    assert default.test_error < 0.3 < tight.test_error
    with pytest.raises(ConfigError, match="tau_fraction must be positive"):
        _setup(tau_fraction=0.0)


def test_clipping_to_the_median_norm_is_a_setting_of_the_run() -> None:
    # The setting reaches the aggregation: the validators let the scaled (boosted) updates through here, and
    # FedAvg learns better once each accepted update is clipped to the round's median accepted norm.
    scenario = Scenario("fedavg", "scaling", 0.25)
    plain, clipped = _run(scenario), _run(scenario, _setup(clip_to_median_norm=True))
    assert plain.malicious_acceptance == 1.0
    assert clipped.test_error < plain.test_error
    assert not clipped.rule_errors


def test_lifting_to_the_median_norm_is_a_setting_of_the_run() -> None:
    # Under trust scoring the score-aware attacker's tiny copies of honest steps all pass and slow FedAvg down;
    # lifted to the round's median norm they count as the steps they copy: the attack-free run's error.
    trust = {"scoring": "trust", "acceptance_threshold": 5_100}
    scenario = Scenario("fedavg", "score-aware", 0.25)
    plain, lifted = _run(scenario, _setup(**trust)), _run(scenario, _setup(lift_to_median_norm=True, **trust))
    attack_free = _run(Scenario("fedavg", "none", 0.25), _setup(lift_to_median_norm=True, **trust))
    assert plain.malicious_acceptance == lifted.malicious_acceptance == 1.0
    assert lifted.test_error == attack_free.test_error < plain.test_error
    assert not lifted.rule_errors


def test_trainer_reputation_leaves_a_mostly_rejected_trainer_out_as_the_contract_does() -> None:
    # Sign-flipped updates are rejected; with trainer reputation (warm-up 2) the attacker is left out after its
    # second rejection: the contract refuses its later commitments, so it submits two updates of eight.
    scenario = Scenario("fedavg", "sign-flip", 0.25)
    plain = _run(scenario, _setup(rounds=8, reputation_warmup=2))
    on = _run(scenario, _setup(rounds=8, reputation_warmup=2, max_rejection=5_000))
    assert (plain.distrusted_malicious_trainers, plain.distrusted_honest_trainers) == (0, 0)  # off: no record
    assert (on.distrusted_malicious_trainers, on.distrusted_honest_trainers) == (1, 0)
    assert (plain.malicious_submitted, on.malicious_submitted) == (8, 2)
    assert on.malicious_acceptance is not None and plain.malicious_acceptance is not None
    assert on.malicious_acceptance <= plain.malicious_acceptance
    assert on.honest_acceptance == plain.honest_acceptance


def test_an_inflated_count_is_capped_at_the_median_members_in_the_simulation() -> None:
    # A free-rider claiming the task's maximum example count: its zero update passes the validators, and with the
    # claim taken as declared FedAvg barely moves; with the cap (the default) the honest members train the model.
    scenario = Scenario("fedavg", "free-rider+count-inflation", 0.25)
    scored = {"scoring": "relative", "acceptance_threshold": 4_500}  # a zero update costs no accuracy
    scored["registered_rows"] = False  # members could register any count: only max_examples bounds the claim
    capped, plain = _run(scenario, _setup(**scored)), _run(scenario, _setup(**scored, cap_examples_to_median=False))
    assert capped.malicious_acceptance == plain.malicious_acceptance == 1.0
    assert capped.test_error + 0.1 < plain.test_error
    assert not capped.rule_errors


def test_a_score_aware_attacker_passes_validation_that_rejects_its_sign_flips_in_the_simulation() -> None:
    # Its own validation data stands in for the committees': it sends the strongest blend of its honest and its
    # sign-flipped delta it expects to score above the floor, and the validators accept what they rejected.
    scored = {"scoring": "relative", "acceptance_threshold": 4_500, "rounds": 6}
    flips = _run(Scenario("fedavg", "sign-flip", 0.25), _setup(**scored))
    tuned = _run(Scenario("fedavg", "score-aware", 0.25), _setup(**scored))
    assert flips.malicious_acceptance is not None and tuned.malicious_acceptance is not None
    assert flips.malicious_acceptance < tuned.malicious_acceptance, (
        flips.malicious_acceptance,
        tuned.malicious_acceptance,
    )
    assert not tuned.rule_errors


def test_registered_rows_leave_count_inflation_nothing_to_inflate_in_the_simulation() -> None:
    # Held to the rows it registered (the default), the inflating member declares its true count: the run is the
    # attack-free one, bit for bit. Without registration the same attacker outweighs the others.
    inflated, honest = Scenario("fedavg", "count-inflation", 0.25), Scenario("fedavg", "none", 0.25)
    held, none = _run(inflated, _setup()), _run(honest, _setup())
    assert (held.test_error, held.honest_acceptance) == (none.test_error, none.honest_acceptance)
    loose = _run(inflated, _setup(registered_rows=False, cap_examples_to_median=False))
    assert loose.test_error != none.test_error


@pytest.mark.skipif(not HEART_DIR.is_dir(), reason="shared heart-disease data not present")
def test_heart_section_runs_every_seed_with_the_cross_silo_configuration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import robustness  # noqa: PLC0415  (benchmarks/robustness.py, on sys.path above)

    out = tmp_path / "heart.json"
    # The profile's rule; FedAvg, the reference every table is checked against, joins it.
    argv = ["--heart-only", "--rules", "median", "--attacks", "none,backdoor", "--heart-seeds", "0,1"]
    argv += ["--workers", "1", "--shared-dir", str(HEART_DIR.parent), "--json", str(out)]
    assert robustness.main(argv) == 0
    raw = json.loads(out.read_text())["heart_disease"]
    assert raw["seeds"] == [0, 1]
    setup = raw["setup"]
    reputation = (setup["max_rejection"], setup["min_mean_score"], setup["reputation_warmup"])
    assert (setup["scoring"], *reputation, setup["clip_to_median_norm"]) == ("relative", 0, 4_700, 5, True)
    assert raw["setup"]["cap_examples_to_median"] is True
    assert sorted((r["rule"], r["attack"], r["seed"]) for r in raw["results"]) == [
        ("fedavg", "backdoor", 0),
        ("fedavg", "backdoor", 1),
        ("fedavg", "none", 0),
        ("fedavg", "none", 1),
        ("median", "backdoor", 0),
        ("median", "backdoor", 1),
        ("median", "none", 0),
        ("median", "none", 1),
    ]
    printed = capsys.readouterr().out
    assert "seed(s) 0, 1" in printed and "Trainer reputation (min mean score 4700 after 5 scored updates)" in printed
    # The few-silos profile's rule against the left-out reference: one attack-free run per seed without the
    # malicious hospital (seeds 0 and 1 make hospital 3 malicious), on all four hospitals' test rows.
    assert raw["profile"] == "few-silos"
    reference = raw["left_out_reference"]
    assert [(r["rule"], r["attack"], r["seed"], r["malicious_fraction"]) for r in reference] == [
        ("median", "none", 0, 0.0),
        ("median", "none", 1, 0.0),
    ]
    assert all(0 < r["test_error"] < 0.5 and r["mean_test_error_per_group"] is not None for r in reference)
    assert "The few-silos profile's rule (median)" in printed and "Left-out reference" in printed
    assert "Committee medians of the attacker's updates vs the honest ones" in printed
    # The task options override the section's configuration.
    argv = ["--heart-only", "--rules", "fedavg", "--attacks", "none", "--heart-seeds", "0"]
    argv += ["--workers", "1", "--shared-dir", str(HEART_DIR.parent), "--json", str(out)]
    options = ["--scoring", "trust", "--threshold", "5100", "--max-rejection", "3000", "--min-mean-score", "0"]
    assert robustness.main([*argv, *options, "--reputation-warmup", "8"]) == 0
    setup = json.loads(out.read_text())["heart_disease"]["setup"]
    overridden = (setup["max_rejection"], setup["min_mean_score"], setup["reputation_warmup"])
    assert (setup["scoring"], setup["acceptance_threshold"], *overridden) == ("trust", 5_100, 3_000, 0, 8)


def test_composed_attacks_take_each_parts_task_parameters() -> None:
    import robustness  # noqa: PLC0415

    composed = robustness.build_attack("backdoor+count-inflation", 2, tabular=True)
    assert isinstance(composed, Compose)
    backdoor = robustness.build_attack("backdoor", 2, tabular=True)
    assert composed.parts == (backdoor, robustness.build_attack("count-inflation", 2, tabular=True))
    assert isinstance(backdoor, Backdoor) and backdoor.trigger.features == (3,) and backdoor.norm_fraction == 0.99
    flips = robustness.build_attack("label-flip+lying-validators", 10)
    assert isinstance(flips, Compose) and flips.parts[0] == robustness.build_attack("label-flip", 10)


def test_benchmark_setups_are_the_task_profiles_defaults() -> None:
    import robustness  # noqa: PLC0415

    assert robustness.profile_setup("few-silos") == {
        "scoring": "relative",
        "acceptance_threshold": 4_500,
        "clip_to_median_norm": True,
        "lift_to_median_norm": False,
        "score_at_median_norm": True,
        "center_scores": True,
        "cap_examples_to_median": True,
        "max_disagreement": 5_000,
        "max_rejection": 0,
        "min_mean_score": 4_700,
        "reputation_warmup": 5,
        "min_approvals": 0,
    }
    heart, fmnist = robustness.HEART, robustness.FMNIST_FULL
    assert (heart.scoring, heart.clip_to_median_norm, heart.min_mean_score) == ("relative", True, 4_700)
    assert (fmnist.max_rejection, fmnist.min_mean_score, fmnist.reputation_warmup) == (0, 0, 10)
    assert heart.cap_examples_to_median and fmnist.cap_examples_to_median
    assert heart.score_at_median_norm and not fmnist.score_at_median_norm
    assert heart.center_scores and not fmnist.center_scores
    assert fmnist.lift_to_median_norm and not heart.lift_to_median_norm
    assert (fmnist.scoring, fmnist.acceptance_threshold, fmnist.clip_to_median_norm) == ("trust", 5_100, False)
    assert robustness.HEART_RULE == "median" and robustness.profile_rule("consortium") == "centered-clipping"


def test_honest_alignment_is_the_cosine_with_the_others_mean() -> None:
    aligned = [{"w": np.array([1.0, 0.0])}, {"w": np.array([2.0, 0.0])}, {"w": np.array([1.0, 0.1])}]
    assert all(c > 0.99 for c in alignment_with_others(aligned))
    opposed = [{"w": np.array([1.0, 0.0])}, {"w": np.array([-1.0, 0.0])}]
    assert alignment_with_others(opposed) == [-1.0, -1.0]
    assert alignment_with_others(opposed[:1]) == []  # one update has no others
    assert alignment_with_others([{"w": np.zeros(2)}, {"w": np.ones(2)}]) == []  # a zero update has no direction
    result = _run(Scenario("fedavg", "none", 0.25), _setup(rounds=4))
    assert result.honest_alignment is not None and -1 <= result.honest_alignment <= 1


def test_run_without_malicious_leaves_the_seeds_attacker_out() -> None:
    import robustness  # noqa: PLC0415

    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    result = robustness.run_without_malicious(federation, _setup(), "fedavg", 0.25, 0, trainer.get_params())
    assert (result.scenario.attack, result.scenario.malicious_fraction, result.malicious_acceptance) == (
        "none",
        0.0,
        None,
    )
    # Three members left, all honest: every update came from them and was accepted.
    assert result.honest_acceptance == 1.0 and result.test_error < 0.3


def test_validators_reject_sign_flipped_updates() -> None:
    result = _run(Scenario("fedavg", "sign-flip", 0.25), _setup(rounds=6))
    assert result.malicious_acceptance is not None and result.malicious_acceptance < 0.5
    assert result.test_error < 0.3


def test_a_lying_majority_of_validators_flips_acceptance() -> None:
    # Three of four members lie (the malicious one plus two colluders): every committee of three others
    # has a lying majority, so the contract's median accepts the malicious update and rejects honest ones.
    result = _run(Scenario("fedavg", "sign-flip", 0.25, lying_validator_fraction=0.75))
    assert result.malicious_acceptance == 1.0
    assert result.honest_acceptance == 0.0


def test_reputation_distrusts_always_lying_validators_but_not_adaptive_ones() -> None:
    """Four of twelve members lie in committees of three. Liars that always lie are outvoted and all
    distrusted; adaptive liars score honestly where they are a minority, so none of their scores goes
    against the outcome, reputation leaves them in, and they win the committees they hold."""
    federation = _tabular_federation(12)
    scenario = Scenario("fedavg", "sign-flip", 0.25, lying_validator_fraction=1 / 3)

    def run(adaptive: bool) -> RunResult:
        trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
        setup = _setup(rounds=6, clients_per_round=12, reputation_warmup=3, adaptive_liars=adaptive)
        return run_scenario(federation, setup, scenario, make_attack("sign-flip"), trainer, trainer.get_params())

    always, adaptive = run(False), run(True)
    assert always.num_liars == adaptive.num_liars == 4
    assert (always.distrusted_liars, always.distrusted_honest) == (4, 0)
    assert always.liar_disagreement is not None and always.liar_disagreement > 0.5
    assert (adaptive.distrusted_liars, adaptive.distrusted_honest) == (0, 0)
    # Their scores go against the outcome only where an honest score of theirs was outvoted.
    assert adaptive.liar_disagreement is not None and adaptive.honest_disagreement is not None
    assert adaptive.liar_disagreement < 0.05 < adaptive.honest_disagreement
    assert adaptive.lying_majority is not None and adaptive.lying_majority > 0
    assert always.lying_majority is not None and always.lying_majority < adaptive.lying_majority  # liars gone
    assert adaptive.malicious_acceptance is not None and always.malicious_acceptance is not None
    assert adaptive.malicious_acceptance > always.malicious_acceptance


def test_committees_shrink_to_the_validators_reputation_leaves() -> None:
    """Four members, committees of three, one liar: once it is distrusted an honest update has two other
    trusted validators, and (as the contract seats everyone left) its committee is those two."""
    result = _run(
        Scenario("fedavg", "sign-flip", 0.25, lying_validator_fraction=0.25), _setup(rounds=6, reputation_warmup=3)
    )
    assert (result.num_liars, result.distrusted_liars, result.distrusted_honest) == (1, 1, 0)
    assert result.honest_acceptance > 0.5 and not result.rule_errors


def test_backdoor_success_is_measured_for_backdoor_attacks_only() -> None:
    federation = _tabular_federation()
    trainer = LocalTrainer(build_model("logreg", num_features=6, seed=0))
    attack = make_attack("backdoor", target_label=1, trigger_size=1, trigger_value=5.0)
    initial = trainer.get_params()
    result = run_scenario(federation, _setup(), Scenario("median", "backdoor", 0.25), attack, trainer, initial)
    assert result.plants_backdoor and result.backdoor_success is not None and 0.0 <= result.backdoor_success <= 1.0
    assert result.backdoor_flips is not None and 0.0 <= result.backdoor_flips <= result.backdoor_success
    assert _run(Scenario("median", "none", 0.25)).backdoor_success is None
    assert isinstance(attack, Backdoor)
    probe = (attack.trigger, attack.target_label)
    clean = run_scenario(
        federation, _setup(), Scenario("median", "none", 0.25), make_attack("none"), trainer, initial, probe=probe
    )
    assert not clean.plants_backdoor and clean.backdoor_success is not None


def _result(
    rule: str, attack: str, error: float, backdoor: float | None = None, flips: float | None = None
) -> RunResult:
    planted = attack == "backdoor"
    return RunResult(
        Scenario(rule, attack, 0.2), error, backdoor, 1.0, None, 0.0, [], plants_backdoor=planted, backdoor_flips=flips
    )


def test_target_check_and_recommendation() -> None:
    results = [
        _result("fedavg", "none", 0.10, 0.20),
        _result("fedavg", "backdoor", 0.11, 0.90),
        _result("median", "none", 0.12),
        _result("median", "backdoor", 0.12, 0.01),
        _result("krum", "none", 0.104),
        _result("krum", "backdoor", 0.115, 0.02),
    ]
    rules = ["fedavg", "median", "krum"]
    checks = {c.rule: c for c in check_target(results, rules, 0.10, Target())}
    assert checks["fedavg"].failures == ("backdoor: backdoor 0.900 > 0.03 (trigger base rate without attack 0.200)",)
    assert not checks["median"].meets  # attack-free error 0.12 is worse than FedAvg's 0.10
    assert checks["krum"].meets
    assert recommend([list(checks.values())]) == ("krum", True)
    closest, met = recommend([[checks["fedavg"], checks["median"]]])
    assert (closest, met) == ("median", False)
    table = results_table(results, rules, ["none", "backdoor"])
    assert "| backdoor | 0.110 / 0.900 | 0.120 / 0.010 | 0.115 / 0.020 |" in table
    # A base rate (no backdoor planted) is shown in parentheses and never fails the target.
    assert "| none | 0.100 / (0.200) | 0.120 / – | 0.104 / – |" in table


def test_backdoor_limit_is_checked_on_the_triggers_flips_where_measured() -> None:
    confused = [_result("fedavg", "none", 0.25, 0.05, 0.0), _result("fedavg", "backdoor", 0.25, 0.06, 0.01)]
    (check,) = check_target(confused, ["fedavg"], 0.25, Target())
    assert check.meets and check.worst_backdoor == 0.01
    planted = [_result("fedavg", "none", 0.25, 0.05, 0.0), _result("fedavg", "backdoor", 0.25, 0.90, 0.70)]
    (check,) = check_target(planted, ["fedavg"], 0.25, Target())
    assert check.failures == ("backdoor: trigger flips 0.700 > 0.03 (backdoor 0.900)",)
    assert "| backdoor | 0.250 / 0.900 [0.700] |" in results_table(planted, ["fedavg"], ["backdoor"])
    (mean,) = [r for r in mean_over_seeds([planted, confused]) if r.scenario.attack == "backdoor"]
    assert mean.backdoor_flips == pytest.approx(0.355)
    assert RunResult.from_json(planted[1].to_json()).backdoor_flips == 0.70


def test_run_records_round_trip_and_older_records_still_load() -> None:
    run = RunResult(
        Scenario("centered-clipping", "sign-flip", 0.2, 1 / 3, seed=4),
        0.27,
        None,
        0.85,
        0.1,
        12.0,
        ["fell back"],
        honest_medians=[5200, 6100],
        distrusted_liars=3,
        num_liars=34,
        lying_majority=0.04,
        test_error_sd=0.01,
    )
    assert RunResult.from_json(json.loads(json.dumps(run.to_json()))) == run
    # A record written before the reputation fields existed: they take their defaults.
    old = {k: v for k, v in run.to_json().items() if k not in {"distrusted_liars", "num_liars", "lying_majority"}}
    loaded = RunResult.from_json(old)
    assert (loaded.distrusted_liars, loaded.num_liars, loaded.lying_majority) == (0, 0, None)
    assert loaded.honest_medians == [5200, 6100] and loaded.scenario == run.scenario
    with pytest.raises(ConfigError, match="centered-clipping/sign-flip lacks 'test_error'"):
        RunResult.from_json({k: v for k, v in run.to_json().items() if k != "test_error"})


def test_where_validators_lie_the_row_without_attack_is_held_to_the_error_margin() -> None:
    # The row "none" of the lying setting still has the liars: an attack, checked like any other against
    # FedAvg with nobody lying; without that reference it is the attack-free row and gets the tolerance.
    results = [_result("fedavg", "none", 0.275), _result("centered-clipping", "none", 0.265)]
    rules = ["fedavg", "centered-clipping"]
    strict = {c.rule: c for c in check_target(results, rules, 0.260, Target())}
    assert strict["fedavg"].failures == ("none: error 0.275 > 0.265",) and strict["centered-clipping"].meets
    lying = {c.rule: c for c in check_target(results, rules, 0.260, Target(), attack_free_row=False)}
    assert lying["fedavg"].meets and lying["centered-clipping"].meets
    assert not check_target([_result("fedavg", "none", 0.285)], ["fedavg"], 0.26, Target(), attack_free_row=False)[
        0
    ].meets


def test_mean_over_seeds_reports_mean_and_sample_sd() -> None:
    def seeded(seed: int, error: float, backdoor: float) -> RunResult:
        return RunResult(
            Scenario("fedavg", "backdoor", 0.2, seed=seed),
            error,
            backdoor,
            0.5 + seed / 10,
            0.25,
            1.0,
            [f"round {seed}: too few"] if seed == 1 else [],
            plants_backdoor=True,
        )

    (cell,) = mean_over_seeds([[seeded(0, 0.30, 0.01)], [seeded(1, 0.34, 0.03)], [seeded(2, 0.32, 0.02)]])
    assert cell.test_error == pytest.approx(0.32) and cell.test_error_sd == pytest.approx(0.02)
    assert cell.backdoor_success == pytest.approx(0.02) and cell.backdoor_sd == pytest.approx(0.01)
    assert cell.honest_acceptance == pytest.approx(0.6) and cell.num_seeds == 3
    assert cell.rule_errors == ["seed 1 round 1: too few"]
    table = results_table([cell], ["fedavg"], ["backdoor"])
    assert "| backdoor | 0.320±0.020 / 0.020±0.010 (1 rounds failed) |" in table
    assert "| backdoor | 0.60 / 0.25 |" in acceptance_table([cell], ["fedavg"], ["backdoor"])


def test_scoring_at_round_weight_and_krum_fallback_in_the_simulation() -> None:
    result = _run(Scenario("bulyan", "sign-flip", 0.25), _setup(score_weight="round", rounds=4))
    assert not result.rule_errors  # too few accepted for Bulyan: the median fallback aggregates instead
    assert result.honest_medians and result.malicious_medians
    with pytest.raises(ConfigError, match="unknown score weight"):
        _setup(score_weight="half")


def test_lying_majority_probability_is_hypergeometric() -> None:
    # 3 of 5 others lying, committees of 3: majority needs 2 or 3 liars: (3*2 + 1) / C(5,3) = 7/10.
    assert lying_majority_probability(6, 3, 3) == pytest.approx(0.7)
    assert lying_majority_probability(100, 0, 3) == 0.0
    assert lying_majority_probability(100, 99, 5) == 1.0
    sizes = [lying_majority_probability(100, 33, k) for k in (3, 5, 7, 11)]
    assert sizes == sorted(sizes, reverse=True) and sizes[0] == pytest.approx(0.257, abs=1e-3)
    with pytest.raises(ValueError, match="need 0 <= liars"):
        lying_majority_probability(10, 10, 3)


def test_report_from_json_merges_files_and_recommends(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import robustness  # noqa: PLC0415  (benchmarks/robustness.py, on sys.path above)

    title = robustness.SETTINGS[0].title
    rows = [
        _result(rule, attack, err, bd).to_json()
        for rule, attack, err, bd in [
            ("fedavg", "none", 0.30, 0.01),
            ("fedavg", "backdoor", 0.31, 0.02),
            ("median", "none", 0.30, None),
            ("median", "backdoor", 0.40, 0.01),
        ]
    ]
    first = tmp_path / "a.json"
    first.write_text(json.dumps({"settings": {title: {"results": rows[:2]}}}))
    second = tmp_path / "b.json"
    second.write_text(json.dumps({"settings": {title: {"results": rows}}}))  # repeats FedAvg: counted once
    assert robustness.main(["--report", str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "| backdoor | 0.310 / 0.020 | 0.400 / 0.010 |" in out
    assert "- median: backdoor: error 0.400 > 0.320" in out
    assert "**fedavg** (meets the target in every setting)" in out
    assert robustness.main(["--report", str(second), "--rules", "krum"]) == 0  # keeps FedAvg, drops median
    out = capsys.readouterr().out
    assert "| attack | fedavg |" in out and "median" not in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert robustness.main(["--report", str(bad)]) == 2


def test_report_checks_the_lying_setting_against_fedavg_with_nobody_lying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import robustness  # noqa: PLC0415  (benchmarks/robustness.py, on sys.path above)

    title = robustness.SETTINGS[2].title
    assert robustness.SETTINGS[2].committee_size == robustness.LYING_COMMITTEE > 3

    def lying(rule: str, attack: str, error: float, seed: int, liars: float = 1 / 3) -> dict[str, object]:
        return RunResult(Scenario(rule, attack, 0.2, liars, seed), error, None, 0.6, 0.2, 1.0, []).to_json()

    rows = [lying("fedavg", "none", 0.29, s) for s in (0, 1)] + [lying("fedavg", "sign-flip", 0.30, s) for s in (0, 1)]
    refs = [lying("fedavg", "none", 0.26, 0, 0.0), lying("fedavg", "none", 0.28, 1, 0.0)]
    path = tmp_path / "lying.json"
    path.write_text(json.dumps({"settings": {title: {"results": rows, "reference_results": refs}}}))
    assert robustness.main(["--report", str(path)]) == 0
    out = capsys.readouterr().out
    assert "no lying validator): 0.270±0.014; with the lying validators alone (row none): 0.290." in out
    assert "- fedavg: sign-flip: error 0.300 > 0.290" in out  # none (0.290) is within the 0.02 margin
    # --settings keeps only those tables: an older file's lying table with committees of 3 is another title.
    older = tmp_path / "older.json"
    older_title = "20 % malicious, one third of validators lying"
    older.write_text(json.dumps({"settings": {older_title: {"results": rows, "reference_results": refs}}}))
    assert robustness.main(["--report", str(path), str(older), "--settings", "3"]) == 0
    out = capsys.readouterr().out
    assert f"### {title}\n" in out and f"### {older_title}\n" not in out
    assert robustness.main(["--report", str(older), "--settings", "3"]) == 2
    assert "none of the settings asked for is in these files" in capsys.readouterr().err
    path.write_text(json.dumps({"settings": {title: {"results": rows, "reference_results": refs[:1]}}}))
    assert robustness.main(["--report", str(path)]) == 2
    assert "no reference run for seed(s) [1]" in capsys.readouterr().err


def test_the_recommended_default_is_a_rule_a_ledger_task_can_use() -> None:
    import robustness  # noqa: PLC0415  (benchmarks/robustness.py, on sys.path above)

    results = [
        _result("fedavg", "none", 0.25),
        _result("fedavg", "sign-flip", 0.32),
        _result("fltrust", "none", 0.24),
        _result("fltrust", "sign-flip", 0.25),
        _result("centered-clipping", "none", 0.25),
        _result("centered-clipping", "sign-flip", 0.26),
    ]
    checks = [check_target(results, ["fedavg", "fltrust", "centered-clipping"], 0.25, Target())]
    assert recommend(checks) == ("fltrust", True)  # needs a trusted root: no ledger task can run it
    assert recommend(robustness.ledger_checks(checks)) == ("centered-clipping", True)
    only_fltrust = [check_target(results, ["fltrust"], 0.25, Target())]
    assert robustness.ledger_checks(only_fltrust) == only_fltrust


def test_fedavg_added_only_as_the_reference_runs_attack_free_and_is_never_recommended() -> None:
    import robustness  # noqa: PLC0415

    scenarios = robustness.scenarios_of(
        ["fedavg", "centered-clipping"], ["none", "sign-flip"], 0.2, 0.0, 5, reference_only=("fedavg",)
    )
    assert [(s.rule, s.attack) for s in scenarios] == [
        ("fedavg", "none"),
        ("centered-clipping", "none"),
        ("centered-clipping", "sign-flip"),
    ]
    results = [
        _result("fedavg", "none", 0.25),
        _result("centered-clipping", "none", 0.25),
        _result("centered-clipping", "sign-flip", 0.30),  # misses the target: no rule meets it
    ]
    checks = check_target(results, ["fedavg", "centered-clipping"], 0.25, Target())
    assert not checks[0].meets and checks[0].failures == ("not run under 1 of the 2 attacks",)
    assert recommend([checks]) == ("centered-clipping", False)  # the closest, not the rule that ran less


def test_centered_clipping_center_follows_the_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    import robustness_lib.simulation as simulation

    real = simulation.aggregate
    centers: list[bool] = []

    def spy(rule: str, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        centers.append(kwargs.get("center") is not None)
        return real(rule, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(simulation, "aggregate", spy)
    _run(Scenario("centered-clipping", "none", 0.25), _setup(rounds=3))
    assert centers[0] is False and all(centers[1:]) and len(centers) >= 2  # previous aggregate from round 2 on
    centers.clear()
    _run(Scenario("centered-clipping", "none", 0.25), _setup(rounds=3, center_previous=False))
    assert centers and not any(centers)


def test_paired_comparison_of_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import robustness_compare  # noqa: PLC0415  (benchmarks/robustness_compare.py)

    def run(errors: dict[tuple[str, int], float]) -> dict[str, object]:
        rows = [
            RunResult(Scenario("centered-clipping", attack, 0.2, 0.0, seed), e, None, 1.0, None, 0.0, []).to_json()
            for (attack, seed), e in errors.items()
        ]
        return {"settings": {"20 % malicious": {"results": rows}}}

    first = run({("none", 5): 0.26, ("none", 6): 0.28, ("sign-flip", 5): 0.30, ("sign-flip", 6): 0.27})
    second = run({("none", 5): 0.27, ("none", 6): 0.27, ("sign-flip", 5): 0.28, ("sign-flip", 7): 0.20})
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path, body in zip(paths, (first, second), strict=True):
        path.write_text(json.dumps(body))
    assert robustness_compare.main([str(p) for p in paths]) == 0
    out = capsys.readouterr().out
    assert "| none | 2 | 0.2700 | 0.2700 | +0.0000 ± 0.0100 |" in out  # differences +0.01 and -0.01
    assert "| sign-flip | 1 | 0.3000 | 0.2800 | -0.0200 ± 0.0000 |" in out  # seed 7 has no pair, seed 6 neither
    assert "| all | 3 cells | | | -0.0067 ± 0.0088 |" in out
    assert robustness_compare.main([str(paths[0]), str(paths[1]), "--rule", "krum"]) == 2
    assert "no cell of rule 'krum'" in capsys.readouterr().err


def test_masked_clipping_in_the_simulation_clips_far_updates_around_the_previous_aggregate() -> None:
    # The committee's centered clipping (quantized levels from the projections' distance estimate), as the grid
    # applies it: an update near the center counts whole, a sign flip at 0.9 from it with radius 0.5 by about 8/16
    # (0.5 / 0.9 of 16 levels, rounded down, on the projections' estimate of the distance).
    from robustness_lib.masked_arm import masked_setup
    from robustness_lib.masked_checks import masked_clipped_delta

    bits = 24
    direction = np.random.default_rng(4).normal(size=200)
    direction /= np.linalg.norm(direction)

    def fixed(vector: np.ndarray) -> dict[str, np.ndarray]:
        return {"w": np.rint(vector * 2**bits).astype(np.int64).view(np.uint64)}

    center, near, flipped = fixed(0.3 * direction), fixed(0.35 * direction), fixed(-0.6 * direction)
    setup = masked_setup(_setup(rounds=4, frac_bits=bits, clip_norm=1.0, tau_fraction=0.5), 0.0, clip_levels=16)
    delta, levels = masked_clipped_delta([near, flipped], [3, 1], center, setup=setup, seed=bytes(32))
    assert levels[0] == 16 and 7 <= levels[1] <= 9
    v, a, b = (u["w"].view(np.int64) for u in (center, near, flipped))
    assert (delta["w"].view(np.int64) == (64 * v + 48 * (a - v) + levels[1] * (b - v)) // 64).all()
    result = _run(Scenario("fedavg", "sign-flip", 0.25), setup)
    assert not result.rule_errors and result.test_error < 0.3


def test_masked_checks_in_the_simulation_accept_honest_updates_and_reject_sign_flips() -> None:
    # The committee's pass bit decides acceptance: honest updates point with the last aggregate and pass, a sign
    # flip (from the second round, once there is an aggregate to compare with) does not.
    from robustness_lib.masked_arm import masked_setup

    setup = masked_setup(_setup(rounds=4), 0.0)
    honest = _run(Scenario("fedavg", "none", 0.25), setup)
    assert honest.honest_acceptance == 1.0 and not honest.rule_errors
    flips = _run(Scenario("fedavg", "sign-flip", 0.25), setup)
    assert flips.malicious_acceptance is not None and flips.malicious_acceptance <= 0.25  # its first round only
    assert flips.honest_acceptance > 0.9
