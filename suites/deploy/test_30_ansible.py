"""Ansible: one run of ansible/playbooks/site.yml through ansible-runner, judged per host.

site.yml bootstraps every host, then applies each host's roles in the inventory's order, hosts side
by side. A failing task is named (host, task, message); the recap goes to the report. Under
--plan-only the same run is --check --diff and changes nothing.
"""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.ansible import SITE_PLAYBOOK, PlaybookResult, run_playbook
from plugins.inventory import get_inventory
from plugins.known_hosts import known_hosts_file

# Not sequential: one run serves every host's test, and each host's outcome is reported.
pytestmark = [pytest.mark.order(30), pytest.mark.stage("ansible", sequential=False)]


def pytest_generate_tests(metafunc):
    """One test per inventory host, in inventory order."""
    if "host_name" in metafunc.fixturenames:
        names = [h.hostname for h in get_inventory(metafunc.config).hosts]
        metafunc.parametrize("host_name", names)


def _run_site(inventory, extravars, *, check: bool) -> PlaybookResult:
    """site.yml once (check mode under --plan-only); its recap goes to the report."""
    mode = " --check --diff" if check else ""
    with reporting.step(f"ansible-playbook{mode} {SITE_PLAYBOOK}.yml: bootstrap, then each host's roles"):
        result = run_playbook(SITE_PLAYBOOK, inventory.ansible_inventory(), private_key=inventory.runner.deploy_key,
                              known_hosts=known_hosts_file(inventory), extravars=extravars, check=check, diff=check)
    reporting.attach_text(f"ansible recap {SITE_PLAYBOOK}", result.recap())
    return result


def _judge(result: PlaybookResult, host_name: str, what: str) -> None:
    """Fail with the host's own failures; fail when the run never reached it; skip when others failed."""
    own = result.failures_of(host_name)
    assert not own, f"{host_name}: " + "; ".join(f"task '{f.task}': {f.message}" for f in own)
    if host_name not in result.stats:
        run_failures = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures())
        pytest.fail(f"{host_name}: {what} never reached this host: {run_failures or result.summary()}")
    if not result.ok:
        others = sorted({f.host for f in result.failures()} - {host_name})
        pytest.skip(f"{host_name}: no failure of its own; the run failed on {', '.join(others) or 'the controller'}")


@pytest.fixture(scope="module")
def site_result(inventory, deployment, ansible_extravars) -> PlaybookResult:
    """The deploy's site.yml run (check mode under --plan-only)."""
    result = _run_site(inventory, ansible_extravars, check=deployment.plan_only)
    deployment.ansible[SITE_PLAYBOOK] = result.as_dict()
    deployment.stage("ansible").summary = result.summary()
    return result


def test_the_host_is_configured(host_name, site_result):
    """Bootstrap and the host's roles ran on it with no failed task and no unreachable error."""
    _judge(site_result, host_name, "site.yml")


@pytest.fixture(scope="module")
def rerun_result(inventory, deployment, ansible_extravars, pytestconfig) -> PlaybookResult:
    """A second site.yml run (--idempotence only)."""
    if not pytestconfig.getoption("--idempotence") or deployment.plan_only:
        pytest.skip("idempotence rerun not asked (--idempotence)")
    if deployment.failed:
        pytest.skip("no idempotence rerun after a failed run")
    return _run_site(inventory, ansible_extravars, check=False)


def test_a_second_run_changes_nothing_on_the_host(host_name, rerun_result):
    """Idempotence (--idempotence): running site.yml again reports changed=0 on the host."""
    _judge(rerun_result, host_name, "the rerun")
    changed = rerun_result.changed_tasks_of(host_name)
    assert not changed, f"{host_name} is not idempotent: the rerun changed {'; '.join(changed)}"
