"""Ansible: one run of ansible/playbooks/site.yml through ansible-runner, judged per host.

site.yml bootstraps every host, then applies each host's roles in the inventory's order, hosts side by
side. A failing task is named (host, task, message); the recap goes to the report. Under --plan-only the
same run is --check --diff and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.deploy.stages.outcome import HostOutcome
from plugins.report import allure_output
from plugins.ssh.known_hosts import known_hosts_file
from plugins.tools.playbooks import SITE_PLAYBOOK, PlaybookResult, run_playbook

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession


def run_site(deployment: DeploySession, extravars: dict[str, str], *, check: bool) -> PlaybookResult:
    """site.yml once (check mode and diff when `check`); its recap goes to the report."""
    inventory = deployment.inventory
    mode = " --check --diff" if check else ""
    with allure_output.step(f"ansible-playbook{mode} {SITE_PLAYBOOK}.yml: bootstrap, then each host's roles"):
        result = run_playbook(SITE_PLAYBOOK, inventory.ansible_inventory(), private_key=inventory.runner.deploy_key,
                              known_hosts=known_hosts_file(inventory), extravars=extravars, check=check, diff=check)
    allure_output.attach_text(f"ansible recap {SITE_PLAYBOOK}", result.recap())
    return result


def configure(deployment: DeploySession, extravars: dict[str, str]) -> PlaybookResult:
    """The deploy's site.yml run (check mode under --plan-only), recorded on the session."""
    result = run_site(deployment, extravars, check=deployment.plan_only)
    deployment.ansible[SITE_PLAYBOOK] = result.as_dict()
    deployment.stage("ansible").summary = result.summary()
    return result


def host_outcome(result: PlaybookResult, host_name: str, what: str) -> HostOutcome:
    """The host's own failures; a failure when the run never reached it; a skip when only others failed."""
    own = result.failures_of(host_name)
    if own:
        return HostOutcome(problem=f"{host_name}: " + "; ".join(f"task '{f.task}': {f.message}" for f in own))
    if host_name not in result.stats:
        run_failures = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures())
        return HostOutcome(problem=f"{host_name}: {what} never reached this host: {run_failures or result.summary()}")
    if not result.ok:
        others = sorted({f.host for f in result.failures()} - {host_name})
        return HostOutcome(skip=f"{host_name}: no failure of its own; the run failed on "
                                f"{', '.join(others) or 'the controller'}")
    return HostOutcome()


def rerun_outcome(result: PlaybookResult, host_name: str) -> HostOutcome:
    """The idempotence rerun on one host: as host_outcome, and any task it changed is a problem."""
    outcome = host_outcome(result, host_name, "the rerun")
    changed = result.changed_tasks_of(host_name)
    if not outcome.problem and not outcome.skip and changed:
        return HostOutcome(problem=f"{host_name} is not idempotent: the rerun changed {'; '.join(changed)}")
    return outcome
