"""The inventory of a cluster: nodes, each host's node, HA-managed hosts; bad input one line each at load."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from plugins.inventory import InventoryError, load_inventory

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab.yml"
CLUSTER = ROOT / "inventories" / "lab-cluster.yml"


def cluster_document() -> dict:
    """A fresh copy of the lab's cluster inventory, to break in a test."""
    return yaml.safe_load(CLUSTER.read_text())


def refused(tmp_path: Path, document: dict) -> str:
    """Load a broken inventory and give its one-line error."""
    path = tmp_path / "inv.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_the_lab_cluster_spreads_the_homelab_over_three_nodes():
    """lab-cluster.yml: three nodes, every host on one of them, monitoring and utilities HA-managed on shared."""
    inv = load_inventory(CLUSTER)
    assert inv.node_names == ["homelab", "homelab-2", "homelab-3"]
    assert [(n.name, n.address) for n in inv.nodes][1] == ("homelab-2", "198.18.0.2")
    assert {h.hostname: h.node for h in inv.hosts} == {"proxy": "homelab", "utilities": "homelab-2",
                                                       "ci-runner": "homelab", "monitoring": "homelab-3",
                                                       "app-demo": "homelab-2"}
    assert [(h.hostname, h.storage, h.ha.state) for h in inv.ha_hosts] == [
        ("utilities", "shared", "started"), ("monitoring", "shared", "started")]
    assert inv.proxmox.shared_storages == ["shared"]
    assert inv.terraform_vars()["containers"]["monitoring"]["node"] == "homelab-3"
    # Terraform creates each container on its storage: an HA host's rootfs on the shared one
    assert {name: c["storage"] for name, c in inv.terraform_vars()["containers"].items()} == {
        "proxy": "local", "utilities": "shared", "monitoring": "shared", "app-demo": "local"}


def test_the_lab_inventory_stays_one_node():
    """lab.yml declares no nodes: PVE's standalone node, every host on it, none HA-managed."""
    inv = load_inventory(LAB)
    assert inv.nodes == [] and inv.node_names == ["homelab"]
    assert {h.node for h in inv.hosts} == {"homelab"} and inv.ha_hosts == []
    assert {h.storage for h in inv.hosts} == {"local"}


def test_a_host_on_a_node_that_does_not_exist_is_one_line(tmp_path):
    """The host's key is named with the nodes it may name."""
    document = cluster_document()
    document["hosts"][0]["node"] = "pve"
    assert refused(tmp_path, document).endswith(
        "inv.yml: hosts[proxy].node: 'pve' is not a node of this inventory "
        "(expected one of nodes: homelab, homelab-2, homelab-3)")


def test_an_ha_host_on_storage_no_other_node_sees_is_one_line(tmp_path):
    """An HA-managed host on `local`: another node could not start it."""
    document = cluster_document()
    document["hosts"][1]["storage"] = "local"
    text = refused(tmp_path, document)
    assert "inv.yml: hosts[utilities].storage: an HA-managed host must live on a storage every node shares" in text
    assert text.endswith("(expected one of: shared; found 'local')")


def test_two_nodes_with_one_name_is_one_line(tmp_path):
    """Node names are unique (corosync's nodelist); so are their addresses."""
    document = cluster_document()
    document["nodes"][2]["name"] = "homelab-2"
    document["hosts"][3]["node"] = "homelab"
    for host in (document["hosts"][1], document["hosts"][3]):
        del host["ha"]["nodes"]  # their node affinity names homelab-3
    assert refused(tmp_path, document).endswith(
        "inv.yml: nodes[2].name: 'homelab-2' is already the name of nodes[1] (expected a unique name)")
    document = cluster_document()
    document["nodes"][1]["address"] = "198.18.0.1"
    assert "nodes[1].address: '198.18.0.1' is already the address of nodes[0]" in refused(tmp_path, document)


