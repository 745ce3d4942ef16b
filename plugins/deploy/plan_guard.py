"""Plan guard: refuse a plan that deletes or replaces a protected container (incidents #4, #5), or that creates a
container PVE already has (a lost or emptied Terraform state: adopt them first, plugins/deploy/adopt.py).

A container is found from its plan address (for_each keys are hostnames:
`terraform_data.container["app-demo"]`, `module.container["app-demo"].proxmox_lxc.this`) or,
for direct resources such as the runner, from the `hostname` in its attributes / terraform_data input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from plugins.tools.terraform import Change, Plan

_KEY = re.compile(r'\["([^"]+)"\]')

REASONS = {
    "replace_by_triggers": "replace_triggered_by fired",
    "replace_by_request": "replacement requested (-replace)",
    "delete_because_no_resource_config": "its resource was removed from the configuration",
    "delete_because_each_key": "it is no longer in the inventory",
    "delete_because_count_index": "it is no longer in the inventory",
    "delete_because_no_module": "its module was removed from the configuration",
    "delete_because_wrong_repetition": "its resource's count/for_each changed",
}


def check_plan(plan: Plan, protected: set[str], existing: Iterable[int] = (), adopt: str = "") -> list[str]:
    """Refusal lines for every delete/replace of a protected container, for an errored plan, and one line for the
    creates of containers PVE already has (`existing` VMIDs; `adopt` the command that adopts them)."""
    refusals = []
    if plan.errored:
        refusals.append(f"plan errored: {plan.error or 'Terraform reported errors while planning'}; refusing to apply")
    known = creates_of_existing(plan, existing)
    if known:
        named = ", ".join(f"{container_hostname(c)} (CT {_attr(c, 'vmid')})" for c in known)
        refusals.append(f"plan would create containers that already exist on Proxmox VE: {named}; Terraform's state "
                        f"does not know them (lost or emptied?): adopt them with `{adopt or 'python -m plugins.deploy.adopt'}`"
                        ", then plan again; refusing to apply")
    for change in plan.changes:
        if not change.deletes:
            continue
        hostname = container_hostname(change)
        if hostname not in protected:
            continue
        verb = "replace" if change.is_replace else "destroy"
        vmid = _attr(change, "vmid")
        who = f"{hostname} ({vmid})" if vmid is not None else hostname
        refusals.append(f"plan would {verb} protected container {who}: {change_reason(change)}; refusing to apply")
    return refusals


def creates_of_existing(plan: Plan, existing: Iterable[int]) -> list[Change]:
    """The plan's plain creates (not replaces) of containers whose VMID PVE already has: the state lost them."""
    vmids = {int(v) for v in existing}
    return [c for c in plan.changes if c.actions == ("create",) and container_vmid(c) in vmids]


def container_vmid(change: Change) -> int | None:
    """The VMID a resource change is about (its attributes or its terraform_data input), or None."""
    value = _attr(change, "vmid")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def container_hostname(change: Change) -> str | None:
    """The hostname a resource change is about: attributes first, then the address's for_each key."""
    hostname = _attr(change, "hostname")
    if isinstance(hostname, str):
        return hostname
    match = _KEY.search(change.address)
    return match.group(1) if match else None


def change_reason(change: Change) -> str:
    """Why Terraform deletes this instance, in words: which attributes changed, or the plan's reason."""
    if change.is_replace:
        changed = _changed_replace_attributes(change)
        if changed:
            return f"{', '.join(changed)} changed"
    return REASONS.get(change.action_reason or "", change.action_reason or "destroy requested")


def _changed_replace_attributes(change: Change) -> list[str]:
    names: list[str] = []
    for path in change.replace_paths:
        if not path:
            continue
        top = path[0]
        before, after = _get(change.before, top), _get(change.after, top)
        if len(path) == 1 and isinstance(before, dict) and isinstance(after, dict):
            # terraform_data's triggers_replace is one attribute: name the keys that moved
            names += [k for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)]
        else:
            names.append(".".join(str(p) for p in path))
    return list(dict.fromkeys(names))


def _attr(change: Change, name: str) -> Any:
    for state in (change.before, change.after):
        if not isinstance(state, dict):
            continue
        if state.get(name) is not None:
            return state[name]
        value = _get(state.get("input"), name)  # terraform_data carries the container in `input`
        if value is not None:
            return value
    return None


def _get(obj: Any, key: Any) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None
