"""The ``fedledger`` CLI on the embedded chain: init, keys, members, governance, ledger status and events.

Commands run in-process through the real entry point (:func:`fedledger.cli.main`,
which maps errors to exit codes) inside typer's ``CliRunner`` isolation, so
stdout, stderr and exit codes are what a shell would see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from eth_account import Account

from fedledger.cli import app
from fedledger.exceptions import BadInput, ChainError, KeystoreError, NotAuthorized
from fedledger.workspace import Workspace
from helpers.cli import OUTPUTS, PASSWORD, fedledger

CAROL = Account.from_key("0x" + "c0" * 32).address
DAVE = Account.from_key("0x" + "d0" * 32).address
ALL_ROLES = ["admin", "trainer", "validator", "aggregator", "auditor"]


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    init = fedledger("init", "-w", path, "--light-kdf", "--org", "Founder", "--json").json()
    assert set(init) == {"workspace", "chain", "chain_id", "address", "consortium"}
    assert init["chain"] == "embedded"
    return path


def new_key(ws: Path, name: str) -> str:
    data = fedledger("key", "new", name, "-w", ws, "--json").json()
    assert data["name"] == name
    return str(data["address"])


def block_number(ws: Path) -> int:
    return int(fedledger("ledger", "status", "-w", ws, "--json").json()["chain"]["block_number"])


def members(ws: Path) -> dict[str, dict[str, Any]]:
    return {m["address"]: m for m in fedledger("member", "list", "-w", ws, "--json").json()}


# -- help ----------------------------------------------------------------------------


def _command_paths() -> list[list[str]]:
    import typer.main

    paths: list[list[str]] = []

    def walk(command: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, [*prefix, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "fedledger")
def test_every_command_has_help(path: list[str]) -> None:
    result = fedledger(*path, "--help")
    assert result.code == 0, result.stderr
    assert "Usage:" in result.stdout
    assert "--help" in result.stdout


def test_core_commands_exist() -> None:
    names = {" ".join(p) for p in _command_paths()}
    expected = {
        "init",
        "key new",
        "key list",
        "ledger status",
        "ledger events",
        "member add",
        "member revoke",
    }
    expected |= {"member list", "member roles", "member threshold", "member approve", "member proposals"}
    assert expected <= names


def test_usage_error_exit_code(tmp_path: Path) -> None:
    result = fedledger("member", "add", CAROL, "-w", tmp_path)  # --org is required
    assert result.code == 2
    assert "--org" in result.stderr
    assert fedledger("no-such-command").code == 2


# -- init, status, events ------------------------------------------------------------


def test_init_then_status_json_has_stable_keys(ws: Path) -> None:
    first = fedledger("ledger", "status", "-w", ws, "--json")
    data = first.json()
    assert set(data) == {"chain", "consortium", "tasks"}
    assert set(data["chain"]) == {"kind", "location", "chain_id", "block_number", "timestamp"}
    assert set(data["consortium"]) == {
        "address",
        "members",
        "active_members",
        "revoked_members",
        "admins",
        "threshold",
        "pending_proposals",
    }
    assert data["chain"]["kind"] == "embedded"
    assert data["consortium"]["members"] == 1 and data["consortium"]["admins"] == 1
    assert data["consortium"]["threshold"] == 1 and data["consortium"]["pending_proposals"] == 0
    assert data["tasks"] == {}
    # Reading changes nothing: the same bytes again (sorted keys, no volatile fields).
    assert fedledger("ledger", "status", "-w", ws, "--json").stdout == first.stdout
    human = fedledger("ledger", "status", "-w", ws)
    assert human.code == 0 and data["consortium"]["address"] in human.stdout


def test_init_refuses_an_existing_workspace(ws: Path) -> None:
    again = fedledger("init", "-w", ws, "--light-kdf")
    assert again.code == 2
    assert "already exists" in again.message


def test_commands_need_a_workspace(tmp_path: Path) -> None:
    result = fedledger("member", "list", "-w", tmp_path / "nowhere")
    assert result.code == 2
    assert "no fedledger workspace" in result.message and "fedledger init" in result.message


# -- members ---------------------------------------------------------------------


def test_member_add_list_roles_revoke_and_events(ws: Path) -> None:
    founder = fedledger("key", "list", "-w", ws, "--json").json()
    assert [k["name"] for k in founder] == ["admin"]
    bob = new_key(ws, "bob")

    added = fedledger("member", "add", bob, "--org", "Bob Labs", "--roles", "trainer,validator", "-w", ws, "--json")
    assert added.json() == {
        "action": f"admit {bob}",
        "approvals": 1,
        "executed": True,
        "proposal_id": 0,
        "threshold": 1,
    }
    listed = members(ws)
    assert list(listed) == [founder[0]["address"], bob]
    assert listed[bob]["org"] == "Bob Labs"
    assert listed[bob]["roles"] == ["trainer", "validator"]
    assert listed[bob]["status"] == "active"
    assert set(listed[bob]) == {
        "address",
        "org",
        "roles",
        "status",
        "cert_fingerprint",
        "kx_public_key",
        "store_uri",
        "admitted_at_block",
        "revoked_at_block",
    }
    assert listed[founder[0]["address"]]["roles"] == ALL_ROLES

    assert fedledger("member", "roles", bob, "aggregator,auditor", "-w", ws, "--json").json()["executed"]
    assert members(ws)[bob]["roles"] == ["aggregator", "auditor"]

    revoked = fedledger("member", "revoke", bob, "-w", ws, "--json").json()
    assert revoked["executed"] is True and revoked["action"] == f"revoke {bob}"
    assert members(ws)[bob]["status"] == "revoked"
    assert members(ws)[bob]["revoked_at_block"] > 0

    status = fedledger("ledger", "status", "-w", ws, "--json").json()["consortium"]
    assert (status["members"], status["active_members"], status["revoked_members"]) == (2, 1, 1)

    rows = fedledger("ledger", "events", "-w", ws, "--json").json()
    names = [r["event"] for r in rows]
    for expected in ("MemberAdmitted", "RolesChanged", "MemberRevoked", "ProposalCreated"):
        assert expected in names
    assert names.index("MemberRevoked") > names.index("RolesChanged") > names.index("MemberAdmitted")
    for row in rows:
        assert {"event", "contract", "block_number", "tx_hash", "log_index"} <= set(row)
    order = [(r["block_number"], r["log_index"]) for r in rows]
    assert order == sorted(order)
    only = fedledger("ledger", "events", "-w", ws, "--json", "--name", "MemberRevoked").json()
    assert [r["event"] for r in only] == ["MemberRevoked"]
    assert fedledger("ledger", "events", "-w", ws).code == 0
    assert fedledger("member", "list", "-w", ws).code == 0


@pytest.mark.parametrize("bad", ["0x123", "not-an-address", "0x" + "zz" * 20, "0x" + "11" * 21])
def test_malformed_address_is_named_and_changes_nothing(ws: Path, bad: str) -> None:
    before = block_number(ws)
    result = fedledger("member", "add", bad, "--org", "X", "-w", ws)
    assert result.code == BadInput.exit_code == 2
    assert "malformed member address" in result.message
    assert repr(bad) in result.message
    assert result.stdout == ""
    assert block_number(ws) == before
    assert len(members(ws)) == 1
    revoke = fedledger("member", "revoke", bad, "-w", ws)
    assert revoke.code == 2 and repr(bad) in revoke.message


def test_unknown_role_is_named(ws: Path) -> None:
    result = fedledger("member", "add", CAROL, "--org", "C", "--roles", "trainer,wizard", "-w", ws)
    assert result.code == 2
    assert "unknown role 'wizard'" in result.message


def test_unauthorized_caller_gets_not_authorized(ws: Path) -> None:
    bob = new_key(ws, "bob")
    assert fedledger("member", "add", bob, "--org", "Bob", "--roles", "trainer", "-w", ws).code == 0
    before = block_number(ws)
    # A member without the admin role ...
    denied = fedledger("member", "add", CAROL, "--org", "Carol", "-w", ws, "--as", "bob")
    assert denied.code == NotAuthorized.exit_code
    assert "consortium: caller is not an admin" in denied.message
    assert denied.stdout == ""
    # ... and a (funded) key that was never admitted.
    stranger = new_key(ws, "stranger")
    with Workspace.load(ws) as opened:
        assert opened.fund(stranger)
    before = block_number(ws)
    for args in (["member", "revoke", bob], ["member", "threshold", "1"]):
        result = fedledger(*args, "-w", ws, "--as", "stranger")
        assert result.code == NotAuthorized.exit_code, result.stderr
        assert "consortium: caller is not an admin" in result.message
    assert block_number(ws) == before
    assert CAROL not in members(ws)


def test_unfunded_key_gets_a_clear_chain_error(ws: Path) -> None:
    poor = new_key(ws, "poor")
    before = block_number(ws)
    result = fedledger("member", "add", CAROL, "--org", "Carol", "-w", ws, "--as", "poor")
    assert result.code == ChainError.exit_code
    assert f"the chain refused a transaction from {poor}" in result.message
    assert "Traceback" not in result.stderr
    assert block_number(ws) == before


def test_threshold_and_approval_by_two_admins(ws: Path) -> None:
    second = new_key(ws, "admin2")
    assert fedledger("member", "add", second, "--org", "Second", "--roles", "admin", "-w", ws, "--json").json()[
        "executed"
    ]
    raised = fedledger("member", "threshold", "2", "-w", ws, "--json").json()
    assert raised["executed"] is True and raised["threshold"] == 2

    # With M = 2 an admission waits for a second admin.
    pending = fedledger("member", "add", CAROL, "--org", "Carol", "-w", ws, "--json").json()
    assert pending["executed"] is False and pending["approvals"] == 1 and pending["threshold"] == 2
    assert CAROL not in members(ws)
    human = fedledger("member", "add", DAVE, "--org", "Dave", "-w", ws)
    assert human.code == 0 and "member approve" in human.stdout

    proposals = fedledger("member", "proposals", "-w", ws, "--json").json()
    assert [p["target"] for p in proposals] == [CAROL, DAVE]
    carol_proposal = proposals[0]
    assert set(carol_proposal) == {
        "proposal_id",
        "kind",
        "target",
        "roles",
        "threshold",
        "approvals",
        "needed",
        "proposer",
    }
    assert carol_proposal["kind"] == "admit"
    assert (carol_proposal["approvals"], carol_proposal["needed"]) == (1, 2)
    assert carol_proposal["roles"] == ["trainer", "validator"]

    # The proposer cannot approve twice; the second admin's approval executes it.
    twice = fedledger("member", "approve", carol_proposal["proposal_id"], "-w", ws)
    assert twice.code != 0 and "consortium:" in twice.message
    approved = fedledger("member", "approve", carol_proposal["proposal_id"], "-w", ws, "--as", "admin2", "--json")
    assert approved.json()["executed"] is True
    assert members(ws)[CAROL]["status"] == "active"
    left = fedledger("member", "proposals", "-w", ws, "--json").json()
    assert [p["target"] for p in left] == [DAVE]
    assert fedledger("ledger", "status", "-w", ws, "--json").json()["consortium"]["pending_proposals"] == 1

    # Revocation also needs both.
    revoke = fedledger("member", "revoke", CAROL, "-w", ws, "--as", "admin2", "--json").json()
    assert revoke["executed"] is False
    assert members(ws)[CAROL]["status"] == "active"
    assert fedledger("member", "approve", revoke["proposal_id"], "-w", ws, "--json").json()["executed"] is True
    assert members(ws)[CAROL]["status"] == "revoked"
    assert "ThresholdChanged" in [r["event"] for r in fedledger("ledger", "events", "-w", ws, "--json").json()]


# -- secrets -----------------------------------------------------------------------


def test_wrong_password_fails_without_echoing_it(ws: Path) -> None:
    wrong = "definitely-wrong-4d1c"
    result = fedledger("member", "add", CAROL, "--org", "Carol", "-w", ws, password=wrong)
    assert result.code == KeystoreError.exit_code
    assert "cannot decrypt key 'admin'" in result.message
    assert wrong not in result.stdout + result.stderr
    assert CAROL not in members(ws)


def test_password_never_printed_nor_stored(ws: Path) -> None:
    new_key(ws, "bob")
    fedledger("key", "list", "-w", ws)
    fedledger("ledger", "events", "-w", ws, "--json")
    assert OUTPUTS and not any(PASSWORD in text for text in OUTPUTS)
    for path in ws.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path


def test_typer_app_is_the_entry_point() -> None:
    assert isinstance(app, typer.Typer)


def test_key_kx_public_key_is_what_secure_aggregation_pairs_with(ws: Path) -> None:
    from eth_account import Account

    from fedledger.federation.secure import identity_key

    created = fedledger("key", "new", "dana", "-w", ws, "--json").json()
    shown = fedledger("key", "kx", "dana", "-w", ws, "--json").json()
    assert shown["kx_public_key"] == created["kx_public_key"]
    assert len(bytes.fromhex(shown["kx_public_key"].removeprefix("0x"))) == 32
    other = identity_key(Account.create()).public_bytes.hex()
    assert shown["kx_public_key"] != "0x" + other  # derived from this key, not a constant
    added = fedledger(
        "member", "add", created["address"], "--org", "Dana", "--kx-public-key", shown["kx_public_key"], "-w", ws
    )
    assert added.code == 0, added.stderr
    assert members(ws)[created["address"]]["kx_public_key"] == shown["kx_public_key"]
