"""PVE's backups through its API: the backup storage, vzdump now, the node's scheduled backup job.

The calls are PVE's own (pve-manager PVE/API2/VZDump.pm and Backup.pm, pve-storage's storage index), through
the one client, so every error is its one-line ProxmoxError and every task's exitstatus is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.proxmox.tasks import ProxmoxError, TaskResult

if TYPE_CHECKING:
    from plugins.proxmox.client import ProxmoxClient

# The id of the one backup job the suite owns on the node (pve-configid: a letter, then [A-Za-z0-9_-]): the
# deploy updates it in place, and never touches a job the owner made by hand.
JOB_ID = "homelab-suite"
NOT_IMPLEMENTED = 501  # PVE's answer to a path it does not serve ("Method 'GET …' not implemented")


def _bool(value: bool) -> int:
    return 1 if value else 0  # PVE rejects True/False


@dataclass(frozen=True)
class BackupJob:
    """What the node's backup job must be: PVE's /cluster/backup parameters, from the inventory's policy."""

    schedule: str
    storage: str
    mode: str
    vmids: tuple[int, ...]
    prune_backups: str
    enabled: bool = True
    comment: str = "homelab-suite: the inventory's backup policy (make deploy writes it)"

    def parameters(self) -> dict:
        """The job as PVE's POST/PUT /cluster/backup takes it."""
        return {"schedule": self.schedule, "storage": self.storage, "mode": self.mode,
                "vmid": ",".join(str(v) for v in self.vmids), "prune-backups": self.prune_backups,
                "enabled": _bool(self.enabled), "compress": "zstd", "comment": self.comment,
                "notes-template": "{{guestname}}"}


def backup_storage(client: ProxmoxClient, node: str, storage: str, *, where: str = "") -> dict:
    """The node's storage entry for storage; ProxmoxError when it does not exist, is disabled or holds no
    backups (PVE's `content` must list `backup`)."""
    rows = client._call(f"list the storages of node {node}", lambda api: api.nodes(node).storage.get()) or []
    hint = f" ({where})" if where else ""
    found = {row.get("storage"): row for row in rows}
    entry = found.get(storage)
    if entry is None:
        names = ", ".join(sorted(str(name) for name in found)) or "none"
        raise ProxmoxError(f"backup storage '{storage}' does not exist on node {node}; storages: {names}{hint}")
    content = str(entry.get("content", "")).split(",")
    if "backup" not in content:
        raise ProxmoxError(f"storage '{storage}' on node {node} does not hold backups (its content: "
                           f"{entry.get('content') or 'none'}; expected backup in it){hint}")
    if entry.get("enabled") == 0 or entry.get("active") == 0:
        raise ProxmoxError(f"storage '{storage}' on node {node} is not active{hint}")
    return entry


def vzdump(client: ProxmoxClient, node: str, vmid: int, *, storage: str, mode: str, prune_backups: str,
           timeout: float | None = None) -> TaskResult:
    """Back CT vmid up now on storage (zstd, pruned by the policy) and wait until the task succeeds."""
    upid = client._call(f"back up CT {vmid} on node {node} to storage {storage}",
                        lambda api: api.nodes(node).vzdump.post(vmid=str(vmid), storage=storage, mode=mode,
                                                                compress="zstd", **{"prune-backups": prune_backups,
                                                                                    "notes-template": "{{guestname}}"}))
    return client.wait_task(node, upid, timeout)


def backups(client: ProxmoxClient, node: str, storage: str, vmid: int | None = None) -> list[dict]:
    """The backups on storage (PVE's content entries: volid, ctime, size, vmid, …), newest first."""
    params = {"content": "backup", **({"vmid": vmid} if vmid is not None else {})}
    rows = client._call(f"list the backups on storage {storage} of node {node}",
                        lambda api: api.nodes(node).storage(storage).content.get(**params)) or []
    return sorted(rows, key=lambda row: row.get("ctime", 0), reverse=True)


def read_job(client: ProxmoxClient, job_id: str = JOB_ID) -> dict:
    """The node's backup job of that id, as PVE stores it (GET /cluster/backup/{id})."""
    return client._call(f"read backup job {job_id}", lambda api: api.cluster.backup(job_id).get()) or {}


