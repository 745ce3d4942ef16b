"""The backup commands: back every host up now (`make backup`), write the node's backup job (`--job`), restore
one host (`restore --host NAME [--from VOLID]`: make restore), the lost hosts from the off-site copy alone
(`restore-node [--hosts a,b]`: make restore-node), or one database from the off-site copy
(`restore-db --host NAME --database NAME`: make restore-db)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from plugins.backup.credentials import BackupProblem
from plugins.backup.job import NoBackupApi, apply_policy_job, check_storage
from plugins.backup.rebuild import rebuild_node, rebuilt_hosts
from plugins.backup.restore import restore_host
from plugins.backup.restore_choice import NEWEST, RestoreRefused, restorable_host
from plugins.backup.restore_db import restore_database
from plugins.backup.run import run_backup
from plugins.inventory import DEFAULT_INVENTORY, Inventory, InventoryError, load_inventory
from plugins.proxmox.client import ProxmoxClient, ProxmoxError


def _inventory(path: str) -> Inventory | None:
    """The inventory loaded, or None once its one-line error is said."""
    try:
        return load_inventory(Path(path))
    except InventoryError as error:
        print(error, file=sys.stderr)
        return None


def restore_main(argv: list[str]) -> int:
    """`restore --host NAME [--from VOLID|newest]`: restore one host, converge and check it (make restore)."""
    parser = argparse.ArgumentParser(prog="python -m plugins.backup restore",
                                     description="restore one host from its newest (or the named) vzdump backup, "
                                                 "then converge it with Ansible and run its health checks")
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--host", required=True, help="the hostname to restore (make restore HOST=…)")
    parser.add_argument("--from", dest="source", default=NEWEST,
                        help=f"the backup's volid (<storage>:backup/vzdump-lxc-…) or {NEWEST} (make restore FROM=…)")
    args = parser.parse_args(argv)
    inventory = _inventory(args.inventory)
    if inventory is None:
        return 2
    try:
        if inventory.backup is not None:
            restorable_host(inventory, args.host)  # a wrong HOST= is said before the node is asked anything
        client = ProxmoxClient.from_inventory(inventory)
    except (RestoreRefused, ProxmoxError) as error:
        print(error, file=sys.stderr)
        return 2
    return restore_host(inventory, client, args.host, args.source, say=lambda line: print(line, flush=True))


def restore_db_main(argv: list[str]) -> int:
    """`restore-db --host NAME --database NAME`: one database from the off-site copy into its running service."""
    parser = argparse.ArgumentParser(prog="python -m plugins.backup restore-db",
                                     description="restore one database from the host's newest off-site (restic) "
                                                 "snapshot into its running container, then check the host")
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--host", required=True, help="the host whose database it is (make restore-db HOST=…)")
    parser.add_argument("--database", required=True, help="the database's name, or its container's "
                                                          "(make restore-db DATABASE=…)")
    args = parser.parse_args(argv)
    inventory = _inventory(args.inventory)
    if inventory is None:
        return 2
    return restore_database(inventory, args.host, args.database, say=lambda line: print(line, flush=True))


def restore_node_main(argv: list[str]) -> int:
    """`restore-node [--hosts a,b]`: rebuild the lost hosts from the off-site copy alone (make restore-node)."""
    parser = argparse.ArgumentParser(prog="python -m plugins.backup restore-node",
                                     description="rebuild lost hosts (their CT and local backups gone) from their "
                                                 "newest vzdump archive in the off-site (restic) copy, then converge "
                                                 "them with Ansible and run their health checks")
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--hosts", default="", help="comma-separated hostnames (make restore-node HOSTS=…; default: "
                                                    "every host the policy backs up but the runner)")
    args = parser.parse_args(argv)
    inventory = _inventory(args.inventory)
    if inventory is None:
        return 2
    names = [name.strip() for name in args.hosts.split(",") if name.strip()]
    try:
        if inventory.backup is not None:
            rebuilt_hosts(inventory, names)  # a wrong HOSTS= is said before the node is asked anything
        client = ProxmoxClient.from_inventory(inventory)
    except (RestoreRefused, ProxmoxError) as error:
        print(error, file=sys.stderr)
        return 2
    return rebuild_node(inventory, client, names or None, say=lambda line: print(line, flush=True))


def main(argv: list[str] | None = None) -> int:
    """Run a backup (or write the job, or restore a host) for one inventory; one line per problem, never a
    traceback."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["restore"]:
        return restore_main(argv[1:])
    if argv[:1] == ["restore-db"]:
        return restore_db_main(argv[1:])
    if argv[:1] == ["restore-node"]:
        return restore_node_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m plugins.backup", description=__doc__.splitlines()[0])
    parser.add_argument("--inventory", default=DEFAULT_INVENTORY, help="the environment's inventory")
    parser.add_argument("--hosts", default="", help="comma-separated hostnames (default: every host the policy "
                                                    "backs up)")
    parser.add_argument("--job", action="store_true", help="only create or update the node's scheduled backup job")
    args = parser.parse_args(argv)
    inventory = _inventory(args.inventory)
    if inventory is None:
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
