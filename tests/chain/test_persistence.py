"""The embedded chain persists on disk: across processes, one writer at a time, constant start-up.

Process boundaries are real here (``subprocess``): a second Python process opens
the workspace the first one wrote and must see the same chain.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from fedledger.chain import Chain, ConsortiumClient, MemberStatus, Role
from fedledger.chain import embedded as embedded_mod
from fedledger.chain.embedded import FAUCET_KEY
from fedledger.cli.app import app
from fedledger.exceptions import ChainBusy, ConfigError, FedLedgerError, exit_code_for
from fedledger.workspace import LOCK_TIMEOUT_ENV, Workspace

PASSWORD = "persistence-test-pass-5e2c"


@pytest.fixture(autouse=True)
def password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDLEDGER_PASSWORD", PASSWORD)


MEMBER = Account.from_key("0x" + "42" * 32).address

# Prints what a process sees in a workspace: chain head, contracts, members.
DUMP = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from fedledger.workspace import Workspace

    with Workspace.load(Path(sys.argv[1])) as ws:
        chain = ws.chain
        head = chain.w3.eth.get_block("latest")
        consortium = ws.consortium()
        print(json.dumps({
            "pid": __import__("os").getpid(),
            "block_number": chain.block_number,
            "head_hash": head["hash"].to_0x_hex(),
            "state_root": head["stateRoot"].to_0x_hex(),
            "consortium": consortium.address,
            "code": chain.w3.eth.get_code(consortium.address).to_0x_hex(),
            "members": [m.to_json() for m in consortium.members()],
            "threshold": consortium.threshold,
        }, sort_keys=True))
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEDLEDGER_")}
    env.update({"FEDLEDGER_PASSWORD": PASSWORD, **extra})
    if "FEDLEDGER_CACHE" in os.environ:  # reuse compiled contracts
        env["FEDLEDGER_CACHE"] = os.environ["FEDLEDGER_CACHE"]
    return env


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env or _env(), timeout=120
    )


CLI = "from fedledger.cli import main; main()"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = _python(CLI, *args, env=env)
    assert PASSWORD not in result.stdout + result.stderr
    return result


def _in_process(*args: str) -> int:
    """Run the CLI in this process; its exit code."""
    try:
        code = app(list(args), standalone_mode=False)
    except FedLedgerError as exc:
        return exit_code_for(exc)
    return int(code or 0)


def test_second_process_sees_the_same_chain(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    # Process 1: create the workspace on the embedded chain and admit a member (CLI, one process).
    writer = textwrap.dedent(
        f"""
        import sys
        from fedledger.cli.app import app
        for argv in (["init", "-w", sys.argv[1], "--light-kdf", "--org", "Founder"],
                     ["member", "add", "{MEMBER}", "--org", "Member-1", "-w", sys.argv[1]]):
            assert not app(argv, standalone_mode=False), argv
        """
    )
    first = _python(writer + DUMP, str(ws))
    assert first.returncode == 0, first.stderr
    assert PASSWORD not in first.stdout + first.stderr
    seen_by_writer = json.loads(first.stdout.strip().splitlines()[-1])
    assert (ws / "chain" / "chain.sqlite").is_file()

    # Process 2: a fresh interpreter opens the same workspace.
    second = _python(DUMP, str(ws))
    assert second.returncode == 0, second.stderr
    seen_by_reader = json.loads(second.stdout)
    assert seen_by_reader.pop("pid") != seen_by_writer.pop("pid")
    assert seen_by_reader == seen_by_writer
    assert seen_by_reader["block_number"] >= 3  # funding, deploy, admission, member funding
    assert len(seen_by_reader["code"]) > 2
    members = {m["address"]: m for m in seen_by_reader["members"]}
    assert members[MEMBER]["org"] == "Member-1"
    assert members[MEMBER]["status"] == "active"
    assert members[MEMBER]["roles"] == ["trainer", "validator"]

    # Process 3: the CLI writes on from the stored head ...
    revoke = _cli("member", "revoke", MEMBER, "-w", str(ws), "--json")
    assert revoke.returncode == 0, revoke.stderr
    assert json.loads(revoke.stdout)["executed"] is True
    # ... and this process reads what all of them wrote.
    with Workspace.load(ws) as reopened:
        assert reopened.chain.block_number == seen_by_reader["block_number"] + 1
        assert reopened.consortium().address == seen_by_reader["consortium"]
        assert reopened.consortium().member(MEMBER).status is MemberStatus.REVOKED


def test_second_writer_gets_chain_busy(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    assert _in_process("init", "-w", str(ws), "--light-kdf") == 0
    # Hold the chain open in this process ...
    with Chain.embedded(ws / "chain") as held:
        block = held.block_number
        # ... a second process (library) fails fast with ChainBusy naming the holder,
        probe = textwrap.dedent(
            """
            import sys
            from pathlib import Path
            from fedledger.chain import Chain
            from fedledger.exceptions import ChainBusy
            try:
                Chain.embedded(Path(sys.argv[1]), lock_timeout=0.2)
            except ChainBusy as exc:
                print("busy:", exc)
                sys.exit(17)
            """
        )
        result = _python(probe, str(ws / "chain"))
        assert result.returncode == 17, result.stderr
        assert f"in use by another process (pid {os.getpid()})" in result.stdout
        # ... and so does the CLI, with ChainError's exit code and a message on stderr.
        cli = _cli("ledger", "status", "-w", str(ws), env=_env(**{LOCK_TIMEOUT_ENV: "0.2"}))
        assert cli.returncode == ChainBusy.exit_code, cli.stderr
        assert "in use by another process" in " ".join(cli.stderr.split())
        assert cli.stdout == ""
        assert held.block_number == block
    # Once released, the next process opens it.
    assert _cli("ledger", "status", "--json", "-w", str(ws)).returncode == 0


def test_bad_lock_timeout_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(LOCK_TIMEOUT_ENV, "soon")
    assert _in_process("init", "-w", str(tmp_path / "ws"), "--light-kdf") == ConfigError.exit_code
    assert f"{LOCK_TIMEOUT_ENV}='soon'" in " ".join(capsys.readouterr().err.split())


def test_chain_busy_in_process(tmp_path: Path) -> None:
    with Chain.embedded(tmp_path) as held:
        with pytest.raises(ChainBusy, match="in use by another process"):
            Chain.embedded(tmp_path, lock_timeout=0.05)
        assert held.block_number == 0


class _ReadCounter:
    """Counts key-value reads (gets and existence checks) on SqliteKV."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reads = 0
        kv = embedded_mod.SqliteKV
        get, exists = kv.__getitem__, kv._exists

        def counted_get(db: Any, key: bytes) -> bytes:
            self.reads += 1
            return get(db, key)

        def counted_exists(db: Any, key: bytes) -> bool:
            self.reads += 1
            return exists(db, key)

        monkeypatch.setattr(kv, "__getitem__", counted_get)
        monkeypatch.setattr(kv, "_exists", counted_exists)

    def open_cost(self, directory: Path) -> tuple[int, int]:
        """(reads to open the chain and read its head, block number)."""
        self.reads = 0
        with Chain.embedded(directory) as chain:
            number = chain.block_number
            chain.timestamp()
            return self.reads, number


