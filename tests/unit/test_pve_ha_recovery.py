"""The emulator's HA manager: a node that goes down loses its containers at once, is fenced after the fence
delay, and its HA containers on shared storage are recovered on the least loaded online node; non-HA ones stay
down with it; a node that comes back boots its onboot containers; a `started` HA CT that stopped is restarted.

Expected texts are pve-ha-manager's (NodeStatus.pm, Manager.pm, LRM.pm). The manager's clock is the test's.
"""

from __future__ import annotations

import time

import pytest
from clocks import AheadClock
from pve_inprocess import EmulatorCalls
from pve_memdriver import MemHosts

from lab.pve.app import Emulator

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"
NET = "name=eth0,bridge=labbr0,ip=198.18.0.{}/24,gw=198.18.0.1"
DELAY = 30.0


class Api(EmulatorCalls):
    """Calls the emulator in-process; creates running CTs."""

    def create(self, node: str, vmid: int, **extra):
        upid = self.ok("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, net0=NET.format(vmid - 800),
                       start=1, **extra)
        assert self.app.tasks.wait(upid, 10).exitstatus == "OK"

    def ha(self, vmid: int, **options):
        self.ok("POST", "/cluster/ha/resources", sid=f"ct:{vmid}", **options)

    def service(self, vmid: int) -> dict:
        return next(s for s in self.ok("GET", "/cluster/ha/status/current") if s["id"] == f"service:ct:{vmid}")

    def resource(self, vmid: int) -> dict:
        return next(r for r in self.ok("GET", "/cluster/resources", type="vm") if r["vmid"] == vmid)


@pytest.fixture
def api(tmp_path):
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True, nodes=3, fence_delay=DELAY)
    app.crm.clock = AheadClock()
    return Api(app)


@pytest.fixture
def spread(api):
    """On homelab-2: CT 900 HA on shared storage, CT 901 not HA (onboot); CT 902 HA on homelab-3 (a load there)."""
    api.create("homelab-2", 900, rootfs="shared:8")
    api.ha(900)
    api.create("homelab-2", 901, onboot=1)
    api.create("homelab-3", 902, rootfs="shared:8")
    api.ha(902)
    api.app.crm.round()
    return api


def later(api, seconds: float) -> None:
    """Move the manager's clock on and play a round."""
    api.app.crm.clock.ahead += seconds
    api.app.crm.round()


def test_a_node_down_loses_power_and_its_api_answers_as_a_dead_node(spread):
    """Its containers stop at once; its calls get the proxy's 595; its CTs are `unknown`-node-bound, not moved yet."""
    api = spread
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    assert not api.app.running(900) and not api.app.running(901)
    assert api.app.running(902)
    assert api("GET", "/nodes/homelab-2/lxc/900/status/current").status == 595
    assert api.resource(900)["node"] == "homelab-2" and api.resource(901)["node"] == "homelab-2"
    assert "node 'homelab-2': state changed from 'online' => 'unknown'" in api.app.crm.log
    lrm = next(s for s in api.ok("GET", "/cluster/ha/status/current") if s["id"] == "lrm:homelab-2")
    assert "old timestamp - dead?" in lrm["status"]


def test_before_the_fence_delay_nothing_is_recovered(spread):
    """PVE waits: a node may come back; recovering early would run one CT twice."""
    api = spread
    api.app.cluster.set_online("homelab-2", False)
    later(api, DELAY - 1)
    assert api.resource(900)["node"] == "homelab-2" and not api.app.running(900)


def test_after_the_fence_delay_ha_cts_recover_on_the_least_loaded_node(spread):
    """Fenced, then ct:900 is started on homelab (no HA service there; homelab-3 has ct:902); CT 901 stays down."""
    api = spread
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    later(api, DELAY)
    assert api.app.running(900) and api.resource(900)["node"] == "homelab"
    assert api.resource(900)["status"] == "running" and api.resource(900)["hastate"] == "started"
    service = api.service(900)
    assert (service["node"], service["state"]) == ("homelab", "started")
    assert not api.app.running(901) and api.resource(901)["node"] == "homelab-2"
    log = api.app.crm.log
    for line in ("node 'homelab-2': state changed from 'unknown' => 'fence'",
                 "service 'ct:900': state changed from 'started' to 'fence'",
                 "fencing: acknowledged - got agent lock for node 'homelab-2'",
                 "service 'ct:900': state changed from 'fence' to 'recovery'",
                 "recover service 'ct:900' from fenced node 'homelab-2' to node 'homelab'",
                 "service 'ct:900': state changed from 'recovery' to 'started'  (node = homelab)"):
        assert line in log
    assert log.index("service 'ct:900': state changed from 'started' to 'fence'") < log.index(
        "recover service 'ct:900' from fenced node 'homelab-2' to node 'homelab'")


