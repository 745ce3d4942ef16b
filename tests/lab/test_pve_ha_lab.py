"""A node of a 3-node emulated cluster goes down on the real lab (LXC containers): its containers really stop, its
HA container on shared storage really runs again on another node after the fence delay, the other stays down
until the node comes back and boots it (onboot).

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
HA_CT, PLAIN_CT = 970, 971
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
            for vmid in (HA_CT, PLAIN_CT):
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
