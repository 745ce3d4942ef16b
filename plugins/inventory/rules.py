"""Cross-field rules of the inventory: each returns (key path, what was expected and found)."""

from __future__ import annotations

import ipaddress
from typing import Any

from plugins.inventory.backup_policy import backup_problems
from plugins.inventory.cluster import cluster_problems
from plugins.inventory.errors import Problem
from plugins.inventory.firewall import firewall_problems
from plugins.inventory.masking import shown
from plugins.inventory.refs import host_refs
from plugins.inventory.stack_rules import stack_problems


def check_rules(inv: Any, catalog: Any) -> list[Problem]:
    """Every rule that spans more than one field (and the service catalog), in a stable order."""
    refs = host_refs([h.hostname for h in inv.hosts])
    return [
        *_unique(inv, refs, "vmid"),
        *_unique(inv, refs, "ip"),
        *_unique(inv, refs, "hostname"),
        *_runner(inv, refs),
        *_subnet(inv, refs),
        *cluster_problems(inv),
        *stack_problems(inv, catalog, refs),
        *backup_problems(inv),
        *firewall_problems(inv, catalog),
    ]


def _unique(inv: Any, refs: list[str], field: str) -> list[Problem]:
    first: dict[Any, str] = {}
    problems = []
    for ref, host in zip(refs, inv.hosts):
        value = getattr(host, field)
        if value in first:
            problems.append(
                (
                    f"{ref}.{field}",
                    f"{shown(value)} is already the {field} of {first[value]} (expected a unique {field})",
                )
            )
        else:
            first[value] = ref
    return problems


def _runner(inv: Any, refs: list[str]) -> list[Problem]:
    name = inv.runner.host
    if name is None:
        return []
    matches = [i for i, h in enumerate(inv.hosts) if h.hostname == name]
    if not matches:
        known = ", ".join(h.hostname for h in inv.hosts)
        return [
            (
                "runner.host",
                f"{shown(name)} is not a host of this inventory (expected one of: {known}, or null)",
            )
        ]
    return [
        (
            f"{refs[i]}.rollback",
            (
                "the runner (runner.host) cannot be in the rollback set: rolling it back kills the deploy "
                "running on it (expected false or absent, found true)"
            ),
        )
        for i in matches
        if inv.hosts[i].rollback is True
    ]


def _subnet(inv: Any, refs: list[str]) -> list[Problem]:
    gateway = ipaddress.IPv4Address(inv.proxmox.gateway)
    prefix = inv.proxmox.prefix_length
    gateway_network = ipaddress.IPv4Interface(f"{gateway}/{prefix}").network
    outside = []
    problems = [("proxmox.gateway", message) for message in _not_a_host_address(gateway, gateway_network)]
    for ref, host in zip(refs, inv.hosts):
        address = ipaddress.IPv4Address(host.ip)
        network = ipaddress.IPv4Interface(f"{host.ip}/{prefix}").network
        if gateway not in network:
            outside.append((ref, host, network))
        elif address == gateway:
            problems.append((f"{ref}.ip", f"{host.ip} is the gateway's address (expected a host address)"))
        else:
            problems.extend((f"{ref}.ip", message) for message in _not_a_host_address(address, network))
    if outside and len(outside) == len(inv.hosts) and len(inv.hosts) > 1:
        networks = ", ".join(sorted({str(n) for _, _, n in outside}))
        return [
            (
                "proxmox.gateway",
                f"{gateway} is outside every host's subnet (expected an address in {networks})",
            )
        ]
    for ref, host, network in outside:
        problems.append(
            (
                f"{ref}.ip",
                (
                    f"{host.ip}/{prefix} is not in the gateway {gateway}'s subnet (expected an address in "
                    f"{gateway_network})"
                ),
            )
        )
    return problems


def _not_a_host_address(address: ipaddress.IPv4Address, network: ipaddress.IPv4Network) -> list[str]:
    """The network's own address and its broadcast address name no host (RFC 3021's /31 and /32 aside)."""
    if network.prefixlen > 30:
        return []
    first, last = network.network_address + 1, network.broadcast_address - 1
    for special, name in ((network.network_address, "network"), (network.broadcast_address, "broadcast")):
        if address == special:
            return [f"{address} is the {name} address of {network} (expected a host address, {first}-{last})"]
    return []
