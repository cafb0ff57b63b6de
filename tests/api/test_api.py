"""The REST API over a finished demo: nothing without sign-in, EIP-4361 sign-in with a member key and its refusals,
422s that name the field, and every number equal to what the chain and the CLI's readers say."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from fedledger.api import create_app
from fedledger.exceptions import BadInput
from fedledger.workspace import Workspace
from helpers.api import AUDITOR_TOKEN, ERASED_SUBJECT, MEMBER_KEYS, PASSWORD, Demo, shared_demo, sign_in

DATA_ROUTES = [
    "/api/v1/head",
    "/api/v1/consortium",
    "/api/v1/tasks",
    "/api/v1/tasks/default",
    "/api/v1/tasks/default/rounds",
    "/api/v1/tasks/default/rounds/1",
    "/api/v1/tasks/default/metrics",
    "/api/v1/tasks/default/privacy",
    "/api/v1/tasks/default/rewards",
    "/api/v1/tasks/default/lineage",
    "/api/v1/tasks/default/audit",
    "/api/v1/datasets",
    "/api/v1/auth/whoami",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return shared_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def opened(demo: Demo) -> Iterator[tuple[Workspace, TestClient]]:
    ws = Workspace.load(demo.root)
    try:
        yield ws, TestClient(create_app(ws, auditor_token=AUDITOR_TOKEN))
    finally:
        ws.close()


@pytest.fixture(scope="module")
def member(opened: tuple[Workspace, TestClient]) -> dict[str, str]:
    """hospital-1's session: the Authorization header."""
    ws, client = opened
    response = sign_in(client, ws.account("hospital-1", PASSWORD))
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _get(client: TestClient, path: str, headers: dict[str, str]) -> Any:
    response = client.get(path, headers=headers)
    assert response.status_code == 200, (path, response.text)
    return response.json()


