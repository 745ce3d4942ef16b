"""Snapshot: every existing container of the rollback set gets deploy_<run id> before anything changes.

Containers that do not exist yet (a first deploy) are listed, not an error. The runner and this machine
are never in the rollback set (incident #7); a host the run leaves out (its node down) gets no snapshot. Old deploy_* snapshots are pruned to the inventory's retention.
"""

from __future__ import annotations

import subprocess
from typing import TYPE_CHECKING

from plugins.health.dockerd import docker_containers, docker_ps_command
from plugins.health.remote import as_script
from plugins.health.waiting import ssh_pool
from plugins.proxmox.client import ProxmoxClient, per_node
from plugins.proxmox.snapshots import snapshots_to_prune
from plugins.report import allure_output
from plugins.shared.fanout import fan_out

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession


def take_snapshots(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Snapshot every existing container of the rollback set, node by node; record them; give the failures."""
    inventory, name = deployment.inventory, deployment.snapshot_name
    targets = [h for h in inventory.rollback_set
               if h.vmid not in deployment.first_deploy and h.vmid not in deployment.left_out]
    failures = []
    for node, hosts in per_node(targets).items():
        with allure_output.step(f"snapshot {len(hosts)} container(s) on {node} as {name}"):
            outcomes = proxmox.snapshot_many(node, {h.vmid: name for h in hosts},
                                             description=f"before deploy {deployment.run_id}")
        for vmid, outcome in outcomes.items():
            if isinstance(outcome, Exception):
                failures.append(f"{inventory.host(vmid).hostname} ({vmid}): {outcome}")
            else:
                deployment.snapshots[vmid] = name
    deployment.containers_before.update(containers_now(inventory, [inventory.host(v) for v in deployment.snapshots]))
    created = ", ".join(inventory.host(v).hostname for v in deployment.first_deploy) or "none"
    summary = f"{len(deployment.snapshots)} snapshot(s) {name}; first deploy of: {created}"
    deployment.stage("snapshot").summary = summary
    allure_output.attach_text("snapshots", summary)
    return failures


def containers_now(inventory, hosts: list) -> dict[int, list[str]]:
    """{vmid: its containers' names} of the hosts that answer (one SSH command each, side by side): what a
    rollback to the snapshots just taken brings back. A host that does not answer is left out (the rollback
    then expects everything its services declare)."""
    found: dict[int, list[str]] = {}
    if not hosts:
        return found
    with ssh_pool(inventory, hosts) as pool:
        def listed(host) -> list[str] | None:
            try:
                done = pool.run(host.hostname, as_script(docker_ps_command()), timeout=30)
                return sorted(docker_containers(done.stdout)) if done.returncode == 0 else None
            except (OSError, ValueError, subprocess.SubprocessError):
                return None

        for host, names in zip(hosts, fan_out(listed, hosts, workers=8, name="containers"), strict=True):
            if names is not None:
                found[host.vmid] = names
    return found


def prune_snapshots(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Delete the oldest deploy_* snapshots beyond the retention on every snapshotted container; give the failures."""
    inventory = deployment.inventory
    retention = inventory.deploy.snapshot_retention
    failures = []
    for node, hosts in per_node(inventory.host(vmid) for vmid in deployment.snapshots).items():
        old = {h.vmid: snapshots_to_prune(proxmox.snapshots(node, h.vmid), retention,
                                          current=deployment.snapshot_name) for h in hosts}
        for vmid, outcome in proxmox.delete_snapshots_many(node, old).items():
            if isinstance(outcome, Exception):
                failures.append(f"{inventory.host(vmid).hostname}: {outcome}")
            else:
                deployment.pruned.setdefault(vmid, []).extend(outcome)
    return failures
