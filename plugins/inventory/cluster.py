"""The Proxmox cluster an inventory runs on: its nodes, the storages every node shares, and which hosts the
HA manager keeps running (pve-ha-manager's resources: `ct:<vmid>`, state, max_restart, max_relocate) and where it
prefers them (a node-affinity rule: nodes with priorities, strict or not).

No `nodes:` means PVE's standalone node, `proxmox.node`: every host runs there and none is HA-managed.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from plugins.inventory.errors import Problem
from plugins.inventory.fields import Flag, IPv4, Label
from plugins.inventory.masking import shown
from plugins.inventory.refs import host_refs
from plugins.inventory.section import Strict

# pve-ha-manager's requested states (`enabled` is its alias for started: one spelling here)
HaState = Literal["started", "stopped", "disabled", "ignored"]
Tries = Annotated[int, Field(strict=True, ge=0, le=100)]
# a node's priority in a node-affinity rule (pve-ha-manager's `<node>[:<pri>]`: a non-negative integer)
Priority = Annotated[int, Field(strict=True, ge=0, le=1000)]


class Node(Strict):
    """One node of the cluster (corosync's nodelist)."""

    name: Label = Field(description="the node's name, as PVE shows it (hosts name it in `node:`)")
    address: IPv4 = Field(description="the node's address on the cluster network")


class HaPolicy(Strict):
    """The host as an HA resource: what the HA manager keeps it at, and how often it retries."""

    state: HaState = Field("started", description="the requested state the HA manager keeps the container in")
    max_restart: Tries = Field(1, description="restarts on its node after a failed start")
    max_relocate: Tries = Field(1, description="moves to another node after the restarts failed")
    nodes: dict[Label, Priority] = Field(
        {}, description="node affinity: the nodes the HA manager prefers for it, each with its priority (the highest "
        "online ones first, then the least loaded; PVE's rule `nodes`); empty: no rule, any node")
    strict: Flag = Field(False, description="only these nodes: with none of them online it stays down (PVE's "
                         "`strict`); false: it may fall back to any other online node")

    def rule_nodes(self) -> str:
        """The node-affinity rule's `nodes` as PVE writes it: `<node>[:<pri>]`, by name, priority 0 left out."""
        return ",".join(f"{n}:{p}" if p else n for n, p in sorted(self.nodes.items()))


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
        if host.ha is not None:
            problems.extend(_affinity_problems(inv, ref, host))
        if host.ha is not None and host.storage not in inv.proxmox.shared_storages:
            shared = ", ".join(inv.proxmox.shared_storages) or "none declared in proxmox.shared_storages"
            problems.append((f"{ref}.storage", (f"an HA-managed host must live on a storage every node shares, so "
                                                f"another node can start it (expected one of: {shared}; found "
                                                f"{shown(host.storage)})")))
    return problems


def _affinity_problems(inv: Any, ref: str, host: Any) -> list[Problem]:
    """A node-affinity declaration names nodes of the inventory and puts the host's own node first: otherwise the
    HA manager would move it off the node Terraform creates it on as soon as the rule exists."""
    ha, names = host.ha, inv.node_names
    if not ha.nodes:
        return [(f"{ref}.ha.strict", "strict needs ha.nodes (expected the nodes it is restricted to)")] \
            if ha.strict else []
    unknown = [n for n in ha.nodes if n not in names]
    if unknown:
        return [(f"{ref}.ha.nodes", (f"{shown(unknown[0])} is not a node of this inventory "
                                    f"(expected one of nodes: {', '.join(names)})"))]
    home = host.node or inv.proxmox.node
    top = max(ha.nodes.values())
    if ha.nodes.get(home) != top:
        first = ", ".join(sorted(n for n, p in ha.nodes.items() if p == top))
        return [(f"{ref}.ha.nodes", (f"the host's node {shown(home)} must be among its highest-priority nodes "
                                    f"(found {first} at priority {top}): the HA manager would move it there"))]
    return []
