"""The deploy's ha stage on a 3-node in-process emulator (lab-cluster.yml): the inventory's `ha:` hosts become
`ct:<vmid>` HA resources, a second run changes nothing, a changed `ha:` is updated, a host that drops it is
removed (never another vmid's resource), a plan writes nothing, a token without Sys.Console fails in one line,
and the rollback restores the resources the run found."""

from __future__ import annotations

import json

import pytest
import yaml
from pve_inprocess import in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import READONLY_TOKEN_ID
from plugins.deploy.finish.rollback import describe
from plugins.deploy.recorded_state import onto_session, to_record
from plugins.deploy.session import DeploySession
from plugins.deploy.stages import ha as stage
from plugins.inventory.loader import validate_document
from plugins.proxmox.ha_resources import read_state
from plugins.proxmox.tasks import ProxmoxError

pytestmark = pytest.mark.unit
SOURCE = "inventories/lab-cluster.yml"
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
OWNERS_CT = 990  # a container the inventory does not name: its HA resource is the owner's


def cluster_inventory(**ha_of: dict | None):
    """lab-cluster.yml, each named host's `ha:` replaced (None: dropped)."""
    with open(SOURCE, encoding="utf-8") as fh:
        document = yaml.safe_load(fh)
    for host in document["hosts"]:
        if host["hostname"] in ha_of:
            if ha_of[host["hostname"]] is None:
                host.pop("ha", None)
            else:
                host["ha"] = ha_of[host["hostname"]]
    return validate_document(SOURCE, document)


class Counted:
    """A ProxmoxClient whose writes (every method but GET) are counted."""

    def __init__(self, client):
        self.client, self.writes = client, 0

    def api_call(self, what, method, path, /, **params):
        """The client's call, counted when it writes."""
        self.writes += method != "GET"
        return self.client.api_call(what, method, path, **params)


@pytest.fixture
def cluster(tmp_path):
    """A 3-node emulator holding lab-cluster.yml's containers on their nodes, plus an owner's HA-managed CT."""
    inventory = cluster_inventory()
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", nodes=3)
    app.firewall.enforce = lambda ruleset: None
    proxmox = Counted(in_process_client(app))
    hosts = [(h.vmid, h.node, h.hostname, h.ip, h.storage) for h in inventory.hosts]
    for vmid, node, hostname, ip, storage in [*hosts, (OWNERS_CT, "homelab-3", "owners", "198.18.0.99", "shared")]:
        rootfs = {"rootfs": f"{storage}:8"} if storage != "local" else {}
        upid = proxmox.api_call("create", "POST", f"nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, start=1,
                                hostname=hostname, net0=f"name=eth0,bridge=labbr0,ip={ip}/24,gw=198.18.0.1", **rootfs)
        assert app.tasks.wait(upid, 10).exitstatus == "OK"
    proxmox.api_call("owner's", "POST", "cluster/ha/resources", sid=f"ct:{OWNERS_CT}", state="stopped", max_restart=3)
    proxmox.writes = 0
    return app, proxmox, inventory


def resources(proxmox) -> dict[int, dict]:
    """Every CT's HA resource PVE holds, the owner's included."""
    return read_state(proxmox.api_call, range(100, 1000))


def deploy(inventory, plan_only: bool = False) -> DeploySession:
    return DeploySession(run_id="unit", inventory=inventory, plan_only=plan_only)


def test_a_deploy_registers_each_ha_host_then_a_second_run_changes_nothing(cluster):
    _app, proxmox, inventory = cluster
    run = deploy(inventory)
    stage.record_previous(run, proxmox)
    lines = stage.apply(run, proxmox)
    ha_hosts = {h.vmid: h for h in inventory.ha_hosts}
    assert len(ha_hosts) == 2 and lines == [
        *[f"create ct:{vmid}: state=started, max_restart=1, max_relocate=1" for vmid in sorted(ha_hosts)],
        "create rule homelab-suite-monitoring: node-affinity, resources=ct:240, nodes=homelab:1,homelab-3:2, strict=0",
        ("create rule homelab-suite-utilities: node-affinity, resources=ct:201, nodes=homelab-2:2,homelab-3:1, "
        "strict=0")]
    assert run.stage("ha").summary == "2 HA resource(s) and 2 HA rule(s) changed"
    assert run.stage("ha").details == [f"  ha        {line}" for line in lines]
    held = resources(proxmox)
    assert {v: held[v] for v in ha_hosts} == {v: {"state": "started", "max_restart": 1, "max_relocate": 1}
                                              for v in ha_hosts}
    assert held[OWNERS_CT] == {"state": "stopped", "max_restart": 3, "max_relocate": 1}
    managed_by_crm = {s["sid"] for s in proxmox.api_call("status", "GET", "cluster/ha/status/current")
                      if s.get("type") == "service"}
    assert {f"ct:{v}" for v in ha_hosts} <= managed_by_crm
    assert stage.drift(run, proxmox) == []

    writes = proxmox.writes
    again = deploy(inventory)
    stage.record_previous(again, proxmox)
    assert stage.apply(again, proxmox) == [] and proxmox.writes == writes
    assert again.stage("ha").summary == ("the HA manager already holds the inventory's 2 ha: host(s) and 2 "
                                         "node-affinity rule(s)")