def test_nothing_is_served_without_a_valid_token(opened: tuple[Workspace, TestClient]) -> None:
    ws, client = opened
    task_address = ws.task().address
    for path in DATA_ROUTES:
        for headers in ({}, {"Authorization": "Bearer made-up"}, {"Authorization": "Basic dXNlcjpwdw=="}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
            assert set(response.json()) == {"detail"} and task_address not in response.text
            assert response.headers["www-authenticate"] == "Bearer"
    # What is public carries no ledger data: the dashboard's files and the schema.
    for path in ("/", "/dashboard.js", "/api/v1/openapi.json"):
        response = client.get(path)
        assert response.status_code == 200 and task_address not in response.text
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert {p.replace("{name}", "default").replace("{round_id}", "1") for p in paths} >= set(DATA_ROUTES)


def test_sign_in_with_a_member_key(opened: tuple[Workspace, TestClient], demo: Demo) -> None:
    ws, client = opened
    account = ws.account("hospital-2", PASSWORD)
    response = sign_in(client, account)
    assert response.status_code == 200, response.text
    session = response.json()
    assert session["address"] == demo.addresses["hospital-2"] and session["org"] == "Hospital 2"
    assert len(session["token"]) >= 40 and session["kind"] == "member"
    headers = {"Authorization": f"Bearer {session['token']}"}
    assert _get(client, "/api/v1/auth/whoami", headers)["address"] == account.address
    # Signing out ends the session; the token is then refused.
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/head", headers=headers).status_code == 401


def test_sign_in_refusals(opened: tuple[Workspace, TestClient]) -> None:
    ws, client = opened
    member = ws.account("hospital-1", PASSWORD)
    outsider = Account.create()
    now = datetime.now(UTC).replace(microsecond=0)
    refused = {
        "someone else's signature": ({"signer": outsider}, 401, "not by the message's address"),
        "another domain": ({"domain": "evil.example"}, 401, "it names evil.example"),
        "another chain": ({"chain_id": 1}, 401, "chain 1"),
        "expired": (
            {"issued_at": now - timedelta(hours=2), "expiration_time": now - timedelta(hours=1)},
            401,
            "window",
        ),
        "a nonce the server never issued": ({"nonce": "abcdef0123456789"}, 401, "nonce"),
    }
    for case, (override, code, reason) in refused.items():
        response = sign_in(client, member, **override)
        assert response.status_code == code and reason in response.json()["detail"], (case, response.text)
        assert "token" not in response.json()
    # A key that is not a consortium member's signs correctly, and is refused.
    response = sign_in(client, outsider)
    assert response.status_code == 403 and "not an active member" in response.json()["detail"]
    # A nonce is good once: the same signed message replayed is refused.
    fields = client.get("/api/v1/auth/nonce").json()
    from eth_account.messages import encode_defunct

    from fedledger.api import siwe_message

    message = siwe_message(
        **{k: fields[k] for k in ("domain", "uri", "chain_id", "nonce")},
        address=member.address,
        issued_at=datetime.fromisoformat(fields["issued_at"]),
        expiration_time=datetime.fromisoformat(fields["expiration_time"]),
    )
    body = {"message": message, "signature": member.sign_message(encode_defunct(text=message)).signature.to_0x_hex()}
    assert client.post("/api/v1/auth/login", json=body).status_code == 200
    again = client.post("/api/v1/auth/login", json=body)
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    # Malformed requests: 422 naming the field; a malformed message or signature: 401.
    missing = client.post("/api/v1/auth/login", json={"message": message})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"] == ["body", "signature"]
    for bad in [
        {"message": "hello", "signature": "0x00"},
        *({"message": message, "signature": s} for s in ("0x", "0x12")),
    ]:
        assert client.post("/api/v1/auth/login", json=bad).status_code == 401


def test_a_revoked_member_loses_access(opened: tuple[Workspace, TestClient]) -> None:
    ws, client = opened
    member = ws.account("hospital-2", PASSWORD)
    headers = {"Authorization": f"Bearer {sign_in(client, member).json()['token']}"}
    snapshot = ws.chain.snapshot()
    try:
        ws.consortium(ws.account("operator", PASSWORD)).propose_revoke(member.address)
        response = client.get("/api/v1/tasks", headers=headers)
        assert response.status_code == 403 and set(response.json()) == {"detail"}
        assert sign_in(client, member).status_code == 403
    finally:
        ws.chain.revert(snapshot)


def test_malformed_query_parameters_get_422_naming_the_field(
    opened: tuple[Workspace, TestClient], member: dict[str, str]
) -> None:
    _, client = opened
    for path, field in [
        ("/api/v1/tasks/default/rounds?from_round=x", "from_round"),
        ("/api/v1/tasks/default/rounds?from_round=0", "from_round"),
        ("/api/v1/tasks/default/rounds?from_round=2&to_round=1", "to_round"),
        ("/api/v1/tasks/default/metrics?round=-1", "round"),
        ("/api/v1/tasks/default/lineage?round=1.5", "round"),
        ("/api/v1/tasks/default/rounds/zero", "round_id"),
    ]:
        response = client.get(path, headers=member)
        assert response.status_code == 422, (path, response.text)
        assert response.json()["detail"][0]["loc"][-1] == field, (path, response.text)
    # Unauthenticated and malformed: still 401, nothing about the parameters.
    assert client.get("/api/v1/tasks/default/rounds?from_round=x").status_code == 401
    assert client.get("/api/v1/tasks/nope", headers=member).status_code == 404
    assert client.get("/api/v1/tasks/default/rounds/9", headers=member).status_code == 404


def test_the_auditor_token_reads_and_must_be_long(opened: tuple[Workspace, TestClient], demo: Demo) -> None:
    _, client = opened
    who = _get(client, "/api/v1/auth/whoami", {"Authorization": f"Bearer {AUDITOR_TOKEN}"})
    assert who == {"kind": "auditor", "address": None, "org": None, "expires_at": None}
    with Workspace.load(demo.root) as ws, pytest.raises(BadInput, match="at least 32"):
        create_app(ws, auditor_token="short")


def test_rounds_and_consortium_match_the_chain(opened: tuple[Workspace, TestClient], member: dict[str, str]) -> None:
    ws, client = opened
    task = ws.task()
    consortium = _get(client, "/api/v1/consortium", member)
    assert consortium["members"] == [
        {k: m.to_json()[k] for k in consortium["members"][0]} for m in ws.consortium().members()
    ]
    rounds = _get(client, "/api/v1/tasks/default/rounds", member)
    assert [r["round"] for r in rounds] == [1, 2]
    bad = ws.keystore.address("hospital-3")
    for row in rounds:
        info = task.round(row["round"])
        assert row["phase"] == "finalized" and row["model_hash"] == task.model_at(row["round"])
        assert [c["update_hash"] for c in row["commitments"]] == [u.update_hash for u in task.updates(info.round_id)]
        accepted = [v["index"] for v in row["verdicts"] if v["accepted"]]
        assert accepted == info.accepted and len(row["verdicts"]) == 3
        (rejected,) = [v for v in row["verdicts"] if not v["accepted"]]
        assert rejected["member"] == bad and "below the threshold 4500" in rejected["reason"]
        for v in row["verdicts"]:
            scores = sorted(s["score"] for s in row["scores"] if s["index"] == v["index"])
            assert scores == sorted(task.scores_of(info.round_id, v["index"]))
        assert row["proposals"] and all(p["model_hash"] == row["model_hash"] for p in row["proposals"])
    assert _get(client, "/api/v1/tasks/default/rounds?from_round=2", member) == rounds[1:]
    overview = _get(client, "/api/v1/tasks/default", member)
    assert overview["rounds_finalized"] == 2 and overview["done"] and overview["latest_model"] == task.latest_model


def test_metrics_privacy_and_rewards_match_the_readers(
    opened: tuple[Workspace, TestClient], member: dict[str, str]
) -> None:
    from fedledger.cli.rewards import rewards_report
    from fedledger.federation.evaluation import round_metrics, task_bulletin
    from fedledger.privacy.accounting import micro_to_epsilon

    ws, client = opened
    task, store = ws.task(), ws.store()
    metrics = _get(client, "/api/v1/tasks/default/metrics", member)
    assert [r["round"] for r in metrics["rounds"]] == [0, 1, 2]
    for row in metrics["rounds"]:
        expected = round_metrics(task, task_bulletin(task, store), store, row["round"])
        assert row["pooled"]["accuracy"] == expected["pooled"].accuracy and row["pooled"]["members"] == 3
        assert row["pooled"]["log_loss"] == expected["pooled"].log_loss
        assert {m["member"]: m["accuracy"] for m in row["members"]} == {
            a: m.accuracy for a, m in expected.members.items()
        }
    assert _get(client, "/api/v1/tasks/default/metrics?round=1", member)["rounds"] == metrics["rounds"][1:2]
    privacy = _get(client, "/api/v1/tasks/default/privacy", member)
    assert privacy["dp"] and privacy["budget_epsilon"] == 8.0
    for m in privacy["members"]:
        assert m["epsilon"] == micro_to_epsilon(task.privacy_spent(m["member"])) and not m["over_budget"]
    rewards = _get(client, "/api/v1/tasks/default/rewards", member)
    expected = rewards_report(ws, "default")
    assert rewards["pool"] == expected["pool"] and rewards["rounds"] == expected["rounds"]
    by_address = {m["address"]: m for m in expected["members"]}
    for m in rewards["members"]:
        assert {k: m[k] for k in ("earned", "stake", "slashed")} == {
            k: by_address[m["address"]][k] for k in ("earned", "stake", "slashed")
        }
    assert sum(m["earned"] for m in rewards["members"]) == expected["pool"]["allocated"]


def test_lineage_datasets_and_audit(opened: tuple[Workspace, TestClient], member: dict[str, str]) -> None:
    ws, client = opened
    task = ws.task()
    lineage = _get(client, "/api/v1/tasks/default/lineage", member)
    assert [m["round"] for m in lineage] == [1, 2]
    for model in lineage:
        assert model["model_hash"] == task.model_at(model["round"]) and model["compliant"] is True
        accepted = set(task.round(model["round"]).accepted)
        assert [u["update_hash"] for u in model["updates"]] == [
            u.update_hash for u in task.updates(model["round"]) if u.index in accepted
        ]
        assert all(u["datasets"] and u["datasets"][0]["dataset_id"] for u in model["updates"])
    data = _get(client, "/api/v1/datasets", member)
    assert len(data["datasets"]) == 3
    assert all("model-training:breast-cancer-diagnosis" in d["purposes"] for d in data["datasets"])
    (erasure,) = data["erasures"]
    assert erasure["subject_hash"] == ERASED_SUBJECT
    assert {d["dataset_id"]: d["erasures"] for d in data["datasets"]}[erasure["dataset_id"]] == 1
    audit = _get(client, "/api/v1/tasks/default/audit", member)
    assert audit["ok"] and audit["rounds_checked"] == 2 and audit["updates_checked"] == 6
    assert audit["payouts"]["ok"] and audit["block"] == ws.chain.block_number


def test_no_personal_value_is_ever_served(
    opened: tuple[Workspace, TestClient], member: dict[str, str], demo: Demo
) -> None:
    """The demo's raw tables carry patients' names, e-mails and SSNs: none of them appears in any answer."""
    _, client = opened
    served = "\n".join(json.dumps(_get(client, path, member)) for path in DATA_ROUTES)
    assert len(served) > 10_000
    for k in range(1, len(MEMBER_KEYS) + 1):
        raw = pd.read_csv(demo.root / "data" / f"hospital_{k}.csv")
        for column in ("patient_name", "email", "ssn"):
            leaked = [v for v in raw[column].astype(str) if v in served]
            assert not leaked, f"{column} values served: {leaked[:3]}"


def test_an_unreadable_ledger_is_503_without_details(
    opened: tuple[Workspace, TestClient], member: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from fedledger.api.view import LedgerView
    from fedledger.exceptions import ConfigError, StoreError

    _, client = opened

    def unreachable(self: LedgerView, *args: object) -> None:
        raise StoreError("s3://secret-bucket/prefix is unreachable")

    monkeypatch.setattr(LedgerView, "read", unreachable)
    response = client.get("/api/v1/datasets", headers=member)
    assert response.status_code == 503 and "secret-bucket" not in response.text
    with Workspace.create(tmp_path / "empty") as empty, pytest.raises(ConfigError, match="no consortium"):
        create_app(empty)
