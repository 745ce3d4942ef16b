"""What `make restore` may restore, decided before anything changes: the host (never the runner), the archive
(the newest of the host's on the policy's storage, or the one named, which must be the host's), the secrets.

Every refusal is one RestoreRefused line naming what is wrong, where, and what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.backup.credentials import BackupProblem, restic_environment
from plugins.backup.job import NoBackupApi, check_storage
from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError
from plugins.shared.this_machine import self_reason
from plugins.tools.vault import VaultProblem, vault_files

if TYPE_CHECKING:
    from collections.abc import Mapping

    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient

NEWEST = "newest"
RUNNER_DOC = "docs/how-to/restore.md#the-runner"
# pve-storage's backup volume name: <storage>:backup/vzdump-lxc-<vmid>-<stamp>.<ext>
_VOLID = re.compile(r"^(?P<storage>[a-z][a-z0-9\-_.]*[a-z0-9]):backup/vzdump-lxc-(?P<vmid>\d+)-[^/\s]+$")


class RestoreRefused(ValueError):
    """A restore that must not start: one line saying what, where and what was expected; nothing was changed."""


@dataclass(frozen=True)
class RestoreChoice:
    """The host to restore and the archive to restore it from (PVE's content entry of the backup)."""

    host: Host
    backup: dict

    @property
    def volid(self) -> str:
        """The archive's volume id (`backup:backup/vzdump-lxc-250-….tar.zst`)."""
        return str(self.backup["volid"])


def restorable_host(inventory: Inventory, name: str) -> Host:
    """The inventory's host of that name; RestoreRefused for an unknown one or the runner the suite runs on."""
    known = [h.hostname for h in inventory.hosts]
    if name not in known:
        raise RestoreRefused(f"HOST={name}: no such host in {inventory.where('hosts')} (expected one of: "
                             f"{', '.join(known)})")
    host = inventory.host(name)
    reason = self_reason(inventory, host)
    if reason:
        raise RestoreRefused(f"HOST={name}: refused: {reason}, and a restore stops it with this run; restore it "
                             f"from another machine ({RUNNER_DOC})")
    return host


def _listed(client: ProxmoxClient, host: Host, storage: str) -> list[dict]:
    return node_backups.backups(client, host.node, storage)


def choose_backup(client: ProxmoxClient, inventory: Inventory, host: Host, source: str) -> dict:
    """The content entry of the archive to restore: the host's newest on the policy's storage, or `source`;
    RestoreRefused when there is none, it does not exist, or it is another host's."""
    storage = inventory.backup.storage
    if source in ("", NEWEST):
        own = [row for row in _listed(client, host, storage) if int(row.get("vmid", -1)) == host.vmid]
        if not own:
            raise RestoreRefused(f"no backup of {host.hostname} ({host.vmid}) on storage '{storage}' of node "
                                 f"{host.node} ({inventory.where('backup.storage')}): run make backup first")
        return own[0]
    match = _VOLID.match(source)
    if not match:
        raise RestoreRefused(f"FROM={source}: not a backup volume (expected {NEWEST} or <storage>:backup/"
                             f"vzdump-lxc-{host.vmid}-<YYYY_MM_DD-HH_MM_SS>.tar.zst, as make backup lists them)")
    if match["storage"] != storage:
        try:
            node_backups.backup_storage(client, host.node, match["storage"], where=f"FROM={source}")
        except ProxmoxError as error:
            raise RestoreRefused(str(error)) from None
    rows = _listed(client, host, match["storage"])
    found = next((row for row in rows if row.get("volid") == source), None)
    if found is None:
        own = [str(row["volid"]) for row in rows if int(row.get("vmid", -1)) == host.vmid][:3]
        raise RestoreRefused(f"FROM={source}: no such backup on storage '{match['storage']}' of node {host.node} "
                             f"(expected one of {host.hostname}'s: {', '.join(own) or 'none, run make backup'})")
    if int(found.get("vmid", -1)) != host.vmid:
        owner = next((h.hostname for h in inventory.hosts if h.vmid == int(found["vmid"])), "not in the inventory")
        raise RestoreRefused(f"FROM={source}: a backup of CT {found['vmid']} ({owner}), not of {host.hostname} "
                             f"({host.vmid}) (expected one of {host.hostname}'s backups)")
    return found


def choose(client: ProxmoxClient, inventory: Inventory, name: str, source: str,
           env: Mapping[str, str] | None = None) -> RestoreChoice:
    """Everything a restore needs, checked in the order a user fixes it; RestoreRefused with one line otherwise."""
    if inventory.backup is None:
        raise RestoreRefused(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, "
                             "schedule, retention, dumps, offsite)")
    host = restorable_host(inventory, name)
    try:
        restic_environment(inventory, *([env] if env is not None else []))
        vault_files(inventory, *([env] if env is not None else []))  # the converge step needs the vault's password
        check_storage(client, inventory)
    except (BackupProblem, VaultProblem, NoBackupApi, ProxmoxError) as problem:
        raise RestoreRefused(str(problem)) from None
    return RestoreChoice(host, choose_backup(client, inventory, host, source))
