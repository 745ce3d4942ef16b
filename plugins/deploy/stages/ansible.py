"""Ansible: one run of ansible/playbooks/site.yml through ansible-runner, judged per host.

site.yml bootstraps every host, then applies each host's roles in the inventory's order, hosts side by
side. A failing task is named (host, task, message); the recap goes to the report. Under --plan-only the
same run is --check --diff and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plugins.deploy.progress import HostProgress, check_mode_lines
from plugins.deploy.stages.outcome import HostOutcome
from plugins.report import allure_output
from plugins.ssh.known_hosts import known_hosts_file
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import FAILED_EVENTS, SITE_PLAYBOOK, PlaybookResult, run_playbook, task_label
from plugins.tools.vault import vault_files

if TYPE_CHECKING:
    from plugins.deploy.session import DeploySession


def not_checked(deployment: DeploySession) -> dict[str, str]:
    """{hostname: why} of the hosts the run does not configure: those it leaves out (their node is down), and under
    a plan those check mode cannot reach: PVE has them stopped or missing (a deploy starts or creates them first)."""
    inventory = deployment.inventory
    skipped = {inventory.host(vmid).hostname: f"left out: {why}: not configured by this run"
               for vmid, why in deployment.left_out.items()}
    if deployment.plan_only:
        skipped |= {s.hostname: f"{s.line()}: check mode cannot reach it (a deploy starts or creates it first)"
                    for s in deployment.host_states.values() if s.down and s.hostname not in skipped}
    return skipped


def run_site(deployment: DeploySession, extravars: dict[str, str], *, check: bool) -> PlaybookResult:
    """site.yml once (check mode and diff when `check`), --limit'ed to the hosts it configures (not_checked); its
    recap goes to the report."""
    inventory = deployment.inventory
    mode = " --check --diff" if check else ""
    down = not_checked(deployment)
    limit = ",".join(h.hostname for h in inventory.hosts if h.hostname not in down) if down else None
    with allure_output.step(f"ansible-playbook{mode} {SITE_PLAYBOOK}.yml: bootstrap, then each host's roles"):
        result = run_playbook(SITE_PLAYBOOK, ansible_inventory(inventory), private_key=inventory.runner.deploy_key,
                              limit=limit,
                              known_hosts=known_hosts_file(inventory), extravars=extravars, check=check, diff=check,
                              vault=vault_files(inventory), event_handler=None if deployment.terse else HostProgress(deployment.say))
    allure_output.attach_text(f"ansible recap {SITE_PLAYBOOK}", result.recap())
    if check:
        allure_output.attach_text("ansible check mode: what would change", "\n".join(
            check_mode_lines(result.events, [h.hostname for h in inventory.hosts], show_diff=True)))
    return result


def configure(deployment: DeploySession, extravars: dict[str, str]) -> PlaybookResult:
    """The deploy's site.yml run (check mode under --plan-only), recorded on the session."""
    result = run_site(deployment, extravars, check=deployment.plan_only)
    deployment.ansible[SITE_PLAYBOOK] = result.as_dict()
    record = deployment.stage("ansible")
    record.summary = result.summary()
    if deployment.plan_only:  # a deploy's per-host lines were printed as the run went (HostProgress)
        record.details = check_mode_lines(result.events, [h.hostname for h in deployment.inventory.hosts],
                                          show_diff=deployment.show_diff)
    return result


def host_outcome(result: PlaybookResult, host_name: str, what: str) -> HostOutcome:
    """The host's own failures; a failure when the run never reached it; a skip when only others failed."""
    own = result.failures_of(host_name)
    allure_output.attach_text(f"ansible recap of {host_name}", _host_recap(result, host_name))
    if own:
        allure_output.attach_json(f"failed task output on {host_name}", failed_outputs(result, host_name))
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


def _host_recap(result: PlaybookResult, host_name: str) -> str:
    """The recap line of one host and its changed tasks."""
    stats = result.stats.get(host_name)
    if stats is None:
        return f"{host_name}: not in the recap of {result.playbook} ({result.summary()})"
    counts = (f"ok={stats.ok} changed={stats.changed} unreachable={stats.dark} failed={stats.failures} "
              f"skipped={stats.skipped} rescued={stats.rescued} ignored={stats.ignored}")
    lines = [f"{host_name}: {counts}"]
    lines += [f"  changed: {task}" for task in result.changed_tasks_of(host_name)]
    return "\n".join(lines)


def failed_outputs(result: PlaybookResult, host_name: str) -> list[dict]:
    """What each failed task of a host said: task, msg, command, rc, stdout and stderr (already redacted)."""
    outputs = []
    for event in result.events:
        data = event.get("event_data") or {}
        if event.get("event") not in FAILED_EVENTS or data.get("host") != host_name or data.get("ignore_errors"):
            continue
        res = data.get("res") or {}
        outputs.append({"task": task_label(data), **{key: res[key] for key in
                        ("msg", "cmd", "rc", "stdout", "stderr", "module_stderr", "results") if key in res}})
    return outputs
