"""A point on the LAN to probe from: a network namespace with a veth on the inventory's bridge, made and removed here.

On the machine that holds the bridge (the lab's, or a Proxmox node running the suite) this is a laptop plugged into
the LAN: its traffic to the containers crosses the bridge, and so the firewall. Its address is the highest of the
bridge's subnet that is in the `lan` zone and no host's, no gateway's and no management address.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.inventory.firewall import zone_networks

if TYPE_CHECKING:
    from plugins.inventory.model import Inventory


class LanPointError(RuntimeError):
    """No LAN point can be made here (no bridge, not root, no free address): the message says which."""


@dataclass(frozen=True)
class LanPoint:
    """The namespace, its address, and how to run a command inside it."""

    namespace: str
    address: str

    def run(self, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a shell command inside the namespace."""
        return subprocess.run(["ip", "netns", "exec", self.namespace, "bash", "-c", command], capture_output=True,
                              text=True, timeout=timeout, check=False)


def lan_address(inventory: Inventory) -> str:
    """The LAN point's address (see the module's text); LanPointError when the subnet has none left."""
    proxmox = inventory.proxmox
    subnet = ipaddress.IPv4Interface(f"{proxmox.gateway}/{proxmox.prefix_length}").network
    zones = zone_networks(inventory)
    taken = {ipaddress.IPv4Address(proxmox.gateway), *(ipaddress.IPv4Address(h.ip) for h in inventory.hosts)}
    managed = zones["management"]
    for candidate in reversed(list(subnet.hosts())):
        if candidate in taken or any(candidate in net for net in managed):
            continue
        if any(candidate in net for net in zones.get("lan", [])):
            return str(candidate)
    raise LanPointError(f"no free address of {subnet} in zone lan ({inventory.where('firewall.zones.lan')})")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LanPointError(f"ip {' '.join(map(shlex.quote, args))}: {done.stderr.strip()}")


@contextlib.contextmanager
def lan_point(inventory: Inventory) -> Iterator[LanPoint]:
    """A namespace on proxmox.bridge at lan_address(), removed on exit whatever happened."""
    bridge = inventory.proxmox.bridge
    if not Path(f"/sys/class/net/{bridge}/bridge").is_dir():
        raise LanPointError(f"no bridge {bridge} on this machine ({inventory.where('proxmox.bridge')}): run the "
                            "exposure control where the bridge is, or from a machine on the LAN")
    if os.geteuid() != 0:
        raise LanPointError("making a network namespace needs root")
    address = lan_address(inventory)
    tag = f"{os.getpid() % 100000}"
    namespace, outer, inner = f"hl-lan-{tag}", f"hllan{tag}", f"hllan{tag}p"
    try:
        _ip("netns", "add", namespace)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", namespace)
        _ip("link", "set", outer, "master", bridge, "up")
        _ip("-n", namespace, "addr", "add", f"{address}/{inventory.proxmox.prefix_length}", "dev", inner)
        _ip("-n", namespace, "link", "set", inner, "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        yield LanPoint(namespace, address)
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True, check=False)
