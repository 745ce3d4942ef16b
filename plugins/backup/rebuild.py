"""`make restore-node [HOSTS=a,b]`: the node's lost hosts rebuilt from the off-site copy alone.

For a node whose containers and backup storage are gone (a dead disk, a new node): every refusal first (the hosts,
never the runner the suite runs on, none still on the node, the secrets, the storage's directory writable here, the
store answering, an archive off-site for each host), then per host, a line each with its time: fetch (the host's
newest vzdump archive from restic, whose restore checks every blob's hash, into the backup storage) → restore
(PVE's POST /nodes/{node}/lxc restore=1, started); then converge (the deploy's site.yml limited to the rebuilt
hosts, one run) → health (each host's checks and services) → the node's backup job written again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.backup import archives
from plugins.backup.credentials import BackupProblem, restic_environment
from plugins.backup.job import NoBackupApi, apply_policy_job, check_storage
from plugins.backup.restore import RESTORE_TIMEOUT, RestoreFailed, Steps, check_health
from plugins.backup.restore_choice import RestoreRefused, restorable_host
from plugins.backup.run import repository, size_text
from plugins.deploy.run_lock import LockHeld, RunLock, UnfinishedRun
from plugins.proxmox import backups as node_backups
from plugins.proxmox.tasks import ProxmoxError
from plugins.shared.this_machine import self_reason
from plugins.ssh.known_hosts import known_hosts_file
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import SITE_PLAYBOOK, run_playbook
from plugins.tools.vault import VaultProblem, vault_files

if TYPE_CHECKING:
    from pathlib import Path

    from plugins.backup.offsite import Repository
    from plugins.inventory import Host, Inventory
    from plugins.proxmox.client import ProxmoxClient


@dataclass(frozen=True)
class Rebuild:
    """What a rebuild will do, every check passed: the repository, the storage's directory, each host's snapshot."""

    repo: Repository
    storage: str
    directory: Path
    snapshots: list[tuple[Host, dict]]


def rebuilt_hosts(inventory: Inventory, names: list[str] | None = None) -> list[Host]:
    """The hosts named (RestoreRefused for an unknown one, the runner, one the policy leaves out), or every host the
    policy backs up but the runner."""
    if not names:
        return [h for h in inventory.hosts if h.hostname not in inventory.backup.exclude
                and not self_reason(inventory, h)]
    hosts = []
    for name in names:
        try:
            host = restorable_host(inventory, name)
        except RestoreRefused as refused:  # make restore's words, for this command's variable
            raise RestoreRefused(str(refused).replace(f"HOST={name}:", f"HOSTS={name}:", 1)) from None
        if name in inventory.backup.exclude:
            raise RestoreRefused(f"HOSTS={name}: the backup policy leaves it out ({inventory.where('backup.exclude')}"
                                 "): there is no archive to rebuild it from")
        hosts.append(host)
    return hosts


def plan(inventory: Inventory, client: ProxmoxClient, names: list[str] | None,
         env: Mapping[str, str] = os.environ) -> Rebuild:
    """Every check a rebuild needs, in the order a user fixes them; RestoreRefused with one line otherwise."""
    if inventory.backup is None:
        raise RestoreRefused(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, "
                             "schedule, retention, dumps, offsite)")
    hosts = rebuilt_hosts(inventory, names)
    try:
        environment = restic_environment(inventory, env)
        vault_files(inventory, env)  # the converge step needs the vault's password
        check_storage(client, inventory)
        for host in hosts:
            if client.container_exists(host.node, host.vmid):
                raise RestoreRefused(f"{host.hostname}: CT {host.vmid} exists on node {host.node}: restore-node "
                                     f"rebuilds lost hosts only (expected it gone; make restore HOST={host.hostname} "
                                     "replaces one in place)")
        directory = archives.dump_dir(client, inventory)
        repo = repository(inventory, environment)
        repo.reachable()
        if not repo.exists():
            raise RestoreRefused(f"no restic repository at {repo.repository} ({inventory.where('backup.offsite')}: "
                                 "expected the one make backup makes)")
        snapshots = []
        for host in hosts:
            found = [s for s in repo.archives(host.hostname) if archives.archive_name(s, host)]
            if not found:
                raise RestoreRefused(f"{host.hostname}: no vzdump archive of it off-site in {repo.repository} "
                                     "(expected one: make backup copies each host's newest)")
            snapshots.append((host, found[-1]))
    except (BackupProblem, VaultProblem, NoBackupApi, ProxmoxError) as problem:
        raise RestoreRefused(str(problem).strip()) from None
    return Rebuild(repo, inventory.backup.storage, directory, snapshots)


def converge(inventory: Inventory, hosts: list[Host]) -> str:
    """The deploy's site.yml on the rebuilt hosts, one run; its recap, or RestoreFailed naming the failed tasks."""
    result = run_playbook(SITE_PLAYBOOK, ansible_inventory(inventory), private_key=inventory.runner.deploy_key,
                          limit=",".join(h.hostname for h in hosts), known_hosts=known_hosts_file(inventory),
                          vault=vault_files(inventory))
    if not result.ok:
        failures = "; ".join(f"task '{f.task}': {f.message}" for f in result.failures()) or result.summary()
        raise RestoreFailed(f"converging {', '.join(h.hostname for h in hosts)} with ansible failed: {failures}")
    return result.summary()


