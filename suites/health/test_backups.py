"""Backups watched (issue 23): each host's newest vzdump is younger than the policy's schedule allows, and the last
`restic check` of the off-site copy passed. Nothing to judge yet (no backup taken, make backup never ran on this
runner) is a skip saying so; a node that cannot be asked is a skip with its reason (the other checks say more).
"""

from __future__ import annotations

import pytest

from plugins.backup import watch
from plugins.health.power import STATE_TIMEOUT
from plugins.inventory import get_inventory
from plugins.proxmox import backups as node_backups
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.tasks import ProxmoxError


@pytest.fixture(scope="module")
def inventory(pytestconfig):
    """The inventory, with a backup policy (without one, conftest.py does not collect these tests)."""
    return get_inventory(pytestconfig)


@pytest.fixture(scope="module")
def node_backup_list(inventory) -> list[dict]:
    """Every backup on the policy's storage, per node of the inventory (one call each)."""
    try:
        client = ProxmoxClient.from_inventory(inventory, http_timeout=STATE_TIMEOUT)
        return [row for node in sorted({h.node for h in inventory.hosts})
                for row in node_backups.backups(client, node, inventory.backup.storage)]
    except ProxmoxError as error:
        pytest.skip(f"the node's backups not read from Proxmox VE: {error}")


def _judge(verdict: watch.Verdict) -> None:
    if verdict.skipped:
        pytest.skip(verdict.message)
    if not verdict.passed:
        pytest.fail(verdict.message, pytrace=False)


def test_newest_backup_is_younger_than_the_schedule_allows(inventory, node_backup_list, backed_up_host):
    """The host's newest vzdump is at most the schedule's longest gap + 2 h old (daily: 26 h)."""
    _judge(watch.backup_freshness(inventory, backed_up_host, node_backup_list))


def test_last_restic_check_of_the_offsite_copy_passed(inventory):
    """The last `restic check` make backup ran on this runner passed."""
    _judge(watch.restic_check(inventory))
