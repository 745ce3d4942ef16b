"""Ansible: bootstrap, then one playbook per role in the inventory's order, through ansible-runner.

A failing task is named (host, task, message); each playbook's recap goes to the report.
Under --plan-only the same playbooks run with --check --diff and change nothing.
"""

from __future__ import annotations

import pytest

from plugins import reporting
from plugins.ansible import playbooks_for, run_playbook
from plugins.inventory import get_inventory
from plugins.known_hosts import known_hosts_file

pytestmark = [pytest.mark.order(30), pytest.mark.stage("ansible")]


def pytest_generate_tests(metafunc):
    """One test per playbook, in deploy order: bootstrap first, then the inventory's roles."""
    if "playbook" in metafunc.fixturenames:
        paths = playbooks_for(get_inventory(metafunc.config).roles)
        metafunc.parametrize("playbook", paths, ids=[p.stem for p in paths])


def _run(playbook, inventory, extravars, *, check: bool):
    with reporting.step(f"ansible-playbook {playbook.name}{' --check --diff' if check else ''}"):
        result = run_playbook(playbook, inventory.ansible_inventory(), private_key=inventory.runner.deploy_key,
                              known_hosts=known_hosts_file(inventory), extravars=extravars,
                              check=check, diff=check)
    reporting.attach_text(f"ansible recap {playbook.stem}", result.recap())
    return result


def test_the_playbook_runs_without_failure(playbook, inventory, deployment, ansible_extravars):
    """The playbook succeeds on every host it targets: no failed task, no unreachable host."""
    result = _run(playbook, inventory, ansible_extravars, check=deployment.plan_only)
    deployment.ansible[playbook.stem] = result.as_dict()
    deployment.stage("ansible").summary = result.summary()
    failures = "; ".join(f"{f.host}: task '{f.task}': {f.message}" for f in result.failures())
    assert result.ok, f"{playbook.stem}: {failures or result.summary()}"


def test_a_second_run_changes_nothing(playbook, inventory, deployment, ansible_extravars, pytestconfig):
    """Idempotence (--idempotence): running the playbook again reports changed=0 on every host."""
    if not pytestconfig.getoption("--idempotence") or deployment.plan_only:
        pytest.skip("idempotence rerun not asked (--idempotence)")
    result = _run(playbook, inventory, ansible_extravars, check=False)
    assert result.ok and result.changed_total == 0, (
        f"{playbook.stem} is not idempotent: changed on {result.changed_hosts()} ({result.summary()})")
