"""Snapshot: every existing container of the rollback set gets deploy_<run id> before anything changes.

Containers that do not exist yet (a first deploy) are listed, not an error. The runner and this
machine are never in the rollback set (incident #7). Old deploy_* snapshots are pruned to the
inventory's retention.
"""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.proxmox import snapshots_to_prune

pytestmark = [pytest.mark.order(10), pytest.mark.stage("snapshot", plan_only=False)]


def test_every_existing_rollback_host_has_a_snapshot_of_this_run(deployment, proxmox, inventory):
    """Each existing container of the rollback set has snapshot deploy_<run id>; each task ended OK."""
    name = deployment.snapshot_name
    targets = [h for h in inventory.rollback_set if h.vmid not in deployment.first_deploy]
    failures = []
    for node in sorted({h.node for h in targets}):
        group = {h.vmid: name for h in targets if h.node == node}
        with reporting.step(f"snapshot {len(group)} container(s) on {node} as {name}"):
            outcomes = proxmox.snapshot_many(node, group, description=f"before deploy {deployment.run_id}")
        for vmid, outcome in outcomes.items():
            if isinstance(outcome, Exception):
                failures.append(f"{inventory.host(vmid).hostname} ({vmid}): {outcome}")
            else:
                deployment.snapshots[vmid] = name
    created = ", ".join(inventory.host(v).hostname for v in deployment.first_deploy) or "none"
    deployment.stage("snapshot").summary = f"{len(deployment.snapshots)} snapshot(s) {name}; first deploy of: {created}"
    reporting.attach_text("snapshots", deployment.stage("snapshot").summary)
    assert not failures, f"snapshot {name} failed on: " + "; ".join(failures)


def test_old_deploy_snapshots_are_pruned_to_retention(deployment, proxmox, inventory):
    """Only the newest deploy_* snapshots (inventory deploy.snapshot_retention) are kept."""
    retention = inventory.deploy.snapshot_retention
    failures = []
    hosts = [inventory.host(vmid) for vmid in deployment.snapshots]
    for node in sorted({h.node for h in hosts}):
        old = {h.vmid: snapshots_to_prune(proxmox.snapshots(node, h.vmid), retention, current=deployment.snapshot_name)
               for h in hosts if h.node == node}
        for vmid, outcome in proxmox.delete_snapshots_many(node, old).items():
            if isinstance(outcome, Exception):
                failures.append(f"{inventory.host(vmid).hostname}: {outcome}")
            else:
                deployment.pruned.setdefault(vmid, []).extend(outcome)
    assert not failures, "pruning old snapshots failed: " + "; ".join(failures)
