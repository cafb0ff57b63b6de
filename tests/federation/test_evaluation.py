"""Evaluation: the Bulletin contract, metrics and their pooling, federated evaluation over the ledger, the
`fedledger evaluate` / `fedledger task metrics` commands, and the export snippets of docs/evaluation.md."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    f1_score,
    log_loss,
    roc_auc_score,
)
from typer.testing import CliRunner

from conftest import REPO, Ledger, h, hospital_datas, refused
from fedledger.chain import METRICS_TOPIC, BulletinClient, topic_id
from fedledger.chain.events import Posted
from fedledger.cli import app
from fedledger.exceptions import BadInput, InvalidArgument, InvalidState, NotAuthorized
from fedledger.federation import Simulation, TaskConfig
from fedledger.federation.evaluation import (
    MetricsReport,
    evaluate_round,
    post_round_metrics,
    round_metrics,
    task_bulletin,
    task_config,
)
from fedledger.federation.setup import create_consortium
from fedledger.learning import build_model, encode_model
from fedledger.learning.data import FeatureStats, Standardizer, load_csv_dataset
from fedledger.learning.metrics import ScoreHistogram, evaluate_model, pool_metrics, predict_proba
from fedledger.workspace import Workspace

runner = CliRunner()
TASK = "0x" + "7a" * 20


# -- the Bulletin contract (embedded chain and anvil) ------------------------------------------------------


@pytest.fixture
def board(ledger: Ledger) -> BulletinClient:
    return BulletinClient.deploy(ledger.chain, ledger.admin, ledger.consortium.address)


def _state(board: BulletinClient, ledger: Ledger) -> Any:
    return lambda: (
        [board.posted(TASK, r, METRICS_TOPIC, m.address) for r in (0, 1) for m in (*ledger.members, ledger.outsider)],
        len(board.posts(TASK)),
    )


def test_a_member_posts_once_per_task_round_and_topic(ledger: Ledger, board: BulletinClient) -> None:
    member = ledger.members[0]
    assert board.consortium_address == ledger.consortium.address
    assert board.posted(TASK, 1, METRICS_TOPIC, member.address) is None
    result = board.as_(member).post(TASK, 1, METRICS_TOPIC, h("report-1"))
    assert board.posted(TASK, 1, METRICS_TOPIC, member.address) == h("report-1")
    # Modest gas: one new slot, one consortium lookup, one log (measured: see docs/evaluation.md).
    assert result.gas_used < 60_000, result.gas_used
    (event,) = board.posts(TASK)
    assert isinstance(event, Posted)
    assert (event.poster, event.task, event.round_id, event.topic, event.blob_hash) == (
        member.address,
        board.chain.w3.to_checksum_address(TASK),
        1,
        "0x" + topic_id("metrics").hex(),
        h("report-1"),
    )
    # The same member under another round or topic, and another member in the same round, post too.
    board.as_(member).post(TASK, 2, METRICS_TOPIC, h("report-2"))
    board.as_(member).post(TASK, 1, "consortium-statistics", h("stats"))
    board.as_(ledger.members[1]).post(TASK, 1, METRICS_TOPIC, h("report-1b"))
    assert [e.blob_hash for e in board.posts(TASK, 1, METRICS_TOPIC)] == [h("report-1"), h("report-1b")]
    assert [e.blob_hash for e in board.posts(TASK, round_id=2)] == [h("report-2")]
    assert [e.blob_hash for e in board.posts(TASK, topic="consortium-statistics")] == [h("stats")]
    assert board.posts(ledger.task.address) == []


def test_a_second_post_is_refused(ledger: Ledger, board: BulletinClient) -> None:
    member = board.as_(ledger.members[0])
    member.post(TASK, 1, METRICS_TOPIC, h("first"))
    refused(_state(board, ledger), InvalidState, "bulletin: already posted", member.post, TASK, 1, "metrics", h("x"))
    assert board.posted(TASK, 1, METRICS_TOPIC, ledger.members[0].address) == h("first")


def test_a_non_member_or_revoked_member_cannot_post(ledger: Ledger, board: BulletinClient) -> None:
    outsider = board.as_(ledger.outsider)
    refused(_state(board, ledger), NotAuthorized, "bulletin: not a member", outsider.post, TASK, 0, "metrics", h("x"))
    revoked = ledger.members[3]
    ledger.consortium.propose_revoke(revoked.address)
    refused(
        _state(board, ledger),
        NotAuthorized,
        "bulletin: not a member",
        board.as_(revoked).post,
        TASK,
        0,
        "metrics",
        h("x"),
    )


def test_zero_values_are_refused(ledger: Ledger, board: BulletinClient) -> None:
    member, state = board.as_(ledger.members[0]), _state(board, ledger)
    zero = "0x" + "00" * 32
    refused(state, InvalidArgument, "bulletin: zero blob hash", member.post, TASK, 1, "metrics", zero)
    refused(state, InvalidArgument, "bulletin: zero task address", member.post, "0x" + "00" * 20, 1, "metrics", h("x"))
    f = member.contract.functions
    fn = f.post(board.chain.w3.to_checksum_address(TASK), 1, bytes(32), bytes.fromhex(h("x")[2:]))
    refused(state, InvalidArgument, "bulletin: zero topic", ledger.chain.transact, ledger.members[0], fn)
    # The client refuses malformed values before sending anything.
    refused(state, BadInput, None, member.post, TASK, 1, "Metrics", h("x"))
    refused(state, BadInput, None, member.post, TASK, -1, "metrics", h("x"))
    refused(state, BadInput, None, member.post, "0x1234", 1, "metrics", h("x"))


def test_a_bulletin_needs_a_consortium(ledger: Ledger) -> None:
    refused(
        lambda: ledger.chain.block_number,
        InvalidArgument,
        "bulletin: zero consortium address",
        BulletinClient.deploy,
        ledger.chain,
        ledger.admin,
        "0x" + "00" * 20,
    )


# -- metrics and pooling ---------------------------------------------------------------------------------------


def _toy_binary() -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(240, 4))
    y = (X @ np.array([1.0, -0.5, 0.3, 0.0]) + 0.8 * rng.normal(size=240) > 0).astype(np.int64)
    model = build_model({"kind": "sklearn-logreg", "n_features": 4, "n_classes": 2})
    model.set_params({"coef": np.array([[0.9, -0.4, 0.2, 0.1]], np.float32), "intercept": np.array([0.1], np.float32)})
    return model, X, y


def _toy_multiclass() -> tuple[Any, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 3))
    y = np.argmax(X @ rng.normal(size=(3, 3)) + 0.7 * rng.normal(size=(300, 3)), axis=1)
    model = build_model({"kind": "sklearn-logreg", "n_features": 3, "n_classes": 3})
    model.fit(X[:60], y[:60], epochs=1)
    return model, X, y


def test_metrics_are_scikit_learns_on_a_toy_set() -> None:
    model, X, y = _toy_binary()
    m = evaluate_model(model, X, y)
    p = model.to_native().predict_proba(X)[:, 1]
    pred = (p > 0.5).astype(int)
    assert m.n == 240 and m.n_classes == 2 and m.members == 1
    assert m.accuracy == accuracy_score(y, pred)
    assert m.f1 == f1_score(y, pred)
    assert m.log_loss == pytest.approx(log_loss(y, p), rel=1e-12)
    assert m.roc_auc == roc_auc_score(y, p)
    assert m.pr_auc == average_precision_score(y, p)
    assert np.array_equal(pred, model.predict(X))
    # The same from params and spec.
    assert evaluate_model(model.get_params(), X, y, spec=model.spec) == m

    model3, X3, y3 = _toy_multiclass()
    m3 = evaluate_model(model3, X3, y3)
    P = model3.to_native().predict_proba(X3)
    assert m3.accuracy == accuracy_score(y3, P.argmax(1))
    assert m3.f1 == f1_score(y3, P.argmax(1), average="macro")
    assert m3.log_loss == pytest.approx(log_loss(y3, P), rel=1e-12)
    assert m3.roc_auc == roc_auc_score(y3, P, multi_class="ovr")
    assert m3.pr_auc is None


def test_undefined_aucs_and_bad_inputs() -> None:
    model, X, y = _toy_binary()
    one_class = evaluate_model(model, X[y == 1], y[y == 1])
    assert one_class.roc_auc is None and one_class.pr_auc is None and one_class.accuracy > 0
    with pytest.raises(BadInput, match="no rows"):
        evaluate_model(model, X[:0], y[:0])
    with pytest.raises(BadInput, match="spec"):
        evaluate_model(model.get_params(), X, y)
    with pytest.raises(BadInput, match="no metrics"):
        pool_metrics([])


@pytest.mark.parametrize("toy", [_toy_binary, _toy_multiclass])
def test_pooled_metrics_equal_the_concatenated_data(toy: Any) -> None:
    model, X, y = toy()
    parts = [slice(0, 37), slice(37, 150), slice(150, None)]
    pooled = pool_metrics([evaluate_model(model, X[s], y[s]) for s in parts])
    whole = evaluate_model(model, X, y)
    assert pooled.members == 3 and pooled.n == whole.n
    assert pooled.confusion == whole.confusion
    assert pooled.accuracy == whole.accuracy
    assert pooled.f1 == pytest.approx(whole.f1, rel=1e-15)
    assert pooled.log_loss == pytest.approx(whole.log_loss, rel=1e-12)
    assert pooled.histogram == whole.histogram
    assert whole.roc_auc is not None and pooled.roc_auc == pytest.approx(whole.roc_auc, abs=0.01)
    if whole.pr_auc is not None:
        assert pooled.pr_auc == pytest.approx(whole.pr_auc, abs=0.01)


def test_histogram_aucs_are_scikit_learns_on_scores_rounded_to_the_bins() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    hist = ScoreHistogram.of(scores[:, None], y, (1,), bins=20)
    floored = np.minimum(np.floor(scores * 20), 19) / 20
    assert hist.roc_auc() == pytest.approx(roc_auc_score(y, floored), abs=1e-12)
    assert hist.average_precision() == pytest.approx(average_precision_score(y, floored), abs=1e-12)


def test_a_report_round_trips_and_malformed_ones_are_named() -> None:
    model, X, y = _toy_binary()
    report = MetricsReport(
        task=board_address(),
        round_id=3,
        model_hash=h("model"),
        member=board_address(),
        metrics=evaluate_model(model, X, y),
    )
    blob = report.to_bytes()
    assert MetricsReport.from_bytes(blob) == report
    body = json.loads(blob)
    assert body["format"] == "fedledger-metrics/1" and body["round"] == 3 and body["score_histogram"]["bins"] == 200
    assert blob == json.dumps(body, sort_keys=True, separators=(",", ":")).encode()  # canonical
    for broken, message in [
        (b"not json", "not JSON"),
        ({**body, "format": "other"}, "not a fedledger-metrics/1"),
        ({**body, "extra": 1}, "fields"),
        ({**body, "metrics": {**body["metrics"], "accuracy": 0.5}}, "accuracy does not match"),
        ({**body, "metrics": {**body["metrics"], "n": body["metrics"]["n"] + 1}}, "does not add up"),
        ({**body, "score_histogram": {**body["score_histogram"], "bins": 3}}, "histogram"),
    ]:
        data = broken if isinstance(broken, bytes) else json.dumps(broken).encode()
        with pytest.raises(BadInput, match=message):
            MetricsReport.from_bytes(data)


def board_address() -> str:
    return "0x000000000000000000000000000000000000bEEF"


# -- federated evaluation over the ledger, and the CLI -------------------------------------------------------------


@pytest.fixture(scope="module")
def federation(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three hospitals, two finalized rounds, every member's metrics posted for rounds 0-2 (but one member's
    round 2, left to the CLI)."""
    tmp = tmp_path_factory.mktemp("federation")
    datas = hospital_datas(tmp, 3)
    local = [load_csv_dataset(tmp / "data" / f"hospital_{k}.csv", "diagnosis") for k in (1, 2, 3)]
    scaler = Standardizer.from_stats(FeatureStats.combine(FeatureStats.of(d.X) for d in local))
    config = TaskConfig(
        model={"kind": "sklearn-sgd", "n_features": 30, "n_classes": 2, "eta0": 0.05, "seed": 1},
        rounds=2,
        local_epochs=2,
        min_commitments=2,
        proposal_quorum=2,
        clip_norm=5.0,
        extra={"standardizer": scaler.to_dict()},
    )
    ws = Workspace.create(tmp / "ws", scrypt_n=2**14)
    with ws:
        sim = create_consortium(ws, config=config, datas=datas, password="pw")
        Simulation(sim.task, sim.nodes).run()
        assert sorted(sim.task.model_history()) == [1, 2]
        bulletin = task_bulletin(sim.task, sim.store)
        posted = {}
        for r in (0, 1, 2):
            for k, node in enumerate(sim.nodes):
                if (r, k) == (2, 0):
                    continue
                posted[(r, k)] = post_round_metrics(
                    sim.task, bulletin, sim.store, node.account, r, node.data.X_val, node.data.y_val
                )
        return {
            "root": ws.root,
            "tmp": tmp,
            "sim": sim,
            "datas": datas,
            "posted": posted,
            "members": [n.account.address for n in sim.nodes],
            "events": len(bulletin.posts(sim.task.address)),
        }