def test_startup_does_not_grow_with_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faucet = Account.from_key(FAUCET_KEY.to_bytes())
    admin = Account.from_key("0x" + "11" * 32)
    with Chain.embedded(tmp_path) as chain:
        chain.transfer(faucet, admin.address, 10**21)
        consortium = ConsortiumClient.deploy(chain, admin, org="Founder")
        chain.w3.provider.make_request("evm_mine", [3])  # type: ignore[arg-type]
    counter = _ReadCounter(monkeypatch)
    short_reads, short_height = counter.open_cost(tmp_path)
    assert short_height == 5

    # Grow the history ~60x: transactions that touch state, then empty blocks.
    with Chain.embedded(tmp_path) as chain:
        consortium = ConsortiumClient(chain, consortium.address, admin)
        for i in range(20):
            member = Account.from_key((1000 + i).to_bytes(32, "big")).address
            consortium.propose_admit(member, org=f"m{i}", roles=Role.TRAINER)
        chain.w3.provider.make_request("evm_mine", [300 - chain.block_number])  # type: ignore[arg-type]
    long_reads, long_height = counter.open_cost(tmp_path)
    assert long_height == 300

    # Opening reads the stored head, not the history: the same number of reads.
    assert long_reads == short_reads, (short_reads, long_reads)
    assert short_reads < 50
    # And the reopened chain carries the whole state.
    with Chain.embedded(tmp_path) as chain:
        assert len(ConsortiumClient(chain, consortium.address).members()) == 21
