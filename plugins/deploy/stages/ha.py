"""HA: PVE's HA manager made to hold the inventory's `ha:` hosts (`ct:<vmid>` resources) and their node
affinity (the suite's `homelab-suite-<hostname>` rules) through its API.

After Terraform the containers exist: each host that declares `ha:` gets its resource (state, max_restart,
max_relocate), one that differs is updated, and one of an inventory container that no longer declares `ha:` is
removed; resources of vmids the inventory does not name are never touched. Then the rules: one node-affinity rule
per host whose `ha:` declares `nodes` (PVE's `nodes` and `strict`), created, updated or removed; rules of any other
id are the owner's and never touched. What PVE held before is recorded first: HA resources and rules are not in a
container's snapshot, so a rollback puts this record back before it rolls the containers back
(plugins/deploy/finish/rollback.py). A plan lists the changes without making them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.proxmox import ha_rules
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
    return {host.vmid: host.ha.model_dump(include={"state", "max_restart", "max_relocate"})
            for host in deployment.inventory.hosts if host.ha is not None}


def desired_rules(deployment: DeploySession) -> dict[str, dict]:
    """{rule id: options} the inventory declares: a node-affinity rule per `ha:` host with `nodes`."""
    return ha_rules.wanted_rules(deployment.inventory.hosts)


def record_previous(deployment: DeploySession, proxmox: ProxmoxClient) -> None:
    """Keep the HA resources PVE holds for the inventory's containers and the suite's HA rules before this run:
    what a rollback restores."""
    deployment.ha_before = read_state(proxmox.api_call, managed(deployment))
    deployment.ha_rules_before = ha_rules.read_state(proxmox.api_call)
    allure_output.attach_text("HA resources before this run", _summary(deployment.ha_before))
    allure_output.attach_text("the suite's HA rules before this run", _rules_summary(deployment.ha_rules_before))


def apply(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Make PVE's HA resources hold the inventory's (a plan: list what would change); give the changes, recorded."""
    record = deployment.stage("ha")
    vmids, wanted, rules = managed(deployment), desired_state(deployment), desired_rules(deployment)
    current = read_state(proxmox.api_call, vmids)
    if deployment.plan_only:
        done = changes(current, wanted, vmids)
        # as the apply will find them: a resource it removes takes its rule with it (PVE's purge)
        leaving = {f"ct:{vmid}" for vmid in set(current) - set(wanted)}
        rules_now = {name: r for name, r in ha_rules.read_state(proxmox.api_call).items()
                     if r["resources"] not in leaving}
        rule_lines = ha_rules.changes(rules_now, rules)
        verb = "would change"
    else:
        with allure_output.step("register the inventory's ha: hosts with PVE's HA manager"):
            done = converge(proxmox.api_call, current, wanted, vmids)
        with allure_output.step("make the suite's HA rules the inventory's ha.nodes"):
            # read after the resources: a removed resource took its rule with it (PVE's purge)
            rule_lines = ha_rules.converge(proxmox.api_call, ha_rules.read_state(proxmox.api_call), rules)
        verb = "changed"
    parts = [f"{len(done)} HA resource(s)"] if done else []
    parts += [f"{len(rule_lines)} HA rule(s)"] if rule_lines else []
    if parts:
        record.summary = f"{' and '.join(parts)} {verb}"
    elif wanted:
        record.summary = (f"the HA manager already holds the inventory's {len(wanted)} ha: host(s)"
                          + (f" and {len(rules)} node-affinity rule(s)" if rules else ""))
    else:
        record.summary = "no host declares ha: and none of the inventory's containers is an HA resource"
    record.details = [f"  ha        {line}" for line in [*done, *rule_lines]]
    allure_output.attach_text("HA resource changes", "\n".join([*done, *rule_lines]) or "none")
    return [*done, *rule_lines]


def drift(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """What PVE's HA resources still differ in from the inventory's (empty: converged)."""
    vmids = managed(deployment)
    return (changes(read_state(proxmox.api_call, vmids), desired_state(deployment), vmids)
            + ha_rules.changes(ha_rules.read_state(proxmox.api_call), desired_rules(deployment)))


def restore(deployment: DeploySession, proxmox: ProxmoxClient) -> list[str]:
    """Put back the HA resources and the suite's HA rules recorded before this run (the rollback's part that
    snapshots do not hold): the resources first, as a rule names resources."""
    before = deployment.ha_before
    if before is None:
        return []
    vmids = managed(deployment)
    done = converge(proxmox.api_call, read_state(proxmox.api_call, vmids), before, vmids)
    if deployment.ha_rules_before is not None:
        done += ha_rules.converge(proxmox.api_call, ha_rules.read_state(proxmox.api_call), deployment.ha_rules_before)
    return done


def _rules_summary(state: dict[str, dict]) -> str:
    return "; ".join(f"{name} {options}" for name, options in sorted(state.items())) or "none"


def _summary(state: dict[int, dict]) -> str:
    return "; ".join(f"ct:{vmid} {options}" for vmid, options in sorted(state.items())) or "none"
