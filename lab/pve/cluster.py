"""The cluster the emulator answers for: its nodes (corosync's nodelist), which are online, quorum, and where
each CT is placed. Kept in STATE_DIR/state/cluster.json so a restart of the emulator finds the same cluster.

One node (the default) is PVE's standalone node: no cluster entry in /cluster/status, nodeid 0, always quorate.
With more nodes the first is the local node (the one whose API the lab's port serves); the others are
reached through it, as pveproxy proxies a call to the node that owns it (pve-http-server's proxy_request).
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

CLUSTER_FILE = "cluster.json"
CLUSTER_NAME = "lab"
# The local node's address on the lab's bridge; the others follow it (198.18.0.2, .3, …).
FIRST_NODE_IP = (198, 18, 0, 1)


class ClusterError(ValueError):
    """A cluster the emulator cannot serve (one line: what is wrong and what was expected)."""


@dataclass
class ClusterNode:
    """One member of the cluster."""

    name: str
    nodeid: int
    ip: str
    online: bool = True
    since: float = 0.0  # when it last went down or came back (the HA manager's fence delay counts from it)


def node_names(default: str, count: int) -> list[str]:
    """The names of a cluster of `count` nodes: the default node, then <default>-2, <default>-3, …"""
    if count < 1:
        raise ClusterError(f"--nodes {count}: expected 1 or more")
    return [default] + [f"{default}-{i}" for i in range(2, count + 1)]


class Cluster:
    """The nodes of the emulated cluster, their state, and the quorum they make."""

    def __init__(self, state_dir: str | os.PathLike, local: str, count: int | None = None):
        self.path = Path(state_dir) / CLUSTER_FILE
        self.local = local
        self._lock = threading.Lock()
        self._stamp: int | None = None
        saved = self._read()
        if count is None and saved:
            self.nodes = saved
        else:
            names = node_names(local, count or 1)
            kept = {n.name: n for n in saved}
            a, b, c, d = FIRST_NODE_IP
            self.nodes = [kept.get(name) or ClusterNode(name, i + 1 if len(names) > 1 else 0, f"{a}.{b}.{c}.{d + i}")
                          for i, name in enumerate(names)]
            self._write()
        if self.nodes[0].name != local:
            raise ClusterError(f"{self.path}: first node {self.nodes[0].name!r}; expected the local node {local!r}")

    def _read(self) -> list[ClusterNode]:
        try:
            raw = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        return [ClusterNode(**n) for n in raw.get("nodes", [])]

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"name": CLUSTER_NAME, "nodes": [asdict(n) for n in self.nodes]}, indent=1))
        os.replace(tmp, self.path)

    @property
    def is_cluster(self) -> bool:
        """More than one node: a cluster, not PVE's standalone node."""
        return len(self.nodes) > 1

    def names(self) -> list[str]:
        """Every node's name, the local one first."""
        return [n.name for n in self.nodes]

    def get(self, name: str) -> ClusterNode | None:
        """The node of that name, or None."""
        return next((n for n in self.nodes if n.name == name), None)

    def online(self, name: str) -> bool:
        """Whether the node is a member that is up."""
        node = self.get(name)
        return node is not None and node.online

    def quorate(self) -> bool:
        """Corosync's votequorum with one vote a node: a strict majority online."""
        return sum(n.online for n in self.nodes) * 2 > len(self.nodes)

    def set_online(self, name: str, online: bool) -> None:
        """Take a node down or bring it back (the lab's control, not an API call)."""
        with self._lock:
            self.nodes = self._read() or self.nodes
            node = self.get(name)
            if node is None:
                raise ClusterError(f"node {name!r}: not in the cluster; nodes: {', '.join(self.names())}")
            if name == self.local and not online:
                raise ClusterError(f"node {name!r} serves the lab's API: it cannot go down in the emulator")
            if node.online != online:
                node.online, node.since = online, time.time()
            self._write()

    def refresh(self) -> None:
        """Re-read the nodes' state when the file changed (the lab's CLI takes nodes down from another process)."""
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp == self._stamp:
            return
        with self._lock:
            self.nodes = self._read() or self.nodes
            self._stamp = stamp
