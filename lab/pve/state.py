"""Per-CT PVE config and snapshot metadata, persisted as JSON under LAB_DIR/pve/state/lxc/."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
from pathlib import Path


def render_conf(config: dict) -> str:
    """Render a config as PVE's .conf text (description lines as `#` comments)."""
    lines = [f"#{line}" for line in str(config.get("description", "")).splitlines() if "description" in config]
    lines += [f"{k}: {config[k]}" for k in sorted(config) if k not in ("description", "digest")]
    return "\n".join(lines) + "\n"


def parse_conf(text: str) -> dict:
    """Parse PVE's .conf text (the current config, up to the first [snapshot] section) back into a dict."""
    config: dict = {}
    description = []
    for line in text.splitlines():
        if line.startswith("["):
            break
        if line.startswith("#"):
            description.append(line[1:])
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip():
            value = value.strip()
            config[key.strip()] = int(value) if value.isdigit() and not value.startswith("0") or value == "0" else value
    if description:
        config["description"] = "\n".join(description)
    return config


def digest(config: dict) -> str:
    """Return the SHA1 digest of a config, as PVE gives to detect concurrent changes."""
    return hashlib.sha1(render_conf(config).encode()).hexdigest()


class CTStore:
    """Keeps each CT's current config and its snapshots' configs in <root>/lxc/<vmid>.json."""

    def __init__(self, root: str | os.PathLike):
        self.dir = Path(root) / "lxc"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._locks: dict[int, threading.RLock] = {}
        self._guard = threading.Lock()

    def lock(self, vmid: int) -> threading.RLock:
        """Return the lock that serializes work on one CT (PVE's lock_config)."""
        with self._guard:
            return self._locks.setdefault(int(vmid), threading.RLock())

    def _path(self, vmid: int) -> Path:
        return self.dir / f"{int(vmid)}.json"

    def exists(self, vmid: int) -> bool:
        """Tell whether the CT has a config."""
        return self._path(vmid).exists()

    def vmids(self) -> list[int]:
        """Return the vmids with a config, sorted."""
        return sorted(int(p.stem) for p in self.dir.glob("*.json") if p.stem.isdigit())

    def load(self, vmid: int) -> dict | None:
        """Return {"config": {...}, "snapshots": {name: {...}}} or None when missing."""
        try:
            return json.loads(self._path(vmid).read_text())
        except FileNotFoundError:
            return None

    def save(self, vmid: int, record: dict) -> None:
        """Write a CT's record atomically."""
        path = self._path(vmid)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp, path)

    def create(self, vmid: int, config: dict) -> bool:
        """Record a new CT's config; False when one already exists."""
        with self._guard:
            if self.exists(vmid):
                return False
            self.save(vmid, {"config": config, "snapshots": {}})
            return True

    def delete(self, vmid: int) -> None:
        """Forget a CT."""
        self._path(vmid).unlink(missing_ok=True)

    def add_snapshot(self, vmid: int, name: str, snaptime: int, description: str) -> None:
        """Record a snapshot of the current config; the current config's parent becomes it."""
        record = self.load(vmid)
        config = record["config"]
        saved = {k: v for k, v in copy.deepcopy(config).items() if k not in ("lock", "digest", "parent")}
        snap = {"snaptime": snaptime, "description": description, "config": saved}
        if config.get("parent"):
            snap["parent"] = config["parent"]
        record["snapshots"][name] = snap
        config["parent"] = name
        self.save(vmid, record)

    def remove_snapshot(self, vmid: int, name: str) -> None:
        """Drop a snapshot and relink the parent chain around it."""
        record = self.load(vmid)
        gone = record["snapshots"].pop(name)
        for holder in [record["config"], *record["snapshots"].values()]:
            if holder.get("parent") == name:
                if gone.get("parent"):
                    holder["parent"] = gone["parent"]
                else:
                    holder.pop("parent", None)
        self.save(vmid, record)

    def restore_snapshot(self, vmid: int, name: str) -> None:
        """Make a snapshot's config current again; its parent becomes the snapshot."""
        record = self.load(vmid)
        config = copy.deepcopy(record["snapshots"][name]["config"])
        config["parent"] = name
        record["config"] = config
        self.save(vmid, record)
