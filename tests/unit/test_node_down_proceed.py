"""A deploy that proceeds with a node down (deploy.node_down: proceed): the hosts on the down node are left out of
the run, named once in preflight and again in its result, and every stage skips them (a call about one answers 595).

The in-process emulator as a three-node cluster with lab-cluster.yml's hosts: proxy on homelab, utilities (HA, on
`shared`) and app-demo on homelab-2, monitoring on homelab-3; homelab-2 goes down.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from pve_inprocess import EmulatorCalls, in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from plugins.deploy.finish import run_result
from plugins.deploy.finish.rollback import rollback_targets
from plugins.deploy.session import DeploySession
from plugins.deploy.stages import ansible, firewall, health, host_states, preflight, snapshot, terraform
from plugins.inventory import load_inventory

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
CTS = {200: ("proxy", "homelab", {}), 201: ("utilities", "homelab-2", {"rootfs": "shared:8"}),
       240: ("monitoring", "homelab-3", {"rootfs": "shared:8"}), 250: ("app-demo", "homelab-2", {})}
LEFT_OUT = "app-demo (CT 250): left out: node homelab-2 down"


def cluster(tmp_path: Path, fence_delay: float) -> Emulator:
    """Three nodes, the four CTs running where lab-cluster.yml puts them, utilities and monitoring HA-managed."""
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", nodes=3, fence_delay=fence_delay)
    calls = EmulatorCalls(app)
    for vmid, (hostname, node, extra) in CTS.items():
        upid = calls.ok("POST", f"/nodes/{node}/lxc", vmid=vmid, hostname=hostname, ostemplate=TEMPLATE, start=1,
                        net0=f"name=eth0,bridge=labbr0,ip=198.18.0.{vmid}/24,gw=198.18.0.1", **extra)
        assert app.tasks.wait(upid, 10).exitstatus == "OK"
    for vmid in (201, 240):
        calls.ok("POST", "/cluster/ha/resources", sid=f"ct:{vmid}")
    return app


def session(policy: str = "proceed") -> DeploySession:
    inventory = load_inventory(ROOT / "inventories" / "lab-cluster.yml")
    inventory = inventory.model_copy(update={"deploy": inventory.deploy.model_copy(update={"node_down": policy})})
    return DeploySession(run_id="unit", inventory=inventory, snapshot_name="deploy_unit")


def preflight_of(deployment: DeploySession, proxmox) -> list[str]:
    """The preflight's checks that read the cluster, as the stage runs them; the refusals they give."""
    problems = [preflight.cluster_problem(deployment, proxmox), preflight.node_down_problem(deployment, proxmox),
                preflight.vmid_problem(deployment, proxmox)]
    return [p for p in problems if p] + host_states.read_host_states(deployment, proxmox)


@pytest.fixture
def recovered(tmp_path):
    """homelab-2 down, fenced at once: utilities recovered by the HA manager on another node, app-demo down with it."""
    app = cluster(tmp_path, fence_delay=0)
    app.cluster.set_online("homelab-2", False)
    app.crm.round()
    assert app.node_of(201) != "homelab-2" and app.running(201) and not app.running(250)
    return app


def test_proceed_leaves_the_plain_host_out_and_names_it_once_in_preflight(recovered):
    """app-demo is left out (its node down); utilities, running elsewhere, is not; refuse would leave nobody out."""
    deployment, proxmox = session(), in_process_client(recovered)
    assert preflight_of(deployment, proxmox) == []
    assert deployment.left_out == {250: "node homelab-2 down"}
    assert [h.hostname for h in deployment.hosts] == ["proxy", "utilities", "ci-runner", "monitoring"]
    details = deployment.stage("preflight").details
    assert [line for line in details if "app-demo" in line] == [f"  host      {LEFT_OUT}"], details
    refused = session("refuse")
    assert preflight_of(refused, proxmox) and refused.left_out == {}


def test_an_ha_host_not_recovered_yet_is_left_out_too(tmp_path):
    """Within the fence delay utilities is still on the down node: left out as well, saying HA is to recover it."""
    app = cluster(tmp_path, fence_delay=3600)
    app.cluster.set_online("homelab-2", False)
    deployment = session()
    assert preflight_of(deployment, in_process_client(app)) == []
    assert deployment.left_out == {201: "node homelab-2 down (the HA manager is to recover it on another node)",
                                   250: "node homelab-2 down"}


