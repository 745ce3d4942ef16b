"""Plan: Terraform plans against the real state, and the plan guard reads it before anything changes.

The guard runs BEFORE the snapshot stage: a refused plan leaves nothing behind — no snapshot,
no API write, no state change (incidents #4 and #5).
"""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.plan_guard import check_plan

pytestmark = [pytest.mark.order(5), pytest.mark.stage("plan")]


def test_terraform_init_reaches_the_state_backend(terraform):
    """`terraform init` configures the S3 backend of the inventory (no STS call: incident #3)."""
    with reporting.step("terraform init"):
        terraform.init()


def test_the_plan_is_computed(terraform, tfvars_file, deployment):
    """Terraform plans the inventory's containers from the shared state; the summary goes to the report."""
    with reporting.step("terraform plan"):
        deployment.plan = terraform.plan(tfvars_file)
    summary = deployment.plan.summary()
    deployment.stage("plan").summary = summary
    reporting.attach_text("terraform plan summary", _describe(deployment.plan))
    assert not deployment.plan.errored, f"terraform plan failed: {deployment.plan.error}"


def test_the_plan_deletes_or_replaces_no_protected_container(deployment, inventory):
    """Plan guard: any delete of a protected container is refused before apply (incident #4)."""
    protected = {h.hostname for h in inventory.protected_hosts}
    deployment.plan_refusals = check_plan(deployment.plan, protected)
    assert not deployment.plan_refusals, "; ".join(deployment.plan_refusals)


def _describe(plan) -> str:
    lines = [f"Plan: {plan.summary()}"]
    lines += [f"  {'/'.join(c.actions):<14} {c.address}" for c in plan.changes if c.actions != ("no-op",)]
    return "\n".join(lines)
