"""The restore drill (`make dr-drill`): one host lost as a dead disk loses it, then brought back by the backup code.

For each drilled host: a first marker in each of its services' data → `make backup`'s run for that host (vzdump,
dumps, off-site copy) → a second marker → the host lost (stopped, then DELETE with purge and
destroy-unreferenced-disks: the CT, its volumes and its snapshots gone, as PVE does it) → `make restore`'s
restore from the newest backup (verify, restore, converge, health) → the node's backup job written again (purge
took the CT out of it). The first marker must be back, the second gone: that is the recovery point. The recovery
time is from the moment the host is lost to the moment its health checks pass.

The runner the suite runs on is never drilled (plugins/shared/this_machine.py decides which host that is).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plugins.backup.job import NoBackupApi, apply_policy_job
from plugins.backup.markers import Marker, MarkerProblem
from plugins.backup.restore import restore_host
from plugins.backup.restore_choice import NEWEST
from plugins.backup.run import run_backup
from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError
from plugins.shared.this_machine import self_reason
from plugins.stack.backup_dumps import dumps

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient


class DrillRefused(ValueError):
    """A drill that must not start (an unknown host, the runner, a host the policy leaves out): one line."""


def has_data(inventory: Inventory, host: Host) -> bool:
    """Whether the host keeps data a backup must bring back (the policy dumps something of it)."""
    return bool(dumps(inventory, host))


def drilled_hosts(inventory: Inventory, names: list[str] | None = None, option: str = "--dr-hosts") -> list[Host]:
    """The hosts to drill: those named, or every host with data the policy backs up that is not the runner;
    DrillRefused naming an unknown, left-out or runner host."""
    if inventory.backup is None:
        raise DrillRefused(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, "
                           "schedule, retention, dumps, offsite)")
    if not names:
        return [h for h in inventory.hosts if has_data(inventory, h) and not self_reason(inventory, h)]
    known = [h.hostname for h in inventory.hosts]
    chosen = []
    for name in names:
        if name not in known:
            raise DrillRefused(f"{option} {name}: no such host in {inventory.where('hosts')} (expected one of: "
                               f"{', '.join(known)})")
        host = inventory.host(name)
        if name in inventory.backup.exclude:
            raise DrillRefused(f"{option} {name}: the backup policy leaves it out ({inventory.where('backup.exclude')})"
                               ": there is no backup to restore it from")
        reason = self_reason(inventory, host)
        if reason:
            raise DrillRefused(f"{option} {name}: refused: {reason}; drill it from another machine "
                               "(docs/how-to/dr-drill.md#the-runner)")
        chosen.append(host)
    return chosen


def lose_host(client: ProxmoxClient, host: Host) -> None:
    """Lose the host's CT as a dead disk would: stopped, destroyed with its volumes, unreferenced disks and
    snapshots (PVE's DELETE, purge and destroy-unreferenced-disks); ProxmoxError when PVE refuses."""
    if client.container_exists(host.node, host.vmid):
        if client.container_status(host.node, host.vmid).get("status") == "running":
            client.stop(host.node, host.vmid)
        node_backups.destroy(client, host.node, host.vmid, unreferenced_disks=True)
    if client.container_exists(host.node, host.vmid):
        raise ProxmoxError(f"CT {host.vmid} ({host.hostname}) still exists after its destroy task")


@dataclass
class DrillResult:
    """What one host's drill found: the markers back and absent, the recovery time and point, each step's line."""

    host: str
    first: str
    second: str
    back: dict[str, bool] = field(default_factory=dict)  # marker's where → first marker present after the restore
    kept_second: dict[str, bool] = field(default_factory=dict)  # where → second marker present (it must not be)
    recovery_time: float | None = None
    backup_taken: int | None = None  # the restored archive's ctime (the recovery point)
    lost_at: float | None = None  # time.time() when the host was lost
    lines: list[str] = field(default_factory=list)
    failure: str = ""

    @property
    def recovery_point(self) -> str:
        """`2026-12-07 02:31:05, 41 s before the loss`: the newest backup's time and the writes a loss costs."""
        if self.backup_taken is None:
            return "unknown"
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.backup_taken))
        lost = f", {self.lost_at - self.backup_taken:.0f} s before the loss" if self.lost_at else ""
        return f"{when}{lost}"

    def summary(self) -> str:
        """The drill's one line: host, outcome, recovery time and point, markers."""
        if self.failure:
            return f"{self.host}: drill FAILED: {self.failure}"
        back = sum(self.back.values())
        gone = sum(not kept for kept in self.kept_second.values())
        return (f"{self.host}: recovery time {self.recovery_time:.1f} s (lost → healthy), recovery point "
                f"{self.recovery_point}; markers written before the backup back {back}/{len(self.back)}, "
                f"written after it gone {gone}/{len(self.kept_second)}")


def new_marker(kind: str) -> str:
    """A marker name of this drill's own (`dr-before-1a2b3c4d`)."""
    return f"dr-{kind}-{uuid.uuid4().hex[:8]}"


def run_drill(inventory: Inventory, client: ProxmoxClient, host: Host, markers: list[Marker], *,
              say: Callable[[str], None] = print, backup: Callable = run_backup, restore: Callable = restore_host,
              lose: Callable = lose_host, clock: Callable[[], float] = time.monotonic) -> DrillResult:
    """Drill one host (the module's docstring); the result, its failure said in one line rather than raised."""
    result = DrillResult(host.hostname, new_marker("before"), new_marker("after"))

    def note(line: str) -> None:
        result.lines.append(line)
        say(line)

    try:
        for marker in markers:
            marker.write(result.first)
        note(f"marker   {result.first} written: {', '.join(m.where for m in markers) or 'no service data'}")
        if backup(inventory, client, hosts=[host.hostname], say=note) != 0:
            result.failure = f"make backup of {host.hostname} failed (its lines above)"
            return result
        newest = node_backups.backups(client, host.node, inventory.backup.storage, host.vmid)
        result.backup_taken = int(newest[0]["ctime"]) if newest else None
        for marker in markers:
            marker.write(result.second)
        note(f"marker   {result.second} written after the backup")
        lose(client, host)
        started, result.lost_at = clock(), time.time()
        note(f"lost     CT {host.vmid} ({host.hostname}) destroyed with its volumes and snapshots")
        if restore(inventory, client, host.hostname, NEWEST, say=note) != 0:
            result.failure = f"make restore HOST={host.hostname} failed (its lines above)"
            return result
        result.recovery_time = clock() - started
        try:
            note(apply_policy_job(client, inventory) + " (the destroy's purge took the CT out of it)")
        except NoBackupApi as reason:
            note(f"backup job not written: {reason}")
        for marker in markers:
            result.back[marker.where] = marker.present(result.first)
            result.kept_second[marker.where] = marker.present(result.second)
    except (MarkerProblem, ProxmoxError) as problem:
        result.failure = str(problem).strip()
    note(result.summary())
    return result


def clean_markers(markers: list[Marker], result: DrillResult) -> None:
    """Remove the drill's markers (best effort: a host the drill left broken keeps them)."""
    for marker in markers:
        for name in (result.first, result.second):
            try:
                marker.remove(name)
            except MarkerProblem:
                continue
