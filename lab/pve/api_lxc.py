"""LXC endpoints: list, status, power actions, config GET/PUT, destroy."""

from __future__ import annotations

import time

from .errors import TaskFailure, fail, param_error
from .netconf import parse_net
from .routes import Call, route
from .state import digest

MIB = 1024 * 1024
DISK = 8 * 1024**3
HIDDEN = ("lock",)
CONFIG_PRIVS = {"memory": "VM.Config.Memory", "swap": "VM.Config.Memory", "cores": "VM.Config.CPU",
                "cpulimit": "VM.Config.CPU", "cpuunits": "VM.Config.CPU", "rootfs": "VM.Config.Disk"}
NOT_CONFIG = ("node", "vmid", "delete", "digest", "revert")


def ct_entry(app, vmid: int, running: bool | None = None, rec: dict | None = None) -> dict | None:
    """Return a CT's object as in GET /nodes/{node}/lxc and status/current (running: already known from a
    listing of every CT, else asked of the driver; rec: its record when already read)."""
    rec = app.store.load(vmid) if rec is None else rec
    if rec is None:
        return None
    conf = rec["config"]
    running = app.running(vmid) if running is None else running
    since = app.started.get(vmid)
    entry = {"vmid": vmid, "type": "lxc", "name": conf.get("hostname", f"CT{vmid}"),
             "status": "running" if running else "stopped",
             "maxmem": int(conf.get("memory", 512)) * MIB, "mem": 0,
             "maxswap": int(conf.get("swap", 512)) * MIB, "swap": 0,
             "maxdisk": DISK, "disk": 0, "cpu": 0, "cpus": int(conf.get("cores", 1)),
             "uptime": int(time.time() - since) if running and since else 0,
             "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0}
    if conf.get("tags"):
        entry["tags"] = conf["tags"]
    if conf.get("lock"):
        entry["lock"] = conf["lock"]
    return entry


@route("GET /nodes/{node}/lxc")
def lxc_list(call: Call):
    """GET /nodes/{node}/lxc (CTs the caller may audit)."""
    if not call.principal.has("VM.Audit"):
        return []
    node = call.params["node"]
    return [ct_entry(call.app, vmid, running, rec) for vmid, rec, running in call.app.guests()
            if call.app.node_in(rec) == node]


@route("GET /nodes/{node}/lxc/{vmid}/status/current")
def lxc_status(call: Call):
    """GET status/current."""
    call.app.record(call.vmid)
    return {**ct_entry(call.app, call.vmid), "ha": call.app.ha.status_of(call.vmid)}


@route("POST /nodes/{node}/lxc/{vmid}/status/start")
def lxc_start(call: Call):
    """POST status/start (vzstart)."""
    app, vmid = call.app, call.vmid
    if app.running(vmid):
        raise fail(f"CT {vmid} already running")
    if app.ha.managed(vmid):
        return ha_request(call, "started")

    def worker(task):
        app.record(vmid, in_task=True)
        start_ct(app, vmid)

    return app.run_task(call, "vzstart", vmid, worker)


def start_ct(app, vmid: int) -> None:
    """Start a CT through the driver and remember when."""
    app.driver.start(vmid)
    app.started[vmid] = time.time()


def stop_ct(app, vmid: int, timeout: int = 10) -> None:
    """Stop a CT through the driver."""
    app.driver.stop(vmid, timeout=timeout)
    app.started.pop(vmid, None)


def kill_ct(app, vmid: int) -> None:
    """Stop a CT at once through the driver (what PVE's rollback does to a running CT)."""
    app.driver.kill(vmid)
    app.started.pop(vmid, None)


def ha_request(call: Call, state: str) -> str:
    """An HA-managed CT's start or stop goes through the HA manager (pve-container's Status.pm): an hastart/hastop
    task sets the resource's requested state, which the CRM then brings the CT to."""
    app, vmid = call.app, call.vmid

    def worker(task):
        task.log(f"Requesting HA {'start' if state == 'started' else 'stop'} for CT {vmid}")
        request_ha_state(app, vmid, state)

    return app.run_task(call, "hastart" if state == "started" else "hastop", vmid, worker)


def request_ha_state(app, vmid: int, state: str) -> None:
    """Set an HA resource's requested state and let the CRM act on it."""
    from .api_ha import crm_act
    from .ha import sid_of

    with app.ha.lock:
        options = app.ha.resources()[sid_of(vmid)]
        app.ha.save_resource(sid_of(vmid), {**options, "state": state})
    crm_act(app, vmid, state)


def request_ha_start(app, vmid: int) -> None:
    """What vm_start does for an HA-managed CT: request `started` of the HA manager."""
    request_ha_state(app, vmid, "started")


def _stopper(call: Call, type_: str, timeout: int):
    app, vmid = call.app, call.vmid
    if not app.running(vmid):
        raise fail(f"CT {vmid} not running")
    if app.ha.managed(vmid):
        return ha_request(call, "stopped")

    def worker(task):
        app.record(vmid, in_task=True)
        stop_ct(app, vmid, timeout)

    return app.run_task(call, type_, vmid, worker)


@route("POST /nodes/{node}/lxc/{vmid}/status/stop")
def lxc_stop(call: Call):
    """POST status/stop (vzstop)."""
    return _stopper(call, "vzstop", 1)


@route("POST /nodes/{node}/lxc/{vmid}/status/shutdown")
def lxc_shutdown(call: Call):
    """POST status/shutdown (vzshutdown)."""
    return _stopper(call, "vzshutdown", call.params.get("timeout", 60))


@route("POST /nodes/{node}/lxc/{vmid}/status/reboot")
def lxc_reboot(call: Call):
    """POST status/reboot (vzreboot)."""
    app, vmid = call.app, call.vmid
    if not app.running(vmid):
        raise fail(f"VM {vmid} not running")

    def worker(task):
        stop_ct(app, vmid, call.params.get("timeout", 60))
        start_ct(app, vmid)

    return app.run_task(call, "vzreboot", vmid, worker)


@route("GET /nodes/{node}/lxc/{vmid}/config")
def config_get(call: Call):
    """GET config: the flat config with its digest (or a snapshot's config)."""
    rec = call.app.record(call.vmid)
    conf = rec["config"]
    name = call.params.get("snapshot")
    if name is not None:
        if name not in rec["snapshots"]:
            raise fail(f"snapshot '{name}' does not exist")
        snap = rec["snapshots"][name]
        conf = {**snap["config"], "snaptime": snap["snaptime"], "description": snap["description"]}
        if snap.get("parent"):
            conf["parent"] = snap["parent"]
    return {**conf, "digest": digest(conf)}


def _config_perm(params: dict):
    """pve-container's check_ct_modify_config_perm: the privilege each key (set or deleted) needs."""
    keys = [k for k in params if k not in NOT_CONFIG]
    keys += [k.strip() for k in str(params.get("delete", "")).split(",") if k.strip()]
    privs = sorted({CONFIG_PRIVS.get(k, "VM.Config.Network" if k.startswith("net") else "VM.Config.Options")
                    for k in keys}) or ["VM.Config.Options"]
    return f"/vms/{params.get('vmid', '')}", privs, False


@route("PUT /nodes/{node}/lxc/{vmid}/config", perm=_config_perm)
def config_put(call: Call):
    """PUT config: set keys, `delete` keys, refuse a stale `digest`; answers null."""
    app, vmid, params = call.app, call.vmid, dict(call.params)
    params.pop("node")
    params.pop("vmid")
    want = params.pop("digest", None)
    delete = [k.strip() for k in params.pop("delete", "").split(",") if k.strip()]
    params.pop("revert", None)
    if not params and not delete:
        raise fail("no options specified")
    if "net0" in params:
        params["net0"] = parse_net(params["net0"], vmid)[0]
    with app.store.lock(vmid):
        rec = app.record(vmid)
        conf = rec["config"]
        if want and want != digest(conf):
            raise fail("detected modified configuration - file changed by other user? Try again.")
        bad = {k: "unable to delete required option" for k in delete if k in ("rootfs", "hostname")}
        if bad:
            raise param_error(bad)
        for key in delete:
            conf.pop(key, None)
        conf.update(params)
        app.store.save(vmid, rec)


@route("DELETE /nodes/{node}/lxc/{vmid}")
def lxc_destroy(call: Call):
    """DELETE a CT (vzdestroy); a running CT without force is refused before the task, an HA-managed one without
    purge too (pve-container's destroy_vm); purge drops its HA resource and its place in the backup jobs."""
    from .api_backup_jobs import remove_vmid_from_jobs
    from .api_ha import remove_resource
    from .ha import sid_of

    app, vmid = call.app, call.vmid
    conf = app.record(vmid)["config"]
    if conf.get("protection"):
        raise fail(f"can't remove CT {vmid} - protection mode enabled")
    running_msg = f"unable to destroy CT {vmid} - container is running"
    if not call.params.get("force") and app.running(vmid):
        raise fail(running_msg)
    purge = bool(call.params.get("purge"))
    ha_managed = sid_of(vmid) in app.ha.resources()  # PVE's service_is_configured: `ignored` counts
    if ha_managed and not purge:
        raise fail(f"unable to remove CT {vmid} - used in HA resources and purge parameter not set.")

    def worker(task):
        app.record(vmid, in_task=True)
        if app.running(vmid):
            if not call.params.get("force"):
                raise TaskFailure(running_msg)
            task.log(f"forced to stop CT {vmid} before destroying!")
            stop_ct(app, vmid, 1)
        if app.driver.exists(vmid):
            app.driver.destroy(vmid)
        app.firewall.remove_ct(vmid)  # pve-container's destroy_vm: remove_vmfw_conf, purge or not
        app.store.delete(vmid)
        task.log(f"destroyed CT {vmid}")
        if purge:
            task.log(f"purging CT {vmid} from related configurations..")
            if ha_managed:
                with app.ha.lock:
                    remove_resource(app, sid_of(vmid))
                task.log(f"NOTE: removed CT {vmid} from HA resource configuration.")
            remove_vmid_from_jobs(app, vmid)  # pve-container's destroy_vm: remove_vmid_from_backup_jobs

    return app.run_task(call, "vzdestroy", vmid, worker)
