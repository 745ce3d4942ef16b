"""A rollback of an HA-managed container is not undone by the HA manager: the suite's client sets the resource
`ignored` for the rollback and back after (plugins/proxmox/ha.py). Without that, the emulator's HA manager
(its rounds played while the rollback runs, as PVE's CRM/LRM rounds fall in one) fights it: the stopped,
locked CT fails its restarts, the service ends in `error`, and the rollback's start no longer brings it back.
"""

from __future__ import annotations

import pytest
from pve_inprocess import EmulatorCalls, in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


class RoundsDuringRollback(MemHosts):
    """In-memory hosts whose rollback takes long enough for the HA manager to play five rounds meanwhile: enough
    for its whole recovery policy (with max_restart 1 and max_relocate 1: a start and a retry on the CT's node, a
    relocation that fails on the lock, a start and a retry again, then `error`)."""

    app: Emulator | None = None

    def rollback(self, vmid, name, start):
        """Restore the files, the HA manager's rounds falling in the middle."""
        for _ in range(5):
            self.app.crm.round()
        super().rollback(vmid, name, start)


@pytest.fixture
def ha_ct(tmp_path):
    """CT 900 on shared storage, running, HA-managed (`started`, max_restart 1, max_relocate 1), snapshotted."""
    driver = RoundsDuringRollback()
    app = Emulator(tmp_path / "pve", driver, node="homelab", nodes=3)
    driver.app = app
    calls = EmulatorCalls(app)
    upid = calls.ok("POST", "/nodes/homelab-2/lxc", vmid=900, ostemplate=TEMPLATE, rootfs="shared:8", start=1,
                    net0="name=eth0,bridge=labbr0,ip=198.18.0.100/24,gw=198.18.0.1")
    assert app.tasks.wait(upid, 10).exitstatus == "OK"
    calls.ok("POST", "/cluster/ha/resources", sid="ct:900", state="started")
    client = in_process_client(app)
    client.snapshot("homelab", 900, "deploy_1")
    return app, calls, client


def service(calls) -> dict:
    return next(s for s in calls.ok("GET", "/cluster/ha/status/current") if s["id"] == "service:ct:900")


def test_without_the_ha_manager_set_aside_it_undoes_the_rollback(ha_ct):
    """The fight the suite avoids: the plain rollback call (no HA state change) leaves the CT down, in `error`."""
    app, calls, _ = ha_ct
    upid = calls.ok("POST", "/nodes/homelab-2/lxc/900/snapshot/deploy_1/rollback", start=1)
    assert app.tasks.wait(upid, 10).exitstatus == "OK"
    assert "unable to start service ct:900: CT is locked (rollback)" in app.crm.log
    assert service(calls)["state"] == "error"
    assert not app.running(900)


def test_the_suites_rollback_sets_the_resource_ignored_then_back(ha_ct):
    """The client's rollback: `ignored` during it, `started` after; the CT runs, the service is started, no fight."""
    app, calls, client = ha_ct
    lines: list[str] = []
    result = client.rollback("homelab", 900, "deploy_1", start=True, on_log=lines.append)
    assert result.exitstatus == "OK" and result.node == "homelab-2"
    assert app.running(900)
    assert calls.ok("GET", "/cluster/ha/resources/ct:900")["state"] == "started"
    assert service(calls)["state"] == "started"
    assert not any("unable to start service" in line for line in app.crm.log)
    assert "HA resource ct:900 set to 'ignored' for the rollback (was 'started')" in lines
    assert lines[-1] == "HA resource ct:900 set back to 'started'"


def test_rollback_many_reads_ha_once_and_guards_each_ha_ct(ha_ct):
    """The deploy's fan-out: one read of /cluster/ha/resources, the HA CT guarded, and it runs after."""
    app, calls, client = ha_ct
    rolled = client.rollback_many("homelab", {900: "deploy_1"}, start=True)
    assert rolled[900].exitstatus == "OK" and app.running(900)
    assert service(calls)["state"] == "started"


def test_a_stopped_ha_resource_stays_stopped_after_the_rollback(ha_ct):
    """Its prior state comes back: `stopped` HA resource, rolled back with start=1, is stopped again by HA."""
    app, calls, client = ha_ct
    calls.ok("PUT", "/cluster/ha/resources/ct:900", state="stopped")
    assert not app.running(900)
    client.rollback("homelab", 900, "deploy_1", start=True)
    assert calls.ok("GET", "/cluster/ha/resources/ct:900")["state"] == "stopped"
    assert not app.running(900)


def test_a_failed_rollback_still_puts_the_ha_state_back(ha_ct):
    """A rollback that fails (no such snapshot) leaves the resource as it was, not `ignored`."""
    _, calls, client = ha_ct
    with pytest.raises(Exception, match="does not exist"):
        client.rollback("homelab", 900, "deploy_9", start=True)
    assert calls.ok("GET", "/cluster/ha/resources/ct:900")["state"] == "started"
