"""What each host dumps for its backup, derived from the services it runs: a consistent dump per database, the
files a service keeps beside it.

How a service is dumped is a fact of its image (the official postgres image is dumped with pg_dump, whatever
runs on it), so the table below is keyed by image repository; a declaration needs no backup key of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugins.inventory.declaration import Declaration
    from plugins.inventory.model import Host, Inventory

POSTGRES, MARIADB, SQLITE, FILES = "postgres", "mariadb", "sqlite", "files"
# image repository → (kind of dump, the volume it reads for sqlite/files, the file inside that volume)
_BY_IMAGE = {
    "postgres": (POSTGRES, None, None),
    "mariadb": (MARIADB, None, None),
    "vaultwarden/server": (SQLITE, "/data", "db.sqlite3"),
    "netboxcommunity/netbox": (FILES, "/opt/netbox/netbox/media", None),
}
# What a dump of each kind is called on the host: <container><suffix>
SUFFIX = {POSTGRES: ".pgdump", MARIADB: ".sql", SQLITE: ".sqlite3", FILES: ".tar.gz"}


def _repository(image: str) -> str:
    name = image.rsplit("@", 1)[0]
    return name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name


def _literal(decl: Declaration, name: str) -> str | None:
    return decl.literal_environment.get(name)


def dump_of(decl: Declaration) -> dict | None:
    """The dump a service owes (kind, container, file, and what the kind needs), or None if it holds no data."""
    known = _BY_IMAGE.get(_repository(decl.image))
    if known is None:
        return None
    kind, target, inner = known
    entry = {"name": decl.name, "kind": kind, "container": decl.container, "file": decl.container + SUFFIX[kind]}
    if kind == POSTGRES:
        user = _literal(decl, "POSTGRES_USER") or "postgres"
        entry.update(user=user, database=_literal(decl, "POSTGRES_DB") or user)
    elif kind == MARIADB:
        entry.update(database=_literal(decl, "MARIADB_DATABASE") or "")
    else:
        volume = next((v for v in decl.volumes if v.target == target), None)
        if volume is None or not volume.named:
            return None  # the service keeps that data nowhere a dump can read it from
        entry.update(volume=volume.source, path=inner or "", file=volume.source + SUFFIX[kind])
    return entry


def dumps(inv: Inventory, host: Host) -> list[dict]:
    """The dumps the host takes (none when the inventory has no backup policy or leaves the host out)."""
    if inv.backup is None or host.hostname in inv.backup.exclude:
        return []
    return [entry for decl in host.declarations if (entry := dump_of(decl)) is not None]


def backup_vars(inv: Inventory, host: Host) -> dict:
    """The backup role's host vars: the dumps, their directory and timer (nothing without a policy)."""
    if inv.backup is None or host.hostname in inv.backup.exclude:
        return {}
    return {"backup_dumps": dumps(inv, host), "backup_dir": inv.backup.dumps.directory,
            "backup_schedule": inv.backup.dumps.schedule}
