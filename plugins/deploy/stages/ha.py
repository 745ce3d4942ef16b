"""HA: PVE's HA manager made to hold the inventory's `ha:` hosts (`ct:<vmid>` resources) through its API.

After Terraform the containers exist: each host that declares `ha:` gets its resource (state, max_restart,
max_relocate), one that differs is updated, and one of an inventory container that no longer declares `ha:` is
removed; resources of vmids the inventory does not name are never touched. What PVE held before is recorded first:
HA resources are not in a container's snapshot, so a rollback puts this record back before it rolls the containers
back (plugins/deploy/finish/rollback.py). A plan lists the changes without making them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.proxmox.ha_resources import changes, converge, read_state
from plugins.report import allure_output

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.proxmox.client import ProxmoxClient


def managed(deployment: DeploySession) -> list[int]:
    """The vmids whose HA resources the suite owns: the inventory's hosts (declaring `ha:` or not)."""
    return [host.vmid for host in deployment.inventory.hosts]


def desired_state(deployment: DeploySession) -> dict[int, dict]:
    """{vmid: options} the inventory declares: its `ha:` hosts' state, max_restart, max_relocate."""
    return {host.vmid: host.ha.model_dump() for host in deployment.inventory.hosts if host.ha is not None}


def record_previous(deployment: DeploySession, proxmox: ProxmoxClient) -> None:
    """Keep the HA resources PVE holds for the inventory's containers before this run: what a rollback restores."""
    deployment.ha_before = read_state(proxmox.api_call, managed(deployment))
    allure_output.attach_text("HA resources before this run", _summary(deployment.ha_before))


def apply(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Make PVE's HA resources hold the inventory's (a plan: list what would change); give the changes, recorded."""
    record = deployment.stage("ha")
    vmids, wanted = managed(deployment), desired_state(deployment)
    current = read_state(proxmox.api_call, vmids)
    if deployment.plan_only:
        done = changes(current, wanted, vmids)
        verb = "would change"
    else:
        with allure_output.step("register the inventory's ha: hosts with PVE's HA manager"):
            done = converge(proxmox.api_call, current, wanted, vmids)
        verb = "changed"
    if done:
        record.summary = f"{len(done)} HA resource(s) {verb}"
    elif wanted:
        record.summary = f"the HA manager already holds the inventory's {len(wanted)} ha: host(s)"
    else:
        record.summary = "no host declares ha: and none of the inventory's containers is an HA resource"
    record.details = [f"  ha        {line}" for line in done]
    allure_output.attach_text("HA resource changes", "\n".join(done) or "none")
    return done


def drift(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """What PVE's HA resources still differ in from the inventory's (empty: converged)."""
    vmids = managed(deployment)
    return changes(read_state(proxmox.api_call, vmids), desired_state(deployment), vmids)


def restore(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Put back the HA resources recorded before this run (the rollback's part that snapshots do not hold)."""
    before = deployment.ha_before
    if before is None:
        return []
    vmids = managed(deployment)
    return converge(proxmox.api_call, read_state(proxmox.api_call, vmids), before, vmids)


def _summary(state: dict[int, dict]) -> str:
    return "; ".join(f"ct:{vmid} {options}" for vmid, options in sorted(state.items())) or "none"
