"""The machine the suite runs on: its own addresses, so nothing rolls back or SSH-checks itself.

Incidents #7 and #13: the runner rolled itself back (killing the workflow) and SSH-checked
itself. The inventory flag (runner.host / rollback: false) is one guard; the machine's own
addresses are the second, for a runner the inventory forgot to flag.
"""

from __future__ import annotations

import functools
import json
import subprocess


@functools.cache
def own_addresses() -> frozenset[str]:
    """Every IPv4/IPv6 address configured on this machine (from `ip -j addr`)."""
    try:
        out = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True, check=True, timeout=5).stdout
        interfaces = json.loads(out or "[]")
    except (OSError, subprocess.SubprocessError, ValueError):
        return frozenset()
    return frozenset(a["local"] for i in interfaces for a in i.get("addr_info", []) if a.get("local"))


def is_self(host, inventory) -> str | None:
    """Why this host is the machine the suite runs on (runner flag or own address), or None."""
    if inventory.runner.host and host.hostname == inventory.runner.host:
        return f"{host.hostname} is the runner ({inventory.where('runner.host')})"
    if host.ip in own_addresses():
        return f"{host.hostname} ({host.ip}) is an address of the machine the suite runs on"
    return None
