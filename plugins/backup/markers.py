"""The restore drill's markers: data written into a host's services through their own interfaces, so that a
restore shows which writes it brought back (before the backup) and which it did not (after it: the recovery point).

A database marker is a row in a table of the drill's own (MARKER_TABLE) in each database the host dumps, written
with the database's client inside its container; a NetBox marker is a tag created through NetBox's REST API with
the inventory's API token. Each marker says where it is, never a secret.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import requests

from plugins.stack.backup_dumps import MARIADB, POSTGRES, dumps

if TYPE_CHECKING:
    from plugins.inventory import Host, Inventory
    from plugins.inventory.model import FunctionalCheck
    from plugins.ssh.pool import SshPool

MARKER_TABLE = "homelab_dr_marker"
SQL_TIMEOUT = 60.0
HTTP_TIMEOUT = 15.0
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # the drill's own names: safe in SQL, a slug in NetBox


class MarkerProblem(RuntimeError):
    """A marker that could not be written or read: one line naming the host, the service and why."""


class Marker(Protocol):
    """Something the drill writes and later looks for."""

    where: str

    def write(self, name: str) -> None:
        """Write the marker `name`."""

    def present(self, name: str) -> bool:
        """Whether the marker `name` is there."""

    def remove(self, name: str) -> None:
        """Remove the marker `name` (the drill's trace), when it is there."""


def marker_name(name: str) -> str:
    """The name itself, or ValueError when it is not the drill's kind of name (lowercase, digits, dashes)."""
    if not _NAME.match(name):
        raise ValueError(f"marker name {name!r}: expected lowercase letters, digits and dashes")
    return name


def sql_command(entry: dict, sql: str) -> str:
    """The shell command (run as root on the host) that runs sql in the dump entry's database container."""
    if entry["kind"] == POSTGRES:
        args = ["docker", "exec", entry["container"], "psql", "-v", "ON_ERROR_STOP=1", "-tA", "-U", entry["user"],
                "-d", entry["database"], "-c", sql]
    elif entry["kind"] == MARIADB:
        # the root password is read inside the container from its own environment, as the dump program does
        script = 'MYSQL_PWD="$MARIADB_ROOT_PASSWORD" exec mariadb --user=root -N -B -e "$1" "$2"'
        args = ["docker", "exec", entry["container"], "sh", "-c", script, "sh", sql, entry["database"]]
    else:
        raise ValueError(f"{entry['name']}: a {entry['kind']} dump holds no SQL database")
    return "sudo -n " + shlex.join(args)


@dataclass
class DatabaseMarker:
    """A row in MARKER_TABLE of one database the host dumps (PostgreSQL or MariaDB)."""

    pool: SshPool
    host: Host
    entry: dict

    @property
    def where(self) -> str:
        """`app-demo: app-demo-postgres (app)`."""
        return f"{self.host.hostname}: {self.entry['container']} ({self.entry['database']})"

    def _sql(self, sql: str) -> str:
        command = sql_command(self.entry, sql)
        done = self.pool.run(self.host.hostname, command, timeout=SQL_TIMEOUT)
        if done.returncode == 255:  # the master died with the lost CT: a new connection to the restored one
            self.pool.reset(self.host.hostname)
            done = self.pool.run(self.host.hostname, command, timeout=SQL_TIMEOUT)
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()] or [f"exit {done.returncode}"]
            raise MarkerProblem(f"{self.where}: {lines[-1].strip()}")
        return done.stdout.strip()

    def write(self, name: str) -> None:
        """Insert the row (the table made when missing)."""
        name = marker_name(name)
        self._sql(f"CREATE TABLE IF NOT EXISTS {MARKER_TABLE} (name VARCHAR(64) PRIMARY KEY); "
                  f"INSERT INTO {MARKER_TABLE} (name) VALUES ('{name}');")  # nosec B608 # marker_name checked it

    def present(self, name: str) -> bool:
        """Whether the row is there (no table: not there)."""
        name = marker_name(name)
        exists = self._sql(self._table_exists())
        if exists.strip() in ("", "0", "f"):
            return False
        query = f"SELECT count(*) FROM {MARKER_TABLE} WHERE name = '{name}';"  # nosec B608 # marker_name checked it
        return self._sql(query) == "1"

    def remove(self, name: str) -> None:
        """Delete the row, and the table once it is empty."""
        name = marker_name(name)
        if self.present(name):
            self._sql(f"DELETE FROM {MARKER_TABLE} WHERE name = '{name}';")  # nosec B608 # checked name
            if self._sql(f"SELECT count(*) FROM {MARKER_TABLE};") == "0":  # nosec B608 # a constant
                self._sql(f"DROP TABLE {MARKER_TABLE};")  # the drill leaves nothing of its own behind

    def _table_exists(self) -> str:
        column = "table_schema = current_schema()" if self.entry["kind"] == POSTGRES else "table_schema = DATABASE()"
        return (f"SELECT count(*) FROM information_schema.tables WHERE {column} "  # nosec B608 # constants only
                f"AND table_name = '{MARKER_TABLE}';")


