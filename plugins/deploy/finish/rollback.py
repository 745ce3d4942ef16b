"""Rollback of a failed deploy: every container snapshotted in THIS run goes back to its snapshot.

Containers are rolled back in parallel, with start=1; each task's exitstatus is checked; then the
rollback waits, bounded, until the rolled-back hosts answer SSH and their services answer acceptably
again (no fixed sleep): the same checks as the health suite (plugins/health/waiting.py), those of the release
each snapshot holds (plugins/deploy/finish/judgement.py). Never the runner,
never this machine, only this run's snapshots. plugins/deploy/finish/end.py runs it at the end of a failed
run and reports its outcome.
"""

from __future__ import annotations

import time
from typing import Any

from plugins.deploy.finish import timeline as tl
from plugins.deploy.finish.judgement import Judgement, judge, judge_lines, judged_by
from plugins.deploy.pipeline import PIPELINE, STAGES
from plugins.deploy.recorded_state import PartlyRestored
from plugins.deploy.release import read_records
from plugins.deploy.session import DeploySession
from plugins.deploy.stages import firewall as firewall_stage
from plugins.deploy.stages import ha as ha_stage
from plugins.health.results import FAIL, PASS
from plugins.health.waiting import HOST_DEADLINE, wait_hosts_and_services
from plugins.proxmox.client import ProxmoxClient, per_node
from plugins.shared.this_machine import self_reason

ROLLBACK_TASK_TIMEOUT = 300.0


def rollback_targets(deploy: DeploySession) -> tuple[dict[int, str], list[str]]:
    """The {vmid: snapshot} to roll back, and why any snapshotted host, or host of the rollback set the run left
    out (its node down: no snapshot), is not rolled back."""
    inventory = deploy.inventory
    targets, excluded = {}, []
    for vmid, name in sorted(deploy.snapshots.items()):
        reason = _not_rolled_back(inventory, inventory.host(vmid))
        if reason:
            excluded.append(f"{reason}: not rolled back")
        else:
            targets[vmid] = name
    rollback_set = {host.vmid for host in inventory.rollback_set}
    excluded += [f"{deploy.left_out_line(vmid)}: not rolled back (this run did not touch it)"
                 for vmid in sorted(deploy.left_out) if vmid in rollback_set]
    return targets, excluded


def _not_rolled_back(inventory: Any, host: Any) -> str | None:
    """Why no rollback touches this host (the runner, this machine, `rollback: false`), None when one does."""
    return self_reason(inventory, host) or (None if host.rollback else f"{host.hostname} has rollback: false")


