"""`make restore HOST=<name> [FROM=<volid>|newest]`: one host back from its vzdump archive, converged, checked.

The steps, a line each with its time: choose (the host and the archive, every refusal before any change) →
verify (the whole archive read by the node: a trial restore to a free VMID, removed at once) → stop → restore
(over the CT, PVE's restore=1 force=1, started) → converge (the deploy's site.yml limited to the host) → health
(the host's checks and services, as the deploy's health stage waits for them). The recovery time is the whole.

Why a trial restore: on PVE, a restore with force=1 destroys the old CT's volumes before it reads the archive, so
a damaged archive would leave no container at all. PVE's API has no verify for a `dir` storage's backups (only
Proxmox Backup Server's are verified); a restore to a scratch CT is the one call that reads every block.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from plugins.backup.restore_choice import RestoreChoice, RestoreRefused, choose
from plugins.backup.run import size_text
from plugins.deploy.run_lock import LockHeld, RunLock, UnfinishedRun
from plugins.health.registry import services_of
from plugins.health.results import FAIL
from plugins.health.waiting import wait_hosts_and_services
from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError
from plugins.ssh.known_hosts import known_hosts_file
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import SITE_PLAYBOOK, run_playbook
from plugins.tools.vault import vault_files

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient

# A restore reads and writes the whole root file system: minutes on a big host, never the client's default.
RESTORE_TIMEOUT = 3600.0
SCRATCH_NAME = "restore-check"


class RestoreFailed(RuntimeError):
    """A step of a started restore failed: one line saying which and why (and what state the host is in)."""


def _rootfs_storage(config: dict) -> str | None:
    """The storage of the CT's root disk (`local:250/vm-250-disk-0.raw,size=8G` → local)."""
    rootfs = str(config.get("rootfs") or "")
    return rootfs.split(":", 1)[0] if ":" in rootfs else None


def verify_archive(client: ProxmoxClient, host: Host, volid: str, storage: str | None) -> int:
    """Restore the archive to a free VMID (not started, new MAC, no boot) and remove it; the VMID used.
    RestoreFailed naming PVE's reason when the archive cannot be read to its end."""
    scratch = node_backups.next_vmid(client)
    options = {"unique": 1, "onboot": 0, "hostname": f"{SCRATCH_NAME}-{host.vmid}",
               **({"storage": storage} if storage else {})}
    try:
        node_backups.restore(client, host.node, scratch, volid, force=False, start=False, timeout=RESTORE_TIMEOUT,
                             **options)
    except ProxmoxError as error:
        reason = getattr(error, "exitstatus", "") or str(error)
        raise RestoreFailed(f"the archive {volid} is damaged or unreadable: {reason}; {host.hostname} "
                            f"({host.vmid}) was not touched") from None
    finally:
        if client.container_exists(host.node, scratch):
            node_backups.destroy(client, host.node, scratch)
    return scratch


def replace_container(client: ProxmoxClient, host: Host, volid: str, storage: str | None, exists: bool) -> None:
    """Restore the CT over itself (force=1 when it exists) and start it; RestoreFailed with PVE's reason."""
    try:
        node_backups.restore(client, host.node, host.vmid, volid, force=exists, start=True, timeout=RESTORE_TIMEOUT,
                             **({"storage": storage} if storage else {}))
    except ProxmoxError as error:
        reason = getattr(error, "exitstatus", "") or str(error)
        state = "missing" if not client.container_exists(host.node, host.vmid) else "as PVE left it"
        raise RestoreFailed(f"restore of {host.hostname} ({host.vmid}) from {volid} failed: {reason}; the CT is "
                            f"{state}: run make restore again or make deploy") from None


def converge(inventory: Inventory, host: Host) -> str:
    """The deploy's site.yml on this host alone; its recap line, or RestoreFailed naming the failed tasks."""
    result = run_playbook(SITE_PLAYBOOK, ansible_inventory(inventory), private_key=inventory.runner.deploy_key,
                          limit=host.hostname, known_hosts=known_hosts_file(inventory), vault=vault_files(inventory))
    if not result.ok:
        failures = "; ".join(f"task '{f.task}': {f.message}" for f in result.failures()) or result.summary()
        raise RestoreFailed(f"converging {host.hostname} with ansible failed: {failures}")
    return result.summary()


