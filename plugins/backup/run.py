"""`make backup`: back every host up now, as the inventory's policy says, and say so in a line per host.

Everything that can be checked is checked before anything is written: the policy (the inventory's loader), the
restic secrets, the node and its backup storage. Then per host: vzdump on the
node's storage, the application dumps on the host (pulled to the runner); then the off-site copy with restic of
every host's dumps and newest vzdump archive (so that the off-site copy alone rebuilds a host), pruned by the
retention and verified. An off-site failure (the S3 store down) keeps every local backup and says so.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.backup import archives
from plugins.backup import dumps as host_dumps
from plugins.backup.credentials import BackupProblem, restic_environment
from plugins.backup.job import NoBackupApi, check_storage
from plugins.backup.offsite import Repository, Snapshot
from plugins.deploy.run_lock import state_dir
from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError
from plugins.ssh.known_hosts import known_hosts_file
from plugins.ssh.pool import SshPool, SshTarget
from plugins.stack.backup_dumps import dumps as dumps_of

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient

STATUS_FILE = "status.json"


@dataclass
class HostBackup:
    """What the run did for one host: each step's bytes and seconds, and why a step failed."""

    host: str
    vzdump: tuple[int, float] | None = None
    dumps: tuple[int, int, float] | None = None  # (count, bytes, seconds)
    offsite: tuple[int, float] | None = None  # (bytes added, seconds)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no step failed."""
        return not self.errors

    def line(self) -> str:
        """`utilities  ok  vzdump 410.2 MiB 12.0 s · dumps 4, 3.1 MiB 1.4 s · off-site +1.0 MiB 2.1 s`."""
        parts = []
        if self.vzdump:
            parts.append(f"vzdump {size_text(self.vzdump[0])} {self.vzdump[1]:.1f} s")
        if self.dumps:
            parts.append(f"dumps {self.dumps[0]}, {size_text(self.dumps[1])} {self.dumps[2]:.1f} s")
        if self.offsite:
            parts.append(f"off-site +{size_text(self.offsite[0])} {self.offsite[1]:.1f} s")
        outcome = "ok" if self.ok else "FAILED"
        text = f"{self.host:<12} {outcome:<6} {' · '.join(parts) or 'nothing backed up'}"
        return "; ".join([text, *self.notes, *self.errors])


def size_text(count: int) -> str:
    """A byte count as a person reads it (B, KiB, MiB, GiB)."""
    size = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def staging_dir(inventory: Inventory) -> Path:
    """The runner's copy of every host's dumps (what restic backs up): <state dir>/backups/<environment>."""
    return state_dir() / "backups" / inventory.environment


def backed_up_hosts(inventory: Inventory, names: list[str] | None = None) -> list[Host]:
    """The hosts the policy backs up (all but those it leaves out), or those named (LookupError for an unknown)."""
    if names:
        return [inventory.host(name) for name in names]
    return [h for h in inventory.hosts if h.hostname not in inventory.backup.exclude]


def vzdump_host(client: ProxmoxClient, inventory: Inventory, host: Host) -> tuple[int, float]:
    """Back the host's container up now with vzdump; (the archive's size, seconds)."""
    policy = inventory.backup
    started = time.monotonic()
    node_backups.vzdump(client, host.node, host.vmid, storage=policy.storage, mode=policy.mode,
                        prune_backups=policy.retention.prune_backups())
    newest = node_backups.backups(client, host.node, policy.storage, host.vmid)
    return (int(newest[0].get("size", 0)) if newest else 0), time.monotonic() - started


def dump_host(pool: SshPool, inventory: Inventory, host: Host, row: HostBackup) -> None:
    """Take the host's dumps and pull them to the runner; record them (or why they failed) on row."""
    started = time.monotonic()
    taken = host_dumps.take_dumps(pool, host)
    host_dumps.pull(pool, host, inventory.backup.dumps.directory, staging_dir(inventory) / host.hostname)
    row.dumps = (len([o for o in taken.outcomes if o.get("bytes")]), taken.bytes, time.monotonic() - started)
    row.notes += [f"{o['name']}: {o['note']}" for o in taken.outcomes if o.get("note")]
    row.errors += taken.errors


def repository(inventory: Inventory, environment: dict[str, str]) -> Repository:
    """The policy's restic repository, opened with the secrets it names."""
    offsite = inventory.backup.offsite
    return Repository(offsite.repository, offsite.endpoint, environment,
                      cache_dir=state_dir() / "backups" / "restic-cache")


