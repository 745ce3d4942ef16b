"""Moving an HA service on request: `POST /cluster/ha/resources/{sid}/migrate|relocate` queue a CRM command that the
emulated CRM plays on its next round (a CT's migrate is a relocate: stop, move, start), a CT's own migrate asks the
HA manager for an HA-managed CT, and `GET /cluster/ha/status/manager_status` serves the CRM's state.

Expected texts are pve-ha-manager's (API2/HA/Resources.pm, Config.pm, Manager.pm, CLI/ha_manager.pm) and
pve-container's (API2/LXC.pm migrate_vm), written here.
"""

from __future__ import annotations

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
    """Calls the emulator in-process."""

    def create(self, node: str, vmid: int, start: int = 1):
        upid = self.ok("POST", f"/nodes/{node}/lxc", vmid=vmid, ostemplate=TEMPLATE, net0=NET.format(vmid - 800),
                       rootfs="shared:8", start=start)
        assert self.app.tasks.wait(upid, 10).exitstatus == "OK"

    def node(self, vmid: int) -> str:
        return next(r for r in self.ok("GET", "/cluster/resources", type="vm") if r["vmid"] == vmid)["node"]

    def fail(self, method: str, path: str, **params) -> tuple[int, str]:
        reply = self(method, path, **params)
        assert reply.status != 200, reply.body
        return reply.status, reply.reason


@pytest.fixture
def api(tmp_path):
    """A 3-node emulator: CT 900 (HA, shared, running) on homelab-2, one round played."""
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", verify_results=True, nodes=3, fence_delay=DELAY)
    app.crm.clock = AheadClock()
    api = Api(app)
    api.create("homelab-2", 900)
    api.ok("POST", "/cluster/ha/resources", sid="ct:900")
    app.crm.round()
    return api


def test_relocate_is_queued_then_played_by_the_crm_stop_move_start(api):
    """The call answers at once with the request; the next round stops and moves the CT, the one after starts it."""
    answer = api.ok("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab")
    assert answer == {"sid": "ct:900", "requested-node": "homelab"}
    assert api.node(900) == "homelab-2" and api.app.running(900)  # only queued
    assert api.app.crm.commands_path.read_text() == "relocate ct:900 homelab\n"
    api.app.crm.round()
    log = api.app.crm.log
    for line in ("got crm command: relocate ct:900 homelab", "relocate service 'ct:900' to node 'homelab'",
                 "service 'ct:900': state changed from 'started' to 'relocate'  (node = homelab-2, target = homelab)",
                 "service 'ct:900': state changed from 'relocate' to 'started'  (node = homelab)"):
        assert line in log, line
    assert api.node(900) == "homelab" and not api.app.running(900)
    assert not api.app.crm.commands_path.exists()  # the CRM took the command
    api.app.crm.round()
    assert api.app.running(900) and "starting service ct:900" in api.app.crm.log


def test_migrate_by_bare_vmid_is_a_ct_relocation_in_the_migrate_state(api):
    """`900` resolves to ct:900; a CT cannot live-migrate, so the CRM's `migrate` state relocates it."""
    assert api.ok("POST", "/cluster/ha/resources/900/migrate", node="homelab-3") == {
        "sid": "ct:900", "requested-node": "homelab-3"}
    api.app.crm.round()
    assert "migrate service 'ct:900' to node 'homelab-3'" in api.app.crm.log
    assert "service 'ct:900': state changed from 'started' to 'migrate'  (node = homelab-2, target = homelab-3)" \
        in api.app.crm.log
    api.app.crm.round()
    assert api.node(900) == "homelab-3" and api.app.running(900)


def test_a_stopped_service_moves_its_config_only(api):
    """Requested `stopped`: the command moves it (migrate, then request_stop, stopped) and nothing starts it."""
    api.ok("PUT", "/cluster/ha/resources/ct:900", state="stopped")
    api.app.crm.round()
    api.ok("POST", "/cluster/ha/resources/ct:900/migrate", node="homelab")
    api.app.crm.round()
    api.app.crm.round()
    assert api.node(900) == "homelab" and not api.app.running(900)
    assert "service 'ct:900': state changed from 'migrate' to 'request_stop'  (node = homelab)" in api.app.crm.log
    assert api.app.crm.services["ct:900"]["state"] == "stopped"


def test_pves_errors_for_an_unknown_unmanaged_or_failed_service(api):
    """parse_sid, service_is_ha_managed and check_service_state refuse before anything is queued."""
    path = "/cluster/ha/resources/{}/migrate"
    assert api.fail("POST", path.format("999"), node="homelab") == (
        500, "unable to detect SID from VMID - VM/CT 999 does not exist")
    assert api.fail("POST", path.format("ct:999"), node="homelab") == (500, "resource 'ct:999' is not HA managed")
    api.ok("PUT", "/cluster/ha/resources/ct:900", state="ignored")
    assert api.fail("POST", path.format("ct:900"), node="homelab") == (500, "resource 'ct:900' is not HA managed")
    api.ok("PUT", "/cluster/ha/resources/ct:900", state="started")
    api.app.crm.round()
    api.app.crm.services["ct:900"]["state"] = "error"  # as the relocate policy leaves it (test_pve_ha_placement)
    assert api.fail("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab") == (
        500, "service 'ct:900' in error state, must be disabled and fixed first")
    assert not api.app.crm.commands_path.exists()


