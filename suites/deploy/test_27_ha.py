"""HA: PVE's HA manager holds the inventory's `ha:` hosts (`ct:<vmid>` resources), applied through its API.

The previous HA resources are recorded first: they are not in a container's snapshot, the rollback restores them
from this record. The work: plugins/deploy/stages/ha.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import ha as stage

pytestmark = pytest.mark.stage("ha")


def test_the_ha_resources_before_this_run_are_recorded_for_the_rollback(deployment, proxmox):
    """What PVE's HA manager held for the inventory's containers is kept: a rollback puts it back; a plan reads
    it too (reading changes nothing), so a plan fails where a deploy could not record it."""
    stage.record_previous(deployment, proxmox)


def test_the_inventorys_ha_hosts_are_registered_with_the_ha_manager(deployment, proxmox):
    """Each `ha:` host a `ct:<vmid>` resource with its state, max_restart, max_relocate; one that differs updated;
    one whose host no longer declares `ha:` removed (a plan lists the changes)."""
    stage.apply(deployment, proxmox)


def test_a_second_read_finds_nothing_to_change(deployment, proxmox):
    """Applied once, the HA resources converged: reading them again finds no difference with the inventory's."""
    if deployment.plan_only:
        pytest.skip("a plan changes nothing")
    left = stage.drift(deployment, proxmox)
    assert not left, "the HA resources still differ after the apply: " + "; ".join(left)
