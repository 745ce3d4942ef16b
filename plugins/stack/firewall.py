"""The firewall of every host, rendered from the inventory's `firewall:` section and what the stack needs.

Openings, in the order Proxmox evaluates them on a host: the inventory's own rules first, then the derived
ones — everything from `management` (the suite: SSH for Ansible, every published port for the health checks),
the proxy's web/websecure entrypoints from `lan`, each routed service's port from `proxy`, each metrics port
Prometheus scrapes from `monitoring`, Loki's push port from `hosts`. Then PVE's objects that say it
(pve-firewall's names): one alias per host, one IP set per zone (the PVE-special `management` set included),
one security group per host with its rules, and per container options (enabled, policy_in) and one rule
that calls its group. Everything this writes carries MARK in its comment: the apply leaves the owner's own
objects alone.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from plugins.inventory.firewall import zone_networks
from plugins.inventory.stack_needs import PROXY_SERVICE
from plugins.stack.prometheus import NODE_EXPORTER
from plugins.stack.promtail import LOKI

if TYPE_CHECKING:
    from plugins.inventory.model import Host, Inventory

MARK = "homelab-suite"  # in the comment of every object the deploy manages
PROXY_LAN_ENTRYPOINTS = ("web", "websecure")  # the traefik ports the LAN reaches
PROXY_METRICS_ENTRYPOINT = "traefik"  # /ping and the metrics Prometheus scrapes
ZONE_HOSTS = {"proxy": "the reverse proxy", "monitoring": "Prometheus", "hosts": "every host",
              "management": "the runner and the declared management addresses"}


@dataclass(frozen=True)
class Opening:
    """Ports of a host a zone may reach (ports empty: every port), or may not (action DROP/REJECT)."""

    host: str
    zone: str
    ports: tuple[int, ...]
    why: str
    action: str = "ACCEPT"


def openings(inventory: Inventory) -> list[Opening]:
    """Every host's openings, in the order its firewall evaluates them (the inventory's rules first)."""
    if inventory.firewall is None:
        return []
    found = [Opening(r.host, r.zone, tuple(r.ports), r.comment or "inventory firewall.rules", r.action)
             for r in inventory.firewall.rules]
    for host in inventory.hosts:
        found.append(Opening(host.hostname, "management", (), "the suite: SSH, Ansible, health checks"))
        found.extend(_derived(inventory, host))
    return found


def _derived(inventory: Inventory, host: Host) -> list[Opening]:
    found = []
    for decl in host.declarations:
        if decl.name == PROXY_SERVICE:
            lan = tuple(p.published for p in decl.ports if p.name in PROXY_LAN_ENTRYPOINTS and p.published)
            found.append(Opening(host.hostname, "lan", lan, "the proxy's entrypoints"))
            metrics = decl.port_named(PROXY_METRICS_ENTRYPOINT)
            if metrics is not None and metrics.published:
                found.append(Opening(host.hostname, "monitoring", (metrics.published,), "Traefik's metrics"))
        if decl.route is not None and decl.published(decl.route.port):
            found.append(Opening(host.hostname, "proxy", (decl.published(decl.route.port),),
                                 f"{decl.name}: routed by the proxy"))
        if decl.name == NODE_EXPORTER and decl.ports and decl.ports[0].published:
            found.append(Opening(host.hostname, "monitoring", (decl.ports[0].published,), "node exporter metrics"))
        if decl.name == LOKI and decl.ports and decl.ports[0].published:
            found.append(Opening(host.hostname, "hosts", (decl.ports[0].published,), "Loki: every host's shipper"))
    return found


def group_name(host: Host) -> str:
    """The security group holding a host's rules (PVE: at most 18 characters, a letter first)."""
    return f"hl-{host.vmid}"


def _entry(network: ipaddress.IPv4Network) -> str:
    return str(network.network_address) if network.prefixlen == 32 else str(network)


def desired_state(inventory: Inventory) -> dict:
    """What PVE's firewall must hold: {cluster: {options, aliases, ipsets, groups}, cts: {vmid: {options, rules}}}."""
    if inventory.firewall is None:
        return {"cluster": {"options": {}, "aliases": {}, "ipsets": {}, "groups": {}}, "cts": {}}
    by_ip = {h.ip: h.hostname for h in inventory.hosts}
    aliases = {h.hostname: {"cidr": h.ip, "comment": f"{MARK}: CT {h.vmid}"} for h in inventory.hosts}
    ipsets = {}
    for zone, networks in zone_networks(inventory).items():
        entries = [by_ip.get(_entry(n), _entry(n)) for n in networks]  # a host's address by its alias
        ipsets[zone] = {"comment": f"{MARK}: zone {zone} ({ZONE_HOSTS.get(zone, 'declared')})",
                        "entries": list(dict.fromkeys(entries))}
    groups, cts = {}, {}
    every = openings(inventory)
    for host in inventory.hosts:
        rules = [_rule(o) for o in every if o.host == host.hostname]
        groups[group_name(host)] = {"comment": f"{MARK}: {host.hostname} ({host.vmid})", "rules": rules}
        cts[host.vmid] = {
            "options": {"enable": 1, "policy_in": inventory.firewall.policy_in, "policy_out": "ACCEPT"},
            "rules": [{"type": "group", "action": group_name(host), "enable": 1, "comment": MARK}],
        }
    # The datacenter's switch; policy_in ACCEPT keeps the node's own traffic as it was: only containers are managed.
    options = {"enable": 1, "policy_in": "ACCEPT"}
    return {"cluster": {"options": options, "aliases": aliases, "ipsets": ipsets, "groups": groups}, "cts": cts}


def _rule(opening: Opening) -> dict:
    rule = {"type": "in", "action": opening.action, "source": f"+{opening.zone}", "enable": 1,
            "comment": f"{MARK}: {opening.why}"}
    if opening.ports:
        rule.update(proto="tcp", dport=",".join(str(p) for p in opening.ports))
    return rule


def zone_ports(inventory: Inventory, zone: str) -> dict[str, set[int] | None]:
    """{hostname: the ports this zone may open on it (None: every port)} — ACCEPT openings of exactly that zone."""
    out: dict[str, set[int] | None] = {h.hostname: set() for h in inventory.hosts}
    for o in openings(inventory):
        if o.zone != zone or o.action != "ACCEPT" or out[o.host] is None:
            continue
        out[o.host] = None if not o.ports else out[o.host] | set(o.ports)
    return out
