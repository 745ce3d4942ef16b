"""A lab host's snapshots on plain files: image layers linked once into the host's layer store and listed by each
snapshot; a deleted snapshot is gone as soon as its delete returns, its files removed after."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading

import pytest

from lab import config
from lab.hosts import SNAP_META, TRASH_PREFIX, HostError, LabHosts, SnapshotNotFound

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


def test_the_trash_a_killed_remover_left_goes_with_the_next_delete(tmp_path):
    """A process killed mid-removal (a power cut) leaves .del-<name>-<pid>-<thread>: the next delete removes it,
    never the trash of a remover still running."""
    lab = LabHosts(config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache"))
    snapshot_dir(lab, 901, "deploy_1", 1.0)
    root = lab.paths.snapshots_root / "901"
    dead = subprocess.run(["true"], check=True) and subprocess.Popen(["true"])
    dead.wait()
    (root / f"{TRASH_PREFIX}deploy_0-{dead.pid}-1" / "delta").mkdir(parents=True)
    (root / f"{TRASH_PREFIX}deploy_9-1-1").mkdir()  # PID 1 runs
    lab.delete_snapshot(901, "deploy_1")
    for thread in [t for t in threading.enumerate() if t.name.startswith(f"remove {TRASH_PREFIX}")]:
        thread.join(10)
    assert sorted(d.name for d in root.iterdir()) == [f"{TRASH_PREFIX}deploy_9-1-1"]


def add_layer(docker, cache_id: str, text: str) -> None:
    """An image layer as Docker's overlay2 driver keeps it: overlay2/<cache-id>/diff and its layerdb entry."""
    (docker / "overlay2" / cache_id / "diff").mkdir(parents=True)
    (docker / "overlay2" / cache_id / "diff" / "file").write_text(text)
    entry = docker / "image" / "overlay2" / "layerdb" / "sha256" / f"chain-{cache_id[:4]}"
    entry.mkdir(parents=True)
    (entry / "cache-id").write_text(cache_id)


def drop_layer(docker, cache_id: str) -> None:
    """An image removed: its layer dir and its layerdb entry go."""
    shutil.rmtree(docker / "overlay2" / cache_id)
    shutil.rmtree(docker / "image" / "overlay2" / "layerdb" / "sha256" / f"chain-{cache_id[:4]}")


@pytest.fixture
def stopped_host(tmp_path, monkeypatch):
    """LabHosts on a temp lab dir with a stopped host 901: an overlay delta and a docker dir of two image layers."""
    lab = LabHosts(config.LabPaths(lab_dir=tmp_path / "lab", cache_dir=tmp_path / "cache"))
    monkeypatch.setattr(lab, "_require", lambda vmid: None)
    monkeypatch.setattr(lab, "status", lambda vmid: "stopped")
    (lab.delta_dir(901) / "etc").mkdir(parents=True)
    (lab.delta_dir(901) / "etc" / "motd").write_text("release 1\n")
    docker = lab.paths.docker_dir(901)
    add_layer(docker, "a" * 64, "layer a")
    add_layer(docker, "b" * 64, "layer b")
    (docker / "volumes" / "db").mkdir(parents=True)
    (docker / "volumes" / "db" / "rows").write_text("1\n")
    return lab


