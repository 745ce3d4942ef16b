"""Network fence: refuse any Python connection outside the lab's ranges.

Active for the project's own tests so that a mistake (a default pointing at the owner's LAN,
an example address) fails loudly instead of sending a packet.
"""

from __future__ import annotations

import ipaddress
import socket

import pytest

ALLOWED_NETWORKS = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("198.18.0.0/15"),
    ipaddress.ip_network("::1/128"),
)


class FencedConnection(ConnectionRefusedError):
    """Raised instead of connecting to an address outside the lab's ranges."""


def is_allowed(address: str) -> bool:
    """Tell whether an IP address is inside 127.0.0.0/8, ::1 or 198.18.0.0/15."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in net for net in ALLOWED_NETWORKS if net.version == ip.version)


def _check(sock: socket.socket, address) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # unix sockets (ssh ControlMaster, docker.sock) are local by nature
    host = address[0] if isinstance(address, tuple) else str(address)
    if not is_allowed(host):
        raise FencedConnection(
            f"network fence: refused connection to {host}; only 127.0.0.0/8 and 198.18.0.0/15 may be contacted"
        )


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def _fenced_connect(self, address):
    _check(self, address)
    return _original_connect(self, address)


def _fenced_connect_ex(self, address):
    _check(self, address)
    return _original_connect_ex(self, address)


def install() -> None:
    """Patch socket connects so that only lab and loopback addresses can be reached."""
    socket.socket.connect = _fenced_connect
    socket.socket.connect_ex = _fenced_connect_ex


def uninstall() -> None:
    """Restore the original socket connects."""
    socket.socket.connect = _original_connect
    socket.socket.connect_ex = _original_connect_ex


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    """Raise the fence before any test (or fixture) can open a connection."""
    install()


def pytest_unconfigure(config):
    """Lower the fence when the session ends."""
    uninstall()
