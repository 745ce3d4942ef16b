"""The suite's client migrating an HA-managed CT: PVE's migrate only asks the HA manager (an `hamigrate` task that
ends at once), so the client waits until the CT runs on the target, or says in one line that it did not."""

from __future__ import annotations

import pytest
from pve_inprocess import in_process_client
from pve_memdriver import MemHosts

from lab.pve.app import Emulator
from plugins.proxmox.tasks import TaskTimeout

pytestmark = pytest.mark.unit
TEMPLATE = "local:vztmpl/debian-12-lab_amd64.tar.zst"


@pytest.fixture
def cluster(tmp_path):
    """A 3-node emulator with CT 900 running on shared storage on homelab, HA-managed."""
    app = Emulator(tmp_path / "pve", MemHosts(), node="homelab", nodes=3)
    client = in_process_client(app)
    upid = client.api_call("create CT 900", "POST", "nodes/homelab/lxc", vmid=900, ostemplate=TEMPLATE,
                           rootfs="shared:8", net0="name=eth0,bridge=labbr0,ip=198.18.0.100/24,gw=198.18.0.1",
                           start=1)
    client.wait_task("homelab", upid)
    client.api_call("put CT 900 under HA", "POST", "cluster/ha/resources", sid="ct:900")
    app.crm.round()
    yield app, client
    app.crm.stop()


def test_migrate_waits_for_the_ha_manager_to_move_the_ct(cluster):
    """With the CRM playing rounds, migrate returns once CT 900 runs on homelab-2."""
    app, client = cluster
    app.crm.run(0.05)
    result = client.migrate("homelab", 900, "homelab-2", restart=True, timeout=10)
    assert result.type == "hamigrate"
    assert client.placement()[900] == "homelab-2" and app.running(900)


def test_migrate_says_when_the_ha_manager_did_not_move_it(cluster):
    """No CRM round: the request stays queued; the client stops at its deadline, naming where the CT still is."""
    _app, client = cluster
    with pytest.raises(TaskTimeout) as exc:
        client.migrate("homelab", 900, "homelab-2", restart=True, timeout=0.5)
    assert str(exc.value).startswith("CT 900: the HA manager has not moved it to homelab-2 within 0.5 s "
                                     "(it is running on homelab)")
