"""Benchmark the deploy on the lab: first deploy, no-change redeploy, failure → rolled back → healthy.

Run as root with the lab up:  sudo .venv/bin/python bench/deploy.py [--runs 3] [--rollback-only]
(`--rollback-only`: only the rollback figure, with each rollback's timeline: a deploy, then --runs failed deploys.
`--stages`: each deploy's stage times from its result.json: a deploy, --runs no-change deploys, --runs failed ones.)
Each cycle EMPTIES the lab's deployed containers (the inventory's VMIDs), deploys, deploys again; the
first deploy varies by ±15 % here, so the figures are medians of the cycles.
Targets with the whole stack (issue 13; issue 12's 4 min and 30 s were for its part of it): first deploy
from an empty lab ≤ 6 min (warm image cache); no-change redeploy ≤ 30 % of it; `pytest suites/health` on the
deployed lab ≤ 1.5 s of test time; rollback of every lab container → every service healthy, directly and
through Traefik, ≤ 60 s (the owner's script waited 45 s blind). Then the deployed lab's memory: each host's
cgroup RSS (total_rss), summed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios
from plugins.deploy.finish.timeline import timeline_lines
from plugins.inventory import load_inventory

CGROUP = Path("/sys/fs/cgroup/memory")


def host_rss_mib(vmid: int) -> float | None:
    """The RSS of everything in a lab host (its cgroup's total_rss, cgroup v1; v2: anon), MiB; None if absent."""
    for stat, key in ((CGROUP / f"lxc.payload.ct{vmid}" / "memory.stat", "total_rss"),
                      (Path(f"/sys/fs/cgroup/lxc.payload.ct{vmid}/memory.stat"), "anon")):
        try:
            fields = dict(line.split() for line in stat.read_text().splitlines())
        except OSError:
            continue
        return int(fields[key]) / 2**20
    return None


def print_rss() -> None:
    """Each inventory host's RSS and the total: what the deployed lab holds in memory."""
    total = 0.0
    for host in load_inventory(scenarios.LAB_INVENTORY).hosts:
        rss = host_rss_mib(host.vmid)
        total += rss or 0.0
        print(f"  RSS {host.hostname:12s} {'absent' if rss is None else f'{rss:7.1f} MiB'}")
    print(f"total RSS of the deployed lab's hosts:    {total:6.1f} MiB")


def health_test_seconds() -> float:
    """One `make health` run's test time, as pytest reports it ("… passed in 0.80s"); nan if it failed."""
    run = scenarios.run_suite("health")
    found = re.findall(r" in ([0-9.]+)s", run.output)
    if run.rc or not found:
        print(run.tail(), file=sys.stderr)
        return float("nan")
    return float(found[-1])


def failed_deploy(work: Path) -> tuple[scenarios.DeployRun, dict]:
    """A deploy of a bad app change with short deadlines: it fails at health and rolls back; (run, rollback)."""
    source = scenarios.broken_app_copy(work)
    inventory = scenarios.short_deadlines_variant(work)
    broken = scenarios.run_suite("deploy", "--ansible-var", f"app_demo_src={source}/", inventory=inventory)
    return broken, (broken.result or {}).get("rollback") or {}


def rollback_figure(runs: int) -> int:
    """Deploy (a no-change redeploy when the lab is deployed), then RUNS failed deploys; print each rollback."""
    deployed = scenarios.run_suite("deploy")
    print(f"deploy before the rollbacks: {deployed.seconds:6.1f} s rc={deployed.rc}", flush=True)
    if deployed.rc:
        print(deployed.tail(), file=sys.stderr)
        return 1
    seconds, ok = [], True
    for run in range(1, runs + 1):
        broken, rollback = scratch_failed_deploy("bench-rollback-")
        seconds.append(rollback.get("seconds", float("nan")))
        ok = ok and bool(rollback.get("ok"))
        print(f"run {run}: failed deploy {broken.seconds:6.1f} s rc={broken.rc}; rollback of "
              f"{len(rollback.get('rolled_back', {}))} containers → healthy {seconds[-1]:6.1f} s "
              f"ok={rollback.get('ok')} ({(broken.result or {}).get('run_id')})", flush=True)
        print("\n".join(timeline_lines(rollback.get("timeline") or {})), flush=True)
        if not rollback.get("ok"):
            print(broken.tail(), file=sys.stderr)
    print(f"rollback → every service healthy:         {statistics.median(seconds):6.1f} s  (median of {runs}: "
          f"{', '.join(f'{s:.1f}' for s in seconds)}; target ≤ 30 s)")
    return 0 if ok else 1


def scratch_failed_deploy(prefix: str) -> tuple:
    """failed_deploy in a scratch directory of its own, removed after: the failed run and its rollback."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        return failed_deploy(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def stage_line(run: scenarios.DeployRun) -> str:
    """One run's stages as `name=seconds` (failed or skipped ones marked), from its result.json."""
    stages = (run.result or {}).get("stages") or {}
    return " ".join(f"{name}={stage['seconds']:g}" + ("" if stage["outcome"] == "passed" else f"({stage['outcome']})")
                    for name, stage in stages.items())


def stage_figures(runs: int) -> int:
    """A deploy (the first when the lab is empty), RUNS no-change deploys, RUNS failed deploys (a broken app change,
    short deadlines): each one's wall time and stage times, and each rollback's time."""
    deployed = scenarios.run_suite("deploy")
    print(f"deploy:            {deployed.seconds:6.1f} s rc={deployed.rc}  {stage_line(deployed)}", flush=True)
    if deployed.rc:
        print(deployed.tail(), file=sys.stderr)
        return 1
    for run in range(1, runs + 1):
        again = scenarios.run_suite("deploy")
        print(f"no-change {run}:       {again.seconds:6.1f} s rc={again.rc}  {stage_line(again)}", flush=True)
    ok = True
    for run in range(1, runs + 1):
        broken, rollback = scratch_failed_deploy("bench-stages-")
        ok = ok and bool(rollback.get("ok"))
        print(f"failed {run}:          {broken.seconds:6.1f} s rc={broken.rc}  {stage_line(broken)}  rollback="
              f"{rollback.get('seconds', float('nan')):g} ok={rollback.get('ok')}", flush=True)
    return 0 if ok else 1


def main(argv: list[str]) -> int:
    """Run the scenarios (first deploy and redeploy --runs times, then the failure once); print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3,
                        help="empty lab -> first deploy -> redeploy cycles; medians are reported (default 3)")
    parser.add_argument("--rollback-only", action="store_true",
                        help="only the rollback figure: deploy once (if needed), then --runs failed deploys")
    parser.add_argument("--stages", action="store_true",
                        help="each deploy's stage times: deploy once (if needed), then --runs no-change and --runs "
                             "failed deploys")
    args = parser.parse_args(argv)
    if args.rollback_only:
        return rollback_figure(args.runs)
    if args.stages:
        return stage_figures(args.runs)
    work = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    try:
        firsts, agains = [], []
        for cycle in range(1, args.runs + 1):
            scenarios.empty_lab()
            first = scenarios.run_suite("deploy")
            again = scenarios.run_suite("deploy")
            firsts.append(first.seconds)
            agains.append(again.seconds)
            print(f"cycle {cycle}: first deploy {first.seconds:5.1f} s rc={first.rc}, no-change redeploy "
                  f"{again.seconds:5.1f} s rc={again.rc} ({again.seconds / first.seconds:.0%})", flush=True)
            if first.rc or again.rc:
                print((again if again.rc else first).tail(), file=sys.stderr)
                return 1
        first_s, again_s = statistics.median(firsts), statistics.median(agains)
        print(f"first deploy (empty lab → healthy):      {first_s:6.1f} s  (median of {args.runs}; target ≤ 360 s)")
        print(f"no-change redeploy:                       {again_s:6.1f} s  (median of {args.runs}) "
              f"= {again_s / first_s:.0%} of the first (target ≤ 30 %)")
        healths = [health_test_seconds() for _ in range(args.runs)]
        print(f"pytest suites/health, test time:          {statistics.median(healths):6.2f} s  (median of "
              f"{args.runs}; target ≤ 1.5 s)")
        print_rss()
        broken, rollback = failed_deploy(work)
        print("\n".join(timeline_lines(rollback.get("timeline") or {})))
        print(f"failed deploy, end to end:                {broken.seconds:6.1f} s  rc={broken.rc}")
        print(f"rollback of {len(rollback.get('rolled_back', {}))} containers → healthy:       "
              f"{rollback.get('seconds', float('nan')):6.1f} s  ok={rollback.get('ok')} (target ≤ 60 s)")
        return 0 if rollback.get("ok") else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