def check_health(inventory: Inventory, host: Host) -> str:
    """The host's health checks and services, waited for as the deploy's health stage does; a summary, or
    RestoreFailed naming each failure."""
    services = services_of([host])
    checks, answers = wait_hosts_and_services(inventory, [host], services)
    failed = [r.message for r in checks.values() if r.outcome == FAIL]
    failed += [a.message or f"{a.service}: {a.status or a.error}" for a in answers.values() if not a.ok]
    if failed:
        raise RestoreFailed(f"{host.hostname} restored but not healthy: {'; '.join(failed)}")
    return f"{len(checks)} checks passed, {len(answers)} services answered"


class Steps:
    """The restore's lines: each step's text and seconds, and the time since the start (the recovery time)."""

    def __init__(self, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.say, self.clock = say, clock
        self.started = self.last = clock()

    def done(self, step: str, text: str) -> None:
        """Say one finished step with its own time."""
        now = self.clock()
        self.say(f"{step:<9} {text} ({now - self.last:.1f} s)")
        self.last = now

    @property
    def elapsed(self) -> float:
        """Seconds since the restore started."""
        return self.clock() - self.started


def restore_host(inventory: Inventory, client: ProxmoxClient, name: str, source: str = "", *,
                 say: Callable[[str], None] = print, converge_host: Callable = converge,
                 check_host: Callable = check_health) -> int:
    """Restore one host from its newest (or the named) backup, converge and check it; 0 when healthy, 1 when a
    step failed, 2 when refused before any change."""
    steps = Steps(say)
    try:
        choice: RestoreChoice = choose(client, inventory, name, source)
    except RestoreRefused as refused:
        say(str(refused))
        return 2
    host = choice.host
    lock = RunLock(inventory.environment)  # a deploy and a restore of one environment never run together
    try:
        lock.acquire(f"restore-{host.hostname}", str(inventory.source))
    except (LockHeld, UnfinishedRun) as held:
        say(f"restore of {host.hostname} refused: {held}")
        return 2
    try:
        return _restore(inventory, client, choice, steps, say, converge_host, check_host)
    finally:
        lock.release()


def _restore(inventory: Inventory, client: ProxmoxClient, choice: RestoreChoice, steps: Steps,
             say: Callable[[str], None], converge_host: Callable, check_host: Callable) -> int:
    host, volid = choice.host, choice.volid
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(int(choice.backup.get("ctime", 0))))
    steps.done("choose", f"{host.hostname} ({host.vmid}) from {volid}, {size_text(int(choice.backup.get('size', 0)))}, "
                         f"taken {when}")
    try:
        exists = client.container_exists(host.node, host.vmid)
        config = client._call(f"read the config of CT {host.vmid}",
                              lambda api: api.nodes(host.node).lxc(host.vmid).config.get()) if exists else {}
        storage = _rootfs_storage(config or {})
        scratch = verify_archive(client, host, volid, storage)
        steps.done("verify", f"every block of the archive read by the node (trial restore to CT {scratch}, removed)")
        if exists and client.container_status(host.node, host.vmid).get("status") == "running":
            client.stop(host.node, host.vmid)
            steps.done("stop", f"CT {host.vmid} stopped")
        replace_container(client, host, volid, storage, exists)
        steps.done("restore", f"CT {host.vmid} restored from the archive and started")
        steps.done("converge", converge_host(inventory, host))
        steps.done("health", check_host(inventory, host))
    except (RestoreFailed, ProxmoxError) as failure:
        say(f"restore of {host.hostname} FAILED after {steps.elapsed:.1f} s: {str(failure).strip()}")
        return 1
    say(f"{host.hostname} restored from {volid} and healthy: recovery time {steps.elapsed:.1f} s "
        f"(recovery point {when})")
    return 0
