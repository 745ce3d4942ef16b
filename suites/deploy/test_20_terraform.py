"""Terraform: apply exactly the plan the guard accepted, then prove the state converged."""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.known_hosts import forget, known_hosts_file
from plugins.plan_guard import container_hostname

pytestmark = [pytest.mark.order(20), pytest.mark.stage("terraform", plan_only=False)]


def test_the_guarded_plan_is_applied(terraform, deployment, inventory):
    """`terraform apply` of the saved plan (not a fresh one) succeeds; a plan that changes nothing is not applied."""
    if deployment.plan.changes_nothing:
        with reporting.step("terraform apply not needed: the saved plan changes no resource and no output"):
            return
    with reporting.step(f"terraform apply ({deployment.plan.summary()})"):
        deployment.applied = True  # from here on, a failure may have changed things: roll back
        log = terraform.apply(deployment.plan)
    reporting.attach_text("terraform apply", log)
    # Containers created by this apply have new SSH host keys: unpin their addresses, and only theirs.
    created = {container_hostname(c) for c in deployment.plan.changes if "create" in c.actions}
    addresses = [h.ip for h in inventory.hosts if h.hostname in created]
    forget(known_hosts_file(inventory), addresses)


def test_the_outputs_name_every_container(terraform, deployment, inventory):
    """Terraform's outputs list every inventory container with its VMID and address."""
    deployment.outputs = terraform.output()
    containers = deployment.outputs.get("containers", {})
    expected = {h.hostname: (h.vmid, h.ip) for h in inventory.hosts if not inventory.is_runner(h)}
    found = {name: (c.get("vmid"), c.get("ip")) for name, c in containers.items()}
    assert found == expected, f"terraform outputs.containers = {found}, expected {expected}"


def test_a_second_plan_is_empty(terraform, tfvars_file, deployment):
    """Nothing drifts: planning again right after apply changes nothing (incident #4: tags/keys drift)."""
    if not deployment.applied:
        pytest.skip("nothing was applied: the first plan already changed nothing")
    plan = terraform.plan(tfvars_file)
    changes = [f"{'/'.join(c.actions)} {c.address}" for c in plan.changes if c.actions != ("no-op",)]
    assert not plan.errored and not changes, f"second plan not empty ({plan.summary()}): {'; '.join(changes)}"
