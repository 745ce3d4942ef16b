"""Preflight with a cluster node down: the node named with the hosts it takes down (where they run NOW), then the
inventory's deploy.node_down says refuse (the default: one line) or proceed (recorded, the run goes on).

The in-process emulator as a three-node cluster; lab-cluster.yml's hosts (utilities HA and app-demo on homelab-2).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pve_inprocess import EmulatorCalls, in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from plugins.deploy.session import DeploySession
from plugins.deploy.stages.preflight import node_down_problem
from plugins.inventory import InventoryError, load_inventory

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


@pytest.fixture
def app(tmp_path):
    return Emulator(tmp_path / "pve", MemHosts(), node="homelab", nodes=3, fence_delay=0)


def session(policy: str | None = None) -> DeploySession:
    inventory = load_inventory(ROOT / "inventories" / "lab-cluster.yml")
    if policy:
        inventory = inventory.model_copy(update={"deploy": inventory.deploy.model_copy(update={"node_down": policy})})
    return DeploySession(run_id="unit", inventory=inventory, snapshot_name="deploy_unit")


def test_every_node_up_says_nothing(app):
    """No node down: no problem, nothing recorded."""
    deployment = session("refuse")
    assert node_down_problem(deployment, in_process_client(app)) == ""
    assert "node_down_policy" not in deployment.facts


def test_refuse_names_the_node_and_what_it_takes_down_in_one_line(app):
    """refuse: which node, which hosts are down with it, which HA ones the manager recovers, where the policy is."""
    app.cluster.set_online("homelab-2", False)
    problem = node_down_problem(session("refuse"), in_process_client(app))
    assert problem == (
        "node homelab-2 is down (app-demo down with it; utilities to be recovered on another node by the HA "
        "manager); the cluster is quorate (2 of 3 nodes online); inventories/lab-cluster.yml: deploy.node_down is "
        "refuse: nothing deployed (proceed deploys on the nodes that are up)")
    assert "\n" not in problem


def test_proceed_records_the_same_and_goes_on(app):
    """proceed: no problem; the report's environment carries what is down."""
    app.cluster.set_online("homelab-3", False)
    deployment = session("proceed")
    assert node_down_problem(deployment, in_process_client(app)) == ""
    assert deployment.facts["node_down_policy"] == (
        "proceed: node homelab-3 is down (monitoring to be recovered on another node by the HA manager); the cluster "
        "is quorate (2 of 3 nodes online)")


def test_an_ha_host_already_recovered_is_not_counted_on_the_down_node(app):
    """Where hosts run NOW: utilities (CT 201), recovered by the HA manager, is on another node; only app-demo is lost."""
    calls = EmulatorCalls(app)
    upid = calls.ok("POST", "/nodes/homelab-2/lxc", vmid=201, ostemplate=TEMPLATE, rootfs="shared:8", start=1,
                    net0="name=eth0,bridge=labbr0,ip=198.18.0.201/24,gw=198.18.0.1")
    assert app.tasks.wait(upid, 10).exitstatus == "OK"
    calls.ok("POST", "/cluster/ha/resources", sid="ct:201")
    app.cluster.set_online("homelab-2", False)
    app.crm.round()  # fence delay 0: fenced and recovered in this round
    assert app.node_of(201) != "homelab-2" and app.running(201)
    problem = node_down_problem(session("refuse"), in_process_client(app))
    assert problem.startswith("node homelab-2 is down (app-demo down with it); the cluster is quorate")


def test_without_quorum_the_quorum_check_speaks_not_this_one(app):
    """Two of three down: cluster_problem refuses (no quorum); this check adds nothing."""
    app.cluster.set_online("homelab-2", False)
    app.cluster.set_online("homelab-3", False)
    assert node_down_problem(session("refuse"), in_process_client(app)) == ""


def test_the_policy_is_checked_at_load(tmp_path):
    """A value other than refuse or proceed: one line at load, naming the key and what is expected."""
    document = yaml.safe_load((ROOT / "inventories" / "lab-cluster.yml").read_text())
    document["deploy"]["node_down"] = "maybe"
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    text = str(caught.value)
    assert "\n" not in text and "deploy.node_down" in text and "refuse" in text and "proceed" in text, text


def test_the_health_states_name_a_host_lost_with_its_node(app):
    """What the health suite reads (one guest list, one cluster status): a host on a down node says so, in its line
    and in the node column; a host HA recovered elsewhere runs, its inventory node beside its new one."""
    from plugins.health.run import HealthRun
    from plugins.proxmox.power import host_states

    calls = EmulatorCalls(app)
    for vmid, extra in ((201, {"rootfs": "shared:8"}), (250, {})):
        upid = calls.ok("POST", "/nodes/homelab-2/lxc", vmid=vmid, ostemplate=TEMPLATE, start=1,
                        net0=f"name=eth0,bridge=labbr0,ip=198.18.0.{vmid}/24,gw=198.18.0.1", **extra)
        assert app.tasks.wait(upid, 10).exitstatus == "OK"
    calls.ok("POST", "/cluster/ha/resources", sid="ct:201")
    app.cluster.set_online("homelab-2", False)
    app.crm.round()
    inventory = session().inventory
    hosts = [inventory.host("utilities"), inventory.host("app-demo")]
    client = in_process_client(app)
    states = host_states(client, hosts, client.offline_nodes())
    assert states[250].line() == "app-demo (CT 250) is stopped: its node 'homelab-2' is down"
    assert states[201].status == "running" and not states[201].node_down
    run = HealthRun(inventory, hosts, "/nonexistent/known_hosts", {s.hostname: s for s in states.values()})
    try:
        assert run.node_word(hosts[1]) == "homelab-2 DOWN"
        assert run.node_word(hosts[0]) == f"{app.node_of(201)} (inventory: homelab-2)"
    finally:
        run.close()
