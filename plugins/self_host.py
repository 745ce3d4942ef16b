"""The machine the suite runs on, so that nothing rolls back or SSH-checks itself.

Incidents #7 and #13: the runner rolled itself back (killing the workflow) and SSH-checked
itself. The inventory flag (runner.host / rollback: false) is one guard; the machine's own
addresses are the second, for a runner the inventory forgot to flag.
"""

from __future__ import annotations

import socket


def is_this_machine(host) -> bool:
    """True when the host is the machine running this code (its address is local, or same hostname)."""
    if host.hostname == socket.gethostname().split(".")[0]:
        return True
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host.ip, 0))  # binding sends nothing: it only succeeds for one of our own addresses
        return True
    except OSError:
        return False


def is_self(host, inventory) -> str | None:
    """Why this host is the machine the suite runs on (runner flag or own address), or None."""
    if inventory.runner.host and host.hostname == inventory.runner.host:
        return f"{host.hostname} is the runner ({inventory.where('runner.host')})"
    if is_this_machine(host):
        return f"{host.hostname} ({host.ip}) is the machine the suite runs on"
    return None
