"""Ansible: one run of ansible/playbooks/site.yml through ansible-runner, judged per host.

site.yml bootstraps every host, then applies each host's roles in the inventory's order, hosts side
by side. A failing task is named (host, task, message); the recap goes to the report. Under
--plan-only the same run is --check --diff and changes nothing. The work: plugins/deploy/stages/ansible.py.
"""

from __future__ import annotations

import pytest

from plugins.backup.job import NoBackupApi, apply_policy_job, backup_job
from plugins.deploy.stages import ansible
from plugins.inventory import get_inventory
from plugins.proxmox.backups import job_differences, read_job
from plugins.tools.playbooks import PlaybookResult

pytestmark = pytest.mark.stage("ansible")


def pytest_generate_tests(metafunc):
    """One test per inventory host, in inventory order."""
    if "host_name" in metafunc.fixturenames:
        names = [h.hostname for h in get_inventory(metafunc.config).hosts]
        metafunc.parametrize("host_name", names)


@pytest.fixture(scope="module")
def site_result(deployment, ansible_extravars) -> PlaybookResult:
    """The deploy's site.yml run (check mode under --plan-only)."""
    return ansible.configure(deployment, ansible_extravars)


def test_the_host_is_configured(host_name, site_result, deployment):
    """Bootstrap and the host's roles ran on it with no failed task and no unreachable error."""
    why = ansible.not_checked(deployment).get(host_name)
    if why:
        pytest.skip(why)
    outcome = ansible.host_outcome(site_result, host_name, "site.yml")
    assert not outcome.problem, outcome.problem
    if outcome.skip:
        pytest.skip(outcome.skip)


@pytest.fixture(scope="module")
def rerun_result(deployment, ansible_extravars, pytestconfig) -> PlaybookResult:
    """A second site.yml run (--idempotence only)."""
    if not pytestconfig.getoption("--idempotence") or deployment.plan_only:
        pytest.skip("idempotence rerun not asked (--idempotence)")
    if deployment.failed:
        pytest.skip("no idempotence rerun after a failed run")
    return ansible.run_site(deployment, ansible_extravars, check=False)


def test_a_second_run_changes_nothing_on_the_host(host_name, rerun_result):
    """Idempotence (--idempotence): running site.yml again reports changed=0 on the host."""
    outcome = ansible.rerun_outcome(rerun_result, host_name)
    assert not outcome.problem, outcome.problem
    if outcome.skip:
        pytest.skip(outcome.skip)


def test_the_node_runs_the_policys_backup_job(proxmox, inventory, deployment):
    """The inventory's backup policy is the node's scheduled job (POST or PUT /cluster/backup, id homelab-suite);
    the hosts' dump timers are site.yml's backup role, judged with each host above."""
    if inventory.backup is None:
        pytest.skip(f"no backup policy ({inventory.where('backup')})")
    if deployment.plan_only:
        pytest.skip("--plan-only writes nothing to the node")
    try:
        outcome = apply_policy_job(proxmox, inventory)
    except NoBackupApi as reason:
        pytest.skip(str(reason))
    wanted, found = backup_job(inventory).parameters(), read_job(proxmox)
    differ = job_differences(wanted, found)
    assert not differ, f"{outcome}, yet the node's job differs in {', '.join(differ)} from {inventory.where('backup')}"
