"""Which overlay2 dirs a lab snapshot links instead of copying: committed image layers only."""

from __future__ import annotations

import pytest

from lab import docker_layers

pytestmark = pytest.mark.unit

IMAGE = "a" * 64
CONTAINER = "b" * 64


def fake_docker_dir(root):
    """A docker dir with one image layer, one container layer (+ its -init) and a stray cache-id."""
    layerdb = root / "image" / "overlay2" / "layerdb"
    (layerdb / "sha256" / "f00").mkdir(parents=True)
    (layerdb / "sha256" / "f00" / "cache-id").write_text(IMAGE)
    (layerdb / "sha256" / "bad").mkdir()
    (layerdb / "sha256" / "bad" / "cache-id").write_text("../../etc")
    (layerdb / "mounts" / "c1").mkdir(parents=True)
    (layerdb / "mounts" / "c1" / "mount-id").write_text(CONTAINER)
    for name in (IMAGE, CONTAINER, CONTAINER + "-init"):
        (root / "overlay2" / name / "diff").mkdir(parents=True)
        (root / "overlay2" / name / "diff" / "file").write_text(name)
    return root


def test_only_committed_image_layers_are_listed(tmp_path):
    """Container layers and values that are not cache ids are never linked."""
    assert docker_layers.image_layer_dirs(fake_docker_dir(tmp_path)) == [IMAGE]


def test_no_docker_dir_means_no_layer(tmp_path):
    """A host without Docker state has nothing to link."""
    assert docker_layers.image_layer_dirs(tmp_path / "missing") == []


def test_linked_layers_share_inodes_and_the_rest_is_excluded(tmp_path):
    """link_layers hard-links the layer's files; rsync_excludes anchors each layer at the copy's root."""
    src = fake_docker_dir(tmp_path / "src")
    dest = tmp_path / "dest"
    docker_layers.link_layers(src, dest, [IMAGE])
    linked = dest / "overlay2" / IMAGE / "diff" / "file"
    assert linked.stat().st_ino == (src / "overlay2" / IMAGE / "diff" / "file").stat().st_ino
    assert not (dest / "overlay2" / CONTAINER).exists()
    assert docker_layers.rsync_excludes([IMAGE]) == [f"--exclude=/overlay2/{IMAGE}/"]


def test_a_failed_link_says_where(tmp_path):
    """A layer that vanished gives one error naming the docker dir."""
    with pytest.raises(OSError, match="hard-linking image layers of"):
        docker_layers.link_layers(tmp_path, tmp_path / "dest", [IMAGE])
