"""Run one committee member of the masked checks as its own OS process, and launch a local committee.

Each committee member is a separate process with its own MPyC runtime, started the
way MPyC starts a party of an ``m``-party computation: on one host ``-M m -I i -B base_port``
(party ``i`` listens on ``base_port + i``), or, when the job lists the parties' addresses (a committee spread
over the members' machines), MPyC's host list ``-P host:port`` once per party, in party order, and ``-I i``.
Party ``i`` listens on its own port on all of its host's interfaces (MPyC binds no address) and dials every party
after it. With ``--tls DIR`` the party runs MPyC's ``--ssl`` from the certificates in ``DIR/.config``
(:mod:`fedledger.privacy.masked_tls`) and registers a peer's connection only when the peer presented the
certificate the job pins for its seat. Separate processes rather than MPyC's single-process mode, because that is
how a committee is deployed (one process per organization) and because only then can one party stop answering
while the others notice it.

    python -m fedledger.privacy.masked_party --job job.json --index 1 --key party1.key \\
        --base-port 14000 --out result1.json

The job file holds the round's :class:`~fedledger.privacy.masked_checks.CheckParams`,
context, the members' bundle files and the optional public reference (a ``.npy`` of floats),
optionally the parties' addresses and certificate pins, or, when the committee checks against its own
references, each party's own reference file;
``--key`` holds the party's X25519 private key (hex). The result file holds the
:class:`~fedledger.privacy.masked_committee.CheckOutcome`, or an abort naming the
committee members that stopped answering within the timeout (or, with pins, that presented another certificate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fedledger.exceptions import ConfigError
from fedledger.privacy.masked_checks import (
    CheckParams,
    CommitteeAbort,
    MalformedShares,
    ObjectArray,
    OpenedShare,
    open_share,
    quantize_reference,
)
from fedledger.privacy.masked_committee import CheckOutcome, run_checks
from fedledger.privacy.masked_tls import guard_connections

__all__ = ["collect_result", "free_base_port", "launch_committee", "main", "start_party", "write_job"]


def write_job(
    directory: Path,
    params: CheckParams,
    *,
    context: bytes,
    bundles: dict[str, bytes],
    reference: np.ndarray[Any, Any] | None,
    keys: list[X25519PrivateKey],
    timeout: float,
    own_references: Mapping[int, np.ndarray[Any, Any]] | None = None,
    center: np.ndarray[Any, Any] | None = None,
    parties: Sequence[str] | None = None,
    tls_pins: Sequence[str] | None = None,
) -> Path:
    """Write a committee job (bundles, reference, one key file per party) under ``directory``.

    ``own_references`` maps a party to its own reference update (``params.reference == "committee"``): a
    committee member writes only its own, next to its key. ``center``: the public fixed-point center of the
    committee's centered clipping (``params.clip_radius``; ``None``: zero). ``parties``: each party's ``host:port``,
    in party order (default: every party on this host, at the launcher's base port); ``tls_pins``: the sha256 of the
    certificate each party must present (:func:`fedledger.privacy.masked_tls.certificate_fingerprint`), for a
    party started with ``tls_folder``.
    """
    directory = Path(directory).resolve()  # a party with TLS runs in its certificates' folder
    directory.mkdir(parents=True, exist_ok=True)
    paths: dict[str, str] = {}
    for member, data in bundles.items():
        path = directory / f"bundle-{len(paths)}.bin"
        path.write_bytes(data)
        paths[member] = str(path)
    ref_path = None
    if reference is not None:
        ref_path = str(directory / "reference.npy")
        np.save(ref_path, np.asarray(reference, dtype=np.float64))
    own_paths = {}
    for index, own in (own_references or {}).items():
        own_path = directory / f"own-reference{index}.npy"
        np.save(own_path, np.asarray(own, dtype=np.float64))
        own_path.chmod(0o600)
        own_paths[str(index)] = str(own_path)
    for index, key in enumerate(keys):
        key_path = directory / f"party{index}.key"
        key_path.write_text(key.private_bytes_raw().hex())
        key_path.chmod(0o600)
    center_path = None
    if center is not None:
        center_path = str(directory / "center.npy")
        np.save(center_path, np.asarray(center, dtype=np.int64))
    job: dict[str, Any] = {
        "center": center_path,
        "params": params.to_dict(),
        "context": context.hex(),
        "bundles": paths,
        "reference": ref_path,
        "own_references": own_paths,
        "timeout": timeout,
    }
    if parties is not None:
        job["parties"] = list(parties)
    if tls_pins is not None:
        job["tls_pins"] = list(tls_pins)
    job_path = directory / "job.json"
    job_path.write_text(json.dumps(job, sort_keys=True))
    return job_path


def _open_all(job: dict[str, Any], params: CheckParams, party: int, key: X25519PrivateKey) -> dict[str, Any]:
    context = bytes.fromhex(job["context"])
    opened: dict[str, OpenedShare | MalformedShares] = {}
    for member, path in job["bundles"].items():
        try:
            opened[member] = open_share(
                Path(path).read_bytes(), params, member=member, context=context, party=party, private_key=key
            )
        except MalformedShares as exc:
            opened[member] = exc
    return opened


def _connected(mpc: Any) -> set[int]:
    return {p.pid for p in mpc.parties if p.pid != mpc.pid and hasattr(p.protocol, "buffers")}


def _silent_parties(mpc: Any, ever_connected: set[int]) -> tuple[int, ...]:
    """Peers that never connected, or are connected and still owe this party a message.

    A peer that connected and then closed its connection is not named: it gave up on its own
    timeout (a party that saw the silent member first), it did not go silent.
    """
    silent = []
    for peer in mpc.parties:
        if peer.pid == mpc.pid:
            continue
        protocol = peer.protocol
        owes_message = hasattr(protocol, "buffers") and any(
            isinstance(v, asyncio.Future) and not v.done() for v in protocol.buffers.values()
        )
        if peer.pid not in ever_connected or owes_message:
            silent.append(peer.pid)
    return tuple(silent)


async def _watch_connections(mpc: Any, seen: set[int]) -> None:
    while True:
        seen |= _connected(mpc)
        await asyncio.sleep(0.05)


def _reference(job: dict[str, Any], params: CheckParams, index: int) -> ObjectArray | None:
    """The reference this party checks directions with: the job's public one, or this party's own."""
    if params.reference == "committee" and params.min_cosine is not None:
        path = job.get("own_references", {}).get(str(index))
        if not path:
            raise ConfigError(f"committee member {index} has no reference of its own for the direction check")
        return quantize_reference(np.load(path), params)
    return quantize_reference(np.load(job["reference"]) if job["reference"] else None, params)


async def _connect(mpc: Any, pins: Sequence[str] | None) -> dict[str, Any] | None:
    """Start MPyC (connect to every party); None once every party is connected, else the abort result.

    With ``pins``, a peer that presents another certificate than the one pinned for its seat stops the start: its
    connection was never registered, so nothing was sent to it. MPyC also ends its start when every registered
    connection closed again (its shutdown signal), so a start that returns with a peer missing aborts as well."""
    impostors: list[int] = []
    caught: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def impostor(seat: int) -> None:
        impostors.append(seat)
        if not caught.done():
            caught.set_result(None)

    if pins is not None:
        guard_connections(mpc, pins, impostor)
    start = asyncio.ensure_future(mpc.start())
    await asyncio.wait([start, caught], return_when=asyncio.FIRST_COMPLETED)
    if impostors:
        start.cancel()
        seats = ", ".join(map(str, sorted(set(impostors))))
        reason = (
            f"committee member(s) {seats} did not present the TLS certificate published for their seat; the checks "
            "were aborted before any share was sent"
        )
        return {"status": "aborted", "reason": reason, "parties": [], "impostors": sorted(set(impostors))}
    await start
    if left := [p.pid for p in mpc.parties if p.pid != mpc.pid and p.protocol is None]:
        reason = (
            f"committee member(s) {', '.join(map(str, left))} closed their connection before the checks began; "
            "the checks were aborted before any share was sent"
        )
        return {"status": "aborted", "reason": reason, "parties": []}
    return None


def _run(job: dict[str, Any], index: int, key: X25519PrivateKey) -> dict[str, Any]:
    from mpyc.runtime import mpc  # set up from sys.argv, which main() filled in for MPyC

    params = CheckParams.from_dict(job["params"])
    context = bytes.fromhex(job["context"])
    reference = _reference(job, params, index)
    center = np.load(job["center"]) if job.get("center") else None
    started = time.process_time()
    opened = _open_all(job, params, index, key)
    open_seconds = time.process_time() - started

    seen: set[int] = set()
    pins = job.get("tls_pins")
    links: dict[str, Any] = {}  # where this party reached its peers, and over which TLS version

    async def session() -> CheckOutcome | dict[str, Any]:
        watcher = asyncio.ensure_future(_watch_connections(mpc, seen))
        try:
            if (abort := await _connect(mpc, pins)) is not None:
                return abort
            seen.update(_connected(mpc))
            links.update(dialed=_dialed(mpc), tls=_tls_versions(mpc))
            print("connected", flush=True)  # a launcher may wait for this line
            outcome = await run_checks(mpc, params, context, opened, reference, center)
            await mpc.shutdown()
            return outcome
        finally:
            watcher.cancel()

    try:
        outcome = mpc.run(asyncio.wait_for(session(), timeout=float(job["timeout"])))
    except TimeoutError:
        silent = _silent_parties(mpc, seen)
        abort = CommitteeAbort(
            f"committee member(s) {', '.join(map(str, silent)) or 'unknown'} stopped answering within "
            f"{job['timeout']} s; the checks were aborted and no result was published",
            silent,
        )
        return {"status": "aborted", "reason": abort.reason, "parties": list(abort.parties)}
    if isinstance(outcome, dict):
        return outcome
    result = outcome.to_dict()
    result.update(open_cpu_s=open_seconds, cpu_s=time.process_time() - started)
    return {"status": "ok", "outcome": result, **links}


def _dialed(mpc: Any) -> dict[str, str]:
    """The address each peer this party dialed (the parties after it) answered at: ``host:port`` by seat."""
    dialed = {}
    for peer in mpc.parties[mpc.pid + 1 :]:
        transport = getattr(peer.protocol, "transport", None)
        address = transport.get_extra_info("peername") if transport is not None else None
        if address:
            dialed[str(peer.pid)] = f"{address[0]}:{address[1]}"
    return dialed


def _tls_versions(mpc: Any) -> dict[str, str | None]:
    """The TLS version of each peer's connection (None: not TLS), by seat."""
    versions: dict[str, str | None] = {}
    for peer in mpc.parties:
        transport = getattr(peer.protocol, "transport", None)
        if peer.pid != mpc.pid and transport is not None:
            tls = transport.get_extra_info("ssl_object")
            versions[str(peer.pid)] = tls.version() if tls is not None else None
    return versions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fedledger.privacy.masked_party", description=__doc__)
    parser.add_argument("--job", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--base-port", type=int, help="every party on this host: party i listens on base + i")
    parser.add_argument("--tls", type=Path, help="run MPyC with --ssl from the certificates in TLS/.config")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    job = json.loads(args.job.read_text())
    out = args.out.resolve()
    key = X25519PrivateKey.from_private_bytes(bytes.fromhex(args.key.read_text().strip()))
    # MPyC configures its runtime from sys.argv when mpyc.runtime is first imported.
    sys.argv = [sys.argv[0], *_mpyc_options(job, args.index, args.base_port), "--no-log"]
    if job.get("tls_pins") is not None and args.tls is None:
        raise ConfigError("a job with certificate pins needs --tls: its peers expect TLS")
    if args.tls is not None:
        sys.argv.append("--ssl")
        os.chdir(args.tls)  # MPyC reads .config/ from the working folder when it connects
    result = _run(job, args.index, key)
    out.write_text(json.dumps(result, sort_keys=True))
    sys.stdout.flush()
    os._exit(0 if result["status"] == "ok" else 3)  # MPyC's loop may hold sockets of a silent peer open


def _mpyc_options(job: Mapping[str, Any], index: int, base_port: int | None) -> list[str]:
    """MPyC's options for party ``index`` of ``job``: its host list when the job has one, else local parties."""
    parties = job.get("parties")
    if parties is not None:
        if len(parties) != int(job["params"]["committee"]):
            raise ConfigError(
                f"the job lists {len(parties)} party addresses for a committee of {job['params']['committee']}"
            )
        return [arg for address in parties for arg in ("-P", str(address))] + ["-I", str(index)]
    if base_port is None:
        raise ConfigError("a committee on one host needs --base-port")
    return ["-M", str(job["params"]["committee"]), "-I", str(index), "-B", str(base_port)]


def free_base_port(count: int) -> int:
    """A base port with ``count`` consecutive ports free right now (best effort: another process may take one)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count >= 65535:
            continue
        try:
            for port in range(base, base + count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise OSError("no free port range for the committee")


def start_party(
    job_path: Path, index: int, base_port: int | None = None, *, tls_folder: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start committee member ``index`` of ``job_path`` as a process; it prints ``connected`` once all are.

    ``base_port``: every party on this host (a job without party addresses); ``tls_folder``: the party's
    certificates (:func:`fedledger.privacy.masked_tls.write_mpyc_tls`), for a job with certificate pins."""
    job_path = job_path.resolve()
    cmd = [sys.executable, "-m", "fedledger.privacy.masked_party", "--job", str(job_path), "--index", str(index)]
    cmd += ["--key", str(job_path.parent / f"party{index}.key")]
    cmd += ["--out", str(job_path.parent / f"result{index}.json")]
    if base_port is not None:
        cmd += ["--base-port", str(base_port)]
    if tls_folder is not None:
        cmd += ["--tls", str(tls_folder)]
    env = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        # the local committee shares one machine: threaded BLAS in every party would oversubscribe its cores
        env.setdefault(name, "1")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def collect_result(job_path: Path, index: int, proc: subprocess.Popen[bytes], wait: float) -> dict[str, Any]:
    """Wait for a committee member's process (killing it after ``wait`` s) and read its result file."""
    try:
        output, _ = proc.communicate(timeout=wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
    out = job_path.parent / f"result{index}.json"
    if out.exists():
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    return {"status": "failed", "log": output.decode(errors="replace")[-2000:]}


def launch_committee(job_path: Path, *, parties: list[int] | None = None, wait: float = 120.0) -> list[dict[str, Any]]:
    """Run the committee of ``job_path`` as local processes and return each party's result.

    ``parties`` limits which committee members are started (the others never answer);
    a party that was not started gets ``{"status": "not started"}``.
    """
    committee = int(json.loads(job_path.read_text())["params"]["committee"])
    base = free_base_port(committee)
    started = range(committee) if parties is None else parties
    procs = {index: start_party(job_path, index, base) for index in started}
    return [
        collect_result(job_path, index, procs[index], wait) if index in procs else {"status": "not started"}
        for index in range(committee)
    ]


if __name__ == "__main__":
    raise SystemExit(main())
