"""Benchmark the deploy's Ansible stage alone: site.yml on the deployed lab, where its time goes.

Run as root with the lab up and deployed (`make deploy` once), in the shell of `eval "$(python -m lab env)"`:
    sudo .venv/bin/python bench/ansible_stage.py [--runs 3] [--check] [--top 15] [--playbook FILE]
Each run is the deploy's own site.yml run (plugins/deploy/stages/ansible.py: the same inventory, key,
known_hosts and vault; `--check`: the plan's --check --diff). Printed: each run's wall time and changed count,
the median, then the last run's profile from ansible-runner's events: each play's wall time, each host's busy
time, and the tasks that cost the most summed over the hosts (with the number of module runs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios
from plugins.inventory import load_inventory
from plugins.ssh.known_hosts import known_hosts_file
from plugins.stack import ansible_inventory
from plugins.tools.playbooks import SITE_PLAYBOOK, PlaybookResult, run_playbook, task_label
from plugins.tools.vault import vault_files

TASK_END_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_skipped", "runner_on_unreachable")


def when(event: dict) -> datetime | None:
    """The event's creation time (ansible-runner's `created`), None when absent."""
    created = event.get("created")
    return datetime.fromisoformat(created) if created else None


def play_walls(events: list[dict]) -> list[tuple[str, float]]:
    """(play, seconds from its start to the next play's start or the run's end), in run order."""
    starts = [(e["event_data"].get("play", "?"), when(e)) for e in events
              if e.get("event") == "playbook_on_play_start" and when(e)]
    end = max((t for e in events if (t := when(e))), default=None)
    walls = []
    for index, (play, start) in enumerate(starts):
        stop = starts[index + 1][1] if index + 1 < len(starts) else end
        walls.append((play, (stop - start).total_seconds()))
    return walls


def task_costs(events: list[dict]) -> tuple[dict[str, list[float]], dict[str, float]]:
    """{task: [seconds of each host's run]} and {host: seconds in tasks}, from the task-end events' durations."""
    per_task: dict[str, list[float]] = defaultdict(list)
    per_host: dict[str, float] = defaultdict(float)
    for event in events:
        if event.get("event") not in TASK_END_EVENTS:
            continue
        data = event.get("event_data") or {}
        seconds = float(data.get("duration") or 0.0)
        if event.get("event") == "runner_on_skipped" and seconds == 0.0:
            continue
        per_task[task_label(data)].append(seconds)
        per_host[data.get("host", "?")] += seconds
    return per_task, per_host


def print_profile(result: PlaybookResult, top: int) -> None:
    """Plays' walls, hosts' busy time, the costliest tasks."""
    for play, seconds in play_walls(result.events):
        print(f"  play {play[:60]:60s} {seconds:6.1f} s")
    per_task, per_host = task_costs(result.events)
    for host, seconds in sorted(per_host.items(), key=lambda item: -item[1]):
        print(f"  host {host:20s} {seconds:6.1f} s in tasks")
    ranked = sorted(per_task.items(), key=lambda item: -sum(item[1]))
    print(f"  {'task (summed over hosts)':70s} {'s':>6s} {'runs':>5s}")
    for task, seconds in ranked[:top]:
        print(f"  {task[:70]:70s} {sum(seconds):6.1f} {len(seconds):5d}")
    print(f"  every task, summed: {sum(sum(s) for s in per_task.values()):.1f} s over "
          f"{sum(len(s) for s in per_task.values())} task runs")


def main(argv: list[str]) -> int:
    """Run site.yml --runs times on the deployed lab; print each run, the median and the last run's profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="site.yml runs; the median is reported (default 3)")
    parser.add_argument("--check", action="store_true", help="check mode with diffs, as `make plan` runs it")
    parser.add_argument("--top", type=int, default=15, help="how many of the costliest tasks to print")
    parser.add_argument("--playbook", default=SITE_PLAYBOOK,
                        help="another site playbook to compare (a file path; default: ansible/playbooks/site.yml)")
    args = parser.parse_args(argv)
    inventory = load_inventory(scenarios.LAB_INVENTORY)
    seconds, result = [], None
    for run in range(1, args.runs + 1):
        result = run_playbook(args.playbook, ansible_inventory(inventory), private_key=inventory.runner.deploy_key,
                              known_hosts=known_hosts_file(inventory), vault=vault_files(inventory),
                              check=args.check, diff=args.check)
        seconds.append(result.duration)
        print(f"run {run}: {result.summary()}", flush=True)
        if not result.ok:
            print(result.recap(), file=sys.stderr)
            return 1
    mode = "check mode (make plan)" if args.check else "site.yml"
    print(f"{mode}: {statistics.median(seconds):.1f} s median of {args.runs} "
          f"({', '.join(f'{s:.1f}' for s in seconds)}); changed in the last run: {result.changed_total}")
    for host, task in result.changed_tasks():
        print(f"  changed: {host} | {task}")
    print_profile(result, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
