"""Session-finish rollback: a failed or interrupted deploy puts every snapshotted container back.

Only containers snapshotted in THIS run are rolled back, in parallel, with start=1; each task's
exitstatus is checked; then the plugin waits, bounded, until the rolled-back hosts answer SSH and
their services answer acceptably again (no fixed sleep). Never the runner, never this machine.
The outcome goes to the terminal and the report; the exit status stays a failure.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from plugins import deploy_result, reporting
from plugins.deploy_session import DeploySession, get_session
from plugins.host_health import wait_hosts_and_services
from plugins.proxmox import ProxmoxClient
from plugins.self_host import is_self

ROLLBACK_TASK_TIMEOUT = 300.0


def rollback_targets(deploy: DeploySession) -> tuple[dict[int, str], list[str]]:
    """The {vmid: snapshot} to roll back, and why any snapshotted host is left out."""
    inventory = deploy.inventory
    targets, excluded = {}, []
    for vmid, name in sorted(deploy.snapshots.items()):
        host = inventory.host(vmid)
        reason = is_self(host, inventory) or (None if host.rollback else f"{host.hostname} has rollback: false")
        if reason:
            excluded.append(f"{reason}: not rolled back")
        else:
            targets[vmid] = name
    return targets, excluded


def roll_back(deploy: DeploySession, client: Any) -> dict:
    """Roll back every target in parallel (per node), then wait until hosts and services answer."""
    inventory = deploy.inventory
    targets, excluded = rollback_targets(deploy)
    started = time.monotonic()
    by_node: dict[str, dict[int, str]] = {}
    for vmid, name in targets.items():
        by_node.setdefault(inventory.host(vmid).node, {})[vmid] = name
    tasks: dict[int, Any] = {}
    for node, group in by_node.items():
        tasks.update(client.rollback_many(node, group, start=True, timeout=ROLLBACK_TASK_TIMEOUT))
    rolled = [vmid for vmid, res in tasks.items() if not isinstance(res, Exception)]
    task_errors = {vmid: str(res) for vmid, res in tasks.items() if isinstance(res, Exception)}
    health = wait_healthy([inventory.host(v) for v in rolled], inventory)
    unhealthy = {name: msg for name, msg in health.items() if msg}
    return {
        "rolled_back": {inventory.host(v).hostname: targets[v] for v in rolled},
        "task_errors": {inventory.host(v).hostname: err for v, err in task_errors.items()},
        "excluded": excluded,
        "unhealthy": unhealthy,
        "seconds": round(time.monotonic() - started, 1),
        "ok": not task_errors and not unhealthy,
    }


def wait_healthy(hosts: list, inventory: Any) -> dict[str, str]:
    """Wait, bounded, until each host answers SSH and passes its checks and its services answer; '' = healthy."""
    results, web = wait_hosts_and_services(inventory, hosts, [(h, s) for h in hosts for s in h.services])
    problems: dict[str, list[str]] = {h.hostname: [] for h in hosts}
    for result in results.values():
        if result.outcome == "fail":
            problems[result.host].append(result.message)
    for (hostname, _), answer in web.items():
        if not answer.ok:
            problems[hostname].append(answer.message)
    return {name: "; ".join(msgs) for name, msgs in problems.items()}


def describe(outcome: dict) -> list[str]:
    """Terminal/report lines for a rollback outcome."""
    lines = [f"rollback {'succeeded' if outcome['ok'] else 'INCOMPLETE'} in {outcome['seconds']} s"]
    lines += [f"  rolled back {h} to {s}" for h, s in outcome["rolled_back"].items()]
    lines += [f"  FAILED to roll back {h}: {e}" for h, e in outcome["task_errors"].items()]
    lines += [f"  still unhealthy {h}: {m}" for h, m in outcome["unhealthy"].items()]
    lines += [f"  {x}" for x in outcome["excluded"]]
    return lines


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Roll back after a failed or interrupted deploy that took snapshots (unless --no-rollback)."""
    deploy = get_session(session.config)
    if deploy is None:
        return
    failed = deploy.failed or exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED)
    if failed:
        _after_failure(session, deploy)
    deploy_result.write_json(deploy)


def _after_failure(session: pytest.Session, deploy: DeploySession) -> None:
    """Roll back (unless --no-rollback), notify with the rollback's outcome, keep the exit status failing."""
    terminal = session.config.pluginmanager.get_plugin("terminalreporter")
    write = (lambda line: terminal.write_line(line)) if terminal else print
    if deploy.snapshots:
        _roll_back_session(deploy, write)
    if not deploy.plan_only:
        outcome = deploy_result.send(deploy)
        write(f"notification: {outcome.message}")
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _roll_back_session(deploy: DeploySession, write) -> None:
    """Roll back this run's snapshots (or say they are kept) and write the outcome."""
    if not deploy.rollback_enabled:
        kept = ", ".join(f"{deploy.inventory.host(v).hostname}:{n}" for v, n in deploy.snapshots.items())
        write(f"--no-rollback: the failed state is kept for debugging; snapshots of this run: {kept}")
        return
    write(f"deploy failed: rolling back {len(deploy.snapshots)} container(s) to this run's snapshots")
    try:
        client = ProxmoxClient.from_inventory(deploy.inventory.proxmox)
        outcome = roll_back(deploy, client)
    except Exception as exc:  # noqa: BLE001 - the rollback must report, whatever broke
        outcome = {"ok": False, "rolled_back": {}, "task_errors": {"*": str(exc)}, "unhealthy": {},
                   "excluded": [], "seconds": 0}
    deploy.rollback = outcome
    for line in describe(outcome):
        write(line)
    reporting.attach_text("rollback", "\n".join(describe(outcome)))
