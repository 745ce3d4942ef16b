"""The emulator as a Proxmox cluster: nodes, quorum, proxying to a down node, placement, migrate and HA.

Expected texts are PVE's (pve-cluster, pve-http-server, pve-container, pve-ha-manager), written here.
"""

from __future__ import annotations

import pytest
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab.__main__ import main as lab_main
from lab.pve.app import Emulator
from lab.pve.cluster import ClusterError

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.{}/24,gw=198.18.0.1"


class Api(EmulatorCalls):
    """Calls the emulator in-process with the full token."""

    def task(self, method, path, **params):
        """Run a task to its end: (UPID, task)."""
        upid = self.ok(method, path, **params)
        return upid, self.app.tasks.wait(upid, 10)

    def create(self, node: str, vmid: int, **extra):
        _, task = self.task("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE,
                            net0=NET.format(vmid - 800), **extra)
        assert task.exitstatus == "OK", task.exitstatus


@pytest.fixture
def api(tmp_path):
    return Api(Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True, nodes=3))


def test_one_node_is_pves_standalone_node(tmp_path):
    """The default: one node, no cluster entry, nodeid 0, no shared storage, quorate."""
    api = Api(Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True))
    assert api.ok("GET", "/cluster/status") == [
        {"type": "node", "id": "node/homelab", "name": "homelab", "nodeid": 0, "ip": "198.18.0.1",
         "online": 1, "local": 1, "level": ""}]
    assert [n["node"] for n in api.ok("GET", "/nodes")] == ["homelab"]
    assert [s["storage"] for s in api.ok("GET", "/storage")] == ["local", "backup"]
    assert api.ok("GET", "/cluster/resources", type="storage")[0]["id"] == "storage/homelab/local"


def test_a_cluster_reports_its_nodes_and_quorum(api):
    """Three nodes: the cluster entry (quorate, nodes) and each node (online, local, nodeid, ip)."""
    status = api.ok("GET", "/cluster/status")
    assert status[0] == {"type": "cluster", "id": "cluster", "name": "lab", "nodes": 3, "quorate": 1, "version": 3}
    assert [(n["name"], n["nodeid"], n["ip"], n["online"], n["local"]) for n in status[1:]] == [
        ("homelab", 1, "198.18.0.1", 1, 1), ("homelab-2", 2, "198.18.0.2", 1, 0), ("homelab-3", 3, "198.18.0.3", 1, 0)]
    assert [(n["node"], n["status"]) for n in api.ok("GET", "/nodes")] == [
        ("homelab", "online"), ("homelab-2", "online"), ("homelab-3", "online")]


def test_each_node_has_its_local_storage_and_all_see_one_shared(api):
    """/cluster/resources: local per node (shared 0) and `shared` on every node (shared 1)."""
    storages = {(s["node"], s["storage"]): s["shared"] for s in api.ok("GET", "/cluster/resources", type="storage")}
    assert storages == {(n, s): int(s == "shared") for n in ("homelab", "homelab-2", "homelab-3")
                        for s in ("local", "shared")}
    assert api.ok("GET", "/storage/shared")["shared"] == 1


def test_a_ct_answers_on_its_node_only(api):
    """A CT created on homelab-2 is listed there, its tasks run there, and its own node is the only one that has it."""
    api.create("homelab-2", 900)
    [ct] = api.ok("GET", "/cluster/resources", type="vm")
    assert (ct["id"], ct["node"]) == ("lxc/900", "homelab-2")
    assert [c["vmid"] for c in api.ok("GET", "/nodes/homelab-2/lxc")] == [900]
    assert api.ok("GET", "/nodes/homelab/lxc") == []
    wrong = api("GET", "/nodes/homelab/lxc/900/status/current")
    assert (wrong.status, wrong.reason) == (500, "Configuration file 'nodes/homelab/lxc/900.conf' does not exist")
    upid, task = api.task("POST", "/nodes/homelab-2/lxc/900/status/start")
    assert upid.startswith("UPID:homelab-2:") and task.exitstatus == "OK"
    again = api("POST", "/nodes/homelab-2/lxc", vmid=900, ostemplate=TEMPLATE, net0=NET.format(100))
    assert again.reason == "CT 900 already exists on node 'homelab-2'"


def test_a_call_to_a_down_node_fails_as_pveproxy_does(api):
    """A node that is down: 595 No route to host, no body; the cluster still lists it, offline."""
    api.app.cluster.set_online("homelab-3", False)
    reply = api("GET", "/nodes/homelab-3/status")
    assert (reply.status, reply.reason, reply.body) == (595, "No route to host", None)
    assert ("homelab-3", "offline") in [(n["node"], n["status"]) for n in api.ok("GET", "/nodes")]
    assert api.ok("GET", "/cluster/status")[3]["online"] == 0
    assert api.ok("GET", "/cluster/status")[0]["quorate"] == 1  # two of three: still a majority
    unknown = api("GET", "/nodes/nowhere/status")
    assert unknown.reason.startswith("hostname lookup 'nowhere' failed")


