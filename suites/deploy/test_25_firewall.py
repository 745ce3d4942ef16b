"""Firewall: PVE's firewall holds the inventory's (`firewall:` and what the stack needs), applied through its API.

The previous firewall is recorded first: it is not in a container's snapshot, the rollback restores it from this
record. The work: plugins/deploy/stages/firewall.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import firewall as stage

pytestmark = pytest.mark.stage("firewall")


def test_the_firewall_before_this_run_is_recorded_for_the_rollback(deployment, proxmox):
    """What PVE's firewall held before the run is kept: a rollback puts it back (snapshots do not hold it); a plan
    reads it too (reading changes nothing), so a plan fails where a deploy could not record it."""
    stage.record_previous(deployment, proxmox)


def test_the_inventorys_firewall_is_applied_through_the_api(deployment, proxmox):
    """Aliases, IP sets, security groups and each container's options and rules (a plan lists the changes)."""
    stage.apply(deployment, proxmox)


def test_a_second_read_finds_nothing_to_change(deployment, proxmox):
    """Applied once, the firewall converged: reading it again finds no difference with the inventory's."""
    if deployment.plan_only:
        pytest.skip("a plan changes nothing")
    left = stage.drift(deployment, proxmox)
    assert not left, "the firewall still differs after the apply: " + "; ".join(left)
