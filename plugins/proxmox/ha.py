"""A rollback the HA manager leaves alone.

PVE's HA manager brings an HA-managed container to its requested state on every round: a container the
rollback stopped (and locked `rollback`) is one it tries to start, fails on the lock, and after max_restart and
max_relocate tries puts in `error`, where the rollback's own start no longer reaches it. PVE's documented state
for manual control is `ignored` (ha-manager: "the CRM and the LRM do not touch the resource anymore, API calls
bypass the HA stack"): the resource is set `ignored` for the rollback and back to its prior state after, in the
same call, so the container ends as HA wants it. A snapshot does not stop the container: it needs no such care.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from plugins.proxmox.tasks import ProxmoxError

HANDS_OFF = "ignored"


def sid(vmid: int) -> str:
    """The HA resource id of a container."""
    return f"ct:{int(vmid)}"


def states(rows: list[dict]) -> dict[int, str]:
    """{vmid: requested state} of the HA resources that are containers (/cluster/ha/resources)."""
    out = {}
    for row in rows or []:
        kind, _, vmid = str(row.get("sid", "")).partition(":")
        if kind == "ct" and vmid.isdigit():
            out[int(vmid)] = "started" if row.get("state") in (None, "enabled") else str(row["state"])
    return out


def hands_off(set_state: Callable[[int, str], Any], vmid: int, prior: str | None, work: Callable[[], Any],
              on_log: Callable[[str], None] | None = None) -> Any:
    """Run work with the container's HA resource `ignored`, then put its prior state back (not HA-managed, or
    already ignored: work alone). A failure to put it back is raised: the container would stay outside HA."""
    if prior in (None, HANDS_OFF):
        return work()
    say = on_log or (lambda line: None)
    set_state(vmid, HANDS_OFF)
    say(f"HA resource {sid(vmid)} set to '{HANDS_OFF}' for the rollback (was '{prior}')")
    try:
        return work()
    finally:
        _put_back(set_state, vmid, prior, say)


def _put_back(set_state: Callable[[int, str], Any], vmid: int, prior: str, say: Callable[[str], None]) -> None:
    try:
        set_state(vmid, prior)
    except ProxmoxError as exc:
        raise ProxmoxError(f"HA resource {sid(vmid)} left '{HANDS_OFF}' after the rollback (the HA manager no longer "
                           f"manages it; set it back with: ha-manager set {sid(vmid)} --state {prior}): {exc}") from None
    say(f"HA resource {sid(vmid)} set back to '{prior}'")
