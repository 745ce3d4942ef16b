"""Storage endpoints: storage.cfg, each storage's status, backup volumes (list, info, notes/protected, delete) and
prune, as pve-storage's PVE/API2/Storage/{Config,Status,Content,PruneBackups}.pm answer them.

Only backup volumes are listed as content: the lab's CT disks and its one template are not files of a storage.
"""

from __future__ import annotations

from . import storage as st
from .auth import check
from .errors import ApiError, TaskFailure, fail
from .formats import split_list
from .routes import Call, route


def _visible(call: Call) -> bool:
    return call.principal.has("Datastore.Audit") or call.principal.has("Datastore.AllocateSpace")


@route("GET /storage")
def storage_index(call: Call):
    """GET /storage: storage.cfg's entries (of a type, when asked)."""
    kind = call.params.get("type")
    return [s.config() for s in call.app.storages.values()
            if _visible(call) and (kind is None or s.type == kind)]


@route("GET /storage/{storage}")
def storage_read(call: Call):
    """GET /storage/{storage}: one entry of storage.cfg."""
    return st.storage_config(call.app, call.params["storage"]).config()


def _status(store: st.Storage) -> dict:
    return {"storage": store.storage, "type": store.type, "content": ",".join(sorted(store.content)),
            "active": 1, "enabled": 1, "shared": int(store.shared), **store.status()}


@route("GET /nodes/{node}/storage")
def node_storage_index(call: Call):
    """GET /nodes/{node}/storage: each storage with its sizes, filtered by content, enabled or storage."""
    p = call.params
    wanted = set(split_list(p.get("content", "")))
    out = []
    for store in call.app.storages.values():
        if not _visible(call) or (p.get("storage") and store.storage != p["storage"]):
            continue
        if wanted and not wanted & set(store.content):
            continue
        out.append(_status(store))
    return out


@route("GET /nodes/{node}/storage/{storage}/status")
def node_storage_status(call: Call):
    """GET .../status: the storage's sizes."""
    return _status(st.storage_config(call.app, call.params["storage"]))


@route("GET /nodes/{node}/storage/{storage}/content")
def content_index(call: Call):
    """GET .../content: the volumes of the storage's content types (backups here), of one CT when asked."""
    store = st.storage_config(call.app, call.params["storage"])
    content = call.params.get("content")
    if "backup" not in store.content or content not in (None, "backup"):
        return []
    vmid = call.params.get("vmid")
    out = []
    for item in st.list_backups(store, vmid):
        if not call.principal.has("VM.Backup") and not call.principal.has("Datastore.Allocate"):
            continue
        out.append(item)
    return out


def _volume(call: Call) -> tuple[st.Storage, str, object]:
    storeid, volname = st.parse_volume(call.params["volume"], call.params.get("storage"))
    store = st.storage_config(call.app, storeid)
    return store, volname, st.backup_path(store, volname)


@route("GET /nodes/{node}/storage/{storage}/content/{volume}")
def content_info(call: Call):
    """GET a volume: path, size, used, format, notes, protected."""
    store, volname, path = _volume(call)
    check(call.principal, f"/storage/{store.storage}", ["Datastore.Audit", "Datastore.AllocateSpace"], True)
    if not path.is_file():
        raise fail(f"volume_size_info on '{store.storage}:{volname}' failed - no format")
    size = path.stat().st_size
    out = {"path": str(path), "size": size, "used": size, "format": st.archive_info(path.name)["format"]}
    if st.notes_path(path).is_file():
        out["notes"] = st.notes_path(path).read_text()
    out["protected"] = 1 if st.protection_path(path).exists() else 0
    return out


@route("PUT /nodes/{node}/storage/{storage}/content/{volume}")
def content_update(call: Call):
    """PUT a volume's notes and/or protected flag."""
    store, _, path = _volume(call)
    check(call.principal, f"/storage/{store.storage}", ["Datastore.AllocateSpace"])
    for attribute in ("notes", "protected"):
        if attribute in call.params:
            st.set_attribute(path, attribute, call.params[attribute])


@route("DELETE /nodes/{node}/storage/{storage}/content/{volume}")
def content_delete(call: Call):
    """DELETE a volume (imgdel task); a protected backup ends the task in PVE's error; `delay` waits for it."""
    app = call.app
    store, volname, path = _volume(call)
    info = st.archive_info(path.name) or {}
    owner = info.get("vmid")
    check(call.principal, f"/storage/{store.storage}",
          ["Datastore.AllocateSpace"] if owner else ["Datastore.Allocate"])
    if owner:
        check(call.principal, f"/vms/{owner}", ["VM.Backup"])

    def worker(task):
        st.remove_archive(store, volname)
        task.log(f"Removed volume '{store.storage}:{volname}'")

    upid = app.run_task(call, "imgdel", f"{owner}@{store.storage}" if owner else store.storage, worker, lock=False)
    delay = call.params.get("delay")
    if delay:
        task = app.tasks.wait(upid, float(delay))
        if task.status == "stopped":
            if task.exitstatus == "OK":
                return None
            raise ApiError(500, task.exitstatus)
    return upid


def _keep(call: Call) -> dict | None:
    given = call.params.get("prune-backups")
    return st.parse_keep(given) if given is not None else None


def _prunable(call: Call) -> st.Storage:
    store = st.storage_config(call.app, call.params["storage"])
    if "backup" not in store.content:
        raise fail(f"storage '{store.storage}' does not support backups")
    return store


@route("GET /nodes/{node}/storage/{storage}/prunebackups")
def prune_dryrun(call: Call):
    """GET prunebackups: every backup (of a CT, of a type) with its mark, nothing removed."""
    store = _prunable(call)
    keep = st.prune_keep(store, _keep(call))
    return st.prune_list(store, keep, call.params.get("vmid"), call.params.get("type"))


@route("DELETE /nodes/{node}/storage/{storage}/prunebackups")
def prune_run(call: Call):
    """DELETE prunebackups: a prunebackups task removing what the dry run marks `remove`."""
    app = call.app
    vmid = call.params.get("vmid")
    if vmid is not None:
        check(call.principal, f"/storage/{call.params['storage']}", ["Datastore.AllocateSpace"])
        check(call.principal, f"/vms/{vmid}", ["VM.Backup"])
    else:
        check(call.principal, f"/storage/{call.params['storage']}", ["Datastore.Allocate"])
    given = _keep(call)

    def worker(task):
        store = app.storages.get(call.params["storage"])
        if store is None:
            raise TaskFailure(f"storage '{call.params['storage']}' does not exist")
        if "backup" not in store.content:
            raise TaskFailure(f"storage '{store.storage}' does not support backups")
        try:
            keep = st.prune_keep(store, given)
        except ApiError as exc:
            raise TaskFailure(exc.message) from None
        st.prune(store, keep, vmid, call.params.get("type"), task.log)

    return app.run_task(call, "prunebackups", f"{vmid}@{call.params['storage']}" if vmid is not None
                        else call.params["storage"], worker, lock=False)
