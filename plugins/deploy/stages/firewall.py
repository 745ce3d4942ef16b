"""Firewall: PVE's firewall made to hold the inventory's (plugins/stack/firewall.py) through its API.

Before it changes anything, the stage records what PVE held: a container's firewall (its <vmid>.fw, and the
datacenter's cluster.fw) is not part of its snapshot, so the rollback restores this record itself. A plan lists
the changes without making them; a second read after the apply must find nothing left to change. A read is not
repeated while nothing has written since (the apply compares with the record; an apply that changed nothing leaves
the record as the state the second read would find): each read is ~25 API calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.deploy.recorded_state import PartlyRestored
from plugins.proxmox.firewall import changes, converge, read_state
from plugins.report import allure_output
from plugins.stack.firewall import MARK, desired_state

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.proxmox.client import ProxmoxClient


def managed_cts(deployment: DeploySession, proxmox: ProxmoxClient) -> dict[int, str]:
    """{vmid: the node it runs on now} of the inventory's containers that exist (a plan before a first deploy has
    none yet; HA or a migration may have moved one off its inventory node: /cluster/resources, one call), but those
    of hosts the run leaves out (their node is down: each call about their firewall would answer 595)."""
    where = proxmox.placement()
    return {h.vmid: where[h.vmid] for h in deployment.inventory.hosts
            if h.vmid in where and h.vmid not in deployment.left_out}


def record_previous(deployment: DeploySession, proxmox: ProxmoxClient) -> None:
    """Keep the firewall PVE holds before this run changes it: what a rollback restores."""
    cts = managed_cts(deployment, proxmox)
    deployment.firewall_before = {"state": read_state(proxmox.api_call, cts), "nodes": cts}
    deployment.firewall_seen = deployment.firewall_before
    allure_output.attach_text("firewall before this run", _summary(deployment.firewall_before["state"]))


def apply(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Make PVE hold the inventory's firewall (a plan: list what would change); give the changes, recorded."""
    record = deployment.stage("firewall")
    if deployment.inventory.firewall is None:
        record.summary = "no firewall section in the inventory: PVE's firewall left as it is"
        return []
    cts = managed_cts(deployment, proxmox)
    wanted = desired_state(deployment.inventory)
    wanted["cts"] = {vmid: ct for vmid, ct in wanted["cts"].items() if vmid in cts}
    current = _read(deployment, proxmox, cts)
    if deployment.plan_only:
        done = changes(current, wanted, MARK)
        verb = "would change"
    else:
        with allure_output.step("apply the inventory's firewall through PVE's API"):
            try:
                done = converge(proxmox.api_call, current, wanted, MARK, cts)
            finally:
                deployment.firewall_seen = None  # a failed write may have changed part of it
            if not done:
                deployment.firewall_seen = {"state": current, "nodes": cts}
        verb = "changed"
    record.summary = f"{len(done)} firewall object(s) {verb}" if done else "the firewall already holds the inventory's"
    record.details = [f"  firewall  {line}" for line in done]
    allure_output.attach_text("firewall changes", "\n".join(done) or "none")
    return done


def drift(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """What PVE's firewall still differs in from the inventory's (empty: converged)."""
    if deployment.inventory.firewall is None:
        return []
    cts = managed_cts(deployment, proxmox)
    wanted = desired_state(deployment.inventory)
    wanted["cts"] = {vmid: ct for vmid, ct in wanted["cts"].items() if vmid in cts}
    return changes(_read(deployment, proxmox, cts), wanted, MARK)


def _read(deployment: DeploySession, proxmox: ProxmoxClient, cts: dict[int, str]) -> dict:
    """The firewall PVE holds for these CTs: this run's last read when nothing has written since, else a new read."""
    seen = deployment.firewall_seen
    if seen is not None and seen["nodes"] == cts:
        return seen["state"]
    return read_state(proxmox.api_call, cts)


def restore(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Put back the firewall recorded before this run (the rollback's part that snapshots do not hold), each
    container's where it runs now; PartlyRestored when a container's node is down: the rest is put back."""
    before = deployment.firewall_before
    if not before:
        return []
    where, offline = proxmox.placement(), set(proxmox.offline_nodes())
    cts = {vmid: where.get(vmid, node) for vmid, node in before["nodes"].items()}
    # a call about a container on a down node answers 595: it would stop the restore of every other one
    unreachable = {vmid: node for vmid, node in cts.items() if node in offline}
    reachable = {vmid: node for vmid, node in cts.items() if vmid not in unreachable}
    wanted = {**before["state"], "cts": {vmid: ct for vmid, ct in before["state"]["cts"].items() if vmid in reachable}}
    deployment.firewall_seen = None
    done = converge(proxmox.api_call, read_state(proxmox.api_call, reachable), wanted, MARK, reachable)
    if unreachable:
        left = ", ".join(f"CT {vmid} (node {node} down)" for vmid, node in sorted(unreachable.items()))
        raise PartlyRestored(f"the firewall of {left} not put back, the rest is", done)
    return done


def _summary(state: dict) -> str:
    cluster = state["cluster"]
    return (f"datacenter options {cluster['options']}; {len(cluster['groups'])} group(s), "
            f"{len(cluster['ipsets'])} IP set(s), {len(cluster['aliases'])} alias(es); "
            + "; ".join(f"CT {vmid}: {ct['options']}, {len(ct['rules'])} rule(s)" for vmid, ct in state["cts"].items()))