def _added(row: HostBackup, snapshot: Snapshot | None, started: float) -> None:
    if snapshot is not None:
        before = row.offsite or (0, 0.0)
        row.offsite = (before[0] + snapshot.bytes_added, before[1] + time.monotonic() - started)


def copy_offsite(repo: Repository, inventory: Inventory, rows: dict[str, HostBackup],
                 client: ProxmoxClient | None = None) -> str:
    """Copy every host's pulled dumps and (with a client) its newest vzdump archive to the repository, forget and
    prune by the retention, check it; the outcome of the check ('passed'); BackupProblem when the store or restic
    fails."""
    repo.reachable()
    repo.ensure()
    for name, row in rows.items():
        directory = staging_dir(inventory) / name
        if row.dumps is not None and directory.is_dir():
            started = time.monotonic()
            _added(row, repo.backup(directory, name), started)
        if client is not None and row.vzdump is not None:
            started = time.monotonic()
            _added(row, archives.copy_archive(client, repo, inventory, inventory.host(name)), started)
    repo.forget(inventory.backup.retention.forget_flags())
    repo.check()
    return "passed"


def record(inventory: Inventory, rows: dict[str, HostBackup], check: dict) -> Path:
    """Write what this run did where the health suite reads it (<staging dir>/status.json)."""
    path = staging_dir(inventory) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    previous = json.loads(path.read_text()) if path.is_file() else {}
    hosts = previous.get("hosts", {})
    now = int(time.time())
    for name, row in rows.items():
        hosts[name] = {"finished": now, "ok": row.ok, "errors": row.errors,
                       "last_ok": now if row.ok else hosts.get(name, {}).get("last_ok")}
    path.write_text(json.dumps({"hosts": hosts, "check": check or previous.get("check", {})}, indent=2) + "\n")
    return path


def run_backup(inventory: Inventory, client: ProxmoxClient, *, hosts: list[str] | None = None,
               say: Callable[[str], None] = print, vzdump: bool = True) -> int:
    """Back up every host now (or those named); 0 when all went well, 1 when a step failed, 2 on bad input."""
    if inventory.backup is None:
        say(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, schedule, "
            "retention, dumps, offsite)")
        return 2
    try:
        selected = backed_up_hosts(inventory, hosts)
        environment = restic_environment(inventory)
        node_has_backups = vzdump
        if vzdump:
            check_storage(client, inventory)
    except NoBackupApi as reason:
        node_has_backups = False
        say(f"vzdump skipped: {reason}; the dumps and the off-site copy go on")
    except (BackupProblem, ProxmoxError, LookupError) as problem:
        say(str(problem).strip("'\""))
        return 2
    rows = {host.hostname: HostBackup(host.hostname) for host in selected}
    runner = inventory.runner
    with SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in selected],
                 known_hosts=known_hosts_file(inventory)) as pool:
        for host in selected:
            row = rows[host.hostname]
            if node_has_backups:
                try:
                    row.vzdump = vzdump_host(client, inventory, host)
                except ProxmoxError as error:
                    row.errors.append(f"vzdump failed: {error}")
            if dumps_of(inventory, host):
                try:
                    dump_host(pool, inventory, host, row)
                except BackupProblem as problem:
                    row.errors.append(str(problem))
    check: dict = {}
    offsite_error = ""
    try:
        check = {"at": int(time.time()), "ok": copy_offsite(repository(inventory, environment), inventory, rows,
                                                               client if node_has_backups else None) == "passed"}
    except BackupProblem as problem:
        offsite_error = str(problem)
        if "check" in offsite_error:
            check = {"at": int(time.time()), "ok": False, "error": offsite_error}
    for row in rows.values():
        say(row.line())
    if offsite_error:
        say(f"off-site copy failed: {offsite_error} (the local backups are kept: vzdump archives on storage "
            f"{inventory.backup.storage}, dumps in {inventory.backup.dumps.directory} on each host and in "
            f"{staging_dir(inventory)})")
    else:
        say(f"off-site copy: {inventory.backup.offsite.repository}, pruned ({' '.join(inventory.backup.retention.forget_flags())}), restic check passed")
    record(inventory, rows, check)
    return 0 if all(row.ok for row in rows.values()) and not offsite_error else 1
