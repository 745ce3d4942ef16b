"""`make restore-db HOST=<name> DATABASE=<name>`: one database back from the off-site copy, into its running service.

The steps, a line each with its time: choose (the host, the database among the dumps the policy takes of it, the
restic secrets; every refusal before any change) → fetch (that dump alone, from the host's newest restic snapshot,
into a private directory of the runner) → load (into the running database container: PostgreSQL's pg_restore in
one transaction with --clean, so a dump that fails to load leaves the database as it was; MariaDB's client with
the dump's own DROP/CREATE) → health (the host's checks and services). The container is never stopped.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from plugins.backup.credentials import BackupProblem, restic_environment
from plugins.backup.restore import RestoreFailed, Steps, check_health
from plugins.backup.restore_choice import RestoreRefused
from plugins.backup.run import repository, size_text
from plugins.health.waiting import ssh_pool
from plugins.stack.backup_dumps import MARIADB, POSTGRES, dumps

if TYPE_CHECKING:
    from plugins.backup.offsite import Repository
    from plugins.inventory import Host, Inventory

LOAD_TIMEOUT = 1800.0


def database_choice(inventory: Inventory, name: str, database: str) -> tuple[Host, dict]:
    """The host and the dump entry of its database `database` (its name or its container's); RestoreRefused with
    one line naming what is wrong and the choices."""
    if inventory.backup is None:
        raise RestoreRefused(f"{inventory.where('backup')}: no backup policy (expected a backup: section: storage, "
                             "schedule, retention, dumps, offsite)")
    known = [h.hostname for h in inventory.hosts]
    if name not in known:
        raise RestoreRefused(f"HOST={name}: no such host in {inventory.where('hosts')} (expected one of: "
                             f"{', '.join(known)})")
    host = inventory.host(name)
    entries = [e for e in dumps(inventory, host) if e["kind"] in (POSTGRES, MARIADB)]
    if not entries:
        raise RestoreRefused(f"HOST={name}: the backup policy dumps no database of it (expected a host running "
                             "PostgreSQL or MariaDB that the policy backs up)")
    found = [e for e in entries if database in (e["database"], e["container"])]
    if len(found) != 1:
        choices = ", ".join(f"{e['database']} ({e['container']})" for e in entries)
        raise RestoreRefused(f"DATABASE={database}: no such database dumped on {name} (expected one of: {choices})")
    return host, found[0]


def fetch_dump(repo: Repository, host: Host, entry: dict, into: Path) -> tuple[Path, dict]:
    """The dump file from the host's newest off-site snapshot, restored under `into`; (its path, the snapshot).
    BackupProblem when there is no snapshot or it does not hold the dump."""
    snapshots = repo.dumps(host.hostname)
    if not snapshots:
        raise BackupProblem(f"no off-site snapshot of {host.hostname} in {repo.repository}: run make backup first")
    newest = snapshots[-1]
    repo.restore(newest["id"], into, include=entry["file"])
    found = [path for path in into.rglob(entry["file"]) if path.is_file()]
    if not found:
        raise BackupProblem(f"the off-site snapshot {newest.get('short_id', newest['id'])} of {host.hostname} holds "
                            f"no {entry['file']} (its dump failed then: see make backup's line of {host.hostname})")
    return found[0], newest


def load_command(entry: dict) -> str:
    """The shell command (as root on the host) that loads a dump from stdin into the entry's running database."""
    if entry["kind"] == POSTGRES:
        args = ["docker", "exec", "-i", entry["container"], "pg_restore", "--single-transaction", "--clean",
                "--if-exists", "--no-owner", "--exit-on-error", "--username", entry["user"], "--dbname",
                entry["database"]]
    else:
        # the dump names its database (mariadb-dump --databases): the client recreates its tables there
        args = ["docker", "exec", "-i", entry["container"], "sh", "-c",
                'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb --user=root']
    return "sudo -n " + shlex.join(args)


def load_dump(inventory: Inventory, host: Host, entry: dict, dump: Path) -> None:
    """Stream the dump over SSH into the running database container; RestoreFailed with the client's last line."""
    with ssh_pool(inventory, [host]) as pool, dump.open("rb") as stream:
        pool.open(host.hostname)
        try:
            done = subprocess.run([*pool.ssh_args(host.hostname), load_command(entry)], stdin=stream,
                                  capture_output=True, timeout=LOAD_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise RestoreFailed(f"loading {entry['file']} into {entry['container']} took more than "
                                f"{LOAD_TIMEOUT:g} s") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]
        raise RestoreFailed(f"loading {entry['file']} into {entry['container']} on {host.hostname} failed: "
                            f"{(lines or [f'exit {done.returncode}'])[-1].strip()}; "
                            + ("the database is as it was (one transaction)" if entry["kind"] == POSTGRES
                               else "the database may be partly loaded: run it again"))


def restore_database(inventory: Inventory, name: str, database: str, *, say: Callable[[str], None] = print,
                     env: Mapping[str, str] = os.environ, check_host: Callable = check_health,
                     load: Callable = load_dump) -> int:
    """Restore one database from the off-site copy into its running service, then check the host; 0 when healthy,
    1 when a step failed, 2 when refused before any change."""
    steps = Steps(say)
    try:
        host, entry = database_choice(inventory, name, database)
        environment = restic_environment(inventory, env)
    except (RestoreRefused, BackupProblem) as refused:
        say(str(refused))
        return 2
    steps.done("choose", f"{entry['database']} ({entry['kind']}, container {entry['container']}) on {host.hostname}")
    try:
        with tempfile.TemporaryDirectory(prefix="restore-db-") as scratch:
            repo = repository(inventory, environment)
            repo.reachable()
            dump, snapshot = fetch_dump(repo, host, entry, Path(scratch))
            taken = str(snapshot.get("time", "?"))[:19].replace("T", " ")
            steps.done("fetch", f"{entry['file']}, {size_text(dump.stat().st_size)}, from off-site snapshot "
                                f"{snapshot.get('short_id', snapshot['id'])} taken {taken}")
            load(inventory, host, entry, dump)
        steps.done("load", f"loaded into the running {entry['container']} ({entry['database']})")
        steps.done("health", check_host(inventory, host))
    except (BackupProblem, RestoreFailed) as failure:
        say(f"restore of {entry['database']} on {host.hostname} FAILED after {steps.elapsed:.1f} s: "
            f"{str(failure).strip()}")
        return 1
    say(f"{entry['database']} on {host.hostname} restored from the off-site copy and healthy in "
        f"{steps.elapsed:.1f} s (recovery point {taken})")
    return 0
