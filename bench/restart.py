"""Benchmark the lab's restart (issue 22): `lab up` after a power cut until every onboot container answers SSH,
and the deploy that follows (nothing to change) against a no-change redeploy without a restart.

Run as root with the lab up:  sudo .venv/bin/python bench/restart.py [--runs 2]
A power cut here is lab.scenarios.power_loss(): every lab process SIGKILLed by its PID file, every container
stopped with `lxc-stop -k`, the bridge removed. The lab is deployed first (a no-change deploy when it is).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios
from lab.hosts import LabHosts
from plugins.inventory import load_inventory


def report(label: str, values: list[float]) -> None:
    """Print the median (and the spread) of a measurement."""
    print(f"{label:<52} median {statistics.median(values):7.1f} s   "
          f"(min {min(values):.1f}, max {max(values):.1f}, n={len(values)})", flush=True)


def deploy_seconds(what: str) -> float:
    """One `make deploy` on the lab, which must pass and plan nothing; its wall time."""
    run = scenarios.run_suite("deploy")
    if run.rc != 0 or not run.result["plan"]["empty"]:
        sys.exit(f"{what}: rc {run.rc}, plan {run.result and run.result['plan']}\n{run.tail()}")
    return run.seconds


def restart_to_ssh(vmids: list[int]) -> tuple[float, float]:
    """Power cut, then `lab up`; seconds of `lab up` alone and until every onboot container answers SSH."""
    scenarios.power_loss()
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "lab", "up"], cwd=scenarios.ROOT, check=True, capture_output=True)
    up = time.monotonic() - started
    hosts = LabHosts()
    with ThreadPoolExecutor(len(vmids)) as pool:
        list(pool.map(lambda v: hosts.wait_ssh(v, 120), vmids))
    return up, time.monotonic() - started


def main(argv: list[str]) -> int:
    """Deploy, time no-change redeploys, then power cut → lab up → SSH → deploy, --runs times; print medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    vmids = sorted(h.vmid for h in load_inventory(scenarios.LAB_INVENTORY).hosts)
    deploy_seconds("deploy before the benchmark")
    warm = [deploy_seconds("no-change redeploy") for _ in range(args.runs)]
    up, ssh, after = [], [], []
    for _ in range(args.runs):
        lab_up, to_ssh = restart_to_ssh(vmids)
        up.append(lab_up)
        ssh.append(to_ssh)
        after.append(deploy_seconds("deploy after a restart"))
    report("lab up after a power cut", up)
    report(f"lab up after a power cut → {len(vmids)} containers answer SSH", ssh)
    report("make deploy after a restart (no change)", after)
    report("make deploy, no-change redeploy (no restart)", warm)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
