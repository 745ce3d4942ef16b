"""PVE's HA resources through its API: read the `ct:<vmid>` resources of the containers the suite manages, and make
them the wanted ones with the fewest calls.

A resource is {state, max_restart, max_relocate} (pve-ha-manager's options the inventory declares; PVE's defaults
fill what a resource leaves unset, `enabled` is its alias for `started`). `converge` creates a missing resource,
updates one that differs and removes one of a managed container that is not wanted; a resource of any other
vmid (the owner's VMs, containers the inventory does not name) is never read into the state nor touched. It
serves the deploy (wanted = the inventory's) and the rollback (wanted = what `read_state` recorded before).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from plugins.proxmox.ha import sid

Call = Callable[..., Any]  # ProxmoxClient.api_call
# pve-ha-manager's defaults (PVE::HA::Config's resource schema): what an option left unset means
DEFAULTS = {"state": "started", "max_restart": 1, "max_relocate": 1}


def resource(options: dict) -> dict:
    """A resource's declared options, PVE's defaults filling the unset ones (`enabled` read as `started`)."""
    out = {key: options.get(key, default) for key, default in DEFAULTS.items()}
    out["state"] = "started" if out["state"] in (None, "enabled") else str(out["state"])
    out["max_restart"], out["max_relocate"] = int(out["max_restart"]), int(out["max_relocate"])
    return out


def read_state(call: Call, vmids: Iterable[int]) -> dict[int, dict]:
    """{vmid: options} of the HA resources PVE holds for these containers (one call, /cluster/ha/resources)."""
    managed = {int(v) for v in vmids}
    found = {}
    for row in call("list the HA resources", "GET", "cluster/ha/resources", type="ct") or []:
        kind, _, vmid = str(row.get("sid", "")).partition(":")
        if kind == "ct" and vmid.isdigit() and int(vmid) in managed:
            found[int(vmid)] = resource(row)
    return found


def changes(current: dict[int, dict], wanted: dict[int, dict], managed: Iterable[int]) -> list[str]:
    """One line per resource that converge would change (empty: PVE already holds the wanted ones)."""
    return [line for line, _ in _steps(current, wanted, managed)]


def converge(call: Call, current: dict[int, dict], wanted: dict[int, dict], managed: Iterable[int]) -> list[str]:
    """Make PVE hold the wanted resources of the managed containers; give one line per change made."""
    done = []
    for line, step in _steps(current, wanted, managed):
        step(call)
        done.append(line)
    return done


def _shown(options: dict) -> str:
    return ", ".join(f"{key}={options[key]}" for key in DEFAULTS if key in options)


def _steps(current: dict[int, dict], wanted: dict[int, dict], managed: Iterable[int]) -> list[tuple[str, Callable]]:
    """(what, how): creations and updates first, then removals, each container in vmid order."""
    managed = {int(v) for v in managed}
    current = {vmid: resource(opts) for vmid, opts in current.items() if vmid in managed}
    wanted = {vmid: resource(opts) for vmid, opts in wanted.items() if vmid in managed}
    steps: list[tuple[str, Callable]] = []
    for vmid, options in sorted(wanted.items()):
        now = current.get(vmid)
        if now is None:
            steps.append((f"create {sid(vmid)}: {_shown(options)}", _create(vmid, options)))
        elif now != options:
            changed = {key: value for key, value in options.items() if now[key] != value}
            steps.append((f"update {sid(vmid)}: {_shown(changed)}", _update(vmid, changed)))
    for vmid in sorted(set(current) - set(wanted)):
        steps.append((f"remove {sid(vmid)} (the container stays as it is, outside HA)", _remove(vmid)))
    return steps


def _create(vmid: int, options: dict):
    def step(call: Call) -> None:
        call(f"create HA resource {sid(vmid)}", "POST", "cluster/ha/resources", sid=sid(vmid), type="ct", **options)
    return step


def _update(vmid: int, changed: dict):
    def step(call: Call) -> None:
        call(f"update HA resource {sid(vmid)}", "PUT", f"cluster/ha/resources/{sid(vmid)}", **changed)
    return step


def _remove(vmid: int):
    def step(call: Call) -> None:
        call(f"remove HA resource {sid(vmid)}", "DELETE", f"cluster/ha/resources/{sid(vmid)}")
    return step
