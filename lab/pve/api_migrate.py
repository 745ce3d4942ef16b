"""POST /nodes/{node}/lxc/{vmid}/migrate as pve-container's API2/LXC.pm migrate_vm and LXC/Migrate.pm do it.

A running CT moves only in restart mode (shut down, moved, started on the target); an HA-managed one is
handed to the HA manager: an `hamigrate` task runs `ha-manager migrate ct:<vmid> <target>`, which queues the
request for the CRM and ends; the CRM relocates the CT on its next round (crm.py). What moves: the CT's config, from nodes/<source>/lxc/ to
nodes/<target>/lxc/ (the CT answers on the target node from then on). Its root file system stays where the
lab's one machine keeps it, whichever storage its volume names: the lab's nodes share one disk
(docs/reference/pve-cluster.md).
"""

from __future__ import annotations

import time

from .api_ha_motion import request_motion
from .api_lxc import start_ct, stop_ct
from .errors import ApiError, TaskFailure, fail, param_error
from .routes import Call, route


def _volume_lines(app, conf: dict) -> list[str]:
    """Migrate.pm's log of each volume: on shared storage it stays, a local one is copied to the target."""
    volid = str(conf.get("rootfs", "")).split(",")[0]
    storage = volid.split(":")[0]
    store = app.storages.get(storage)
    if store is not None and store.shared:
        return [f"volume '{volid}' is on shared storage '{storage}'"]
    return [f"found local volume '{volid}' (in current VM config)",
            f"volume '{volid}' is '{volid}' on the target"]


def migrate_ct(app, task, vmid: int, source: str, target: str, restart: bool, timeout: int) -> None:
    """Move a CT from source to target (its config; restart mode for a running CT), logging as PVE does."""
    started = time.monotonic()
    rec = app.record(vmid, in_task=True)
    if rec["config"].get("lock"):
        raise TaskFailure(f"CT is locked ({rec['config']['lock']})")
    running = app.running(vmid)
    if running and not restart:
        raise TaskFailure("running container can only be migrated in restart mode")
    if not app.cluster.online(target):
        task.log("ERROR: Can't connect to destination address using public key")
        raise TaskFailure("migration aborted")
    ip = app.cluster.get(target).ip
    if running:
        task.log(f"shutdown CT {vmid}")
        stop_ct(app, vmid, timeout)
    task.log(f"starting migration of CT {vmid} to node '{target}' ({ip})")
    for line in _volume_lines(app, rec["config"]):
        task.log(line)
    app.place(vmid, target)
    task.log("start final cleanup")
    if running:
        task.log("start container on target node")
        start_ct(app, vmid)
    elapsed = int(time.monotonic() - started)
    task.log(f"migration finished successfully (duration {elapsed // 3600:02d}:{elapsed // 60 % 60:02d}:"
             f"{elapsed % 60:02d})")


@route("POST /nodes/{node}/lxc/{vmid}/migrate")
def lxc_migrate(call: Call):
    """POST migrate: a `vzmigrate` task on the source node (`hamigrate` for an HA-managed CT)."""
    app, vmid, p = call.app, call.vmid, call.params
    source, target = p["node"], p["target"]
    if target == source:
        raise param_error({"target": "target is local node."})
    if app.cluster.get(target) is None:
        raise fail(f"no such cluster node '{target}'")
    app.record(vmid)
    if app.running(vmid) and not p.get("online") and not p.get("restart"):
        raise fail("can't migrate running container without --online or --restart")
    timeout = p.get("timeout", 180)
    if app.ha.managed(vmid):
        def ha_worker(task):
            task.log(f"Requesting HA migration for CT {vmid} to node {target}")
            ha_manager_migrate(app, task, vmid, target)

        return app.run_task(call, "hamigrate", vmid, ha_worker)

    def worker(task):
        if p.get("online") and app.running(vmid):
            raise TaskFailure("lxc live migration is currently not implemented")
        migrate_ct(app, task, vmid, source, target, bool(p.get("restart")), timeout)

    return app.run_task(call, "vzmigrate", vmid, worker)


def ha_manager_migrate(app, task, vmid: int, target: str) -> None:
    """`ha-manager migrate ct:<vmid> <target>` as the task runs it: the API's request, then the CLI's output (the
    services moved along; a service kept apart on the target fails the command, after the request was queued)."""
    sid, command = f"ct:{vmid}", f"ha-manager migrate ct:{vmid} {target}"
    try:
        result = request_motion(app, "migrate", sid, target)
    except ApiError as exc:
        task.log(exc.message)
        raise TaskFailure(f"command '{command}' failed: exit code 255") from None
    blocking = result.get("blocking-resources", [])
    if blocking:
        task.log(f"cannot migrate resource '{sid}' to node '{target}':")
        task.log("")
        for entry in blocking:
            task.log(f"- resource '{entry['sid']}' on target node '{target}' in negative affinity with resource "
                     f"'{sid}'")
        raise TaskFailure(f"command '{command}' failed: exit code 255")
    for csid in result.get("comigrated-resources", []):
        task.log(f"also migrate resource '{csid}' in positive affinity with resource '{sid}' to target node "
                 f"'{target}'")
