"""Plan: Terraform plans against the real state, and the plan guard reads it before anything changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plugins.deploy.plan_guard import check_plan, container_hostname
from plugins.deploy.progress import plan_lines
from plugins.report import allure_output
from plugins.tools.terraform import TerraformError

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.tools.terraform import Plan, TerraformRunner


def init_backend(terraform: TerraformRunner) -> None:
    """`terraform init` with the inventory's S3 backend; raise TerraformError naming what failed."""
    with allure_output.step("terraform init"):
        terraform.init()


def compute_plan(deployment: DeploySession, terraform: TerraformRunner, tfvars_file: Path) -> Plan:
    """Plan the inventory's containers into a saved plan (only the resources of the hosts this run deploys when it
    leaves some out); recorded on the session and in the report."""
    if deployment.left_out:
        deployment.terraform_targets = targets_without_left_out(deployment, terraform, tfvars_file)
    with allure_output.step("terraform plan" + (f" -target of {len(deployment.terraform_targets)} resource(s)"
                                                if deployment.left_out else "")):
        deployment.plan = terraform.plan(tfvars_file, deployment.terraform_targets)
    record = deployment.stage("plan")
    record.summary = deployment.plan.summary()
    record.details = plan_lines(("/".join(c.actions), c.address) for c in deployment.plan.changes
                                 if c.actions != ("no-op",))
    version = deployment.plan.raw.get("terraform_version")
    if version:
        deployment.facts["terraform_version"] = version
    allure_output.attach_text("terraform plan summary", describe(deployment.plan))
    return deployment.plan


def targets_without_left_out(deployment: DeploySession, terraform: TerraformRunner, tfvars_file: Path) -> list[str]:
    """The addresses of every resource of the configuration but the left-out hosts' containers: read from a plan
    that does not refresh (a provider's refresh of a CT on a down node fails, PVE answers 595), so that the real plan
    refreshes and changes only the others. Any environment's addresses: a container is known by its hostname."""
    with allure_output.step("terraform plan -refresh=false: the resources, to leave out those of the hosts left out"):
        scout = terraform.plan(tfvars_file, refresh=False)
    if scout.errored:
        raise TerraformError(f"terraform plan -refresh=false (to leave out {', '.join(left_out_names(deployment))}) "
                             f"failed: {scout.error}")
    names = set(left_out_names(deployment))
    targets = [c.address for c in scout.changes if container_hostname(c) not in names]
    if not targets:  # no -target at all would plan every resource, the left-out ones too
        raise TerraformError(f"every Terraform resource is a container left out ({', '.join(sorted(names))}): "
                             "nothing to plan")
    return targets


def left_out_names(deployment: DeploySession) -> list[str]:
    """The hostnames of the hosts this run leaves out."""
    return [deployment.inventory.host(vmid).hostname for vmid in sorted(deployment.left_out)]


def guard_plan(deployment: DeploySession) -> list[str]:
    """The plan guard's refusals (a delete or replace of a protected container), recorded on the session."""
    inventory = deployment.inventory
    protected = {h.hostname for h in inventory.protected_hosts}
    existing = [vmid for vmid, state in deployment.host_states.items() if state.exists]
    deployment.plan_refusals = check_plan(deployment.plan, protected, existing, adopt_command(inventory))
    verdict = ("refused: " + "; ".join(deployment.plan_refusals) if deployment.plan_refusals
               else f"accepted: no delete or replace of a protected container ({', '.join(sorted(protected)) or 'none'})")
    record = deployment.stage("plan")
    record.summary = f"{deployment.plan.summary()}; guard {verdict.split(':', 1)[0]}"
    record.details.append(f"  guard     {verdict}")
    allure_output.attach_text("plan guard verdict", verdict)
    return deployment.plan_refusals


def adopt_command(inventory) -> str:
    """The command that adopts existing containers into Terraform's state, for this inventory."""
    return f"python -m plugins.deploy.adopt --inventory {inventory.source}"


def describe(plan: Plan) -> str:
    """The plan for the report: Terraform's counts, then one line per change."""
    lines = [f"Plan: {plan.summary()}"]
    lines += [f"  {'/'.join(c.actions):<14} {c.address}" for c in plan.changes if c.actions != ("no-op",)]
    return "\n".join(lines)