def rebuild_host(client: ProxmoxClient, rebuild: Rebuild, host: Host, snapshot: dict, steps: Steps) -> None:
    """Fetch the host's archive into the storage and restore its CT from it, started; RestoreFailed naming why."""
    try:
        path = archives.fetch_archive(rebuild.repo, snapshot, host, rebuild.directory)
    except BackupProblem as problem:
        raise RestoreFailed(str(problem)) from None
    taken = str(snapshot.get("time", "?"))[:19].replace("T", " ")
    steps.done("fetch", f"{host.hostname}: {path.name}, {size_text(path.stat().st_size)}, from off-site snapshot "
                        f"{snapshot.get('short_id', snapshot['id'])} taken {taken}")
    volid = f"{rebuild.storage}:backup/{path.name}"
    try:
        node_backups.restore(client, host.node, host.vmid, volid, force=False, start=True, timeout=RESTORE_TIMEOUT)
    except ProxmoxError as error:
        reason = getattr(error, "exitstatus", "") or str(error)
        raise RestoreFailed(f"restore of {host.hostname} ({host.vmid}) from {volid} failed: {reason}") from None
    steps.done("restore", f"{host.hostname}: CT {host.vmid} restored from {volid} and started")


def rebuild_node(inventory: Inventory, client: ProxmoxClient, names: list[str] | None = None, *,
                 say: Callable[[str], None] = print, env: Mapping[str, str] = os.environ,
                 converge_hosts: Callable = converge, check_host: Callable = check_health) -> int:
    """Rebuild the lost hosts from the off-site copy alone; 0 when all are healthy, 1 when a step failed, 2 when
    refused before any change."""
    steps = Steps(say)
    try:
        rebuild = plan(inventory, client, names, env)
    except RestoreRefused as refused:
        say(str(refused))
        return 2
    lock = RunLock(inventory.environment)  # a deploy and a rebuild of one environment never run together
    try:
        lock.acquire("restore-node", str(inventory.source))
    except (LockHeld, UnfinishedRun) as held:
        say(f"restore-node refused: {held}")
        return 2
    hosts = [host for host, _ in rebuild.snapshots]
    try:
        steps.done("choose", f"{len(hosts)} hosts from {rebuild.repo.repository}: "
                             f"{', '.join(h.hostname for h in hosts)}")
        for host, snapshot in rebuild.snapshots:
            rebuild_host(client, rebuild, host, snapshot, steps)
        steps.done("converge", converge_hosts(inventory, hosts))
        for host in hosts:
            steps.done("health", f"{host.hostname}: {check_host(inventory, host)}")
        try:
            steps.done("job", apply_policy_job(client, inventory))
        except NoBackupApi as reason:
            steps.done("job", f"not written: {reason}")
    except (RestoreFailed, ProxmoxError) as failure:
        say(f"restore-node FAILED after {steps.elapsed:.1f} s: {str(failure).strip()}")
        return 1
    finally:
        lock.release()
    say(f"{', '.join(h.hostname for h in hosts)} rebuilt from the off-site copy and healthy: recovery time "
        f"{steps.elapsed:.1f} s")
    return 0
