"""Terraform: apply exactly the plan the guard accepted, then prove the state converged.

The work: plugins/deploy/stages/terraform.py.
"""

from __future__ import annotations

import pytest

from plugins.deploy.stages import terraform as stage

pytestmark = pytest.mark.stage("terraform")


def test_the_guarded_plan_is_applied(terraform, deployment):
    """`terraform apply` of the saved plan (not a fresh one) succeeds; a plan that changes nothing is not applied."""
    stage.apply_plan(deployment, terraform)


def test_the_outputs_name_every_container(terraform, deployment):
    """Terraform's outputs list every inventory container with its VMID and address."""
    problem = stage.outputs_problem(deployment, terraform)
    assert not problem, problem


def test_a_second_plan_is_empty(terraform, tfvars_file, deployment):
    """Nothing drifts: planning again right after apply changes nothing (incident #4: tags/keys drift)."""
    if not deployment.applied:
        pytest.skip("nothing was applied: the first plan already changed nothing")
    drift = stage.drift(deployment, terraform, tfvars_file)
    assert not drift, drift
