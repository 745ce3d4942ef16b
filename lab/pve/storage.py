"""The node's storages (PVE's storage.cfg) and the backup volumes of a `dir` storage, as pve-storage keeps them.

A backup lives in <path>/dump/ (Plugin.pm get_subdir 'backup') as vzdump-lxc-<vmid>-<YYYY_MM_DD-HH_MM_SS>.tar.zst,
with `.notes` (notes, first line listed) and `.protected` (never removed nor pruned) beside it, and the
vzdump log as vzdump-lxc-<vmid>-<time>.log. Names, texts and the prune algorithm are pve-storage's
(src/PVE/Storage.pm, src/PVE/Storage/Plugin.pm).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from .errors import TaskFailure, fail

# Storage.pm $BACKUP_EXT_RE_2 with Plugin.pm's KNOWN_COMPRESSION_FORMATS.
BACKUP_EXT = r"\.(tgz|(?:tar|vma)(?:\.(gz|lzo|zst|bz2))?)"
ARCHIVE = re.compile(rf"^(vzdump-(lxc|openvz|qemu)-.+{BACKUP_EXT})$")
STD_NAME = re.compile(r"^(vzdump-(lxc|openvz|qemu)-([1-9][0-9]{2,8})-(\d{4})_(\d{2})_(\d{2})-(\d{2})_(\d{2})_(\d{2}))\.(.+)$")
VOLUME = re.compile(r"^([a-z][a-z0-9\-_.]*[a-z0-9]):(.+)$", re.IGNORECASE)
PRUNE_KEYS = ("keep-last", "keep-hourly", "keep-daily", "keep-weekly", "keep-monthly", "keep-yearly")


@dataclass
class Storage:
    """One storage of storage.cfg (the lab's are all PVE's `dir` type)."""

    storage: str
    path: Path
    content: tuple[str, ...]
    type: str = "dir"
    shared: bool = False
    prune_backups: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def dump_dir(self) -> Path:
        """Where backups go (PVE's `dump` subdir of a dir storage)."""
        return self.path / "dump"

    def config(self) -> dict:
        """The entry GET /storage gives (content sorted, as PVE prints it)."""
        out = {"storage": self.storage, "type": self.type, "path": str(self.path),
               "content": ",".join(sorted(self.content)), "shared": int(self.shared), **self.extra}
        if self.prune_backups:
            out["prune-backups"] = self.prune_backups
        return out

    def status(self) -> dict:
        """Sizes of the file system under the storage (what `df` says about it)."""
        where = next(p for p in (self.path, *self.path.parents) if p.exists())  # before its first backup
        du = shutil.disk_usage(where)
        return {"total": du.total, "used": du.used, "avail": du.free,
                "used_fraction": du.used / du.total if du.total else 0.0}


def node_storages(local_dir: Path, backup_dir: Path, shared_dir: Path | None = None) -> dict[str, Storage]:
    """storage.cfg: `local` (each node's own: templates and the CTs' disks), `backup` (vzdump's, off the CTs'
    disks) and, in a cluster, `shared` (one storage every node sees, `shared 1`: where HA-managed CTs live)."""
    stores = [Storage("local", local_dir, ("vztmpl", "rootdir", "backup", "iso")),
              Storage("backup", backup_dir, ("backup",))]
    if shared_dir is not None:
        stores.append(Storage("shared", shared_dir, ("rootdir", "images"), shared=True))
    return {s.storage: s for s in stores}


def storage_config(app, storeid: str, in_task: bool = False) -> Storage:
    """The storage or PVE's `storage 'x' does not exist`."""
    found = app.storages.get(storeid)
    if found is None:
        raise (TaskFailure if in_task else fail)(f"storage '{storeid}' does not exist")
    return found


def archive_info(name: str) -> dict | None:
    """Storage.pm archive_info: type, format, vmid and ctime of a standard name (None: not a backup)."""
    m = ARCHIVE.match(name)
    if not m:
        return None
    info = {"filename": m.group(1), "type": m.group(2), "format": m.group(3), "compression": m.group(4),
            "is_std_name": False}
    std = STD_NAME.match(name)
    if std and std.group(10) == m.group(3):
        y, mo, d, h, mi, s = (int(std.group(i)) for i in range(4, 10))
        info.update(is_std_name=True, vmid=int(std.group(3)), logfilename=std.group(1) + ".log",
                    ctime=int(time.mktime((y, mo, d, h, mi, s, 0, 0, -1))))
    return info


def parse_volume(volid: str, storeid: str | None = None) -> tuple[str, str]:
    """Content.pm real_volume_id: (storage, volname) from `storage:volname` or a bare volname."""
    m = VOLUME.match(volid)
    if m:
        if storeid and m.group(1) != storeid:
            raise fail_param("volume", f"storage ID mismatch ({m.group(1)} != {storeid})")
        return m.group(1), m.group(2)
    if not storeid:
        raise fail_param("volume", "no storage specified - incomplete volume ID")
    return storeid, volid


def fail_param(key: str, message: str):
    """PVE's raise_param_exc for one parameter."""
    from .errors import param_error

    return param_error({key: message})


def backup_path(store: Storage, volname: str) -> Path:
    """The file of a `backup/<file>` volume, or PVE's parse error."""
    m = re.match(rf"^backup/([^/]+{BACKUP_EXT})$", volname)
    if not m:
        raise fail(f"unable to parse directory volume name '{volname}'")
    return store.dump_dir / m.group(1)


def list_backups(store: Storage, vmid: int | None = None) -> list[dict]:
    """Plugin.pm get_subdir_files for 'backup': volid, format, size, ctime, subtype, vmid, notes, protected."""
    out = []
    if not store.dump_dir.is_dir():
        return out
    for path in sorted(store.dump_dir.iterdir()):
        info = archive_info(path.name)
        if info is None or not path.is_file():
            continue
        if vmid is not None and not re.search(rf"\S+-{vmid}-\S+", path.name):
            continue
        st = path.stat()
        item = {"volid": f"{store.storage}:backup/{path.name}", "format": info["format"], "size": st.st_size,
                "ctime": info.get("ctime", int(st.st_ctime)), "subtype": info["type"], "content": "backup"}
        m = re.search(rf"-([1-9][0-9]{{2,8}})-[^/]+\.{re.escape(info['format'])}$", path.name)
        if vmid is not None or m:
            item["vmid"] = vmid if vmid is not None else int(m.group(1))
        notes = notes_path(path)
        if notes.is_file():
            item["notes"] = (notes.read_text(errors="replace").splitlines() or [""])[0]
        if protection_path(path).exists():
            item["protected"] = 1
        out.append(item)
    return out


def notes_path(archive: Path) -> Path:
    """Plugin.pm NOTES_EXT beside the archive."""
    return archive.with_name(archive.name + ".notes")


def protection_path(archive: Path) -> Path:
    """Storage.pm protection_file_path."""
    return archive.with_name(archive.name + ".protected")


def set_attribute(archive: Path, attribute: str, value) -> None:
    """Plugin.pm update_volume_attribute for a backup: notes (empty removes them) or protected."""
    if not archive.is_file():
        raise fail(f"volume '{archive.name}' does not exist")
    if attribute == "notes":
        target = notes_path(archive)
        if value:
            target.write_text(str(value))
        else:
            target.unlink(missing_ok=True)
    elif attribute == "protected":
        target = protection_path(archive)
        if value:
            target.touch()
        else:
            target.unlink(missing_ok=True)


def remove_archive(store: Storage, volname: str) -> None:
    """Plugin.pm free_image + archive_auxiliaries_remove: a protected backup is refused as PVE words it."""
    path = backup_path(store, volname)
    if protection_path(path).exists():
        raise TaskFailure(f"cannot remove protected volume '{volname}' on '{store.storage}'")
    try:
        path.unlink()
    except FileNotFoundError:
        raise TaskFailure(f"unlink '{path}' failed - No such file or directory") from None
    auxiliaries_remove(path)


def auxiliaries_remove(path: Path) -> None:
    """Storage.pm archive_auxiliaries_remove: the log and the notes go with the archive."""
    info = archive_info(path.name) or {}
    for name in (info.get("logfilename"), path.name + ".notes"):
        if name:
            (path.parent / name).unlink(missing_ok=True)


def _bucket(kind: str, ctime: int) -> str:
    t = datetime.fromtimestamp(ctime)
    if kind == "keep-last":
        return str(ctime)
    if kind == "keep-hourly":
        return f"{t.hour}/{t.day}/{t.month}/{t.year}"
    if kind == "keep-daily":
        return f"{t.day}/{t.month}/{t.year}"
    if kind == "keep-weekly":
        year, week, _ = t.isocalendar()
        return f"{week}/{year}"
    if kind == "keep-monthly":
        return f"{t.month}/{t.year}"
    return str(t.year)


def prune_mark_backup_group(group: list[dict], keep: dict) -> None:
    """Storage.pm prune_mark_backup_group: mark each entry keep or remove (protected ones stay as marked)."""
    positive = [k for k in PRUNE_KEYS if int(keep.get(k) or 0) > 0]
    if str(keep.get("keep-all", "0")) == "1" or not positive:
        for entry in group:
            if not entry.get("mark") or entry["mark"] == "remove":
                entry["mark"] = "keep"
        return
    newest_first = sorted(group, key=lambda e: -e["ctime"])
    for kind in PRUNE_KEYS:
        count = int(keep.get(kind) or 0)
        if not count:
            continue
        already = {_bucket(kind, e["ctime"]) for e in newest_first if e.get("mark") == "keep"}
        newly: set[str] = set()
        for entry in newest_first:
            bucket = _bucket(kind, entry["ctime"])
            if entry.get("mark") or bucket in already:
                continue
            if bucket not in newly:
                if len(newly) >= count:
                    break
                newly.add(bucket)
                entry["mark"] = "keep"
            else:
                entry["mark"] = "remove"
    for entry in newest_first:
        entry.setdefault("mark", "remove")


def prune_list(store: Storage, keep: dict, vmid: int | None, kind: str | None) -> list[dict]:
    """Plugin.pm prune_backups without the removal: every backup with its mark (keep/remove/protected/renamed)."""
    groups: dict[str, list[dict]] = {}
    out = []
    for backup in list_backups(store, vmid):
        name = backup["volid"].split("/", 1)[1]
        info = archive_info(name) or {}
        btype = info.get("type", "unknown")
        if kind is not None and kind != btype:
            continue
        entry = {"ctime": backup["ctime"], "type": btype, "volid": backup["volid"]}
        if info.get("vmid", backup.get("vmid")) is not None:
            entry["vmid"] = info.get("vmid", backup.get("vmid"))
        if info.get("is_std_name"):
            entry["ctime"] = info["ctime"]
            groups.setdefault(f"{btype}/{entry['vmid']}", []).append(entry)
        else:
            entry["mark"] = "renamed"
        if backup.get("protected"):
            entry["mark"] = "protected"
        out.append(entry)
    for group in groups.values():
        prune_mark_backup_group(group, keep)
    return out


def prune_keep(store: Storage, given: dict | None) -> dict:
    """The retention to apply: the call's, else the storage's, else PVE's error."""
    if given is not None:
        return given
    if not store.prune_backups:
        raise fail(f"no prune-backups options configured for storage '{store.storage}'")
    return parse_keep(store.prune_backups)


def parse_keep(text: str) -> dict:
    """A prune-backups property string as a dict (already validated by the schema)."""
    out = {}
    for part in filter(None, str(text).split(",")):
        key, _, value = part.partition("=")
        out[key.strip()] = value.strip()
    return out


def keep_text(keep: dict) -> str:
    """PVE's print_property_string of prune-backups (keys sorted)."""
    return ",".join(f"{k}={keep[k]}" for k in sorted(keep))


def prune(store: Storage, keep: dict, vmid: int | None, kind: str | None, log) -> list[dict]:
    """Plugin.pm prune_backups: remove the entries marked `remove`, logging each."""
    marked = prune_list(store, keep, vmid, kind)
    failed = False
    for entry in marked:
        if entry["mark"] != "remove":
            continue
        log(f"removing backup '{entry['volid']}'")
        try:
            path = backup_path(store, entry["volid"].split(":", 1)[1])
            if protection_path(path).exists():
                raise OSError(f"cannot remove protected archive '{path}'")
            path.unlink(missing_ok=True)
            auxiliaries_remove(path)
        except OSError as exc:
            log(f"error when removing backup '{entry['volid']}' - {exc}")
            failed = True
    if failed:
        raise TaskFailure("error pruning backups - check log")
    return marked


def ensure_dirs(store: Storage) -> None:
    """Create the storage's dump dir (PVE's activate_storage mkdir's its subdirs)."""
    os.makedirs(store.dump_dir, exist_ok=True)