@dataclass
class NetboxMarker:
    """A tag in NetBox, through its REST API with the superuser's token (the inventory's secret)."""

    api: str  # https://…/api/
    token: str
    hostname: str

    @property
    def where(self) -> str:
        """`utilities: NetBox <api>extras/tags/`."""
        return f"{self.hostname}: NetBox {self.api}extras/tags/"

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        try:
            return requests.request(method, f"{self.api}{path}", headers=headers, timeout=HTTP_TIMEOUT, **kwargs)
        except requests.RequestException as error:
            raise MarkerProblem(f"{self.where}: {type(error).__name__}") from None

    def _tags(self, name: str) -> list[dict]:
        answer = self._request("GET", "extras/tags/", params={"slug": name})
        if answer.status_code != 200:
            raise MarkerProblem(f"{self.where}: GET answered {answer.status_code}, expected 200")
        return answer.json().get("results", [])

    def write(self, name: str) -> None:
        """Create the tag."""
        name = marker_name(name)
        answer = self._request("POST", "extras/tags/", json={"name": name, "slug": name})
        if answer.status_code != 201:
            raise MarkerProblem(f"{self.where}: POST answered {answer.status_code}, expected 201")

    def present(self, name: str) -> bool:
        """Whether the tag is there."""
        return any(tag.get("slug") == marker_name(name) for tag in self._tags(name))

    def remove(self, name: str) -> None:
        """Delete the tag when it is there."""
        for tag in self._tags(marker_name(name)):
            self._request("DELETE", f"extras/tags/{int(tag['id'])}/")


def netbox_probe(host: Host) -> FunctionalCheck | None:
    """The host's direct NetBox status probe (its URL and token secret), or None when NetBox does not run there."""
    return next((p for p in host.probes if p.kind == "netbox_status" and not p.connect_to), None)


def markers_of(inventory: Inventory, host: Host, pool: SshPool, env: dict[str, str]) -> list[Marker]:
    """Every marker the drill writes on this host: a row per SQL database it dumps, a tag when NetBox runs there
    (its token from the environment variable the inventory names; MarkerProblem when it is unset)."""
    found: list[Marker] = [DatabaseMarker(pool, host, entry) for entry in dumps(inventory, host)
                           if entry["kind"] in (POSTGRES, MARIADB)]
    probe = netbox_probe(host)
    if probe is not None:
        name, variable = next(iter(probe.secrets.items()))
        token = env.get(variable or "", "")
        if not token:
            raise MarkerProblem(f"{host.hostname}: NetBox's API token ({name}) not in the environment (expected "
                                f"{variable or 'an environment variable, not Ansible Vault'}: `python -m lab env` "
                                "exports it)")
        found.append(NetboxMarker(probe.url.removesuffix("status/"), token, host.hostname))
    return found
