"""plugins/health/dockerd.py's request through perl: the probe script run for real in a local shell, against a
dockerd stand-in on a unix socket (the Engine API's answers, trimmed), perl the machine's own.

tests/unit/test_checks.py covers the curl and CLI paths (no perl on their PATH).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import SimpleNamespace

import pytest

from plugins.health import dockerd, probes
from plugins.health.remote import run_probes

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed on this machine")]

RUNNING_ID, STOPPED_ID = "c" * 64, "a" * 64
LISTING = [{"Id": RUNNING_ID, "Names": ["/web"], "State": "running", "Status": "Up 5 minutes (healthy)"},
           {"Id": STOPPED_ID, "Names": ["/vault"], "State": "exited", "Status": "Exited (143) 2 minutes ago"}]
INSPECT = {"Id": STOPPED_ID, "Name": "/vault", "HostConfig": {"RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}}}


class FakeDockerd(socketserver.ThreadingUnixStreamServer):
    """dockerd's Engine API on a unix socket: the list, the list of stopped containers, an inspect; or an error
    status, or silence. Every path asked is kept."""

    daemon_threads = True

    def __init__(self, path: str, listing: list[dict], status: int = 200, silent: bool = False):
        self.listing, self.status, self.silent = listing, status, silent
        self.asked: list[str] = []
        self.released = threading.Event()
        super().__init__(path, Handler)


class Handler(BaseHTTPRequestHandler):
    """Answers as dockerd does to an HTTP/1.0 client: one response, then the connection closes."""

    server: FakeDockerd

    def do_GET(self) -> None:
        """The answer for the path, as JSON without spaces (dockerd's way)."""
        self.server.asked.append(self.path)
        if self.server.silent:
            self.server.released.wait(10)
            return
        if self.path.endswith(f"/{STOPPED_ID}/json"):
            body = INSPECT
        elif "filters=" in self.path:
            body = [c for c in self.server.listing if c["State"] in dockerd.NOT_RUNNING]
        else:
            body = self.server.listing
        data = json.dumps(body if self.server.status == 200 else {"message": "boom"}, separators=(",", ":")).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        """A unix socket's peer has no address."""
        return "unix"

    def log_message(self, *args) -> None:
        """Quiet."""


@pytest.fixture
def host_bin(tmp_path):
    """A PATH with perl and the shell's tools, a `docker` CLI stub that records being run, no curl."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "perl", "timeout", "grep", "cut"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    cli = bin_dir / "docker"
    cli.write_text(f"#!/bin/sh\necho cli >> {tmp_path / 'cli'}\nprintf 'web\\trunning\\tUp 1 minute\\n'\n")
    cli.chmod(0o755)
    return bin_dir


@pytest.fixture
def socket_dir():
    """A short directory for the socket (a unix socket's path is limited to 108 bytes, tmp_path may be longer)."""
    path = tempfile.mkdtemp(prefix="dockerd-", dir="/tmp")  # nosec B108 # mkdtemp: a new 0700 dir
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dockerd_at(socket_dir):
    """Start a FakeDockerd on a socket in socket_dir; stopped at the end."""
    started = []

    def start(listing=LISTING, **kwargs) -> FakeDockerd:
        server = FakeDockerd(str(socket_dir / "docker.sock"), listing, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.released.set()
        server.shutdown()
        server.server_close()


def run(host_bin: Path, socket: Path, *checks: probes.Probe, timeout: int = 5):
    """The probes, their docker command pointed at this socket, run in one local shell; results by (check, subject)."""

    class Local:
        def run(self, script: str):
            done = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False,
                                  env={"PATH": str(host_bin)}, timeout=60)
            return SimpleNamespace(rc=done.returncode, stdout=done.stdout, stderr=done.stderr)

    command = dockerd.docker_ps_command(socket=str(socket), timeout=timeout)
    given = [dataclasses.replace(check, command=command) for check in checks]
    host = SimpleNamespace(hostname="app-demo", ip="198.18.0.250", containers=["web", "vault"])
    return {(r.check, r.subject): r for r in run_probes(host, Local(), given)}


def test_perl_asks_the_socket_and_the_cli_is_not_run(host_bin, socket_dir, dockerd_at):
    server = dockerd_at(listing=[LISTING[0]])
    results = run(host_bin, socket_dir / "docker.sock", probes.docker_probe(), probes.container_probe("web"))
    assert results[("docker_running", None)].message == "app-demo (198.18.0.250): dockerd answers (1 containers)"
    assert results[("container_running", "web")].outcome == "pass"
    assert server.asked == ["/containers/json?all=1"], "one request when every container runs"
    assert not (host_bin.parent / "cli").exists(), "the CLI ran although the socket answered"


def test_a_stopped_container_s_restart_policy_comes_through_perl_too(host_bin, socket_dir, dockerd_at):
    server = dockerd_at()
    results = run(host_bin, socket_dir / "docker.sock", probes.docker_probe(), probes.container_probe("vault"))
    vault = results[("container_running", "vault")]
    assert vault.outcome == "fail" and vault.final, vault
    assert "restart policy is no: nothing starts it again" in vault.message
    assert server.asked[-1] == f"/containers/{STOPPED_ID}/json"


@pytest.mark.parametrize("why", ["an HTTP error", "no socket"])
def test_the_cli_answers_when_the_socket_does_not(host_bin, socket_dir, dockerd_at, why):
    if why == "an HTTP error":
        dockerd_at(status=500)
    results = run(host_bin, socket_dir / "docker.sock", probes.docker_probe())
    assert results[("docker_running", None)].message == "app-demo (198.18.0.250): dockerd answers (1 containers)"
    assert (host_bin.parent / "cli").read_text() == "cli\n"


def test_a_silent_socket_is_cut_at_the_timeout_without_the_cli(host_bin, socket_dir, dockerd_at):
    dockerd_at(silent=True)
    results = run(host_bin, socket_dir / "docker.sock", probes.docker_probe(), timeout=1)
    assert results[("docker_running", None)].message == \
        f"app-demo (198.18.0.250): docker is not answering: no container list within {dockerd.PROBE_TIMEOUT} s"
    assert not (host_bin.parent / "cli").exists()
