"""Version, nodes, node status, cluster resources, nextid and task endpoints."""

from __future__ import annotations

import os
import re
import time

from .auth import check
from .errors import param_error
from .formats import split_list
from .routes import Call, WithTotal, route
from .tasks import MISSING_FILE, parse_upid

# PVE 9.1 (Debian 13): the release lab/pve/pve-api-schema.json was taken from; `serve --pve-version` changes it.
VERSION = {"version": "9.1.2", "release": "9.1", "repoid": "b2aa7e0bd4e7ec5e"}
GIB = 1024**3


def reported_version(version: str | None = None) -> dict:
    """The /version object for a version such as "8.4.1" (None: the 9.1 the schema comes from)."""
    if not version:
        return dict(VERSION)
    if not re.fullmatch(r"\d+\.\d+(\.\d+)?", version):
        raise ValueError(f"PVE version {version!r}: expected MAJOR.MINOR[.PATCH], e.g. 9.1.2")
    return {**VERSION, "version": version, "release": ".".join(version.split(".")[:2])}
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
    return {"total": total, "used": total - free, "free": free, "available": free}


def _uptime() -> int:
    try:
        with open("/proc/uptime") as fh:
            return int(float(fh.read().split()[0]))
    except OSError:
        return 0


def node_entry(app, name: str | None = None) -> dict:
    """Return a node's entry in /nodes and /cluster/resources (an offline node: its name and status only)."""
    name = name or app.node
    if not app.cluster.online(name):
        return {"node": name, "status": "offline", "id": f"node/{name}", "type": "node", "level": ""}
    mem = _meminfo()
    return {"node": name, "status": "online", "id": f"node/{name}", "type": "node",
            "cpu": 0.01, "maxcpu": os.cpu_count() or 1, "mem": mem["used"], "maxmem": mem["total"],
            "disk": 2 * GIB, "maxdisk": 64 * GIB, "uptime": _uptime(), "level": "",
            "ssl_fingerprint": ""}


@route("GET /version")
def version(call: Call):
    """GET /version: the version this emulator reports (9.1 unless told otherwise)."""
    return dict(call.app.version)


@route("GET /nodes")
def nodes(call: Call):
    """GET /nodes: every node of the cluster, online or not."""
    return [node_entry(call.app, name) for name in call.app.cluster.names()]


@route("GET /cluster/status")
def cluster_status(call: Call):
    """GET /cluster/status: the cluster (quorate, node count) and each node (online, local, nodeid, ip);
    a standalone node has no cluster entry, as PVE answers it."""
    cluster = call.app.cluster
    out = []
    if cluster.is_cluster:
        out.append({"type": "cluster", "id": "cluster", "name": "lab", "nodes": len(cluster.nodes),
                    "quorate": int(cluster.quorate()), "version": len(cluster.nodes)})
    for node in cluster.nodes:
        out.append({"type": "node", "id": f"node/{node.name}", "name": node.name, "nodeid": node.nodeid,
                    "ip": node.ip, "online": int(node.online), "local": int(node.name == cluster.local),
                    "level": ""})
    return out


@route("GET /nodes/{node}/status")
def node_status(call: Call):
    """GET /nodes/{node}/status."""
    mem = _meminfo()
    try:
        with open("/proc/loadavg") as fh:
            load = fh.read().split()[:3]
    except OSError:
        load = ["0.00", "0.00", "0.00"]
    uname = os.uname()
    return {"uptime": _uptime(), "cpu": 0.01, "boot-info": {"mode": "legacy-bios"}, "wait": 0, "idle": 0, "memory": mem,
            "swap": {"total": 0, "used": 0, "free": 0},
            "rootfs": {"total": 64 * GIB, "used": 2 * GIB, "avail": 62 * GIB, "free": 62 * GIB},
            "loadavg": load, "pveversion": f"pve-manager/{call.app.version['version']}/{call.app.version['repoid']}",
            "kversion": f"{uname.sysname} {uname.release} {uname.version}",
            "cpuinfo": {"cpus": os.cpu_count() or 1, "model": "lab", "sockets": 1, "cores": os.cpu_count() or 1},
            "current-kernel": {"sysname": uname.sysname, "release": uname.release,
                               "version": uname.version, "machine": uname.machine}}