def test_an_unknown_or_offline_target_is_the_crms_error_not_the_apis(api):
    """Resources.pm does not check the target: the call answers, the CRM logs why it drops the command."""
    api.ok("POST", "/cluster/ha/resources/ct:900/migrate", node="nowhere")
    api.app.cluster.set_online("homelab-3", False)
    api.ok("POST", "/cluster/ha/resources/ct:900/migrate", node="homelab-3")
    api.ok("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab-2")
    api.app.crm.round()
    log = api.app.crm.log
    assert "crm command error - node not online: migrate ct:900 nowhere" in log
    assert "crm command error - node not online: migrate ct:900 homelab-3" in log
    assert "ignore crm command - service already on target node: relocate ct:900 homelab-2" in log
    assert api.node(900) == "homelab-2" and api.app.running(900)


def test_a_cts_migrate_asks_the_ha_manager_and_fails_as_ha_manager_fails(api):
    """pve-container runs `ha-manager migrate` in an hamigrate task: a service in error fails the command."""
    upid = api.ok("POST", "/nodes/homelab-2/lxc/900/migrate", target="homelab", restart=1)
    task = api.app.tasks.wait(upid, 10)
    assert task.exitstatus == "OK" and task.lines == ["Requesting HA migration for CT 900 to node homelab", "TASK OK"]
    assert api.app.crm.commands_path.read_text() == "migrate ct:900 homelab\n"
    api.app.crm.round()
    api.app.crm.services["ct:900"]["state"] = "error"
    upid = api.ok("POST", "/nodes/homelab/lxc/900/migrate", target="homelab-3", restart=1)
    task = api.app.tasks.wait(upid, 10)
    assert task.exitstatus == "command 'ha-manager migrate ct:900 homelab-3' failed: exit code 255"
    assert task.lines[:2] == ["Requesting HA migration for CT 900 to node homelab-3",
                              "service 'ct:900' in error state, must be disabled and fixed first"]


def test_manager_status_is_the_crms_state(api):
    """master_node, node_status, service_status (state, node, running, uid), timestamp; quorum; each LRM."""
    status = api.ok("GET", "/cluster/ha/status/manager_status")
    ms = status["manager_status"]
    assert ms["master_node"] == "homelab" and ms["timestamp"] == api.app.crm.timestamp > 0
    assert ms["node_status"] == {"homelab": "online", "homelab-2": "online", "homelab-3": "online"}
    service = ms["service_status"]["ct:900"]
    assert {k: service[k] for k in ("state", "node", "running")} == {"state": "started", "node": "homelab-2",
                                                                      "running": 1}
    assert len(service["uid"]) == 22
    assert status["quorum"] == {"node": "homelab", "quorate": 1}
    assert {n: s["state"] for n, s in status["lrm_status"].items()} == {
        "homelab": "wait_for_agent_lock", "homelab-2": "active", "homelab-3": "wait_for_agent_lock"}
    api.ok("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab")
    api.app.crm.round()
    service = api.ok("GET", "/cluster/ha/status/manager_status")["manager_status"]["service_status"]["ct:900"]
    assert (service["state"], service["node"], "running" in service) == ("started", "homelab", False)


def test_manager_status_follows_a_fenced_node_and_is_empty_before_any_round(api, tmp_path):
    """A node down: `unknown`, its service recovered elsewhere; a fresh emulator has no manager status yet."""
    api.app.cluster.set_online("homelab-2", False)
    api.app.crm.round()
    assert api.ok("GET", "/cluster/ha/status/manager_status")["manager_status"]["node_status"]["homelab-2"] \
        == "unknown"
    api.app.crm.clock.ahead += DELAY
    api.app.crm.round()
    ms = api.ok("GET", "/cluster/ha/status/manager_status")["manager_status"]
    assert ms["service_status"]["ct:900"]["node"] != "homelab-2"
    fresh = Api(Emulator(tmp_path / "other", MemHosts(), node="homelab", verify_results=True, nodes=3))
    assert fresh.ok("GET", "/cluster/ha/status/manager_status") == {
        "manager_status": {}, "quorum": {"node": "homelab", "quorate": 1}}


def test_a_queued_command_and_the_manager_status_survive_a_restart(api, tmp_path):
    """crm_commands and manager_status are files, as /etc/pve/ha's: a restarted emulator plays what was queued."""
    api.ok("POST", "/cluster/ha/resources/ct:900/relocate", node="homelab-3")
    again = Emulator(tmp_path / "pve", api.app.driver, node="homelab", verify_results=True, nodes=3,
                     fence_delay=DELAY)
    assert again.crm.master == "homelab" and again.crm.services["ct:900"]["state"] == "started"
    again.crm.round()
    assert "got crm command: relocate ct:900 homelab-3" in again.crm.log
    assert again.node_of(900) == "homelab-3"
