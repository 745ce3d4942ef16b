"""Emulator dispatch: every endpoint and error text the emulator serves, on the in-memory driver."""

from __future__ import annotations

import json

import pytest
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, READONLY_TOKEN_ID

pytestmark = pytest.mark.unit
BASE = "/api2/json"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.50/24,gw=198.18.0.1,hwaddr=BC:24:11:00:03:84"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


class Client(EmulatorCalls):
    """Calls the emulator in-process with a token's Authorization header."""

    def task(self, method, path, **params):
        upid = self.ok(method, path, **params)
        self.app.tasks.wait(upid, 10)
        return self.ok("GET", f"/nodes/homelab/tasks/{upid}/status")


@pytest.fixture
def app(tmp_path):
    return Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True)


@pytest.fixture
def root(app):
    return Client(app, FULL_TOKEN_ID)


@pytest.fixture
def auditor(app):
    return Client(app, READONLY_TOKEN_ID)


@pytest.fixture
def ct(root):
    st = root.task("POST", "/nodes/homelab/lxc", vmid=900, ostemplate=TEMPLATE, hostname="t900", net0=NET,
                   memory=256, cores=1, **{"ssh-public-keys": "ssh-ed25519%20AAAA%20me"})
    assert st["exitstatus"] == "OK"
    return 900


def test_version_nodes_status(root):
    assert root.ok("GET", "/version")["version"].startswith("9.")
    nodes = root.ok("GET", "/nodes")
    assert nodes[0]["node"] == "homelab" and nodes[0]["status"] == "online" and nodes[0]["id"] == "node/homelab"
    st = root.ok("GET", "/nodes/homelab/status")
    assert {"uptime", "cpu", "memory", "rootfs", "pveversion", "kversion", "loadavg"} <= set(st)


def test_auth_failures(app, root):
    assert app.handle("GET", BASE + "/version", {}, None).reason == "No ticket"
    bad = app.handle("GET", BASE + "/version", {}, f"PVEAPIToken={FULL_TOKEN_ID}=wrong")
    assert (bad.status, bad.reason, bad.body) == (401, "authentication failure", None)
    unknown = app.handle("GET", BASE + "/version", {}, "PVEAPIToken=x@pam!y=z")
    assert unknown.status == 401


def test_not_implemented_and_unknown_node(root):
    r = root("GET", "/nodes/pve/foo")
    assert (r.status, r.reason) == (501, "Method 'GET /nodes/pve/foo' not implemented")
    r = root("GET", "/nodes/pve/lxc")
    assert r.status == 500
    assert r.reason == ("hostname lookup 'pve' failed - failed to get address info for: pve: "
                        "Name or service not known")
    assert r.body == {"data": None, "message": r.reason + "\n"}


def test_missing_ct(root):
    for path in ("/status/current", "/config", "/snapshot"):
        r = root("GET", f"/nodes/homelab/lxc/999{path}")
        assert (r.status, r.reason) == (500, "Configuration file 'nodes/homelab/lxc/999.conf' does not exist")


def test_create_list_status_config(root, ct, app):
    assert app.driver.calls[0] == ("create", 900, "t900", "198.18.0.50", 24, "198.18.0.1", "BC:24:11:00:03:84",
                                   "ssh-ed25519 AAAA me", 256, 1)
    [entry] = root.ok("GET", "/nodes/homelab/lxc")
    assert entry["vmid"] == 900 and entry["name"] == "t900" and entry["status"] == "stopped"
    assert entry["maxmem"] == 256 * 1024 * 1024 and entry["type"] == "lxc"
    assert root.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "stopped"
    conf = root.ok("GET", "/nodes/homelab/lxc/900/config")
    assert "hwaddr=BC:24:11:00:03:84" in conf["net0"] and "ip=198.18.0.50/24" in conf["net0"]
    assert conf["hostname"] == "t900" and conf["memory"] == 256 and "lock" not in conf and conf["digest"]
    r = root("POST", "/nodes/homelab/lxc", vmid=900, ostemplate=TEMPLATE, net0=NET)
    assert (r.status, r.reason) == (500, "CT 900 already exists on node 'homelab'")