def _same(wanted: object, found: object) -> bool:
    """One job parameter alike on both sides: PVE gives property strings back parsed (Backup.pm parses
    `prune-backups` into {"keep-last": 3, …}), where the suite writes them as `keep-last=3,…`."""
    if isinstance(found, dict) and isinstance(wanted, str):
        wanted = dict(part.split("=", 1) for part in wanted.split(",") if part)
        return {key: str(value) for key, value in found.items()} == wanted
    return str(found if found is not None else "") == str(wanted)


def job_differences(wanted: dict, found: dict) -> list[str]:
    """The parameters in which the node's job (as GET /cluster/backup gives it) differs from wanted, sorted."""
    return sorted(key for key, value in wanted.items() if not _same(value, found.get(key)))


def apply_job(client: ProxmoxClient, job: BackupJob) -> str:
    """Create the suite's backup job or bring it to the policy; 'created', 'updated' or 'unchanged'."""
    jobs = client._call("list the backup jobs", lambda api: api.cluster.backup.get()) or []
    current = next((row for row in jobs if row.get("id") == JOB_ID), None)
    wanted = job.parameters()
    if current is None:
        client._call(f"create backup job {JOB_ID}", lambda api: api.cluster.backup.post(id=JOB_ID, **wanted))
        return "created"
    if not job_differences(wanted, current):
        return "unchanged"
    client._call(f"update backup job {JOB_ID}", lambda api: api.cluster.backup(JOB_ID).put(**wanted))
    return "updated"


def restore(client: ProxmoxClient, node: str, vmid: int, volid: str, *, force: bool, start: bool,
            timeout: float | None = None, **options: str | int) -> TaskResult:
    """Restore CT vmid from the backup volid (POST /nodes/{node}/lxc, restore=1; force=1 over an existing CT) and
    wait until the vzrestore task succeeds; options are PVE's (unique, storage, hostname, onboot)."""
    params = {"vmid": vmid, "ostemplate": volid, "restore": 1, **({"force": 1} if force else {}),
              "start": _bool(start), **options}
    upid = client._call(f"restore CT {vmid} on node {node} from {volid}",
                        lambda api: api.nodes(node).lxc.post(**params))
    return client.wait_task(node, upid, timeout)


def destroy(client: ProxmoxClient, node: str, vmid: int, *, timeout: float | None = None,
            unreferenced_disks: bool = False) -> TaskResult:
    """Destroy the stopped CT vmid with its volumes (DELETE /nodes/{node}/lxc/{vmid}, purge=1; with
    unreferenced_disks, also every disk of the VMID no config names) and wait."""
    extra = {"destroy-unreferenced-disks": 1} if unreferenced_disks else {}
    upid = client._call(f"destroy CT {vmid} on node {node}",
                        lambda api: api.nodes(node).lxc(vmid).delete(purge=1, **extra))
    return client.wait_task(node, upid, timeout)


def next_vmid(client: ProxmoxClient) -> int:
    """A VMID free on the cluster (GET /cluster/nextid)."""
    return int(client._call("ask the cluster for a free VMID", lambda api: api.cluster.nextid.get()))


def storage_path(client: ProxmoxClient, storage: str) -> str:
    """The directory of a `dir` storage as storage.cfg names it (GET /storage/{storage}: `path`), or ''."""
    entry = client._call(f"read storage {storage}", lambda api: api.storage(storage).get()) or {}
    return str(entry.get("path") or "")


def volume_path(client: ProxmoxClient, node: str, storage: str, volid: str) -> str:
    """The file of a backup volume on the node (GET /nodes/{node}/storage/{storage}/content/{volume}: `path`)."""
    entry = client._call(f"read backup {volid}",
                         lambda api: api.nodes(node).storage(storage).content(volid).get()) or {}
    return str(entry.get("path") or "")


def remove_backup(client: ProxmoxClient, node: str, storage: str, volid: str) -> None:
    """Delete a backup volume (DELETE …/content/{volume}: PVE's imgdel task, waited for)."""
    upid = client._call(f"remove backup {volid}",
                        lambda api: api.nodes(node).storage(storage).content(volid).delete())
    if upid:
        client.wait_task(node, upid)