def _open(federation: dict[str, Any]) -> tuple[Workspace, Any, BulletinClient]:
    ws = Workspace.load(federation["root"])
    task = ws.task()
    return ws, task, task_bulletin(task, federation["sim"].store)


def test_create_task_deploys_a_bulletin_named_in_the_config(federation: dict[str, Any]) -> None:
    sim = federation["sim"]
    ws, task, bulletin = _open(federation)
    with ws:
        config = task_config(task, sim.store)
        assert config.evaluation_board == bulletin.address
        assert bulletin.consortium_address == ws.config.consortium
        # An old config (no board) keeps its canonical bytes and hash; a bad board is a config error.
        old = replace(config, evaluation_board="")
        assert b"evaluation_board" not in old.to_bytes()
        assert TaskConfig.from_bytes(old.to_bytes()) == old
        assert json.loads(config.to_bytes())["evaluation_board"] == bulletin.address
        with pytest.raises(Exception, match="evaluation_board"):
            replace(config, evaluation_board="not-an-address")


def test_every_member_posts_each_round_and_round_metrics_pools_them(federation: dict[str, Any]) -> None:
    sim, datas, members = federation["sim"], federation["datas"], federation["members"]
    ws, task, bulletin = _open(federation)
    with ws:
        for r in (0, 1):
            result = round_metrics(task, bulletin, sim.store, r)
            assert sorted(result) == sorted([*members, "pooled"]) and result.invalid == {}
            assert result.model_hash == (task.params().initial_model if r == 0 else task.model_at(r))
            X = np.vstack([d.X_val for d in datas])
            y = np.concatenate([d.y_val for d in datas])
            params, spec = sim.nodes[0].global_model(result.model_hash)
            whole = evaluate_model(params, X, y, spec=spec)
            for k, member in enumerate(members):
                assert result[member] == evaluate_model(params, datas[k].X_val, datas[k].y_val, spec=spec)
            pooled = result["pooled"]
            assert pooled.members == 3 and pooled.n == whole.n == len(y)
            assert pooled.accuracy == whole.accuracy and pooled.confusion == whole.confusion
            assert pooled.f1 == pytest.approx(whole.f1, rel=1e-15)
            assert pooled.log_loss == pytest.approx(whole.log_loss, rel=1e-12)
            assert pooled.roc_auc == pytest.approx(whole.roc_auc, abs=0.01)
            assert pooled.pr_auc == pytest.approx(whole.pr_auc, abs=0.01)
        assert round_metrics(task, bulletin, sim.store, 1)["pooled"].accuracy > 0.85
        # Posting again is a no-op: same hash, nothing sent.
        node = sim.nodes[1]
        again = post_round_metrics(task, bulletin, sim.store, node.account, 1, node.data.X_val, node.data.y_val)
        assert again == federation["posted"][(1, 1)]
        assert len(bulletin.posts(task.address)) == federation["events"]
        # A round that did not finalize has no model to evaluate.
        with pytest.raises(InvalidState, match="round not finalized"):
            post_round_metrics(task, bulletin, sim.store, node.account, 3, node.data.X_val, node.data.y_val)


