"""Restore drill suite (`make dr-drill`): each drilled host is marked, backed up, marked again, destroyed as a
lost disk would be, restored from its newest backup, converged and checked (plugins/backup/drill.py); one
database is restored alone from the off-site copy into its running service (plugins/backup/restore_db.py).

`--dr-hosts a,b` chooses the hosts (default: every host with data the backup policy covers, never the runner the
suite runs on); `--dr-database host/database` the database (default: the first SQL database of the drilled
hosts; `none` leaves that test out). This suite changes the homelab: it destroys and restores containers.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plugins.backup.drill import DrillRefused, drilled_hosts
from plugins.backup.restore_choice import RestoreRefused
from plugins.backup.restore_db import database_choice
from plugins.inventory import get_inventory
from plugins.proxmox.client import ProxmoxClient
from plugins.proxmox.tasks import ProxmoxError
from plugins.ssh.known_hosts import known_hosts_file
from plugins.ssh.pool import SshPool, SshTarget
from plugins.stack.backup_dumps import MARIADB, POSTGRES, dumps

NONE = "none"
HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --dr-hosts and --dr-database."""
    group = parser.getgroup("dr", "restore drill suite")
    group.addoption("--dr-hosts", default="", help="comma-separated hostnames to drill (default: every host with "
                                                   "data the backup policy covers, but the runner)")
    group.addoption("--dr-database", default="", help="host/database to restore alone from the off-site copy "
                                                      f"(default: the first SQL database of the drilled hosts; "
                                                      f"{NONE}: leave it out)")


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _drilled(config: pytest.Config) -> list:
    try:
        return drilled_hosts(get_inventory(config), _names(config.getoption("dr_hosts")))
    except DrillRefused as refused:
        raise pytest.UsageError(str(refused)) from None


def _database(config: pytest.Config) -> list[tuple[str, str]]:
    """[(host, database)] for the off-site restore test: the option's, or the first SQL dump of a drilled host."""
    value = config.getoption("dr_database").strip()
    inventory = get_inventory(config)
    if value == NONE:
        return []
    if value:
        host, _, database = value.partition("/")
        try:
            database_choice(inventory, host, database)
        except RestoreRefused as refused:
            raise pytest.UsageError(f"--dr-database {value}: {refused}") from None
        return [(host, database)]
    for host in _drilled(config):
        entry = next((e for e in dumps(inventory, host) if e["kind"] in (POSTGRES, MARIADB)), None)
        if entry:
            return [(host.hostname, entry["database"])]
    return []


def pytest_configure(config: pytest.Config) -> None:
    """Check the options before collection: a wrong host or database is one usage line, not a collection error."""
    _drilled(config)
    _database(config)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `drilled_host` (by hostname) and `drilled_database` (host/database) from the options."""
    if "drilled_host" in metafunc.fixturenames:
        hosts = _drilled(metafunc.config)
        metafunc.parametrize("drilled_host", hosts, ids=[h.hostname for h in hosts])
    if "drilled_database" in metafunc.fixturenames:
        chosen = _database(metafunc.config)
        metafunc.parametrize("drilled_database", chosen, ids=[f"{h}/{d}" for h, d in chosen])


def named_on_the_command_line(config: pytest.Config) -> bool:
    """Whether the run names this suite (or one of its files) itself, not only a directory above it."""
    for arg in config.args:
        path = (Path(config.invocation_params.dir) / arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The drill destroys hosts: it runs only when named (`pytest suites/dr`, make dr-drill), never as a side effect
    of `pytest suites`."""
    if named_on_the_command_line(config):
        return
    drill = [item for item in items if HERE in Path(str(item.path)).parents]
    if drill:
        config.hook.pytest_deselected(items=drill)
        items[:] = [item for item in items if item not in drill]


@pytest.fixture(scope="session")
def inventory(pytestconfig):
    """The session's inventory."""
    return get_inventory(pytestconfig)


@pytest.fixture(scope="session")
def proxmox(inventory) -> ProxmoxClient:
    """The node's API client; the suite stops with its one line when the node cannot be reached."""
    try:
        return ProxmoxClient.from_inventory(inventory)
    except ProxmoxError as error:
        pytest.exit(f"restore drill: {error}", returncode=2)


@pytest.fixture(scope="session")
def ssh_pool(inventory):
    """One SSH master per host (the deploy user), for the database markers."""
    runner = inventory.runner
    with SshPool([SshTarget(h.hostname, h.ip, runner.deploy_user, runner.deploy_key) for h in inventory.hosts],
                 known_hosts=known_hosts_file(inventory)) as pool:
        yield pool


@pytest.fixture(scope="session")
def environment() -> dict[str, str]:
    """The environment the secrets come from (NetBox's API token)."""
    return dict(os.environ)
