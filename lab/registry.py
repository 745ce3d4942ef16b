"""The lab's OCI registry: Debian's `docker-registry` on the bridge, TLS from the lab CA.

Every lab host's dockerd takes it as its Docker Hub mirror (lab/hosts.py writes daemon.json and
/etc/docker/certs.d/<host:port>/ca.crt before dockerd's first start), so a role that pulls
`traefik:v3.7` gets the image `lab up` built and pushed as `library/traefik:v3.7`.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from lab import config, procs
from lab.pve import ca as lab_ca

PROGRAM = "/usr/bin/docker-registry"
HOST = config.BRIDGE_ADDRESS
PORT = 5000
CERT_FILE = "registry.pem"
KEY_FILE = "registry.key"
# Docker's own media types: dockerd 20.10 pulls these everywhere; OCI indexes it handles less well.
MANIFEST_TYPES = ("application/vnd.docker.distribution.manifest.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json")


@dataclass(frozen=True)
class Registry:
    """One registry instance: where it listens, where it keeps blobs, its files."""

    host: str
    port: int
    storage: Path
    state_dir: Path
    ca_dir: Path

    @classmethod
    def lab(cls, paths: config.LabPaths = config.PATHS) -> Registry:
        """The lab's registry on the bridge (storage under LAB_DIR/registry, CA of the emulator)."""
        return cls(HOST, PORT, paths.lab_dir / "registry", paths.lab_dir / "registry-conf", paths.pve_dir)

    @property
    def address(self) -> str:
        """host:port, as Docker names the registry (certs.d dir, image references)."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """Base URL (https)."""
        return f"https://{self.address}"

    @property
    def ca_file(self) -> Path:
        """The CA that signs the registry's certificate."""
        return self.ca_dir / lab_ca.CA_FILE

    @property
    def config_file(self) -> Path:
        """The registry's config.yml."""
        return self.state_dir / "config.yml"

    def service(self) -> procs.Service:
        """The process that serves it (tracked by PID like the lab's other processes)."""
        return procs.Service("registry", "docker-registry", ("serve", str(self.config_file)), program=PROGRAM)

    def config_text(self) -> str:
        """config.yml: filesystem storage, TLS, deletes allowed (a rebuilt image replaces its tag)."""
        return json.dumps({
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}, "fields": {"service": "registry"}},
            "storage": {"filesystem": {"rootdirectory": str(self.storage)},
                        "delete": {"enabled": True}, "cache": {"blobdescriptor": "inmemory"}},
            "http": {"addr": self.address,
                     "tls": {"certificate": str(self.state_dir / CERT_FILE),
                             "key": str(self.state_dir / KEY_FILE)},
                     "headers": {"X-Content-Type-Options": ["nosniff"]}},
        }, indent=2) + "\n"  # JSON is YAML: no YAML writer needed

    def prepare(self) -> None:
        """Write the certificate (SAN = the registry's IP) and config.yml; create the storage dir."""
        if not Path(PROGRAM).exists():
            raise RuntimeError(f"{PROGRAM} is missing: apt-get install docker-registry (scripts/install.sh)")
        self.storage.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        lab_ca.ensure_server_cert(self.ca_dir, self.state_dir / CERT_FILE, self.state_dir / KEY_FILE,
                                  ips=(self.host,), dns=())
        if not self.config_file.exists() or self.config_file.read_text() != self.config_text():
            self.config_file.write_text(self.config_text())

    def start(self, run_dir: Path, log_dir: Path, timeout: float = 15.0) -> int:
        """Start it unless it runs (idempotent) and wait until /v2/ answers; return its PID."""
        self.prepare()
        pid = procs.start(run_dir, log_dir, self.service())
        self.wait_ready(timeout, log_dir / "registry.log")
        return pid

    def stop(self, run_dir: Path) -> bool:
        """Stop it by its recorded PID; True if one was stopped."""
        return procs.stop(run_dir, self.service())

    def collect_garbage(self, run_dir: Path, log_dir: Path) -> str:
        """Drop blobs no tag references any more (a rebuilt image's old layers); the registry is
        stopped meanwhile, as docker-registry requires; return the tool's summary line."""
        self.stop(run_dir)
        try:
            res = subprocess.run([PROGRAM, "garbage-collect", "--delete-untagged", str(self.config_file)],
                                 check=False, capture_output=True, text=True, timeout=600)
        finally:
            self.start(run_dir, log_dir)
        if res.returncode != 0:
            raise RuntimeError(f"{PROGRAM} garbage-collect exited {res.returncode}: {res.stderr.strip()[-500:]}")
        lines = [line for line in (res.stdout + res.stderr).splitlines() if "blobs marked" in line]
        return lines[-1].strip() if lines else ""

    def pid(self, run_dir: Path) -> int | None:
        """Its PID when it runs."""
        return procs.running_pid(run_dir, self.service())

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file))

    def get(self, path: str, accept: str = "application/json", method: str = "GET",
            timeout: float = 5.0) -> tuple[int, dict, bytes]:
        """One request to the registry API (TLS verified against the lab CA): (status, headers, body)."""
        req = urllib.request.Request(self.url + path, method=method, headers={"Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=self._context()) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    def wait_ready(self, timeout: float, log: Path | None = None) -> None:
        """Wait until GET /v2/ answers 200 over verified TLS."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                if self.get("/v2/", timeout=2)[0] == 200:
                    return
            except (OSError, ssl.SSLError) as exc:
                last = str(exc)
            time.sleep(0.05)
        tail = log.read_text(errors="replace").splitlines()[-5:] if log and log.exists() else []
        raise RuntimeError(f"lab registry {self.url}/v2/ not answering within {timeout:.0f} s ({last}); "
                           f"log {log}: {' | '.join(tail)}")

    def manifest(self, repository: str, tag: str) -> dict | None:
        """The manifest of repository:tag (Docker v2 or OCI), or None when the tag is absent."""
        status, _, body = self.get(f"/v2/{repository}/manifests/{tag}", accept=MANIFEST_TYPES)
        if status == 404:
            return None
        if status != 200:
            raise RuntimeError(f"lab registry {self.url}: manifest {repository}:{tag} answered {status}")
        return json.loads(body)

    def catalog(self) -> list[str]:
        """Every repository it holds."""
        status, _, body = self.get("/v2/_catalog?n=1000")
        if status != 200:
            raise RuntimeError(f"lab registry {self.url}: /v2/_catalog answered {status}")
        return json.loads(body).get("repositories") or []

    def listening(self) -> bool:
        """True when something accepts TCP on its address."""
        with socket.socket() as sock:
            sock.settimeout(0.3)
            return sock.connect_ex((self.host, self.port)) == 0


def mirror_files(registry: Registry) -> dict[str, str]:
    """Files a lab host needs to trust the registry as its Docker Hub mirror (path in the host → text)."""
    if not registry.ca_file.exists():
        lab_ca.ensure_ca(registry.ca_dir)  # a host made before `lab up` ever ran still trusts the same CA
    return {f"etc/docker/certs.d/{registry.address}/ca.crt": registry.ca_file.read_text()}
