"""The emulator driven by proxmoxer over HTTPS (lab CA, token auth) on the REAL LabHosts driver."""

from __future__ import annotations

import os

import pytest

try:
    from lab.hosts import LabHosts  # noqa: F401 - the real driver must be importable
except ImportError as exc:  # pragma: no cover - only while lab/hosts.py is being written
    pytest.skip(f"lab/hosts.py not importable yet ({exc})", allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("PVE conformance needs root (real LXC containers behind the emulator)", allow_module_level=True)

from proxmoxer import ResourceException
from proxmoxer.tools import Tasks

from lab.hosts import default_mac

pytest_plugins = ["pve_fixtures"]
pytestmark = pytest.mark.lab

NODE = "homelab"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
CT = 950
MISSING = "Configuration file 'nodes/homelab/lxc/999.conf' does not exist"


def net0(vmid: int) -> str:
    """A lab net0 for a test vmid (198.18.0.<vmid-800>)."""
    return f"name=eth0,bridge=labbr0,ip=198.18.0.{vmid - 800}/24,gw=198.18.0.1"


def wait(prox, upid: str, timeout: float = 180) -> dict:
    """Wait with proxmoxer's own helper; None (timeout) fails loudly."""
    status = Tasks.blocking_status(prox, upid, timeout=timeout, polling_interval=0.2)
    assert status is not None, f"task {upid} still running after {timeout}s"
    return status


def raises(call, *args, **kwargs) -> ResourceException:
    """Return the ResourceException a proxmoxer call raises."""
    with pytest.raises(ResourceException) as exc:
        call(*args, **kwargs)
    return exc.value


@pytest.fixture(scope="module")
def prox(pve_lab):
    """The full-privilege client."""
    return pve_lab.api()


@pytest.fixture(scope="module")
def ct(pve_lab, prox, lab_hosts):
    """CT 950 created through the API, running; destroyed afterwards."""
    if lab_hosts.exists(CT):
        lab_hosts.destroy(CT)
    upid = prox.nodes(NODE).lxc.post(vmid=CT, ostemplate=TEMPLATE, hostname="t950", net0=net0(CT), memory=256,
                                     cores=1, start=1, **{"ssh-public-keys": ""})
    status = wait(prox, upid)
    assert status["exitstatus"] == "OK", prox.nodes(NODE).tasks(upid).log.get()
    yield CT
    if lab_hosts.exists(CT):
        lab_hosts.destroy(CT)


def test_read_endpoints(prox, ct):
    assert prox.version.get()["version"].startswith("9.")
    assert prox.nodes.get()[0]["node"] == NODE
    assert {"memory", "rootfs", "loadavg", "pveversion"} <= set(prox.nodes(NODE).status.get())
    listed = {c["vmid"]: c for c in prox.nodes(NODE).lxc.get()}
    assert listed[ct]["status"] == "running" and listed[ct]["name"] == "t950" and listed[ct]["type"] == "lxc"
    assert prox.nodes(NODE).lxc(ct).status.current.get()["status"] == "running"
    assert f"hwaddr={default_mac(ct).upper()}" in prox.nodes(NODE).lxc(ct).config.get()["net0"]
    res = prox.cluster.resources.get(type="vm")
    assert {"id": f"lxc/{ct}", "node": NODE, "status": "running"}.items() <= {
        r["vmid"]: r for r in res}[ct].items()
    assert int(prox.cluster.nextid.get()) >= 100
    err = raises(prox.cluster.nextid.get, vmid=ct)
    assert err.status_code == 400 and err.errors == {"vmid": f"VM {ct} already exists"}


def test_auth_and_permission_errors(pve_lab, ct):
    err = raises(pve_lab.api(secret="not-the-secret").version.get)
    assert err.status_code == 401 and err.content == "authentication failure"
    ro = pve_lab.api("auditor@pve!readonly")
    assert ro.nodes(NODE).lxc(ct).status.current.get()["vmid"] == ct
    err = raises(ro.nodes(NODE).lxc(ct).snapshot.post, snapname="nope")
    assert err.status_code == 403 and err.content == f"Permission check failed (/vms/{ct}, VM.Snapshot)"
    err = raises(ro.nodes(NODE).lxc(ct).status.stop.post)
    assert err.content == f"Permission check failed (/vms/{ct}, VM.PowerMgmt)"


def test_request_errors(prox, ct):
    err = raises(prox.nodes("pve").foo.get)
    assert err.status_code == 501 and err.content == "Method 'GET /nodes/pve/foo' not implemented"
    err = raises(prox.nodes("pve").lxc.get)
    assert err.status_code == 500 and err.content == (
        "hostname lookup 'pve' failed - failed to get address info for: pve: Name or service not known")
    for call in (prox.nodes(NODE).lxc(999).status.current.get, prox.nodes(NODE).lxc(999).config.get,
                 prox.nodes(NODE).lxc(999).snapshot.get):
        err = raises(call)
        assert (err.status_code, err.content) == (500, MISSING)
    err = raises(prox.nodes(NODE).lxc(ct).snapshot("xx").rollback.post, start=True)
    assert err.status_code == 400 and err.errors == {"start": "type check ('boolean') failed - got 'True'"}
    err = raises(prox.nodes(NODE).lxc.post, vmid=951, ostemplate=TEMPLATE,
                 net0="name=eth0,bridge=labbr0,ip=203.0.113.9/24,gw=203.0.113.1")
    assert err.status_code == 400 and "outside the lab network" in err.errors["net0"]
    err = raises(prox.nodes(NODE).lxc.post, vmid=ct, ostemplate=TEMPLATE, net0=net0(ct))
    assert (err.status_code, err.content) == (500, f"CT {ct} already exists on node '{NODE}'")
    snap = prox.nodes(NODE).lxc(ct).snapshot
    assert raises(snap.post, snapname="1x").errors == {
        "snapname": "invalid format - invalid configuration ID '1x'\n"}
    assert raises(snap.post, snapname="a" * 41).errors == {"snapname": "value may only be 40 characters long"}
    for name in ("current", "vzdump"):
        assert raises(snap.post, snapname=name).content == f"unable to use snapshot name '{name}' (reserved name)"


def test_task_errors(prox, lab_hosts):
    status = wait(prox, prox.nodes(NODE).lxc.post(vmid=952, ostemplate="local:vztmpl/other.tar.zst",
                                                   net0=net0(952)))
    assert status["exitstatus"] == "volume 'local:vztmpl/other.tar.zst' does not exist"
    assert not lab_hosts.exists(952)
    log = prox.nodes(NODE).tasks(status["upid"]).log.get()
    assert log[-1]["t"] == "TASK ERROR: volume 'local:vztmpl/other.tar.zst' does not exist"
    status = wait(prox, prox.nodes(NODE).lxc(999).status.start.post())
    assert status["exitstatus"] == MISSING


def test_power_config_snapshots(prox, ct):
    lxc = prox.nodes(NODE).lxc(ct)
    assert raises(lxc.status.start.post).content == f"CT {ct} already running"
    assert raises(prox.nodes(NODE).lxc(ct).delete).content == f"unable to destroy CT {ct} - container is running"
    assert wait(prox, lxc.status.shutdown.post(timeout=10))["exitstatus"] == "OK"
    assert raises(lxc.status.stop.post).content == f"CT {ct} not running"
    conf = lxc.config.get()
    lxc.config.put(memory=384, tags="conformance", digest=conf["digest"])
    err = raises(lxc.config.put, memory=512, digest=conf["digest"])
    assert err.content == "detected modified configuration - file changed by other user? Try again."
    assert wait(prox, lxc.snapshot.post(snapname="c1", description="one"))["exitstatus"] == "OK"
    assert wait(prox, lxc.snapshot.post(snapname="c1"))["exitstatus"] == "snapshot name 'c1' already used"
    lxc.config.put(memory=512)
    assert wait(prox, lxc.snapshot.post(snapname="c2"))["exitstatus"] == "OK"
    snaps = {s["name"]: s for s in lxc.snapshot.get()}
    assert snaps["c2"]["parent"] == "c1" and snaps["current"]["parent"] == "c2"
    assert snaps["current"]["description"] == "You are here!" and snaps["current"]["running"] == 0
    assert wait(prox, lxc.snapshot("zz").delete())["exitstatus"] == "snapshot 'zz' does not exist"
    assert wait(prox, lxc.snapshot("c1").rollback.post())["exitstatus"] == "OK"
    conf = lxc.config.get()
    assert conf["memory"] == 384 and conf["parent"] == "c1"
    assert wait(prox, lxc.snapshot("c2").delete())["exitstatus"] == "OK"
    assert wait(prox, lxc.status.start.post())["exitstatus"] == "OK"
    assert raises(lxc.delete).status_code == 500
    assert wait(prox, lxc.delete(force=1))["exitstatus"] == "OK"
    assert ct not in {c["vmid"] for c in prox.nodes(NODE).lxc.get()}


def test_rollback_restores_a_running_container(prox, lab_hosts, ssh_key, ssh, cleanup_cts):
    """Create, start, snapshot running, change a file over SSH, rollback start=1: file back, SSH up."""
    vmid, ip = 960, "198.18.0.160"
    if lab_hosts.exists(vmid):
        lab_hosts.destroy(vmid)
    cleanup_cts.append(vmid)
    lxc = prox.nodes(NODE).lxc(vmid)
    upid = prox.nodes(NODE).lxc.post(vmid=vmid, ostemplate=TEMPLATE, hostname="t960", net0=net0(vmid),
                                     **{"ssh-public-keys": ssh_key.with_suffix(".pub").read_text()})
    assert wait(prox, upid)["exitstatus"] == "OK"
    assert wait(prox, lxc.status.start.post())["exitstatus"] == "OK"
    lab_hosts.wait_ssh(ip, timeout=60)
    ssh(ip, "echo before > /root/marker")
    assert wait(prox, lxc.snapshot.post(snapname="pre_change"))["exitstatus"] == "OK"
    lab_hosts.wait_ssh(ip, timeout=60)
    assert lxc.status.current.get()["status"] == "running"
    ssh(ip, "echo after > /root/marker && touch /root/new-file")

    upid = lxc.snapshot("pre_change").rollback.post(start=1)
    status = Tasks.blocking_status(prox, upid, timeout=300, polling_interval=0.5)
    assert status is not None and status["exitstatus"] == "OK", prox.nodes(NODE).tasks(upid).log.get()

    lab_hosts.wait_ssh(ip, timeout=60)
    assert ssh(ip, "cat /root/marker").stdout.strip() == "before"
    assert ssh(ip, "test -e /root/new-file", check=False).returncode == 1
    assert lxc.status.current.get()["status"] == "running"
    assert wait(prox, lxc.delete(force=1))["exitstatus"] == "OK"
