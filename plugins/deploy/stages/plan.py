"""Plan: Terraform plans against the real state, and the plan guard reads it before anything changes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from plugins.deploy.plan_guard import check_plan
from plugins.deploy.progress import plan_lines
from plugins.report import allure_output

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession
    from plugins.tools.terraform import Plan, TerraformRunner


def init_backend(terraform: TerraformRunner) -> None:
    """`terraform init` with the inventory's S3 backend; raise TerraformError naming what failed."""
    with allure_output.step("terraform init"):
        terraform.init()


def compute_plan(deployment: DeploySession, terraform: TerraformRunner, tfvars_file: Path) -> Plan:
    """Plan the inventory's containers into a saved plan; recorded on the session and in the report."""
    with allure_output.step("terraform plan"):
        deployment.plan = terraform.plan(tfvars_file)
    record = deployment.stage("plan")
    record.summary = deployment.plan.summary()
    record.details = plan_lines(("/".join(c.actions), c.address) for c in deployment.plan.changes
                                 if c.actions != ("no-op",))
    version = deployment.plan.raw.get("terraform_version")
    if version:
        deployment.facts["terraform_version"] = version
    allure_output.attach_text("terraform plan summary", describe(deployment.plan))
    return deployment.plan


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