def test_without_quorum_writes_are_refused_and_reads_answer(api):
    """A majority down: every write dies with pve-cluster's text; reads still answer."""
    api.create("homelab", 900)
    api.app.cluster.set_online("homelab-2", False)
    api.app.cluster.set_online("homelab-3", False)
    assert api.ok("GET", "/cluster/status")[0]["quorate"] == 0
    reply = api("POST", "/nodes/homelab/lxc/900/status/start")
    assert (reply.status, reply.reason) == (500, "cluster not ready - no quorum?")
    assert api("PUT", "/nodes/homelab/lxc/900/config", memory=256).reason == "cluster not ready - no quorum?"
    assert api.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "stopped"
    assert api.ok("GET", "/cluster/ha/status/current")[0]["status"] == "No quorum on node 'homelab'!"
    api.app.cluster.set_online("homelab-2", True)
    assert api.task("POST", "/nodes/homelab/lxc/900/status/start")[1].exitstatus == "OK"


def test_the_local_node_cannot_go_down_and_the_cluster_persists(api, tmp_path):
    """The node serving the API stays up; a restarted emulator finds the same cluster and node states."""
    with pytest.raises(ClusterError, match="serves the lab's API"):
        api.app.cluster.set_online("homelab", False)
    with pytest.raises(ClusterError, match="not in the cluster; nodes: homelab, homelab-2, homelab-3"):
        api.app.cluster.set_online("pve", False)
    api.app.cluster.set_online("homelab-2", False)
    again = Emulator(tmp_path / "pve", MemHosts(), node="homelab")
    assert again.cluster.names() == ["homelab", "homelab-2", "homelab-3"]
    assert not again.cluster.online("homelab-2")


def test_migrate_a_stopped_ct(api):
    """A vzmigrate task on the source node; the CT then answers on the target only."""
    api.create("homelab", 900)
    upid, task = api.task("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-2")
    assert upid.startswith("UPID:homelab:") and ":vzmigrate:900:" in upid and task.exitstatus == "OK"
    assert "starting migration of CT 900 to node 'homelab-2' (198.18.0.2)" in task.lines
    assert "found local volume 'local:900/vm-900-disk-0.raw' (in current VM config)" in task.lines
    assert api.ok("GET", "/cluster/resources", type="vm")[0]["node"] == "homelab-2"
    assert api("GET", "/nodes/homelab/lxc/900/config").reason == (
        "Configuration file 'nodes/homelab/lxc/900.conf' does not exist")
    assert api.ok("GET", "/nodes/homelab-2/lxc/900/config")["hostname"] == "CT900"


def test_migrate_a_running_ct_needs_restart_mode(api):
    """Running: refused without restart (PVE's text); with restart it is shut down, moved and started again."""
    api.create("homelab", 900, rootfs="shared:8", start=1)
    reply = api("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-3")
    assert (reply.status, reply.reason) == (500, "can't migrate running container without --online or --restart")
    _, task = api.task("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-3", restart=1)
    assert task.exitstatus == "OK", task.lines
    assert "volume 'shared:900/vm-900-disk-0.raw' is on shared storage 'shared'" in task.lines
    assert task.lines[0] == "shutdown CT 900" and "start container on target node" in task.lines
    assert api.ok("GET", "/nodes/homelab-3/lxc/900/status/current")["status"] == "running"
    assert api.app.driver.calls[-2:] == [("stop", 900), ("start", 900)]


def test_migrate_refusals(api):
    """Same node, unknown node (before a task); a target that is down (the task aborts)."""
    api.create("homelab", 900)
    same = api("POST", "/nodes/homelab/lxc/900/migrate", target="homelab")
    assert same.status == 400 and same.body["errors"] == {"target": "target is local node."}
    assert api("POST", "/nodes/homelab/lxc/900/migrate", target="pve").reason == "no such cluster node 'pve'"
    api.app.cluster.set_online("homelab-2", False)
    _, task = api.task("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-2")
    assert task.exitstatus == "migration aborted"
    assert "ERROR: Can't connect to destination address using public key" in task.lines
    assert api.app.node_of(900) == "homelab"


