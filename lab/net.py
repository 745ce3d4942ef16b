"""The lab's bridge labbr0 (198.18.0.1/24) on the machine: no NAT, no forwarding outside."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lab import config


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip ARGS`; raise with stderr when check and it fails."""
    res = subprocess.run(["ip", *args], check=False, capture_output=True, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def bridge_exists(name: str = config.BRIDGE) -> bool:
    """True when the bridge exists on the machine."""
    return Path("/sys/class/net", name, "bridge").exists()


def _set_sysctl(key: str, value: int) -> None:
    """Raise a sysctl to at least value."""
    path = Path("/proc/sys", *key.split("."))
    try:
        if int(path.read_text().split()[0]) < value:
            path.write_text(f"{value}\n")
    except OSError as exc:
        raise RuntimeError(f"cannot set {key}={value}: {exc}") from exc


def bridge_up(name: str = config.BRIDGE, address: str = config.BRIDGE_ADDRESS,
              prefix: int = config.PREFIX) -> None:
    """Create the bridge with its address and bring it up (idempotent)."""
    _set_sysctl("fs.inotify.max_user_instances", config.INOTIFY_MAX_USER_INSTANCES)
    if not bridge_exists(name):
        res = _ip("link", "add", name, "type", "bridge", check=False)
        if res.returncode != 0 and not bridge_exists(name):
            raise RuntimeError(f"ip link add {name} type bridge: {res.stderr.strip()}")
    # No STP delay: ports forward at once.
    Path("/sys/class/net", name, "bridge", "forward_delay").write_text("0\n")
    cidr = f"{address}/{prefix}"
    have = _ip("-o", "-4", "addr", "show", "dev", name).stdout
    if f" {cidr} " not in have:
        res = _ip("addr", "add", cidr, "dev", name, check=False)
        if res.returncode != 0 and "File exists" not in res.stderr:
            raise RuntimeError(f"ip addr add {cidr} dev {name}: {res.stderr.strip()}")
    _ip("link", "set", name, "up")


def bridge_down(name: str = config.BRIDGE) -> None:
    """Delete the bridge (idempotent)."""
    if bridge_exists(name):
        _ip("link", "set", name, "down", check=False)
        res = _ip("link", "del", name, check=False)
        if res.returncode != 0 and bridge_exists(name):
            raise RuntimeError(f"ip link del {name}: {res.stderr.strip()}")
