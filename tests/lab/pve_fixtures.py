"""Fixtures for the emulator's conformance tests: `python -m lab.pve serve` on the real LabHosts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from proxmoxer import ProxmoxAPI

from lab.config import PATHS
from lab.pve.firewall import nft_remove, table_for

ROOT = Path(__file__).resolve().parents[2]
NODE = "homelab"


@dataclass
class PveLab:
    """A running emulator: where it listens, its CA file and token secrets."""

    port: int
    ca_file: str
    tokens: dict[str, str]
    pid: int
    log: Path
    firewall_table: str

    def api(self, token_id: str = "root@pam!lab", secret: str | None = None, timeout: int = 30) -> ProxmoxAPI:
        """Return a proxmoxer client (token auth, verified against the lab CA)."""
        user, _, name = token_id.partition("!")
        return ProxmoxAPI("127.0.0.1", port=self.port, user=user, token_name=name,
                          token_value=secret or self.tokens[token_id], verify_ssl=self.ca_file,
                          timeout=timeout)


def emulator_table(state: Path) -> str:
    """The nftables table an emulator on this state dir loads by default: the lab's for the lab's state dir only."""
    return table_for(state, PATHS.pve_dir)


def _port() -> int:
    """A free port the kernel picks: never a fixed one, which two test workers could both find free."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_emulator(state: Path, *extra: str) -> Iterator[PveLab]:
    """`python -m lab.pve serve` (real LabHosts) on a state dir, with extra options; its firewall table is its own by
    default (the lab's stays the lab's emulator's); stopped by PID at the end, its table removed."""
    from lab.pve.auth import load_tokens

    log = state / "pve.log"
    port = _port()
    table = emulator_table(state)
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "lab.pve", "serve", "--node", NODE, "--port", str(port),
                                 "--state-dir", str(state), *extra], cwd=ROOT, stdout=fh,
                                stderr=fh,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    ca_file = state / "ca.pem"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"https://127.0.0.1:{port}/api2/json/version", verify=str(ca_file), timeout=2)
            break
        except (requests.ConnectionError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGTERM)
                pytest.fail(f"emulator did not come up on {port}: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    try:
        yield PveLab(port, str(ca_file), load_tokens(state), proc.pid, log, table)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        nft_remove(table)  # the emulator removes it when it stops; not when it was killed


@pytest.fixture(scope="session")
def pve_lab(lab_hosts, tmp_path_factory) -> Iterator[PveLab]:
    """Start the emulator in a subprocess against a temp state dir; stop it by PID."""
    with serve_emulator(tmp_path_factory.mktemp("pve-state")) as lab:
        yield lab


@pytest.fixture
def cleanup_cts(lab_hosts) -> Iterator[list[int]]:
    """Vmids a test creates through the API; destroyed through the driver afterwards."""
    created: list[int] = []
    yield created
    for vmid in created:
        if lab_hosts.exists(vmid):
            lab_hosts.destroy(vmid)
