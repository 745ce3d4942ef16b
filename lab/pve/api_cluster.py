"""Version, nodes, node status, cluster resources, nextid and task endpoints."""

from __future__ import annotations

import os
import time

from .auth import check
from .errors import param_error
from .routes import Call, WithTotal, route
from .schema import INT, P
from .tasks import MISSING_FILE, parse_upid

VERSION = {"version": "8.2.4", "release": "8.2", "repoid": "faa83925c9641325"}
GIB = 1024**3
DISK = 8 * GIB


def _meminfo() -> dict[str, int]:
    info = {}
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    total = info.get("MemTotal", 4 * GIB)
    free = info.get("MemAvailable", total // 2)
    return {"total": total, "used": total - free, "free": free}


def _uptime() -> int:
    try:
        with open("/proc/uptime") as fh:
            return int(float(fh.read().split()[0]))
    except OSError:
        return 0


def node_entry(app) -> dict:
    """Return the node's entry in /nodes and /cluster/resources."""
    mem = _meminfo()
    return {"node": app.node, "status": "online", "id": f"node/{app.node}", "type": "node",
            "cpu": 0.01, "maxcpu": os.cpu_count() or 1, "mem": mem["used"], "maxmem": mem["total"],
            "disk": 2 * GIB, "maxdisk": 64 * GIB, "uptime": _uptime(), "level": "",
            "ssl_fingerprint": ""}


@route("GET", "/version")
def version(call: Call):
    """GET /version."""
    return dict(VERSION)


@route("GET", "/nodes")
def nodes(call: Call):
    """GET /nodes."""
    return [node_entry(call.app)]


@route("GET", "/nodes/{node}/status", perm=("/nodes/{node}", ["Sys.Audit"], False))
def node_status(call: Call):
    """GET /nodes/{node}/status."""
    mem = _meminfo()
    try:
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
    except OSError:
        load = ["0.00", "0.00", "0.00"]
    uname = os.uname()
    return {"uptime": _uptime(), "cpu": 0.01, "wait": 0, "idle": 0, "memory": mem,
            "swap": {"total": 0, "used": 0, "free": 0},
            "rootfs": {"total": 64 * GIB, "used": 2 * GIB, "avail": 62 * GIB, "free": 62 * GIB},
            "loadavg": load, "pveversion": "pve-manager/8.2.4/faa83925c9641325",
            "kversion": f"{uname.sysname} {uname.release} {uname.version}",
            "cpuinfo": {"cpus": os.cpu_count() or 1, "model": "lab", "sockets": 1, "cores": os.cpu_count() or 1},
            "current-kernel": {"sysname": uname.sysname, "release": uname.release,
                               "version": uname.version, "machine": uname.machine}}


def storage_entry(app) -> dict:
    """Return the `local` storage's entry in /cluster/resources."""
    return {"id": f"storage/{app.node}/local", "type": "storage", "storage": "local", "node": app.node,
            "status": "available", "plugintype": "dir", "content": "vztmpl,rootdir,backup,iso",
            "disk": 2 * GIB, "maxdisk": 64 * GIB, "shared": 0}


@route("GET", "/cluster/resources",
       {"type": P(enum=("vm", "storage", "node", "sdn"))})
def cluster_resources(call: Call):
    """GET /cluster/resources (entries filtered by the caller's audit privileges)."""
    from .api_lxc import ct_entry

    kind = call.params.get("type")
    out = []
    if kind in (None, "vm") and call.principal.has("VM.Audit"):
        for vmid in call.app.vmids():
            entry = ct_entry(call.app, vmid)
            if entry:
                out.append({"id": f"lxc/{vmid}", "node": call.app.node, "template": 0,
                            "maxcpu": entry.pop("cpus"), **entry})
    if kind in (None, "node") and call.principal.has("Sys.Audit"):
        out.append(node_entry(call.app))
    if kind in (None, "storage") and call.principal.has("Datastore.Audit"):
        out.append(storage_entry(call.app))
    return out


@route("GET", "/cluster/nextid", {"vmid": P("integer", minimum=100, maximum=999999999)})
def nextid(call: Call):
    """GET /cluster/nextid: the given vmid if free, else the lowest free one from 100."""
    taken = set(call.app.vmids())
    vmid = call.params.get("vmid")
    if vmid is not None:
        if vmid in taken:
            raise param_error({"vmid": f"VM {vmid} already exists"})
        return str(vmid)
    vmid = 100
    while vmid in taken:
        vmid += 1
    return str(vmid)


def _task(call: Call):
    upid = call.params["upid"]
    fields = parse_upid(upid)
    if fields["user"] != call.principal.authid:
        check(call.principal, f"/nodes/{call.app.node}", ["Sys.Audit"])
    return call.app.tasks.get(upid), fields


@route("GET", "/nodes/{node}/tasks/{upid}/status", {"upid": P(optional=False)})
def task_status(call: Call):
    """GET task status: running, or stopped with exitstatus."""
    task, fields = _task(call)
    if task is not None:
        return task.status_dict()
    user, _, tokenid = fields["user"].partition("!")
    out = {**fields, "upid": call.params["upid"], "user": user, "status": "stopped",
           "exitstatus": MISSING_FILE}
    if tokenid:
        out["tokenid"] = tokenid
    return out


@route("GET", "/nodes/{node}/tasks/{upid}/log",
       {"upid": P(optional=False), "start": P("integer", minimum=0), "limit": P("integer", minimum=0),
        "download": P("boolean")})
def task_log(call: Call):
    """GET task log lines [{n, t}] with `total`."""
    task, _ = _task(call)
    lines = list(task.lines) if task is not None else [MISSING_FILE]
    start = call.params.get("start", 0)
    limit = call.params.get("limit", 50)
    chunk = lines[start:start + limit] if limit else []
    return WithTotal([{"n": start + i + 1, "t": t} for i, t in enumerate(chunk)], len(lines))


@route("GET", "/nodes/{node}/tasks", {"vmid": INT, "limit": INT, "start": INT, "source": P(),
                                       "typefilter": P(), "userfilter": P(), "errors": P("boolean")},
       extra=True)
def task_list(call: Call):
    """GET /nodes/{node}/tasks: this server's tasks, newest first."""
    tasks = sorted(call.app.tasks._tasks.values(), key=lambda t: -t.starttime)
    out = []
    for t in tasks:
        if call.params.get("vmid") and t.id != str(call.params["vmid"]):
            continue
        entry = t.status_dict()
        if t.status == "stopped":
            entry["status"] = t.exitstatus
            entry["endtime"] = int(time.time())
        out.append(entry)
    return out[: call.params.get("limit", 50)]