def test_an_ha_ct_on_local_storage_cannot_be_recovered(api):
    """Its volume stayed on the fenced node's disk: the service ends in `error`, the CT stays down there."""
    api.create("homelab-2", 900)
    api.ha(900)
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    later(api, DELAY)
    assert api.resource(900)["node"] == "homelab-2" and not api.app.running(900)
    assert api.service(900)["state"] == "error"


def test_a_node_that_comes_back_boots_its_onboot_cts(spread):
    """lab node up: the node is online again, its non-HA onboot CT starts; the recovered HA CT stays where it is."""
    api = spread
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    later(api, DELAY)
    api.app.cluster.set_online("homelab-2", True)
    later(api, 1)
    assert api.app.running(901) and api.resource(901)["node"] == "homelab-2"
    assert api.resource(900)["node"] == "homelab"
    assert "node 'homelab-2': state changed from 'unknown' => 'online'" in api.app.crm.log
    assert api.ok("GET", "/nodes/homelab-2/lxc/901/status/current")["status"] == "running"


def test_a_node_back_within_the_delay_keeps_its_ha_cts(spread):
    """Back before the fence: no recovery, its HA CT is started again where it was (the LRM's start)."""
    api = spread
    api.app.cluster.set_online("homelab-2", False)
    later(api, 1)
    api.app.cluster.set_online("homelab-2", True)
    later(api, DELAY)
    assert api.app.running(900) and api.resource(900)["node"] == "homelab-2"
    assert not any("recover service" in line for line in api.app.crm.log)


def test_the_lrm_restarts_a_started_ha_ct_that_stopped(spread):
    """A `started` HA CT stopped behind the manager's back is started on its next round; a non-HA one is not."""
    api = spread
    api.app.driver.kill(900)
    api.app.driver.kill(901)
    api.app.crm.round()
    assert api.app.running(900) and not api.app.running(901)
    assert "starting service ct:900" in api.app.crm.log


def test_an_ignored_ha_ct_is_left_alone(spread):
    """`ignored`: out of the manager's hands, a stopped CT stays stopped."""
    api = spread
    api.ok("PUT", "/cluster/ha/resources/ct:900", state="ignored")
    api.app.driver.kill(900)
    api.app.crm.round()
    assert not api.app.running(900)


def test_the_servers_loop_plays_rounds_on_its_own(spread):
    """HaManager.run: rounds every period in a thread (the lab's server), until stop()."""
    api = spread
    api.app.driver.kill(900)
    thread = api.app.crm.run(0.02)
    try:
        deadline = time.monotonic() + 5
        while not api.app.running(900) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        api.app.crm.stop()
        thread.join(2)
    assert api.app.running(900) and not thread.is_alive()


def restarted(api) -> Api:
    """A new emulator on the same state directory and containers (the lab's server restarted)."""
    app = Emulator(api.app.state_dir, api.app.driver, node="homelab", verify_results=True, fence_delay=DELAY)
    app.crm.clock = api.app.crm.clock
    return Api(app)


def test_the_manager_status_survives_a_restart_of_the_emulator(api):
    """A service in `error` and a node's state are written after each round (manager_status.json, PVE's
    /etc/pve/ha/manager_status): a restarted emulator keeps the error, so its node coming back does not start
    the CT behind the admin's back; `disabled` still clears it."""
    api.create("homelab-2", 900)
    api.ha(900)
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    later(api, DELAY)
    assert api.service(900)["state"] == "error"

    again = restarted(api)
    assert again.service(900)["state"] == "error"
    assert again.app.crm.node_state("homelab-2") == "unknown"
    again.app.cluster.set_online("homelab-2", True)
    later(again, 1)
    assert "node 'homelab-2': state changed from 'unknown' => 'online'" in again.app.crm.log
    assert again.service(900)["state"] == "error" and not again.app.running(900)
    again.ok("PUT", "/cluster/ha/resources/ct:900", state="disabled")
    later(again, 1)
    assert again.service(900)["state"] == "stopped"
    assert restarted(again).service(900)["state"] == "stopped"


def test_a_torn_manager_status_is_ignored_with_a_line(api):
    """A manager_status.json that does not parse: the restarted manager starts fresh and says which file it ignored."""
    api.app.crm.status_path.write_text('{"node_status": {"homelab-2": ')
    again = restarted(api)
    assert again.app.crm.nodes == {} and again.app.crm.services == {}
    assert any(line.startswith(f"ignoring {again.app.crm.status_path}: JSONDecodeError") for line in again.app.crm.log)