def storage_entries(app, node: str) -> list[dict]:
    """Return a node's storages in /cluster/resources: `local` (its own) and, in a cluster, `shared` (every
    node lists it, `shared: 1`)."""
    out = [{"id": f"storage/{node}/local", "type": "storage", "storage": "local", "node": node,
            "status": "available", "plugintype": "dir", "content": "vztmpl,rootdir,backup,iso",
            "disk": 2 * GIB, "maxdisk": 64 * GIB, "shared": 0}]
    shared = app.storages.get("shared")
    if shared is not None:
        out.append({"id": f"storage/{node}/shared", "type": "storage", "storage": "shared", "node": node,
                    "status": "available", "plugintype": shared.type,
                    "content": ",".join(sorted(shared.content)), "disk": 2 * GIB, "maxdisk": 64 * GIB, "shared": 1})
    if not app.cluster.online(node):
        for entry in out:
            entry["status"] = "unknown"
    return out


@route("GET /cluster/resources")
def cluster_resources(call: Call):
    """GET /cluster/resources (entries filtered by the caller's audit privileges)."""
    from .api_lxc import ct_entry

    kind = call.params.get("type")
    out = []
    if kind in (None, "vm") and call.principal.has("VM.Audit"):
        managed = call.app.ha.resources()
        for vmid, rec, running in call.app.guests():
            entry = ct_entry(call.app, vmid, running, rec)
            if entry:
                out.append({"id": f"lxc/{vmid}", "node": call.app.node_in(rec), "template": 0,
                            "maxcpu": entry.pop("cpus"), **entry})
                sid = f"ct:{vmid}"
                if sid in managed:
                    out[-1]["hastate"] = managed[sid]["state"]
    if kind in (None, "node") and call.principal.has("Sys.Audit"):
        out += [node_entry(call.app, name) for name in call.app.cluster.names()]
    if kind in (None, "storage") and call.principal.has("Datastore.Audit"):
        for name in call.app.cluster.names():
            out += storage_entries(call.app, name)
    return out


@route("GET /cluster/nextid")
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


@route("GET /nodes/{node}/tasks/{upid}/status")
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


@route("GET /nodes/{node}/tasks/{upid}/log")
def task_log(call: Call):
    """GET task log lines [{n, t}] with `total`."""
    task, _ = _task(call)
    lines = list(task.lines) if task is not None else [MISSING_FILE]
    start = call.params.get("start", 0)
    limit = call.params.get("limit", 50)
    chunk = lines[start:start + limit] if limit else []
    return WithTotal([{"n": start + i + 1, "t": t} for i, t in enumerate(chunk)], len(lines))


@route("GET /nodes/{node}/tasks")
def task_list(call: Call):
    """GET /nodes/{node}/tasks: this server's tasks, newest first, filtered as pve-manager's Tasks.pm does."""
    p = call.params
    source = p.get("source", "archive")
    wanted = {s.lower() for s in split_list(p.get("statusfilter", ""))}
    out = []
    for t in sorted(call.app.tasks._tasks.values(), key=lambda t: -t.starttime):
        running = t.status == "running"
        state = "ok" if t.exitstatus == "OK" else "warning" if str(t.exitstatus).startswith("WARNINGS") else "error"
        if (source == "archive" and running) or (source == "active" and not running):
            continue
        if (p.get("vmid") and t.id != str(p["vmid"])) or (p.get("typefilter") and t.type != p["typefilter"]):
            continue
        if p.get("userfilter") and p["userfilter"] not in t.user:
            continue
        if (p.get("since") is not None and t.starttime < p["since"]) or (
                p.get("until") is not None and t.starttime > p["until"]):
            continue
        if (p.get("errors") and (running or state == "ok")) or (wanted and not running and state not in wanted):
            continue
        entry = t.status_dict()
        if not running:
            entry["status"] = t.exitstatus
            entry["endtime"] = int(time.time())
        out.append(entry)
    start = p.get("start", 0)
    return out[start:start + p.get("limit", 50)]