def test_a_changed_ha_is_updated_and_a_dropped_one_removed_never_another_vmids(cluster):
    app, proxmox, inventory = cluster
    stage.apply(deploy(inventory), proxmox)
    changed = cluster_inventory(utilities={"state": "stopped", "max_restart": 2}, monitoring=None)
    utilities, monitoring = changed.host("utilities").vmid, changed.host("monitoring").vmid
    planned = stage.apply(deploy(changed, plan_only=True), proxmox)
    run = deploy(changed)
    assert stage.apply(run, proxmox) == planned == [
        f"update ct:{utilities}: state=stopped, max_restart=2",
        f"remove ct:{monitoring} (the container stays as it is, outside HA)",
        # monitoring's rule went with its resource (PVE's purge); utilities' ha: no longer declares nodes
        "remove rule homelab-suite-utilities",
    ]
    held = resources(proxmox)
    assert held[utilities] == {"state": "stopped", "max_restart": 2, "max_relocate": 1}
    assert monitoring not in held and app.running(monitoring)  # out of HA, still running
    assert held[OWNERS_CT] == {"state": "stopped", "max_restart": 3, "max_relocate": 1}
    assert stage.drift(run, proxmox) == []


def test_a_plan_lists_the_changes_and_writes_nothing(cluster):
    _app, proxmox, inventory = cluster
    planned = deploy(inventory, plan_only=True)
    stage.record_previous(planned, proxmox)
    lines = stage.apply(planned, proxmox)
    assert len(lines) == 4 and all(line.startswith("create ct:") for line in lines[:2])
    assert lines[2].startswith("create rule homelab-suite-monitoring: node-affinity")
    assert planned.stage("ha").summary == "2 HA resource(s) and 2 HA rule(s) would change"
    assert proxmox.api_call("rules", "GET", "cluster/ha/rules") == []
    assert proxmox.writes == 0 and set(resources(proxmox)) == {OWNERS_CT}


def test_a_token_without_sys_console_fails_in_one_line(cluster):
    app, _, inventory = cluster
    readonly = in_process_client(app, token_id=READONLY_TOKEN_ID)
    run = deploy(inventory)
    stage.record_previous(run, readonly)  # reading needs Sys.Audit only
    with pytest.raises(ProxmoxError) as caught:
        stage.apply(run, readonly)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("create HA resource ct:")
    assert "permission denied" in message and f"token {READONLY_TOKEN_ID} lacks privilege" in message
    assert "Sys.Console" in message


def test_the_rollback_restores_the_ha_resources_the_run_found(cluster):
    """The run found utilities HA-managed with other options and monitoring not at all: the restore puts both back
    (the owner's resource untouched), and the rollback's lines say so."""
    _app, proxmox, inventory = cluster
    utilities, monitoring = inventory.host("utilities").vmid, inventory.host("monitoring").vmid
    proxmox.api_call("found", "POST", "cluster/ha/resources", sid=f"ct:{utilities}", state="started", max_relocate=0)
    before = resources(proxmox)
    run = deploy(inventory)
    stage.record_previous(run, proxmox)
    assert stage.apply(run, proxmox)[:2] == [f"update ct:{utilities}: max_relocate=1",
                                             f"create ct:{monitoring}: state=started, max_restart=1, max_relocate=1"]
    undone = stage.restore(run, proxmox)
    assert undone == [f"update ct:{utilities}: max_relocate=0",
                      f"remove ct:{monitoring} (the container stays as it is, outside HA)",
                      "remove rule homelab-suite-utilities"]
    assert resources(proxmox) == before
    outcome = {"ok": True, "seconds": 1.0, "rolled_back": {}, "ha": undone, "task_errors": {}, "unhealthy": {},
               "excluded": []}
    assert f"  HA resources restored: update ct:{utilities}: max_relocate=0" in describe(outcome)


