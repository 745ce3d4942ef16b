"""A node's power in the emulated cluster: a node that loses power stops its containers at once, a node that comes
back boots its `onboot` ones (the lab's nodes share one machine, so the emulator does it for them; crm.py calls
these on its round, as PVE's nodes would on their own)."""

from __future__ import annotations

from .api_lxc import kill_ct, start_ct


def power_off(app, node: str) -> list[int]:
    """A node that lost power: its running containers stop at once. The vmids it stopped."""
    stopped = []
    for vmid in app.store.vmids():
        if app.node_of(vmid) == node and app.running(vmid):
            kill_ct(app, vmid)
            stopped.append(vmid)
    return stopped


def boot_node(app, node: str) -> list[int]:
    """A node that comes back boots: its non-HA containers with `onboot: 1` start (pve-guests' startall);
    its HA ones are the LRM's. The vmids it started."""
    started = []
    for vmid in app.store.vmids():
        rec = app.store.load(vmid)
        if rec is None or app.node_of(vmid) != node or app.ha.managed(vmid):
            continue
        if int(rec["config"].get("onboot") or 0) and not app.running(vmid):
            start_ct(app, vmid)
            started.append(vmid)
    return started
