"""The declared hosts' states before a deploy touches them: preflight's lines, the locked refusal, the start stage.

PVE is a fake client answering the container list and start tasks the way plugins/proxmox/client.py gives them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from plugins.deploy.session import DeploySession
from plugins.deploy.stages import host_states
from plugins.inventory import load_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.power import HostState
from plugins.proxmox.power import host_states as read_states
from plugins.proxmox.tasks import TaskFailed

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = load_inventory(ROOT / "inventories" / "lab.yml")
RUNNING = {h.vmid: {"vmid": h.vmid, "name": h.hostname, "status": "running"} for h in LAB.hosts}


class FakeProxmox:
    """The container list of node homelab, and start tasks that succeed unless told otherwise."""

    def __init__(self, rows: dict[int, dict], failing: dict[int, Exception] | None = None):
        self.rows, self.failing, self.started, self.listed = rows, failing or {}, [], []

    def containers(self, node: str) -> dict[int, dict]:
        self.listed.append(node)
        return {vmid: dict(row) for vmid, row in self.rows.items()}

    def guests(self) -> dict[int, dict]:
        self.listed.append("cluster")
        return {vmid: {"node": "homelab", **row} for vmid, row in self.rows.items()}

    def start_many(self, node: str, vmids):
        out = {}
        for vmid in vmids:
            self.started.append((node, vmid))
            out[vmid] = self.failing.get(vmid, "OK")
        return out


def lab_with(**changes: dict) -> dict[int, dict]:
    """The lab's container list with some hosts changed (by hostname; None removes one)."""
    rows = {vmid: dict(row) for vmid, row in RUNNING.items()}
    for hostname, change in changes.items():
        vmid = LAB.host(hostname.replace("_", "-")).vmid
        if change is None:
            rows.pop(vmid)
        else:
            rows[vmid].update(change)
    return rows


def deployment(plan_only: bool = False) -> DeploySession:
    return DeploySession(run_id="unit", inventory=LAB, plan_only=plan_only, snapshot_name="deploy_unit")


def test_one_list_call_gives_every_hosts_state():
    """Each declared host is running, stopped or missing, with its lock; one call for the whole cluster."""
    pve = FakeProxmox(lab_with(proxy={"status": "stopped"}, app_demo=None, utilities={"lock": "backup"}))
    states = read_states(pve, LAB.hosts)
    assert pve.listed == ["cluster"]
    assert states[200].status == "stopped" and states[200].down and states[200].exists
    assert states[250].status == "missing" and states[250].down and not states[250].exists
    assert states[201].word == "locked" and not states[201].down
    assert states[210].word == "running" and not states[210].down


@pytest.mark.parametrize(("state", "line"), [
    (HostState("proxy", 200, "homelab", "stopped"), "proxy (CT 200) is stopped"),
    (HostState("app-demo", 250, "homelab", "missing"), "app-demo (CT 250) is missing: node 'homelab' has no CT 250"),
    (HostState("proxy", 200, "homelab", "running", "backup"),
     "proxy (CT 200) is locked (backup) on node 'homelab', status running"),
])
def test_a_state_is_one_line_naming_the_host_and_its_ct(state, line):
    """`proxy (CT 200) is stopped`: the host, its CT, what PVE says."""
    assert state.line() == line


def test_preflight_names_each_stopped_and_missing_host_on_its_own_line_and_passes():
    """A stopped host is started by the deploy, a missing one created by Terraform: named, not refused."""
    deploy = deployment()
    refusals = host_states.read_host_states(deploy, FakeProxmox(lab_with(proxy={"status": "stopped"}, app_demo=None)))
    assert refusals == []
    assert deploy.stage("preflight").details == [
        "  host      proxy (CT 200) is stopped: the deploy starts it",
        "  host      app-demo (CT 250) is missing: node 'homelab' has no CT 250: Terraform's plan creates it",
    ]
    assert set(deploy.host_states) == {h.vmid for h in LAB.hosts}


def test_plan_only_says_what_a_deploy_would_start():
    """--plan-only starts nothing, and says so."""
    deploy = deployment(plan_only=True)
    host_states.read_host_states(deploy, FakeProxmox(lab_with(monitoring={"status": "stopped"})))
    assert deploy.stage("preflight").details == [
        "  host      monitoring (CT 240) is stopped: a deploy would start it (--plan-only starts nothing)"]


def test_a_locked_host_refuses_the_run_in_one_line_naming_the_lock():
    """A lock (a backup, a snapshot) would fail a task half-way: preflight refuses, before any side effect."""
    deploy = deployment()
    pve = FakeProxmox(lab_with(utilities={"lock": "backup", "status": "running"}))
    refusals = host_states.read_host_states(deploy, pve)
    assert len(refusals) == 1 and "\n" not in refusals[0]
    assert refusals[0].startswith("utilities (CT 201) is locked (backup)")
    assert "pct unlock 201" in refusals[0] and refusals[0].endswith("refusing the run")
    assert pve.started == []


