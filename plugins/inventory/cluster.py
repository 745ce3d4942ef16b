"""The Proxmox cluster an inventory runs on: its nodes, the storages every node shares, and which hosts the
HA manager keeps running (pve-ha-manager's resources: `ct:<vmid>`, state, max_restart, max_relocate).

No `nodes:` means PVE's standalone node, `proxmox.node`: every host runs there and none is HA-managed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from plugins.inventory.errors import Problem
from plugins.inventory.fields import IPv4, Label
from plugins.inventory.masking import shown
from plugins.inventory.refs import host_refs
from plugins.inventory.section import Strict

# pve-ha-manager's requested states (`enabled` is its alias for started: one spelling here)
HaState = Literal["started", "stopped", "disabled", "ignored"]
Tries = Annotated[int, Field(strict=True, ge=0, le=100)]


class Node(Strict):
    """One node of the cluster (corosync's nodelist)."""

    name: Label = Field(description="the node's name, as PVE shows it (hosts name it in `node:`)")
    address: IPv4 = Field(description="the node's address on the cluster network")


class HaPolicy(Strict):
    """The host as an HA resource: what the HA manager keeps it at, and how often it retries."""

    state: HaState = Field("started", description="the requested state the HA manager keeps the container in")
    max_restart: Tries = Field(1, description="restarts on its node after a failed start")
    max_relocate: Tries = Field(1, description="moves to another node after the restarts failed")


def cluster_problems(inv: Any) -> list[Problem]:
    """Node names unique, hosts on nodes that exist, HA-managed hosts on a storage every node shares."""
    problems: list[Problem] = []
    names = [n.name for n in inv.nodes]
    for field in ("name", "address"):
        first: dict[str, int] = {}
        for index, node in enumerate(inv.nodes):
            value = getattr(node, field)
            if value in first:
                message = f"{shown(value)} is already the {field} of nodes[{first[value]}] (expected a unique {field})"
                problems.append((f"nodes[{index}].{field}", message))
            first.setdefault(value, index)
    expected = f"expected one of nodes: {', '.join(names)}"
    if names and inv.proxmox.node not in names:
        problems.append(("proxmox.node", f"{shown(inv.proxmox.node)} is not a node of this inventory ({expected})"))
    refs = host_refs([h.hostname for h in inv.hosts])
    for ref, host in zip(refs, inv.hosts):
        if names and host.node is not None and host.node not in names:
            problems.append((f"{ref}.node", f"{shown(host.node)} is not a node of this inventory ({expected})"))
        if host.ha is not None and host.storage not in inv.proxmox.shared_storages:
            shared = ", ".join(inv.proxmox.shared_storages) or "none declared in proxmox.shared_storages"
            problems.append((f"{ref}.storage", (f"an HA-managed host must live on a storage every node shares, so "
                                                f"another node can start it (expected one of: {shared}; found "
                                                f"{shown(host.storage)})")))
    return problems