def roll_back(deploy: DeploySession, client: Any) -> dict:
    """Roll back every target in parallel (per node), then wait until hosts and services answer, each judged by
    the checks of the release its snapshot holds (its record), never by those of the release that failed."""
    inventory = deploy.inventory
    targets, excluded = rollback_targets(deploy)
    started = time.monotonic()
    timeline = tl.Timeline()
    firewall, firewall_error = _restore(firewall_stage, deploy, client)
    # before the containers' rollback: its HA hands-off (plugins/proxmox/ha.py) then acts on the resources as the
    # run found them, and a resource this run created for a new ha: host is gone before anything restarts
    ha_changes, ha_error = _restore(ha_stage, deploy, client)
    tasks: dict[int, Any] = {}
    for node, hosts in per_node(inventory.host(vmid) for vmid in targets).items():
        group = {h.vmid: targets[h.vmid] for h in hosts}
        for host in hosts:
            timeline.mark(host.hostname, tl.TASK_SENT)
        tasks.update(client.rollback_many(
            node, group, start=True, timeout=ROLLBACK_TASK_TIMEOUT,
            on_log=lambda vmid, line: timeline.mark(inventory.host(vmid).hostname, tl.TASK_LINE + line)))
    for vmid, res in tasks.items():
        if not isinstance(res, Exception):
            # the pool's thread saw the end first; a task is marked done no later than this
            timeline.mark(inventory.host(vmid).hostname, tl.TASK_DONE)
    rolled = [vmid for vmid, res in tasks.items() if not isinstance(res, Exception)]
    task_errors = {vmid: str(res) for vmid, res in tasks.items() if isinstance(res, Exception)}
    before = {inventory.host(v).hostname: deploy.containers_before[v] for v in rolled if v in deploy.containers_before}
    restored = [inventory.host(v) for v in rolled]
    # Read as soon as each host answers SSH: the record is a file of the snapshot just restored.
    records = read_records(inventory, restored, on_answer=lambda hostname: timeline.mark(hostname, tl.SSH_UP))
    silent = {h.hostname: f"{records[h.hostname]} ({HOST_DEADLINE:g} s after the rollback)" for h in restored
              if _unanswered(records.get(h.hostname))}
    judgements = {h.hostname: judge(h, records.get(h.hostname), before.get(h.hostname))
                  for h in restored if h.hostname not in silent}
    health = wait_healthy([h for h in restored if h.hostname not in silent], inventory, judgements, timeline)
    unhealthy = {name: msg for name, msg in {**health, **silent}.items() if msg}
    return {
        "rolled_back": {inventory.host(v).hostname: targets[v] for v in rolled},
        "task_errors": {inventory.host(v).hostname: err for v, err in task_errors.items()},
        "excluded": excluded,
        "new_in_this_run": new_services(inventory, before),
        "judged_by": judged_by(judgements),
        "unhealthy": unhealthy,
        "seconds": round(time.monotonic() - started, 1),
        "firewall": firewall,
        "firewall_error": firewall_error,
        "ha": ha_changes,
        "ha_error": ha_error,
        "ok": not task_errors and not unhealthy and not firewall_error and not ha_error,
        "timeline": timeline.as_dict(),
    }


def left_to_recover(outcome: dict, snapshots: dict[int, str], restores: dict, inventory: Any
                    ) -> tuple[dict[int, str], dict]:
    """What the recovery of an incomplete rollback still has to do: (the snapshots of the hosts not rolled back, or
    rolled back but not healthy; the records of the firewall and HA resources it could not put back). A host rolled
    back and healthy is not in it: it serves again, and a second rollback would take away what it wrote since."""
    done = set(outcome.get("rolled_back") or {}) - set(outcome.get("unhealthy") or {})
    left = {vmid: name for vmid, name in snapshots.items()
            if inventory.host(vmid).hostname not in done and not _not_rolled_back(inventory, inventory.host(vmid))}
    kept = dict(restores)
    # put back only when the outcome says so: a rollback that broke before it began has no such key
    if outcome.get("firewall_error", "not tried") == "":
        kept.pop("firewall", None)
    if outcome.get("ha_error", "not tried") == "":
        kept.pop("ha", None)
        kept.pop("ha_rules", None)
    return left, kept


def recovery_lines(outcome: dict, snapshots: dict[int, str], inventory: Any) -> list[str]:
    """What `recover rollback` will roll back after this incomplete rollback, and what it leaves as it is."""
    left, _ = left_to_recover(outcome, snapshots, {}, inventory)
    again = ", ".join(inventory.host(vmid).hostname for vmid in sorted(left)) or "no container"
    lines = [f"  the recovery rolls back {again}"]
    done = [inventory.host(vmid).hostname for vmid in sorted(snapshots)
            if vmid not in left and not _not_rolled_back(inventory, inventory.host(vmid))]
    if done:
        lines.append(f"  rolled back and healthy, not rolled back again: {', '.join(done)}")
    return lines


def _restore(stage: Any, deploy: DeploySession, client: Any) -> tuple[list[str], str]:
    """Put back what a stage recorded before the run and a snapshot does not hold (PVE's firewall, its HA
    resources): (changes, error or '')."""
    try:
        return stage.restore(deploy, client), ""
    except PartlyRestored as partly:
        return partly.done, str(partly)
    except Exception as exc:  # noqa: BLE001 - the containers' rollback goes on; the outcome says what failed
        return [], f"{type(exc).__name__}: {exc}"


