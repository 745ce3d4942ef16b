"""Exposure: which ports of each host answer from a given source, against what the inventory's firewall opens to it.

A source is an address (the LAN point, the proxy, the Prometheus host); what it may reach is the union of the
openings of every zone its address is in (plugins/stack/firewall.py). The ports tried on a host are SSH and every
port its services publish, plus any the inventory's rules name. A port that answers without being opened is
EXPOSED; a service's published port that answers only because the inventory's own rules open it (not the stack's
derived openings) is OPENED: a service answers from the proxy (and its metrics from Prometheus), never from the LAN
around the proxy; a derived opening whose published port does not answer is BLOCKED (a route cut off the proxy).
"""

from __future__ import annotations

import ipaddress
import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from plugins.inventory.firewall import zone_networks
from plugins.stack.firewall import zone_ports

if TYPE_CHECKING:
    from plugins.inventory.model import Host, Inventory

SSH_PORT = 22
CONNECT_TIMEOUT = 2  # seconds: a dropped SYN is a silence, waited for this long (every port at once)


@dataclass
class Exposure:
    """One host seen from one source: the ports that answered, those it should and should not."""

    host: str
    source: str
    answered: set[int]
    allowed: set[int] | None  # None: every port (the management zone)
    derived: set[int] | None = None  # what the stack's own openings allow (the inventory's rules left out)
    published: set[int] = field(default_factory=set)  # the ports the host's services publish

    @property
    def required(self) -> set[int]:
        """Published ports the stack's openings give this source: they must answer."""
        return set() if self.derived is None else self.derived & self.published

    @property
    def exposed(self) -> set[int]:
        """Ports that answer although nothing opens them to this source."""
        return set() if self.allowed is None else self.answered - self.allowed

    @property
    def blocked(self) -> set[int]:
        """Ports opened to this source for a service that publishes them, yet silent."""
        return self.required - self.answered

    @property
    def opened(self) -> set[int]:
        """Service ports that answer because the inventory's rules open them to this source, not the stack."""
        if self.derived is None:
            return set()
        return (self.answered & self.published) - self.derived - self.exposed

    def problem(self) -> str:
        """'' when the host answers as declared, else one line naming host, ports and what was expected."""
        parts = []
        if self.exposed:
            allowed = ", ".join(map(str, sorted(self.allowed or []))) or "none"
            parts.append(f"port {', '.join(map(str, sorted(self.exposed)))} answers from {self.source} "
                         f"(the inventory's firewall opens to it: {allowed})")
        if self.opened:
            parts.append(f"service port {', '.join(map(str, sorted(self.opened)))} answers from {self.source}, opened "
                         f"by the inventory's firewall.rules (expected: a service answers only from the proxy, its "
                         f"metrics only from Prometheus)")
        if self.blocked:
            parts.append(f"port {', '.join(map(str, sorted(self.blocked)))} is opened to {self.source} but does not "
                         f"answer")
        return f"{self.host}: " + "; ".join(parts) if parts else ""


def candidate_ports(inventory: Inventory, host: Host) -> set[int]:
    """The ports tried on a host: SSH, every published port of its services, every port a rule names for it."""
    ports = {SSH_PORT} | {p.published for d in host.declarations for p in d.ports if p.published}
    if inventory.firewall is not None:
        ports |= {port for r in inventory.firewall.rules if r.host == host.hostname for port in r.ports}
    return ports


def allowed_from(inventory: Inventory, address: str) -> dict[str, set[int] | None]:
    """{hostname: ports this address may reach (None: every port)}: the union over the zones it is in."""
    ip = ipaddress.IPv4Address(address)
    out: dict[str, set[int] | None] = {h.hostname: set() for h in inventory.hosts}
    for zone, networks in zone_networks(inventory).items():
        if not any(ip in net for net in networks):
            continue
        for hostname, ports in zone_ports(inventory, zone).items():
            out[hostname] = None if ports is None or out[hostname] is None else out[hostname] | ports
    return out


def probe_command(targets: list[tuple[str, int]], timeout: float = CONNECT_TIMEOUT) -> str:
    """A bash command printing `ip:port` for each target that accepts a TCP connection (all tried at once)."""
    pairs = " ".join(f"{ip}:{port}" for ip, port in targets)
    inner = 'exec 3<>"/dev/tcp/$1/$2"'
    loop = (f'for t in {pairs}; do (timeout {timeout:g} bash -c {shlex.quote(inner)} _ "${{t%:*}}" "${{t#*:}}" '
            f'2>/dev/null && echo "$t") & done; wait')
    return f"bash -c {shlex.quote(loop)}"


def parse_answers(stdout: str) -> set[tuple[str, int]]:
    """The (ip, port) pairs probe_command printed."""
    found = set()
    for line in stdout.split():
        ip, _, port = line.rpartition(":")
        if port.isdigit():
            found.add((ip, int(port)))
    return found


def targets_from(inventory: Inventory, source_host: str | None = None) -> list[tuple[str, int]]:
    """Every (ip, port) to try, leaving out the source host itself (its own traffic never crosses the firewall)."""
    return sorted((h.ip, port) for h in inventory.hosts if h.hostname != source_host
                  for port in candidate_ports(inventory, h))


def exposures(inventory: Inventory, address: str, source: str, answers: set[tuple[str, int]],
              source_host: str | None = None) -> dict[str, Exposure]:
    """{hostname: Exposure} of every host but the source, from what answered `address` (named `source`)."""
    allowed = allowed_from(inventory, address)
    derived = allowed_from_derived(inventory, address)
    out = {}
    for host in inventory.hosts:
        if host.hostname == source_host:
            continue
        published = {p.published for d in host.declarations for p in d.ports if p.published}
        answered = {port for ip, port in answers if ip == host.ip}
        out[host.hostname] = Exposure(host.hostname, source, answered, allowed[host.hostname],
                                      derived[host.hostname], published)
    return out


def allowed_from_derived(inventory: Inventory, address: str) -> dict[str, set[int] | None]:
    """As allowed_from, but the openings the stack derives only (the inventory's own rules may name silent ports)."""
    if inventory.firewall is None or not inventory.firewall.rules:
        return allowed_from(inventory, address)
    bare = inventory.model_copy(update={"firewall": inventory.firewall.model_copy(update={"rules": []})})
    return allowed_from(bare, address)
