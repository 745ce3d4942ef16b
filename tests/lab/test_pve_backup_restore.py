"""PVE's backups on the lab: vzdump of a real running CT, restore over it with force=1, a damaged archive refused
before the CT is touched, prune. Driven through proxmoxer over HTTPS, as the suite's backup plugin drives PVE."""

from __future__ import annotations

import os
import subprocess

import pytest

if os.geteuid() != 0:
    pytest.skip("backups on the lab need root (real LXC containers behind the emulator)", allow_module_level=True)

from proxmoxer import ResourceException
from proxmoxer.tools import Tasks

pytest_plugins = ["pve_fixtures"]
pytestmark = pytest.mark.lab

NODE = "homelab"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
CT = 955
NET0 = f"name=eth0,bridge=labbr0,ip=198.18.0.{CT - 800}/24,gw=198.18.0.1"
MARKER = "/root/backup-marker"


def wait(prox, upid: str, timeout: float = 300) -> dict:
    """Wait with proxmoxer's helper; a timeout fails loudly."""
    status = Tasks.blocking_status(prox, upid, timeout=timeout, polling_interval=0.2)
    assert status is not None, f"task {upid} still running after {timeout}s"
    return status


def log(prox, upid: str) -> list[str]:
    """The task's log lines."""
    return [line["t"] for line in prox.nodes(NODE).tasks(upid).log.get(limit=5000)]


def in_ct(lab_hosts, command: str) -> str:
    """Run a shell command inside the running CT; its stdout."""
    done = subprocess.run(["lxc-attach", "-P", str(lab_hosts.lxc_path), "-n", lab_hosts.name(CT), "--",
                           "sh", "-c", command], capture_output=True, text=True, timeout=60, check=True)
    return done.stdout


@pytest.fixture(scope="module")
def prox(pve_lab):
    """The full-privilege client."""
    return pve_lab.api(timeout=60)


@pytest.fixture(scope="module")
def ct(prox, lab_hosts):
    """A running CT with a marker file; destroyed afterwards with every backup of it."""
    if lab_hosts.exists(CT):
        lab_hosts.destroy(CT)
    status = wait(prox, prox.nodes(NODE).lxc.post(vmid=CT, ostemplate=TEMPLATE, hostname="t955", net0=NET0,
                                                  memory=256, start=1, **{"ssh-public-keys": ""}))
    assert status["exitstatus"] == "OK"
    in_ct(lab_hosts, f"echo backed-up > {MARKER}; sync")
    yield CT
    for entry in prox.nodes(NODE).storage("backup").content.get(content="backup", vmid=CT):
        wait(prox, prox.nodes(NODE).storage("backup").content(entry["volid"]).delete())
    if lab_hosts.exists(CT):
        lab_hosts.destroy(CT)


def _restore(prox, volid: str) -> dict:
    return wait(prox, prox.nodes(NODE).lxc.post(vmid=CT, ostemplate=volid, restore=1, force=1, start=1))


def test_backup_then_restore_brings_the_file_back(prox, ct, lab_hosts):
    """vzdump (snapshot mode, CT running), change the file, restore with force=1: the file is back, the CT runs."""
    upid = prox.nodes(NODE).vzdump.post(vmid=ct, storage="backup", mode="snapshot", compress="zstd",
                                        **{"notes-template": "{{guestname}}"})
    status = wait(prox, upid)
    lines = log(prox, upid)
    assert status["exitstatus"] == "OK", lines[-20:]
    assert "INFO: Backup job finished successfully" in lines and "INFO: create storage snapshot 'vzdump'" in lines
    [entry] = prox.nodes(NODE).storage("backup").content.get(content="backup", vmid=ct)
    assert entry["format"] == "tar.zst" and entry["notes"] == "t955" and entry["size"] > 1024 * 1024
    assert in_ct(lab_hosts, f"cat {MARKER}") == "backed-up\n"  # the CT kept running through its backup

    in_ct(lab_hosts, f"echo changed > {MARKER}; touch /root/after-backup")
    with pytest.raises(ResourceException, match="can't overwrite running container"):
        prox.nodes(NODE).lxc.post(vmid=ct, ostemplate=entry["volid"], restore=1, force=1)
    wait(prox, prox.nodes(NODE).lxc(ct).status.stop.post())
    status = _restore(prox, entry["volid"])
    assert status["exitstatus"] == "OK", log(prox, status["upid"])[-20:]
    assert prox.nodes(NODE).lxc(ct).status.current.get()["status"] == "running"
    assert in_ct(lab_hosts, f"cat {MARKER}") == "backed-up\n"
    assert "after-backup" not in in_ct(lab_hosts, "ls -a /root").split()  # what came after the backup is gone
    assert prox.nodes(NODE).lxc(ct).config.get()["hostname"] == "t955"


def test_a_damaged_archive_is_refused_before_the_ct_is_touched(prox, ct, lab_hosts):
    """An archive cut in half: the restore task fails in one line, the old CT's files and config as they were."""
    [good] = prox.nodes(NODE).storage("backup").content.get(content="backup", vmid=ct)
    path = prox.nodes(NODE).storage("backup").content(good["volid"]).get()["path"]
    damaged = path.replace(good["volid"].rsplit("-", 1)[1], "00_00_00.tar.zst")
    with open(path, "rb") as src, open(damaged, "wb") as dst:
        dst.write(src.read(good["size"] // 2))
    volid = good["volid"].rsplit("/", 1)[0] + "/" + os.path.basename(damaged)
    in_ct(lab_hosts, f"echo current > {MARKER}")
    wait(prox, prox.nodes(NODE).lxc(ct).status.stop.post())
    before = prox.nodes(NODE).lxc(ct).config.get()
    status = _restore(prox, volid)
    assert status["exitstatus"].startswith(f"unable to restore CT {ct} - command 'tar xpf ")
    assert "\n" not in status["exitstatus"]
    assert prox.nodes(NODE).lxc(ct).config.get() == before
    assert (lab_hosts.delta_dir(ct) / MARKER.lstrip("/")).read_text() == "current\n"
    wait(prox, prox.nodes(NODE).lxc(ct).status.start.post())


def test_prune_keeps_the_newest_and_removes_the_rest(prox, ct):
    """keep-last=1: the dry run marks the older archive `remove`, the prune task removes it alone."""
    storage = prox.nodes(NODE).storage("backup")
    volids = sorted((b["ctime"], b["volid"]) for b in storage.content.get(content="backup", vmid=ct))
    assert len(volids) == 2
    marks = {m["volid"]: m["mark"] for m in storage.prunebackups.get(vmid=ct, **{"prune-backups": "keep-last=1"})}
    assert marks == {volids[0][1]: "remove", volids[1][1]: "keep"}
    status = wait(prox, storage.prunebackups.delete(vmid=ct, **{"prune-backups": "keep-last=1"}))
    assert status["exitstatus"] == "OK"
    assert [b["volid"] for b in storage.content.get(content="backup", vmid=ct)] == [volids[1][1]]
