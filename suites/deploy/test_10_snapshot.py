"""Snapshot: every existing container of the rollback set gets deploy_<run id> before anything changes.

Containers that do not exist yet (a first deploy) are listed, not an error. The runner and this
machine are never in the rollback set (incident #7). Old deploy_* snapshots are pruned to the
inventory's retention. The work: plugins/deploy/stages/snapshot.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import snapshot

pytestmark = pytest.mark.stage("snapshot")


def test_every_existing_rollback_host_has_a_snapshot_of_this_run(deployment, proxmox):
    """Each existing container of the rollback set has snapshot deploy_<run id>; each task ended OK."""
    failures = snapshot.take_snapshots(deployment, proxmox)
    assert not failures, f"snapshot {deployment.snapshot_name} failed on: " + "; ".join(failures)


def test_old_deploy_snapshots_are_pruned_to_retention(deployment, proxmox):
    """Only the newest deploy_* snapshots (inventory deploy.snapshot_retention) are kept."""
    failures = snapshot.prune_snapshots(deployment, proxmox)
    assert not failures, "pruning old snapshots failed: " + "; ".join(failures)