def test_every_running_host_says_nothing():
    """A homelab that is up adds no line."""
    deploy = deployment()
    assert host_states.read_host_states(deploy, FakeProxmox(lab_with())) == []
    assert deploy.stage("preflight").details == []


def test_the_start_stage_starts_the_stopped_hosts_only_and_says_so():
    """Stopped hosts are started (by the client's tasks); running and missing ones are left alone."""
    deploy = deployment()
    pve = FakeProxmox(lab_with(proxy={"status": "stopped"}, ci_runner={"status": "stopped"}, app_demo=None))
    host_states.read_host_states(deploy, pve)
    assert host_states.start_stopped_hosts(deploy, pve) == []
    assert sorted(pve.started) == [("homelab", 200), ("homelab", 210)]
    assert sorted(deploy.started) == [200, 210]
    record = deploy.stage("start")
    assert "  started   proxy (CT 200) on node 'homelab': it was stopped" in record.details
    assert record.summary.startswith("started ") and "proxy (CT 200)" in record.summary


def test_a_start_task_that_fails_is_named_and_the_host_not_counted_as_started():
    """A task whose exitstatus is not OK (TaskFailed from the client) is a failure naming the host."""
    deploy = deployment()
    failed = TaskFailed("task vzstart 200 on homelab failed: startup for container '200' failed", upid="UPID:x",
                        exitstatus="startup for container '200' failed", log=[])
    pve = FakeProxmox(lab_with(proxy={"status": "stopped"}), failing={200: failed})
    host_states.read_host_states(deploy, pve)
    failures = host_states.start_stopped_hosts(deploy, pve)
    assert failures == [("proxy (CT 200) did not start: task vzstart 200 on homelab failed: startup for container "
                        "'200' failed")]
    assert deploy.started == []


class TaskApi:
    """proxmoxer's call shape for start and task status: each start's task ends with the exitstatus given."""

    def __init__(self, exitstatus: dict[int, str], path: tuple = ()):
        self.exitstatus, self.path = exitstatus, path

    def __getattr__(self, name: str) -> TaskApi:
        return TaskApi(self.exitstatus, (*self.path, name))

    def __call__(self, *args) -> TaskApi:
        return TaskApi(self.exitstatus, (*self.path, *args))

    def post(self, **_):
        vmid = self.path[3]
        return f"UPID:homelab:0000CD0E:000EFA04:6B092F8E:vzstart:{vmid}:root@pam!lab:"

    def get(self, **_):
        if self.path[-1] == "log":
            return [{"n": 1, "t": "starting"}]
        if self.path == ("cluster", "resources"):  # where each CT runs now: on the node the inventory gave
            return [{"vmid": vmid, "node": "homelab"} for vmid in self.exitstatus]
        vmid = int(self.path[3].split(":")[6])
        return {"status": "stopped", "exitstatus": self.exitstatus[vmid]}


def test_the_clients_start_many_checks_each_tasks_exitstatus():
    """start_many waits for every start task and keeps, per container, its TaskResult or TaskFailed."""
    api = TaskApi({200: "OK", 201: "startup for container '201' failed"})
    client = ProxmoxClient(lambda: api, url="https://127.0.0.1:8006", token_id="root@pam!lab",
                           secret_env="PVE_TOKEN_SECRET", poll_interval=0.01)
    outcomes = client.start_many("homelab", [200, 201])
    assert outcomes[200].exitstatus == "OK"
    assert isinstance(outcomes[201], TaskFailed) and outcomes[201].exitstatus == "startup for container '201' failed"


def test_nothing_stopped_nothing_started():
    """Every host running: the start stage starts nothing and says every host was running."""
    deploy = deployment()
    pve = FakeProxmox(lab_with())
    host_states.read_host_states(deploy, pve)
    assert host_states.start_stopped_hosts(deploy, pve) == []
    assert pve.started == [] and deploy.stage("start").summary == "every declared host that exists was running"
    assert host_states.started_hosts_problem(deploy) == ""


def test_a_plans_check_mode_leaves_out_the_hosts_it_cannot_reach():
    """--plan-only with proxy stopped and app-demo missing: Ansible's check mode is limited to the others, and
    those two say why; a deploy (which starts them first) leaves nobody out."""
    from plugins.deploy.stages.ansible import not_checked

    pve = FakeProxmox(lab_with(proxy={"status": "stopped"}, app_demo=None))
    plan = deployment(plan_only=True)
    host_states.read_host_states(plan, pve)
    assert not_checked(plan) == {
        "proxy": "proxy (CT 200) is stopped: check mode cannot reach it (a deploy starts or creates it first)",
        "app-demo": "app-demo (CT 250) is missing: node 'homelab' has no CT 250: check mode cannot reach it (a deploy "
                    "starts or creates it first)"}
    deploy = deployment()
    host_states.read_host_states(deploy, pve)
    assert not_checked(deploy) == {}