def test_create_param_errors(root):
    r = root("POST", "/nodes/homelab/lxc", vmid=901, ostemplate=TEMPLATE, net0=NET, start="True")
    assert r.status == 400 and r.reason == "Parameter verification failed."
    assert r.body["errors"] == {"start": "type check ('boolean') failed - got 'True'"}
    r = root("POST", "/nodes/homelab/lxc", vmid=902, ostemplate=TEMPLATE,
             net0="name=eth0,bridge=labbr0,ip=203.0.113.50/24,gw=203.0.113.1")
    assert r.status == 400 and "outside the lab network" in r.body["errors"]["net0"]
    r = root("POST", "/nodes/homelab/lxc", vmid=99, ostemplate=TEMPLATE, net0=NET, bogus=1)
    assert r.body["errors"] == {
        "vmid": "invalid format - value does not look like a valid VM ID\n",
        "bogus": "property is not defined in schema and the schema does not allow additional properties"}
    r = root("POST", "/nodes/homelab/lxc", vmid=903)
    assert r.body["errors"] == {"ostemplate": "property is missing and it is not optional"}


def test_create_bad_template_is_a_task_error(root, app):
    st = root.task("POST", "/nodes/homelab/lxc", vmid=904, ostemplate="local:vztmpl/nope.tar.zst", net0=NET)
    assert st["status"] == "stopped" and st["exitstatus"] == "volume 'local:vztmpl/nope.tar.zst' does not exist"
    assert root("GET", "/nodes/homelab/lxc/904/config").status == 500 and not app.driver.exists(904)


def test_power_actions(root, ct):
    assert root.task("POST", "/nodes/homelab/lxc/900/status/start")["exitstatus"] == "OK"
    r = root("POST", "/nodes/homelab/lxc/900/status/start")
    assert (r.status, r.reason) == (500, "CT 900 already running")
    assert root.task("POST", "/nodes/homelab/lxc/900/status/reboot")["exitstatus"] == "OK"
    assert root.task("POST", "/nodes/homelab/lxc/900/status/shutdown", timeout=5)["exitstatus"] == "OK"
    r = root("POST", "/nodes/homelab/lxc/900/status/stop")
    assert (r.status, r.reason) == (500, "CT 900 not running")
    assert root("POST", "/nodes/homelab/lxc/900/status/reboot").reason == "VM 900 not running"
    st = root.task("POST", "/nodes/homelab/lxc/999/status/start")
    assert st["exitstatus"] == "Configuration file 'nodes/homelab/lxc/999.conf' does not exist"


def test_config_put_digest_delete(root, ct):
    conf = root.ok("GET", "/nodes/homelab/lxc/900/config")
    assert root.ok("PUT", "/nodes/homelab/lxc/900/config", memory=1024, tags="web", digest=conf["digest"]) is None
    r = root("PUT", "/nodes/homelab/lxc/900/config", memory=512, digest=conf["digest"])
    assert (r.status, r.reason) == (500, "detected modified configuration - file changed by other user? Try again.")
    root.ok("PUT", "/nodes/homelab/lxc/900/config", delete="tags")
    conf = root.ok("GET", "/nodes/homelab/lxc/900/config")
    assert conf["memory"] == 1024 and "tags" not in conf
    assert root("PUT", "/nodes/homelab/lxc/900/config").reason == "no options specified"


def test_snapshot_names(root, ct):
    r = root("POST", "/nodes/homelab/lxc/900/snapshot", snapname="1bad")
    assert r.body["errors"] == {"snapname": "invalid format - invalid configuration ID '1bad'\n"}
    r = root("POST", "/nodes/homelab/lxc/900/snapshot", snapname="x")
    assert r.body["errors"] == {"snapname": "invalid format - invalid configuration ID 'x'\n"}
    r = root("POST", "/nodes/homelab/lxc/900/snapshot", snapname="a" * 41)
    assert r.body["errors"] == {"snapname": "value may only be 40 characters long"}
    for name in ("current", "vzdump"):
        r = root("POST", "/nodes/homelab/lxc/900/snapshot", snapname=name)
        assert (r.status, r.reason) == (500, f"unable to use snapshot name '{name}' (reserved name)")


