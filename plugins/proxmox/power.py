"""What PVE says of each declared host before anything touches it: running, stopped, missing, or locked.

Read once per run from the cluster's guest list (/cluster/resources, one call, each CT on the node it runs on now,
wherever the inventory placed it: HA or a migration may have moved it): the deploy's preflight, its start stage
and the health suite all take a host's state from here, so a stopped or missing host is named as such instead
of being found out through SSH and HTTP timeouts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.inventory import Host
    from plugins.proxmox.client import ProxmoxClient

RUNNING, STOPPED, MISSING = "running", "stopped", "missing"


@dataclass(frozen=True)
class HostState:
    """One declared host as PVE lists it: its status (running, stopped, missing, …) and its lock, if any."""

    hostname: str
    vmid: int
    node: str
    status: str
    lock: str = ""  # PVE's config lock (backup, snapshot, rollback, migrate, create, …): no task may run on it
    name: str = ""  # the CT's hostname as PVE lists it
    node_down: bool = False  # the node it is on is offline (/cluster/status): down with it, or awaiting HA recovery

    @property
    def exists(self) -> bool:
        """Tell whether PVE has the container (in any status)."""
        return self.status != MISSING

    @property
    def down(self) -> bool:
        """Tell whether nothing can answer on the host: it is stopped or does not exist."""
        return self.status != RUNNING

    @property
    def word(self) -> str:
        """The state in one word for tables: running, stopped, missing, locked."""
        return "locked" if self.lock else self.status

    def line(self) -> str:
        """The state as one line: `proxy (CT 200) is stopped`, `proxy (CT 200) is locked (backup)`."""
        who = f"{self.hostname} (CT {self.vmid})"
        if self.lock:
            return f"{who} is locked ({self.lock}) on node '{self.node}', status {self.status}"
        if self.status == MISSING:
            return f"{who} is missing: node '{self.node}' has no CT {self.vmid}"
        if self.node_down:
            return f"{who} is {self.status}: its node '{self.node}' is down"
        return f"{who} is {self.status}"


def host_states(proxmox: ProxmoxClient, hosts: Iterable[Host], offline: Iterable[str] = ()) -> dict[int, HostState]:
    """{vmid: HostState} of the hosts, from the cluster's guest list (one API call), each on its current node;
    offline: the nodes known to be down (their hosts are marked node_down)."""
    offline = set(offline)
    guests = proxmox.guests()
    states = {}
    for host in hosts:
        row = guests.get(host.vmid)
        node = host.node if row is None else str(row["node"])
        status = MISSING if row is None else str(row.get("status") or "unknown")
        lock = "" if row is None else str(row.get("lock") or "")
        name = "" if row is None else str(row.get("name") or "")
        states[host.vmid] = HostState(host.hostname, host.vmid, node, status, lock, name, node in offline)
    return states
