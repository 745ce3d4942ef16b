"""Ansible: bootstrap, then one playbook per role in the inventory's order, through ansible-runner.

Playbooks whose hosts do not overlap run side by side (plugins/playbook_waves.py): bootstrap alone
first, then the role playbooks. A failing task is named (host, task, message); each playbook's recap
goes to the report. Under --plan-only the same playbooks run with --check --diff and change nothing.
"""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.ansible import playbooks_for, run_playbook
from plugins.inventory import get_inventory
from plugins.known_hosts import known_hosts_file
from plugins.playbook_waves import run_in_waves

# Not sequential: the fixture already stops after a failed wave, and every playbook that ran is reported.
pytestmark = [pytest.mark.order(30), pytest.mark.stage("ansible", sequential=False)]


def pytest_generate_tests(metafunc):
    """One test per playbook, in deploy order: bootstrap first, then the inventory's roles."""
    if "playbook" in metafunc.fixturenames:
        paths = playbooks_for(get_inventory(metafunc.config).roles)
        metafunc.parametrize("playbook", paths, ids=[p.stem for p in paths])


def _run_all(inventory, deployment, extravars, *, check: bool) -> dict:
    """Every playbook, bootstrap first, role playbooks on disjoint hosts side by side; recaps to the report."""
    def run(playbook):
        return run_playbook(playbook, inventory.ansible_inventory(), private_key=inventory.runner.deploy_key,
                            known_hosts=known_hosts_file(inventory), extravars=extravars, check=check, diff=check)

    playbooks = playbooks_for(inventory.roles)
    mode = " --check --diff" if check else ""
    with reporting.step(f"ansible-playbook{mode}: {', '.join(p.stem for p in playbooks)}"):
        results = run_in_waves(playbooks, inventory, run, ok=lambda r: r.ok)
    for name, result in results.items():
        reporting.attach_text(f"ansible recap {name}", result.recap())
    return results


@pytest.fixture(scope="module")
def playbook_results(inventory, deployment, ansible_extravars) -> dict:
    """The deploy's playbook runs (check mode under --plan-only), by playbook name."""
    results = _run_all(inventory, deployment, ansible_extravars, check=deployment.plan_only)
    for name, result in results.items():
        deployment.ansible[name] = result.as_dict()
    deployment.stage("ansible").summary = "; ".join(r.summary() for r in results.values())
    return results


def test_the_playbook_runs_without_failure(playbook, playbook_results):
    """The playbook succeeds on every host it targets: no failed task, no unreachable host."""
    result = playbook_results.get(playbook.stem)
    if result is None:
        pytest.skip(f"{playbook.stem} not run: a playbook of an earlier wave failed")
    failures = "; ".join(f"{f.host}: task '{f.task}': {f.message}" for f in result.failures())
    assert result.ok, f"{playbook.stem}: {failures or result.summary()}"


@pytest.fixture(scope="module")
def rerun_results(inventory, deployment, ansible_extravars, pytestconfig) -> dict:
    """A second run of every playbook (--idempotence only)."""
    if not pytestconfig.getoption("--idempotence") or deployment.plan_only:
        pytest.skip("idempotence rerun not asked (--idempotence)")
    if deployment.failed:
        pytest.skip("no idempotence rerun after a failed playbook")
    return _run_all(inventory, deployment, ansible_extravars, check=False)


def test_a_second_run_changes_nothing(playbook, rerun_results):
    """Idempotence (--idempotence): running the playbook again reports changed=0 on every host."""
    result = rerun_results.get(playbook.stem)
    if result is None:
        pytest.skip(f"{playbook.stem} not rerun: a playbook of an earlier wave failed")
    assert result.ok and result.changed_total == 0, (
        f"{playbook.stem} is not idempotent: changed on {result.changed_hosts()} ({result.summary()})")