def _unanswered(record: Any) -> bool:
    """True when reading a host's record found no SSH answer at all (the host did not come back)."""
    return isinstance(record, str) and record.startswith("no SSH answer")


def existed_before(host: Any, before: dict[str, list[str]]) -> list:
    """The host's declarations whose container it had when snapshotted (all of them when that is unknown)."""
    if host.hostname not in before:
        return list(host.declarations)
    return [decl for decl in host.declarations if decl.container in before[host.hostname]]


def new_services(inventory: Any, before: dict[str, list[str]]) -> dict[str, list[str]]:
    """{hostname: services this run added}: their containers were not there at the snapshot, the rollback takes
    the host back to before them, so nothing of them is waited for."""
    found = {}
    for hostname in before:
        host = inventory.host(hostname)
        kept = {decl.name for decl in existed_before(host, before)}
        added = [decl.name for decl in host.declarations if decl.name not in kept]
        if added:
            found[hostname] = added
    return found


def wait_healthy(hosts: list, inventory: Any, judgements: dict[str, Judgement],
                 timeline: tl.Timeline | None = None) -> dict[str, str]:
    """Wait, bounded, until each host answers SSH and passes the checks of its judgement and its services
    answer; {hostname: '' when healthy, else why not}. The timeline gets each step as the waits see it."""
    timeline = timeline or tl.Timeline()
    services = [(host, service) for host in hosts for service in judgements[host.hostname].services]
    for host in hosts:
        timeline.mark(host.hostname, tl.CHECKS_START)
    # the declared deadlines, not a test's cap on the deploy's own checks: a service that restarts slowly
    # after the rollback (NetBox loading Django) still gets the time it was measured to need
    results, web = wait_hosts_and_services(inventory, hosts, services,
                                           wanted_of=lambda host: judgements[host.hostname].wanted,
                                           deadline_of=lambda service: service.rollback_deadline or service.deadline,
                                           container_of=lambda host, service: recorded_container(
                                               judgements, host, service),
                                           observe_hosts=lambda found: mark_checks(timeline, found),
                                           observe_services=lambda host, service, answer: mark_answer(
                                               timeline, host, service, answer))
    problems: dict[str, list[str]] = {h.hostname: [] for h in hosts}
    for result in results.values():
        if result.outcome == FAIL:
            problems[result.host].append(result.message)
    for (hostname, _), answer in web.items():
        if not answer.ok:
            problems[hostname].append(answer.message)
    for host in hosts:
        healthy_at = timeline.last(host.hostname, tl.HOST_CHECKS, tl.HTTP)
        if not problems[host.hostname] and healthy_at is not None:
            # when its last check passed, not when the slowest host let the wait end
            timeline.mark(host.hostname, tl.HEALTHY, healthy_at)
    return {name: "; ".join(msgs) for name, msgs in problems.items()}


def recorded_container(judgements: dict[str, Judgement], host: Any, service: Any) -> str | None:
    """The container that answers a service of a restored host, as the restored release's record says."""
    return judgements[host.hostname].containers.get(service.name)


def mark_answer(timeline: tl.Timeline, host: Any, service: Any, answer: Any) -> None:
    """Mark a service's HTTP check green when its wait ended with an accepted answer."""
    if answer.ok:
        timeline.mark(host.hostname, tl.HTTP + service.name)


def mark_checks(timeline: tl.Timeline, results: dict) -> None:
    """Mark the steps one round of host checks saw passed: Docker answering, each container running (healthy),
    and the host's checks all passed."""
    failing = {r.host for r in results.values() if r.outcome != PASS}
    for result in results.values():
        if result.outcome != PASS:
            continue
        if result.check == "docker_running":
            timeline.mark(result.host, tl.DOCKER_UP)
        elif result.check == "container_running":
            timeline.mark(result.host, tl.CONTAINER + str(result.subject))
    for host in {r.host for r in results.values()} - failing:
        timeline.mark(host, tl.HOST_CHECKS)


