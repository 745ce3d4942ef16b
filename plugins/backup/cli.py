"""The backup commands: back every host up now (`make backup`), or write the node's backup job (`--job`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plugins.backup.credentials import BackupProblem
from plugins.backup.job import NoBackupApi, apply_policy_job, check_storage
from plugins.backup.run import run_backup
from plugins.inventory import DEFAULT_INVENTORY, InventoryError, load_inventory
from plugins.proxmox.client import ProxmoxClient, ProxmoxError


def main(argv: list[str] | None = None) -> int:
    """Run a backup (or write the job) for one inventory; one line per problem, never a traceback."""
    parser = argparse.ArgumentParser(prog="python -m plugins.backup", description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--hosts", default="", help="comma-separated hostnames (default: every host the policy "
                                                    "backs up)")
    parser.add_argument("--job", action="store_true", help="only create or update the node's scheduled backup job")
    args = parser.parse_args(argv)
    try:
        inventory = load_inventory(Path(args.inventory))
    except InventoryError as error:
        print(error, file=sys.stderr)
        return 2
    if inventory.backup is None:
        print(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, schedule, "
              "retention, dumps, offsite)", file=sys.stderr)
        return 2
    try:
        client = ProxmoxClient.from_inventory(inventory)
        if args.job:
            check_storage(client, inventory)
            print(apply_policy_job(client, inventory))
            return 0
    except (ProxmoxError, BackupProblem, NoBackupApi) as error:
        print(error, file=sys.stderr)
        return 2 if args.job else 1
    hosts = [name.strip() for name in args.hosts.split(",") if name.strip()]
    return run_backup(inventory, client, hosts=hosts or None,
                      say=lambda line: print(line, flush=True))