def test_a_tampered_or_mismatching_blob_is_reported_invalid(federation: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    sim, members = federation["sim"], federation["members"]
    ws, task, bulletin = _open(federation)
    with ws:
        # Bytes changed in the store after posting: the store's hash check fails.
        blob = federation["posted"][(1, 2)].removeprefix("0x")
        path = sim.store.path_of(blob)
        saved = tmp_path / "saved"
        shutil.copy(path, saved)
        path.write_bytes(path.read_bytes().replace(b'"round":1', b'"round":9'))
        try:
            result = round_metrics(task, bulletin, sim.store, 1)
        finally:
            shutil.copy(saved, path)
        assert "blob unavailable" in result.invalid[members[2]], result.invalid
        assert members[2] not in result and result["pooled"].members == 2
        assert round_metrics(task, bulletin, sim.store, 1).invalid == {}

        # Hospital 1 has not posted for round 2 yet: it posts a well-formed report that does not fit the post.
        node = sim.nodes[0]
        own_round_1 = evaluate_round(task, sim.store, node.account.address, 1, node.data.X_val, node.data.y_val)
        someone_elses = sim.store.get(federation["posted"][(2, 1)].removeprefix("0x"))
        wrong_model = replace(own_round_1, round_id=2)
        for blob_bytes, reason in [
            (own_round_1.to_bytes(), "about round 1, posted for round 2"),
            (someone_elses, f"report is by {members[1]}, posted by {members[0]}"),
            (wrong_model.to_bytes(), "the round's model is"),
            (b"{not a report", "malformed report"),
        ]:
            snapshot = ws.chain.snapshot()
            try:
                bulletin.as_(node.account).post(task.address, 2, METRICS_TOPIC, "0x" + sim.store.put(blob_bytes))
                result = round_metrics(task, bulletin, sim.store, 2)
            finally:
                ws.chain.revert(snapshot)
            assert reason in result.invalid[members[0]], result.invalid
            assert sorted(result.members) == sorted(members[1:]) and result["pooled"].members == 2


def test_cli_evaluate_and_task_metrics(federation: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    root, tmp, members = federation["root"], federation["tmp"], federation["members"]
    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    csv = tmp / "data" / "hospital_1.csv"
    base = ["-w", str(root), "--data", str(csv), "--label", "diagnosis"]
    out = runner.invoke(app, ["evaluate", *base, "--json", "--as", "hospital-1"])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    assert shown["round"] == 2 and shown["posted"] is None and shown["member"] == members[0]
    ws, task, bulletin = _open(federation)
    with ws:
        from fedledger.federation.local_data import load_member_table

        X, y, _ = load_member_table(task_config(task, federation["sim"].store), csv, label="diagnosis", recipe=None)
        params, spec = federation["sim"].nodes[0].global_model(task.model_at(2))
        assert shown["metrics"] == evaluate_model(params, X, y, spec=spec).to_json()
        assert bulletin.posted(task.address, 2, METRICS_TOPIC, members[0]) is None
    # Round 0 (the initial model), as a table.
    out = runner.invoke(app, ["evaluate", *base, "--round", "0", "--as", "hospital-1"])
    assert out.exit_code == 0 and "Round 0" in out.output and "accuracy" in out.output, out.output
    # --post: hospital 1 posts its round-2 metrics; a second --post sends nothing.
    out = runner.invoke(app, ["evaluate", *base, "--post", "--json", "--as", "hospital-1"])
    assert out.exit_code == 0, out.output
    posted = json.loads(out.stdout)["posted"]
    assert posted["new"] is True
    out = runner.invoke(app, ["evaluate", *base, "--post", "--as", "hospital-1"])
    assert out.exit_code == 0 and "already posted" in out.output, out.output
    # A round that did not finalize: the contract's reason, one line.
    out = runner.invoke(app, ["evaluate", *base, "--round", "5", "--as", "hospital-1"])
    assert out.exit_code == 7 and "round not finalized" in out.output, out.output

    out = runner.invoke(app, ["task", "metrics", "-w", str(root), "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
    last = data["rounds"][2]
    assert sorted(last["members"]) == sorted(members) and last["invalid"] == {}
    assert last["members"][members[0]]["blob"] == posted["blob"]
    assert last["pooled"]["members"] == 3 and set(last["pooled"]) >= {"accuracy", "f1", "roc_auc", "pr_auc", "n"}
    assert data["organizations"][members[0]] == "Hospital 1"
    out = runner.invoke(app, ["task", "metrics", "-w", str(root), "--round", "1"])
    assert out.exit_code == 0 and "pooled (3 members)" in out.output and "Round 1" in out.output, out.output


# -- loading exported models (the snippets of docs/evaluation.md, run as written) ----------------------------------


def _snippets() -> dict[str, str]:
    text = (REPO / "docs" / "evaluation.md").read_text()
    found = dict(re.findall(r"<!-- snippet: ([a-z0-9-]+) -->\s*```python\n(.*?)```", text, flags=re.S))
    assert set(found) == {"linear-sklearn", "linear-torch", "mlp-torch", "torch-mlp"}, sorted(found)
    return found


@pytest.mark.parametrize(
    ("snippet", "spec"),
    [
        ("linear-sklearn", {"kind": "sklearn-logreg", "n_features": 5, "n_classes": 2}),
        ("linear-sklearn", {"kind": "sklearn-sgd", "n_features": 5, "n_classes": 3}),
        ("linear-torch", {"kind": "sklearn-logreg", "n_features": 5, "n_classes": 2}),
        ("linear-torch", {"kind": "sklearn-logreg", "n_features": 5, "n_classes": 3}),
        ("mlp-torch", {"kind": "sklearn-mlp", "n_features": 5, "n_classes": 2, "hidden": [8, 4]}),
        ("mlp-torch", {"kind": "sklearn-mlp", "n_features": 5, "n_classes": 3}),
        ("torch-mlp", {"kind": "torch-mlp", "n_features": 5, "n_classes": 2, "hidden": [6]}),
    ],
)
def test_export_snippets_reproduce_the_adapters_predictions(snippet: str, spec: dict[str, Any], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 5))
    y = rng.integers(0, spec["n_classes"], 64)
    adapter = build_model(spec)
    adapter.fit(X, y, epochs=3)
    path = str(tmp_path / "model.safetensors")
    Path(path).write_bytes(encode_model(adapter.get_params(), adapter.spec))  # what `models export` writes
    namespace: dict[str, Any] = {"path": path, "X": X}
    exec(compile(_snippets()[snippet], f"docs/evaluation.md:{snippet}", "exec"), namespace)
    proba = np.asarray(namespace["proba"], dtype=np.float64)
    expected = predict_proba(adapter, X)
    if proba.ndim == 1:
        expected = expected[:, 1]
    np.testing.assert_allclose(proba, expected, rtol=1e-5, atol=1e-6)


def test_models_export_writes_the_blob_the_snippets_read(federation: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "global.safetensors"
    result = runner.invoke(app, ["models", "export", str(out), "-w", str(federation["root"]), "--round", "2"])
    assert result.exit_code == 0, result.output
    X = federation["datas"][0].X_val
    namespace: dict[str, Any] = {"path": str(out), "X": X}
    exec(compile(_snippets()["linear-sklearn"], "docs/evaluation.md:linear-sklearn", "exec"), namespace)
    ws, task, _ = _open(federation)
    with ws:
        params, spec = federation["sim"].nodes[0].global_model(task.model_at(2))
    adapter = build_model(spec)
    adapter.set_params(params)
    np.testing.assert_allclose(namespace["proba"], predict_proba(adapter, X), rtol=1e-6)