def test_ha_resources_start_their_ct_and_report_status(api):
    """A CT put under HA (state started) is started; resources, status/current and the CT's status say so."""
    api.create("homelab-2", 900, rootfs="shared:8")
    api.ok("POST", "/cluster/ha/resources", sid="ct:900", max_relocate=2)
    [res] = api.ok("GET", "/cluster/ha/resources")
    assert {k: res[k] for k in ("sid", "type", "state", "max_relocate")} == {
        "sid": "ct:900", "type": "ct", "state": "started", "max_relocate": 2}
    assert api.ok("GET", "/nodes/homelab-2/lxc/900/status/current")["ha"] == {"managed": 1, "state": "started"}
    assert api.ok("GET", "/cluster/resources", type="vm")[0]["hastate"] == "started"
    status = {e["id"]: e for e in api.ok("GET", "/cluster/ha/status/current")}
    assert status["quorum"]["quorate"] == 1 and status["master"]["node"] == "homelab"
    assert status["service:ct:900"]["node"] == "homelab-2" and status["service:ct:900"]["crm_state"] == "started"
    assert status["lrm:homelab-2"]["status"].startswith("homelab-2 (active, watchdog active")
    api.ok("PUT", "/cluster/ha/resources/ct:900", state="stopped")
    assert api.ok("GET", "/nodes/homelab-2/lxc/900/status/current")["status"] == "stopped"


def test_ha_refusals_use_pves_texts(api):
    """Duplicates, groups (migrated to rules in PVE 9), missing CTs and unmanaged deletes."""
    api.create("homelab", 900)
    api.ok("POST", "/cluster/ha/resources", sid="900", state="ignored")
    assert api("POST", "/cluster/ha/resources", sid="ct:900").reason == "resource ID 'ct:900' already defined"
    assert api("POST", "/cluster/ha/resources", sid="ct:901", group="g1").reason == (
        "invalid parameter 'group': ha groups have been migrated to rules")
    assert api("POST", "/cluster/ha/resources", sid="ct:901").reason == "resource 'ct:901' does not exist in cluster"
    assert api("POST", "/cluster/ha/resources", sid="901").reason == (
        "unable to detect SID from VMID - VM/CT 901 does not exist")
    assert api("DELETE", "/cluster/ha/resources/ct:901").reason == "cannot delete service 'ct:901', not HA managed!"
    assert api.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "stopped"  # ignored: left alone


def test_ha_rules_node_affinity(api):
    """Node-affinity rules name HA-managed resources and nodes of the cluster; the resource's delete purges them."""
    api.create("homelab", 900)
    assert api("POST", "/cluster/ha/rules", rule="r1", type="node-affinity", resources="ct:900",
               nodes="homelab").reason == "cannot use unmanaged resource(s) ct:900."
    api.ok("POST", "/cluster/ha/resources", sid="ct:900", state="stopped")
    assert api("POST", "/cluster/ha/rules", rule="r1", type="node-affinity", resources="ct:900",
               nodes="pve:2").reason == "cannot use non-existent node(s) pve."
    api.ok("POST", "/cluster/ha/rules", rule="r1", type="node-affinity", resources="ct:900", nodes="homelab:2,homelab-2")
    assert api.ok("GET", "/cluster/ha/rules/r1")["nodes"] == "homelab:2,homelab-2"
    assert [r["rule"] for r in api.ok("GET", "/cluster/ha/rules", resource="ct:900")] == ["r1"]
    api.ok("DELETE", "/cluster/ha/resources/ct:900")
    assert api.ok("GET", "/cluster/ha/rules") == []


def test_an_ha_managed_ct_migrates_through_the_ha_manager(api):
    """migrate on an HA-managed CT is an hamigrate task that asks the CRM (crm-command migrate) and ends; the CRM
    relocates it on its next round (stop, move), the target's LRM starts it on the one after."""
    api.create("homelab", 900, rootfs="shared:8")
    api.ok("POST", "/cluster/ha/resources", sid="ct:900")  # started by the CRM: migrating it needs restart mode
    upid, task = api.task("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-2", restart=1)
    assert ":hamigrate:900:" in upid and task.exitstatus == "OK", task.lines
    assert task.lines[0] == "Requesting HA migration for CT 900 to node homelab-2"
    assert api.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "running"  # not moved by the task
    api.app.crm.round()
    assert "migrate service 'ct:900' to node 'homelab-2'" in api.app.crm.log
    api.app.crm.round()
    assert api.ok("GET", "/nodes/homelab-2/lxc/900/status/current")["status"] == "running"


def test_lab_cli_refuses_a_bad_node_count_in_one_line(capsys):
    """`lab up --nodes 0` is refused by the parser, before root or any side effect."""
    with pytest.raises(SystemExit) as exc:
        lab_main(["up", "--nodes", "0"])
    assert exc.value.code == 2
    assert "--nodes: 0: expected a number of nodes, 1 or more" in capsys.readouterr().err


