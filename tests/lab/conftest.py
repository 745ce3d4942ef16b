"""Fixtures for the lab host tests: bridge up, base in place, every created host destroyed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab import net
from lab.hosts import LabHosts

# Each module owns its VMIDs (address 198.18.0.<VMID - 800>), so `make test` runs the modules on two workers side by
# side (--dist loadfile): test_hosts 901-920, test_pve_conformance 950-960, test_pve_backup_restore 955,
# test_registry_mirror 957, test_pve_ha_lab 970-972, test_proxmox_client 976-977, test_roles 771-772,
# test_app_demo_host 773, test_health_suite 880-884. A new module takes numbers no other one uses.
TEST_VMIDS = range(900, 1000)


def lab_skip_reason() -> str | None:
    """Why the lab tests cannot run here (None when they can)."""
    if os.geteuid() != 0:
        return "lab tests need root (LXC containers, bridge labbr0)"
    for tool in ("lxc-start", "lxc-copy", "debootstrap", "rsync", "ssh"):
        if shutil.which(tool) is None:
            return f"lab tests need {tool} (apt-get install lxc debootstrap rsync openssh-client)"
    return None


@pytest.fixture(scope="session")
def lab_hosts() -> Iterator[LabHosts]:
    """A LabHosts on the real bridge with the base built (bridge left up for other tests)."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    net.bridge_up()
    hosts = LabHosts()
    hosts.ensure_base()
    yield hosts


class HostFactory:
    """Creates test hosts (VMIDs 900-999) and remembers them for the finalizer."""

    def __init__(self, hosts: LabHosts, key_pub: str):
        """Bind to the driver and the test's SSH public key."""
        self.hosts = hosts
        self.key_pub = key_pub
        self.created: list[int] = []

    def create(self, vmid: int, start: bool = True, **kw) -> str:
        """Create (and start) host vmid at 198.18.0.<vmid-800>; return its address."""
        assert vmid in TEST_VMIDS, "tests use VMIDs 900-999 only"
        if self.hosts.exists(vmid):  # a crashed earlier run
            self.hosts.destroy(vmid)
        ip = kw.pop("ip", f"198.18.0.{vmid - 800}")
        self.created.append(vmid)
        self.hosts.create(vmid, kw.pop("hostname", f"t{vmid}"), ip, 24, "198.18.0.1",
                          kw.pop("mac", None), self.key_pub, **kw)
        if start:
            self.hosts.start(vmid)
        return ip

    def cleanup(self) -> None:
        """Destroy every host created through this factory."""
        for vmid in self.created:
            if self.hosts.exists(vmid):
                self.hosts.destroy(vmid)


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    """A fresh ed25519 key pair for the test (private key path)."""
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


@pytest.fixture
def make_host(lab_hosts: LabHosts, ssh_key: Path) -> Iterator[HostFactory]:
    """Factory of test hosts; destroys them all afterwards, even on failure."""
    factory = HostFactory(lab_hosts, ssh_key.with_suffix(".pub").read_text())
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture
def ssh(ssh_key: Path, tmp_path: Path):
    """Run a command on a host over SSH with the test key and a per-test known_hosts."""
    known = tmp_path / "known_hosts"
    # ConnectTimeout covers sshd's banner too: with two test workers and a host's dockerd starting, a loaded
    # machine can take seconds to answer, which is not what these tests check.

    def run(ip: str, command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        """ssh root@ip command (returns the completed process)."""
        cmd = ["ssh", "-i", str(ssh_key), "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={known}",
               "-o", "ConnectTimeout=15", "-o", "KexAlgorithms=curve25519-sha256",
               "-o", "LogLevel=ERROR", f"root@{ip}", command]
        res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"ssh {ip} {command!r} exited {res.returncode}: {res.stderr}{res.stdout}")
        return res

    run.known_hosts = known
    return run