def test_a_rollback_kills_a_running_ct_as_pve_does(root, ct, app):
    """pve-container stops a running CT with vm_stop($vmid, 1) before a rollback: no clean shutdown."""
    assert root.task("POST", "/nodes/homelab/lxc/900/snapshot", snapname="before")["exitstatus"] == "OK"
    root.task("POST", "/nodes/homelab/lxc/900/status/start")
    app.driver.calls.clear()
    assert root.task("POST", "/nodes/homelab/lxc/900/snapshot/before/rollback", start=1)["exitstatus"] == "OK"
    stops = [name for name, vmid in app.driver.calls if name in ("stop", "kill")]
    assert stops == ["kill"], app.driver.calls


def test_snapshot_chain_rollback_delete(root, ct, app):
    assert root.task("POST", "/nodes/homelab/lxc/900/snapshot", snapname="deploy_a", description="a")[
        "exitstatus"] == "OK"
    root.ok("PUT", "/nodes/homelab/lxc/900/config", memory=2048)
    app.driver.cts[900]["files"]["/etc/motd"] = "changed"
    assert root.task("POST", "/nodes/homelab/lxc/900/snapshot", snapname="deploy_b")["exitstatus"] == "OK"
    st = root.task("POST", "/nodes/homelab/lxc/900/snapshot", snapname="deploy_b")
    assert st["exitstatus"] == "snapshot name 'deploy_b' already used"
    snaps = {s["name"]: s for s in root.ok("GET", "/nodes/homelab/lxc/900/snapshot")}
    assert "parent" not in snaps["deploy_a"] and snaps["deploy_b"]["parent"] == "deploy_a"
    assert snaps["current"] == {"name": "current", "description": "You are here!", "running": 0,
                                "parent": "deploy_b", "digest": snaps["current"]["digest"]}
    root.task("POST", "/nodes/homelab/lxc/900/status/start")
    st = root.task("POST", "/nodes/homelab/lxc/900/snapshot/deploy_a/rollback", start=1)
    assert st["exitstatus"] == "OK" and st["type"] == "vzrollback"
    assert app.driver.cts[900]["files"].get("/etc/motd") is None and app.driver.status(900) == "running"
    conf = root.ok("GET", "/nodes/homelab/lxc/900/config")
    assert conf["memory"] == 256 and conf["parent"] == "deploy_a"
    st = root.task("DELETE", "/nodes/homelab/lxc/900/snapshot/nope")
    assert st["exitstatus"] == "snapshot 'nope' does not exist"
    st = root.task("POST", "/nodes/homelab/lxc/900/snapshot/nope/rollback")
    assert st["exitstatus"] == "snapshot 'nope' does not exist"
    assert root.task("DELETE", "/nodes/homelab/lxc/900/snapshot/deploy_a")["exitstatus"] == "OK"
    snaps = {s["name"]: s for s in root.ok("GET", "/nodes/homelab/lxc/900/snapshot")}
    assert set(snaps) == {"deploy_b", "current"} and "parent" not in snaps["deploy_b"]
    assert "parent" not in snaps["current"]


def test_destroy(root, ct, app):
    root.task("POST", "/nodes/homelab/lxc/900/status/start")
    r = root("DELETE", "/nodes/homelab/lxc/900")
    assert (r.status, r.reason) == (500, "unable to destroy CT 900 - container is running")
    assert root.task("DELETE", "/nodes/homelab/lxc/900", force=1)["exitstatus"] == "OK"
    assert not app.driver.exists(900) and root.ok("GET", "/nodes/homelab/lxc") == []


