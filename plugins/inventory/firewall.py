"""The inventory's `firewall:` section: who may reach what, declared once (zones, and rules beyond the derived ones).

Zones are named sources. `lan` and any other are declared as addresses or networks; four are derived from the
inventory and cannot be declared: `management` (the runner host, plus the addresses declared under
`management`: where the suite runs), `proxy` (the host of the reverse proxy), `monitoring` (the hosts of
Prometheus) and `hosts` (every host). What the stack needs is opened by plugins/stack/firewall.py; the rules
here add to it (or refuse, when they come first, and are checked not to cut the suite or the proxy off).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import Field

from plugins.inventory.errors import Problem
from plugins.inventory.fields import Label
from plugins.inventory.masking import shown
from plugins.inventory.section import Strict
from plugins.inventory.stack_needs import PROXY_SERVICE

PROMETHEUS_SERVICE = "prometheus"  # its hosts form the `monitoring` zone: they scrape every metrics port
DERIVED_ZONES = ("management", "proxy", "monitoring", "hosts")
ZoneName = Annotated[str, Field(strict=True, pattern=r"^[a-z][a-z0-9_]{1,30}$")]
Source = Annotated[str, Field(strict=True, min_length=7, max_length=18, pattern=r"^[0-9./]+$",
                              description="an IPv4 address or network (CIDR)")]
Port = Annotated[int, Field(strict=True, ge=1, le=65535)]


class FirewallRule(Strict):
    """One rule of a host's firewall: ports of the host a zone may (or may not) reach, before the derived ones."""

    host: Label = Field(description="the hostname the rule protects")
    zone: ZoneName = Field(description="a declared zone, or management, proxy, monitoring, hosts")
    ports: list[Port] = Field(min_length=1, description="TCP ports of the host")
    action: Literal["ACCEPT", "DROP", "REJECT"] = "ACCEPT"
    comment: Annotated[str, Field(strict=True, max_length=200, pattern=r"^[^\n]*$")] = ""


class Firewall(Strict):
    """Proxmox's firewall as data: zones (named sources) and rules; what the stack needs is derived."""

    policy_in: Literal["DROP", "REJECT"] = Field("DROP", description="what a host does with what no rule accepts")
    zones: dict[ZoneName, list[Source]] = Field(
        description="named sources: `lan` (required) and any other; `management` adds to the runner's address")
    rules: list[FirewallRule] = Field([], description="applied before the derived rules, in this order")


def zone_networks(inv: Any) -> dict[str, list[ipaddress.IPv4Network]]:
    """Every zone's networks: the declared ones and the four derived from the hosts (see the module's text)."""
    fw = inv.firewall
    declared = {name: [ipaddress.IPv4Network(s, strict=False) for s in sources] for name, sources in fw.zones.items()
                if name != "management"}
    runner = [h.ip for h in inv.hosts if h.hostname == inv.runner.host]
    one = [*runner, *fw.zones.get("management", [])]
    derived = {
        "management": one,
        "proxy": [h.ip for h in inv.hosts if PROXY_SERVICE in h.services],
        "monitoring": [h.ip for h in inv.hosts if PROMETHEUS_SERVICE in h.services],
        "hosts": [h.ip for h in inv.hosts],
    }
    return {**declared, **{name: [ipaddress.IPv4Network(a, strict=False) for a in sources]
                           for name, sources in derived.items()}}


def routed_ports(inv: Any, catalog: Any, hostname: str) -> set[int]:
    """The host ports the proxy forwards to on this host: each routed service's published port."""
    host = next(h for h in inv.hosts if h.hostname == hostname)
    ports = set()
    for name in host.services:
        decl = catalog[name] if name in catalog.names else None
        if decl is not None and decl.route is not None and decl.published(decl.route.port):
            ports.add(decl.published(decl.route.port))
    return ports


def firewall_problems(inv: Any, catalog: Any) -> list[Problem]:
    """Zones and rules that name nothing, or would cut the suite or the proxy off the hosts they manage."""
    fw = inv.firewall
    if fw is None:
        return []
    problems: list[Problem] = []
    for name, sources in fw.zones.items():
        for index, source in enumerate(sources):
            try:
                ipaddress.IPv4Network(source, strict=False)
            except ValueError:
                problems.append((f"firewall.zones.{name}[{index}]",
                                 f"{shown(source)} is not an IPv4 address or network (expected e.g. 198.18.0.0/15)"))
        if name in DERIVED_ZONES[1:]:
            problems.append((f"firewall.zones.{name}", (f"zone {name} is derived from the hosts (expected another "
                                                       f"name; derived: {', '.join(DERIVED_ZONES)})")))
    if "lan" not in fw.zones:
        problems.append(("firewall.zones.lan", ("required key is missing (expected the LAN's networks, e.g. "
                                               "[198.18.0.0/15]: where the proxy's 80/443 are open to)")))
    if problems:
        return problems
    zones = zone_networks(inv)
    hostnames = [h.hostname for h in inv.hosts]
    for index, rule in enumerate(fw.rules):
        where = f"firewall.rules[{index}]"
        if rule.host not in hostnames:
            problems.append((f"{where}.host", (f"{shown(rule.host)} is not a host of this inventory "
                                              f"(expected one of: {', '.join(hostnames)})")))
        if rule.zone not in zones:
            problems.append((f"{where}.zone", (f"{shown(rule.zone)} is not a zone (expected one of: "
                                              f"{', '.join(sorted(zones))})")))
        if rule.host in hostnames and rule.zone in zones and rule.action != "ACCEPT":
            problems.extend((where, cut) for cut in _cuts(inv, catalog, zones, rule))
    return problems


def _cuts(inv: Any, catalog: Any, zones: dict, rule: FirewallRule) -> list[str]:
    """What a refusing rule would cut: the suite's SSH to the host, or the proxy's way to the host's routes."""
    covered = zones[rule.zone]

    def inside(addresses: list) -> list[str]:
        return [str(a.network_address) for a in addresses if any(a.subnet_of(net) for net in covered)]

    cuts = []
    managers = inside(zones["management"])
    if managers:  # the suite reaches every port: SSH for Ansible, each published port for the health checks
        cuts.append(f"{rule.action} of port {', '.join(map(str, rule.ports))} from zone {rule.zone} would cut the "
                    f"runner/management ({', '.join(managers)}) off {rule.host} (expected a zone without them)")
    proxies, routes = inside(zones["proxy"]), routed_ports(inv, catalog, rule.host) & set(rule.ports)
    if proxies and routes:
        cuts.append(f"{rule.action} of port {', '.join(map(str, sorted(routes)))} from zone {rule.zone} would cut the "
                    f"proxy ({', '.join(proxies)}) off {rule.host}'s routed services (expected the proxy to reach them)")
    return cuts
