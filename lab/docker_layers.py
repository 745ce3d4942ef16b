"""Docker image layers of a lab host's docker dir: what a snapshot may hard-link instead of copying.

Docker's overlay2 driver never writes into a committed image layer (overlay2/<cache-id>): containers
write into their own upper layer, and removing an image unlinks the layer's files, which leaves a
hard-linked copy intact. So a snapshot links those files (instant, no space) and copies the rest
(container layers, volumes, metadata), which Docker does rewrite in place. This is the lab's
stand-in for the copy-on-write snapshots of PVE storage (ZFS, LVM-thin). Only a process writing
into /var/lib/docker/overlay2/<image layer>/ behind Docker's back could alter a snapshot.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

CACHE_ID = re.compile(r"^[0-9a-f]{64}$")


def image_layer_dirs(docker_dir: Path) -> list[str]:
    """Names of overlay2/ dirs that hold committed image layers (from image/overlay2/layerdb/sha256)."""
    layerdb = docker_dir / "image" / "overlay2" / "layerdb" / "sha256"
    names = set()
    for cache_id in layerdb.glob("*/cache-id"):
        name = cache_id.read_text().strip()
        if CACHE_ID.match(name) and (docker_dir / "overlay2" / name).is_dir():
            names.add(name)
    return sorted(names)


def rsync_excludes(layers: list[str]) -> list[str]:
    """rsync arguments that leave the image layers out of a copy of the docker dir."""
    return [f"--exclude=/overlay2/{name}/" for name in layers]


def link_layers(docker_dir: Path, dest: Path, layers: list[str], timeout: float = 300) -> None:
    """Hard-link each image layer of docker_dir into dest/overlay2 (directories are created, files linked)."""
    if not layers:
        return
    (dest / "overlay2").mkdir(parents=True, exist_ok=True)
    sources = [str(docker_dir / "overlay2" / name) for name in layers]
    done = subprocess.run(["cp", "-a", "--link", *sources, str(dest / "overlay2")],
                          check=False, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise OSError(f"hard-linking image layers of {docker_dir} into {dest} failed: "
                      f"{done.stderr.strip() or done.returncode}")