def test_permissions_come_first(auditor, ct):
    r = auditor("POST", "/nodes/homelab/lxc/900/snapshot", snapname="1bad")
    assert (r.status, r.reason) == (403, "Permission check failed (/vms/900, VM.Snapshot)")
    r = auditor("POST", "/nodes/pve/lxc/900/snapshot/x/rollback")
    assert r.reason == "Permission check failed (/vms/900, VM.Snapshot|VM.Snapshot.Rollback)"
    assert auditor("POST", "/nodes/homelab/lxc/900/status/start").reason == (
        "Permission check failed (/vms/900, VM.PowerMgmt)")
    assert auditor("PUT", "/nodes/homelab/lxc/900/config", memory=1).reason == (
        "Permission check failed (/vms/900, VM.Config.Disk|VM.Config.CPU|VM.Config.Memory|VM.Config.Network|"
        "VM.Config.Options)")
    assert auditor.ok("GET", "/nodes/homelab/lxc")[0]["vmid"] == 900
    assert auditor.ok("GET", "/nodes/homelab/lxc/900/snapshot")[-1]["name"] == "current"


def test_config_put_checks_each_key_after_validation(app, ct):
    """The schema's any-of check passes with VM.Config.Options; the handler then wants each key's privilege."""
    tokens = json.loads((app.state_dir / "tokens.json").read_text())
    tokens["options@pve!t"] = {"value": "s3cret", "privileges": ["VM.Config.Options"]}
    (app.state_dir / "tokens.json").write_text(json.dumps(tokens))
    options = Client(app, "options@pve!t")
    assert options("PUT", "/nodes/homelab/lxc/900/config", memory=1).body["errors"] == {
        "memory": "value must have a minimum value of 16"}
    assert options("PUT", "/nodes/homelab/lxc/900/config", memory=64).reason == (
        "Permission check failed (/vms/900, VM.Config.Memory)")
    assert options.ok("PUT", "/nodes/homelab/lxc/900/config", onboot=1) is None


def test_cluster_resources_and_nextid(root, ct):
    res = root.ok("GET", "/cluster/resources", type="vm")
    assert res[0]["id"] == "lxc/900" and res[0]["type"] == "lxc" and res[0]["node"] == "homelab"
    kinds = {r["type"] for r in root.ok("GET", "/cluster/resources")}
    assert kinds == {"lxc", "node", "storage"}
    r = root("GET", "/cluster/resources", type="qemu")
    assert r.body["errors"]["type"].startswith("value 'qemu' does not have a value in the enumeration")
    assert root.ok("GET", "/cluster/nextid") == "100"
    assert root.ok("GET", "/cluster/nextid", vmid=901) == "901"
    r = root("GET", "/cluster/nextid", vmid=900)
    assert r.status == 400 and r.body["errors"] == {"vmid": "VM 900 already exists"}


def test_guest_lists_read_every_ct_state_from_one_listing_of_the_driver(root, app):
    """/cluster/resources and /nodes/{node}/lxc take each CT's status from one listing, not a query per CT (the lab's
    is a process per CT: at 150 CTs the health suite's states read waited on them), and list the CTs from that same
    listing (the lab's reads a file per CT)."""
    for vmid in (900, 901, 902):
        net = NET.replace("198.18.0.50", f"198.18.0.{vmid - 850}").replace("03:84", f"03:{vmid - 800:02x}")
        assert root.task("POST", "/nodes/homelab/lxc", vmid=vmid, ostemplate=TEMPLATE, hostname=f"t{vmid}",
                         net0=net, start=int(vmid != 901))["exitstatus"] == "OK"
    app.driver.reads.clear()
    guests = {r["vmid"]: r["status"] for r in root.ok("GET", "/cluster/resources", type="vm")}
    listed = {r["vmid"]: r["status"] for r in root.ok("GET", "/nodes/homelab/lxc")}
    assert guests == listed == {900: "running", 901: "stopped", 902: "running"}
    assert app.driver.reads["status"] == 0, app.driver.reads
    assert app.driver.reads["list"] == 2, "one listing per guest list"