def test_start_snapshot_and_firewall_skip_the_host_left_out(recovered, monkeypatch):
    """proxy stopped is started, app-demo (stopped with its node) is not; every other CT of the rollback set gets
    its snapshot, app-demo none (its snapshot would answer 595); the firewall reads only the others."""
    calls = EmulatorCalls(recovered)
    assert recovered.tasks.wait(calls.ok("POST", "/nodes/homelab/lxc/200/status/stop"), 10).exitstatus == "OK"
    deployment, proxmox = session(), in_process_client(recovered)
    assert preflight_of(deployment, proxmox) == []
    assert host_states.start_stopped_hosts(deployment, proxmox) == []
    assert deployment.started == [200] and recovered.running(200)
    monkeypatch.setattr(snapshot, "containers_now", lambda inventory, hosts: {})  # no SSH in a unit test
    assert snapshot.take_snapshots(deployment, proxmox) == []
    assert sorted(deployment.snapshots) == [200, 201, 240]
    assert firewall.managed_cts(deployment, proxmox) == {200: "homelab", 201: recovered.node_of(201),
                                                         240: "homelab-3"}


def test_ansible_is_limited_to_the_rest_and_says_why(recovered, monkeypatch):
    """site.yml runs with --limit of every host but app-demo; app-demo's test is skipped with the reason."""
    deployment = session()
    preflight_of(deployment, in_process_client(recovered))
    seen = {}

    def run_playbook(playbook, inventory, **options):
        seen.update(options)
        return SimpleNamespace(recap=lambda: "", events=[])

    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    ansible.run_site(deployment, {}, check=False)
    assert seen["limit"] == "proxy,utilities,ci-runner,monitoring"
    assert ansible.not_checked(deployment) == {
        "app-demo": "left out: node homelab-2 down: not configured by this run"}


def test_health_does_not_judge_the_host_left_out(recovered, monkeypatch):
    """The wait covers the other hosts and their services only; app-demo and its services say why they are not
    judged."""
    deployment = session()
    preflight_of(deployment, in_process_client(recovered))
    waited = {}

    def wait(inventory, hosts, endpoints, **options):
        waited.update(hosts=[h.hostname for h in hosts], services={h.hostname for h, _ in endpoints})
        return {}, {}

    monkeypatch.setattr(health, "wait_hosts_and_services", wait)
    health.wait_until_healthy(deployment)
    assert "app-demo" not in waited["hosts"] and "proxy" in waited["hosts"]
    assert "app-demo" not in waited["services"] and waited["services"]
    app = deployment.inventory.host("app-demo")
    assert health.not_judged(deployment, app).startswith(f"{LEFT_OUT}: not judged (nothing on it can answer")
    assert health.not_judged(deployment, deployment.inventory.host("proxy")) == ""


def test_the_result_and_the_rollback_name_the_host_left_out(recovered):
    """deploy-result.md and result.json name it; the rollback set leaves it out, saying so."""
    deployment = session()
    preflight_of(deployment, in_process_client(recovered))
    deployment.snapshots = {200: "deploy_unit", 201: "deploy_unit", 240: "deploy_unit"}
    markdown = run_result.to_markdown(deployment)
    assert f"### Left out of this run\n- {LEFT_OUT}\n" in markdown, markdown
    assert run_result.to_dict(deployment)["left_out"] == {"app-demo": "node homelab-2 down"}
    targets, excluded = rollback_targets(deployment)
    assert sorted(targets) == [200, 201, 240]
    assert f"{LEFT_OUT}: not rolled back (this run did not touch it)" in excluded


def test_terraform_outputs_and_the_second_plan_are_of_the_hosts_deployed(recovered):
    """Outputs need not name a host left out (a targeted apply may not have written it); the second plan has the
    first plan's targets."""
    deployment = session()
    preflight_of(deployment, in_process_client(recovered))
    deployment.terraform_targets = ['terraform_data.container["proxy"]']
    outputs = {h.hostname: {"vmid": h.vmid, "ip": h.ip} for h in deployment.hosts if h.hostname != "ci-runner"}
    planned = []
    fake = SimpleNamespace(output=lambda: {"containers": outputs},
                           plan=lambda tfvars, targets: planned.append(targets) or SimpleNamespace(
                               changes=[], errored=False, summary=lambda: "0 to add, 0 to change, 0 to destroy"))
    assert terraform.outputs_problem(deployment, fake) == ""
    assert terraform.drift(deployment, fake, Path("vars.json")) == "" and planned == [deployment.terraform_targets]
    deployment.left_out.clear()
    assert "app-demo" in terraform.outputs_problem(deployment, fake)
