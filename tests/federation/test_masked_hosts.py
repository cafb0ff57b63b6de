"""Masked checks with the committee on several hosts: each member's node publishes where its MPC party is reached
(host, port range, TLS certificates) on the task's bulletin, and each committee party runs MPyC with the host list
read from there, over TLS pinned to the published certificates.

On Linux all of 127.0.0.0/8 is loopback, so every member gets its own address (127.0.0.2, 127.0.0.3, ...): a party
reached at another member's address, or at the default 127.0.0.1, would show in where it dialed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

pytest.importorskip("mpyc")

from fedledger.chain.masked_events import ChecksAccepted  # noqa: E402
from fedledger.chain.task import Phase  # noqa: E402
from fedledger.exceptions import BadInput, ConfigError, MpcEndpointError  # noqa: E402
from fedledger.federation import Simulation  # noqa: E402
from fedledger.federation.evaluation import task_bulletin  # noqa: E402
from fedledger.federation.masked_node import MaskedRounds  # noqa: E402
from fedledger.federation.masked_round import masked_context  # noqa: E402
from fedledger.federation.masked_settings import MAX_CHECK_COMMITTEE  # noqa: E402
from fedledger.federation.mpc_endpoint import (  # noqa: E402
    ENDPOINT_TOPIC,
    MpcSetting,
    committee_endpoints,
    endpoint_blob,
    party_addresses,
    publish_endpoint,
    read_endpoint,
    tls_key,
)
from fedledger.privacy.masked_checks import CheckParams  # noqa: E402
from fedledger.privacy.masked_party import collect_result, free_base_port, start_party, write_job  # noqa: E402
from fedledger.privacy.masked_tls import (  # noqa: E402
    certificate_fingerprint,
    guard_connections,
    seat_certificates,
    write_mpyc_tls,
)
from fedledger.workspace import Workspace  # noqa: E402
from helpers.masked import masked_consortium  # noqa: E402

TASK = "0x" + "11" * 20


def test_a_committee_on_four_addresses_publishes_its_endpoints_and_checks_over_pinned_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, sim = masked_consortium(tmp_path, rounds=1)
    low = free_base_port(MAX_CHECK_COMMITTEE)
    hosts = {node.account.address: f"127.0.0.{i + 2}" for i, node in enumerate(sim.nodes)}
    for node in sim.nodes:
        node.mpc_endpoint = MpcSetting(hosts[node.account.address], (low, low + MAX_CHECK_COMMITTEE - 1))
    results: dict[int, dict[str, Any]] = {}
    stop = MaskedRounds._stop

    def recording_stop(self: MaskedRounds, r: int) -> None:
        """Keep each party's result file before the round's folder goes (a party whose outcome came after the
        majority's is stopped without being read)."""
        run = self._runs.get(r)
        if run is not None:
            run.proc.wait(timeout=60)
            results[run.index] = json.loads((run.folder / f"result{run.index}.json").read_text())
        stop(self, r)

    monkeypatch.setattr(MaskedRounds, "_stop", recording_stop)
    with ws:
        Simulation(sim.task, sim.nodes).run()
        for node in sim.nodes:  # the task ended: a party whose outcome came last is still to be stopped
            mode = node.engine.mode
            assert isinstance(mode, MaskedRounds)
            for r in list(mode._runs):
                mode._stop(r)
        task = sim.task
        assert task.round(1).phase is Phase.FINALIZED, results
        assert [(e.round_id, e.num_accepted) for e in task.events() if isinstance(e, ChecksAccepted)] == [(1, 4)]

        # Every member published its endpoint once, under round 0, with its own host.
        bulletin = task_bulletin(task, sim.store)
        posts = bulletin.posts(task.address, 0, ENDPOINT_TOPIC)
        assert sorted(p.poster for p in posts) == sorted(hosts)
        committee = task.check_committee(1)
        endpoints = committee_endpoints(bulletin, sim.store, task.address, committee)
        assert [e.host for e in endpoints] == [hosts[m] for m in committee]

        # Each party dialed every later seat at the address that seat's member published, over TLS.
        addresses = party_addresses(endpoints, masked_context(task.address, 1))
        assert sorted(results) == [0, 1, 2] and all(r["status"] == "ok" for r in results.values()), results
        assert [results[i]["dialed"] for i in range(3)] == [
            {"1": addresses[1], "2": addresses[2]},
            {"2": addresses[2]},
            {},
        ]
        assert all(results[i]["tls"] == {str(j): "TLSv1.3" for j in range(3) if j != i} for i in range(3))

        # Publishing again is a no-op; another host for the same task is refused by name (the board keeps the first).
        first = sim.nodes[0]
        posted = bulletin.posted(task.address, 0, ENDPOINT_TOPIC, first.account.address)
        assert publish_endpoint(bulletin, sim.store, task.address, first.account, first.mpc_endpoint) == posted
        moved = MpcSetting("127.0.0.9", (low, low + MAX_CHECK_COMMITTEE - 1))
        with pytest.raises(ConfigError, match="already published another MPC endpoint .* cannot change"):
            publish_endpoint(bulletin, sim.store, task.address, first.account, moved)

        # A committee member whose endpoint is still missing at the check timeout is named in this member's abort.
        mode = sim.nodes[0].engine.mode
        assert isinstance(mode, MaskedRounds)
        aborts: list[tuple[str, list[str]]] = []
        monkeypatch.setattr(mode, "_post_abort", lambda r, index, reason, silent: aborts.append((reason, silent)))
        mode.check_timeout = 0.0
        stranger = "0x" + "44" * 20
        assert mode._committee_endpoints(2, 0, [*committee[:2], stranger]) is None
        missing = (
            f"the committee cannot connect: committee member(s) {stranger} published no MPC endpoint for this task"
        )
        assert aborts == [(missing, [stranger])]


def test_bad_mpc_endpoints_are_named() -> None:
    member, other = "0x" + "22" * 20, "0x" + "33" * 20
    key = tls_key(Account.from_key(b"\x01" * 32))
    good = endpoint_blob(TASK, member, MpcSetting("10.0.0.5", (15000, 15099)), key)
    endpoint = read_endpoint(good, task=TASK, member=member)
    assert (endpoint.host, endpoint.ports, len(endpoint.certificates)) == ("10.0.0.5", (15000, 15099), 15)
    assert endpoint_blob(TASK, member, MpcSetting("10.0.0.5", (15000, 15099)), key) == good  # deterministic

    doc = json.loads(good)
    other_key = json.loads(endpoint_blob(TASK, member, MpcSetting("10.0.0.5"), tls_key(Account.from_key(b"\x02" * 32))))
    cases: list[tuple[Any, str]] = [
        (b"not json", "not JSON"),
        ({**doc, "format": "something/1"}, "not a fedledger-mpc-endpoint/1 record"),
        ({**doc, "member": other}, "for another task or member"),
        ({**doc, "task": other}, "for another task or member"),
        ({**doc, "host": "bad host; rm -rf /"}, "malformed MPC host"),
        ({**doc, "host": None}, "malformed MPC host"),
        ({**doc, "ports": [80, 90]}, "malformed MPC port range"),
        ({**doc, "ports": "15000-15099"}, "malformed MPC port range"),
        ({**doc, "tls_public_key": None}, "no TLS public key"),
        ({**doc, "tls_public_key": "zz"}, "not an Ed25519 key"),
        ({**doc, "tls_certificates": doc["tls_certificates"][:3]}, "expected 15 seat certificates"),
        ({**doc, "tls_certificates": other_key["tls_certificates"]}, "seat certificate 0 is not for the published"),
        ({**doc, "tls_certificates": doc["tls_certificates"][1:] + doc["tls_certificates"][:1]}, "must name only"),
        ({**doc, "tls_certificates": ["-----BEGIN CERTIFICATE-----\nAAAA\n"] * 15}, "malformed or not self-signed"),
    ]
    for record, reason in cases:
        blob = record if isinstance(record, bytes) else json.dumps(record).encode()
        with pytest.raises(BadInput, match=reason):
            read_endpoint(blob, task=TASK, member=member)

    # Through the bulletin: a missing record is named as missing (it may still come), a bad one as malformed.
    store = _Store({"aa" * 32: good, "bb" * 32: b"{}"})
    board = _Board({member: "0x" + "aa" * 32})
    assert committee_endpoints(board, store, TASK, [member])[0].host == "10.0.0.5"  # type: ignore[arg-type]
    with pytest.raises(MpcEndpointError, match=f"committee member\\(s\\) {other} published no MPC endpoint") as missing:
        committee_endpoints(board, store, TASK, [member, other])  # type: ignore[arg-type]
    assert (missing.value.members, missing.value.missing) == ([other], True)
    board.posts[other] = "0x" + "bb" * 32
    with pytest.raises(MpcEndpointError, match=f"malformed MPC endpoint \\({other}: the endpoint record is not a"):
        committee_endpoints(board, store, TASK, [member, other])  # type: ignore[arg-type]
    board.posts[other] = "0x" + "cc" * 32  # a record the store does not hold
    with pytest.raises(MpcEndpointError, match="malformed MPC endpoint") as absent:
        committee_endpoints(board, store, TASK, [member, other])  # type: ignore[arg-type]
    assert (absent.value.members, absent.value.missing) == ([other], False)

    # This node's own setting, as the workspace or the command line gives it.
    assert MpcSetting.parse("node-2.hospital.example", "16000-16020").ports == (16000, 16020)
    for host, ports in [("", ""), ("two words", ""), ("10.0.0.5", "16000"), ("10.0.0.5", "16000-16004")]:
        with pytest.raises(ConfigError, match="mpc_host / mpc_ports"):
            MpcSetting.parse(host, ports)


def test_the_node_setting_comes_from_the_workspace_unless_the_command_line_gives_one(tmp_path: Path) -> None:
    from fedledger.cli.node import _mpc_setting

    ws = Workspace.create(tmp_path / "ws", scrypt_n=2)
    assert _mpc_setting(ws, None, None) is None  # no host: the committee runs on one host, nothing published
    ws.config.mpc_host, ws.config.mpc_ports = "10.0.0.5", "15000-15099"
    ws.save()
    ws = Workspace.load(tmp_path / "ws")
    assert _mpc_setting(ws, None, None) == MpcSetting("10.0.0.5", (15000, 15099))
    assert _mpc_setting(ws, "node-2.example.org", None) == MpcSetting("node-2.example.org", (15000, 15099))
    assert _mpc_setting(ws, None, "") == MpcSetting("10.0.0.5")
    with pytest.raises(ConfigError, match="malformed MPC host"):
        _mpc_setting(ws, "10.0.0.5:14000", None)


def test_a_committee_member_that_connects_with_another_seats_certificate_is_named_before_any_share(
    tmp_path: Path,
) -> None:
    """Seat 0 runs its party with seat 1's member's key and seat certificate: trusted, so every TLS handshake passes,
    and seats 1 and 2 (which accept its connections, where MPyC checks no name) name it from the pins."""
    params = CheckParams(length=10, norm_bound=1.0, min_cosine=None, frac_bits=16, committee=3)
    keys = [tls_key(Account.from_key(bytes([s + 1]) * 32)) for s in range(3)]
    certificates = [seat_certificates(key, 3) for key in keys]
    trusted = [certificates[s][s] for s in range(3)]
    low = free_base_port(3)
    job = write_job(
        tmp_path,
        params,
        context=b"c" * 32,
        bundles={},
        reference=None,
        keys=[X25519PrivateKey.generate() for _ in range(3)],
        timeout=3.0,
        parties=[f"127.0.0.{s + 2}:{low + s}" for s in range(3)],
        tls_pins=[certificate_fingerprint(pem) for pem in trusted],
    )
    folders = [write_mpyc_tls(tmp_path / "tls0", 0, keys[1], [certificates[1][1], *trusted[1:]])]
    folders += [write_mpyc_tls(tmp_path / f"tls{s}", s, keys[s], trusted) for s in (1, 2)]
    procs = [start_party(job, s, tls_folder=folders[s]) for s in range(3)]
    results = {s: collect_result(job, s, procs[s], wait=60) for s in (1, 2)}
    collect_result(job, 0, procs[0], wait=0.1)  # the impostor waits for shares that never come: stop it
    impostor = (
        "committee member(s) 0 did not present the TLS certificate published for their seat; the checks were aborted "
        "before any share was sent"
    )
    # Neither honest seat runs the checks; one names seat 0 first, and the other either does too or sees that seat
    # close its connection before the checks began (closing is MPyC's signal that the start is over).
    assert [results[seat]["status"] for seat in (1, 2)] == ["aborted", "aborted"], results
    named = [results[seat]["reason"] == impostor and results[seat]["impostors"] == [0] for seat in (1, 2)]
    assert any(named), results
    for seat in (1, 2):
        assert named[seat - 1] or "closed their connection before the checks began" in results[seat]["reason"]


def test_a_connection_registers_only_with_the_certificate_pinned_for_its_seat() -> None:
    pins = ["a" * 64, hashlib.sha256(b"seat 1").hexdigest(), hashlib.sha256(b"seat 2").hexdigest()]
    runtime = _Runtime()
    impostors: list[int] = []
    guard_connections(runtime, pins, impostors.append)
    runtime.set_protocol(1, _Protocol(b"seat 1"))
    runtime.set_protocol(2, _Protocol(b"seat 1"))  # seat 2 claimed with seat 1's certificate (trusted: TLS passed)
    runtime.set_protocol(2, _Protocol(None))  # or without TLS
    runtime.set_protocol(7, _Protocol(b"seat 1"))  # or a seat the committee does not have
    assert (sorted(runtime.registered), impostors) == ([1], [2, 2, 7])


class _Runtime:
    """The part of an MPyC runtime that registers its peers' connections."""

    def __init__(self) -> None:
        self.registered: dict[int, Any] = {}

    def set_protocol(self, peer_pid: int, protocol: Any) -> None:
        self.registered[peer_pid] = protocol


class _Protocol:
    """A connection presenting the given certificate bytes (None: not TLS)."""

    def __init__(self, cert: bytes | None) -> None:
        tls = None if cert is None else SimpleNamespace(getpeercert=lambda binary_form: cert)
        self.transport = SimpleNamespace(get_extra_info=lambda name: tls if name == "ssl_object" else None)


class _Board:
    """A bulletin's ``posted`` view, over a dict."""

    def __init__(self, posts: dict[str, str]) -> None:
        self.posts = posts

    def posted(self, task: str, round_id: int, topic: str, poster: str) -> str | None:
        assert (task, round_id, topic) == (TASK, 0, ENDPOINT_TOPIC)
        return self.posts.get(poster)


class _Store:
    """A store's ``get``, over a dict; a missing blob raises the store's own error."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def get(self, blob_id: str, *, max_bytes: int | None = None) -> bytes:
        from fedledger.exceptions import BlobNotFound

        if blob_id not in self.blobs:
            raise BlobNotFound(blob_id)
        return self.blobs[blob_id]
