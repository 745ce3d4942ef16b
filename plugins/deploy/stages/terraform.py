"""Terraform: apply exactly the plan the guard accepted, then prove the state converged."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plugins.deploy.plan_guard import container_hostname
from plugins.report import allure_output
from plugins.ssh.known_hosts import forget, known_hosts_file

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.tools.terraform import TerraformRunner


def apply_plan(deployment: DeploySession, terraform: TerraformRunner) -> bool:
    """Apply the saved plan (not a fresh one), unless it changes nothing; give whether it was applied.

    From the apply on, a failure may have changed things: the session says so, and the run rolls back.
    Containers the apply created have new SSH host keys: their addresses, and only theirs, are unpinned.
    """
    plan = deployment.plan
    if plan.changes_nothing:
        with allure_output.step("terraform apply not needed: the saved plan changes no resource and no output"):
            return False
    with allure_output.step(f"terraform apply ({plan.summary()})"):
        deployment.applied = True
        log = terraform.apply(plan)
    allure_output.attach_text("terraform apply", log)
    inventory = deployment.inventory
    created = {container_hostname(c) for c in plan.changes if "create" in c.actions}
    forget(known_hosts_file(inventory), [h.ip for h in inventory.hosts if h.hostname in created])
    return True


def outputs_problem(deployment: DeploySession, terraform: TerraformRunner) -> str:
    """How Terraform's outputs differ from the inventory's containers ('' if they name every one); recorded. A host
    left out of the run is not asked for (a targeted apply may not have written it yet) nor held against them."""
    inventory = deployment.inventory
    deployment.outputs = terraform.output()
    containers = deployment.outputs.get("containers", {})
    expected = {h.hostname: (h.vmid, h.ip) for h in deployment.hosts if not inventory.is_runner(h)}
    left_out = {inventory.host(vmid).hostname for vmid in deployment.left_out}
    found = {name: (c.get("vmid"), c.get("ip")) for name, c in containers.items() if name not in left_out}
    return "" if found == expected else f"terraform outputs.containers = {found}, expected {expected}"


def drift(deployment: DeploySession, terraform: TerraformRunner, tfvars_file: Path) -> str:
    """What a second plan right after apply would change ('' if nothing: no drift, incident #4); of the same
    resources as the first when hosts are left out."""
    plan = terraform.plan(tfvars_file, deployment.terraform_targets)
    changes = [f"{'/'.join(c.actions)} {c.address}" for c in plan.changes if c.actions != ("no-op",)]
    if plan.errored or changes:
        return f"second plan not empty ({plan.summary()}): {'; '.join(changes)}"
    return ""