def test_the_default_node_is_one_of_the_nodes_and_ha_needs_a_known_state(tmp_path):
    """proxmox.node among nodes; an HA state PVE does not have is refused at its key."""
    document = cluster_document()
    document["proxmox"]["node"] = "pve"
    assert "proxmox.node: 'pve' is not a node of this inventory" in refused(tmp_path, document)
    document = cluster_document()
    document["hosts"][1]["ha"]["state"] = "running"
    assert "hosts[utilities].ha.state" in refused(tmp_path, document)


class Guests:
    """The cluster's guest list as the Proxmox client gives it."""

    def __init__(self, rows: dict[int, dict]):
        self.rows = rows

    def guests(self) -> dict[int, dict]:
        return self.rows


def test_preflight_follows_a_moved_host_and_still_refuses_a_wrong_one():
    """A host HA or a migration moved is recorded, not refused; a VMID holding another host still is."""
    from plugins.deploy.session import DeploySession
    from plugins.deploy.stages.preflight import vmid_problem

    inv = load_inventory(CLUSTER)
    rows = {h.vmid: {"vmid": h.vmid, "name": h.hostname, "node": h.node, "status": "running"} for h in inv.hosts}
    rows[240]["node"] = "homelab"  # monitoring, HA-managed, recovered on another node
    deployment = DeploySession(run_id="unit", inventory=inv, snapshot_name="deploy_unit")
    assert vmid_problem(deployment, Guests(rows)) == ""
    assert deployment.facts["moved_hosts"] == "monitoring (CT 240) runs on node 'homelab', inventory says 'homelab-3'"
    rows[250]["name"] = "web"
    assert vmid_problem(deployment, Guests(rows)).startswith("CT 250 is 'web', inventory says 'app-demo'")


def test_a_standalone_node_is_always_quorate_for_preflight():
    """PVE's standalone node has no cluster entry in /cluster/status: nothing to refuse, no node down."""
    from types import SimpleNamespace

    from plugins.deploy.session import DeploySession
    from plugins.deploy.stages.preflight import cluster_problem

    deployment = DeploySession(run_id="unit", inventory=load_inventory(LAB), snapshot_name="deploy_unit")
    standalone = SimpleNamespace(cluster_status=lambda: [{"type": "node", "name": "homelab", "online": 1, "local": 1}])
    assert cluster_problem(deployment, standalone) == "" and deployment.facts == {}


def test_lab_cluster_declares_node_affinity_for_its_ha_hosts():
    """utilities and monitoring prefer their own node first, then another one (non-strict: any node at last)."""
    inv = load_inventory(CLUSTER)
    assert {h.hostname: (h.ha.nodes, h.ha.strict) for h in inv.ha_hosts} == {
        "utilities": ({"homelab-2": 2, "homelab-3": 1}, False), "monitoring": ({"homelab-3": 2, "homelab": 1}, False)}
    assert inv.host("monitoring").ha.rule_nodes() == "homelab:1,homelab-3:2"


@pytest.mark.parametrize(("nodes", "strict", "expected"), [
    ({"pve": 1}, False, ("hosts[utilities].ha.nodes: 'pve' is not a node of this inventory "
                        "(expected one of nodes: homelab, homelab-2, homelab-3)")),
    ({"homelab-2": -1}, False, "hosts[utilities].ha.nodes.homelab-2"),
    ({"homelab-2": "high"}, False, "hosts[utilities].ha.nodes.homelab-2"),
    ({"homelab-2": 1, "homelab": 2}, False, ("hosts[utilities].ha.nodes: the host's node 'homelab-2' must be among "
                                            "its highest-priority nodes (found homelab at priority 2)")),
    ({}, True, "hosts[utilities].ha.strict: strict needs ha.nodes (expected the nodes it is restricted to)"),
])
def test_a_bad_node_affinity_is_one_line(tmp_path, nodes, strict, expected):
    """An unknown node, a priority that is not a non-negative integer, the host's own node not first, strict
    without nodes: one line at load, naming the key."""
    document = cluster_document()
    document["hosts"][1]["ha"]["nodes"] = nodes
    document["hosts"][1]["ha"]["strict"] = strict
    assert expected in refused(tmp_path, document)
