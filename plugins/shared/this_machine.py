"""The machine the suite runs on, so that nothing rolls back or SSH-checks itself.

Incidents #7 and #13: the runner rolled itself back (killing the workflow) and SSH-checked
itself. The inventory flag (runner.host / rollback: false) is one guard; the machine's own
addresses are the second, for a runner the inventory forgot to flag. `self_reason` is the one
self-check: the health checks and the rollback both ask it.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory


def is_this_machine(host: Host) -> bool:
    """True when the host is the machine running this code (its address is local, or same hostname)."""
    if host.hostname == socket.gethostname().split(".")[0]:
        return True
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host.ip, 0))  # binding sends nothing: it only succeeds for one of our own addresses
        return True
    except OSError:
        return False


def this_machine_reason(host: Host) -> str | None:
    """`app-demo (198.18.0.250) is the machine the suite runs on` when it is, else None."""
    return f"{host.hostname} ({host.ip}) is the machine the suite runs on" if is_this_machine(host) else None


def self_reason(inventory: Inventory, host: Host) -> str | None:
    """Why this host is the one the suite runs on (the inventory's runner, or this machine's address), or None."""
    if inventory.runner.host and host.hostname == inventory.runner.host:
        return f"{host.hostname} is the runner the suite runs on ({inventory.where('runner.host')})"
    return this_machine_reason(host)
