"""Plan: Terraform plans against the real state, and the plan guard reads it before anything changes.

The guard runs BEFORE the snapshot stage: a refused plan leaves nothing behind — no snapshot,
no API write, no state change (incidents #4 and #5). The work: plugins/deploy/stages/plan.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import plan

pytestmark = pytest.mark.stage("plan")


def test_terraform_init_reaches_the_state_backend(terraform):
    """`terraform init` configures the S3 backend of the inventory (no STS call: incident #3)."""
    plan.init_backend(terraform)


def test_the_plan_is_computed(terraform, tfvars_file, deployment):
    """Terraform plans the inventory's containers from the shared state; the summary goes to the report."""
    computed = plan.compute_plan(deployment, terraform, tfvars_file)
    assert not computed.errored, f"terraform plan failed: {computed.error}"


def test_the_plan_deletes_or_replaces_no_protected_container(deployment):
    """Plan guard: any delete of a protected container is refused before apply (incident #4), and so is a create of
    a container PVE already has (a lost state: the refusal names the adoption command)."""
    refusals = plan.guard_plan(deployment)
    assert not refusals, "; ".join(refusals)