def describe(outcome: dict) -> list[str]:
    """Terminal/report lines for a rollback outcome."""
    lines = [f"rollback {'succeeded' if outcome['ok'] else 'INCOMPLETE'} in {outcome['seconds']} s"]
    lines += [f"  rolled back {h} to {s}" for h, s in outcome["rolled_back"].items()]
    lines += [f"  firewall restored: {change}" for change in outcome.get("firewall") or []]
    if outcome.get("firewall_error"):
        lines.append(f"  FAILED to restore the firewall recorded before the run: {outcome['firewall_error']}")
    lines += [f"  HA resources restored: {change}" for change in outcome.get("ha") or []]
    if outcome.get("ha_error"):
        lines.append(f"  FAILED to restore the HA resources recorded before the run: {outcome['ha_error']}")
    lines += [f"  FAILED to roll back {h}: {e}" for h, e in outcome["task_errors"].items()]
    lines += [f"  still unhealthy {h}: {m}" for h, m in outcome["unhealthy"].items()]
    lines += [f"  {x}" for x in outcome["excluded"]]
    lines += [f"  {line}" for line in judge_lines(outcome.get("judged_by") or {})]
    lines += [f"  {line}" for line in tl.milestone_lines(outcome.get("timeline") or {})]
    lines += [f"  not waited for on {h} (added by this run, gone with it): {', '.join(names)}"
              for h, names in (outcome.get("new_in_this_run") or {}).items()]
    return lines


def roll_back_session(deploy: DeploySession, write) -> dict:
    """Roll back this run's snapshots with the inventory's Proxmox client; never raises (the outcome says)."""
    write(f"deploy failed: rolling back {len(deploy.snapshots)} container(s) to this run's snapshots")
    try:
        client = ProxmoxClient.from_inventory(deploy.inventory)
        return roll_back(deploy, client)
    except Exception as exc:  # noqa: BLE001 - the rollback must report, whatever broke
        return {"ok": False, "rolled_back": {}, "task_errors": {"*": f"{type(exc).__name__}: {exc}"},
                "unhealthy": {}, "excluded": [], "judged_by": {}, "seconds": 0}


def changed_nothing(deploy: DeploySession) -> bool:
    """True when the run stopped before any stage after the snapshot began: no host was touched."""
    after = [s.name for s in PIPELINE if s.order > STAGES["snapshot"].order and not s.always]
    return not deploy.applied and all(deploy.stage(name).outcome in ("not run", "skipped") for name in after)


def discard_snapshots(deploy: DeploySession, client: Any | None = None) -> list[str]:
    """Delete this run's snapshots of a run that changed nothing (they equal the hosts as they are, and would
    push an older one past the retention); give the report lines. Never raises."""
    inventory, taken = deploy.inventory, dict(deploy.snapshots)
    lines = ["the run stopped before changing any host: nothing to roll back (no host restarted)"]
    try:
        client = client or ProxmoxClient.from_inventory(inventory)
        outcomes: dict[int, Any] = {}
        for node, hosts in per_node(inventory.host(vmid) for vmid in taken).items():
            outcomes.update(client.delete_snapshots_many(node, {h.vmid: [taken[h.vmid]] for h in hosts}))
    except Exception as exc:  # noqa: BLE001 - the end of the run must report, whatever broke
        outcomes = {vmid: exc for vmid in taken}
    kept = {vmid: str(res) for vmid, res in outcomes.items() if isinstance(res, Exception)}
    for vmid in set(taken) - set(kept):
        deploy.snapshots.pop(vmid, None)
    deleted = [inventory.host(v).hostname for v in sorted(taken) if v not in kept]
    if deleted:
        lines.append(f"  deleted this run's snapshot {deploy.snapshot_name} on {', '.join(deleted)}")
    lines += [f"  could not delete {taken[v]} on {inventory.host(v).hostname} (the next run's pruning will): {e}"
              for v, e in sorted(kept.items())]
    return lines