def test_a_rollback_before_the_stage_ran_leaves_ha_alone(cluster):
    _app, proxmox, inventory = cluster
    assert stage.restore(deploy(inventory), proxmox) == [] and proxmox.writes == 0


def test_destroying_an_ha_managed_ct_needs_purge_which_drops_its_resource(cluster):
    """pve-container's destroy_vm, as the emulator answers it: a host that leaves the inventory is destroyed by
    Terraform (pve_lxc.py: purge=1), and its HA resource goes with it; without purge PVE refuses."""
    app, proxmox, _ = cluster
    client = proxmox.client
    for purge in ({}, {"purge": 0}):
        with pytest.raises(ProxmoxError, match=f"unable to remove CT {OWNERS_CT} - used in HA resources and purge "
                                               "parameter not set"):
            client.api_call("destroy", "DELETE", f"nodes/homelab-3/lxc/{OWNERS_CT}", force=1, **purge)
    upid = client.api_call("destroy", "DELETE", f"nodes/homelab-3/lxc/{OWNERS_CT}", force=1, purge=1)
    task = client.wait_task("homelab-3", upid, 10)
    assert OWNERS_CT not in resources(proxmox) and app.store.load(OWNERS_CT) is None
    log = "\n".join(row["t"] for row in client.api_call("log", "GET", f"nodes/homelab-3/tasks/{upid}/log"))
    assert f"NOTE: removed CT {OWNERS_CT} from HA resource configuration." in log, (task, log)


class RollbackOrder(Counted):
    """The emulator's client whose rollback tasks are recorded (they succeed) after the writes made before them."""

    def __init__(self, client, fail_writes: bool = False):
        super().__init__(client)
        self.steps: list[str] = []
        self.fail_writes = fail_writes

    def api_call(self, what, method, path, /, **params):
        """The client's call; a write recorded, or refused as a token without Sys.Console is."""
        if method != "GET":
            self.steps.append(what)
            if self.fail_writes:
                raise ProxmoxError(f"{what}: permission denied (unit)")
        return super().api_call(what, method, path, **params)

    def rollback_many(self, node, targets, start=True, *, timeout=None, on_log=None):
        """Record the containers' rollback; every task succeeds."""
        self.steps.append(f"rollback {sorted(targets)} on {node}")
        return {vmid: f"UPID:{node}:{vmid}" for vmid in targets}


@pytest.fixture
def no_wait(monkeypatch):
    """The rollback's SSH reads and health wait answered at once (the HA part is what is tested)."""
    from plugins.deploy.finish import rollback

    monkeypatch.setattr(rollback, "wait_healthy", lambda hosts, inventory, judgements, timeline=None:
                        {h.hostname: "" for h in hosts})
    monkeypatch.setattr(rollback, "read_records", lambda inventory, hosts, on_answer=None:
                        {h.hostname: None for h in hosts})
    return rollback


@pytest.mark.parametrize("fail_writes", [False, True])
def test_a_failed_deploys_rollback_restores_ha_before_the_containers(cluster, no_wait, fail_writes):
    """The resources the run created are removed before any container goes back (its HA hands-off then acts on
    what the run found); a restore that fails leaves the rollback INCOMPLETE, naming it, the containers still
    rolled back."""
    _app, proxmox, inventory = cluster
    run = deploy(inventory)
    stage.record_previous(run, proxmox)
    stage.apply(run, proxmox)
    app_demo = inventory.host("app-demo")
    run.snapshots[app_demo.vmid] = "deploy_unit"
    client = RollbackOrder(proxmox.client, fail_writes)
    outcome = no_wait.roll_back(run, client)
    removed = [f"remove HA resource ct:{h.vmid}" for h in inventory.ha_hosts]
    if not fail_writes:
        assert client.steps == [*removed, f"rollback [{app_demo.vmid}] on {app_demo.node}"]
        assert outcome["ok"] and len(outcome["ha"]) == 2 and set(resources(proxmox)) == {OWNERS_CT}
    else:
        assert client.steps == [removed[0], f"rollback [{app_demo.vmid}] on {app_demo.node}"]
        assert not outcome["ok"] and outcome["rolled_back"] == {"app-demo": "deploy_unit"}
        assert (f"  FAILED to restore the HA resources recorded before the run: ProxmoxError: {removed[0]}: "
                "permission denied (unit)") in describe(outcome)


