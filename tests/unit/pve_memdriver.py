"""An in-memory host driver for the emulator's unit tests (no LXC, no root)."""

from __future__ import annotations

import copy
import io
import subprocess
import tarfile
import threading
from collections import Counter
from pathlib import Path


class HostError(RuntimeError):
    """Raised like lab.hosts.HostError."""


class MemHosts:
    """Containers as dicts: files are a dict path -> text, snapshots copy them."""

    def __init__(self):
        self.cts: dict[int, dict] = {}
        self.lock = threading.Lock()
        self.calls: list[tuple] = []
        self.reads: Counter = Counter()  # the read-only calls, apart from the calls that change a CT

    def _ct(self, vmid: int) -> dict:
        if vmid not in self.cts:
            raise HostError(f"container {vmid} does not exist")
        return self.cts[vmid]

    def create(self, vmid, hostname, ip, prefix, gateway, mac, ssh_public_keys, memory=512, cores=1):
        """Create a stopped CT."""
        self.calls.append(("create", vmid, hostname, ip, prefix, gateway, mac, ssh_public_keys, memory, cores))
        if vmid in self.cts:
            raise HostError(f"container {vmid} exists")
        self.cts[vmid] = {"state": "stopped", "files": {"/etc/hostname": hostname}, "snaps": {},
                          "keys": ssh_public_keys}

    def start(self, vmid):
        """Start."""
        self.calls.append(("start", vmid))
        self._ct(vmid)["state"] = "running"

    def stop(self, vmid, timeout=10):
        """Stop."""
        self.calls.append(("stop", vmid))
        self._ct(vmid)["state"] = "stopped"

    def kill(self, vmid):
        """Stop at once."""
        self.calls.append(("kill", vmid))
        self._ct(vmid)["state"] = "stopped"

    def status(self, vmid):
        """Return running/stopped."""
        self.reads["status"] += 1
        return self._ct(vmid)["state"]

    def exists(self, vmid):
        """Tell whether the CT exists."""
        return vmid in self.cts

    def list(self):
        """Every CT with its state, as LabHosts.list() gives them (one listing)."""
        self.reads["list"] += 1
        return [{"vmid": vmid, "state": self.cts[vmid]["state"]} for vmid in sorted(self.cts)]

    def snapshot(self, vmid, name):
        """Copy the files."""
        ct = self._ct(vmid)
        ct["snaps"][name] = copy.deepcopy(ct["files"])

    def rollback(self, vmid, name, start):
        """Restore the files; the CT must be stopped."""
        ct = self._ct(vmid)
        if ct["state"] == "running":
            raise HostError("rollback of a running container")
        ct["files"] = copy.deepcopy(ct["snaps"][name])
        if start:
            ct["state"] = "running"

    def delete_snapshot(self, vmid, name):
        """Forget a snapshot."""
        del self._ct(vmid)["snaps"][name]

    def snapshots(self, vmid):
        """Return the snapshot names."""
        return list(self._ct(vmid)["snaps"])

    def destroy(self, vmid):
        """Remove a stopped CT."""
        if self._ct(vmid)["state"] == "running":
            raise HostError("destroy of a running container")
        del self.cts[vmid]

    def archive(self, vmid, snapshot, extra, target, compressor, log=print):
        """Write the files (of a snapshot, or the CT's own) and ./etc/vzdump/ as a real tar, compressed as asked."""
        ct = self._ct(vmid)
        self.calls.append(("archive", vmid, snapshot))
        files = ct["snaps"][snapshot] if snapshot else ct["files"]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for rel in ("etc/vzdump/pct.conf", "etc/vzdump/pct.fw"):
                tar.add(Path(extra) / rel, arcname=f"./{rel}")
            for path, text in sorted(files.items()):
                data = text.encode()
                info = tarfile.TarInfo("." + path)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        raw = buf.getvalue()
        if compressor:
            raw = subprocess.run(compressor, input=raw, capture_output=True, check=True).stdout
        Path(target).write_bytes(raw)
        log(f"Total bytes written: {len(buf.getvalue())}")

    def restore_files(self, vmid, tree):
        """Make the stopped CT's files those of an extracted archive."""
        ct = self._ct(vmid)
        if ct["state"] == "running":
            raise HostError("restore of a running container")
        root = Path(tree)
        ct["files"] = {"/" + str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
