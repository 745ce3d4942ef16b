"""A node of a 3-node emulated cluster goes down on the real lab (LXC containers): its containers really stop, its
HA container on shared storage really runs again on another node after the fence delay, the other stays down
until the node comes back and boots it (onboot). HA migrate and relocate requests move a real container (stopped,
moved, started by the emulated CRM), and a resource-affinity rule keeps two of them apart.

A few seconds of lab time (docs/reference/figures.md): it runs with the other lab tests, in CI too.
"""

from __future__ import annotations

import time

import pytest
from proxmoxer.tools import Tasks

from lab.pve.cluster import Cluster

pytest_plugins = ["pve_fixtures"]
pytestmark = [pytest.mark.lab, pytest.mark.e2e]

TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
HA_CT, PLAIN_CT, APART_CT = 970, 971, 972
FENCE_DELAY = 3.0


def net0(vmid: int) -> str:
    """A lab net0 for a test vmid (198.18.0.<vmid-800>)."""
    return f"name=eth0,bridge=labbr0,ip=198.18.0.{vmid - 800}/24,gw=198.18.0.1"


def until(what: str, ok, timeout: float):
    """Poll ok() until it is true; fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s")
        time.sleep(0.2)


@pytest.fixture
def cluster_lab(lab_hosts, tmp_path):
    """An emulator of 3 nodes (fence delay 3 s, a round each 0.5 s) on the real lab; its CTs destroyed after."""
    from pve_fixtures import serve_emulator

    state = tmp_path / "pve"
    state.mkdir()
    with serve_emulator(state, "--nodes", "3", "--fence-delay", str(FENCE_DELAY), "--ha-round", "0.5") as pve:
        try:
            yield pve, state
        finally:
            for vmid in (HA_CT, PLAIN_CT, APART_CT):
                if lab_hosts.exists(vmid):
                    lab_hosts.destroy(vmid)


def test_a_node_down_stops_its_cts_and_its_ha_ct_comes_back_elsewhere(cluster_lab, lab_hosts):
    """homelab-2 down: both CTs stop (lxc), the HA one runs on another node within the fence delay plus its start;
    homelab-2 up: the other one (onboot) runs again there."""
    pve, state = cluster_lab
    prox = pve.api()
    for vmid, extra in ((HA_CT, {"rootfs": "shared:8"}), (PLAIN_CT, {"onboot": 1})):
        upid = prox.nodes("homelab-2").lxc.post(vmid=vmid, ostemplate=TEMPLATE, hostname=f"t{vmid}", net0=net0(vmid),
                                                memory=128, start=1, **extra)
        assert Tasks.blocking_status(prox, upid, timeout=180, polling_interval=0.2)["exitstatus"] == "OK"
    prox.cluster.ha.resources.post(sid=f"ct:{HA_CT}", state="started")
    assert lab_hosts.status(HA_CT) == lab_hosts.status(PLAIN_CT) == "running"

    went_down = time.monotonic()
    Cluster(state / "state", "homelab").set_online("homelab-2", False)  # what `lab node down homelab-2` does
    until("both CTs of homelab-2 stopped", lambda: lab_hosts.status(HA_CT) == lab_hosts.status(PLAIN_CT) == "stopped",
          5)

    def recovered() -> bool:
        row = next(r for r in prox.cluster.resources.get(type="vm") if r["vmid"] == HA_CT)
        return row["node"] != "homelab-2" and row["status"] == "running"

    until("the HA CT running on another node", recovered, FENCE_DELAY + 30)
    print(f"HA CT back after {time.monotonic() - went_down:.1f} s (fence delay {FENCE_DELAY:g} s)")
    assert lab_hosts.status(HA_CT) == "running" and lab_hosts.status(PLAIN_CT) == "stopped"
    service = next(s for s in prox.cluster.ha.status.current.get() if s["id"] == f"service:ct:{HA_CT}")
    assert service["state"] == "started" and service["node"] != "homelab-2"

    Cluster(state / "state", "homelab").set_online("homelab-2", True)
    until("the onboot CT booted with its node", lambda: lab_hosts.status(PLAIN_CT) == "running", 30)
    assert prox.nodes("homelab-2").lxc(PLAIN_CT).status.current.get()["status"] == "running"


def test_ha_relocate_and_migrate_move_a_real_ct_and_a_negative_rule_keeps_two_apart(cluster_lab, lab_hosts):
    """Two HA CTs kept apart (homelab-2, homelab-3): a CT migrate onto the other's node fails as ha-manager fails;
    relocate to homelab and migrate back to homelab-2 are played by the CRM on the lab's containers (stopped, moved,
    running again); manager_status follows."""
    pve, _state = cluster_lab
    prox = pve.api()
    for vmid, node in ((HA_CT, "homelab-2"), (APART_CT, "homelab-3")):
        upid = prox.nodes(node).lxc.post(vmid=vmid, ostemplate=TEMPLATE, hostname=f"t{vmid}", net0=net0(vmid),
                                         memory=128, rootfs="shared:8", start=1)
        assert Tasks.blocking_status(prox, upid, timeout=180, polling_interval=0.2)["exitstatus"] == "OK"
        prox.cluster.ha.resources.post(sid=f"ct:{vmid}", state="started")
    prox.cluster.ha.rules.post(rule="apart", type="resource-affinity", resources=f"ct:{HA_CT},ct:{APART_CT}",
                               affinity="negative")

    def where(vmid: int) -> tuple[str, str]:
        row = next(r for r in prox.cluster.resources.get(type="vm") if r["vmid"] == vmid)
        return row["node"], row["status"]

    def managed() -> bool:
        services = prox.cluster.ha.status.manager_status.get()["manager_status"].get("service_status", {})
        return {f"ct:{HA_CT}", f"ct:{APART_CT}"} <= set(services)

    # what the API says about a move comes from the manager status, as in PVE: wait for the CRM to take both
    until("both services in the manager status", managed, 10)
    upid = prox.nodes("homelab-2").lxc(HA_CT).migrate.post(target="homelab-3", restart=1)
    status = Tasks.blocking_status(prox, upid, timeout=30, polling_interval=0.2)
    assert status["exitstatus"] == f"command 'ha-manager migrate ct:{HA_CT} homelab-3' failed: exit code 255"
    line = f"crm command 'migrate ct:{HA_CT} homelab-3' error - service 'ct:{APART_CT}' on node 'homelab-3' in " \
           f"negative affinity with service 'ct:{HA_CT}'"
    until("the CRM refusing the queued request", lambda: line in pve.log.read_text(), 10)
    assert where(HA_CT) == ("homelab-2", "running")

    answer = prox.cluster.ha.resources(f"ct:{HA_CT}").relocate.post(node="homelab")
    assert answer == {"sid": f"ct:{HA_CT}", "requested-node": "homelab"}
    until("the relocated CT running on homelab", lambda: where(HA_CT) == ("homelab", "running"), 60)
    assert lab_hosts.status(HA_CT) == "running"
    assert "relocate service 'ct:970' to node 'homelab'" in pve.log.read_text()

    upid = prox.nodes("homelab").lxc(HA_CT).migrate.post(target="homelab-2", restart=1)
    assert Tasks.blocking_status(prox, upid, timeout=30, polling_interval=0.2)["exitstatus"] == "OK"
    until("the migrated CT running on homelab-2", lambda: where(HA_CT) == ("homelab-2", "running"), 60)
    assert lab_hosts.status(HA_CT) == "running" and where(APART_CT) == ("homelab-3", "running")
    ms = prox.cluster.ha.status.manager_status.get()["manager_status"]
    assert ms["service_status"][f"ct:{HA_CT}"]["node"] == "homelab-2"
    assert ms["node_status"] == {"homelab": "online", "homelab-2": "online", "homelab-3": "online"}