def test_layers_are_linked_once_and_a_rollback_brings_back_a_removed_one(stopped_host):
    """Snapshots list their image layers (linked into the store, not copied); a rollback restores the files, the
    layers the snapshot listed (a removed one linked back) and drops a newer one; a delete drops the store's
    layers no snapshot lists any more."""
    lab, vmid, a, b, c = stopped_host, 901, "a" * 64, "b" * 64, "c" * 64
    docker, store = lab.paths.docker_dir(vmid), lab.layer_store(vmid) / "overlay2"
    lab.snapshot(vmid, "deploy_1")
    snap = lab.paths.snapshot_dir(vmid, "deploy_1")
    assert json.loads((snap / SNAP_META).read_text())["layers"] == [a, b]
    assert not (snap / "docker" / "overlay2" / a).exists(), "an image layer copied into the snapshot"
    inode = (docker / "overlay2" / a / "diff" / "file").stat().st_ino
    assert (store / a / "diff" / "file").stat().st_ino == inode

    drop_layer(docker, b)
    add_layer(docker, c, "layer c")
    (docker / "volumes" / "db" / "rows").write_text("1\n2\n")
    # a size of its own: rsync's quick check (size, mtime in whole seconds) would take a same-size file written in
    # the same second as the snapshot's for unchanged
    (lab.delta_dir(vmid) / "etc" / "motd").write_text("release 2, longer\n")
    lab.snapshot(vmid, "deploy_2")
    assert sorted(d.name for d in store.iterdir()) == [a, b, c]
    assert (store / a / "diff" / "file").stat().st_ino == inode, "a layer the store had was linked again"

    lab.rollback(vmid, "deploy_1", start=False)
    assert (lab.delta_dir(vmid) / "etc" / "motd").read_text() == "release 1\n"
    assert (docker / "volumes" / "db" / "rows").read_text() == "1\n"
    assert sorted(d.name for d in (docker / "overlay2").iterdir()) == [a, b]
    assert (docker / "overlay2" / b / "diff" / "file").read_text() == "layer b"

    lab.delete_snapshot(vmid, "deploy_1")
    for thread in [t for t in threading.enumerate() if t.name.startswith(f"remove {TRASH_PREFIX}")]:
        thread.join(10)
    assert sorted(d.name for d in store.iterdir()) == [a, c]
    assert (docker / "overlay2" / b / "diff" / "file").read_text() == "layer b", "the live layer lost its files"
    lab.rollback(vmid, "deploy_2", start=False)
    assert sorted(d.name for d in (docker / "overlay2").iterdir()) == [a, c]
    assert (lab.delta_dir(vmid) / "etc" / "motd").read_text() == "release 2, longer\n"


def test_an_archive_of_a_snapshot_gets_its_layers_and_a_lost_layer_is_named(stopped_host):
    """Archiving a snapshot links its listed layers into its own docker dir; a layer missing from the store is a
    rollback error naming it, never a silently incomplete host."""
    lab, vmid, a, b = stopped_host, 901, "a" * 64, "b" * 64
    lab.snapshot(vmid, "deploy_1")
    snap = lab.paths.snapshot_dir(vmid, "deploy_1")
    lab._complete_layers(vmid, snap)
    assert sorted(d.name for d in (snap / "docker" / "overlay2").iterdir()) == [a, b]
    lab.delete_snapshot(vmid, "deploy_1")
    lab.snapshot(vmid, "deploy_2")
    drop_layer(lab.paths.docker_dir(vmid), b)
    shutil.rmtree(lab.layer_store(vmid) / "overlay2" / b)
    with pytest.raises(HostError, match=f"image layer\\(s\\) {b} of snapshot 'deploy_2' missing"):
        lab.rollback(vmid, "deploy_2", start=False)


def test_a_file_rewritten_at_the_same_size_in_the_snapshots_second_is_rolled_back(stopped_host):
    """rsync's quick check compares whole seconds: a same-size rewrite within the second of the snapshot must
    still be undone by the rollback (mtimes compared to the nanosecond)."""
    lab, vmid = stopped_host, 901
    motd, rows = lab.delta_dir(vmid) / "etc" / "motd", lab.paths.docker_dir(vmid) / "volumes" / "db" / "rows"
    lab.snapshot(vmid, "deploy_1")
    for path, text in ((motd, "release 9\n"), (rows, "9\n")):
        before = path.stat()
        path.write_text(text)
        # the same size, the same whole second as the snapshot's copy: only the nanoseconds differ
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1))
    lab.rollback(vmid, "deploy_1", start=False)
    assert motd.read_text() == "release 1\n" and rows.read_text() == "1\n"