def rules(proxmox) -> dict[str, dict]:
    """Every HA rule PVE holds, the owner's included: id -> (resources, nodes, strict)."""
    return {r["rule"]: (r["resources"], r["nodes"], int(r.get("strict", 0)))
            for r in proxmox.api_call("rules", "GET", "cluster/ha/rules")}


def test_the_suites_rules_follow_ha_nodes_and_leave_the_owners_alone(cluster):
    """One `homelab-suite-<hostname>` node-affinity rule per ha: host with nodes; changed priorities and strict are
    one PUT; the owner's rule (another id) is never touched; the HA manager keeps each host on its own node."""
    app, proxmox, inventory = cluster
    proxmox.api_call("owner's", "POST", "cluster/ha/rules", rule="owners-pref", type="node-affinity",
                     resources=f"ct:{OWNERS_CT}", nodes="homelab-3")
    stage.apply(deploy(inventory), proxmox)
    utilities = inventory.host("utilities").vmid
    assert rules(proxmox) == {
        "owners-pref": (f"ct:{OWNERS_CT}", "homelab-3", 0),
        "homelab-suite-monitoring": ("ct:240", "homelab:1,homelab-3:2", 0),
        "homelab-suite-utilities": (f"ct:{utilities}", "homelab-2:2,homelab-3:1", 0)}
    app.crm.round()
    assert app.node_of(utilities) == "homelab-2" and app.node_of(240) == "homelab-3"  # no move: its node is first
    changed = cluster_inventory(utilities={"nodes": {"homelab-2": 1, "homelab": 0}, "strict": True})
    run = deploy(changed)
    assert stage.apply(run, proxmox) == [
        "update rule homelab-suite-utilities: nodes=homelab,homelab-2:1, strict=1"]
    assert rules(proxmox)["homelab-suite-utilities"] == (f"ct:{utilities}", "homelab,homelab-2:1", 1)
    assert rules(proxmox)["owners-pref"] == (f"ct:{OWNERS_CT}", "homelab-3", 0)
    assert stage.drift(run, proxmox) == []


def test_the_rollback_puts_the_suites_rules_back_as_the_run_found_them(cluster):
    """A run that changed a rule's priorities: the restore puts the recorded nodes back; the record survives the
    run lock's JSON (recover after a SIGKILL)."""
    _app, proxmox, inventory = cluster
    stage.apply(deploy(inventory), proxmox)
    found = rules(proxmox)
    run = deploy(cluster_inventory(monitoring={"nodes": {"homelab-3": 5}}))
    stage.record_previous(run, proxmox)
    assert stage.apply(run, proxmox) == ["update rule homelab-suite-monitoring: nodes=homelab-3:5"]
    recovered = deploy(inventory)
    onto_session(recovered, json.loads(json.dumps(to_record(run))))
    assert recovered.ha_rules_before == run.ha_rules_before
    assert stage.restore(recovered, proxmox) == ["update rule homelab-suite-monitoring: nodes=homelab:1,homelab-3:2"]
    assert rules(proxmox) == found


def test_a_resource_the_owner_already_placed_by_a_rule_fails_in_one_line(cluster):
    """PVE allows one node-affinity rule per resource: the suite's create is refused, the stage says which."""
    _app, proxmox, inventory = cluster
    utilities = inventory.host("utilities").vmid
    proxmox.api_call("owner's", "POST", "cluster/ha/resources", sid=f"ct:{utilities}")
    proxmox.api_call("owner's", "POST", "cluster/ha/rules", rule="mine", type="node-affinity",
                     resources=f"ct:{utilities}", nodes="homelab-2")
    with pytest.raises(ProxmoxError) as caught:
        stage.apply(deploy(inventory), proxmox)
    message = str(caught.value)
    assert "\n" not in message
    assert message == (f"create HA rule homelab-suite-utilities: PVE answered 400: Rule 'homelab-suite-utilities' is "
                       f"invalid. (resources: resource 'ct:{utilities}' is already used in another node affinity rule)")
    assert "mine" in rules(proxmox)
