"""The host driver interface the emulator drives (lab.hosts.LabHosts implements it)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class HostDriver(Protocol):
    """What the emulator needs from the machine that runs the containers."""

    def create(
        self,
        vmid: int,
        hostname: str,
        ip: str,
        prefix: int,
        gateway: str,
        mac: str,
        ssh_public_keys: str,
        memory: int = 512,
        cores: int = 1,
    ) -> Any:
        """Create a stopped container."""

    def start(self, vmid: int) -> Any:
        """Start the container."""

    def stop(self, vmid: int, timeout: int = 10) -> Any:
        """Stop the container."""

    def kill(self, vmid: int) -> Any:
        """Stop the container at once, without a shutdown inside."""

    def status(self, vmid: int) -> str:
        """Return "running" or "stopped"."""

    def exists(self, vmid: int) -> bool:
        """Tell whether the container exists."""

    def list(self) -> Any:
        """List the containers (vmids, dicts or objects with a vmid)."""

    def snapshot(self, vmid: int, name: str) -> Any:
        """Snapshot the container's files."""

    def rollback(self, vmid: int, name: str, start: bool) -> Any:
        """Restore the files of a snapshot, starting the container after when asked."""

    def delete_snapshot(self, vmid: int, name: str) -> Any:
        """Delete a snapshot."""

    def snapshots(self, vmid: int) -> Any:
        """List the snapshot names."""

    def destroy(self, vmid: int) -> Any:
        """Destroy a stopped container and its snapshots."""

    def archive(self, vmid: int, snapshot: str | None, extra: Any, target: Any, compressor: list[str] | None,
                log: Any = print) -> Any:
        """Write the container's whole rootfs (of a snapshot, or its own files when stopped) as a vzdump tar."""

    def restore_files(self, vmid: int, tree: Any) -> Any:
        """Make a stopped container's files those of an extracted archive."""


def listed_vmids(listing: Iterable[Any]) -> set[int]:
    """Return the vmids in one listing of a driver (its list()), whatever shape its items have."""
    out: set[int] = set()
    for item in listing:
        if isinstance(item, dict):
            item = item.get("vmid")
        elif hasattr(item, "vmid"):
            item = item.vmid
        try:
            out.add(int(item))
        except (TypeError, ValueError):
            continue
    return out


def listed_running(listing: Iterable[Any]) -> set[int] | None:
    """Return the vmids one listing of a driver says are running, or None when its items carry no state."""
    running: set[int] = set()
    for item in listing:
        state = item.get("state") if isinstance(item, dict) else getattr(item, "state", None)
        if state is None:
            return None
        vmid = item.get("vmid") if isinstance(item, dict) else getattr(item, "vmid", None)
        if state == "running" and vmid is not None:
            running.add(int(vmid))
    return running
