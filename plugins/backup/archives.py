"""The vzdump archives off the node: each host's newest archive (with its .log and .notes) in the restic
repository, and back on the node's backup storage from there.

PVE's API lists a backup and says where its file is (`path`), but serves no download nor upload of backups
(`upload` takes iso, vztmpl and import only): the runner reads and writes the storage's directory itself, at the
path PVE gives. In the lab that is this machine's directory; on a homelab, the backup storage's share (NFS, CIFS)
mounted on the runner at the same path as on the node.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.backup.credentials import BackupProblem
from plugins.backup.offsite import ARCHIVE_TAG, Repository, Snapshot
from plugins.proxmox import backups as node_backups

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient

MOUNT_DOC = "docs/concepts/backups.md#the-vzdump-archives-off-site"
# pve-storage's backup file name: vzdump-lxc-<vmid>-<YYYY_MM_DD-HH_MM_SS>.<ext>; the log is <base>.log
_BASE = re.compile(r"^(vzdump-lxc-(\d+)-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2})\.(tar(\.\w+)?)$")


def dump_dir(client: ProxmoxClient, inventory: Inventory) -> Path:
    """The backup storage's dump/ directory, where this machine writes fetched archives; BackupProblem in one line
    when PVE names no directory for it or this machine cannot write there."""
    storage = inventory.backup.storage
    path = node_backups.storage_path(client, storage)
    where = inventory.where("backup.storage")
    if not path:
        raise BackupProblem(f"storage '{storage}' has no directory in PVE's storage.cfg ({where}: expected a `dir` "
                            "storage, whose archives this machine can read and write)")
    directory = Path(path) / "dump"
    # a storage before its first backup has no dump/ yet (PVE makes it then): the nearest existing parent decides
    existing = next(p for p in (directory, *directory.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BackupProblem(f"storage '{storage}' keeps its backups in {directory} on the node, which this machine "
                            f"cannot write ({where}: expected that directory here at the same path, {MOUNT_DOC})")
    return directory


def archive_files(archive: Path) -> list[Path]:
    """The archive and, when they exist, its vzdump log and its notes (what a restore and a reader want)."""
    match = _BASE.match(archive.name)
    siblings = [archive.with_name(f"{match[1]}.log")] if match else []
    siblings.append(archive.with_name(f"{archive.name}.notes"))
    return [archive, *(path for path in siblings if path.is_file())]


def copy_archive(client: ProxmoxClient, repo: Repository, inventory: Inventory, host: Host) -> Snapshot | None:
    """Copy the host's newest vzdump archive to the repository (tagged vzdump); None when it has none."""
    newest = node_backups.backups(client, host.node, inventory.backup.storage, host.vmid)
    if not newest:
        return None
    volid = str(newest[0]["volid"])
    path = Path(node_backups.volume_path(client, host.node, inventory.backup.storage, volid))
    if not path.is_file() or not os.access(path, os.R_OK):
        raise BackupProblem(f"{host.hostname}: the archive {volid} is {path} on the node, which this machine cannot "
                            f"read (expected the backup storage's directory here at the same path, {MOUNT_DOC})")
    return repo.backup(path.parent, host.hostname, *archive_files(path), tags=(ARCHIVE_TAG,), compress=False)


def archive_name(snapshot: dict, host: Host) -> str:
    """The archive's file name in a snapshot of the host's archives ('' when it holds none of that CT)."""
    for path in snapshot.get("paths") or []:
        match = _BASE.match(Path(path).name)
        if match and int(match[2]) == host.vmid:
            return match.group(0)
    return ""


def fetch_archive(repo: Repository, snapshot: dict, host: Host, directory: Path) -> Path:
    """Restore the snapshot's archive (and its log and notes) into the storage's directory; the archive's path.
    The files appear whole or not at all (restored beside, then renamed): PVE never lists half an archive."""
    name = archive_name(snapshot, host)
    directory.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".offsite-{host.vmid}-", dir=directory))
    try:
        repo.restore(snapshot["id"], scratch)
        found = {path.name: path for path in scratch.rglob("*") if path.is_file()}
        if name not in found:
            raise BackupProblem(f"the off-site snapshot {snapshot.get('short_id', snapshot['id'])} of "
                                f"{host.hostname} holds no {name or 'vzdump archive'}")
        for file_name, path in found.items():
            os.replace(path, directory / file_name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return directory / name