def test_an_ha_managed_cts_start_and_stop_go_through_the_ha_manager(api):
    """status/stop and status/start on an HA-managed CT are hastop/hastart tasks that set its requested state, so
    the CRM does not start again a CT the caller stopped."""
    api.create("homelab", 900, rootfs="shared:8")
    api.ok("POST", "/cluster/ha/resources", sid="ct:900")
    upid, task = api.task("POST", "/nodes/homelab/lxc/900/status/stop")
    assert ":hastop:900:" in upid and task.lines[0] == "Requesting HA stop for CT 900"
    assert api.ok("GET", "/cluster/ha/resources/ct:900")["state"] == "stopped"
    assert api.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "stopped"
    upid, task = api.task("POST", "/nodes/homelab/lxc/900/status/start")
    assert ":hastart:900:" in upid and task.exitstatus == "OK"
    assert api.ok("GET", "/cluster/ha/resources/ct:900")["state"] == "started"
    assert api.ok("GET", "/nodes/homelab/lxc/900/status/current")["status"] == "running"


def test_lab_up_with_another_node_count_restarts_a_running_emulator_and_the_same_count_does_not(tmp_path, monkeypatch):
    """The emulator reads its nodes and storages at its start: `lab up --nodes 3` on a running one-node lab stops it
    so that lab up's start serves three nodes and the shared storage; the same count, or none, leaves it running."""
    from types import SimpleNamespace

    from lab import orchestrate

    stopped, said = [], []
    monkeypatch.setattr(orchestrate, "PATHS", SimpleNamespace(pve_dir=tmp_path / "pve", run_dir=tmp_path / "run"))
    monkeypatch.setattr(orchestrate.procs, "running_pid", lambda run_dir, service: 4242)
    monkeypatch.setattr(orchestrate.procs, "stop", lambda run_dir, service: stopped.append(service.name) or True)
    assert len(orchestrate.resize_cluster(None, said.append)) == 1 and stopped == []
    assert len(orchestrate.resize_cluster(3, said.append)) == 3 and stopped == [orchestrate.PVE.name]
    assert said == ["pve api: restarted for 3 node(s) instead of 1 (its containers keep running)"]
    assert len(orchestrate.resize_cluster(3, said.append)) == 3 and len(orchestrate.resize_cluster(None)) == 3
    assert stopped == [orchestrate.PVE.name]


def test_lab_up_restarts_a_running_emulator_started_with_other_code_and_not_one_started_with_this(tmp_path,
                                                                                                  monkeypatch):
    """A pull or another worktree changes lab/: lab up stops the emulator that runs other code (or code it cannot
    tell), so that its start serves this checkout's; an emulator started with this code keeps running."""
    from types import SimpleNamespace

    from lab import orchestrate

    stopped, said = [], []
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.setattr(orchestrate, "PATHS", SimpleNamespace(pve_dir=tmp_path / "pve", run_dir=run_dir))
    monkeypatch.setattr(orchestrate.procs, "running_pid", lambda run_dir, service: 4242)
    monkeypatch.setattr(orchestrate.procs, "stop", lambda run_dir, service: stopped.append(service.name) or True)
    (run_dir / orchestrate.EMULATOR_CODE_FILE).write_text(orchestrate.emulator_code() + "\n")
    orchestrate.stop_stale_emulator(said.append)
    assert stopped == [] and said == []
    (run_dir / orchestrate.EMULATOR_CODE_FILE).write_text("0" * 64 + "\n")
    orchestrate.stop_stale_emulator(said.append)
    assert stopped == [orchestrate.PVE.name] and "other code than this checkout" in said[0]
    (run_dir / orchestrate.EMULATOR_CODE_FILE).unlink()
    orchestrate.stop_stale_emulator(said.append)
    assert stopped == [orchestrate.PVE.name] * 2


def test_lab_up_nodes_is_stored_and_lab_node_takes_one_down(tmp_path, monkeypatch):
    """`lab up --nodes 3` writes the cluster the emulator serves; `lab node down` marks a node offline; `lab up`
    without --nodes keeps it, and a fresh lab is one node."""
    from types import SimpleNamespace

    from lab import orchestrate

    monkeypatch.setattr(orchestrate, "PATHS", SimpleNamespace(pve_dir=tmp_path / "pve"))
    assert [n.name for n in orchestrate.cluster_nodes()] == ["homelab"]
    assert [n.name for n in orchestrate.cluster_nodes(3)] == ["homelab", "homelab-2", "homelab-3"]
    orchestrate.set_node_online("homelab-3", False)
    assert [n.online for n in orchestrate.cluster_nodes()] == [True, True, False]
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab")
    assert Api(app)("GET", "/nodes/homelab-3/status").status == 595
    with pytest.raises(ClusterError, match="node 'nope': not in the cluster"):
        orchestrate.set_node_online("nope", True)
