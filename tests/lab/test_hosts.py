"""Real LXC lab hosts: create, SSH with the given key, own host keys, fixed MAC, whole snapshots."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from lab import docker_layers
from lab.hosts import SNAP_META, HostExists, HostNotFound, SnapshotNotFound, default_mac

pytestmark = pytest.mark.lab


def host_key(ip: str) -> str:
    """The ed25519 host key a host presents."""
    out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-T", "5", ip],
                         check=False, capture_output=True, text=True, timeout=15).stdout
    return out.split()[-1]


def test_create_ssh_mac_hostkeys(lab_hosts, make_host, ssh):
    """Two clones answer SSH with the given key, with their own host keys and fixed MACs."""
    t0 = time.monotonic()
    ip1 = make_host.create(901)
    lab_hosts.wait_ssh(901, timeout=30)
    assert time.monotonic() - t0 < 30
    ip2 = make_host.create(902, mac="02:00:c6:12:00:66")
    lab_hosts.wait_ssh(ip2, timeout=30)

    assert ssh(ip1, "hostname").stdout.strip() == "t901"
    assert ssh(ip1, "cat /sys/class/net/eth0/address").stdout.strip() == default_mac(901)
    assert ssh(ip2, "cat /sys/class/net/eth0/address").stdout.strip() == "02:00:c6:12:00:66"
    assert ssh(ip1, "ip -4 -o addr show eth0").stdout.split()[3] == f"{ip1}/24"
    assert host_key(ip1) != host_key(ip2)
    assert ssh(ip1, "cat /etc/machine-id").stdout != ssh(ip2, "cat /etc/machine-id").stdout
    # key-only root login
    res = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
                          "-o", "StrictHostKeyChecking=accept-new",
                          "-o", f"UserKnownHostsFile={ssh.known_hosts}", f"root@{ip1}", "true"],
                         check=False, capture_output=True, text=True, timeout=15)
    assert res.returncode != 0

    infos = {h.vmid: h for h in lab_hosts.list()}
    assert infos[901].state == "running" and infos[901].ip == ip1
    assert infos[902].mac == "02:00:c6:12:00:66"
    with pytest.raises(HostExists):
        lab_hosts.create(901, "dup", ip1, 24, "198.18.0.1", None, "")

    # same MAC after a restart, SSH quick again (fixed MAC: no stale ARP)
    lab_hosts.stop(901)
    assert lab_hosts.status(901) == "stopped"
    lab_hosts.start(901)
    assert lab_hosts.wait_ssh(901, timeout=20) < 10
    assert ssh(ip1, "cat /sys/class/net/eth0/address").stdout.strip() == default_mac(901)


def assert_image_layers_linked(lab_hosts, vmid: int, name: str) -> None:
    """The snapshot lists the image layers and the host's layer store shares their files with the live docker dir
    (linked, not copied)."""
    live = lab_hosts.paths.docker_dir(vmid)
    layers = docker_layers.image_layer_dirs(live)
    assert layers, f"no image layer found in {live}"
    meta = json.loads((lab_hosts.paths.snapshot_dir(vmid, name) / SNAP_META).read_text())
    assert meta["layers"] == layers, f"snapshot {name} lists {meta['layers']}, the host has {layers}"
    snap = lab_hosts.layer_store(vmid) / "overlay2"
    files = [f for layer in layers for f in (live / "overlay2" / layer).rglob("*") if f.is_file()]
    assert files
    copied = [f for f in files if f.stat().st_ino != (snap / f.relative_to(live / "overlay2")).stat().st_ino]
    assert not copied, f"{len(copied)} image layer file(s) copied instead of linked, e.g. {copied[0]}"


def test_snapshot_rollback_is_whole(lab_hosts, make_host, ssh):
    """Rollback restores deleted and overwritten files, a removed package, Docker state."""
    ip = make_host.create(910)
    lab_hosts.wait_ssh(910, timeout=30)
    ssh(ip, "timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'")
    info = ssh(ip, "docker info --format '{{.Driver}}'").stdout.strip()
    assert info == "overlay2"
    bip = ssh(ip, "ip -4 -o addr show docker0").stdout.split()[3]
    assert bip.startswith("198.18.")
    ssh(ip, "echo precious > /root/keep.txt && echo original > /etc/motd")
    ssh(ip, "docker import /opt/lab/images/labbase.tar labbase:latest >/dev/null", timeout=120)
    ssh(ip, "docker volume create data >/dev/null && docker create --name app -v data:/data "
            "labbase:latest python3 -c 'print(1)' >/dev/null")
    ssh(ip, "docker run --rm -v data:/data labbase:latest sh -c 'echo v1 > /data/f'")

    booted = ssh(ip, "ps -o lstart= -p 1").stdout
    lab_hosts.snapshot(910, "before")
    assert lab_hosts.snapshots(910) == ["before"]
    assert lab_hosts.status(910) == "running"
    assert ssh(ip, "ps -o lstart= -p 1").stdout == booted, "a snapshot of a running host restarted it"
    assert_image_layers_linked(lab_hosts, 910, "before")

    ssh(ip, "rm /root/keep.txt && echo changed > /etc/motd && dpkg -r rsync >/dev/null")
    ssh(ip, "timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'")
    ssh(ip, "docker rm app && docker run --rm -v data:/data labbase:latest sh -c 'echo v2 > /data/f'"
            " && docker volume create junk && docker rmi labbase:latest")
    assert ssh(ip, "command -v rsync", check=False).returncode != 0

    lab_hosts.rollback(910, "before", start=True)
    assert lab_hosts.status(910) == "running"
    lab_hosts.wait_ssh(910, timeout=30)
    assert ssh(ip, "cat /root/keep.txt").stdout == "precious\n"
    assert ssh(ip, "cat /etc/motd").stdout == "original\n"
    assert ssh(ip, "rsync --version | head -1").stdout.startswith("rsync")
    ssh(ip, "timeout 60 sh -c 'until docker info >/dev/null 2>&1; do sleep 0.2; done'")
    assert ssh(ip, "docker ps -a --format '{{.Names}}'").stdout.split() == ["app"]
    assert "labbase" in ssh(ip, "docker images --format '{{.Repository}}'").stdout
    assert "junk" not in ssh(ip, "docker volume ls -q").stdout.split()
    out = ssh(ip, "docker run --rm -v data:/data labbase:latest cat /data/f").stdout
    assert out == "v1\n"

    # the local apt repo: apt reinstalls a removed package offline
    ssh(ip, "dpkg -r rsync >/dev/null && apt-get install -y -q rsync >/dev/null", timeout=120)
    assert ssh(ip, "command -v rsync").returncode == 0

    # rollback of a stopped host without start leaves it stopped
    lab_hosts.snapshot(910, "second")
    lab_hosts.rollback(910, "before", start=False)
    assert lab_hosts.status(910) == "stopped"
    assert lab_hosts.snapshots(910) == ["before", "second"]
    lab_hosts.delete_snapshot(910, "second")
    assert lab_hosts.snapshots(910) == ["before"]
    with pytest.raises(SnapshotNotFound):
        lab_hosts.rollback(910, "second", start=False)


def test_destroy_leaves_nothing(lab_hosts, make_host):
    """Destroy removes the container, its docker dir, its snapshots, its veth."""
    make_host.create(920)
    lab_hosts.wait_ssh(920, timeout=30)
    lab_hosts.snapshot(920, "s1")
    assert lab_hosts.find_leftovers([920])
    lab_hosts.destroy(920)
    assert not lab_hosts.exists(920)
    assert lab_hosts.find_leftovers([920]) == []
    with pytest.raises(HostNotFound):
        lab_hosts.status(920)
