"""The node's side of the policy, as the deploy applies it: the backup storage checked, the scheduled job written.

A node API that does not serve backups at all (501: an emulator without them) is said, not failed: every PVE
release the suite supports serves them, so on a real node the calls either work or fail with PVE's reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError

if TYPE_CHECKING:
    from plugins.inventory import Inventory
    from plugins.proxmox.client import ProxmoxClient


class NoBackupApi(Exception):
    """The node's API answers 501 for its backup paths: nothing can be backed up through it."""


def backup_job(inventory: Inventory) -> node_backups.BackupJob:
    """The node's scheduled backup job the inventory's policy asks for (its hosts but the left-out ones)."""
    policy = inventory.backup
    return node_backups.BackupJob(schedule=policy.schedule, storage=policy.storage, mode=policy.mode,
                                  vmids=tuple(h.vmid for h in inventory.hosts if h.hostname not in policy.exclude),
                                  prune_backups=policy.retention.prune_backups())


def check_storage(client: ProxmoxClient, inventory: Inventory) -> None:
    """ProxmoxError when the policy's storage is missing, disabled or holds no backups; NoBackupApi on a 501."""
    try:
        node_backups.backup_storage(client, inventory.proxmox.node, inventory.backup.storage,
                                    where=inventory.where("backup.storage"))
    except ProxmoxError as error:
        if error.status_code == node_backups.NOT_IMPLEMENTED:
            raise NoBackupApi(f"{client.url} does not serve PVE's backup API (GET /nodes/{inventory.proxmox.node}/"
                              "storage answers 501)") from None
        raise


def apply_policy_job(client: ProxmoxClient, inventory: Inventory) -> str:
    """Write the policy's job on the node; what happened (`backup job homelab-suite: created`)."""
    try:
        outcome = node_backups.apply_job(client, backup_job(inventory))
    except ProxmoxError as error:
        if error.status_code == node_backups.NOT_IMPLEMENTED:
            raise NoBackupApi(f"{client.url} does not serve PVE's backup jobs (/cluster/backup answers 501)") \
                from None
        raise
    return f"backup job {node_backups.JOB_ID}: {outcome}"
