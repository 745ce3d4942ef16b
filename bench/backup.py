"""Benchmark backup and recovery from the off-site copy (issue 23): `make backup` of the whole stack (wall time,
bytes of the newest archives on the node, bytes the restic repository grew by and holds), then, per host, the
recovery time of `make restore-node HOSTS=<host>` after the host is lost with its local archives.

Run as root with the lab up:  sudo .venv/bin/python bench/backup.py [--hosts proxy,app-demo] [--whole] [--deploy]
--deploy runs `make deploy` first (the lab must be deployed). The hosts benched are destroyed and rebuilt; the
runner (ci-runner) is refused by restore-node, as on a homelab. --whole then loses every host restore-node rebuilds
by default (the node lost: all of them at once, with their local archives) and times `make restore-node` of them
all, then `make health` of the whole homelab.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab import scenarios
from plugins.backup import drill, rebuild
from plugins.backup.credentials import restic_environment
from plugins.backup.offsite import Repository
from plugins.backup.run import size_text
from plugins.inventory import load_inventory
from plugins.proxmox import backups as node_backups
from plugins.proxmox.client import ProxmoxClient

INVENTORY = load_inventory(scenarios.LAB_INVENTORY)


def backup_command(*args: str, state_dir: Path) -> tuple[subprocess.CompletedProcess, float]:
    """`python -m plugins.backup …` as make runs it; the run and its wall time."""
    env = {**scenarios.suite_env(), "HOMELAB_SUITE_STATE_DIR": str(state_dir)}
    started = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "plugins.backup", *args, "--inventory", str(scenarios.LAB_INVENTORY)],
                         cwd=scenarios.ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    return run, time.monotonic() - started


def repository_bytes(state_dir: Path) -> int:
    """What the restic repository stores (restic stats --mode raw-data: deduplicated, encrypted); 0 before it exists."""
    offsite = INVENTORY.backup.offsite
    repo = Repository(offsite.repository, offsite.endpoint, restic_environment(INVENTORY, scenarios.suite_env()),
                      cache_dir=state_dir / "restic-cache")
    if not repo.exists():  # a lab never backed up: make backup creates the repository
        return 0
    done = repo._checked("stats", "--json", "--mode", "raw-data", what="stats")
    return int(json.loads(done.stdout).get("total_size", 0))


def node_bytes(client: ProxmoxClient) -> int:
    """The newest archive of each host on the backup storage, summed (what one run leaves on the node)."""
    total = 0
    for host in INVENTORY.hosts:
        newest = node_backups.backups(client, host.node, INVENTORY.backup.storage, host.vmid)
        total += int(newest[0]["size"]) if newest else 0
    return total


def main(argv: list[str]) -> int:
    """make backup of the stack, then each host lost and rebuilt from the off-site copy; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="proxy,app-demo", help="the hosts to lose and rebuild, one at a time")
    parser.add_argument("--whole", action="store_true",
                        help="then lose every host but the runner at once and rebuild them all (the node lost)")
    parser.add_argument("--deploy", action="store_true", help="make deploy first")
    args = parser.parse_args(argv)
    if args.deploy and scenarios.run_suite("deploy").rc != 0:
        sys.exit("make deploy failed: the lab must be deployed for this benchmark")
    client = ProxmoxClient.from_inventory(INVENTORY, scenarios.suite_env())
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as scratch:
        state_dir = Path(scratch)
        before = repository_bytes(state_dir)
        run, seconds = backup_command(state_dir=state_dir)
        if run.returncode != 0:
            sys.exit(f"make backup failed (rc {run.returncode}):\n{run.stdout}{run.stderr}")
        print(run.stdout, end="")
        after = repository_bytes(state_dir)
        print(f"make backup, whole stack: {seconds:.1f} s wall; on the node {size_text(node_bytes(client))} (each "
              f"host's newest archive); off-site +{size_text(after - before)}, the repository "
              f"{size_text(after)}", flush=True)
        for name in [n.strip() for n in args.hosts.split(",") if n.strip()]:
            rebuild_lost(client, [INVENTORY.host(name)], state_dir, name)
        if args.whole:
            whole = rebuild.rebuilt_hosts(INVENTORY)
            rebuild_lost(client, whole, state_dir, f"the whole homelab ({', '.join(h.hostname for h in whole)})")
            health = scenarios.run_suite("health")
            print(f"make health after the whole rebuild: rc {health.rc} in {health.seconds:.1f} s", flush=True)
            if health.rc != 0:
                sys.exit(health.output[-3000:])
    return 0


def rebuild_lost(client: ProxmoxClient, hosts: list, state_dir: Path, label: str) -> None:
    """Lose the hosts with their local archives, `make restore-node` them in one run; print the recovery figures."""
    for host in hosts:
        drill.lose_host(client, host)
        for row in node_backups.backups(client, host.node, INVENTORY.backup.storage, host.vmid):
            node_backups.remove_backup(client, host.node, INVENTORY.backup.storage, row["volid"])
    names = ",".join(h.hostname for h in hosts)
    run, seconds = backup_command("restore-node", "--hosts", names, state_dir=state_dir)
    if run.returncode != 0:
        sys.exit(f"make restore-node HOSTS={names} failed (rc {run.returncode}):\n{run.stdout}{run.stderr}")
    print(run.stdout, end="")
    steps: dict[str, float] = {}  # a step's seconds summed over the hosts (fetch and restore run host by host)
    for step, value in re.findall(r"^(fetch|restore|converge|health)\s.*\(([0-9.]+) s\)$", run.stdout, re.MULTILINE):
        steps[step] = steps.get(step, 0.0) + float(value)
    found = re.search(r"recovery time ([0-9.]+) s", run.stdout)
    print(f"{label}: recovery from the off-site copy {found[1] if found else '?'} s ({seconds:.1f} s wall; "
          + ", ".join(f"{step} {value:.1f} s" for step, value in steps.items()) + ")", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
