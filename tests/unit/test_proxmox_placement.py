"""The suite's Proxmox client follows a container to the node it runs on now (from /cluster/resources), whatever
node the inventory assumed: proxmoxer over HTTPS to the emulator (three nodes, in-process, in-memory hosts)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from proxmoxer import ProxmoxAPI
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from lab.pve.auth import FULL_TOKEN_ID, load_tokens
from lab.pve.ca import ensure_ca
from lab.pve.server import PveServer
from plugins.proxmox.client import ProxmoxClient, ProxmoxError

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


@pytest.fixture
def cluster(tmp_path):
    """A three-node emulator served on 127.0.0.1 (a free port), and a client for it; CT 900 runs on homelab-2
    after a migration the inventory knows nothing of."""
    state = tmp_path / "pve"
    ca_file, cert, key = ensure_ca(state)
    app = Emulator(state, MemHosts(), node="homelab", nodes=3)
    server = PveServer(("127.0.0.1", 0), app, cert, key, auth_delay=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    port = server.server_address[1]
    user, _, name = FULL_TOKEN_ID.partition("!")
    secret = load_tokens(state)[FULL_TOKEN_ID]
    client = ProxmoxClient(lambda: ProxmoxAPI("127.0.0.1", port=port, user=user, token_name=name, token_value=secret,
                                              verify_ssl=str(ca_file), timeout=10),
                           url=f"https://127.0.0.1:{port}", token_id=FULL_TOKEN_ID, secret_env="PVE_TOKEN_SECRET",
                           verify=str(ca_file), task_timeout=10, poll_interval=0.02)
    upid = client.api_call("create CT 900", "POST", "nodes/homelab/lxc", vmid=900, ostemplate=TEMPLATE,
                           net0="name=eth0,bridge=labbr0,ip=198.18.0.100/24,gw=198.18.0.1", start=1)
    client.wait_task("homelab", upid)
    client.migrate("homelab", 900, "homelab-2", restart=True)
    client.app = app
    yield client
    server.shutdown()
    server.server_close()


def test_placement_reads_where_each_ct_runs_now(cluster):
    """/cluster/resources gives the migrated CT's new node."""
    assert cluster.placement() == {900: "homelab-2"}
    assert cluster.current_node(900, "homelab") == "homelab-2"
    assert cluster.current_node(901, "homelab") == "homelab"  # not in the cluster: the inventory's node


def test_every_per_container_call_follows_the_ct(cluster):
    """Status, snapshot, rollback, snapshot list, stop and start asked with the inventory's node reach the CT."""
    assert cluster.container_status("homelab", 900)["status"] == "running"
    assert cluster.snapshot("homelab", 900, "deploy_1").node == "homelab-2"
    assert cluster.has_snapshot("homelab", 900, "deploy_1")
    assert cluster.rollback("homelab", 900, "deploy_1", start=True).exitstatus == "OK"
    assert cluster.stop("homelab", 900).node == "homelab-2"
    assert cluster.start("homelab", 900).exitstatus == "OK"
    assert cluster.delete_snapshot("homelab", 900, "deploy_1").exitstatus == "OK"
    assert cluster.container_exists("homelab", 900)


def test_fanned_out_calls_follow_each_ct(cluster):
    """snapshot_many and rollback_many, given the inventory's node, run each task on the CT's node."""
    taken = cluster.snapshot_many("homelab", {900: "deploy_2"})
    assert taken[900].node == "homelab-2"
    rolled = cluster.rollback_many("homelab", {900: "deploy_2"})
    assert rolled[900].exitstatus == "OK" and rolled[900].upid.startswith("UPID:homelab-2:")


def test_without_the_lookup_the_old_node_does_not_have_it(cluster):
    """What the lookup saves the suite from: the inventory's node answers PVE's missing-config error."""
    with pytest.raises(ProxmoxError, match=r"nodes/homelab/lxc/900\.conf' does not exist"):
        cluster.container_status("homelab", 900, resolve=False)


def test_a_call_to_a_down_node_is_explained(cluster):
    """The CT's node is down: the 595 pveproxy answers becomes one line saying the node cannot be reached."""
    cluster.app.cluster.set_online("homelab-2", False)
    with pytest.raises(ProxmoxError) as caught:
        cluster.container_status("homelab", 900)
    assert str(caught.value) == (f"read status of CT 900 on node homelab-2: {cluster.url} cannot reach that node "
                                 "(595 No route to host): the node is down or cut off from the cluster")


def test_host_states_find_a_migrated_host_on_its_new_node(cluster):
    """The preflight's and the health suite's host states come from the cluster's guest list: the moved CT is
    running on homelab-2, not missing from the inventory's node."""
    from types import SimpleNamespace

    from plugins.proxmox.power import host_states

    host = SimpleNamespace(hostname="t900", vmid=900, node="homelab")
    gone = SimpleNamespace(hostname="t901", vmid=901, node="homelab")
    states = host_states(cluster, [host, gone])
    assert (states[900].node, states[900].status) == ("homelab-2", "running")
    assert states[901].line() == "t901 (CT 901) is missing: node 'homelab' has no CT 901"


def test_preflight_says_which_nodes_are_down_and_refuses_without_quorum(cluster):
    """One node down: recorded with the hosts it holds, the deploy goes on; two down: no quorum, refused."""
    from plugins.deploy.session import DeploySession
    from plugins.deploy.stages.preflight import cluster_problem
    from plugins.inventory import load_inventory

    inventory = load_inventory(ROOT / "inventories" / "lab-cluster.yml")
    deployment = DeploySession(run_id="unit", inventory=inventory, snapshot_name="deploy_unit")
    assert cluster_problem(deployment, cluster) == "" and "nodes_down" not in deployment.facts
    cluster.app.cluster.set_online("homelab-3", False)
    assert cluster_problem(deployment, cluster) == ""
    assert deployment.facts["nodes_down"] == "homelab-3: monitoring (HA)"
    cluster.app.cluster.set_online("homelab-2", False)
    assert cluster_problem(deployment, cluster) == (
        "cluster 'lab' has no quorum: 1 of 3 nodes online (down: homelab-2, homelab-3); Proxmox VE refuses every "
        "write (cluster not ready - no quorum?)")
    assert deployment.facts["nodes_down"] == "homelab-2: utilities (HA), app-demo; homelab-3: monitoring (HA)"
