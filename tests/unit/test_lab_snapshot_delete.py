"""A lab host's snapshot is gone as soon as its delete returns; its hard-linked files are removed after."""

from __future__ import annotations

import json
import shutil
import threading

import pytest

from lab import config
from lab.hosts import SNAP_META, TRASH_PREFIX, LabHosts, SnapshotNotFound

pytestmark = pytest.mark.unit


def snapshot_dir(lab: LabHosts, vmid: int, name: str, created: float):
    """A snapshot as LabHosts.snapshot leaves it: {delta,docker} and its metadata."""
    snap = lab.paths.snapshot_dir(vmid, name)
    (snap / "delta" / "etc").mkdir(parents=True)
    (snap / "delta" / "etc" / "hostname").write_text("proxy\n")
    (snap / "docker").mkdir()
    (snap / SNAP_META).write_text(json.dumps({"name": name, "created": created}))
    return snap


def test_a_deleted_snapshot_is_unlisted_at_once_and_its_files_removed_after(tmp_path, monkeypatch):
    """delete_snapshot returns before the files are removed; the listing never shows the snapshot again."""
    lab = LabHosts(config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache"))
    snapshot_dir(lab, 901, "deploy_1", 1.0)
    snapshot_dir(lab, 901, "deploy_2", 2.0)
    may_remove, removing = threading.Event(), []
    real_rmtree = shutil.rmtree

    def held_rmtree(path, ignore_errors=False):
        removing.append(path.name)
        may_remove.wait(10)
        real_rmtree(path, ignore_errors=ignore_errors)

    monkeypatch.setattr("lab.hosts.shutil.rmtree", held_rmtree)
    lab.delete_snapshot(901, "deploy_1")
    assert lab.snapshots(901) == ["deploy_2"]
    with pytest.raises(SnapshotNotFound):
        lab.delete_snapshot(901, "deploy_1")
    root = lab.paths.snapshots_root / "901"
    assert [d.name.startswith(TRASH_PREFIX + "deploy_1-") for d in root.iterdir()].count(True) == 1
    may_remove.set()
    for thread in [t for t in threading.enumerate() if t.name.startswith(f"remove {TRASH_PREFIX}")]:
        thread.join(10)
    assert sorted(d.name for d in root.iterdir()) == ["deploy_2"] and len(removing) == 1