def test_task_upid_status_log(root, ct, app):
    upid = root.ok("POST", "/nodes/homelab/lxc/900/snapshot", snapname="s1")
    parts = upid.split(":")
    assert len(parts) == 9 and parts[0] == "UPID" and parts[1] == "homelab" and parts[-1] == ""
    assert parts[5:8] == ["vzsnapshot", "900", "root@pam!lab"] and all(len(p) == 8 for p in parts[2:5])
    app.tasks.wait(upid, 10)
    st = root.ok("GET", f"/nodes/homelab/tasks/{upid}/status")
    assert st["user"] == "root@pam" and st["tokenid"] == "lab" and st["exitstatus"] == "OK"
    reply = root("GET", f"/nodes/homelab/tasks/{upid}/log")
    assert reply.body["data"][-1] == {"n": reply.body["total"], "t": "TASK OK"}
    failed = root.ok("POST", "/nodes/homelab/lxc/900/snapshot", snapname="s1")
    app.tasks.wait(failed, 10)
    log = root.ok("GET", f"/nodes/homelab/tasks/{failed}/log")
    assert log[-1]["t"] == "TASK ERROR: snapshot name 's1' already used"
    r = root("GET", "/nodes/homelab/tasks/garbage/status")
    assert r.status == 400 and "upid" in r.body["errors"]


def test_task_list_filters(root, ct):
    """source, since/until, typefilter, statusfilter and errors filter the list; bad values are PVE's 400."""
    failed = root.ok("POST", "/nodes/homelab/lxc/900/snapshot/none/rollback")
    root.app.tasks.wait(failed, 10)
    listed = root.ok("GET", "/nodes/homelab/tasks", source="all")
    assert {t["type"] for t in listed} == {"vzrollback", "vzcreate"}
    assert root.ok("GET", "/nodes/homelab/tasks", source="active") == []
    assert root.ok("GET", "/nodes/homelab/tasks", since=2**31) == []
    assert {t["type"] for t in root.ok("GET", "/nodes/homelab/tasks", errors=1)} == {"vzrollback"}
    assert {t["type"] for t in root.ok("GET", "/nodes/homelab/tasks", statusfilter="ok")} == {"vzcreate"}
    assert [t["type"] for t in root.ok("GET", "/nodes/homelab/tasks", typefilter="vzcreate")] == ["vzcreate"]
    r = root("GET", "/nodes/homelab/tasks", source="old", until="soon", statusfilter="fine")
    assert r.status == 400 and set(r.body["errors"]) == {"source", "until", "statusfilter"}


def test_onboot_and_startup_validate_from_the_schema_on_create_and_config(root, app):
    """onboot (boolean) and startup (pve-startup-order) are PVE's on create and on PUT config, and kept."""
    r = root("POST", "/nodes/homelab/lxc", vmid=905, ostemplate=TEMPLATE, net0=NET.replace("0.50", "0.55"),
             onboot="yes", startup="first")
    assert r.status == 400 and r.body["errors"] == {
        "onboot": "type check ('boolean') failed - got 'yes'",
        "startup": "invalid format - unable to parse startup options\n"}
    st = root.task("POST", "/nodes/homelab/lxc", vmid=905, ostemplate=TEMPLATE, net0=NET.replace("0.50", "0.55"),
                   onboot=1, startup="order=2,up=30")
    assert st["exitstatus"] == "OK"
    conf = root.ok("GET", "/nodes/homelab/lxc/905/config")
    assert conf["onboot"] == 1 and conf["startup"] == "order=2,up=30"
    r = root("PUT", "/nodes/homelab/lxc/905/config", startup="order=x")
    assert r.body["errors"] == {"startup": "invalid format - unable to parse startup options\n"}
    root.ok("PUT", "/nodes/homelab/lxc/905/config", startup="order=1,down=60", onboot=0)
    conf = root.ok("GET", "/nodes/homelab/lxc/905/config")
    assert conf["onboot"] == 0 and conf["startup"] == "order=1,down=60"


def test_validation_comes_before_the_handler(root):
    """PUT config of a CT that does not exist: PVE's 400 for the bad values, not the handler's 500."""
    r = root("PUT", "/nodes/homelab/lxc/999/config", cpulimit="abc", ostype="beos")
    assert r.status == 400 and set(r.body["errors"]) == {"cpulimit", "ostype"}
    assert r.body["errors"]["cpulimit"] == "type check ('number') failed - got 'abc'"
    r = root("PUT", "/nodes/homelab/lxc/999/config", cpulimit="1.5")
    assert (r.status, r.reason) == (500, "Configuration file 'nodes/homelab/lxc/999.conf' does not exist")
