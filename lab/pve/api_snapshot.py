"""Snapshot endpoints: list (with `current`), create, delete, rollback."""

from __future__ import annotations

import time

from .api_lxc import kill_ct, request_ha_start, start_ct
from .errors import TaskFailure, fail
from .routes import Call, route
from .state import digest

RESERVED = ("current", "vzdump")


@route("GET /nodes/{node}/lxc/{vmid}/snapshot")
def snapshot_list(call: Call):
    """GET snapshot: every snapshot with its parent, then `current` (You are here!)."""
    rec = call.app.record(call.vmid)
    out = []
    for name, snap in rec["snapshots"].items():
        entry = {"name": name, "snaptime": snap["snaptime"], "description": snap.get("description", "")}
        if snap.get("parent"):
            entry["parent"] = snap["parent"]
        out.append(entry)
    current = {"name": "current", "description": "You are here!", "digest": digest(rec["config"]),
               "running": 1 if call.app.running(call.vmid) else 0}
    if rec["config"].get("parent"):
        current["parent"] = rec["config"]["parent"]
    out.append(current)
    return out


def _snapshot(app, vmid: int, name: str, in_task: bool = True) -> dict:
    rec = app.record(vmid, in_task=in_task)
    if name not in rec["snapshots"]:
        raise (TaskFailure if in_task else fail)(f"snapshot '{name}' does not exist")
    return rec


def set_lock(app, vmid: int, lock: str):
    """Take a CT's config lock (PVE's set_lock), or fail in the task with `CT is locked (<lock>)`."""
    rec = app.record(vmid, in_task=True)
    if rec["config"].get("lock"):
        raise TaskFailure(f"CT is locked ({rec['config']['lock']})")
    rec["config"]["lock"] = lock
    app.store.save(vmid, rec)


def remove_lock(app, vmid: int) -> None:
    """Drop a CT's config lock."""
    rec = app.store.load(vmid)
    if rec is not None:
        rec["config"].pop("lock", None)
        app.store.save(vmid, rec)


@route("POST /nodes/{node}/lxc/{vmid}/snapshot")
def snapshot_create(call: Call):
    """POST snapshot (vzsnapshot); reserved names refused before the task."""
    app, vmid, name = call.app, call.vmid, call.params["snapname"]
    if name in RESERVED:
        raise fail(f"unable to use snapshot name '{name}' (reserved name)")

    def worker(task):
        rec = app.record(vmid, in_task=True)
        if name in rec["snapshots"]:
            raise TaskFailure(f"snapshot name '{name}' already used")
        set_lock(app, vmid, "snapshot")
        try:
            task.log(f"create snapshot '{name}'")
            app.driver.snapshot(vmid, name)
            app.store.add_snapshot(vmid, name, int(time.time()), call.params.get("description", ""))
        finally:
            remove_lock(app, vmid)

    return app.run_task(call, "vzsnapshot", vmid, worker)


@route("DELETE /nodes/{node}/lxc/{vmid}/snapshot/{snapname}")
def snapshot_delete(call: Call):
    """DELETE a snapshot (vzdelsnapshot)."""
    app, vmid, name = call.app, call.vmid, call.params["snapname"]

    def worker(task):
        _snapshot(app, vmid, name)
        task.log(f"delete snapshot '{name}'")
        app.driver.delete_snapshot(vmid, name)
        app.store.remove_snapshot(vmid, name)

    return app.run_task(call, "vzdelsnapshot", vmid, worker)


@route("GET /nodes/{node}/lxc/{vmid}/snapshot/{snapname}")
def snapshot_index(call: Call):
    """GET a snapshot's directory index."""
    _snapshot(call.app, call.vmid, call.params["snapname"], in_task=False)
    return [{"rel": "rollback"}, {"rel": "config"}]


@route("POST /nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback")
def snapshot_rollback(call: Call):
    """POST rollback (vzrollback): stop if running, restore files + config, start when start=1."""
    app, vmid, name = call.app, call.vmid, call.params["snapname"]
    start = bool(call.params.get("start", 0))

    def worker(task):
        _snapshot(app, vmid, name)
        set_lock(app, vmid, "rollback")  # AbstractConfig's snapshot_rollback prepares under lock `rollback`
        try:
            if app.running(vmid):
                # pve-container's __snapshot_rollback_vm_stop calls vm_stop($vmid, 1): the state is thrown away
                # anyway, and a clean shutdown would wait out every service that ignores SIGTERM
                task.log(f"stopping CT {vmid} before rollback")
                kill_ct(app, vmid)
            task.log(f"rollback to snapshot '{name}'")
            app.driver.rollback(vmid, name, start=False)
            app.store.restore_snapshot(vmid, name)
        finally:
            remove_lock(app, vmid)
        if start and app.ha.managed(vmid):
            # the rollback's start is vm_start, which hands an HA-managed CT to the HA manager (an HA request)
            task.log(f"Requesting HA start for CT {vmid}")
            request_ha_start(app, vmid)
        elif start:
            task.log(f"starting CT {vmid}")
            start_ct(app, vmid)

    return app.run_task(call, "vzrollback", vmid, worker)
